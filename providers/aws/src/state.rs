//! How EMR step, EMR Serverless job run and Glue job run states map to tether's.
//!
//! A state not listed maps to running with a warning: never to success.

use tether_provider::JobState;

fn unknown(provider: &str, raw: &str) -> JobState {
    tracing::warn!(
        provider,
        raw_state = raw,
        "unknown AWS state; treating it as running"
    );
    JobState::Running
}

/// EMR step states: <https://docs.aws.amazon.com/emr/latest/APIReference/API_StepStatus.html>
pub fn emr_step(raw: &str) -> JobState {
    match raw {
        "PENDING" => JobState::Pending,
        "RUNNING" | "CANCEL_PENDING" => JobState::Running,
        "COMPLETED" => JobState::Succeeded,
        "CANCELLED" => JobState::Cancelled,
        "FAILED" | "INTERRUPTED" => JobState::Failed,
        other => unknown("emr", other),
    }
}

/// EMR Serverless job run states: <https://docs.aws.amazon.com/emr-serverless/latest/APIReference/API_JobRun.html>
pub fn emr_serverless_run(raw: &str) -> JobState {
    match raw {
        "SUBMITTED" | "PENDING" | "SCHEDULED" | "QUEUED" => JobState::Pending,
        "RUNNING" | "CANCELLING" => JobState::Running,
        "SUCCESS" => JobState::Succeeded,
        "FAILED" => JobState::Failed,
        "CANCELLED" => JobState::Cancelled,
        other => unknown("emr-serverless", other),
    }
}

/// Glue job run states: <https://docs.aws.amazon.com/glue/latest/webapi/API_JobRun.html>
pub fn glue_run(raw: &str) -> JobState {
    match raw {
        "STARTING" | "WAITING" => JobState::Pending,
        "RUNNING" | "STOPPING" => JobState::Running,
        "SUCCEEDED" => JobState::Succeeded,
        "FAILED" | "TIMEOUT" | "ERROR" | "EXPIRED" => JobState::Failed,
        "STOPPED" => JobState::Cancelled,
        other => unknown("glue", other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_state_maps_and_unknown_is_running() {
        for (raw, want) in [
            ("PENDING", JobState::Pending),
            ("CANCEL_PENDING", JobState::Running),
            ("RUNNING", JobState::Running),
            ("COMPLETED", JobState::Succeeded),
            ("CANCELLED", JobState::Cancelled),
            ("FAILED", JobState::Failed),
            ("INTERRUPTED", JobState::Failed),
        ] {
            assert_eq!(emr_step(raw), want, "{raw}");
        }
        for (raw, want) in [
            ("SUBMITTED", JobState::Pending),
            ("PENDING", JobState::Pending),
            ("SCHEDULED", JobState::Pending),
            ("QUEUED", JobState::Pending),
            ("RUNNING", JobState::Running),
            ("CANCELLING", JobState::Running),
            ("SUCCESS", JobState::Succeeded),
            ("FAILED", JobState::Failed),
            ("CANCELLED", JobState::Cancelled),
        ] {
            assert_eq!(emr_serverless_run(raw), want, "{raw}");
        }
        for (raw, want) in [
            ("STARTING", JobState::Pending),
            ("WAITING", JobState::Pending),
            ("RUNNING", JobState::Running),
            ("STOPPING", JobState::Running),
            ("SUCCEEDED", JobState::Succeeded),
            ("FAILED", JobState::Failed),
            ("TIMEOUT", JobState::Failed),
            ("ERROR", JobState::Failed),
            ("EXPIRED", JobState::Failed),
            ("STOPPED", JobState::Cancelled),
        ] {
            assert_eq!(glue_run(raw), want, "{raw}");
        }
        assert_eq!(emr_step("EXPLODED"), JobState::Running);
        assert_eq!(emr_serverless_run(""), JobState::Running);
        assert_eq!(glue_run("MAYBE"), JobState::Running);
    }
}
