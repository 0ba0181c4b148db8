//! EMR Serverless job runs (REST JSON, SigV4 service `emr-serverless`), a [`JobRuns`]
//! description.
//!
//! A job spec is the `StartJobRun` body plus `applicationId`:
//! `{"applicationId": "...", "executionRoleArn": "...", "jobDriver": {...}, ...}`. tether sets
//! `clientToken` to its key, so AWS deduplicates a repeated submission, and names the run
//! `<name> [<key>]` so that `find` can list it (`ListJobRuns` has no name filter: `find` reads
//! the application's runs). A coalesced sweep lists each application's active runs created
//! since the oldest asked about (`ListJobRuns` with `states` and `createdAtAfter`).
//!
//! <https://docs.aws.amazon.com/emr-serverless/latest/APIReference/API_StartJobRun.html>,
//! `API_GetJobRun.html`, `API_CancelJobRun.html`, `API_ListJobRuns.html`.

use serde_json::Value;

use crate::kit::{text, JobRuns, Kit, Parent};

/// The EMR Serverless adapter.
pub type EmrServerless = Kit<JobRuns>;

/// The service, as the kit runs it.
pub const API: JobRuns = JobRuns {
    kind: "emr-serverless",
    parent: Parent {
        spec: "applicationId",
        handle: "application_id",
        path: "applications",
    },
    started_id: "jobRunId",
    describe_op: "GetJobRun",
    name: |name, key| crate::tagged_name(name, key),
    name_filter: false,
    created_after: "createdAtAfter",
    active: &[
        "SUBMITTED",
        "PENDING",
        "SCHEDULED",
        "RUNNING",
        "CANCELLING",
        "QUEUED",
    ],
    state: crate::state::emr_serverless_run,
    message: |run| text(&run["stateDetails"]).map(str::to_string),
    check,
};

fn check(spec: &Value) -> Result<(), String> {
    let ok = text(&spec["applicationId"]).is_some()
        && spec
            .get("executionRoleArn")
            .and_then(Value::as_str)
            .is_some()
        && spec.get("jobDriver").is_some_and(Value::is_object)
        && spec.get("clientToken").is_none();
    if ok {
        Ok(())
    } else {
        Err("the job spec must hold applicationId, executionRoleArn and jobDriver (and no clientToken: tether sets it)".into())
    }
}
