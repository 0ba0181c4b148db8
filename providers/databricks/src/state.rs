//! How Databricks run states map to tether's.
//!
//! A run carries the classic `state` (`life_cycle_state` + `result_state`) and, in newer
//! workspaces, `status` (`state` + `termination_details`). `status` wins when it says the run
//! terminated with details; otherwise the classic fields decide. A state this table does not
//! know is reported as running with a warning: never as success.
//!
//! Reference: <https://docs.databricks.com/api/workspace/jobs/getrun>

use tether_provider::{JobState, RemoteStatus};

use crate::client::Run;

/// Maps a `runs/get` answer to tether's status.
pub fn run_status(run: &Run) -> RemoteStatus {
    let classic = run.state.as_ref();
    let life = classic.and_then(|s| s.life_cycle_state.as_deref());
    let result = classic.and_then(|s| s.result_state.as_deref());
    let mut message = classic
        .and_then(|s| s.state_message.clone())
        .filter(|m| !m.is_empty());

    let newer = run.status.as_ref();
    let status_state = newer.and_then(|s| s.state.as_deref());
    let details = newer.and_then(|s| s.termination_details.as_ref());

    let (state, raw) = match (status_state, details) {
        (Some("TERMINATED"), Some(d)) if d.code.is_some() => {
            let code = d.code.as_deref().unwrap_or_default();
            if let Some(m) = d.message.clone().filter(|m| !m.is_empty()) {
                message = Some(m);
            }
            (termination_code(code), format!("TERMINATED/{code}"))
        }
        (Some(s), _) if life.is_none() => (status_only(s), s.to_string()),
        _ => {
            let life_name = life.unwrap_or("");
            let raw = match result {
                Some(r) => format!("{life_name}/{r}"),
                None => life_name.to_string(),
            };
            (classic_state(life_name, result), raw)
        }
    };
    let state = state.unwrap_or_else(|| {
        tracing::warn!(
            provider = "databricks",
            run_id = run.run_id,
            raw_state = %raw,
            "unknown Databricks run state; treating it as running"
        );
        JobState::Running
    });
    RemoteStatus {
        state,
        raw_state: raw,
        message,
        url: run.run_page_url.clone(),
        next_poll_hint: None,
    }
}

fn classic_state(life: &str, result: Option<&str>) -> Option<JobState> {
    Some(match life {
        "QUEUED" | "PENDING" | "BLOCKED" | "WAITING_FOR_RETRY" => JobState::Pending,
        "RUNNING" | "TERMINATING" => JobState::Running,
        "SKIPPED" => JobState::Cancelled,
        "INTERNAL_ERROR" => JobState::Failed,
        // Terminated: the result decides. Without one the run is not finished for us.
        "TERMINATED" => return result.and_then(result_state),
        _ => return None,
    })
}

fn result_state(result: &str) -> Option<JobState> {
    Some(match result {
        "SUCCESS" | "SUCCESS_WITH_FAILURES" | "EXCLUDED" => JobState::Succeeded,
        "FAILED" | "TIMEDOUT" | "MAXIMUM_CONCURRENT_RUNS_REACHED" | "UPSTREAM_FAILED" => {
            JobState::Failed
        }
        "CANCELED" | "UPSTREAM_CANCELED" | "DISABLED" => JobState::Cancelled,
        _ => return None,
    })
}

fn status_only(state: &str) -> Option<JobState> {
    Some(match state {
        "QUEUED" | "PENDING" | "BLOCKED" | "WAITING" => JobState::Pending,
        "RUNNING" | "TERMINATING" => JobState::Running,
        _ => return None,
    })
}

fn termination_code(code: &str) -> Option<JobState> {
    Some(match code {
        "SUCCESS" | "SUCCESS_WITH_FAILURES" => JobState::Succeeded,
        "USER_CANCELED" | "CANCELED" | "SKIPPED" | "DISABLED" => JobState::Cancelled,
        "" => return None,
        // Every other code names a failure (RUN_EXECUTION_ERROR, DRIVER_ERROR, ...).
        _ => JobState::Failed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status(v: serde_json::Value) -> RemoteStatus {
        run_status(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn classic_states() {
        let cases = [
            ("QUEUED", None, JobState::Pending),
            ("PENDING", None, JobState::Pending),
            ("BLOCKED", None, JobState::Pending),
            ("WAITING_FOR_RETRY", None, JobState::Pending),
            ("RUNNING", None, JobState::Running),
            ("TERMINATING", None, JobState::Running),
            ("TERMINATED", Some("SUCCESS"), JobState::Succeeded),
            (
                "TERMINATED",
                Some("SUCCESS_WITH_FAILURES"),
                JobState::Succeeded,
            ),
            ("TERMINATED", Some("EXCLUDED"), JobState::Succeeded),
            ("TERMINATED", Some("FAILED"), JobState::Failed),
            ("TERMINATED", Some("TIMEDOUT"), JobState::Failed),
            (
                "TERMINATED",
                Some("MAXIMUM_CONCURRENT_RUNS_REACHED"),
                JobState::Failed,
            ),
            ("TERMINATED", Some("UPSTREAM_FAILED"), JobState::Failed),
            ("TERMINATED", Some("CANCELED"), JobState::Cancelled),
            ("TERMINATED", Some("UPSTREAM_CANCELED"), JobState::Cancelled),
            ("TERMINATED", Some("DISABLED"), JobState::Cancelled),
            ("SKIPPED", None, JobState::Cancelled),
            ("INTERNAL_ERROR", Some("FAILED"), JobState::Failed),
        ];
        for (life, result, want) in cases {
            let s = status(
                json!({"run_id": 1, "state": {"life_cycle_state": life, "result_state": result}}),
            );
            assert_eq!(s.state, want, "{life}/{result:?}");
        }
    }

    #[test]
    fn unknown_states_are_running_never_success() {
        for v in [
            json!({"run_id": 1, "state": {"life_cycle_state": "FROBNICATING"}}),
            json!({"run_id": 1, "state": {"life_cycle_state": "TERMINATED", "result_state": "MAYBE"}}),
            json!({"run_id": 1, "state": {"life_cycle_state": "TERMINATED"}}),
            json!({"run_id": 1}),
        ] {
            assert_eq!(status(v.clone()).state, JobState::Running, "{v}");
        }
        let s = status(json!({"run_id": 1, "state": {"life_cycle_state": "FROBNICATING"}}));
        assert_eq!(s.raw_state, "FROBNICATING");
    }

    #[test]
    fn newer_status_field() {
        let s = status(json!({"run_id": 1,
            "state": {"life_cycle_state": "TERMINATED", "result_state": "FAILED"},
            "status": {"state": "TERMINATED", "termination_details":
                {"code": "DRIVER_ERROR", "type": "CLOUD_FAILURE", "message": "driver lost"}}}));
        assert_eq!(s.state, JobState::Failed);
        assert_eq!(s.raw_state, "TERMINATED/DRIVER_ERROR");
        assert_eq!(s.message.as_deref(), Some("driver lost"));
        let s = status(json!({"run_id": 1, "status": {"state": "TERMINATED",
            "termination_details": {"code": "USER_CANCELED", "type": "SUCCESS"}}}));
        assert_eq!(s.state, JobState::Cancelled);
        let s = status(json!({"run_id": 1, "status": {"state": "WAITING"}}));
        assert_eq!(s.state, JobState::Pending);
    }
}
