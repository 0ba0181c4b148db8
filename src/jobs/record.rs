//! The job record, its phases, leases and events.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row;
use tether_provider::{Handle, JobState};

use crate::clock::from_millis;
use crate::db::DbError;
use crate::state::TaskInstanceId;

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

    pub(crate) fn parse(s: &str) -> Result<Self, DbError> {
        match s {
            "submitting" => Ok(Phase::Submitting),
            "active" => Ok(Phase::Active),
            "terminal" => Ok(Phase::Terminal),
            other => Err(decode_error(format!("unknown job phase {other:?}"))),
        }
    }
}

/// The right to write a job's record: held by one supervisor at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The job.
    pub job_id: i64,
    /// The holder's owner id.
    pub owner: String,
    /// The fencing value: every write carries it, and fails if another holder has taken over.
    pub epoch: i64,
}

/// One job, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRecord {
    /// tether's id for the job.
    pub id: i64,
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
    pub lease_epoch: i64,
    /// When the lease runs out.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// When the intent was recorded.
    pub created_at: DateTime<Utc>,
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
}

impl JobRecord {
    /// Whether this is a refused submission: it ended failed without a handle, which only a
    /// provider's refusal to create the job does ([`super::JobStore::fail_submission`]). Such a
    /// job is retried on the same record and key (no remote job exists).
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
    pub job_id: i64,
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

pub(crate) fn decode_error(message: String) -> DbError {
    DbError::Query(sqlx::Error::Decode(message.into()))
}

pub(crate) fn json_column(row: &AnyRow, column: &str) -> Result<Option<Value>, DbError> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| {
        serde_json::from_str(&t)
            .map_err(|e| decode_error(format!("jobs.{column} is not JSON: {e}")))
    })
    .transpose()
}

pub(crate) fn time(row: &AnyRow, column: &str) -> Result<Option<DateTime<Utc>>, DbError> {
    Ok(row.try_get::<Option<i64>, _>(column)?.map(from_millis))
}

impl JobRecord {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, DbError> {
        let state: String = row.try_get("state")?;
        Ok(Self {
            id: row.try_get("id")?,
            task_instance: TaskInstanceId::new(
                row.try_get::<String, _>("dag_id")?,
                row.try_get::<String, _>("run_id")?,
                row.try_get::<String, _>("task_id")?,
                row.try_get("map_index")?,
            ),
            name: row.try_get("name")?,
            generation: row.try_get("generation")?,
            idempotency_key: row.try_get("idempotency_key")?,
            provider: row.try_get("provider")?,
            spec: json_column(row, "spec")?.unwrap_or(Value::Null),
            spec_hash: row.try_get("spec_hash")?,
            try_number: row.try_get("try_number")?,
            phase: Phase::parse(&row.try_get::<String, _>("phase")?)?,
            handle: json_column(row, "handle")?.map(Handle::new),
            state: JobState::parse(&state)
                .ok_or_else(|| decode_error(format!("unknown job state {state:?}")))?,
            raw_state: row.try_get("raw_state")?,
            message: row.try_get("message")?,
            url: row.try_get("url")?,
            cancel_requested_at: time(row, "cancel_requested_at")?,
            cancel_reason: row.try_get("cancel_reason")?,
            cancel_sent_at: time(row, "cancel_sent_at")?,
            next_poll_at: from_millis(row.try_get("next_poll_at")?),
            poll_interval_ms: row.try_get("poll_interval_ms")?,
            poll_failures: row.try_get("poll_failures")?,
            lease_owner: row.try_get("lease_owner")?,
            lease_epoch: row.try_get("lease_epoch")?,
            lease_expires_at: time(row, "lease_expires_at")?,
            created_at: from_millis(row.try_get("created_at")?),
            updated_at: from_millis(row.try_get("updated_at")?),
            finished_at: time(row, "finished_at")?,
            duplicates: match json_column(row, "duplicates")? {
                Some(Value::Array(handles)) => handles.into_iter().map(Handle::new).collect(),
                _ => Vec::new(),
            },
            attached_try: row.try_get("attached_try")?,
            consumed_try: row.try_get("consumed_try")?,
        })
    }
}

impl JobEvent {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, DbError> {
        Ok(Self {
            id: row.try_get("id")?,
            job_id: row.try_get("job_id")?,
            at: from_millis(row.try_get("at")?),
            kind: row.try_get("kind")?,
            state: row.try_get("state")?,
            detail: json_column(row, "detail")?,
            actor: row.try_get("actor")?,
        })
    }
}
