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
    use JobState::{Cancelled, Failed, Running, Succeeded};

    /// A state mapping.
    type Mapping = fn(&str) -> JobState;

    /// Each mapping, with a state it does not know. That every documented state reads as
    /// documented is the conformance suite's `documented_states` scenario: it sets each state
    /// of the simulator's list (botocore's enums) on a job and reads it through the adapter.
    const UNKNOWN: &[(Mapping, &str)] = &[
        (emr_step, "EXPLODED"),
        (emr_serverless_run, ""),
        (glue_run, "MAYBE"),
        (batch_job, "QUEUED_TOMORROW"),
        (ecs_task, "HIBERNATING"),
        (stepfunctions_execution, "PAUSED"),
        (sagemaker_job, "Completed2"),
        (emr_containers_run, "DONE"),
        (redshift_statement, "ALL"),
        (athena_query, "SUCCEEDING"),
    ];

    #[test]
    fn an_unknown_state_is_running() {
        for (map, unknown) in UNKNOWN {
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
