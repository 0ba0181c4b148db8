//! The Amazon ECS part of the simulator: `RunTask`, `DescribeTasks`, `ListTasks` and
//! `StopTask` (JSON 1.1, `AmazonEC2ContainerServiceV20141113.<Operation>`), as botocore's
//! `ecs` model and the API reference describe them. `RunTask` deduplicates `clientToken` per
//! cluster, and answers a repeated token with its first answer, a placement failure too (a
//! task definition named `...no-capacity-once...` finds no capacity the first time it runs in
//! a cluster); an unknown task is a `MISSING` failure of `DescribeTasks`; `ListTasks` refuses
//! `startedBy` with another filter and, by `startedBy` alone, lists running and stopped tasks;
//! a stopped task carries a stop code and its container's exit code.
//!
//! A forced state (`set_state`) is a `lastStatus`, optionally with a stop code and an exit
//! code: `STOPPED` (the essential container exited 0), `STOPPED/EssentialContainerExited/1`,
//! `STOPPED/UserInitiated`.

use serde_json::{json, Value};

use super::service::{Request, ServiceSim};
use super::{bad, list_page, new_job, page_answer, text, texts, Inner, OpResult, SimJob};
use crate::config::Service;

/// The JSON 1.1 target prefix.
pub(super) const TARGET: &str = "AmazonEC2ContainerServiceV20141113";

/// The ECS part of the simulator.
pub(super) struct Tasks;

impl ServiceSim for Tasks {
    /// "ECS Task State Change": the task as `DescribeTasks` answers it, its times as ISO
    /// 8601 text (as the event carries them).
    fn event_detail(&self, j: &SimJob) -> Option<Value> {
        let mut task = task_json(j);
        for field in ["createdAt", "stoppedAt"] {
            if let Some(seconds) = task[field].as_f64() {
                task[field] = json!(super::events::iso(seconds));
            }
        }
        Some(task)
    }

    fn sample_spec(&self, name: &str) -> Value {
        json!({"cluster": "sim-cluster", "taskDefinition": "sim-task:1", "launchType": "FARGATE",
            "overrides": {"containerOverrides": [{"name": "app", "command": ["python", "job.py", name]}]}})
    }

    /// What a lying list says: stopped after its container exited 0.
    fn lie_success(&self, entry: &mut Value) {
        if !entry.is_object() {
            // `ListTasks` answers bare ARNs.
            return;
        }
        entry["lastStatus"] = json!("STOPPED");
        entry["desiredStatus"] = json!("STOPPED");
        entry["stopCode"] = json!("EssentialContainerExited");
        entry["containers"] = json!([{"name": "app", "lastStatus": "STOPPED", "exitCode": 0}]);
    }

    fn call(&self, inner: &mut Inner, request: &Request, input: &Value) -> OpResult {
        route(inner, request.target, input)
    }
}

fn cluster_arn(cluster: &str) -> String {
    if cluster.starts_with("arn:") {
        cluster.to_string()
    } else {
        format!("arn:aws:ecs:us-east-1:000000000000:cluster/{cluster}")
    }
}

/// The cluster's name, from a name or an ARN.
fn cluster_name(cluster: &str) -> &str {
    cluster.rsplit('/').next().unwrap_or(cluster)
}

/// A task's ARN, from an id or an ARN.
fn task_arn(cluster: &str, task: &str) -> String {
    if task.starts_with("arn:") {
        task.to_string()
    } else {
        format!("arn:aws:ecs:us-east-1:000000000000:task/{cluster}/{task}")
    }
}

/// A task as `DescribeTasks` and `RunTask` answer it.
fn task_json(j: &SimJob) -> Value {
    let state = j.state();
    let mut parts = state.splitn(3, '/');
    let last = parts.next().unwrap_or("");
    let (mut code, mut exit) = (
        parts.next().map(str::to_string),
        parts.next().map(str::to_string),
    );
    let stopped = matches!(last, "STOPPED" | "DELETED");
    if stopped && code.is_none() {
        let (c, e) = match (j.forced.is_some(), j.cancelled, j.succeed) {
            (false, true, _) => ("UserInitiated", "143"),
            (false, false, false) => ("EssentialContainerExited", "1"),
            _ => ("EssentialContainerExited", "0"),
        };
        code = Some(c.to_string());
        exit = Some(e.to_string());
    }
    let mut container = json!({"name": "app", "lastStatus": last});
    let mut task = json!({"taskArn": j.id, "clusterArn": cluster_arn(&j.parent),
        "taskDefinitionArn": format!("arn:aws:ecs:us-east-1:000000000000:task-definition/{}", j.arguments["taskDefinition"].as_str().unwrap_or("")),
        "lastStatus": last, "desiredStatus": if stopped || j.finished() { "STOPPED" } else { "RUNNING" },
        "startedBy": j.arguments["startedBy"], "createdAt": j.created_at, "launchType": "FARGATE"});
    if stopped {
        let code = code.unwrap_or_default();
        let reason = match code.as_str() {
            "UserInitiated" => j.arguments["reason"]
                .as_str()
                .unwrap_or("Task stopped by user")
                .to_string(),
            "TaskFailedToStart" => "CannotPullContainerError: simulated".to_string(),
            _ => "Essential container in task exited".to_string(),
        };
        task["stopCode"] = json!(code);
        task["stoppedReason"] = json!(reason);
        task["stoppedAt"] = json!(j.created_at + (j.pending + j.running).as_secs_f64());
        match exit.and_then(|e| e.parse::<i64>().ok()) {
            Some(e) if code != "TaskFailedToStart" => {
                container["exitCode"] = json!(e);
                if e != 0 && code == "EssentialContainerExited" {
                    container["reason"] = json!("simulated task failure");
                }
            }
            _ => container["reason"] = json!("CannotPullContainerError: simulated"),
        }
    }
    task["containers"] = json!([container]);
    task
}

fn invalid(message: String) -> Box<axum::response::Response> {
    bad("InvalidParameterException", message)
}

/// One ECS request: the operation `target` with the JSON `input`.
fn route(inner: &mut Inner, target: &str, input: &Value) -> OpResult {
    let cluster = match text(input, "cluster") {
        c if c.is_empty() => "default".to_string(),
        c => cluster_name(&c).to_string(),
    };
    match target.strip_prefix(TARGET).unwrap_or("") {
        ".RunTask" => run_task(inner, &cluster, input),
        ".DescribeTasks" => describe_tasks(inner, &cluster, input),
        ".ListTasks" => list_tasks(inner, &cluster, input),
        ".StopTask" => stop_task(inner, &cluster, input),
        other => Err(bad(
            "UnknownOperationException",
            format!("unknown operation {TARGET}{other}"),
        )),
    }
}

/// `RunTask`: one task, deduplicated by `clientToken` within the cluster.
fn run_task(inner: &mut Inner, cluster: &str, input: &Value) -> OpResult {
    let s = |k: &str| text(input, k);
    let cluster = cluster.to_string();
    let (definition, token) = (s("taskDefinition"), s("clientToken"));
    if definition.is_empty() {
        return Err(invalid("taskDefinition is required".into()));
    }
    if token.len() > 64 {
        return Err(invalid("clientToken is longer than 64 characters".into()));
    }
    if input["count"].as_u64().is_some_and(|n| n != 1) {
        return Err(invalid("the simulator runs one task per RunTask".into()));
    }
    let dedup = (!token.is_empty()).then(|| (format!("ecs/{cluster}"), token.clone()));
    // The same token is answered with its first answer, a placement failure too.
    if let Some(refused) = dedup.as_ref().and_then(|k| inner.refused_tokens.get(k)) {
        return Ok(refused.clone());
    }
    // A task definition named `...no-capacity-once...` finds no capacity the first time
    // it runs in a cluster: RunTask answers 200 with failures[] and no task.
    if definition.contains("no-capacity-once")
        && inner
            .placements_failed
            .insert((cluster.clone(), definition.clone()))
    {
        let answer = json!({"tasks": [], "failures": [{
            "arn": format!("arn:aws:ecs:us-east-1:000000000000:container-instance/{cluster}/none"),
            "reason": "RESOURCE:MEMORY",
            "detail": "simulated: no container instance has enough memory"}]});
        if let Some(k) = dedup {
            inner.refused_tokens.insert(k, answer.clone());
        }
        return Ok(answer);
    }
    let existing = dedup
        .as_ref()
        .and_then(|k| inner.client_tokens.get(k))
        .cloned();
    let arn = match existing {
        Some(arn) => arn,
        None => {
            let n = inner.jobs.len() + 1;
            let arn = task_arn(&cluster, &format!("{n:032x}"));
            let extras = json!({"taskDefinition": definition, "startedBy": s("startedBy")});
            new_job(
                inner,
                Service::Ecs,
                arn.clone(),
                &cluster,
                "",
                extras,
                &token,
            );
            if let Some(k) = dedup {
                inner.client_tokens.insert(k, arn.clone());
            }
            arn
        }
    };
    let task = task_json(&inner.jobs[inner.by_id[&arn]]);
    Ok(json!({"tasks": [task], "failures": []}))
}

/// `DescribeTasks`: 1 to 100 tasks of the cluster; the others as failures (`MISSING`).
fn describe_tasks(inner: &mut Inner, cluster: &str, input: &Value) -> OpResult {
    let cluster = cluster.to_string();
    let tasks: Vec<String> = texts(input, "tasks")
        .into_iter()
        .map(|t| task_arn(&cluster, t))
        .collect();
    let lie = inner
        .count_read(tasks.len(), ("tasks", 100, "task ids or ARNs"))
        .map_err(invalid)?;
    let many = tasks.len() > 1;
    let (mut found, mut failures) = (Vec::new(), Vec::new());
    let now = std::time::Instant::now();
    for arn in tasks {
        if let Some(i) = inner.lookup(&arn) {
            inner.jobs[i].last_seen = Some(now);
        }
        let job = inner.lookup(&arn).map(|i| &inner.jobs[i]);
        match job {
            Some(j) if j.service == Service::Ecs && j.parent == cluster => {
                if many && j.hidden {
                    continue;
                }
                let mut t = task_json(j);
                if lie {
                    Tasks.lie_success(&mut t);
                }
                found.push(t);
            }
            _ => failures.push(json!({"arn": arn, "reason": "MISSING"})),
        }
    }
    Ok(json!({"tasks": found, "failures": failures}))
}

/// `ListTasks`: by `startedBy` alone, or by `desiredStatus`, a page at a time.
fn list_tasks(inner: &mut Inner, cluster: &str, input: &Value) -> OpResult {
    let s = |k: &str| text(input, k);
    let cluster = cluster.to_string();
    let (started_by, desired) = (s("startedBy"), s("desiredStatus"));
    // "When you specify startedBy as the filter, it must be the only filter that you
    // use" (botocore's ecs model, ListTasksRequest.startedBy).
    let others = [
        "desiredStatus",
        "family",
        "serviceName",
        "containerInstance",
        "launchType",
    ];
    if !started_by.is_empty() {
        if let Some(other) = others.iter().find(|f| !s(f).is_empty()) {
            return Err(invalid(format!(
                "startedBy must be the only filter that you use (also given: {other})"
            )));
        }
    }
    // By startedBy alone: running and recently stopped tasks alike.
    let any_status = !started_by.is_empty();
    let desired = if desired.is_empty() {
        "RUNNING".to_string()
    } else {
        desired
    };
    if !["RUNNING", "PENDING", "STOPPED"].contains(&desired.as_str()) {
        return Err(invalid(format!(
            "desiredStatus {desired:?} is not RUNNING, PENDING or STOPPED"
        )));
    }
    let size = super::page_size(&input["maxResults"], 100, 100, "maxResults")?;
    let (arns, next) = list_page(
        inner,
        Service::Ecs,
        &cluster,
        input["nextToken"].as_str(),
        size,
        |j| {
            let t = task_json(j);
            (started_by.is_empty() || t["startedBy"] == json!(started_by))
                && (any_status || t["desiredStatus"] == json!(desired))
        },
        |j| json!(j.id),
    )?;
    page_answer("taskArns", arns, "nextToken", next)
}

/// `StopTask`: asks the task to stop (a stopped one is answered as it is).
fn stop_task(inner: &mut Inner, cluster: &str, input: &Value) -> OpResult {
    let s = |k: &str| text(input, k);
    let cluster = cluster.to_string();
    let arn = task_arn(&cluster, &s("task"));
    let Some(i) = inner.lookup(&arn) else {
        return Err(invalid("The referenced task was not found.".into()));
    };
    let j = &mut inner.jobs[i];
    if j.service != Service::Ecs || j.parent != cluster {
        return Err(invalid("The referenced task was not found.".into()));
    }
    if !j.finished() {
        j.cancel();
        j.arguments["reason"] = json!(s("reason"));
        inner.harness.counters.cancelled();
    }
    Ok(json!({ "task": task_json(&inner.jobs[i]) }))
}
