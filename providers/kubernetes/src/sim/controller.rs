//! The simulated controllers: what moves a resource's status along, since no pod runs here.
//!
//! - `batch/v1` `Job`: no status, then `active: 1` with a `startTime`; at its end first the
//!   `SuccessCriteriaMet` (or `FailureTarget`) condition with the pod still `terminating`,
//!   then, a moment later, `Complete` (or `Failed`, reason `BackoffLimitExceeded` unless told
//!   otherwise) with `completionTime`: the order Kubernetes 1.31 and later follow, in which
//!   only the second pair means the Job's pods are gone.
//! - The operators' resources (`SparkApplication`, `RayJob`, `PyTorchJob`, Argo `Workflow`):
//!   submitted, running, then ended, each in its own status shape.
//! - Any other resource (a custom resource of a CRD): nothing moves it but a test
//!   ([`Controller::force`]), as nothing would on a cluster without its operator.
//!
//! A resource that ended is deleted `ttlSecondsAfterFinished` later (a Job's), or after the
//! simulator's `forget_after`, whichever comes first: the TTL-after-finished controller.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tether_provider::registry::SimJobState;

use super::store::{Key, Store};

/// How long a Job's pods take to terminate once its success or failure criteria are met.
const TERMINATING: Duration = Duration::from_millis(150);

/// The resources the simulator moves along.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scripted {
    /// `batch/v1` `Job`.
    Job,
    /// The Spark operator's `SparkApplication`.
    Spark,
    /// KubeRay's `RayJob`.
    Ray,
    /// Kubeflow's `PyTorchJob`.
    PyTorch,
    /// Argo's `Workflow`.
    Workflow,
}

impl Scripted {
    /// The scripted kind of (group, kind), if any.
    pub fn of(group: &str, kind: &str) -> Option<Self> {
        Some(match (group, kind) {
            ("batch", "Job") => Self::Job,
            ("sparkoperator.k8s.io", "SparkApplication") => Self::Spark,
            ("ray.io", "RayJob") => Self::Ray,
            ("kubeflow.org", "PyTorchJob") => Self::PyTorch,
            ("argoproj.io", "Workflow") => Self::Workflow,
            _ => return None,
        })
    }
}

/// How a scripted resource ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Successfully.
    Succeed,
    /// Unsuccessfully, for this reason (a Job's `Failed` condition's reason).
    Fail(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Created,
    Running,
    /// A Job's criteria met, its pods terminating.
    Ending,
    Ended,
}

#[derive(Debug, Clone)]
struct Plan {
    scripted: Scripted,
    stage: Stage,
    outcome: Outcome,
    running: Duration,
    ttl: Option<Duration>,
    /// The number of its latest step scheduled: an earlier one still in line is stale.
    seq: u64,
}

/// The controllers' state: each scripted resource's plan, what is due when, and the truth of
/// every resource ever made (kept after it is deleted).
#[derive(Debug, Default)]
pub struct Controller {
    plans: HashMap<String, Plan>,
    due: BTreeSet<(Instant, u64, String)>,
    seq: u64,
    truths: HashMap<String, SimJobState>,
}

/// RFC 3339 at whole seconds, as the API writes times.
pub fn timestamp() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Controller {
    /// Takes on a new resource of `scripted` kind (if any): its first status, and its first
    /// step due after `pending`. `ttl`: its `ttlSecondsAfterFinished`, or the simulator's
    /// retention, whichever is shorter.
    #[allow(clippy::too_many_arguments)]
    pub fn admit(
        &mut self,
        uid: &str,
        scripted: Option<Scripted>,
        object: &mut Value,
        outcome: Outcome,
        pending: Duration,
        running: Duration,
        ttl: Option<Duration>,
        now: Instant,
    ) {
        self.truths.insert(uid.to_string(), SimJobState::Running);
        let Some(scripted) = scripted else {
            return;
        };
        let plan = Plan {
            scripted,
            stage: Stage::Created,
            outcome,
            running,
            ttl,
            seq: 0,
        };
        object["status"] = status(&plan);
        self.plans.insert(uid.to_string(), plan);
        self.schedule(uid, now + pending);
    }

    fn schedule(&mut self, uid: &str, at: Instant) {
        self.seq += 1;
        if let Some(plan) = self.plans.get_mut(uid) {
            plan.seq = self.seq;
        }
        self.due.insert((at, self.seq, uid.to_string()));
    }

    /// What the simulator knows of the resource `uid`: running, ended, or cancelled (deleted
    /// before it ended); `None` if it never made one.
    pub fn truth(&self, uid: &str) -> Option<SimJobState> {
        self.truths.get(uid).copied()
    }

    /// The resource `uid` was deleted: cancelled, if it had not ended.
    pub fn deleted(&mut self, uid: &str) {
        self.plans.remove(uid);
        if let Some(truth) = self.truths.get_mut(uid) {
            if *truth == SimJobState::Running {
                *truth = SimJobState::Cancelled;
            }
        }
    }

    /// Ends every scripted resource among `uids` that has not ended, now, as planned (a
    /// Job's criteria and terminal conditions at once): the uids it ended.
    pub fn end_now(&mut self, store: &mut Store, uids: &[String], now: Instant) -> Vec<String> {
        let mut ended = Vec::new();
        for uid in uids {
            let Some(plan) = self.plans.get_mut(uid) else {
                continue;
            };
            if plan.stage == Stage::Ended {
                continue;
            }
            // The step from `Ending` is to `Ended`, whatever the kind.
            plan.stage = Stage::Ending;
            if let Some(key) = store.key_of(uid) {
                self.step(store, &key, uid, now);
                ended.push(uid.clone());
            }
        }
        ended
    }

    /// Moves along every resource whose next step is due: their statuses changed in `store`
    /// (a watch sees each change), and the ended ones deleted once their time to live is up.
    pub fn tick(&mut self, store: &mut Store, now: Instant) {
        while let Some(first) = self.due.first().cloned() {
            if first.0 > now {
                break;
            }
            self.due.pop_first();
            let uid = first.2;
            let Some(key) = store.key_of(&uid) else {
                self.plans.remove(&uid);
                continue;
            };
            match self
                .plans
                .get(&uid)
                .filter(|p| p.seq == first.1)
                .map(|p| p.stage)
            {
                Some(Stage::Ended) => {
                    // Its time to live is up.
                    self.plans.remove(&uid);
                    store.remove(&key);
                }
                Some(_) => self.step(store, &key, &uid, now),
                // Forced since (`force`), or a step made stale by a later one.
                None => {}
            }
        }
    }

    fn step(&mut self, store: &mut Store, key: &Key, uid: &str, now: Instant) {
        let Some(plan) = self.plans.get_mut(uid) else {
            return;
        };
        plan.stage = match (plan.stage, plan.scripted) {
            (Stage::Created, _) => Stage::Running,
            (Stage::Running, Scripted::Job) => Stage::Ending,
            _ => Stage::Ended,
        };
        let plan = plan.clone();
        let next = match plan.stage {
            Stage::Running => Some(now + plan.running),
            Stage::Ending => Some(now + TERMINATING),
            Stage::Ended => plan.ttl.map(|ttl| now + ttl),
            Stage::Created => None,
        };
        let ended = plan.stage == Stage::Ended;
        store.modify(key, |object| {
            object.value["status"] = status(&plan);
            if ended {
                object.ended = Some(now);
            }
        });
        if ended {
            let truth = match plan.outcome {
                Outcome::Succeed => SimJobState::Succeeded,
                Outcome::Fail(_) => SimJobState::Failed,
            };
            self.truths.insert(uid.to_string(), truth);
        }
        if let Some(at) = next {
            self.schedule(uid, at);
        } else if ended {
            self.plans.remove(uid);
        }
    }

    /// Makes the resource at `key` report `raw` from now on, its plan stopped: for a Job one
    /// of [`JOB_STATES`]; for another scripted resource its state field's value; for any, a
    /// JSON object (the whole status); any other text, a condition of that type that is
    /// `True` (a state nobody documented).
    pub fn force(&mut self, store: &mut Store, key: &Key, raw: &str, now: Instant) -> bool {
        let Some(object) = store.get(key) else {
            return false;
        };
        let uid = object.uid().to_string();
        let group = key.0.clone();
        let kind = object.value["kind"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let scripted = Scripted::of(&group, &kind);
        self.plans.remove(&uid);
        let (status, truth) = forced(scripted, raw);
        self.truths.insert(uid, truth);
        store.modify(key, |object| {
            object.value["status"] = status;
            object.ended = (truth != SimJobState::Running).then_some(now);
        })
    }
}

/// A Job's documented states, as [`Controller::force`] takes them, with the state tether
/// reads each as.
pub const JOB_STATES: &[(&str, tether_provider::JobState)] = {
    use tether_provider::JobState::{Failed, Pending, Running, Succeeded};
    &[
        ("Pending", Pending),
        ("Running", Running),
        ("Suspended", Running),
        ("SuccessCriteriaMet", Running),
        ("FailureTarget", Running),
        ("Complete", Succeeded),
        ("Failed", Failed),
    ]
};

fn condition(kind: &str, reason: &str, message: &str) -> Value {
    let at = timestamp();
    json!({"type": kind, "status": "True", "lastProbeTime": at, "lastTransitionTime": at,
           "reason": reason, "message": message})
}

/// A Job's `Failed` condition's message for `reason`.
fn failure_message(reason: &str) -> &'static str {
    match reason {
        "DeadlineExceeded" => "Job was active longer than specified deadline",
        "PodFailurePolicy" => {
            "Container main for pod failed with exit code 42 matching FailJob rule at index 0"
        }
        _ => "Job has reached the specified backoff limit",
    }
}

/// A scripted resource's status at its plan's stage.
fn status(plan: &Plan) -> Value {
    let now = timestamp();
    let failed = match &plan.outcome {
        Outcome::Succeed => None,
        Outcome::Fail(reason) => Some(reason.as_str()),
    };
    match plan.scripted {
        Scripted::Job => job_status(plan.stage, failed),
        Scripted::Spark => {
            let state = match (plan.stage, failed) {
                (Stage::Created, _) => "SUBMITTED",
                (Stage::Running | Stage::Ending, _) => "RUNNING",
                (Stage::Ended, None) => "COMPLETED",
                (Stage::Ended, Some(_)) => "FAILED",
            };
            let mut s = json!({"applicationState": {"state": state}, "submissionAttempts": 1,
                               "lastSubmissionAttemptTime": now});
            if let (Stage::Ended, Some(reason)) = (plan.stage, failed) {
                s["applicationState"]["errorMessage"] =
                    json!(format!("driver container failed: {reason}"));
                s["terminationTime"] = json!(now);
            }
            s
        }
        Scripted::Ray => {
            let (deployment, job) = match (plan.stage, failed) {
                (Stage::Created, _) => ("Initializing", "PENDING"),
                (Stage::Running | Stage::Ending, _) => ("Running", "RUNNING"),
                (Stage::Ended, None) => ("Complete", "SUCCEEDED"),
                (Stage::Ended, Some(_)) => ("Complete", "FAILED"),
            };
            let mut s =
                json!({"jobDeploymentStatus": deployment, "jobStatus": job, "startTime": now});
            if let (Stage::Ended, Some(reason)) = (plan.stage, failed) {
                s["message"] = json!(format!("Job entrypoint command failed: {reason}"));
            }
            s
        }
        Scripted::PyTorch => {
            let mut conditions = vec![condition(
                "Created",
                "PyTorchJobCreated",
                "PyTorchJob is created.",
            )];
            match (plan.stage, failed) {
                (Stage::Created, _) => {}
                (Stage::Running | Stage::Ending, _) => {
                    conditions.push(condition(
                        "Running",
                        "PyTorchJobRunning",
                        "PyTorchJob is running.",
                    ));
                }
                (Stage::Ended, None) => conditions.push(condition(
                    "Succeeded",
                    "PyTorchJobSucceeded",
                    "PyTorchJob is successfully completed.",
                )),
                (Stage::Ended, Some(reason)) => conditions.push(condition(
                    "Failed",
                    "PyTorchJobFailed",
                    &format!("PyTorchJob has failed because 1 Master replica(s) failed: {reason}"),
                )),
            }
            json!({"conditions": conditions, "startTime": now})
        }
        Scripted::Workflow => {
            let phase = match (plan.stage, failed) {
                (Stage::Created, _) => "Pending",
                (Stage::Running | Stage::Ending, _) => "Running",
                (Stage::Ended, None) => "Succeeded",
                (Stage::Ended, Some(_)) => "Failed",
            };
            let mut s = json!({"phase": phase, "startedAt": now});
            if let (Stage::Ended, Some(reason)) = (plan.stage, failed) {
                s["message"] = json!(format!("child 'main' failed: {reason}"));
            }
            s
        }
    }
}

fn job_status(stage: Stage, failed: Option<&str>) -> Value {
    let now = timestamp();
    let met = |terminal: bool| -> Vec<Value> {
        let mut conditions = Vec::new();
        match failed {
            None => {
                conditions.push(condition(
                    "SuccessCriteriaMet",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ));
                if terminal {
                    conditions.push(condition(
                        "Complete",
                        "CompletionsReached",
                        "Reached expected number of succeeded pods",
                    ));
                }
            }
            Some(reason) => {
                conditions.push(condition("FailureTarget", reason, failure_message(reason)));
                if terminal {
                    conditions.push(condition("Failed", reason, failure_message(reason)));
                }
            }
        }
        conditions
    };
    let counts = |s: &mut Value| match failed {
        None => s["succeeded"] = json!(1),
        Some(_) => s["failed"] = json!(7),
    };
    match stage {
        Stage::Created => json!({}),
        Stage::Running => json!({"active": 1, "ready": 0, "terminating": 0, "startTime": now,
                                 "uncountedTerminatedPods": {}}),
        Stage::Ending => {
            let mut s = json!({"active": 0, "ready": 0, "terminating": 1, "startTime": now,
                               "conditions": met(false), "uncountedTerminatedPods": {}});
            counts(&mut s);
            s
        }
        Stage::Ended => {
            let mut s = json!({"active": 0, "ready": 0, "terminating": 0, "startTime": now,
                               "conditions": met(true), "uncountedTerminatedPods": {}});
            counts(&mut s);
            if failed.is_none() {
                s["completionTime"] = json!(now);
            }
            s
        }
    }
}

/// The status and truth of a resource forced to `raw` (see [`Controller::force`]).
fn forced(scripted: Option<Scripted>, raw: &str) -> (Value, SimJobState) {
    if let Ok(status @ Value::Object(_)) = serde_json::from_str::<Value>(raw) {
        return (status, SimJobState::Running);
    }
    let stage_of = |raw: &str| match raw {
        "Pending" => Some((Stage::Created, None)),
        "Running" => Some((Stage::Running, None)),
        "SuccessCriteriaMet" => Some((Stage::Ending, None)),
        "FailureTarget" => Some((Stage::Ending, Some("BackoffLimitExceeded"))),
        "Complete" => Some((Stage::Ended, None)),
        "Failed" => Some((Stage::Ended, Some("BackoffLimitExceeded"))),
        _ => None,
    };
    match scripted {
        Some(Scripted::Job) => match (raw, stage_of(raw)) {
            ("Suspended", _) => (
                json!({"conditions": [condition("Suspended", "JobSuspended", "Job suspended")]}),
                SimJobState::Running,
            ),
            (_, Some((stage, failed))) => {
                let truth = match (stage, failed) {
                    (Stage::Ended, None) => SimJobState::Succeeded,
                    (Stage::Ended, Some(_)) => SimJobState::Failed,
                    _ => SimJobState::Running,
                };
                (job_status(stage, failed), truth)
            }
            _ => (
                json!({"active": 1, "conditions": [{"type": raw, "status": "True"}]}),
                SimJobState::Running,
            ),
        },
        Some(Scripted::Spark) => (
            json!({"applicationState": {"state": raw}}),
            SimJobState::Running,
        ),
        Some(Scripted::Ray) => (json!({"jobStatus": raw}), SimJobState::Running),
        Some(Scripted::Workflow) => (json!({"phase": raw}), SimJobState::Running),
        Some(Scripted::PyTorch) | None => (
            json!({"conditions": [{"type": raw, "status": "True"}]}),
            SimJobState::Running,
        ),
    }
}
