//! Glue job runs (JSON 1.1, `AWSGlue.<Operation>`).
//!
//! A job spec is the `StartJobRun` body: `{"JobName": "...", "Arguments": {...}, ...}`.
//! `StartJobRun` has no idempotency token, so tether adds the run argument `--tether-key`
//! and `find` lists the job's runs (`GetJobRuns`) for it.

use async_trait::async_trait;
use serde_json::{json, Value};
use tether_provider::http::Idempotency;
use tether_provider::{Handle, Provider, ProviderError, RemoteStatus, SendGate, Sweep, Tracked};

use crate::{each_page, field, find_in_pages, sweep, timestamp, Group};

const PROVIDER: &str = "glue";
const TARGET: &str = "AWSGlue";
/// The run argument that carries tether's key.
pub const KEY_ARGUMENT: &str = "--tether-key";

adapter! {
    /// The Glue adapter.
    Glue
}

/// A job run (from `GetJobRun` or `GetJobRuns`) as tether sees it.
fn run_status(run: &Value) -> RemoteStatus {
    let raw = run["JobRunState"].as_str().unwrap_or("").to_string();
    let message = run["ErrorMessage"]
        .as_str()
        .filter(|m| !m.is_empty())
        .map(str::to_string);
    RemoteStatus {
        state: crate::state::glue_run(&raw),
        raw_state: raw,
        message,
        url: None,
        next_poll_hint: None,
    }
}

impl Glue {
    /// One page of `GetJobRuns` (200 runs, newest first) of the Glue job `job`, from `token`.
    async fn get_job_runs(&self, job: &str, token: Option<String>) -> Result<Value, ProviderError> {
        let mut body = json!({"JobName": job, "MaxResults": 200});
        if let Some(t) = token {
            body["NextToken"] = json!(t);
        }
        self.client
            .json11(TARGET, "GetJobRuns", &body, Idempotency::Idempotent)
            .await
    }

    /// One Glue job's runs (`GetJobRuns`, 200 a page, newest first), until every run asked
    /// about is seen or the runs are older than the oldest asked about. `GetJobRuns` has no
    /// state filter, so it also reports finished runs: the engine confirms those singly.
    async fn list_runs(
        &self,
        group: Group,
    ) -> Result<(Vec<(usize, RemoteStatus)>, u64), ProviderError> {
        let mut found = Vec::new();
        let list = |token| self.get_job_runs(&group.parent, token);
        let calls = each_page("JobRuns", "NextToken", list, |run| {
            if let Some(&i) = run["Id"].as_str().and_then(|id| group.wanted.get(id)) {
                found.push((i, run_status(run)));
            }
            let older = timestamp(&run["StartedOn"]).is_some_and(|t| t < group.since);
            found.len() < group.wanted.len() && !older
        })
        .await?;
        Ok((found, calls))
    }
}

#[async_trait]
impl Provider for Glue {
    fn kind(&self) -> &'static str {
        PROVIDER
    }

    fn validate_spec(&self, spec: &Value) -> Result<(), ProviderError> {
        let ok = spec
            .get("JobName")
            .and_then(Value::as_str)
            .is_some_and(|j| !j.is_empty())
            && spec.get("Arguments").is_none_or(Value::is_object);
        if ok {
            Ok(())
        } else {
            Err(ProviderError::invalid_spec(PROVIDER, "the job spec must be a StartJobRun body with JobName (and Arguments, if any, an object)"))
        }
    }

    /// <https://docs.aws.amazon.com/glue/latest/webapi/API_StartJobRun.html>
    async fn submit(
        &self,
        spec: &Value,
        key: &str,
        gate: &dyn SendGate,
    ) -> Result<Handle, ProviderError> {
        self.validate_spec(spec)?;
        let mut body = spec.clone();
        if body.get("Arguments").is_none() {
            body["Arguments"] = json!({});
        }
        body["Arguments"][KEY_ARGUMENT] = json!(key);
        let out = self
            .client
            .json11(
                TARGET,
                "StartJobRun",
                &body,
                Idempotency::NotIdempotent(gate),
            )
            .await?;
        let run = out["JobRunId"].as_str().ok_or_else(|| {
            ProviderError::transient(
                PROVIDER,
                format!("StartJobRun: no JobRunId in the answer: {out}"),
            )
        })?;
        Ok(Handle::new(
            json!({"job_name": spec["JobName"], "job_run_id": run}),
        ))
    }

    fn submit_is_idempotent(&self) -> bool {
        false
    }

    /// <https://docs.aws.amazon.com/glue/latest/webapi/API_GetJobRun.html>
    async fn status(&self, handle: &Handle) -> Result<RemoteStatus, ProviderError> {
        let job = field(handle, "job_name", PROVIDER)?;
        let run = field(handle, "job_run_id", PROVIDER)?;
        let out = self
            .client
            .json11(
                TARGET,
                "GetJobRun",
                &json!({"JobName": job, "RunId": run}),
                Idempotency::Idempotent,
            )
            .await?;
        Ok(run_status(&out["JobRun"]))
    }

    /// <https://docs.aws.amazon.com/glue/latest/webapi/API_BatchStopJobRun.html>
    async fn cancel(&self, handle: &Handle) -> Result<(), ProviderError> {
        let job = field(handle, "job_name", PROVIDER)?;
        let run = field(handle, "job_run_id", PROVIDER)?;
        let out = self
            .client
            .json11(
                TARGET,
                "BatchStopJobRun",
                &json!({"JobName": job, "JobRunIds": [run]}),
                Idempotency::Idempotent,
            )
            .await?;
        match out["Errors"].as_array().and_then(|e| e.first()) {
            Some(err) => Err(ProviderError::permanent(
                PROVIDER,
                format!("BatchStopJobRun: {}", err["ErrorDetail"]),
            )),
            None => Ok(()),
        }
    }

    /// Lists the job's runs (`GetJobRuns`, paged by `NextToken`) for one whose `--tether-key`
    /// argument is the key.
    async fn find(
        &self,
        key: &str,
        spec: &Value,
        _intent_ms: i64,
    ) -> Result<Vec<Handle>, ProviderError> {
        let Some(job) = spec.get("JobName").and_then(Value::as_str) else {
            return Ok(Vec::new());
        };
        let list = |token| self.get_job_runs(job, token);
        find_in_pages(
            self.config.find_max_pages,
            "JobRuns",
            "NextToken",
            list,
            |run| {
                (run["Arguments"][KEY_ARGUMENT].as_str() == Some(key)).then(|| {
                    (
                        Handle::new(json!({"job_name": job, "job_run_id": run["Id"]})),
                        timestamp(&run["StartedOn"]),
                    )
                })
            },
        )
        .await
    }

    /// `GetJobRuns` of each Glue job.
    /// <https://docs.aws.amazon.com/glue/latest/webapi/API_GetJobRuns.html>
    async fn status_many(&self, jobs: &[Tracked<'_>]) -> Result<Sweep, ProviderError> {
        sweep(jobs, (Some("job_name"), "job_run_id"), |g| {
            self.list_runs(g)
        })
        .await
    }

    adapter_settings!();
}
