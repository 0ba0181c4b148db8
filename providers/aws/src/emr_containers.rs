//! Amazon EMR on EKS job runs (REST JSON, SigV4 service `emr-containers`), a [`JobRuns`]
//! description.
//!
//! A job spec is the `StartJobRun` body plus `virtualClusterId`: `{"virtualClusterId": "...",
//! "name": "...", "executionRoleArn": "...", "releaseLabel": "...", "jobDriver": {...}}`.
//! tether sets `clientToken` (required by the API) to its key, so AWS deduplicates a repeated
//! submission, and names the run `<name>-<key>` (within 64 characters), so that `find` lists
//! the virtual cluster's runs by that name (`ListJobRuns` with `name`).
//!
//! A coalesced sweep lists each virtual cluster's active runs created since the oldest asked
//! about (`ListJobRuns` with `states` and `createdAfter`).
//!
//! <https://docs.aws.amazon.com/emr-on-eks/latest/APIReference/API_StartJobRun.html>,
//! `API_DescribeJobRun.html`, `API_CancelJobRun.html`, `API_ListJobRuns.html`.

use serde_json::Value;

use crate::keyed_name;
use crate::kit::{text, JobRuns, Kit, Parent};

/// The EMR on EKS adapter.
pub type EmrContainers = Kit<JobRuns>;

/// The longest run name (`ResourceNameString`).
const NAME_MAX: usize = 64;

/// The service, as the kit runs it.
pub const API: JobRuns = JobRuns {
    kind: "emr-containers",
    parent: Parent {
        spec: "virtualClusterId",
        handle: "virtual_cluster_id",
        path: "virtualclusters",
    },
    started_id: "id",
    describe_op: "DescribeJobRun",
    name: run_name,
    name_filter: true,
    created_after: "createdAfter",
    active: &["PENDING", "SUBMITTED", "RUNNING", "CANCEL_PENDING"],
    state: crate::state::emr_containers_run,
    // `failureReason: stateDetails`.
    message: |run| crate::reason_message(run, "failureReason", "stateDetails"),
    check,
};

/// The run name carrying `key`.
pub fn run_name(name: Option<&str>, key: &str) -> String {
    keyed_name(name, key, NAME_MAX)
}

/// `[.\-_/#A-Za-z0-9]+`, as the model says.
fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_/#".contains(c))
}

fn check(spec: &Value) -> Result<(), String> {
    let has = |k: &str| text(&spec[k]).is_some();
    if !spec.is_object() || !has("virtualClusterId") {
        return Err("the job spec must be a StartJobRun body plus virtualClusterId".into());
    }
    if !(spec.get("jobTemplateId").is_some()
        || (has("executionRoleArn") && has("releaseLabel") && spec["jobDriver"].is_object()))
    {
        return Err(
            "the job spec needs executionRoleArn, releaseLabel and jobDriver (or a jobTemplateId)"
                .into(),
        );
    }
    if spec.get("clientToken").is_some() {
        return Err("clientToken must be absent: tether sets it to its key".into());
    }
    match spec.get("name") {
        None => Ok(()),
        Some(Value::String(n)) if name_ok(n) => Ok(()),
        Some(other) => Err(format!(
            "name {other} must hold only letters, digits and . - _ / # (tether appends its key)"
        )),
    }
}
