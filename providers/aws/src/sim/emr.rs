//! The EMR on EC2 part of the simulator: `AddJobFlowSteps`, `DescribeStep`, `ListSteps` and
//! `CancelSteps` (JSON 1.1, `ElasticMapReduce.<Operation>`), as botocore's `emr` model and the
//! API reference describe them. A cluster keeps the records of its last 1,000 steps: older
//! ones are removed ("After 1,000 steps have been added to a cluster, the submission of
//! additional steps causes the removal of older, user-submitted step records").

use serde_json::{json, Value};

use super::service::{Request, ServiceSim};
use super::{bad, find_job, list_page, new_job, page_answer, text, texts, Inner, OpResult, SimJob};
use crate::config::Service;

/// The steps whose records a cluster keeps: "After 1,000 steps have been added to a cluster,
/// the submission of additional steps causes the removal of older, user-submitted step
/// records."
const EMR_STEP_RECORDS: usize = 1000;

/// The EMR on EC2 part of the simulator.
pub(super) struct Steps;

impl ServiceSim for Steps {
    /// "EMR Step Status Change": documented for every step state but INTERRUPTED.
    fn event_detail(&self, j: &SimJob) -> Option<Value> {
        let state = j.state();
        let severity = match state {
            "INTERRUPTED" => return None,
            "FAILED" => "ERROR",
            "CANCEL_PENDING" | "CANCELLED" => "WARN",
            _ => "INFO",
        };
        Some(
            json!({"severity": severity, "actionOnFailure": "CONTINUE", "stepId": j.id,
            "name": j.name, "clusterId": j.parent, "state": state,
            "message": format!("Step {} ({}) in Amazon EMR cluster {} is {state}.", j.id, j.name, j.parent)}),
        )
    }

    fn sample_spec(&self, name: &str) -> Value {
        json!({"cluster_id": "j-SIMCLUSTER", "step": {"Name": name,
            "HadoopJarStep": {"Jar": "command-runner.jar",
                "Args": ["spark-submit", "s3://sim/job.py"]}}})
    }

    fn lie_success(&self, entry: &mut Value) {
        entry["Status"]["State"] = json!("COMPLETED");
    }

    fn call(&self, inner: &mut Inner, request: &Request, input: &Value) -> OpResult {
        route(inner, request.op(), input)
    }
}

/// One EMR operation.
fn route(inner: &mut Inner, op: &str, input: &Value) -> OpResult {
    match op {
        "AddJobFlowSteps" => add_job_flow_steps(inner, input),
        "DescribeStep" => describe_step(inner, input),
        "ListSteps" => list_steps(inner, input),
        "CancelSteps" => cancel_steps(inner, input),
        other => Err(bad(
            "UnknownOperationException",
            format!("unknown operation ElasticMapReduce.{other}"),
        )),
    }
}

/// A step as `DescribeStep` and `ListSteps` answer it.
fn step_json(j: &SimJob) -> Value {
    let mut status = json!({"State": j.state(), "Timeline": {"CreationDateTime": j.created_at}});
    if j.state() == "FAILED" {
        status["FailureDetails"] = json!({"Reason": "Unknown Error", "Message": "simulated step failure", "LogFile": format!("s3://logs/{}/steps/{}/", j.parent, j.id)});
    }
    json!({"Id": j.id, "Name": j.name, "Status": status})
}

/// Removes the records of the cluster's steps older than its last 1,000.
fn evict_old_steps(inner: &mut Inner, cluster: &str) {
    let Some(positions) = inner.by_parent.get(&(Service::Emr, cluster.to_string())) else {
        return;
    };
    let old = positions.len().saturating_sub(EMR_STEP_RECORDS);
    // Newest first, down to the first one removed before.
    for &i in positions[..old].iter().rev() {
        if inner.jobs[i].evicted {
            break;
        }
        inner.jobs[i].evicted = true;
    }
}

/// Adds the steps to the cluster: no idempotency token, a repeat adds more steps.
fn add_job_flow_steps(inner: &mut Inner, input: &Value) -> OpResult {
    let cluster = text(input, "JobFlowId");
    if !cluster.starts_with("j-") {
        return Err(bad(
            "ValidationException",
            format!("Cluster id '{cluster}' is not valid."),
        ));
    }
    let steps = input["Steps"].as_array().cloned().unwrap_or_default();
    if steps.is_empty() {
        return Err(bad("ValidationException", "Steps must not be empty".into()));
    }
    let ids: Vec<String> = steps
        .iter()
        .map(|step| {
            let id = format!("s-SIM{:08}", inner.jobs.len() + 1);
            new_job(
                inner,
                Service::Emr,
                id,
                &cluster,
                step["Name"].as_str().unwrap_or(""),
                Value::Null,
                "",
            )
        })
        .collect();
    evict_old_steps(inner, &cluster);
    Ok(json!({ "StepIds": ids }))
}

fn describe_step(inner: &mut Inner, input: &Value) -> OpResult {
    inner.stats.status_requests += 1;
    let (cluster, step) = (text(input, "ClusterId"), text(input, "StepId"));
    match find_job(inner, Service::Emr, &cluster, &step) {
        Some(j) => Ok(json!({ "Step": step_json(j) })),
        None => Err(bad(
            "InvalidRequestException",
            format!("Step id '{step}' does not exist."),
        )),
    }
}

/// The cluster's steps, newest first, 50 a page, filtered by `StepStates` and `StepIds`.
fn list_steps(inner: &mut Inner, input: &Value) -> OpResult {
    let cluster = text(input, "ClusterId");
    let (states, ids) = (texts(input, "StepStates"), texts(input, "StepIds"));
    let (steps, marker) = list_page(
        inner,
        Service::Emr,
        &cluster,
        input["Marker"].as_str(),
        50,
        |j| {
            (states.is_empty() || states.contains(&j.state()))
                && (ids.is_empty() || ids.contains(&j.id.as_str()))
        },
        step_json,
    )?;
    page_answer("Steps", steps, "Marker", marker)
}

/// Cancels pending or running steps; a finished one is a `FAILED` entry of the answer.
fn cancel_steps(inner: &mut Inner, input: &Value) -> OpResult {
    let cluster = text(input, "ClusterId");
    let mut infos = vec![];
    for id in texts(input, "StepIds") {
        let status = match find_job(inner, Service::Emr, &cluster, id) {
            Some(j) if !j.finished() => {
                j.cancel();
                "SUBMITTED"
            }
            _ => "FAILED",
        };
        if status == "SUBMITTED" {
            inner.harness.counters.cancelled();
        }
        infos.push(json!({"StepId": id, "Status": status, "Reason": if status == "FAILED" { "step is not pending or running" } else { "" }}));
    }
    Ok(json!({ "CancelStepsInfoList": infos }))
}
