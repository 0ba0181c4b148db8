//! EMR Serverless job runs (REST JSON, SigV4 service `emr-serverless`).
//!
//! A job spec is the `StartJobRun` body plus `applicationId`:
//! `{"applicationId": "...", "executionRoleArn": "...", "jobDriver": {...}, ...}`. tether sets
//! `clientToken` to its key, so AWS deduplicates a repeated submission, and names the run
//! `<name> [<key>]` so that `find` can list it.

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{json, Value};
use tether_provider::http::Idempotency;
use tether_provider::{Handle, Provider, ProviderError, RemoteStatus, SendGate, Sweep, Tracked};

use crate::{each_page, field, find_in_pages, path_segment, sweep, tagged_name, timestamp, Group};

const PROVIDER: &str = "emr-serverless";

adapter! {
    /// The EMR Serverless adapter.
    EmrServerless
}

fn run_path(handle: &Handle) -> Result<String, ProviderError> {
    let app = field(handle, "application_id", PROVIDER)?;
    let run = field(handle, "job_run_id", PROVIDER)?;
    Ok(format!(
        "/applications/{}/jobruns/{}",
        path_segment(&app),
        path_segment(&run)
    ))
}

/// The job run states a sweep lists: the ones that still change.
const ACTIVE_STATES: [&str; 6] = [
    "SUBMITTED",
    "PENDING",
    "SCHEDULED",
    "RUNNING",
    "CANCELLING",
    "QUEUED",
];

/// A job run (from `GetJobRun` or `ListJobRuns`) as tether sees it.
fn run_status(run: &Value) -> RemoteStatus {
    let raw = run["state"].as_str().unwrap_or("").to_string();
    let message = run["stateDetails"]
        .as_str()
        .filter(|m| !m.is_empty())
        .map(str::to_string);
    RemoteStatus {
        state: crate::state::emr_serverless_run(&raw),
        raw_state: raw,
        message,
        url: None,
        next_poll_hint: None,
    }
}

impl EmrServerless {
    /// One page of `ListJobRuns` at `path` (the application and any filters), from `token`.
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

    /// One application's active job runs created since the oldest asked about
    /// (`ListJobRuns` with `states` and `createdAtAfter`, 50 a page).
    async fn list_active(
        &self,
        group: Group,
    ) -> Result<(Vec<(usize, RemoteStatus)>, u64), ProviderError> {
        let mut found = Vec::new();
        let since = chrono::DateTime::from_timestamp_millis((group.since * 1000.0) as i64)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut base = format!(
            "/applications/{}/jobruns?maxResults=50&createdAtAfter={}",
            path_segment(&group.parent),
            path_segment(&since)
        );
        for state in ACTIVE_STATES {
            base.push_str(&format!("&states={state}"));
        }
        let list = |token| self.list_job_runs(base.clone(), token);
        let calls = each_page("jobRuns", "nextToken", list, |run| {
            let id = run["id"].as_str().or(run["jobRunId"].as_str());
            if let Some(&i) = id.and_then(|id| group.wanted.get(id)) {
                found.push((i, run_status(run)));
            }
            true
        })
        .await?;
        Ok((found, calls))
    }
}

#[async_trait]
impl Provider for EmrServerless {
    fn kind(&self) -> &'static str {
        PROVIDER
    }

    fn validate_spec(&self, spec: &Value) -> Result<(), ProviderError> {
        let ok = spec
            .get("applicationId")
            .and_then(Value::as_str)
            .is_some_and(|a| !a.is_empty())
            && spec
                .get("executionRoleArn")
                .and_then(Value::as_str)
                .is_some()
            && spec.get("jobDriver").is_some_and(Value::is_object)
            && spec.get("clientToken").is_none();
        if ok {
            Ok(())
        } else {
            Err(ProviderError::invalid_spec(PROVIDER, "the job spec must hold applicationId, executionRoleArn and jobDriver (and no clientToken: tether sets it)"))
        }
    }

    /// <https://docs.aws.amazon.com/emr-serverless/latest/APIReference/API_StartJobRun.html>
    async fn submit(
        &self,
        spec: &Value,
        key: &str,
        // `clientToken` makes the submit idempotent: it may be repeated without a gate.
        _gate: &dyn SendGate,
    ) -> Result<Handle, ProviderError> {
        self.validate_spec(spec)?;
        let app = spec["applicationId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut body = spec.clone();
        let obj = body.as_object_mut().expect("validated");
        obj.remove("applicationId");
        obj.insert("clientToken".into(), json!(key));
        obj.insert(
            "name".into(),
            json!(tagged_name(spec.get("name").and_then(Value::as_str), key)),
        );
        let path = format!("/applications/{}/jobruns", path_segment(&app));
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
        let run = out["jobRunId"].as_str().ok_or_else(|| {
            ProviderError::transient(
                PROVIDER,
                format!("StartJobRun: no jobRunId in the answer: {out}"),
            )
        })?;
        Ok(Handle::new(
            json!({"application_id": app, "job_run_id": run}),
        ))
    }

    fn submit_is_idempotent(&self) -> bool {
        true
    }

    /// <https://docs.aws.amazon.com/emr-serverless/latest/APIReference/API_GetJobRun.html>
    async fn status(&self, handle: &Handle) -> Result<RemoteStatus, ProviderError> {
        let out = self
            .client
            .rest(
                "GetJobRun",
                Method::GET,
                &run_path(handle)?,
                None,
                Idempotency::Idempotent,
            )
            .await?;
        Ok(run_status(&out["jobRun"]))
    }

    /// <https://docs.aws.amazon.com/emr-serverless/latest/APIReference/API_CancelJobRun.html>
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

    /// Lists the application's job runs (`ListJobRuns`, paged by `nextToken`) for one named
    /// with the key.
    async fn find(
        &self,
        key: &str,
        spec: &Value,
        _intent_ms: i64,
    ) -> Result<Vec<Handle>, ProviderError> {
        let Some(app) = spec.get("applicationId").and_then(Value::as_str) else {
            return Ok(Vec::new());
        };
        let wanted = tagged_name(spec.get("name").and_then(Value::as_str), key);
        let list = |token| {
            let path = format!("/applications/{}/jobruns?maxResults=50", path_segment(app));
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
                        Handle::new(json!({"application_id": app, "job_run_id": run["id"]})),
                        timestamp(&run["createdAt"]),
                    )
                })
            },
        )
        .await
    }

    /// `ListJobRuns` of each application, for its active runs.
    /// <https://docs.aws.amazon.com/emr-serverless/latest/APIReference/API_ListJobRuns.html>
    async fn status_many(&self, jobs: &[Tracked<'_>]) -> Result<Sweep, ProviderError> {
        sweep(jobs, (Some("application_id"), "job_run_id"), |g| {
            self.list_active(g)
        })
        .await
    }

    adapter_settings!();
}
