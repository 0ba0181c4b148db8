//! The AWS Step Functions part of the simulator: `StartExecution`, `DescribeExecution`,
//! `ListExecutions` and `StopExecution` (JSON 1.0, `AWSStepFunctions.<Operation>`), as
//! botocore's `stepfunctions` model and the API reference describe them for STANDARD state
//! machines: a name is unique per state machine; `StartExecution` with the name of a running
//! execution and the same input answers that execution again, and otherwise
//! `ExecutionAlreadyExists`.

use serde_json::{json, Value};

use super::service::{Request, ServiceSim};
use super::{
    bad, list_page, new_job, page_answer, page_size, sample_name, Inner, OpResult, SimJob,
};
use crate::config::Service;

/// The JSON 1.0 target prefix.
pub(super) const TARGET: &str = "AWSStepFunctions";

/// The Step Functions part of the simulator.
pub(super) struct Executions;

impl ServiceSim for Executions {
    /// "Step Functions Execution Status Change": the execution as `DescribeExecution`
    /// answers it, its dates in milliseconds (as the event carries them).
    fn event_detail(&self, j: &SimJob) -> Option<Value> {
        let mut e = execution_json(j);
        for field in ["startDate", "stopDate"] {
            if let Some(seconds) = e[field].as_f64() {
                e[field] = json!(super::events::ms(seconds));
            }
        }
        Some(e)
    }

    fn sample_spec(&self, name: &str) -> Value {
        let name = sample_name(name, |c| c.is_ascii_alphanumeric() || c == '_');
        json!({"stateMachineArn": "arn:aws:states:us-east-1:000000000000:stateMachine:sim-machine",
            "name": name, "input": {"day": "2026-12-01"}})
    }

    /// What a lying list says: succeeded.
    fn lie_success(&self, entry: &mut Value) {
        entry["status"] = json!("SUCCEEDED");
    }

    fn call(&self, inner: &mut Inner, request: &Request, input: &Value) -> OpResult {
        route(inner, request.target, input)
    }
}

/// An execution as `DescribeExecution` answers it (`ListExecutions` answers the same fields,
/// less `input`, `error` and `cause`).
fn execution_json(j: &SimJob) -> Value {
    let state = j.state();
    let mut e = json!({"executionArn": j.id, "stateMachineArn": j.parent, "name": j.name,
        "status": state, "startDate": j.created_at, "input": j.arguments["input"]});
    match state {
        "FAILED" => {
            e["error"] = json!("States.TaskFailed");
            e["cause"] = json!("simulated execution failure");
        }
        "ABORTED" if j.forced.is_none() => {
            e["error"] = j.arguments["error"].clone();
            e["cause"] = j.arguments["cause"].clone();
        }
        _ => {}
    }
    if state != "RUNNING" {
        e["stopDate"] = json!(j.created_at + (j.pending + j.running).as_secs_f64());
    }
    e
}

fn list_item(j: &SimJob) -> Value {
    let mut e = execution_json(j);
    if let Some(o) = e.as_object_mut() {
        for k in ["input", "error", "cause"] {
            o.remove(k);
        }
    }
    e
}

/// `arn:aws:states:REGION:ACCOUNT:stateMachine:NAME` → the execution ARN prefix.
fn execution_arn(machine: &str, name: &str) -> Option<String> {
    let parts: Vec<&str> = machine.split(':').collect();
    match parts.as_slice() {
        ["arn", p, "states", r, a, "stateMachine", m] => {
            Some(format!("arn:{p}:states:{r}:{a}:execution:{m}:{name}"))
        }
        _ => None,
    }
}

/// A state machine's type: one whose name holds `express` is EXPRESS (the switch that models
/// the type's edges), any other STANDARD.
fn machine_type(name: &str) -> &'static str {
    if name.to_ascii_lowercase().contains("express") {
        "EXPRESS"
    } else {
        "STANDARD"
    }
}

fn is_express(machine: &str) -> bool {
    machine
        .rsplit(':')
        .next()
        .is_some_and(|name| machine_type(name) == "EXPRESS")
}

/// Starts the execution `arn` of `machine`, named `name`, with `input`: its answer.
fn start(inner: &mut Inner, arn: String, machine: &str, name: &str, input: String) -> Value {
    new_job(
        inner,
        Service::StepFunctions,
        arn.clone(),
        machine,
        name,
        json!({ "input": input }),
        "",
    );
    let started = inner.jobs[inner.by_id[&arn]].created_at;
    json!({"executionArn": arn, "startDate": started})
}

/// One Step Functions request: the operation `target` with the JSON `input`.
fn route(inner: &mut Inner, target: &str, input: &Value) -> OpResult {
    let s = |k: &str| {
        input
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let not_found = |arn: &str| {
        bad(
            "ExecutionDoesNotExist",
            format!("Execution Does Not Exist: '{arn}'"),
        )
    };
    match target.strip_prefix(TARGET).unwrap_or("") {
        ".DescribeStateMachine" => {
            let machine = s("stateMachineArn");
            let parts: Vec<&str> = machine.split(':').collect();
            let ["arn", _, "states", _, _, "stateMachine", name] = parts.as_slice() else {
                return Err(bad("InvalidArn", format!("Invalid Arn: '{machine}'")));
            };
            Ok(
                json!({"stateMachineArn": machine, "name": name, "status": "ACTIVE",
                      "type": machine_type(name), "definition": "{}", "roleArn":
                      "arn:aws:iam::000000000000:role/sim", "creationDate": 0}),
            )
        }
        ".StartExecution" if is_express(&s("stateMachineArn")) => {
            // "StartExecution isn't idempotent for EXPRESS workflows": every call starts one.
            let (machine, name, body) = (s("stateMachineArn"), s("name"), s("input"));
            let n = inner.jobs.len() + 1;
            let arn = execution_arn(&machine, &name)
                .map(|a| format!("{}:{n:08x}", a.replace(":execution:", ":express:")))
                .ok_or_else(|| bad("InvalidArn", format!("Invalid Arn: '{machine}'")))?;
            Ok(start(inner, arn, &machine, &name, body))
        }
        ".StartExecution" => start_standard(inner, s("stateMachineArn"), s("name"), s("input")),
        ".DescribeExecution" => {
            inner.stats.status_requests += 1;
            let arn = s("executionArn");
            let Some(i) = inner.lookup(&arn) else {
                return Err(not_found(&arn));
            };
            inner.jobs[i].last_seen = Some(std::time::Instant::now());
            Ok(execution_json(&inner.jobs[i]))
        }
        ".ListExecutions" => list_executions(inner, s("stateMachineArn"), s("statusFilter"), input),
        ".StopExecution" => {
            let arn = s("executionArn");
            let Some(i) = inner.lookup(&arn) else {
                return Err(not_found(&arn));
            };
            let j = &mut inner.jobs[i];
            if !j.finished() {
                j.cancel();
                j.arguments["error"] = json!(s("error"));
                j.arguments["cause"] = json!(s("cause"));
                inner.harness.counters.cancelled();
            }
            Ok(json!({"stopDate": inner.jobs[i].created_at}))
        }
        other => Err(bad(
            "UnknownOperationException",
            format!("unknown operation {TARGET}{other}"),
        )),
    }
}

/// `StartExecution` of a STANDARD state machine: the execution's name is its idempotency
/// (the same name and input answer the running execution; otherwise
/// `ExecutionAlreadyExists`), held from the start even while the execution is not visible.
fn start_standard(inner: &mut Inner, machine: String, name: String, body: String) -> OpResult {
    let Some(arn) = execution_arn(&machine, &name) else {
        return Err(bad(
            "InvalidArn",
            format!("Invalid Arn: 'Resource type not valid in this context: {machine}'"),
        ));
    };
    if name.is_empty() || name.len() > 80 {
        return Err(bad("InvalidName", format!("Invalid Name: '{name}'")));
    }
    // The name's idempotency is the service's own: a new execution it does not show
    // yet still holds its name.
    if let Some(i) = inner.held(&arn) {
        let j = &inner.jobs[i];
        return if j.state() == "RUNNING" && j.arguments["input"] == json!(body) {
            Ok(json!({"executionArn": arn, "startDate": j.created_at}))
        } else {
            Err(bad(
                "ExecutionAlreadyExists",
                format!("Execution Already Exists: '{arn}'"),
            ))
        };
    }
    Ok(start(inner, arn, &machine, &name, body))
}

/// `ListExecutions` of a state machine, by status, a page at a time.
fn list_executions(inner: &mut Inner, machine: String, status: String, input: &Value) -> OpResult {
    let size = match input["maxResults"].as_u64() {
        None | Some(0) => 100,
        Some(_) => page_size(&input["maxResults"], 100, 1000, "maxResults")?,
    };
    let (executions, next) = list_page(
        inner,
        Service::StepFunctions,
        &machine,
        input["nextToken"].as_str(),
        size,
        |j| status.is_empty() || j.state() == status,
        list_item,
    )?;
    page_answer("executions", executions, "nextToken", next)
}
