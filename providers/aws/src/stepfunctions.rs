//! AWS Step Functions executions (JSON 1.0, `AWSStepFunctions.<Operation>`, SigV4 service
//! `states`).
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

use async_trait::async_trait;
use serde_json::{json, Value};
use tether_provider::http::Idempotency;
use tether_provider::{
    ErrorKind, Handle, Provider, ProviderError, RemoteStatus, SendGate, Sweep, Tracked,
};

use crate::{each_page, field, keyed_name, sweep, Group};

const PROVIDER: &str = "stepfunctions";
const TARGET: &str = "AWSStepFunctions";
/// The longest execution name.
const NAME_MAX: usize = 80;
/// The cause `StopExecution` carries.
const CANCEL_CAUSE: &str = "Cancelled through tether";

adapter! {
    /// The Step Functions adapter.
    StepFunctions {
        /// Each state machine's type, read once (`DescribeStateMachine`): an EXPRESS one is
        /// refused.
        machine_types: std::sync::Mutex<std::collections::HashMap<String, String>>,
    }
}

impl StepFunctions {
    /// Refuses an EXPRESS state machine, whose type `DescribeStateMachine` tells (read once
    /// per machine): "StartExecution isn't idempotent for EXPRESS workflows", and
    /// `DescribeExecution`, `ListExecutions` and `StopExecution` do not support their
    /// executions, so tether could neither submit one exactly once nor follow it.
    /// <https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html>
    async fn refuse_express(&self, machine: &str) -> Result<(), ProviderError> {
        let known = self
            .machine_types
            .lock()
            .expect("cache")
            .get(machine)
            .cloned();
        let kind = match known {
            Some(kind) => kind,
            None => {
                let out = self
                    .client
                    .json10(
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
                kind
            }
        };
        if kind == "EXPRESS" {
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
    RemoteStatus {
        state: crate::state::stepfunctions_execution(&raw),
        raw_state: raw,
        message,
        url: None,
        next_poll_hint: None,
    }
}

impl StepFunctions {
    /// The running executions of one state machine, matched to the ones asked about.
    async fn list_running(
        &self,
        group: Group,
    ) -> Result<(Vec<(usize, RemoteStatus)>, u64), ProviderError> {
        let mut found = Vec::new();
        let list = |token: Option<String>| {
            let mut body = json!({"stateMachineArn": group.parent, "statusFilter": "RUNNING",
                "maxResults": 1000});
            if let Some(t) = token {
                body["nextToken"] = json!(t);
            }
            async move {
                self.client
                    .json10(TARGET, "ListExecutions", &body, Idempotency::Idempotent)
                    .await
            }
        };
        let calls = each_page("executions", "nextToken", list, |execution| {
            let arn = execution["executionArn"].as_str();
            if let Some(&i) = arn.and_then(|a| group.wanted.get(a)) {
                found.push((i, execution_status(execution)));
            }
            true
        })
        .await?;
        Ok((found, calls))
    }
}

#[async_trait]
impl Provider for StepFunctions {
    fn kind(&self) -> &'static str {
        PROVIDER
    }

    fn validate_spec(&self, spec: &Value) -> Result<(), ProviderError> {
        let refuse = |why: String| Err(ProviderError::invalid_spec(PROVIDER, why));
        let machine = spec.get("stateMachineArn").and_then(Value::as_str);
        let Some(machine) = machine else {
            return refuse(
                "the job spec must be a StartExecution body holding stateMachineArn".into(),
            );
        };
        if execution_arn(machine, "x").is_none() {
            return refuse(format!(
                "stateMachineArn {machine:?} must be an unqualified state machine ARN \
                 (arn:aws:states:REGION:ACCOUNT:stateMachine:NAME; versions and aliases are not \
                 supported)"
            ));
        }
        match spec.get("name") {
            None => {}
            Some(Value::String(n)) if name_ok(n) => {}
            Some(other) => {
                return refuse(format!(
                    "name {other} must hold only letters, digits, - and _ (tether appends its key)"
                ))
            }
        }
        match spec.get("input") {
            None | Some(Value::String(_) | Value::Object(_) | Value::Array(_)) => Ok(()),
            Some(other) => refuse(format!(
                "input must be JSON text or a JSON value, not {other}"
            )),
        }
    }

    /// <https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html>
    async fn submit(
        &self,
        spec: &Value,
        key: &str,
        // The name makes the submit idempotent: it may be repeated without a gate.
        _gate: &dyn SendGate,
    ) -> Result<Handle, ProviderError> {
        self.validate_spec(spec)?;
        let machine = spec["stateMachineArn"].as_str().unwrap_or_default();
        self.refuse_express(machine).await?;
        let name = execution_name(spec.get("name").and_then(Value::as_str), key);
        let mut body = spec.clone();
        body["name"] = json!(name);
        match body.get("input") {
            Some(Value::String(_)) | None => {}
            Some(value) => body["input"] = json!(value.to_string()),
        }
        let arn = match self
            .client
            .json10(TARGET, "StartExecution", &body, Idempotency::Idempotent)
            .await
        {
            Ok(out) => out["executionArn"].as_str().map(str::to_string),
            // The name is the key's: the execution was started before (by this key).
            Err(e) if e.message.contains("ExecutionAlreadyExists") => {
                tracing::info!(
                    provider = PROVIDER,
                    key,
                    "the execution exists already: reattaching"
                );
                execution_arn(machine, &name)
            }
            Err(e) => return Err(e),
        };
        let arn = arn.ok_or_else(|| {
            ProviderError::transient(PROVIDER, "StartExecution: no executionArn in the answer")
        })?;
        Ok(Handle::new(
            json!({"state_machine_arn": machine, "execution_arn": arn}),
        ))
    }

    fn submit_is_idempotent(&self) -> bool {
        true
    }

    /// <https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html>
    async fn status(&self, handle: &Handle) -> Result<RemoteStatus, ProviderError> {
        let arn = field(handle, "execution_arn", PROVIDER)?;
        let out = self
            .client
            .json10(
                TARGET,
                "DescribeExecution",
                &json!({ "executionArn": arn }),
                Idempotency::Idempotent,
            )
            .await?;
        Ok(execution_status(&out))
    }

    /// <https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html>
    async fn cancel(&self, handle: &Handle) -> Result<(), ProviderError> {
        let arn = field(handle, "execution_arn", PROVIDER)?;
        self.client
            .json10(
                TARGET,
                "StopExecution",
                &json!({"executionArn": arn, "cause": CANCEL_CAUSE}),
                Idempotency::Idempotent,
            )
            .await?;
        Ok(())
    }

    /// The execution the key names: `DescribeExecution` of the ARN that follows from the
    /// state machine and the name.
    async fn find(
        &self,
        key: &str,
        spec: &Value,
        _intent_ms: i64,
    ) -> Result<Vec<Handle>, ProviderError> {
        let Some(machine) = spec.get("stateMachineArn").and_then(Value::as_str) else {
            return Ok(Vec::new());
        };
        let name = execution_name(spec.get("name").and_then(Value::as_str), key);
        let Some(arn) = execution_arn(machine, &name) else {
            return Ok(Vec::new());
        };
        let handle = Handle::new(json!({"state_machine_arn": machine, "execution_arn": arn}));
        match self.status(&handle).await {
            Ok(_) => Ok(vec![handle]),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// `ListExecutions` of each state machine with `statusFilter = RUNNING`.
    async fn status_many(&self, jobs: &[Tracked<'_>]) -> Result<Sweep, ProviderError> {
        sweep(jobs, (Some("state_machine_arn"), "execution_arn"), |g| {
            self.list_running(g)
        })
        .await
    }

    adapter_settings!();
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
