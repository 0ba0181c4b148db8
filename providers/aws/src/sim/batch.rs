//! The AWS Batch part of the simulator: `SubmitJob`, `DescribeJobs`, `ListJobs`,
//! `TerminateJob` and `CancelJob` (REST JSON under `/v1/`), as botocore's `batch` model and
//! the API reference describe them. Job names are not unique (a second `SubmitJob` with the
//! same name makes a second job, as on AWS); `ListJobs` with the `JOB_NAME` filter matches
//! names without regard to case (a trailing `*` matches a prefix) and lists every status.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::service::{Request, ServiceSim};
use super::{
    aws_error, bad, list_page, new_job, page_answer, page_size, sample_name, text, texts, Inner,
    OpResult, SimJob,
};
use crate::config::Service;

/// The Batch part of the simulator.
pub(super) struct Jobs;

impl ServiceSim for Jobs {
    /// "Batch Job State Change": the job as `DescribeJobs` answers it, for every status
    /// but the first ("Events aren't created for the initial job submission").
    fn event_detail(&self, j: &SimJob) -> Option<Value> {
        (j.state() != "SUBMITTED").then(|| detail(j))
    }

    fn sample_spec(&self, name: &str) -> Value {
        let name = sample_name(name, |c| c.is_ascii_alphanumeric() || c == '_');
        json!({"jobQueue": "sim-queue", "jobDefinition": "sim-job:1", "jobName": format!("j{name}"),
            "containerOverrides": {"command": ["python", "job.py"]}})
    }

    /// What a lying list says: succeeded.
    fn lie_success(&self, entry: &mut Value) {
        entry["status"] = json!("SUCCEEDED");
        if let Some(o) = entry.as_object_mut() {
            o.remove("statusReason");
            o.remove("isTerminated");
            o.remove("isCancelled");
        }
    }

    fn call(&self, inner: &mut Inner, request: &Request, input: &Value) -> OpResult {
        route(inner, request.method, request.path, input)
    }
}

fn arn(j: &SimJob) -> String {
    format!("arn:aws:batch:us-east-1:000000000000:job/{}", j.id)
}

fn ms(seconds: f64) -> i64 {
    (seconds * 1000.0) as i64
}

/// A job as `DescribeJobs` answers it (`JobDetail`).
fn detail(j: &SimJob) -> Value {
    let state = j.state();
    let mut job = json!({"jobArn": arn(j), "jobName": j.name, "jobId": j.id, "jobQueue": j.parent,
        "status": state, "createdAt": ms(j.created_at), "jobDefinition": j.arguments["jobDefinition"],
        "container": {"image": "public.ecr.aws/sim/job:latest", "vcpus": 1, "memory": 2048}});
    if matches!(state, "RUNNING" | "SUCCEEDED" | "FAILED") {
        job["startedAt"] = json!(ms(j.created_at + j.pending.as_secs_f64()));
    }
    if j.forced.is_none() && j.cancelled {
        job["statusReason"] = j.arguments["statusReason"].clone();
        if j.arguments["isCancelled"] == json!(true) {
            job["isCancelled"] = json!(true);
        } else {
            job["isTerminated"] = json!(true);
        }
    } else if state == "FAILED" {
        job["statusReason"] = json!("Essential container in task exited");
        job["container"]["exitCode"] = json!(1);
        job["container"]["reason"] = json!("simulated job failure");
    } else if state == "SUCCEEDED" {
        job["container"]["exitCode"] = json!(0);
    }
    job
}

/// A job as `ListJobs` answers it (`JobSummary`).
fn summary(j: &SimJob) -> Value {
    let d = detail(j);
    let mut s = json!({"jobArn": d["jobArn"], "jobId": d["jobId"], "jobName": d["jobName"],
        "createdAt": d["createdAt"], "status": d["status"], "jobDefinition": d["jobDefinition"]});
    if let Some(r) = d.get("statusReason") {
        s["statusReason"] = r.clone();
    }
    s
}

fn client_error(message: String) -> Box<axum::response::Response> {
    bad("ClientException", message)
}

/// A `JOB_NAME` filter value matches `name`: without regard to case, a trailing `*` for a
/// prefix.
fn name_matches(filter: &str, name: &str) -> bool {
    match filter.strip_suffix('*') {
        Some(prefix) => name
            .to_ascii_lowercase()
            .starts_with(&prefix.to_ascii_lowercase()),
        None => name.eq_ignore_ascii_case(filter),
    }
}

/// One Batch request: `method` on `path` with the JSON `input`.
fn route(inner: &mut Inner, method: &Method, path: &str, input: &Value) -> OpResult {
    if method != Method::POST {
        return Err(Box::new(aws_error(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            &format!("no route {method} {path}"),
        )));
    }
    match path {
        "/v1/submitjob" => submit_job(inner, input),
        "/v1/describejobs" => describe_jobs(inner, input),
        "/v1/listjobs" => list_jobs(inner, input),
        "/v1/terminatejob" | "/v1/canceljob" => stop_job(inner, path, input),
        _ => Err(Box::new(aws_error(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            &format!("no route POST {path}"),
        ))),
    }
}

/// `SubmitJob`: a new job named `jobName` in `jobQueue` every time (Batch deduplicates
/// nothing; tether finds a job whose answer was lost by its name, which holds the key).
fn submit_job(inner: &mut Inner, input: &Value) -> OpResult {
    let s = |k: &str| text(input, k);
    let (name, queue, definition) = (s("jobName"), s("jobQueue"), s("jobDefinition"));
    let name_ok = name.len() <= 128
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !name_ok {
        return Err(client_error(format!(
            "Error executing request, Exception : Job name {name:?} is invalid: up to 128 letters, numbers, hyphens and underscores, starting with a letter or number"
        )));
    }
    if queue.is_empty() || definition.is_empty() {
        return Err(client_error(
            "jobQueue and jobDefinition are required".into(),
        ));
    }
    let id = format!(
        "{:08x}-5e11-4a7b-9c0d-{:012x}",
        inner.jobs.len() + 1,
        inner.jobs.len() + 1
    );
    let extras = json!({"jobDefinition": definition});
    new_job(inner, Service::Batch, id.clone(), &queue, &name, extras, "");
    Ok(
        json!({"jobArn": format!("arn:aws:batch:us-east-1:000000000000:job/{id}"),
        "jobName": name, "jobId": id}),
    )
}

/// `DescribeJobs`: up to 100 jobs by id; unknown ids are left out.
fn describe_jobs(inner: &mut Inner, input: &Value) -> OpResult {
    let ids = texts(input, "jobs");
    let lie = inner
        .count_read(ids.len(), ("jobs", 100, "job ids"))
        .map_err(client_error)?;
    let many = ids.len() > 1;
    let mut jobs = Vec::new();
    let now = std::time::Instant::now();
    for id in ids {
        let Some(i) = inner.lookup(id) else {
            continue;
        };
        inner.jobs[i].last_seen = Some(now);
        let j = &inner.jobs[i];
        if j.service != Service::Batch || (many && j.hidden) {
            continue;
        }
        let mut d = detail(j);
        if lie {
            Jobs.lie_success(&mut d);
        }
        jobs.push(d);
    }
    Ok(json!({ "jobs": jobs }))
}

/// `ListJobs`: a queue's jobs by status, or by a `JOB_NAME` filter, a page at a time.
fn list_jobs(inner: &mut Inner, input: &Value) -> OpResult {
    let s = |k: &str| text(input, k);
    let queue = s("jobQueue");
    if queue.is_empty() {
        return Err(client_error(
            "jobQueue, arrayJobId or multiNodeJobId is required".into(),
        ));
    }
    let filters = input["filters"].as_array().cloned().unwrap_or_default();
    if filters.len() > 1 {
        return Err(client_error("only one filter can be used at a time".into()));
    }
    let name_filter = match filters.first() {
        None => None,
        Some(f) if f["name"] == "JOB_NAME" => {
            Some(f["values"][0].as_str().unwrap_or("").to_string())
        }
        Some(f) => {
            return Err(client_error(format!(
                "the simulator filters by JOB_NAME only, not {}",
                f["name"]
            )))
        }
    };
    let status = input["jobStatus"].as_str().unwrap_or("RUNNING").to_string();
    let max = if name_filter.is_some() { 100 } else { 1000 };
    let size = page_size(&input["maxResults"], max, max, "maxResults")?;
    let (jobs, next) = list_page(
        inner,
        Service::Batch,
        &queue,
        input["nextToken"].as_str(),
        size,
        |j| match &name_filter {
            Some(f) => name_matches(f, &j.name),
            None => j.state() == status,
        },
        summary,
    )?;
    page_answer("jobSummaryList", jobs, "nextToken", next)
}

/// `TerminateJob` (any job not finished) and `CancelJob` (one not started yet).
fn stop_job(inner: &mut Inner, path: &str, input: &Value) -> OpResult {
    let s = |k: &str| text(input, k);
    let (id, reason) = (s("jobId"), s("reason"));
    if reason.is_empty() {
        return Err(client_error("reason is required".into()));
    }
    let Some(i) = inner.lookup(&id) else {
        return Err(client_error(format!("Job {id} not found")));
    };
    let terminate = path == "/v1/terminatejob";
    let j = &mut inner.jobs[i];
    // CancelJob leaves a job that started alone (and still succeeds, as on AWS).
    let started = j.created.elapsed() >= j.pending;
    if j.service == Service::Batch && !j.finished() && (terminate || !started) {
        j.cancel();
        j.arguments["statusReason"] = json!(reason);
        if !terminate {
            j.arguments["isCancelled"] = json!(true);
        }
        inner.harness.counters.cancelled();
    }
    Ok(json!({}))
}
