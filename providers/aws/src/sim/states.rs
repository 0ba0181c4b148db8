//! The states of the simulated services, as botocore's models name them: what each reads as
//! (the oracle the conformance suite holds the adapters' `state.rs` to, written apart from
//! it), and which of them a simulated job's schedule passes through.

use tether_provider::JobState::{self, Cancelled, Failed, Pending, Running, Succeeded};

use crate::config::Service::{self, *};

/// Each service's documented states, and what each reads as: one row a state. The enums
/// are botocore's: EMR's `StepState`; EMR Serverless', Glue's and EMR on EKS' `JobRunState`;
/// Batch's `JobStatus`; ECS's task life cycle (`lastStatus`, a stopped task with the stop
/// codes of `TaskStopCode`); Step Functions' `ExecutionStatus`; SageMaker's
/// `TrainingJobStatus` (`ProcessingJobStatus` is the same less `Deleting`); Redshift Data's
/// `StatusString` (less `ALL`, a filter); Athena's `QueryExecutionState`.
pub(super) const DOCUMENTED: &[(Service, &str, JobState)] = &[
    (Emr, "PENDING", Pending),
    (Emr, "RUNNING", Running),
    (Emr, "CANCEL_PENDING", Running),
    (Emr, "COMPLETED", Succeeded),
    (Emr, "CANCELLED", Cancelled),
    (Emr, "FAILED", Failed),
    (Emr, "INTERRUPTED", Failed),
    (EmrServerless, "SUBMITTED", Pending),
    (EmrServerless, "PENDING", Pending),
    (EmrServerless, "SCHEDULED", Pending),
    (EmrServerless, "QUEUED", Pending),
    (EmrServerless, "RUNNING", Running),
    (EmrServerless, "CANCELLING", Running),
    (EmrServerless, "SUCCESS", Succeeded),
    (EmrServerless, "FAILED", Failed),
    (EmrServerless, "CANCELLED", Cancelled),
    (Glue, "STARTING", Pending),
    (Glue, "WAITING", Pending),
    (Glue, "RUNNING", Running),
    (Glue, "STOPPING", Running),
    (Glue, "SUCCEEDED", Succeeded),
    (Glue, "FAILED", Failed),
    (Glue, "TIMEOUT", Failed),
    (Glue, "ERROR", Failed),
    (Glue, "EXPIRED", Failed),
    (Glue, "STOPPED", Cancelled),
    (Batch, "SUBMITTED", Pending),
    (Batch, "PENDING", Pending),
    (Batch, "RUNNABLE", Pending),
    (Batch, "STARTING", Pending),
    (Batch, "RUNNING", Running),
    (Batch, "SUCCEEDED", Succeeded),
    (Batch, "FAILED", Failed),
    (Ecs, "PROVISIONING", Pending),
    (Ecs, "PENDING", Pending),
    (Ecs, "ACTIVATING", Pending),
    (Ecs, "RUNNING", Running),
    (Ecs, "DEACTIVATING", Running),
    (Ecs, "STOPPING", Running),
    (Ecs, "DEPROVISIONING", Running),
    (Ecs, "STOPPED", Succeeded),
    (Ecs, "STOPPED/EssentialContainerExited/1", Failed),
    (Ecs, "STOPPED/UserInitiated", Cancelled),
    (Ecs, "STOPPED/TaskFailedToStart", Failed),
    (Ecs, "STOPPED/ServiceSchedulerInitiated", Failed),
    (Ecs, "STOPPED/SpotInterruption", Failed),
    (Ecs, "STOPPED/TerminationNotice", Failed),
    (Ecs, "STOPPED/InfrastructureHealth", Failed),
    (Ecs, "DELETED", Succeeded),
    (StepFunctions, "RUNNING", Running),
    (StepFunctions, "SUCCEEDED", Succeeded),
    (StepFunctions, "FAILED", Failed),
    (StepFunctions, "TIMED_OUT", Failed),
    (StepFunctions, "ABORTED", Cancelled),
    (StepFunctions, "PENDING_REDRIVE", Pending),
    (SageMakerTraining, "InProgress", Running),
    (SageMakerTraining, "Completed", Succeeded),
    (SageMakerTraining, "Failed", Failed),
    (SageMakerTraining, "Stopping", Running),
    (SageMakerTraining, "Stopped", Cancelled),
    (SageMakerTraining, "Deleting", Running),
    (SageMakerProcessing, "InProgress", Running),
    (SageMakerProcessing, "Completed", Succeeded),
    (SageMakerProcessing, "Failed", Failed),
    (SageMakerProcessing, "Stopping", Running),
    (SageMakerProcessing, "Stopped", Cancelled),
    (EmrContainers, "PENDING", Pending),
    (EmrContainers, "SUBMITTED", Pending),
    (EmrContainers, "RUNNING", Running),
    (EmrContainers, "CANCEL_PENDING", Running),
    (EmrContainers, "COMPLETED", Succeeded),
    (EmrContainers, "FAILED", Failed),
    (EmrContainers, "CANCELLED", Cancelled),
    (RedshiftData, "SUBMITTED", Pending),
    (RedshiftData, "PICKED", Pending),
    (RedshiftData, "STARTED", Running),
    (RedshiftData, "FINISHED", Succeeded),
    (RedshiftData, "FAILED", Failed),
    (RedshiftData, "ABORTED", Cancelled),
    (Athena, "QUEUED", Pending),
    (Athena, "RUNNING", Running),
    (Athena, "SUCCEEDED", Succeeded),
    (Athena, "FAILED", Failed),
    (Athena, "CANCELLED", Cancelled),
];

/// `service`'s documented states.
pub(super) fn documented(service: Service) -> impl Iterator<Item = (&'static str, JobState)> {
    DOCUMENTED
        .iter()
        .filter(move |(s, _, _)| *s == service)
        .map(|(_, raw, state)| (*raw, *state))
}

/// The states a simulated job of `service` passes through: pending, running, succeeded,
/// cancelled and failed.
pub(super) fn lifecycle(service: Service) -> [&'static str; 5] {
    match service {
        Emr => ["PENDING", "RUNNING", "COMPLETED", "CANCELLED", "FAILED"],
        EmrServerless => ["SCHEDULED", "RUNNING", "SUCCESS", "CANCELLED", "FAILED"],
        Glue => ["STARTING", "RUNNING", "SUCCEEDED", "STOPPED", "FAILED"],
        Batch => ["RUNNABLE", "RUNNING", "SUCCEEDED", "FAILED", "FAILED"],
        // How a stopped task ended is in its stop code and exit codes.
        Ecs => ["PENDING", "RUNNING", "STOPPED", "STOPPED", "STOPPED"],
        // A STANDARD execution runs from its start.
        StepFunctions => ["RUNNING", "RUNNING", "SUCCEEDED", "ABORTED", "FAILED"],
        SageMakerTraining => ["InProgress", "InProgress", "Completed", "Stopped", "Failed"],
        SageMakerProcessing => ["InProgress", "InProgress", "Completed", "Stopped", "Failed"],
        EmrContainers => ["SUBMITTED", "RUNNING", "COMPLETED", "CANCELLED", "FAILED"],
        RedshiftData => ["SUBMITTED", "STARTED", "FINISHED", "ABORTED", "FAILED"],
        Athena => ["QUEUED", "RUNNING", "SUCCEEDED", "CANCELLED", "FAILED"],
    }
}
