//! One decoder per record type: how a row of `jobs`, `job_events` or `task_state` becomes a
//! [`JobRecord`], a [`HeldJob`], a [`JobEvent`] or an [`Entry`]. Every read of these records
//! goes through here, so a column is named in one place only.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row;
use tether_provider::{Handle, JobState};

use super::DbError;
use crate::model::{
    from_millis, Entry, Epoch, HeldJob, JobEvent, JobId, JobRecord, Phase, TaskInstanceId,
};

/// The columns [`held`] reads, for a `SELECT` or `RETURNING` list.
pub(crate) const HELD_COLUMNS: &str = "id, name, generation, idempotency_key, provider, \
     try_number, phase, handle, state, raw_state, message, url, cancel_requested_at, \
     cancel_sent_at, next_poll_at, poll_interval_ms, poll_failures, lease_epoch, created_at, \
     handle_at";

/// The columns [`entry`] reads.
pub(crate) const ENTRY_COLUMNS: &str = "key, value, version, created_at, updated_at, expires_at";

/// A row of `jobs` (every column).
pub(crate) fn job(row: &AnyRow) -> Result<JobRecord, DbError> {
    Ok(JobRecord {
        id: JobId(row.try_get("id")?),
        task_instance: task_instance(row)?,
        name: row.try_get("name")?,
        generation: row.try_get("generation")?,
        idempotency_key: row.try_get("idempotency_key")?,
        provider: row.try_get("provider")?,
        spec: json(row, "jobs", "spec")?.unwrap_or(Value::Null),
        spec_hash: row.try_get("spec_hash")?,
        try_number: row.try_get("try_number")?,
        phase: phase(row)?,
        handle: json(row, "jobs", "handle")?.map(Handle::new),
        state: state(row)?,
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
        lease_epoch: Epoch(row.try_get("lease_epoch")?),
        lease_expires_at: time(row, "lease_expires_at")?,
        created_at: from_millis(row.try_get("created_at")?),
        attempt: row.try_get("attempt")?,
        handle_at: time(row, "handle_at")?,
        updated_at: from_millis(row.try_get("updated_at")?),
        finished_at: time(row, "finished_at")?,
        duplicates: match json(row, "jobs", "duplicates")? {
            Some(Value::Array(handles)) => handles.into_iter().map(Handle::new).collect(),
            _ => Vec::new(),
        },
        attached_try: row.try_get("attached_try")?,
        consumed_try: row.try_get("consumed_try")?,
        repair_of: json(row, "jobs", "repair_of")?.map(Handle::new),
    })
}

/// A row of `jobs` holding at least [`HELD_COLUMNS`].
pub(crate) fn held(row: &AnyRow) -> Result<HeldJob, DbError> {
    Ok(HeldJob {
        id: JobId(row.try_get("id")?),
        name: row.try_get("name")?,
        generation: row.try_get("generation")?,
        idempotency_key: row.try_get("idempotency_key")?,
        provider: row.try_get("provider")?,
        try_number: row.try_get("try_number")?,
        phase: phase(row)?,
        handle: json(row, "jobs", "handle")?.map(|h| Arc::new(Handle::new(h))),
        state: state(row)?,
        raw_state: row.try_get("raw_state")?,
        message: row.try_get("message")?,
        url: row.try_get("url")?,
        cancel_requested_at: time(row, "cancel_requested_at")?,
        cancel_sent_at: time(row, "cancel_sent_at")?,
        next_poll_at: from_millis(row.try_get("next_poll_at")?),
        poll_interval_ms: row.try_get("poll_interval_ms")?,
        poll_failures: row.try_get("poll_failures")?,
        lease_epoch: Epoch(row.try_get("lease_epoch")?),
        created_at: from_millis(row.try_get("created_at")?),
        handle_at: time(row, "handle_at")?,
    })
}

/// A row of `job_events`.
pub(crate) fn event(row: &AnyRow) -> Result<JobEvent, DbError> {
    Ok(JobEvent {
        id: row.try_get("id")?,
        job_id: JobId(row.try_get("job_id")?),
        at: from_millis(row.try_get("at")?),
        kind: row.try_get("kind")?,
        state: row.try_get("state")?,
        detail: json(row, "job_events", "detail")?,
        actor: row.try_get("actor")?,
    })
}

/// A row of `task_state` holding at least [`ENTRY_COLUMNS`].
pub(crate) fn entry(row: &AnyRow) -> Result<Entry, DbError> {
    let key: String = row.try_get("key")?;
    let text: String = row.try_get("value")?;
    let value = serde_json::from_str(&text)
        .map_err(|e| decode_error(format!("stored value of key {key:?} is not JSON: {e}")))?;
    Ok(Entry {
        key,
        value,
        version: row.try_get("version")?,
        created_at: from_millis(row.try_get("created_at")?),
        updated_at: from_millis(row.try_get("updated_at")?),
        expires_at: time(row, "expires_at")?,
    })
}

/// The task instance of a row with `dag_id`, `run_id`, `task_id` and `map_index`.
pub(crate) fn task_instance(row: &AnyRow) -> Result<TaskInstanceId, DbError> {
    Ok(TaskInstanceId::new(
        row.try_get::<String, _>("dag_id")?,
        row.try_get::<String, _>("run_id")?,
        row.try_get::<String, _>("task_id")?,
        row.try_get("map_index")?,
    ))
}

/// What a waiter compares of a job: its id, task instance (whose token may read it), state
/// and phase (`SELECT` [`WAITED_COLUMNS`]).
pub(crate) fn waited(row: &AnyRow) -> Result<crate::model::Waited, DbError> {
    Ok(crate::model::Waited {
        id: JobId(row.try_get("id")?),
        task_instance: task_instance(row)?,
        state: state(row)?,
        phase: phase(row)?,
    })
}

/// The columns [`waited`] reads.
pub(crate) const WAITED_COLUMNS: &str = "id, dag_id, run_id, task_id, map_index, state, phase";

/// A value the database holds that tether never writes.
pub(crate) fn decode_error(message: String) -> DbError {
    DbError::Query(sqlx::Error::Decode(message.into()))
}

fn phase(row: &AnyRow) -> Result<Phase, DbError> {
    let phase: String = row.try_get("phase")?;
    Phase::parse(&phase).ok_or_else(|| decode_error(format!("unknown job phase {phase:?}")))
}

fn state(row: &AnyRow) -> Result<JobState, DbError> {
    let state: String = row.try_get("state")?;
    JobState::parse(&state).ok_or_else(|| decode_error(format!("unknown job state {state:?}")))
}

fn json(row: &AnyRow, table: &str, column: &str) -> Result<Option<Value>, DbError> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| {
        serde_json::from_str(&t)
            .map_err(|e| decode_error(format!("{table}.{column} is not JSON: {e}")))
    })
    .transpose()
}

fn time(row: &AnyRow, column: &str) -> Result<Option<DateTime<Utc>>, DbError> {
    Ok(row.try_get::<Option<i64>, _>(column)?.map(from_millis))
}
