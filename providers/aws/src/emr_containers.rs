//! Amazon EMR on EKS job runs (REST JSON, SigV4 service `emr-containers`).
//!
//! A job spec is the `StartJobRun` body plus `virtualClusterId`: `{"virtualClusterId": "...",
//! "name": "...", "executionRoleArn": "...", "releaseLabel": "...", "jobDriver": {...}}`.
//! tether sets `clientToken` (required by the API) to its key, so AWS deduplicates a repeated
//! submission, and names the run `<name>-<key>` (within 64 characters), so that `find` lists
//! the virtual cluster's runs by that name (`ListJobRuns` with `name`).
//!
//! A coalesced sweep lists each virtual cluster's active runs created since the oldest asked
//! about (`ListJobRuns` with `states` and `createdAfter`).

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{json, Value};
use tether_provider::http::Idempotency;
use tether_provider::{Handle, Provider, ProviderError, RemoteStatus, SendGate, Sweep, Tracked};

use crate::{each_page, field, find_in_pages, keyed_name, path_segment, sweep, timestamp, Group};

const PROVIDER: &str = "emr-containers";
/// The longest run name (`ResourceNameString`).
const NAME_MAX: usize = 64;
/// The run states a sweep lists: the ones that still change.
const ACTIVE_STATES: [&str; 4] = ["PENDING", "SUBMITTED", "RUNNING", "CANCEL_PENDING"];

adapter! {
    /// The EMR on EKS adapter.
    EmrContainers
}

/// The run name carrying `key`.
pub fn run_name(name: Option<&str>, key: &str) -> String {
    keyed_name(name, key, NAME_MAX)
}

/// `[.\-_/#A-Za-z0-9]+`, as the model says.
fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_/#".contains(c))
}

fn run_path(handle: &Handle) -> Result<String, ProviderError> {
    let cluster = field(handle, "virtual_cluster_id", PROVIDER)?;
    let run = field(handle, "job_run_id", PROVIDER)?;
    Ok(format!(
        "/virtualclusters/{}/jobruns/{}",
        path_segment(&cluster),
        path_segment(&run)
    ))
}

/// A job run (from `DescribeJobRun` or `ListJobRuns`) as tether sees it, with
/// `failureReason: stateDetails` as the message.
fn run_status(run: &Value) -> RemoteStatus {
    let raw = run["state"].as_str().unwrap_or("").to_string();
    let message = crate::reason_message(run, "failureReason", "stateDetails");
    RemoteStatus {
        state: crate::state::emr_containers_run(&raw),
        raw_state: raw,
        message,
        url: None,
        next_poll_hint: None,
    }
}

impl EmrContainers {
    /// One page of `ListJobRuns` at `path` (the virtual cluster and any filters).
    async fn list_job_runs(
        &self,
        mut path: String,
        token: Option<String>,
    ) -> Result<Value, ProviderError> {
        if let Some(t) = token {
            path.push_str(&format!("&nextToken={}", path_segment(&t)));
        }
        self.client
            .rest(
                "ListJobRuns",
                Method::GET,
                &path,
                None,
                Idempotency::Idempotent,
            )
            .await
    }

    /// One virtual cluster's active runs created since the oldest asked about.
    async fn list_active(
        &self,
        group: Group,
    ) -> Result<(Vec<(usize, RemoteStatus)>, u64), ProviderError> {
        let mut found = Vec::new();
        let since = chrono::DateTime::from_timestamp_millis((group.since * 1000.0) as i64)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut base = format!(
            "/virtualclusters/{}/jobruns?maxResults=50&createdAfter={}",
            path_segment(&group.parent),
            path_segment(&since)
        );
        for state in ACTIVE_STATES {
            base.push_str(&format!("&states={state}"));
        }
        let list = |token| self.list_job_runs(base.clone(), token);
        let calls = each_page("jobRuns", "nextToken", list, |run| {
            if let Some(&i) = run["id"].as_str().and_then(|id| group.wanted.get(id)) {
                found.push((i, run_status(run)));
            }
            true
        })
        .await?;
        Ok((found, calls))
    }
}

#[async_trait]
impl Provider for EmrContainers {
    fn kind(&self) -> &'static str {
        PROVIDER
    }

    fn validate_spec(&self, spec: &Value) -> Result<(), ProviderError> {
        let refuse = |why: String| Err(ProviderError::invalid_spec(PROVIDER, why));
        let text = |k: &str| {
            spec.get(k)
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty())
        };
        if !spec.is_object() || !text("virtualClusterId") {
            return refuse(
                "the job spec must be a StartJobRun body plus virtualClusterId".to_string(),
            );
        }
        if !(spec.get("jobTemplateId").is_some()
            || (text("executionRoleArn") && text("releaseLabel") && spec["jobDriver"].is_object()))
        {
            return refuse(
                "the job spec needs executionRoleArn, releaseLabel and jobDriver (or a jobTemplateId)"
                    .to_string(),
            );
        }
        if spec.get("clientToken").is_some() {
            return refuse("clientToken must be absent: tether sets it to its key".to_string());
        }
        match spec.get("name") {
            None => Ok(()),
            Some(Value::String(n)) if name_ok(n) => Ok(()),
            Some(other) => refuse(format!(
                "name {other} must hold only letters, digits and . - _ / # (tether appends its key)"
            )),
        }
    }

    /// <https://docs.aws.amazon.com/emr-on-eks/latest/APIReference/API_StartJobRun.html>
    async fn submit(
        &self,
        spec: &Value,
        key: &str,
        // `clientToken` makes the submit idempotent: it may be repeated without a gate.
        _gate: &dyn SendGate,
    ) -> Result<Handle, ProviderError> {
        self.validate_spec(spec)?;
        let cluster = spec["virtualClusterId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut body = spec.clone();
        let obj = body.as_object_mut().expect("validated");
        obj.remove("virtualClusterId");
        obj.insert("clientToken".into(), json!(key));
        obj.insert(
            "name".into(),
            json!(run_name(spec.get("name").and_then(Value::as_str), key)),
        );
        let path = format!("/virtualclusters/{}/jobruns", path_segment(&cluster));
        let out = self
            .client
            .rest(
                "StartJobRun",
                Method::POST,
                &path,
                Some(&body),
                Idempotency::Idempotent,
            )
            .await?;
        let run = out["id"].as_str().ok_or_else(|| {
            ProviderError::transient(PROVIDER, format!("StartJobRun: no id in the answer: {out}"))
        })?;
        Ok(Handle::new(
            json!({"virtual_cluster_id": cluster, "job_run_id": run}),
        ))
    }

    fn submit_is_idempotent(&self) -> bool {
        true
    }

    /// <https://docs.aws.amazon.com/emr-on-eks/latest/APIReference/API_DescribeJobRun.html>
    async fn status(&self, handle: &Handle) -> Result<RemoteStatus, ProviderError> {
        let out = self
            .client
            .rest(
                "DescribeJobRun",
                Method::GET,
                &run_path(handle)?,
                None,
                Idempotency::Idempotent,
            )
            .await?;
        Ok(run_status(&out["jobRun"]))
    }

    /// <https://docs.aws.amazon.com/emr-on-eks/latest/APIReference/API_CancelJobRun.html>
    async fn cancel(&self, handle: &Handle) -> Result<(), ProviderError> {
        self.client
            .rest(
                "CancelJobRun",
                Method::DELETE,
                &run_path(handle)?,
                None,
                Idempotency::Idempotent,
            )
            .await?;
        Ok(())
    }

    /// Lists the virtual cluster's runs with the key's name (`ListJobRuns` with `name`).
    async fn find(
        &self,
        key: &str,
        spec: &Value,
        _intent_ms: i64,
    ) -> Result<Vec<Handle>, ProviderError> {
        let Some(cluster) = spec.get("virtualClusterId").and_then(Value::as_str) else {
            return Ok(Vec::new());
        };
        let wanted = run_name(spec.get("name").and_then(Value::as_str), key);
        let list = |token| {
            let path = format!(
                "/virtualclusters/{}/jobruns?maxResults=50&name={}",
                path_segment(cluster),
                path_segment(&wanted)
            );
            self.list_job_runs(path, token)
        };
        find_in_pages(
            self.config.find_max_pages,
            "jobRuns",
            "nextToken",
            list,
            |run| {
                (run["name"].as_str() == Some(wanted.as_str())).then(|| {
                    (
                        Handle::new(
                            json!({"virtual_cluster_id": cluster, "job_run_id": run["id"]}),
                        ),
                        timestamp(&run["createdAt"]),
                    )
                })
            },
        )
        .await
    }

    /// `ListJobRuns` of each virtual cluster, for its active runs.
    async fn status_many(&self, jobs: &[Tracked<'_>]) -> Result<Sweep, ProviderError> {
        sweep(jobs, (Some("virtual_cluster_id"), "job_run_id"), |g| {
            self.list_active(g)
        })
        .await
    }

    adapter_settings!();
}
