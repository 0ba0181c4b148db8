//! The Glue part of the simulator: `StartJobRun`, `GetJobRun`, `GetJobRuns` and
//! `BatchStopJobRun` (JSON 1.1, `AWSGlue.<Operation>`), as botocore's `glue` model and the API
//! reference describe them: no idempotency token, runs listed newest first without a state
//! filter, and a batch stop that answers 200 with the runs it could not stop in `Errors`.

use serde_json::{json, Value};

use super::service::{Request, ServiceSim};
use super::{
    bad, find_job, list_page, new_job, page_answer, page_size, text, texts, Inner, OpResult, SimJob,
};
use crate::config::Service;

/// The Glue part of the simulator.
pub(super) struct Runs;

impl ServiceSim for Runs {
    /// "Glue Job State Change": a run's end only.
    fn event_detail(&self, j: &SimJob) -> Option<Value> {
        let state = j.state();
        let (severity, message) = match state {
            "SUCCEEDED" => ("INFO", "Job run succeeded"),
            "STOPPED" => ("INFO", "Job run stopped"),
            "FAILED" | "TIMEOUT" => ("ERROR", "simulated job failure"),
            _ => return None,
        };
        Some(
            json!({"jobName": j.parent, "severity": severity, "state": state,
            "jobRunId": j.id, "message": message}),
        )
    }

    fn sample_spec(&self, name: &str) -> Value {
        json!({"JobName": "sim-glue", "Arguments": {"--task": name}})
    }

    fn lie_success(&self, entry: &mut Value) {
        entry["JobRunState"] = json!("SUCCEEDED");
    }

    fn call(&self, inner: &mut Inner, request: &Request, input: &Value) -> OpResult {
        route(inner, request.op(), input)
    }
}

/// One Glue operation.
fn route(inner: &mut Inner, op: &str, input: &Value) -> OpResult {
    match op {
        "StartJobRun" => start_job_run(inner, input),
        "GetJobRun" => get_job_run(inner, input),
        "GetJobRuns" => get_job_runs(inner, input),
        "BatchStopJobRun" => batch_stop_job_run(inner, input),
        other => Err(bad(
            "UnknownOperationException",
            format!("unknown operation AWSGlue.{other}"),
        )),
    }
}

/// A run as `GetJobRun` and `GetJobRuns` answer it.
fn run_json(j: &SimJob) -> Value {
    let mut run = json!({"Id": j.id, "JobName": j.parent, "JobRunState": j.state(), "Arguments": j.arguments, "StartedOn": j.created_at});
    if j.state() == "FAILED" {
        run["ErrorMessage"] = json!("simulated job failure");
    }
    run
}

fn start_job_run(inner: &mut Inner, input: &Value) -> OpResult {
    let job = text(input, "JobName");
    if job.is_empty() {
        return Err(bad("InvalidInputException", "JobName is required".into()));
    }
    let id = format!("jr_sim{:032}", inner.jobs.len() + 1);
    let args = input.get("Arguments").cloned().unwrap_or(json!({}));
    Ok(json!({"JobRunId": new_job(inner, Service::Glue, id, &job, "", args, "")}))
}

fn get_job_run(inner: &mut Inner, input: &Value) -> OpResult {
    inner.stats.status_requests += 1;
    let (job, run) = (text(input, "JobName"), text(input, "RunId"));
    match find_job(inner, Service::Glue, &job, &run) {
        Some(j) => Ok(json!({ "JobRun": run_json(j) })),
        None => Err(bad(
            "EntityNotFoundException",
            format!("Job run {run} of job {job} not found"),
        )),
    }
}

/// The job's runs, newest first, up to `MaxResults` (200 at most) a page.
fn get_job_runs(inner: &mut Inner, input: &Value) -> OpResult {
    let job = text(input, "JobName");
    let size = page_size(&input["MaxResults"], 100, 200, "MaxResults")?;
    let (runs, next) = list_page(
        inner,
        Service::Glue,
        &job,
        input["NextToken"].as_str(),
        size,
        |_| true,
        run_json,
    )?;
    page_answer("JobRuns", runs, "NextToken", next)
}

fn batch_stop_job_run(inner: &mut Inner, input: &Value) -> OpResult {
    let job = text(input, "JobName");
    let (mut ok, mut errors) = (vec![], vec![]);
    for id in texts(input, "JobRunIds") {
        match find_job(inner, Service::Glue, &job, id) {
            Some(j) if !j.finished() => {
                j.cancel();
                inner.harness.counters.cancelled();
                ok.push(json!({"JobName": job, "JobRunId": id}));
            }
            _ => errors.push(json!({"JobName": job, "JobRunId": id, "ErrorDetail": {"ErrorCode": "InvalidInputException", "ErrorMessage": "run is not running"}})),
        }
    }
    Ok(json!({"SuccessfulSubmissions": ok, "Errors": errors}))
}
