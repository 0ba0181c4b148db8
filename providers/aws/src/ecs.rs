//! Amazon ECS tasks (JSON 1.1, `AmazonEC2ContainerServiceV20141113.<Operation>`).
//!
//! A job spec is the `RunTask` body: `{"cluster": "...", "taskDefinition": "...",
//! "launchType": "FARGATE", "overrides": {...}, ...}` (one task: `count` absent or 1). tether
//! sets `clientToken` to its key, so ECS deduplicates a repeated `RunTask`, and `startedBy` to
//! the key, so that `find` lists the cluster's tasks started by it (`ListTasks` by `startedBy`
//! alone, the only filter the API allows with it: running and recently stopped tasks). A
//! `RunTask` that placed no task is a refusal of that attempt: ECS would answer the same token
//! with the same failure for 24 hours, so the engine sends the next attempt with a new key.
//!
//! A stopped task succeeded only when its essential container exited and every container
//! exited 0 (`state::ecs_stopped`). A coalesced sweep reads up to 100 tasks of a cluster per
//! `DescribeTasks` call.

use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::{json, Value};
use tether_provider::http::Idempotency;
use tether_provider::{
    Handle, JobState, Provider, ProviderError, RemoteStatus, SendGate, Sweep, Tracked,
};

use crate::{field, find_in_pages, sweep_by_ids};

const PROVIDER: &str = "ecs";
const TARGET: &str = "AmazonEC2ContainerServiceV20141113";
/// Tasks per `DescribeTasks` call (the API's limit).
const DESCRIBE_MAX: usize = 100;
/// The cluster ECS uses when a request names none.
const DEFAULT_CLUSTER: &str = "default";
/// The reason `StopTask` carries.
const CANCEL_REASON: &str = "Cancelled through tether";

adapter! {
    /// The ECS adapter.
    Ecs
}

fn cluster_of(spec: &Value) -> String {
    spec.get("cluster")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .unwrap_or(DEFAULT_CLUSTER)
        .to_string()
}

/// A task (from `DescribeTasks`) as tether sees it: its `lastStatus`, decided by its stop
/// code and exit codes once stopped, with `stoppedReason` and the failed containers as the
/// message.
fn task_status(task: &Value) -> RemoteStatus {
    let raw = task["lastStatus"].as_str().unwrap_or("").to_string();
    let containers: Vec<&Value> = task["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let mut state = crate::state::ecs_task(&raw);
    if matches!(raw.as_str(), "STOPPED" | "DELETED") {
        let exits: Vec<Option<i64>> = containers.iter().map(|c| c["exitCode"].as_i64()).collect();
        state = crate::state::ecs_stopped(task["stopCode"].as_str(), &exits);
    }
    let mut parts: Vec<String> = task["stoppedReason"]
        .as_str()
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .into_iter()
        .collect();
    if state == JobState::Failed {
        for c in &containers {
            let name = c["name"].as_str().unwrap_or("?");
            match (c["exitCode"].as_i64(), c["reason"].as_str()) {
                (Some(0), None) => {}
                (Some(code), reason) => parts.push(format!(
                    "container {name} exited {code}{}",
                    reason.map(|r| format!(" ({r})")).unwrap_or_default()
                )),
                (None, Some(reason)) => parts.push(format!("container {name}: {reason}")),
                (None, None) => {}
            }
        }
    }
    RemoteStatus {
        state,
        raw_state: raw,
        message: (!parts.is_empty()).then(|| parts.join("; ")),
        url: None,
        next_poll_hint: None,
    }
}

impl Ecs {
    /// `DescribeTasks` for up to 100 tasks of `cluster`: the statuses found, by task ARN, and
    /// the ARNs ECS reports `MISSING`.
    async fn describe(
        &self,
        cluster: &str,
        arns: Vec<String>,
    ) -> Result<(HashMap<String, RemoteStatus>, Vec<String>), ProviderError> {
        let out = self
            .client
            .json11(
                TARGET,
                "DescribeTasks",
                &json!({"cluster": cluster, "tasks": arns}),
                Idempotency::Idempotent,
            )
            .await?;
        let found = out["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| Some((t["taskArn"].as_str()?.to_string(), task_status(t))))
            .collect();
        let missing = out["failures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["reason"].as_str() == Some("MISSING"))
            .filter_map(|f| f["arn"].as_str().map(str::to_string))
            .collect();
        Ok((found, missing))
    }

    /// One page of `ListTasks` of `cluster` started by `key` (running and recently stopped).
    async fn list_tasks(
        &self,
        cluster: &str,
        key: &str,
        token: Option<String>,
    ) -> Result<Value, ProviderError> {
        // "When you specify startedBy as the filter, it must be the only filter that you use."
        let mut body = json!({"cluster": cluster, "startedBy": key, "maxResults": 100});
        if let Some(t) = token {
            body["nextToken"] = json!(t);
        }
        let mut page = self
            .client
            .json11(TARGET, "ListTasks", &body, Idempotency::Idempotent)
            .await?;
        // `find_in_pages` reads objects: ListTasks answers bare ARNs.
        let arns: Vec<Value> = page["taskArns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|arn| json!({ "taskArn": arn }))
            .collect();
        page["taskArns"] = Value::Array(arns);
        Ok(page)
    }
}

#[async_trait]
impl Provider for Ecs {
    fn kind(&self) -> &'static str {
        PROVIDER
    }

    fn validate_spec(&self, spec: &Value) -> Result<(), ProviderError> {
        let refuse = |why: &str| Err(ProviderError::invalid_spec(PROVIDER, why.to_string()));
        let definition = spec.get("taskDefinition").and_then(Value::as_str);
        if !spec.is_object() || definition.is_none_or(str::is_empty) {
            return refuse("the job spec must be a RunTask body holding taskDefinition");
        }
        if spec.get("count").is_some_and(|c| c.as_u64() != Some(1)) {
            return refuse("count must be 1 (or absent): one task is one job");
        }
        for tethers in ["clientToken", "startedBy"] {
            if spec.get(tethers).is_some() {
                return refuse(&format!(
                    "{tethers} must be absent: tether sets it to its key"
                ));
            }
        }
        if spec.get("cluster").is_some_and(|c| !c.is_string()) {
            return refuse("cluster must be a cluster name or ARN");
        }
        Ok(())
    }

    /// <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html>
    async fn submit(
        &self,
        spec: &Value,
        key: &str,
        // `clientToken` makes the submit idempotent: it may be repeated without a gate.
        _gate: &dyn SendGate,
    ) -> Result<Handle, ProviderError> {
        self.validate_spec(spec)?;
        let cluster = cluster_of(spec);
        let mut body = spec.clone();
        body["cluster"] = json!(cluster);
        body["clientToken"] = json!(key);
        body["startedBy"] = json!(key);
        let out = self
            .client
            .json11(TARGET, "RunTask", &body, Idempotency::Idempotent)
            .await?;
        match out["tasks"][0]["taskArn"].as_str() {
            Some(arn) => Ok(Handle::new(json!({"cluster": cluster, "task_arn": arn}))),
            // No task placed (`RESOURCE:MEMORY`, an agent disconnected...): nothing runs, and
            // ECS answers the same token with this same answer for 24 hours, so the attempt is
            // refused: the next one is sent with a token of its own (the engine's next
            // attempt key), when capacity may be back.
            None => Err(ProviderError::permanent(
                PROVIDER,
                format!(
                    "RunTask placed no task ({}): nothing runs; asking again sends a new \
                     clientToken",
                    out["failures"]
                ),
            )),
        }
    }

    fn submit_is_idempotent(&self) -> bool {
        true
    }

    /// <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeTasks.html>:
    /// a task ECS does not know is answered as a `MISSING` failure.
    async fn status(&self, handle: &Handle) -> Result<RemoteStatus, ProviderError> {
        let cluster = field(handle, "cluster", PROVIDER)?;
        let arn = field(handle, "task_arn", PROVIDER)?;
        let (mut found, missing) = self.describe(&cluster, vec![arn.clone()]).await?;
        match found.remove(&arn) {
            Some(status) => Ok(status),
            None if !missing.is_empty() => Err(ProviderError::not_found(
                PROVIDER,
                format!("DescribeTasks: task {arn} is MISSING"),
            )),
            None => Err(ProviderError::transient(
                PROVIDER,
                format!("DescribeTasks: no answer about task {arn}"),
            )),
        }
    }

    /// <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_StopTask.html>
    async fn cancel(&self, handle: &Handle) -> Result<(), ProviderError> {
        let cluster = field(handle, "cluster", PROVIDER)?;
        let arn = field(handle, "task_arn", PROVIDER)?;
        self.client
            .json11(
                TARGET,
                "StopTask",
                &json!({"cluster": cluster, "task": arn, "reason": CANCEL_REASON}),
                Idempotency::Idempotent,
            )
            .await?;
        Ok(())
    }

    /// Lists the cluster's tasks started by the key: `ListTasks` with `startedBy` as its only
    /// filter, as the API requires, which lists running and recently stopped tasks (stopped
    /// ones for about an hour; with the token's 24-hour replay that covers a lost answer).
    async fn find(
        &self,
        key: &str,
        spec: &Value,
        _intent_ms: i64,
    ) -> Result<Vec<Handle>, ProviderError> {
        let cluster = cluster_of(spec);
        let list = |token| self.list_tasks(&cluster, key, token);
        let mut found: Vec<Handle> = find_in_pages(
            self.config.find_max_pages,
            "taskArns",
            "nextToken",
            list,
            |task| {
                let arn = task["taskArn"].as_str()?;
                Some((
                    Handle::new(json!({"cluster": cluster, "task_arn": arn})),
                    None,
                ))
            },
        )
        .await?;
        // A task listed twice (pages that moved under the listing) is one task.
        let mut seen = std::collections::HashSet::new();
        found.retain(|h| seen.insert(h.clone()));
        Ok(found)
    }

    /// `DescribeTasks` of each cluster, for up to 100 tasks a call.
    async fn status_many(&self, jobs: &[Tracked<'_>]) -> Result<Sweep, ProviderError> {
        sweep_by_ids(jobs, (Some("cluster"), "task_arn"), DESCRIBE_MAX, |cluster, arns| async move {
            self.describe(&cluster, arns).await.map(|(found, _)| found)
        })
        .await
    }

    adapter_settings!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_task_is_judged_by_its_containers() {
        let ok = json!({"lastStatus": "STOPPED", "stopCode": "EssentialContainerExited",
            "containers": [{"name": "app", "exitCode": 0}, {"name": "log", "exitCode": 0}]});
        assert_eq!(task_status(&ok).state, JobState::Succeeded);
        let bad = json!({"lastStatus": "STOPPED", "stopCode": "EssentialContainerExited",
            "stoppedReason": "Essential container in task exited",
            "containers": [{"name": "app", "exitCode": 2}, {"name": "log", "exitCode": 0}]});
        let status = task_status(&bad);
        assert_eq!(status.state, JobState::Failed);
        assert_eq!(
            status.message.as_deref(),
            Some("Essential container in task exited; container app exited 2")
        );
        let never = json!({"lastStatus": "STOPPED", "stopCode": "TaskFailedToStart",
            "stoppedReason": "CannotPullContainerError",
            "containers": [{"name": "app", "reason": "CannotPullContainerError: not found"}]});
        assert_eq!(task_status(&never).state, JobState::Failed);
        let stopped = json!({"lastStatus": "STOPPED", "stopCode": "UserInitiated",
            "containers": [{"name": "app", "exitCode": 143}]});
        assert_eq!(task_status(&stopped).state, JobState::Cancelled);
        let stopping = json!({"lastStatus": "DEACTIVATING", "stopCode": "EssentialContainerExited",
            "containers": [{"name": "app", "exitCode": 0}]});
        assert_eq!(task_status(&stopping).state, JobState::Running);
    }
}
