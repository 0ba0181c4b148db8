//! The conditions tether knows for common batch resources, so that their specs need none
//! written: when each has succeeded, when it has failed, and where its status says why. A
//! spec's own `success`, `failure` and `message` replace these; any other kind of resource
//! must declare its own.
//!
//! | resource | succeeded | failed | message |
//! |---|---|---|---|
//! | `batch/v1` `Job` | condition `Complete` is `True` | condition `Failed` is `True` | the `Failed` condition's `message` |
//! | `sparkoperator.k8s.io/v1beta2` `SparkApplication` | `applicationState.state` `COMPLETED` | `FAILED`, `SUBMISSION_FAILED` | `applicationState.errorMessage` |
//! | `ray.io/v1` `RayJob` | `jobStatus` `SUCCEEDED` | `jobStatus` `FAILED` or `STOPPED`, or `jobDeploymentStatus` `Failed` | `message` |
//! | `kubeflow.org/v1` `PyTorchJob` | condition `Succeeded` is `True` | condition `Failed` is `True` | the `Failed` condition's `message` |
//! | `argoproj.io/v1alpha1` `Workflow` | `phase` `Succeeded` | `phase` `Failed` or `Error` | `message` |
//!
//! References: Kubernetes' `batch/v1` `JobStatus` (`JobConditionType`: `Complete`, `Failed`,
//! and since 1.31 `SuccessCriteriaMet` and `FailureTarget`, which come before them: tether
//! waits for the terminal two, after which the Job's pods are gone); the Spark operator's
//! `ApplicationStateType`; KubeRay's `JobStatus` and `JobDeploymentStatus`; Kubeflow's
//! training operator `JobConditionType`; Argo's `WorkflowPhase`.

/// One resource type's built-in conditions: any of `failure` is a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Builtin {
    /// The resource's API group (empty for the core group), without its version.
    pub group: &'static str,
    /// Its kind.
    pub kind: &'static str,
    /// When it has succeeded.
    pub success: &'static str,
    /// When it has failed: any of these.
    pub failure: &'static [&'static str],
    /// The path of the text saying why it ended as it did.
    pub message: &'static str,
    /// The path of its state, read as the job's raw state (a list of conditions: the type of
    /// the last that is `True`).
    pub state: &'static str,
}

/// The resources with built-in conditions.
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        group: "batch",
        kind: "Job",
        success: "status.conditions[type=Complete].status == True",
        failure: &["status.conditions[type=Failed].status == True"],
        message: "status.conditions[type=Failed].message",
        state: "status.conditions",
    },
    Builtin {
        group: "sparkoperator.k8s.io",
        kind: "SparkApplication",
        success: "status.applicationState.state == COMPLETED",
        failure: &["status.applicationState.state in (FAILED, SUBMISSION_FAILED)"],
        message: "status.applicationState.errorMessage",
        state: "status.applicationState.state",
    },
    Builtin {
        group: "ray.io",
        kind: "RayJob",
        success: "status.jobStatus == SUCCEEDED",
        failure: &[
            "status.jobStatus in (FAILED, STOPPED)",
            "status.jobDeploymentStatus == Failed",
        ],
        message: "status.message",
        state: "status.jobStatus",
    },
    Builtin {
        group: "kubeflow.org",
        kind: "PyTorchJob",
        success: "status.conditions[type=Succeeded].status == True",
        failure: &["status.conditions[type=Failed].status == True"],
        message: "status.conditions[type=Failed].message",
        state: "status.conditions",
    },
    Builtin {
        group: "argoproj.io",
        kind: "Workflow",
        success: "status.phase == Succeeded",
        failure: &["status.phase in (Failed, Error)"],
        message: "status.message",
        state: "status.phase",
    },
];

/// The built-in conditions of a resource of `api_version` (`group/version`, or `version` for
/// the core group) and `kind`, if tether has them (any version of the group).
pub fn of(api_version: &str, kind: &str) -> Option<&'static Builtin> {
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    BUILTINS.iter().find(|b| b.group == group && b.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condition::{Condition, Path};
    use serde_json::json;

    #[test]
    fn every_builtin_parses() {
        for b in BUILTINS {
            Condition::parse(b.success).unwrap();
            for f in b.failure {
                Condition::parse(f).unwrap();
            }
            Path::parse(b.message).unwrap();
        }
    }

    #[test]
    fn a_failed_job_reads_failed_with_its_reason() {
        let b = of("batch/v1", "Job").unwrap();
        let failed = json!({"status": {"failed": 4, "conditions": [
            {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded"},
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit"}]}});
        assert!(!Condition::parse(b.success).unwrap().holds(&failed));
        assert!(Condition::parse(b.failure[0]).unwrap().holds(&failed));
        assert_eq!(
            Path::parse(b.message).unwrap().get(&failed),
            Some(&json!("Job has reached the specified backoff limit"))
        );
        assert!(of("v1", "Job").is_none(), "the core group has no Job");
        assert!(
            of("ray.io/v1alpha1", "RayJob").is_some(),
            "any version of the group"
        );
    }
}
