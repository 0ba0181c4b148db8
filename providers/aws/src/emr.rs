//! EMR on EC2 steps (JSON 1.1, `ElasticMapReduce.<Operation>`), a kit description.
//!
//! A job spec is `{"cluster_id": "j-...", "step": <StepConfig>}`. `AddJobFlowSteps` has no
//! idempotency token, so tether puts its key into the step name (`<name> [<key>]`) and `find`
//! lists the cluster's steps for that name: a crash between submit and record never yields a
//! second step.

use serde_json::{json, Value};
use tether_provider::{Handle, ProviderError, RemoteStatus};

use crate::kit::{
    answered, handle_pair, text, About, Call, JobApi, Kit, Listing, Protocol, Start, SweepBy,
};
use crate::{tagged_name, timestamp};

const PROVIDER: &str = "emr";
const TARGET: &str = "ElasticMapReduce";
/// The step states a sweep lists: the ones that still change.
const ACTIVE_STATES: [&str; 3] = ["PENDING", "CANCEL_PENDING", "RUNNING"];

/// The EMR steps adapter.
pub type Emr = Kit<Steps>;

/// EMR steps, as the kit runs them.
#[derive(Debug, Default)]
pub struct Steps;

/// A step's `Status` (from `DescribeStep` or `ListSteps`) as tether sees it.
fn step_status(status: &Value) -> RemoteStatus {
    let raw = status["State"].as_str().unwrap_or("").to_string();
    let failure = &status["FailureDetails"];
    let message = match (failure["Reason"].as_str(), failure["Message"].as_str()) {
        (None, None) => status["StateChangeReason"]["Message"]
            .as_str()
            .map(str::to_string),
        (r, m) => Some(format!(
            "{}{}{}",
            r.unwrap_or(""),
            m.map(|m| format!(": {m}")).unwrap_or_default(),
            failure["LogFile"]
                .as_str()
                .map(|l| format!(" (log: {l})"))
                .unwrap_or_default()
        )),
    };
    RemoteStatus::new(crate::state::emr_step(&raw), raw, message)
}

fn handle_parts(handle: &Handle) -> Result<(String, String), ProviderError> {
    handle_pair(handle, ("cluster_id", "step_id"), PROVIDER)
}

/// `ListSteps` (`body` names the cluster and any filters), paged by `Marker`.
fn list_steps(body: Value) -> Listing {
    Listing {
        call: Call::rpc("ListSteps", body),
        items: "Steps",
        next: "Marker",
    }
}

/// The step name carrying the key.
fn step_name(spec: &Value, key: &str) -> String {
    tagged_name(spec["step"].get("Name").and_then(Value::as_str), key)
}

impl JobApi for Steps {
    fn about(&self) -> About {
        About::new(PROVIDER, Protocol::Json11(TARGET), Start::Gated, "step_id")
    }

    fn check(&self, spec: &Value) -> Result<(), String> {
        let ok = text(&spec["cluster_id"]).is_some()
            && spec
                .get("step")
                .and_then(|s| s.get("HadoopJarStep"))
                .is_some_and(Value::is_object);
        if ok {
            Ok(())
        } else {
            Err("the job spec must be {\"cluster_id\": \"j-...\", \"step\": {\"Name\": ..., \"HadoopJarStep\": {...}}}".into())
        }
    }

    /// <https://docs.aws.amazon.com/emr/latest/APIReference/API_AddJobFlowSteps.html>
    fn start(&self, spec: &Value, key: &str) -> Call {
        let mut step = spec["step"].clone();
        step["Name"] = json!(step_name(spec, key));
        if step.get("ActionOnFailure").is_none() {
            step["ActionOnFailure"] = json!("CONTINUE");
        }
        Call::rpc(
            "AddJobFlowSteps",
            json!({"JobFlowId": spec["cluster_id"], "Steps": [step]}),
        )
    }

    fn started(&self, spec: &Value, _key: &str, answer: &Value) -> Result<Value, ProviderError> {
        let step = answered(PROVIDER, "AddJobFlowSteps", answer, "/StepIds/0")?;
        Ok(json!({"cluster_id": spec["cluster_id"], "step_id": step}))
    }

    /// <https://docs.aws.amazon.com/emr/latest/APIReference/API_DescribeStep.html>
    fn describe(&self, handle: &Handle) -> Result<Call, ProviderError> {
        let (cluster, step) = handle_parts(handle)?;
        Ok(Call::rpc(
            "DescribeStep",
            json!({"ClusterId": cluster, "StepId": step}),
        ))
    }

    fn status(&self, _handle: &Handle, answer: &Value) -> Result<RemoteStatus, ProviderError> {
        Ok(step_status(&answer["Step"]["Status"]))
    }

    /// <https://docs.aws.amazon.com/emr/latest/APIReference/API_CancelSteps.html>
    fn stop(&self, handle: &Handle) -> Result<Call, ProviderError> {
        let (cluster, step) = handle_parts(handle)?;
        Ok(Call::rpc(
            "CancelSteps",
            json!({"ClusterId": cluster, "StepIds": [step], "StepCancellationOption": "SEND_INTERRUPT"}),
        ))
    }

    /// `CancelSteps` answers 200 with a `FAILED` entry for a step it could not cancel.
    fn stopped(&self, answer: &Value) -> Result<(), String> {
        let info = &answer["CancelStepsInfoList"][0];
        match info["Status"].as_str() {
            Some("FAILED") => Err(info["Reason"].to_string()),
            _ => Ok(()),
        }
    }

    /// The cluster's steps (`ListSteps`, paged by `Marker`), for one named with the key.
    fn find(&self, spec: &Value, _key: &str) -> Option<Listing> {
        let cluster = spec.get("cluster_id").and_then(Value::as_str)?;
        Some(list_steps(json!({ "ClusterId": cluster })))
    }

    fn found(&self, spec: &Value, key: &str, step: &Value) -> Option<(Value, Option<f64>)> {
        (step["Name"].as_str() == Some(step_name(spec, key).as_str())).then(|| {
            (
                json!({"cluster_id": spec["cluster_id"], "step_id": step["Id"]}),
                timestamp(&step["Status"]["Timeline"]["CreationDateTime"]),
            )
        })
    }

    /// `ListSteps` of each cluster, for its pending and running steps.
    /// <https://docs.aws.amazon.com/emr/latest/APIReference/API_ListSteps.html>
    fn sweep_by(&self) -> Option<SweepBy> {
        Some(SweepBy::List {
            parent: Some("cluster_id"),
            id: "step_id",
        })
    }

    fn sweep_list(&self, cluster: &str, _since: f64) -> Option<Listing> {
        Some(list_steps(
            json!({"ClusterId": cluster, "StepStates": ACTIVE_STATES}),
        ))
    }

    fn listed(&self, step: &Value) -> Option<(String, RemoteStatus)> {
        Some((
            step["Id"].as_str()?.to_string(),
            step_status(&step["Status"]),
        ))
    }
}
