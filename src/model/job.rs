//! The job record, its phases, leases and events.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tether_provider::{Handle, JobState};

use super::ids::{Epoch, JobId};
use super::scope::TaskInstanceId;

/// Where a job is in tether's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The intent is recorded; the handle is not (yet). A crash here is reconciled by `find`.
    Submitting,
    /// The handle is recorded; the job is polled.
    Active,
    /// Finished (or lost, or never accepted): not polled any more.
    Terminal,
}

impl Phase {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Submitting => "submitting",
            Phase::Active => "active",
            Phase::Terminal => "terminal",
        }
    }

    /// The phase stored as `s`, if it is one.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "submitting" => Some(Phase::Submitting),
            "active" => Some(Phase::Active),
            "terminal" => Some(Phase::Terminal),
            _ => None,
        }
    }
}

/// The right to write a job's record: held by one supervisor at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The job.
    pub job_id: JobId,
    /// The holder's owner id.
    pub owner: String,
    /// The fencing value: every write carries it, and fails if another holder has taken over.
    pub epoch: Epoch,
}

/// What a waiter compares of a job (`POST /v1/jobs/wait` reads this of every job it names,
/// and the whole record only of those that changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waited {
    /// The job.
    pub id: JobId,
    /// Its task instance (what a task token may read).
    pub task_instance: TaskInstanceId,
    /// Its state.
    pub state: JobState,
    /// Its phase.
    pub phase: Phase,
}

/// One job, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRecord {
    /// tether's id for the job.
    pub id: JobId,
    /// The task instance that asked for it.
    pub task_instance: TaskInstanceId,
    /// The job's name within the task instance (`main` by default).
    pub name: String,
    /// 1 for the first submission, +1 for each real retry after a failure.
    pub generation: i64,
    /// The key the provider deduplicates submissions on.
    pub idempotency_key: String,
    /// The configured provider name.
    pub provider: String,
    /// The job spec as submitted.
    pub spec: Value,
    /// SHA-256 of the spec's canonical JSON.
    pub spec_hash: String,
    /// The try that submitted it.
    pub try_number: i64,
    /// Where it is in the protocol.
    pub phase: Phase,
    /// The provider's handle, once recorded.
    pub handle: Option<Handle>,
    /// The normalised state.
    pub state: JobState,
    /// The provider's own state.
    pub raw_state: Option<String>,
    /// The provider's message.
    pub message: Option<String>,
    /// A link to the job in the provider's UI.
    pub url: Option<String>,
    /// When an explicit cancel was requested.
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// Why.
    pub cancel_reason: Option<String>,
    /// When the cancel reached the provider.
    pub cancel_sent_at: Option<DateTime<Utc>>,
    /// When it is next polled.
    pub next_poll_at: DateTime<Utc>,
    /// The current polling delay (ms).
    pub poll_interval_ms: i64,
    /// Failed polls in a row.
    pub poll_failures: i64,
    /// The supervisor that polls it.
    pub lease_owner: Option<String>,
    /// The fencing value.
    pub lease_epoch: Epoch,
    /// When the lease runs out.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// When the intent was recorded.
    pub created_at: DateTime<Utc>,
    /// The submission attempt of its generation: 1, plus one per refused submission sent
    /// again (each attempt after the first has a key of its own).
    pub attempt: i64,
    /// When the handle was recorded (`None` before it is, and for jobs recorded before tether
    /// kept it): a "not found" within the account's `not_found_grace` of it is not an end.
    pub handle_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// When it reached a terminal state.
    pub finished_at: Option<DateTime<Utc>>,
    /// Other remote jobs found with this job's idempotency key: duplicate submissions that
    /// tether does not track, for a person to act on. Empty normally.
    pub duplicates: Vec<Handle>,
    /// The latest try handed this job while it ran: its submitter, or a later try that
    /// reattached (see [`JobRecord::owner_try`]). Only that try (or a person) may cancel it.
    pub attached_try: Option<i64>,
    /// The try that took the finished job's result (`POST /v1/jobs/{id}/consume`): a later
    /// try runs the job again rather than reporting that result (Airflow's clear).
    pub consumed_try: Option<i64>,
    /// For a generation that repairs the failed one before it in place (`on_retry =
    /// "repair"`), the failed generation's handle: the engine repairs it rather than submit.
    pub repair_of: Option<Handle>,
}

impl JobRecord {
    /// Whether this is a refused submission: it ended failed without a handle, which only a
    /// provider's refusal to create the job does (`JobStore::fail_submission` in
    /// `crate::db::jobs`). Such a job is retried on the same record and key (no remote job
    /// exists).
    pub fn refused(&self) -> bool {
        self.phase == Phase::Terminal && self.state == JobState::Failed && self.handle.is_none()
    }

    /// The try the job belongs to now: the latest one handed it.
    pub fn owner_try(&self) -> i64 {
        self.attached_try
            .unwrap_or(self.try_number)
            .max(self.try_number)
    }

    /// The lease this record says `owner` holds, if it does.
    pub fn lease_of(&self, owner: &str) -> Option<Lease> {
        (self.lease_owner.as_deref() == Some(owner)).then(|| Lease {
            job_id: self.id,
            owner: owner.to_string(),
            epoch: self.lease_epoch,
        })
    }
}

/// One entry of a job's event log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobEvent {
    /// Order of events.
    pub id: i64,
    /// The job.
    pub job_id: JobId,
    /// When.
    pub at: DateTime<Utc>,
    /// What happened: `intent`, `submitted`, `reattached`, `state_changed`, ...
    pub kind: String,
    /// The job's state after it.
    pub state: Option<String>,
    /// Details (JSON).
    pub detail: Option<Value>,
    /// Who: a supervisor's owner id, or `cli`.
    pub actor: String,
}
