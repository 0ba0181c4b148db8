//! EMR on EC2 steps (JSON 1.1, `ElasticMapReduce.<Operation>`).
//!
//! A job spec is `{"cluster_id": "j-...", "step": <StepConfig>}`. `AddJobFlowSteps` has no
//! idempotency token, so tether puts its key into the step name (`<name> [<key>]`) and `find`
//! lists the cluster's steps for that name: a crash between submit and record never yields a
//! second step.

use async_trait::async_trait;
use serde_json::{json, Value};
use tether_provider::http::Idempotency;
use tether_provider::{Handle, Provider, ProviderError, RemoteStatus, SendGate, Sweep, Tracked};

use crate::{each_page, field, find_in_pages, sweep, tagged_name, timestamp, Group};

const PROVIDER: &str = "emr";
const TARGET: &str = "ElasticMapReduce";
/// The step states a sweep lists: the ones that still change.
const ACTIVE_STATES: [&str; 3] = ["PENDING", "CANCEL_PENDING", "RUNNING"];

adapter! {
    /// The EMR steps adapter.
    Emr
}

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
    RemoteStatus {
        state: crate::state::emr_step(&raw),
        raw_state: raw,
        message,
        url: None,
        next_poll_hint: None,
    }
}

impl Emr {
    /// One page of `ListSteps` (`body` names the cluster and any filters), from `marker`.
    async fn list_steps(
        &self,
        mut body: Value,
        marker: Option<String>,
    ) -> Result<Value, ProviderError> {
        if let Some(m) = marker {
            body["Marker"] = json!(m);
        }
        self.client
            .json11(TARGET, "ListSteps", &body, Idempotency::Idempotent)
            .await
    }

    /// The active steps of one cluster (`ListSteps` with `StepStates`, paged by `Marker`).
    async fn list_active(
        &self,
        group: Group,
    ) -> Result<(Vec<(usize, RemoteStatus)>, u64), ProviderError> {
        let mut found = Vec::new();
        let list = |marker| {
            self.list_steps(
                json!({"ClusterId": group.parent, "StepStates": ACTIVE_STATES}),
                marker,
            )
        };
        let calls = each_page("Steps", "Marker", list, |step| {
            if let Some(&i) = step["Id"].as_str().and_then(|id| group.wanted.get(id)) {
                found.push((i, step_status(&step["Status"])));
            }
            true
        })
        .await?;
        Ok((found, calls))
    }
}

fn handle_parts(handle: &Handle) -> Result<(String, String), ProviderError> {
    Ok((
        field(handle, "cluster_id", PROVIDER)?,
        field(handle, "step_id", PROVIDER)?,
    ))
}

#[async_trait]
impl Provider for Emr {
    fn kind(&self) -> &'static str {
        PROVIDER
    }

    fn validate_spec(&self, spec: &Value) -> Result<(), ProviderError> {
        let ok = spec
            .get("cluster_id")
            .and_then(Value::as_str)
            .is_some_and(|c| !c.is_empty())
            && spec
                .get("step")
                .and_then(|s| s.get("HadoopJarStep"))
                .is_some_and(Value::is_object);
        if ok {
            Ok(())
        } else {
            Err(ProviderError::invalid_spec(PROVIDER, "the job spec must be {\"cluster_id\": \"j-...\", \"step\": {\"Name\": ..., \"HadoopJarStep\": {...}}}"))
        }
    }

    /// <https://docs.aws.amazon.com/emr/latest/APIReference/API_AddJobFlowSteps.html>
    async fn submit(
        &self,
        spec: &Value,
        key: &str,
        gate: &dyn SendGate,
    ) -> Result<Handle, ProviderError> {
        self.validate_spec(spec)?;
        let cluster = spec["cluster_id"].as_str().unwrap_or_default();
        let mut step = spec["step"].clone();
        step["Name"] = json!(tagged_name(step.get("Name").and_then(Value::as_str), key));
        if step.get("ActionOnFailure").is_none() {
            step["ActionOnFailure"] = json!("CONTINUE");
        }
        let out = self
            .client
            .json11(
                TARGET,
                "AddJobFlowSteps",
                &json!({"JobFlowId": cluster, "Steps": [step]}),
                Idempotency::NotIdempotent(gate),
            )
            .await?;
        let step_id = out["StepIds"][0].as_str().ok_or_else(|| {
            ProviderError::transient(
                PROVIDER,
                format!("AddJobFlowSteps: no StepIds in the answer: {out}"),
            )
        })?;
        Ok(Handle::new(
            json!({"cluster_id": cluster, "step_id": step_id}),
        ))
    }

    fn submit_is_idempotent(&self) -> bool {
        false
    }

    /// <https://docs.aws.amazon.com/emr/latest/APIReference/API_DescribeStep.html>
    async fn status(&self, handle: &Handle) -> Result<RemoteStatus, ProviderError> {
        let (cluster, step) = handle_parts(handle)?;
        let out = self
            .client
            .json11(
                TARGET,
                "DescribeStep",
                &json!({"ClusterId": cluster, "StepId": step}),
                Idempotency::Idempotent,
            )
            .await?;
        Ok(step_status(&out["Step"]["Status"]))
    }

    /// <https://docs.aws.amazon.com/emr/latest/APIReference/API_CancelSteps.html>
    async fn cancel(&self, handle: &Handle) -> Result<(), ProviderError> {
        let (cluster, step) = handle_parts(handle)?;
        let out = self
            .client
            .json11(TARGET, "CancelSteps", &json!({"ClusterId": cluster, "StepIds": [step], "StepCancellationOption": "SEND_INTERRUPT"}), Idempotency::Idempotent)
            .await?;
        match out["CancelStepsInfoList"][0]["Status"].as_str() {
            Some("FAILED") => Err(ProviderError::permanent(
                PROVIDER,
                format!("CancelSteps: {}", out["CancelStepsInfoList"][0]["Reason"]),
            )),
            _ => Ok(()),
        }
    }

    /// Lists the cluster's steps (`ListSteps`, paged by `Marker`) for one named with the key.
    async fn find(
        &self,
        key: &str,
        spec: &Value,
        _intent_ms: i64,
    ) -> Result<Vec<Handle>, ProviderError> {
        let Some(cluster) = spec.get("cluster_id").and_then(Value::as_str) else {
            return Ok(Vec::new());
        };
        let wanted = tagged_name(spec["step"].get("Name").and_then(Value::as_str), key);
        let list = |marker| self.list_steps(json!({"ClusterId": cluster}), marker);
        find_in_pages(
            self.config.find_max_pages,
            "Steps",
            "Marker",
            list,
            |step| {
                (step["Name"].as_str() == Some(wanted.as_str())).then(|| {
                    (
                        Handle::new(json!({"cluster_id": cluster, "step_id": step["Id"]})),
                        timestamp(&step["Status"]["Timeline"]["CreationDateTime"]),
                    )
                })
            },
        )
        .await
    }

    /// `ListSteps` of each cluster, for its pending and running steps.
    /// <https://docs.aws.amazon.com/emr/latest/APIReference/API_ListSteps.html>
    async fn status_many(&self, jobs: &[Tracked<'_>]) -> Result<Sweep, ProviderError> {
        sweep(jobs, (Some("cluster_id"), "step_id"), |g| {
            self.list_active(g)
        })
        .await
    }

    adapter_settings!();
}
