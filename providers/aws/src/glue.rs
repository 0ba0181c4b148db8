//! Glue job runs (JSON 1.1, `AWSGlue.<Operation>`), a kit description.
//!
//! A job spec is the `StartJobRun` body: `{"JobName": "...", "Arguments": {...}, ...}`.
//! `StartJobRun` has no idempotency token, so tether adds the run argument `--tether-key`
//! and `find` lists the job's runs (`GetJobRuns`) for it. A coalesced sweep lists each Glue
//! job's runs (`GetJobRuns`, 200 a page, newest first) until every run asked about is seen or
//! the runs are older than the oldest asked about; `GetJobRuns` has no state filter, so it
//! also reports finished runs, which the engine confirms singly.
//!
//! <https://docs.aws.amazon.com/glue/latest/webapi/API_StartJobRun.html>, `API_GetJobRun.html`,
//! `API_BatchStopJobRun.html`, `API_GetJobRuns.html`.

use serde_json::{json, Value};
use tether_provider::{Handle, ProviderError, RemoteStatus};

use crate::kit::{
    answered, handle_pair, text, About, Call, JobApi, Kit, Listing, Protocol, Start, SweepBy,
};
use crate::timestamp;

const PROVIDER: &str = "glue";
const TARGET: &str = "AWSGlue";
/// The run argument that carries tether's key.
pub const KEY_ARGUMENT: &str = "--tether-key";

/// The Glue adapter.
pub type Glue = Kit<GlueRuns>;

/// Glue job runs, as the kit runs them.
#[derive(Debug, Default)]
pub struct GlueRuns;

/// A job run (from `GetJobRun` or `GetJobRuns`) as tether sees it.
fn run_status(run: &Value) -> RemoteStatus {
    let raw = run["JobRunState"].as_str().unwrap_or("").to_string();
    let message = text(&run["ErrorMessage"]).map(str::to_string);
    RemoteStatus::new(crate::state::glue_run(&raw), raw, message)
}

/// `GetJobRuns` of the Glue job `job`, 200 runs a page, newest first.
fn job_runs(job: &str) -> Listing {
    Listing {
        call: Call::rpc("GetJobRuns", json!({"JobName": job, "MaxResults": 200})),
        items: "JobRuns",
        next: "NextToken",
    }
}

/// The handle's Glue job and run id.
fn run_of(handle: &Handle) -> Result<(String, String), ProviderError> {
    handle_pair(handle, ("job_name", "job_run_id"), PROVIDER)
}

impl JobApi for GlueRuns {
    fn about(&self) -> About {
        About::new(
            PROVIDER,
            Protocol::Json11(TARGET),
            Start::Gated,
            "job_run_id",
        )
    }

    fn check(&self, spec: &Value) -> Result<(), String> {
        let ok =
            text(&spec["JobName"]).is_some() && spec.get("Arguments").is_none_or(Value::is_object);
        if ok {
            Ok(())
        } else {
            Err("the job spec must be a StartJobRun body with JobName (and Arguments, if any, an object)".into())
        }
    }

    fn start(&self, spec: &Value, key: &str) -> Call {
        let mut body = spec.clone();
        if body.get("Arguments").is_none() {
            body["Arguments"] = json!({});
        }
        body["Arguments"][KEY_ARGUMENT] = json!(key);
        Call::rpc("StartJobRun", body)
    }

    fn started(&self, spec: &Value, _key: &str, answer: &Value) -> Result<Value, ProviderError> {
        let run = answered(PROVIDER, "StartJobRun", answer, "/JobRunId")?;
        Ok(json!({"job_name": spec["JobName"], "job_run_id": run}))
    }

    fn describe(&self, handle: &Handle) -> Result<Call, ProviderError> {
        let (job, run) = run_of(handle)?;
        Ok(Call::rpc(
            "GetJobRun",
            json!({"JobName": job, "RunId": run}),
        ))
    }

    fn status(&self, _handle: &Handle, answer: &Value) -> Result<RemoteStatus, ProviderError> {
        Ok(run_status(&answer["JobRun"]))
    }

    fn stop(&self, handle: &Handle) -> Result<Call, ProviderError> {
        let (job, run) = run_of(handle)?;
        Ok(Call::rpc(
            "BatchStopJobRun",
            json!({"JobName": job, "JobRunIds": [run]}),
        ))
    }

    /// `BatchStopJobRun` answers 200 with the runs it could not stop in `Errors`.
    fn stopped(&self, answer: &Value) -> Result<(), String> {
        match answer["Errors"].as_array().and_then(|e| e.first()) {
            Some(err) => Err(err["ErrorDetail"].to_string()),
            None => Ok(()),
        }
    }

    /// The job's runs, for one whose `--tether-key` argument is the key.
    fn find(&self, spec: &Value, _key: &str) -> Option<Listing> {
        spec.get("JobName").and_then(Value::as_str).map(job_runs)
    }

    fn found(&self, spec: &Value, key: &str, run: &Value) -> Option<(Value, Option<f64>)> {
        (run["Arguments"][KEY_ARGUMENT].as_str() == Some(key)).then(|| {
            (
                json!({"job_name": spec["JobName"], "job_run_id": run["Id"]}),
                timestamp(&run["StartedOn"]),
            )
        })
    }

    fn sweep_by(&self) -> Option<SweepBy> {
        Some(SweepBy::List {
            parent: Some("job_name"),
            id: "job_run_id",
        })
    }

    fn sweep_list(&self, job: &str, _since: f64) -> Option<Listing> {
        Some(job_runs(job))
    }

    fn listed(&self, run: &Value) -> Option<(String, RemoteStatus)> {
        Some((run["Id"].as_str()?.to_string(), run_status(run)))
    }

    fn past(&self, run: &Value, since: f64) -> bool {
        timestamp(&run["StartedOn"]).is_some_and(|t| t < since)
    }
}
