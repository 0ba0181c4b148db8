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

/// Amazon Redshift Data API statement states (botocore `redshift-data` `StatusString`; `ALL`
/// is a list filter, never a statement's state).
pub fn redshift_statement(raw: &str) -> JobState {
    match raw {
        "SUBMITTED" | "PICKED" => JobState::Pending,
        "STARTED" => JobState::Running,
        "FINISHED" => JobState::Succeeded,
        "FAILED" => JobState::Failed,
        "ABORTED" => JobState::Cancelled,
        other => unknown("redshift-data", other),
    }
}

/// Amazon Athena query states (botocore `athena` `QueryExecutionState`; "certain transient
/// errors" move a running query back to `QUEUED`).
pub fn athena_query(raw: &str) -> JobState {
    match raw {
        "QUEUED" => JobState::Pending,
        "RUNNING" => JobState::Running,
        "SUCCEEDED" => JobState::Succeeded,
        "FAILED" => JobState::Failed,
        "CANCELLED" => JobState::Cancelled,
        other => unknown("athena", other),
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
    use JobState::{Cancelled, Failed, Pending, Running, Succeeded};

    /// A mapping, its documented states with what each reads as, and a state it does not know.
    type Table = (
        fn(&str) -> JobState,
        &'static [(&'static str, JobState)],
        &'static str,
    );

    const TABLES: &[Table] = &[
        (
            emr_step,
            &[
                ("PENDING", Pending),
                ("CANCEL_PENDING", Running),
                ("RUNNING", Running),
                ("COMPLETED", Succeeded),
                ("CANCELLED", Cancelled),
                ("FAILED", Failed),
                ("INTERRUPTED", Failed),
            ],
            "EXPLODED",
        ),
        (
            emr_serverless_run,
            &[
                ("SUBMITTED", Pending),
                ("PENDING", Pending),
                ("SCHEDULED", Pending),
                ("QUEUED", Pending),
                ("RUNNING", Running),
                ("CANCELLING", Running),
                ("SUCCESS", Succeeded),
                ("FAILED", Failed),
                ("CANCELLED", Cancelled),
            ],
            "",
        ),
        (
            glue_run,
            &[
                ("STARTING", Pending),
                ("WAITING", Pending),
                ("RUNNING", Running),
                ("STOPPING", Running),
                ("SUCCEEDED", Succeeded),
                ("FAILED", Failed),
                ("TIMEOUT", Failed),
                ("ERROR", Failed),
                ("EXPIRED", Failed),
                ("STOPPED", Cancelled),
            ],
            "MAYBE",
        ),
        (
            batch_job,
            &[
                ("SUBMITTED", Pending),
                ("PENDING", Pending),
                ("RUNNABLE", Pending),
                ("STARTING", Pending),
                ("RUNNING", Running),
                ("SUCCEEDED", Succeeded),
                ("FAILED", Failed),
            ],
            "QUEUED_TOMORROW",
        ),
        (
            ecs_task,
            &[
                ("PROVISIONING", Pending),
                ("PENDING", Pending),
                ("ACTIVATING", Pending),
                ("RUNNING", Running),
                ("DEACTIVATING", Running),
                ("STOPPING", Running),
                ("DEPROVISIONING", Running),
                ("STOPPED", Failed),
                ("DELETED", Failed),
            ],
            "HIBERNATING",
        ),
        (
            stepfunctions_execution,
            &[
                ("PENDING_REDRIVE", Pending),
                ("RUNNING", Running),
                ("SUCCEEDED", Succeeded),
                ("FAILED", Failed),
                ("TIMED_OUT", Failed),
                ("ABORTED", Cancelled),
            ],
            "PAUSED",
        ),
        (
            sagemaker_job,
            &[
                ("InProgress", Running),
                ("Stopping", Running),
                ("Deleting", Running),
                ("Completed", Succeeded),
                ("Failed", Failed),
                ("Stopped", Cancelled),
            ],
            "Completed2",
        ),
        (
            emr_containers_run,
            &[
                ("PENDING", Pending),
                ("SUBMITTED", Pending),
                ("RUNNING", Running),
                ("CANCEL_PENDING", Running),
                ("COMPLETED", Succeeded),
                ("FAILED", Failed),
                ("CANCELLED", Cancelled),
            ],
            "DONE",
        ),
        (
            redshift_statement,
            &[
                ("SUBMITTED", Pending),
                ("PICKED", Pending),
                ("STARTED", Running),
                ("FINISHED", Succeeded),
                ("FAILED", Failed),
                ("ABORTED", Cancelled),
            ],
            "ALL",
        ),
        (
            athena_query,
            &[
                ("QUEUED", Pending),
                ("RUNNING", Running),
                ("SUCCEEDED", Succeeded),
                ("FAILED", Failed),
                ("CANCELLED", Cancelled),
            ],
            "SUCCEEDING",
        ),
    ];

    #[test]
    fn every_documented_state_maps_and_unknown_is_running() {
        for (map, documented, unknown) in TABLES {
            for (raw, want) in *documented {
                assert_eq!(map(raw), *want, "{raw}");
            }
            assert_eq!(map(unknown), Running, "{unknown}");
        }
    }

    #[test]
    fn a_stopped_ecs_task_is_judged_by_its_stop_code_and_exit_codes() {
        let ok = [Some(0), Some(0)];
        for (code, exits, want) in [
            ("EssentialContainerExited", &ok[..], Succeeded),
            ("EssentialContainerExited", &[Some(0), Some(1)][..], Failed),
            ("EssentialContainerExited", &[Some(0), None][..], Failed),
            ("EssentialContainerExited", &[][..], Failed),
            ("UserInitiated", &ok[..], Cancelled),
            ("TaskFailedToStart", &[None][..], Failed),
            ("ServiceSchedulerInitiated", &ok[..], Failed),
            ("SpotInterruption", &ok[..], Failed),
            ("TerminationNotice", &ok[..], Failed),
            ("InfrastructureHealth", &ok[..], Failed),
            ("AStopCodeInventedTomorrow", &ok[..], Failed),
        ] {
            assert_eq!(ecs_stopped(Some(code), exits), want, "{code} {exits:?}");
        }
        assert_eq!(ecs_stopped(None, &ok), Failed);
    }
}
