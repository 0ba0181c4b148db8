//! The EMR Serverless part of the simulator: `StartJobRun`, `GetJobRun`, `ListJobRuns` and
//! `CancelJobRun` (REST JSON under `/applications/{id}/jobruns`), as botocore's
//! `emr-serverless` model and the API reference describe them. `StartJobRun` requires
//! `clientToken` and answers a repeated token of an application with its first run;
//! `ListJobRuns` filters by `states` and creation time, 50 runs a page at most.

use axum::http::Method;
use serde_json::{json, Value};

use super::service::{Request, ServiceSim};
use super::{
    bad, find_job, list_page, new_job, not_found, page_answer, Inner, OpResult, Query, SimJob,
};
use crate::config::Service;

/// The EMR Serverless part of the simulator.
pub(super) struct JobRuns;

impl ServiceSim for JobRuns {
    /// "EMR Serverless Job Run State Change": every state of a run.
    fn event_detail(&self, j: &SimJob) -> Option<Value> {
        let run = run_json(j);
        Some(
            json!({"jobRunId": j.id, "applicationId": j.parent, "arn": run["arn"],
            "releaseLabel": "emr-6.6.0", "state": run["state"],
            "createdAt": super::events::iso(j.created_at)}),
        )
    }

    fn sample_spec(&self, name: &str) -> Value {
        json!({"applicationId": "00simapp", "name": name,
            "executionRoleArn": "arn:aws:iam::000000000000:role/sim",
            "jobDriver": {"sparkSubmit": {"entryPoint": "s3://sim/job.py"}}})
    }

    fn lie_success(&self, entry: &mut Value) {
        entry["state"] = json!("SUCCESS");
    }

    fn call(&self, inner: &mut Inner, request: &Request, input: &Value) -> OpResult {
        route(inner, request.method, request.path, request.query, input)
    }
}

/// One request: routed by its method and path.
fn route(inner: &mut Inner, method: &Method, path: &str, query: &str, input: &Value) -> OpResult {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("POST", ["applications", app, "jobruns"]) => start_job_run(inner, app, input),
        ("GET", ["applications", app, "jobruns", id]) => {
            inner.stats.status_requests += 1;
            match find_job(inner, Service::EmrServerless, app, id) {
                Some(j) => Ok(json!({ "jobRun": run_json(j) })),
                None => Err(not_found(format!("Job run {id} does not exist"))),
            }
        }
        ("GET", ["applications", app, "jobruns"]) => list_job_runs(inner, app, query),
        ("DELETE", ["applications", app, "jobruns", id]) => cancel_job_run(inner, app, id),
        _ => Err(not_found(format!("no route {method} {path}"))),
    }
}

/// A run as `GetJobRun` and `ListJobRuns` answer it.
fn run_json(j: &SimJob) -> Value {
    let details = if j.state() == "FAILED" {
        "simulated job run failure"
    } else {
        ""
    };
    json!({"applicationId": j.parent, "jobRunId": j.id, "id": j.id, "name": j.name, "state": j.state(), "stateDetails": details, "createdAt": j.created_at,
           "arn": format!("arn:aws:emr-serverless:us-east-1:000000000000:/applications/{}/jobruns/{}", j.parent, j.id)})
}

/// A new run, or the run an earlier start with the same token of the application made.
fn start_job_run(inner: &mut Inner, app: &str, input: &Value) -> OpResult {
    let token = input["clientToken"].as_str().unwrap_or("").to_string();
    if token.is_empty()
        || input["executionRoleArn"].as_str().is_none()
        || !input["jobDriver"].is_object()
    {
        return Err(bad(
            "ValidationException",
            "clientToken, executionRoleArn and jobDriver are required".into(),
        ));
    }
    let id = inner.once_per_token(app.to_string(), &token, |inner| {
        let id = format!("00sim{:012}", inner.jobs.len() + 1);
        let name = input["name"].as_str().unwrap_or("");
        new_job(
            inner,
            Service::EmrServerless,
            id.clone(),
            app,
            name,
            Value::Null,
            &token,
        );
        id
    });
    Ok(
        json!({"applicationId": app, "jobRunId": id, "arn": format!("arn:aws:emr-serverless:us-east-1:000000000000:/applications/{app}/jobruns/{id}")}),
    )
}

/// The application's runs, filtered by `states`, `createdAtAfter` and `createdAtBefore`.
fn list_job_runs(inner: &mut Inner, app: &str, query: &str) -> OpResult {
    let query = Query::parse(query);
    let states = query.all("states");
    let (after, before) = (
        query.time("createdAtAfter")?,
        query.time("createdAtBefore")?,
    );
    let (runs, next) = list_page(
        inner,
        Service::EmrServerless,
        app,
        query.get("nextToken"),
        query.size()?,
        |j| {
            (states.is_empty() || states.contains(&j.state()))
                && after.is_none_or(|a| j.created_at >= a)
                && before.is_none_or(|b| j.created_at <= b)
        },
        run_json,
    )?;
    page_answer("jobRuns", runs, "nextToken", next)
}

fn cancel_job_run(inner: &mut Inner, app: &str, id: &str) -> OpResult {
    match find_job(inner, Service::EmrServerless, app, id) {
        Some(j) => {
            if !j.finished() {
                j.cancel();
            }
            inner.harness.counters.cancelled();
            Ok(json!({"applicationId": app, "jobRunId": id}))
        }
        None => Err(not_found(format!("Job run {id} does not exist"))),
    }
}
