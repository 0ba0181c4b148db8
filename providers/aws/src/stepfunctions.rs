//! AWS Step Functions executions (JSON 1.0, `AWSStepFunctions.<Operation>`, SigV4 service
//! `states`), a kit description.
//!
//! A job spec is the `StartExecution` body: `{"stateMachineArn": "arn:aws:states:...:
//! stateMachine:NAME", "input": {...} or "...", "name": "..."}`, of a STANDARD state machine
//! (unqualified ARN). tether names the execution `<name>-<key>` (within 80 characters), which
//! makes the submit idempotent: the same name and input while the execution runs return it
//! again, and after it ended `ExecutionAlreadyExists` says it was made, so the adapter takes
//! the execution the name gives. The execution's ARN follows from the state machine's and the
//! name, so `find` is one `DescribeExecution`.
//!
//! An EXPRESS state machine is refused before anything is submitted (its type read once with
//! `DescribeStateMachine`): its `StartExecution` is not idempotent and its executions cannot
//! be described, listed or stopped.
//!
//! A coalesced sweep lists each state machine's `RUNNING` executions (`ListExecutions`, 1000 a
//! page): an execution not listed has ended, and its own call says how.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::{json, Value};
use tether_provider::http::Idempotency;
use tether_provider::{ErrorKind, Handle, ProviderError, RemoteStatus};

use crate::client::{AwsClient, Json};
use crate::keyed_name;
use crate::kit::{
    answered, handle_field, About, Call, JobApi, Kit, Listing, Protocol, Start, SweepBy,
};

const PROVIDER: &str = "stepfunctions";
const TARGET: &str = "AWSStepFunctions";
/// The longest execution name.
const NAME_MAX: usize = 80;
/// The cause `StopExecution` carries.
const CANCEL_CAUSE: &str = "Cancelled through tether";

/// The Step Functions adapter.
pub type StepFunctions = Kit<Executions>;

/// Executions of STANDARD state machines, as the kit runs them.
#[derive(Debug, Default)]
pub struct Executions {
    /// Each state machine's type, read once (`DescribeStateMachine`): an EXPRESS one is
    /// refused.
    machine_types: Mutex<HashMap<String, String>>,
}

impl Executions {
    /// The type of the state machine `machine` (`STANDARD`, `EXPRESS`), read once.
    async fn machine_type(
        &self,
        client: &AwsClient,
        machine: &str,
    ) -> Result<String, ProviderError> {
        let known = self
            .machine_types
            .lock()
            .expect("cache")
            .get(machine)
            .cloned();
        if let Some(kind) = known {
            return Ok(kind);
        }
        let out = client
            .json(
                Json::V1_0,
                TARGET,
                "DescribeStateMachine",
                &json!({"stateMachineArn": machine}),
                Idempotency::Idempotent,
            )
            .await
            .map_err(|e| match e.kind {
                // Where the machine is not (or not readable): the submit would fail.
                ErrorKind::NotFound => ProviderError::invalid_spec(PROVIDER, e.message),
                _ => e,
            })?;
        let kind = out["type"].as_str().unwrap_or("STANDARD").to_string();
        self.machine_types
            .lock()
            .expect("cache")
            .insert(machine.to_string(), kind.clone());
        Ok(kind)
    }
}

/// The execution name carrying `key`.
pub fn execution_name(name: Option<&str>, key: &str) -> String {
    keyed_name(name, key, NAME_MAX)
}

/// The ARN of the execution `name` of the (unqualified) state machine `machine`:
/// `arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME`.
pub fn execution_arn(machine: &str, name: &str) -> Option<String> {
    let parts: Vec<&str> = machine.split(':').collect();
    match parts.as_slice() {
        ["arn", partition, "states", region, account, "stateMachine", machine_name] => Some(
            format!("arn:{partition}:states:{region}:{account}:execution:{machine_name}:{name}"),
        ),
        _ => None,
    }
}

/// A name Step Functions takes: none of the characters it refuses, and (for CloudWatch Logs)
/// only `0-9 A-Z a-z - _`.
fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// An execution (from `DescribeExecution` or `ListExecutions`) as tether sees it, with
/// `error: cause` as the message.
fn execution_status(execution: &Value) -> RemoteStatus {
    let raw = execution["status"].as_str().unwrap_or("").to_string();
    let message = crate::reason_message(execution, "error", "cause");
    RemoteStatus::new(crate::state::stepfunctions_execution(&raw), raw, message)
}

fn check(spec: &Value) -> Result<(), String> {
    let machine = spec.get("stateMachineArn").and_then(Value::as_str);
    let Some(machine) = machine else {
        return Err("the job spec must be a StartExecution body holding stateMachineArn".into());
    };
    if execution_arn(machine, "x").is_none() {
        return Err(format!(
            "stateMachineArn {machine:?} must be an unqualified state machine ARN \
             (arn:aws:states:REGION:ACCOUNT:stateMachine:NAME; versions and aliases are not \
             supported)"
        ));
    }
    match spec.get("name") {
        None => {}
        Some(Value::String(n)) if name_ok(n) => {}
        Some(other) => {
            return Err(format!(
                "name {other} must hold only letters, digits, - and _ (tether appends its key)"
            ))
        }
    }
    match spec.get("input") {
        None | Some(Value::String(_) | Value::Object(_) | Value::Array(_)) => Ok(()),
        Some(other) => Err(format!(
            "input must be JSON text or a JSON value, not {other}"
        )),
    }
}

/// The handle of the key's execution of the spec's state machine.
fn keyed_handle(spec: &Value, key: &str) -> Option<Value> {
    let machine = spec.get("stateMachineArn").and_then(Value::as_str)?;
    let name = execution_name(spec.get("name").and_then(Value::as_str), key);
    let arn = execution_arn(machine, &name)?;
    Some(json!({"state_machine_arn": machine, "execution_arn": arn}))
}

#[async_trait]
impl JobApi for Executions {
    fn about(&self) -> About {
        // The name is the key's: the same name and input while the execution runs return it
        // again.
        About::new(
            PROVIDER,
            Protocol::Json10(TARGET),
            Start::Deduplicated,
            "execution_arn",
        )
    }

    fn check(&self, spec: &Value) -> Result<(), String> {
        check(spec)
    }

    /// Refuses an EXPRESS state machine, whose type `DescribeStateMachine` tells (read once
    /// per machine): "StartExecution isn't idempotent for EXPRESS workflows", and
    /// `DescribeExecution`, `ListExecutions` and `StopExecution` do not support their
    /// executions, so tether could neither submit one exactly once nor follow it.
    /// <https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html>
    async fn before_start(&self, client: &AwsClient, spec: &Value) -> Result<(), ProviderError> {
        let machine = spec["stateMachineArn"].as_str().unwrap_or_default();
        if self.machine_type(client, machine).await? == "EXPRESS" {
            return Err(ProviderError::invalid_spec(
                PROVIDER,
                format!(
                    "{machine} is an EXPRESS state machine: StartExecution is not idempotent for \
                     EXPRESS workflows and DescribeExecution does not support their \
                     executions, so tether cannot run one exactly once nor follow it; use a \
                     STANDARD state machine"
                ),
            ));
        }
        Ok(())
    }

    fn start(&self, spec: &Value, key: &str) -> Call {
        let mut body = spec.clone();
        body["name"] = json!(execution_name(
            spec.get("name").and_then(Value::as_str),
            key
        ));
        match body.get("input") {
            Some(Value::String(_)) | None => {}
            Some(value) => body["input"] = json!(value.to_string()),
        }
        Call::rpc("StartExecution", body)
    }

    fn started(&self, spec: &Value, _key: &str, answer: &Value) -> Result<Value, ProviderError> {
        let arn = answered(PROVIDER, "StartExecution", answer, "/executionArn")?;
        Ok(json!({"state_machine_arn": spec["stateMachineArn"], "execution_arn": arn}))
    }

    /// `ExecutionAlreadyExists`: the name is the key's, so the execution was started before
    /// (by this key).
    fn adopt(&self, spec: &Value, key: &str, refusal: &ProviderError) -> Option<Value> {
        refusal
            .message
            .contains("ExecutionAlreadyExists")
            .then(|| keyed_handle(spec, key))?
    }

    /// <https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html>
    fn describe(&self, handle: &Handle) -> Result<Call, ProviderError> {
        let arn = handle_field(handle, "execution_arn", PROVIDER)?;
        Ok(Call::rpc(
            "DescribeExecution",
            json!({ "executionArn": arn }),
        ))
    }

    fn status(&self, _handle: &Handle, answer: &Value) -> Result<RemoteStatus, ProviderError> {
        Ok(execution_status(answer))
    }

    /// <https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html>
    fn stop(&self, handle: &Handle) -> Result<Call, ProviderError> {
        let arn = handle_field(handle, "execution_arn", PROVIDER)?;
        Ok(Call::rpc(
            "StopExecution",
            json!({"executionArn": arn, "cause": CANCEL_CAUSE}),
        ))
    }

    /// The execution the key names: `DescribeExecution` of the ARN that follows from the
    /// state machine and the name.
    fn named(&self, spec: &Value, key: &str) -> Option<Value> {
        keyed_handle(spec, key)
    }

    fn find(&self, _spec: &Value, _key: &str) -> Option<Listing> {
        None
    }

    fn found(&self, _spec: &Value, _key: &str, _entry: &Value) -> Option<(Value, Option<f64>)> {
        None
    }

    /// `ListExecutions` of each state machine with `statusFilter = RUNNING`: an execution not
    /// listed has ended, and its own call says how.
    fn sweep_by(&self) -> Option<SweepBy> {
        Some(SweepBy::List {
            parent: Some("state_machine_arn"),
            id: "execution_arn",
        })
    }

    fn sweep_list(&self, machine: &str, _since: f64) -> Option<Listing> {
        Some(Listing {
            call: Call::rpc(
                "ListExecutions",
                json!({"stateMachineArn": machine, "statusFilter": "RUNNING", "maxResults": 1000}),
            ),
            items: "executions",
            next: "nextToken",
        })
    }

    fn listed(&self, execution: &Value) -> Option<(String, RemoteStatus)> {
        let arn = execution["executionArn"].as_str()?;
        Some((arn.to_string(), execution_status(execution)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arn_follows_from_the_machine_and_the_name() {
        let machine = "arn:aws:states:eu-west-1:123456789012:stateMachine:nightly";
        assert_eq!(
            execution_arn(machine, "load-tether-1").as_deref(),
            Some("arn:aws:states:eu-west-1:123456789012:execution:nightly:load-tether-1")
        );
        assert_eq!(execution_arn(&format!("{machine}:PROD"), "x"), None);
        let key = "tether-0123456789abcdef0123456789abcdef";
        let long = "n".repeat(200);
        assert_eq!(execution_name(Some(&long), key).len(), NAME_MAX);
    }
}
