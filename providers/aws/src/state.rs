//! How EMR step, EMR Serverless job run, Glue job run, Batch job and ECS task states map to
//! tether's.
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

/// AWS Batch job states (botocore `JobStatus`):
/// <https://docs.aws.amazon.com/batch/latest/APIReference/API_JobDetail.html>. A job that was
/// cancelled or terminated also reads `FAILED`: the adapter tells a cancel apart by the job's
/// `isCancelled` / `isTerminated` flags and its reason (see `batch.rs`).
pub fn batch_job(raw: &str) -> JobState {
    match raw {
        "SUBMITTED" | "PENDING" | "RUNNABLE" | "STARTING" => JobState::Pending,
        "RUNNING" => JobState::Running,
        "SUCCEEDED" => JobState::Succeeded,
        "FAILED" => JobState::Failed,
        other => unknown("batch", other),
    }
}

/// Amazon ECS task `lastStatus` values (the task life cycle:
/// <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html>).
/// A stopped task's end is decided by its stop code and its containers' exit codes
/// ([`ecs_stopped`]); this is the state before that.
pub fn ecs_task(raw: &str) -> JobState {
    match raw {
        "PROVISIONING" | "PENDING" | "ACTIVATING" => JobState::Pending,
        // The containers may have exited, but the task has not stopped yet.
        "RUNNING" | "DEACTIVATING" | "STOPPING" | "DEPROVISIONING" => JobState::Running,
        // Decided by `ecs_stopped`; failed until shown otherwise.
        "STOPPED" | "DELETED" => JobState::Failed,
        other => unknown("ecs", other),
    }
}

/// How a stopped ECS task ended: `stop_code` (botocore `TaskStopCode`) and its containers'
/// exit codes (`None`: a container without one). Succeeded only when its essential container
/// exited and every container exited 0 (as Airflow's `EcsRunTaskOperator` judges it);
/// cancelled when a user stopped it (`StopTask`); failed otherwise, including a stop code
/// AWS adds later.
pub fn ecs_stopped(stop_code: Option<&str>, exit_codes: &[Option<i64>]) -> JobState {
    match stop_code {
        Some("EssentialContainerExited")
            if !exit_codes.is_empty() && exit_codes.iter().all(|c| *c == Some(0)) =>
        {
            JobState::Succeeded
        }
        Some("UserInitiated") => JobState::Cancelled,
        Some(
            "EssentialContainerExited"
            | "TaskFailedToStart"
            | "ServiceSchedulerInitiated"
            | "SpotInterruption"
            | "TerminationNotice"
            | "InfrastructureHealth",
        ) => JobState::Failed,
        other => {
            tracing::warn!(
                provider = "ecs",
                stop_code = other,
                "unknown ECS stop code; the stopped task counts as failed"
            );
            JobState::Failed
        }
    }
}

/// AWS Step Functions execution states (botocore `ExecutionStatus`):
/// <https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html>.
/// `PENDING_REDRIVE`: a redrive of a failed execution was asked for, and it will run again.
pub fn stepfunctions_execution(raw: &str) -> JobState {
    match raw {
        "PENDING_REDRIVE" => JobState::Pending,
        "RUNNING" => JobState::Running,
        "SUCCEEDED" => JobState::Succeeded,
        "FAILED" | "TIMED_OUT" => JobState::Failed,
        "ABORTED" => JobState::Cancelled,
        other => unknown("stepfunctions", other),
    }
}

/// Amazon SageMaker training and processing job states (botocore `TrainingJobStatus`,
/// `ProcessingJobStatus`). `Deleting` (training jobs only): on its way to being gone, and
/// then lost.
pub fn sagemaker_job(raw: &str) -> JobState {
    match raw {
        "InProgress" | "Stopping" | "Deleting" => JobState::Running,
        "Completed" => JobState::Succeeded,
        "Failed" => JobState::Failed,
        "Stopped" => JobState::Cancelled,
        other => unknown("sagemaker", other),
    }
}

/// Amazon EMR on EKS job run states (botocore `emr-containers` `JobRunState`).
pub fn emr_containers_run(raw: &str) -> JobState {
    match raw {
        "PENDING" | "SUBMITTED" => JobState::Pending,
        "RUNNING" | "CANCEL_PENDING" => JobState::Running,
        "COMPLETED" => JobState::Succeeded,
        "FAILED" => JobState::Failed,
        "CANCELLED" => JobState::Cancelled,
        other => unknown("emr-containers", other),
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
        for (raw, want) in [
            ("SUBMITTED", JobState::Pending),
            ("PENDING", JobState::Pending),
            ("RUNNABLE", JobState::Pending),
            ("STARTING", JobState::Pending),
            ("RUNNING", JobState::Running),
            ("SUCCEEDED", JobState::Succeeded),
            ("FAILED", JobState::Failed),
        ] {
            assert_eq!(batch_job(raw), want, "{raw}");
        }
        for (raw, want) in [
            ("PROVISIONING", JobState::Pending),
            ("PENDING", JobState::Pending),
            ("ACTIVATING", JobState::Pending),
            ("RUNNING", JobState::Running),
            ("DEACTIVATING", JobState::Running),
            ("STOPPING", JobState::Running),
            ("DEPROVISIONING", JobState::Running),
            ("STOPPED", JobState::Failed),
            ("DELETED", JobState::Failed),
        ] {
            assert_eq!(ecs_task(raw), want, "{raw}");
        }
        let ok = [Some(0), Some(0)];
        for (code, exits, want) in [
            ("EssentialContainerExited", &ok[..], JobState::Succeeded),
            (
                "EssentialContainerExited",
                &[Some(0), Some(1)][..],
                JobState::Failed,
            ),
            (
                "EssentialContainerExited",
                &[Some(0), None][..],
                JobState::Failed,
            ),
            ("EssentialContainerExited", &[][..], JobState::Failed),
            ("UserInitiated", &ok[..], JobState::Cancelled),
            ("TaskFailedToStart", &[None][..], JobState::Failed),
            ("ServiceSchedulerInitiated", &ok[..], JobState::Failed),
            ("SpotInterruption", &ok[..], JobState::Failed),
            ("TerminationNotice", &ok[..], JobState::Failed),
            ("InfrastructureHealth", &ok[..], JobState::Failed),
            ("AStopCodeInventedTomorrow", &ok[..], JobState::Failed),
        ] {
            assert_eq!(ecs_stopped(Some(code), exits), want, "{code} {exits:?}");
        }
        assert_eq!(ecs_stopped(None, &ok), JobState::Failed);
        for (raw, want) in [
            ("PENDING_REDRIVE", JobState::Pending),
            ("RUNNING", JobState::Running),
            ("SUCCEEDED", JobState::Succeeded),
            ("FAILED", JobState::Failed),
            ("TIMED_OUT", JobState::Failed),
            ("ABORTED", JobState::Cancelled),
        ] {
            assert_eq!(stepfunctions_execution(raw), want, "{raw}");
        }
        for (raw, want) in [
            ("InProgress", JobState::Running),
            ("Stopping", JobState::Running),
            ("Deleting", JobState::Running),
            ("Completed", JobState::Succeeded),
            ("Failed", JobState::Failed),
            ("Stopped", JobState::Cancelled),
        ] {
            assert_eq!(sagemaker_job(raw), want, "{raw}");
        }
        for (raw, want) in [
            ("PENDING", JobState::Pending),
            ("SUBMITTED", JobState::Pending),
            ("RUNNING", JobState::Running),
            ("CANCEL_PENDING", JobState::Running),
            ("COMPLETED", JobState::Succeeded),
            ("FAILED", JobState::Failed),
            ("CANCELLED", JobState::Cancelled),
        ] {
            assert_eq!(emr_containers_run(raw), want, "{raw}");
        }
        assert_eq!(stepfunctions_execution("PAUSED"), JobState::Running);
        assert_eq!(sagemaker_job("Completed2"), JobState::Running);
        assert_eq!(emr_containers_run("DONE"), JobState::Running);
        assert_eq!(batch_job("QUEUED_TOMORROW"), JobState::Running);
        assert_eq!(ecs_task("HIBERNATING"), JobState::Running);
        assert_eq!(emr_step("EXPLODED"), JobState::Running);
        assert_eq!(emr_serverless_run(""), JobState::Running);
        assert_eq!(glue_run("MAYBE"), JobState::Running);
    }
}
