//! Amazon ECS tasks (JSON 1.1, `AmazonEC2ContainerServiceV20141113.<Operation>`), a kit
//! description.
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

use serde_json::{json, Value};
use tether_provider::{Handle, JobState, ProviderError, RemoteStatus};

use crate::kit::{
    handle_pair, statuses, text, About, Call, JobApi, Kit, Listing, Protocol, Start, SweepBy,
};

const PROVIDER: &str = "ecs";
const TARGET: &str = "AmazonEC2ContainerServiceV20141113";
/// Tasks per `DescribeTasks` call (the API's limit).
const DESCRIBE_MAX: usize = 100;
/// The cluster ECS uses when a request names none.
const DEFAULT_CLUSTER: &str = "default";
/// The reason `StopTask` carries.
const CANCEL_REASON: &str = "Cancelled through tether";

/// The ECS adapter.
pub type Ecs = Kit<Tasks>;

/// ECS tasks, as the kit runs them.
#[derive(Debug, Default)]
pub struct Tasks;

fn cluster_of(spec: &Value) -> String {
    text(&spec["cluster"])
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
    let mut parts: Vec<String> = text(&task["stoppedReason"])
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
    RemoteStatus::new(state, raw, (!parts.is_empty()).then(|| parts.join("; ")))
}

/// `DescribeTasks` for up to 100 tasks of `cluster`.
fn describe_tasks(cluster: &str, arns: Vec<String>) -> Call {
    Call::rpc("DescribeTasks", json!({"cluster": cluster, "tasks": arns}))
}

/// The statuses of a `DescribeTasks` answer, by task ARN.
fn tasks_of(answer: &Value) -> Vec<(String, RemoteStatus)> {
    statuses(answer, ("tasks", "taskArn"), task_status)
}

/// The task ARNs of the handle.
fn task_of(handle: &Handle) -> Result<(String, String), ProviderError> {
    handle_pair(handle, ("cluster", "task_arn"), PROVIDER)
}

impl JobApi for Tasks {
    fn about(&self) -> About {
        // `clientToken` makes the submit idempotent: it may be repeated without a gate.
        About::new(
            PROVIDER,
            Protocol::Json11(TARGET),
            Start::Deduplicated,
            "task_arn",
        )
    }

    fn check(&self, spec: &Value) -> Result<(), String> {
        let definition = spec.get("taskDefinition").and_then(Value::as_str);
        if !spec.is_object() || definition.is_none_or(str::is_empty) {
            return Err("the job spec must be a RunTask body holding taskDefinition".into());
        }
        if spec.get("count").is_some_and(|c| c.as_u64() != Some(1)) {
            return Err("count must be 1 (or absent): one task is one job".into());
        }
        for tethers in ["clientToken", "startedBy"] {
            if spec.get(tethers).is_some() {
                return Err(format!(
                    "{tethers} must be absent: tether sets it to its key"
                ));
            }
        }
        if spec.get("cluster").is_some_and(|c| !c.is_string()) {
            return Err("cluster must be a cluster name or ARN".into());
        }
        Ok(())
    }

    /// <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html>
    fn start(&self, spec: &Value, key: &str) -> Call {
        let mut body = spec.clone();
        body["cluster"] = json!(cluster_of(spec));
        body["clientToken"] = json!(key);
        body["startedBy"] = json!(key);
        Call::rpc("RunTask", body)
    }

    fn started(&self, spec: &Value, _key: &str, answer: &Value) -> Result<Value, ProviderError> {
        match answer["tasks"][0]["taskArn"].as_str() {
            Some(arn) => Ok(json!({"cluster": cluster_of(spec), "task_arn": arn})),
            // No task placed (`RESOURCE:MEMORY`, an agent disconnected...): nothing runs, and
            // ECS answers the same token with this same answer for 24 hours, so the attempt is
            // refused: the next one is sent with a token of its own (the engine's next
            // attempt key), when capacity may be back.
            None => Err(ProviderError::permanent(
                PROVIDER,
                format!(
                    "RunTask placed no task ({}): nothing runs; asking again sends a new \
                     clientToken",
                    answer["failures"]
                ),
            )),
        }
    }

    /// <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeTasks.html>
    fn describe(&self, handle: &Handle) -> Result<Call, ProviderError> {
        let (cluster, arn) = task_of(handle)?;
        Ok(describe_tasks(&cluster, vec![arn]))
    }

    /// A task ECS does not know is answered as a `MISSING` failure.
    fn status(&self, handle: &Handle, answer: &Value) -> Result<RemoteStatus, ProviderError> {
        let (_, arn) = task_of(handle)?;
        if let Some((_, status)) = tasks_of(answer).into_iter().find(|(a, _)| *a == arn) {
            return Ok(status);
        }
        // Its own failure: an answer about many tasks lists each missing one by its ARN.
        let missing = answer["failures"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| f["reason"].as_str() == Some("MISSING") && f["arn"].as_str() == Some(&arn));
        Err(if missing {
            ProviderError::not_found(PROVIDER, format!("DescribeTasks: task {arn} is MISSING"))
        } else {
            ProviderError::transient(
                PROVIDER,
                format!("DescribeTasks: no answer about task {arn}"),
            )
        })
    }

    /// <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_StopTask.html>
    fn stop(&self, handle: &Handle) -> Result<Call, ProviderError> {
        let (cluster, arn) = task_of(handle)?;
        Ok(Call::rpc(
            "StopTask",
            json!({"cluster": cluster, "task": arn, "reason": CANCEL_REASON}),
        ))
    }

    /// The cluster's tasks started by the key: `ListTasks` with `startedBy` as its only
    /// filter, as the API requires ("When you specify startedBy as the filter, it must be the
    /// only filter that you use"), which lists running and recently stopped tasks (stopped
    /// ones for about an hour; with the token's 24-hour replay that covers a lost answer).
    fn find(&self, spec: &Value, key: &str) -> Option<Listing> {
        let body = json!({"cluster": cluster_of(spec), "startedBy": key, "maxResults": 100});
        Some(Listing {
            call: Call::rpc("ListTasks", body),
            items: "taskArns",
            next: "nextToken",
        })
    }

    /// `ListTasks` answers bare ARNs, without a creation time.
    fn found(&self, spec: &Value, _key: &str, arn: &Value) -> Option<(Value, Option<f64>)> {
        let arn = arn.as_str()?;
        Some((json!({"cluster": cluster_of(spec), "task_arn": arn}), None))
    }

    /// `DescribeTasks` of each cluster, for up to 100 tasks a call.
    fn sweep_by(&self) -> Option<SweepBy> {
        Some(SweepBy::Ids {
            parent: Some("cluster"),
            id: "task_arn",
            chunk: DESCRIBE_MAX,
        })
    }

    /// `DescribeTasks` of many tasks of a cluster answers each as it would alone: a task it
    /// does not know is listed in `failures` by its ARN, as `MISSING`.
    fn gathers(&self) -> bool {
        true
    }

    fn describe_ids(&self, cluster: &str, arns: Vec<String>) -> Option<Call> {
        Some(describe_tasks(cluster, arns))
    }

    fn described(&self, answer: &Value) -> Vec<(String, RemoteStatus)> {
        tasks_of(answer)
    }
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
