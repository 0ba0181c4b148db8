//! How each Google kind's states map to tether's.
//!
//! Dataproc (`google/cloud/dataproc/v1/jobs.proto`, `batches.proto`): a job's
//! `status.state` ends `DONE`, `ERROR` or `CANCELLED` (gcloud's terminal set);
//! `ATTEMPT_FAILURE` is an attempt of a restartable job, which is restarted, so not an end; a
//! cancel passes through `CANCEL_PENDING` and `CANCEL_STARTED`. A batch's `state` ends
//! `SUCCEEDED`, `FAILED` or `CANCELLED`. `status.details` and `stateMessage` are the message.
//!
//! BigQuery (`JobStatus` in `google/cloud/bigquery/v2/job_status.proto` and the discovery
//! document's `JobStatus`): `state` is `PENDING`, `RUNNING` or `DONE`; a `DONE` job "was
//! unsuccessful" when it carries `errorResult`, and a cancelled one ends `DONE` with the
//! reason `stopped` ("The job was stopped by a call to jobs.cancel"). tether writes the raw
//! state of an unsuccessful job as `DONE/<reason>`. A state the API does not document maps to
//! running with a warning, never to an end.

use serde::Deserialize;
use serde_json::Value;
use tether_provider::{JobState, RemoteStatus};

/// `status` of a BigQuery job (or a `jobs.list` entry's `state` and `errorResult`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    /// `PENDING`, `RUNNING` or `DONE`.
    #[serde(default)]
    pub state: String,
    /// Present when the job finished unsuccessfully.
    #[serde(default)]
    pub error_result: Option<ErrorProto>,
}

/// BigQuery's `ErrorProto`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorProto {
    /// `stopped`, `invalidQuery`, `backendError`, `timeout`, ...
    #[serde(default)]
    pub reason: String,
    /// What went wrong.
    #[serde(default)]
    pub message: String,
}

/// BigQuery's states and reasons, as tether reads them (the raw state `DONE/<reason>` of an
/// unsuccessful job): what the conformance suite holds the adapter to.
pub const BIGQUERY_STATES: &[(&str, JobState)] = &[
    ("PENDING", JobState::Pending),
    ("RUNNING", JobState::Running),
    ("DONE", JobState::Succeeded),
    ("DONE/stopped", JobState::Cancelled),
    ("DONE/invalidQuery", JobState::Failed),
    ("DONE/invalid", JobState::Failed),
    ("DONE/notFound", JobState::Failed),
    ("DONE/accessDenied", JobState::Failed),
    ("DONE/backendError", JobState::Failed),
    ("DONE/internalError", JobState::Failed),
    ("DONE/jobBackendError", JobState::Failed),
    ("DONE/jobInternalError", JobState::Failed),
    ("DONE/resourcesExceeded", JobState::Failed),
    ("DONE/quotaExceeded", JobState::Failed),
    ("DONE/responseTooLarge", JobState::Failed),
    ("DONE/timeout", JobState::Failed),
    ("DONE/billingTierLimitExceeded", JobState::Failed),
];

/// A BigQuery job's status.
pub fn bigquery_status(status: &JobStatus) -> RemoteStatus {
    match (status.state.as_str(), &status.error_result) {
        ("PENDING", _) => RemoteStatus::new(JobState::Pending, "PENDING", None),
        ("RUNNING", _) => RemoteStatus::new(JobState::Running, "RUNNING", None),
        ("DONE", None) => RemoteStatus::new(JobState::Succeeded, "DONE", None),
        ("DONE", Some(e)) => {
            let state = if e.reason == "stopped" {
                JobState::Cancelled
            } else {
                JobState::Failed
            };
            let message = (!e.message.is_empty()).then(|| e.message.clone());
            RemoteStatus::new(state, format!("DONE/{}", e.reason), message)
        }
        (other, _) => {
            tracing::warn!(
                provider = "bigquery",
                state = other,
                "a BigQuery job state tether does not know: read as running"
            );
            RemoteStatus::new(JobState::Running, other, None)
        }
    }
}

/// Dataproc's job states (`JobStatus.State`), as tether reads them.
pub const DATAPROC_JOB_STATES: &[(&str, JobState)] = &[
    ("PENDING", JobState::Pending),
    ("SETUP_DONE", JobState::Pending),
    ("RUNNING", JobState::Running),
    ("ATTEMPT_FAILURE", JobState::Running),
    ("CANCEL_PENDING", JobState::Running),
    ("CANCEL_STARTED", JobState::Running),
    ("CANCELLED", JobState::Cancelled),
    ("DONE", JobState::Succeeded),
    ("ERROR", JobState::Failed),
    ("STATE_UNSPECIFIED", JobState::Running),
];

/// Dataproc Serverless' batch states (`Batch.State`), as tether reads them.
pub const DATAPROC_BATCH_STATES: &[(&str, JobState)] = &[
    ("PENDING", JobState::Pending),
    ("RUNNING", JobState::Running),
    ("CANCELLING", JobState::Running),
    ("CANCELLED", JobState::Cancelled),
    ("SUCCEEDED", JobState::Succeeded),
    ("FAILED", JobState::Failed),
    ("STATE_UNSPECIFIED", JobState::Running),
];

/// The state `raw` maps to in `table`; an unknown one is running, with a warning.
fn mapped(
    kind: &str,
    table: &[(&str, JobState)],
    raw: &str,
    message: Option<String>,
) -> RemoteStatus {
    match table.iter().find(|(r, _)| *r == raw) {
        Some(&(_, state)) => RemoteStatus::new(state, raw, message),
        None => {
            tracing::warn!(
                provider = kind,
                state = raw,
                "a state tether does not know: read as running"
            );
            RemoteStatus::new(JobState::Running, raw, message)
        }
    }
}

/// A Dataproc job's status, from the job (`jobs.get`, a `jobs.list` entry).
pub fn job_status(job: &Value) -> RemoteStatus {
    let status = &job["status"];
    let raw = status["state"].as_str().unwrap_or("STATE_UNSPECIFIED");
    let message = status["details"]
        .as_str()
        .filter(|m| !m.is_empty())
        .map(str::to_string);
    mapped("dataproc-job", DATAPROC_JOB_STATES, raw, message)
}

/// A Dataproc Serverless batch's status, from the batch (`batches.get`, a list entry).
pub fn batch_status(batch: &Value) -> RemoteStatus {
    let raw = batch["state"].as_str().unwrap_or("STATE_UNSPECIFIED");
    let message = batch["stateMessage"]
        .as_str()
        .filter(|m| !m.is_empty())
        .map(str::to_string);
    mapped("dataproc-batch", DATAPROC_BATCH_STATES, raw, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(raw: &str) -> RemoteStatus {
        let (state, reason) = raw.split_once('/').unwrap_or((raw, ""));
        bigquery_status(&JobStatus {
            state: state.into(),
            error_result: (!reason.is_empty()).then(|| ErrorProto {
                reason: reason.into(),
                message: "m".into(),
            }),
        })
    }

    #[test]
    fn every_documented_state_reads_as_the_table_says() {
        for (raw, expected) in BIGQUERY_STATES {
            let status = status_of(raw);
            assert_eq!(status.state, *expected, "{raw}");
            assert_eq!(status.raw_state, *raw);
        }
    }

    #[test]
    fn dataproc_states_read_as_their_tables_say() {
        for (raw, expected) in DATAPROC_JOB_STATES {
            let job = serde_json::json!({"status": {"state": raw, "details": "d"}});
            assert_eq!(job_status(&job).state, *expected, "{raw}");
        }
        for (raw, expected) in DATAPROC_BATCH_STATES {
            let batch = serde_json::json!({"state": raw});
            assert_eq!(batch_status(&batch).state, *expected, "{raw}");
        }
        for odd in [
            serde_json::json!({}),
            serde_json::json!({"state": 5}),
            serde_json::json!({"state": "DONE"}),
        ] {
            assert!(!batch_status(&odd).state.is_terminal(), "{odd}");
        }
        assert!(
            !job_status(&serde_json::json!({"status": {"state": "SUCCEEDED"}}))
                .state
                .is_terminal()
        );
    }

    #[test]
    fn an_unknown_state_is_never_an_end() {
        for raw in ["", "SUCCEEDED", "done", "CANCELLED"] {
            assert_eq!(status_of(raw).state, JobState::Running, "{raw:?}");
        }
        // An unknown reason of a DONE job is still an unsuccessful end.
        assert_eq!(status_of("DONE/somethingNew").state, JobState::Failed);
    }
}
