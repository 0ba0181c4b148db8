//! The Amazon EMR on EKS part of the simulator: `StartJobRun`, `DescribeJobRun`,
//! `ListJobRuns` and `CancelJobRun` (REST JSON under `/virtualclusters/{id}/jobruns`), as
//! botocore's `emr-containers` model and the API reference describe them: `clientToken` is
//! required and deduplicates a repeated start.

use axum::http::Method;
use serde_json::{json, Value};

use super::service::{Request, ServiceSim};
use super::{
    bad, list_page, new_job, not_found, page_answer, sample_name, Inner, OpResult, Query, SimJob,
};
use crate::config::Service;

/// The EMR on EKS part of the simulator.
pub(super) struct JobRuns;

impl ServiceSim for JobRuns {
    /// "EMR Job Run State Change": the run as `DescribeJobRun` answers it.
    fn event_detail(&self, j: &SimJob) -> Option<Value> {
        let mut run = run_json(j);
        run["createdAt"] = json!(super::events::iso(j.created_at));
        Some(run)
    }

    fn sample_spec(&self, name: &str) -> Value {
        let name = sample_name(name, |c| c.is_ascii_alphanumeric() || "._-".contains(c));
        json!({"virtualClusterId": "simvirtualcluster", "name": name,
            "executionRoleArn": "arn:aws:iam::000000000000:role/emr-eks", "releaseLabel": "emr-7.2.0-latest",
            "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "s3://sim/job.py"}}})
    }

    /// What a lying list says: completed.
    fn lie_success(&self, entry: &mut Value) {
        entry["state"] = json!("COMPLETED");
        if let Some(o) = entry.as_object_mut() {
            o.remove("failureReason");
            o.remove("stateDetails");
        }
    }

    fn call(&self, inner: &mut Inner, request: &Request, input: &Value) -> OpResult {
        route(inner, request.method, request.path, request.query, input)
    }
}

fn run_json(j: &SimJob) -> Value {
    let mut run = json!({"id": j.id, "name": j.name, "virtualClusterId": j.parent,
        "arn": format!("arn:aws:emr-containers:us-east-1:000000000000:/virtualclusters/{}/jobruns/{}", j.parent, j.id),
        "state": j.state(), "clientToken": j.arguments["clientToken"], "createdAt": j.created_at,
        "releaseLabel": "emr-7.2.0-latest"});
    if j.state() == "FAILED" {
        run["failureReason"] = json!("USER_ERROR");
        run["stateDetails"] = json!("simulated job run failure");
    }
    run
}

/// One EMR on EKS request: `method` on `path` (with `query`) and the JSON `input`.
fn route(inner: &mut Inner, method: &Method, path: &str, query: &str, input: &Value) -> OpResult {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let find = |inner: &Inner, cluster: &str, id: &str| {
        inner.lookup(id).filter(|&i| {
            inner.jobs[i].service == Service::EmrContainers && inner.jobs[i].parent == cluster
        })
    };
    match (method.as_str(), parts.as_slice()) {
        ("POST", ["virtualclusters", cluster, "jobruns"]) => start_job_run(inner, cluster, input),
        ("GET", ["virtualclusters", cluster, "jobruns", id]) => {
            inner.stats.status_requests += 1;
            match find(inner, cluster, id) {
                Some(i) => {
                    inner.jobs[i].last_seen = Some(std::time::Instant::now());
                    Ok(json!({ "jobRun": run_json(&inner.jobs[i]) }))
                }
                None => Err(not_found(format!("Job run {id} doesn't exist."))),
            }
        }
        ("GET", ["virtualclusters", cluster, "jobruns"]) => list_job_runs(inner, cluster, query),
        ("DELETE", ["virtualclusters", cluster, "jobruns", id]) => match find(inner, cluster, id) {
            Some(i) => {
                let j = &mut inner.jobs[i];
                if !j.finished() {
                    j.cancel();
                    inner.harness.counters.cancelled();
                }
                Ok(json!({"id": id, "virtualClusterId": cluster}))
            }
            None => Err(bad(
                "ValidationException",
                format!("Job run {id} doesn't exist."),
            )),
        },
        _ => Err(not_found(format!("no route {method} {path}"))),
    }
}

/// `StartJobRun`: `clientToken` is required and deduplicates within the virtual cluster; the
/// name is checked against the model's pattern.
fn start_job_run(inner: &mut Inner, cluster: &str, input: &Value) -> OpResult {
    let token = input["clientToken"].as_str().unwrap_or("").to_string();
    let name = input["name"].as_str().unwrap_or("").to_string();
    if token.is_empty() || token.len() > 64 {
        return Err(bad(
            "ValidationException",
            "clientToken is required (1 to 64 characters)".into(),
        ));
    }
    if name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_/#".contains(c))
    {
        return Err(bad(
            "ValidationException",
            format!("name '{name}' must match [\\.\\-_/#A-Za-z0-9]+ within 64 characters"),
        ));
    }
    let scope = format!("emr-containers/{cluster}");
    let id = inner.once_per_token(scope, &token, |inner| {
        let id = format!("000000sim{:010}", inner.jobs.len() + 1);
        let arguments = json!({ "clientToken": token });
        new_job(
            inner,
            Service::EmrContainers,
            id.clone(),
            cluster,
            &name,
            arguments,
            &token,
        );
        id
    });
    Ok(json!({"id": id, "name": name, "virtualClusterId": cluster,
        "arn": format!("arn:aws:emr-containers:us-east-1:000000000000:/virtualclusters/{cluster}/jobruns/{id}")}))
}

/// `ListJobRuns` of a virtual cluster: by states, `createdAfter` and name, a page at a time.
fn list_job_runs(inner: &mut Inner, cluster: &str, query: &str) -> OpResult {
    let query = Query::parse(query);
    let states = query.all("states");
    let after = query.time("createdAfter")?;
    let name = query.get("name");
    let (runs, next) = list_page(
        inner,
        Service::EmrContainers,
        cluster,
        query.get("nextToken"),
        query.size()?,
        |j| {
            (states.is_empty() || states.contains(&j.state()))
                && after.is_none_or(|a| j.created_at >= a)
                && name.is_none_or(|n| j.name == n)
        },
        run_json,
    )?;
    page_answer("jobRuns", runs, "nextToken", next)
}
