//! The SQL behind job records, leases and events, for SQLite and PostgreSQL alike. Every
//! write that changes a job and its task-state key (`tether.job.<name>`) does both in one
//! transaction here, through [`super::state::write_key`] on that transaction.
//!
//! Lease rules, enforced here:
//! - a job is held by `lease_owner` either under a lease of its own (`lease_expires_at` set: a
//!   submitter's, `tether run`'s) or through its supervisor's group lease (`lease_expires_at`
//!   NULL: the owner's row in `supervisors` says until when, see [`super::members`]), so that
//!   a supervisor renews the leases of all its jobs in one statement on one row;
//! - a job is claimed only if nobody holds a live lease on it (its own, or its owner's group
//!   lease); claiming increases `lease_epoch`, the fencing value;
//! - every write by a lease holder carries `lease_owner` and `lease_epoch` in its `WHERE`
//!   clause and checks the rows affected: a holder that lost its lease (paused, partitioned)
//!   changes nothing and learns that it lost it;
//! - on PostgreSQL, batch claims use `FOR UPDATE SKIP LOCKED` so that supervisors claiming at
//!   the same moment do not wait for each other.

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Acquire as _, AnyConnection, Row};
use tether_provider::{Handle, JobState};

use super::rows::{self, HELD_COLUMNS};
use super::state::{write_key, Put};
use super::{returning, Backend, Db, DbError};
use crate::model::{
    Epoch, HeldJob, JobEvent, JobId, JobRecord, Lease, Millis, Phase, Scope, TaskInstanceId,
};

/// A job's task-state key, written in the same transaction as the job record.
#[derive(Debug, Clone)]
pub struct StateKeyWrite {
    /// The key (`tether.job.<name>`).
    pub key: String,
    /// The value, compact JSON.
    pub json: String,
    /// When it expires (ms), if ever.
    pub expires_at: Option<Millis>,
}

/// A job about to be submitted: the write-ahead intent.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    /// The task instance.
    pub task_instance: &'a TaskInstanceId,
    /// The job name.
    pub name: &'a str,
    /// The generation.
    pub generation: i64,
    /// The idempotency key.
    pub idempotency_key: &'a str,
    /// The provider name.
    pub provider: &'a str,
    /// The spec, compact JSON.
    pub spec_json: &'a str,
    /// Its hash.
    pub spec_hash: &'a str,
    /// The try asking.
    pub try_number: i64,
    /// The submitter's owner id: it holds the lease while it submits.
    pub owner: &'a str,
    /// Now (ms).
    pub now: Millis,
    /// When the submitter's lease runs out (ms).
    pub lease_until: Millis,
    /// The first polling delay (ms).
    pub poll_interval_ms: i64,
    /// The handle of the failed generation this one repairs in place, as JSON (`None`: a
    /// submission).
    pub repair_of: Option<&'a str>,
}

/// What a poll changes, written fenced.
#[derive(Debug, Clone)]
pub struct PollUpdate {
    /// The new state.
    pub state: JobState,
    /// The provider's state.
    pub raw_state: Option<String>,
    /// The provider's message.
    pub message: Option<String>,
    /// The UI link.
    pub url: Option<String>,
    /// When to poll next (ms).
    pub next_poll_at: Millis,
    /// The polling delay now (ms).
    pub poll_interval_ms: i64,
    /// Failed polls in a row.
    pub poll_failures: i64,
    /// Now (ms).
    pub now: Millis,
    /// An event to append, if the poll changed something worth recording.
    pub event: Option<(&'static str, Value)>,
    /// The task-state key to update (on terminal states).
    pub state_key: Option<StateKeyWrite>,
}

/// A lease a supervisor holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renewed {
    /// The job.
    pub job_id: JobId,
    /// Its fencing value.
    pub epoch: Epoch,
    /// A cancel was requested and has not reached the provider.
    pub cancel_pending: bool,
}

/// One lease's part of [`JobStore::lease_digest_of`]: computed the same way as the SQL.
pub fn lease_digest(job_id: JobId, epoch: Epoch) -> i64 {
    (job_id
        .0
        .wrapping_mul(7919)
        .wrapping_add(epoch.0.wrapping_mul(104729)))
        % 2_147_483_647
}

fn renewed(r: &AnyRow) -> Result<Renewed, DbError> {
    Ok(Renewed {
        job_id: JobId(r.try_get("id")?),
        epoch: Epoch(r.try_get("lease_epoch")?),
        cancel_pending: r
            .try_get::<Option<i64>, _>("cancel_requested_at")?
            .is_some()
            && r.try_get::<Option<i64>, _>("cancel_sent_at")?.is_none(),
    })
}

/// What [`JobStore::request_cancel`] found.
#[derive(Debug, Clone)]
pub enum CancelRequest {
    /// The request is recorded (or was already): the job as it is now.
    Recorded(JobRecord),
    /// The job has finished: nothing to cancel.
    Finished(JobRecord),
    /// A later try than the one asking owns the job now: the request is refused.
    TakenOver(JobRecord),
    /// No such job.
    Missing,
}

/// Filters of [`JobStore::list`].
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only this DAG.
    pub dag_id: Option<String>,
    /// Only this run.
    pub run_id: Option<String>,
    /// Only this task.
    pub task_id: Option<String>,
    /// Only this map index.
    pub map_index: Option<i64>,
    /// Only this state.
    pub state: Option<JobState>,
    /// Only this provider.
    pub provider: Option<String>,
    /// At most this many, newest first.
    pub limit: i64,
    /// Only jobs with a smaller id (paging: the last id of the previous page).
    pub before_id: Option<JobId>,
}

/// The fencing condition: parameters `$1`..`$3`, bound by [`fenced`].
const FENCE: &str = "id = $1 AND lease_owner = $2 AND lease_epoch = $3";

/// The condition that a job is free to claim at `now` (a parameter): nobody holds it, its own
/// lease has run out, or it is held through a supervisor whose group lease has run out (or
/// that has no row: it left).
fn free_at(now: &str) -> String {
    format!(
        "(lease_owner IS NULL OR lease_expires_at < {now} OR (lease_expires_at IS NULL \
         AND lease_owner NOT IN (SELECT s.owner FROM supervisors s \
         WHERE s.lease_expires_at >= {now})))"
    )
}

/// The condition that `owner` (a parameter) holds a job at `now`: under a lease of its own
/// that has not run out, or through its group lease, alive.
fn held_by(owner: &str, now: &str) -> String {
    format!(
        "lease_owner = {owner} AND (lease_expires_at >= {now} OR (lease_expires_at IS NULL \
         AND EXISTS (SELECT 1 FROM supervisors s WHERE s.owner = {owner} \
         AND s.lease_expires_at >= {now})))"
    )
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// A query whose `WHERE` holds [`FENCE`], with the lease bound to `$1`..`$3`.
fn fenced<'q>(sql: &'q str, lease: &'q Lease) -> AnyQuery<'q> {
    sqlx::query(sql)
        .bind(lease.job_id.0)
        .bind(&lease.owner)
        .bind(lease.epoch.0)
}

/// Job records, leases and events.
#[derive(Debug, Clone)]
pub struct JobStore {
    db: Db,
}

impl JobStore {
    /// The store on an open, migrated database.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The database it works on.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// A job by id.
    pub async fn get(&self, id: JobId) -> Result<Option<JobRecord>, DbError> {
        let row = sqlx::query("SELECT * FROM jobs WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&mut *self.db.acquire().await?)
            .await?;
        row.as_ref().map(rows::job).transpose()
    }

    /// The jobs of `ids` that exist, in no particular order.
    pub async fn get_many(&self, ids: &[JobId]) -> Result<Vec<JobRecord>, DbError> {
        let rows = self.rows_of("*", ids).await?;
        rows.iter().map(rows::job).collect()
    }

    /// What a waiter compares of the jobs `ids` (those that exist): a few columns each, for
    /// the many jobs one wait names, most of them unchanged.
    pub async fn waited(&self, ids: &[JobId]) -> Result<Vec<crate::model::Waited>, DbError> {
        let rows = self.rows_of(rows::WAITED_COLUMNS, ids).await?;
        rows.iter().map(rows::waited).collect()
    }

    /// The columns `columns` of the jobs `ids` that exist, in one statement.
    async fn rows_of(&self, columns: &str, ids: &[JobId]) -> Result<Vec<AnyRow>, DbError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Integers: safe to inline, and one statement whatever their number.
        let list = ids
            .iter()
            .map(JobId::to_string)
            .collect::<Vec<_>>()
            .join(",");
        Ok(
            sqlx::query(&format!("SELECT {columns} FROM jobs WHERE id IN ({list})"))
                .fetch_all(&mut *self.db.acquire().await?)
                .await?,
        )
    }

    /// The newest generation of a task instance's named job.
    pub async fn latest(
        &self,
        ti: &TaskInstanceId,
        name: &str,
    ) -> Result<Option<JobRecord>, DbError> {
        let row = sqlx::query(
            "SELECT * FROM jobs WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 \
             AND map_index = $4 AND name = $5 ORDER BY generation DESC LIMIT 1",
        )
        .bind(&ti.dag_id)
        .bind(&ti.run_id)
        .bind(&ti.task_id)
        .bind(ti.map_index)
        .bind(name)
        .fetch_optional(&mut *self.db.acquire().await?)
        .await?;
        row.as_ref().map(rows::job).transpose()
    }

    /// Jobs matching `filter`, newest first.
    pub async fn list(&self, filter: &JobFilter) -> Result<Vec<JobRecord>, DbError> {
        let rows = sqlx::query(
            "SELECT * FROM jobs WHERE ($1 = '' OR dag_id = $1) AND ($2 = '' OR run_id = $2) \
             AND ($3 = '' OR state = $3) AND ($4 = '' OR provider = $4) AND id < $6 \
             AND ($7 = '' OR task_id = $7) AND ($8 < -1 OR map_index = $8) \
             ORDER BY id DESC LIMIT $5",
        )
        .bind(filter.dag_id.as_deref().unwrap_or(""))
        .bind(filter.run_id.as_deref().unwrap_or(""))
        .bind(filter.state.map_or("", JobState::as_str))
        .bind(filter.provider.as_deref().unwrap_or(""))
        .bind(if filter.limit > 0 { filter.limit } else { 100 })
        .bind(filter.before_id.map_or(i64::MAX, |id| id.0))
        .bind(filter.task_id.as_deref().unwrap_or(""))
        .bind(filter.map_index.unwrap_or(-2))
        .fetch_all(&mut *self.db.acquire().await?)
        .await?;
        rows.iter().map(rows::job).collect()
    }

    /// How many jobs `filter` matches in each state (its state, limit and paging ignored).
    pub async fn count_by_state(&self, filter: &JobFilter) -> Result<Vec<(String, i64)>, DbError> {
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM jobs WHERE ($1 = '' OR dag_id = $1) \
             AND ($2 = '' OR run_id = $2) AND ($3 = '' OR provider = $3) \
             AND ($4 = '' OR task_id = $4) AND ($5 < -1 OR map_index = $5) GROUP BY state",
        )
        .bind(filter.dag_id.as_deref().unwrap_or(""))
        .bind(filter.run_id.as_deref().unwrap_or(""))
        .bind(filter.provider.as_deref().unwrap_or(""))
        .bind(filter.task_id.as_deref().unwrap_or(""))
        .bind(filter.map_index.unwrap_or(-2))
        .fetch_all(&mut *self.db.acquire().await?)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
            .collect()
    }

    /// How many jobs there are of each (provider, state).
    pub async fn count_by_provider_and_state(&self) -> Result<Vec<(String, String, i64)>, DbError> {
        let rows =
            sqlx::query("SELECT provider, state, COUNT(*) AS n FROM jobs GROUP BY provider, state")
                .fetch_all(&mut *self.db.acquire().await?)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("provider")?, r.try_get("state")?, r.try_get("n")?)))
            .collect()
    }

    /// A job's events, oldest first.
    pub async fn events(&self, job_id: JobId) -> Result<Vec<JobEvent>, DbError> {
        self.events_after(job_id, 0, i64::MAX).await
    }

    /// At most `limit` of a job's events, oldest first, from the first after event `after_id`.
    pub async fn events_after(
        &self,
        job_id: JobId,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<JobEvent>, DbError> {
        let rows = sqlx::query(
            "SELECT * FROM job_events WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(job_id.0)
        .bind(after_id)
        .bind(limit)
        .fetch_all(&mut *self.db.acquire().await?)
        .await?;
        rows.iter().map(rows::event).collect()
    }

    /// Appends an event.
    pub async fn append_event(
        &self,
        job_id: JobId,
        kind: &str,
        state: Option<JobState>,
        detail: &Value,
        actor: &str,
        now: Millis,
    ) -> Result<(), DbError> {
        let mut conn = self.db.acquire().await?;
        insert_event(&mut conn, job_id, kind, state, detail, actor, now).await
    }

    /// Records the intent to submit, with the submitter holding the lease, and writes the
    /// task-state key that `state_key` makes from the new record, in one transaction. `None`
    /// if this generation already exists (another caller got there first).
    pub async fn insert_intent(
        &self,
        job: &NewJob<'_>,
        state_key: impl FnOnce(&JobRecord) -> StateKeyWrite,
    ) -> Result<Option<JobRecord>, DbError> {
        let mut conn = self.db.acquire().await?;
        let mut tx = conn.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO jobs (dag_id, run_id, task_id, map_index, name, generation, \
             idempotency_key, provider, spec, spec_hash, try_number, phase, state, next_poll_at, \
             poll_interval_ms, poll_failures, lease_owner, lease_epoch, lease_expires_at, \
             created_at, updated_at, repair_of) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11, 'submitting', 'pending', $12, $13, 0, $14, 1, $15, $12, $12, $16) \
             RETURNING *",
        )
        .bind(&job.task_instance.dag_id)
        .bind(&job.task_instance.run_id)
        .bind(&job.task_instance.task_id)
        .bind(job.task_instance.map_index)
        .bind(job.name)
        .bind(job.generation)
        .bind(job.idempotency_key)
        .bind(job.provider)
        .bind(job.spec_json)
        .bind(job.spec_hash)
        .bind(job.try_number)
        .bind(job.now.0)
        .bind(job.poll_interval_ms)
        .bind(job.owner)
        .bind(job.lease_until.0)
        .bind(job.repair_of);
        let record = match returning(inserted, &mut *tx).await {
            Ok(Some(row)) => rows::job(&row)?,
            Ok(None) => return Err(sqlx::Error::RowNotFound.into()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        commit_intent(tx, job, &record, &state_key(&record), None).await?;
        Ok(Some(record))
    }

    /// Takes a refused submission up again ([`JobRecord::refused`]): the same record, so the
    /// same generation (the provider made no job), goes back to `submitting` as the next
    /// attempt, with that attempt's key (`again.idempotency_key`), intent time, provider, spec
    /// and try asked for now, the submitter holding the
    /// lease and no cancel pending; with its task-state key and an `intent` event, in one
    /// transaction. `None` if it is no longer a refused submission (another caller took it
    /// up first).
    pub async fn retry_refused(
        &self,
        job_id: JobId,
        again: &NewJob<'_>,
        state_key: impl FnOnce(&JobRecord) -> StateKeyWrite,
    ) -> Result<Option<JobRecord>, DbError> {
        let mut conn = self.db.acquire().await?;
        let mut tx = conn.begin().await?;
        let row = sqlx::query(
            "UPDATE jobs SET phase = 'submitting', state = 'pending', provider = $2, spec = $3, \
             spec_hash = $4, try_number = $5, raw_state = NULL, message = NULL, url = NULL, \
             finished_at = NULL, next_poll_at = $6, poll_interval_ms = $7, poll_failures = 0, \
             cancel_requested_at = NULL, cancel_reason = NULL, cancel_sent_at = NULL, \
             attached_try = NULL, consumed_try = NULL, lease_owner = $8, lease_epoch = lease_epoch + 1, lease_expires_at = $9, \
             idempotency_key = $10, attempt = attempt + 1, created_at = $6, \
             updated_at = $6 WHERE id = $1 AND phase = 'terminal' AND state = 'failed' \
             AND handle IS NULL RETURNING *",
        )
        .bind(job_id.0)
        .bind(again.provider)
        .bind(again.spec_json)
        .bind(again.spec_hash)
        .bind(again.try_number)
        .bind(again.now.0)
        .bind(again.poll_interval_ms)
        .bind(again.owner)
        .bind(again.lease_until.0)
        .bind(again.idempotency_key);
        let row = returning(row, &mut *tx).await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let record = rows::job(&row)?;
        let key = state_key(&record);
        commit_intent(tx, again, &record, &key, Some("submit_refused")).await?;
        Ok(Some(record))
    }

    /// Up to `limit` finished jobs that finished before `before` (ms), oldest first: never an
    /// unfinished job, nor the newest generation of a task instance's job while its
    /// `tether.job.<name>` task-state key is live at `now` (a retry reads it to decide).
    pub async fn prunable(
        &self,
        before: Millis,
        now: Millis,
        limit: i64,
    ) -> Result<Vec<JobId>, DbError> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT j.id FROM jobs j WHERE j.phase = 'terminal' AND j.finished_at < $1 \
             AND NOT (j.generation = (SELECT MAX(g.generation) FROM jobs g \
                 WHERE g.dag_id = j.dag_id AND g.run_id = j.run_id AND g.task_id = j.task_id \
                 AND g.map_index = j.map_index AND g.name = j.name) \
               AND EXISTS (SELECT 1 FROM task_state s WHERE s.scope_kind = 'task_instance' \
                 AND s.dag_id = j.dag_id AND s.run_id = j.run_id AND s.task_id = j.task_id \
                 AND s.map_index = j.map_index AND s.asset = '' \
                 AND s.key = 'tether.job.' || j.name \
                 AND (s.expires_at IS NULL OR s.expires_at > $2))) \
             ORDER BY j.finished_at, j.id LIMIT $3",
        )
        .bind(before.0)
        .bind(now.0)
        .bind(limit.max(1))
        .fetch_all(&mut *self.db.acquire().await?)
        .await?;
        Ok(ids.into_iter().map(JobId).collect())
    }

    /// Removes the finished jobs among `ids`, with their events, in one transaction; how many
    /// jobs and events it removed.
    pub async fn remove_finished(&self, ids: &[JobId]) -> Result<(u64, u64), DbError> {
        if ids.is_empty() {
            return Ok((0, 0));
        }
        // Integers from the database: safe to inline. The phase is checked again here.
        let list = ids
            .iter()
            .map(JobId::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut conn = self.db.acquire().await?;
        let mut tx = conn.begin().await?;
        let events = sqlx::query(&format!(
            "DELETE FROM job_events WHERE job_id IN (SELECT id FROM jobs \
             WHERE id IN ({list}) AND phase = 'terminal')"
        ))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let jobs = sqlx::query(&format!(
            "DELETE FROM jobs WHERE id IN ({list}) AND phase = 'terminal'"
        ))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok((jobs, events))
    }

    /// Records the handle of a submitted job (fenced), with its task-state key and event.
    /// Returns the updated record, or `None` if the lease was lost.
    pub async fn record_handle(
        &self,
        lease: &Lease,
        handle: &Handle,
        handle_ref: &str,
        event_kind: &str,
        state_key: &StateKeyWrite,
        now: Millis,
    ) -> Result<Option<JobRecord>, DbError> {
        let sql = format!(
            "UPDATE jobs SET phase = 'active', handle = $4, state = 'pending', updated_at = $5, \
             handle_at = $5, next_poll_at = $5, poll_failures = 0, handle_ref = $6 \
             WHERE {FENCE} AND phase = 'submitting' \
             RETURNING *"
        );
        let event = (
            event_kind,
            Some(JobState::Pending),
            serde_json::json!({ "handle": handle }),
        );
        let query = fenced(&sql, lease)
            .bind(handle.as_json())
            .bind(now.0)
            .bind(handle_ref);
        self.transition(query, Some(state_key), event, &lease.owner, now)
            .await
    }

    /// Ends a job that never got a handle (the provider refused the submission: see
    /// [`JobRecord::refused`]). Fenced; false if the lease was lost.
    pub async fn fail_submission(
        &self,
        lease: &Lease,
        message: &str,
        state_key: &StateKeyWrite,
        now: Millis,
    ) -> Result<bool, DbError> {
        let sql = format!(
            "UPDATE jobs SET phase = 'terminal', state = 'failed', message = $4, updated_at = $5, \
             finished_at = $5, lease_owner = NULL, lease_expires_at = NULL WHERE {FENCE} \
             RETURNING *"
        );
        let event = (
            "submit_refused",
            Some(JobState::Failed),
            serde_json::json!({ "message": message }),
        );
        let query = fenced(&sql, lease).bind(message).bind(now.0);
        let done = self
            .transition(query, Some(state_key), event, &lease.owner, now)
            .await?;
        Ok(done.is_some())
    }

    /// Records the handle of a submission whose submitter lost its lease while the provider
    /// answered (not fenced): the first handle recorded for an intent is the job's, whoever
    /// brings it, so that one that arrives before the new lease holder's is kept, and a later
    /// one is a duplicate to report (never overwritten, never forgotten). `None` if the intent
    /// has a handle already, or is no longer being submitted.
    pub async fn record_stray_handle(
        &self,
        job_id: JobId,
        handle: &Handle,
        handle_ref: &str,
        state_key: &StateKeyWrite,
        actor: &str,
        now: Millis,
    ) -> Result<Option<JobRecord>, DbError> {
        let query = sqlx::query(
            "UPDATE jobs SET phase = 'active', handle = $2, state = 'pending', updated_at = $3, \
             handle_at = $3, next_poll_at = $3, poll_failures = 0, handle_ref = $4 \
             WHERE id = $1 AND phase = 'submitting' \
             AND handle IS NULL RETURNING *",
        )
        .bind(job_id.0)
        .bind(handle.as_json())
        .bind(now.0)
        .bind(handle_ref);
        let event = (
            "submitted",
            Some(JobState::Pending),
            serde_json::json!({ "handle": handle, "after_lease_lost": true }),
        );
        self.transition(query, Some(state_key), event, actor, now)
            .await
    }

    /// Settles a job whose outcome is unknown (see [`JobState::OutcomeUnknown`]) as `state`,
    /// with its task-state key and a `resolved` event naming who settled it and why. `None` if
    /// the job's outcome is not unknown (settled already, or never so).
    pub async fn resolve(
        &self,
        job_id: JobId,
        state: JobState,
        message: &str,
        state_key: &dyn Fn(&JobRecord) -> StateKeyWrite,
        (actor, reason): (&str, &str),
        now: Millis,
    ) -> Result<Option<JobRecord>, DbError> {
        let Some(job) = self.get(job_id).await? else {
            return Ok(None);
        };
        let query = sqlx::query(
            "UPDATE jobs SET state = $2, message = $3, updated_at = $4 \
             WHERE id = $1 AND state = 'outcome_unknown' RETURNING *",
        )
        .bind(job_id.0)
        .bind(state.as_str())
        .bind(message)
        .bind(now.0);
        let event = (
            "resolved",
            Some(state),
            serde_json::json!({ "from": JobState::OutcomeUnknown, "to": state, "by": actor,
                                "reason": reason }),
        );
        self.transition(query, Some(&state_key(&job)), event, actor, now)
            .await
    }

    /// In one transaction: `update` (an `UPDATE jobs .. RETURNING *`), then, if it changed the
    /// job, its task-state key (if given) and an event (its state, or the job's after the
    /// update). `None` if it changed nothing.
    async fn transition(
        &self,
        update: AnyQuery<'_>,
        state_key: Option<&StateKeyWrite>,
        (kind, state, detail): (&str, Option<JobState>, Value),
        actor: &str,
        now: Millis,
    ) -> Result<Option<JobRecord>, DbError> {
        let mut conn = self.db.acquire().await?;
        let mut tx = conn.begin().await?;
        let Some(row) = returning(update, &mut *tx).await? else {
            return Ok(None);
        };
        let record = rows::job(&row)?;
        if let Some(key) = state_key {
            write_state_key(&mut tx, &record.task_instance, key, now).await?;
        }
        let state = state.unwrap_or(record.state);
        insert_event(&mut tx, record.id, kind, Some(state), &detail, actor, now).await?;
        tx.commit().await?;
        Ok(Some(record))
    }

    /// Writes what a poll learned (fenced). Terminal states end the job and release its
    /// lease. Returns false if the lease was lost.
    pub async fn apply_poll(&self, lease: &Lease, update: &PollUpdate) -> Result<bool, DbError> {
        let terminal = update.state.is_terminal();
        let mut conn = self.db.acquire().await?;
        let mut tx = conn.begin().await?;
        let sql = format!(
            "UPDATE jobs SET state = $4, raw_state = $5, message = $6, url = COALESCE($7, url), \
             next_poll_at = $8, poll_interval_ms = $9, poll_failures = $10, updated_at = $11, \
             phase = CASE WHEN $12 = 1 THEN 'terminal' ELSE phase END, \
             finished_at = CASE WHEN $12 = 1 THEN $11 ELSE finished_at END, \
             lease_owner = CASE WHEN $12 = 1 THEN NULL ELSE lease_owner END, \
             lease_expires_at = CASE WHEN $12 = 1 THEN NULL ELSE lease_expires_at END \
             WHERE {FENCE} AND phase = 'active' RETURNING dag_id, run_id, task_id, map_index"
        );
        let query = fenced(&sql, lease)
            .bind(update.state.as_str())
            .bind(update.raw_state.as_deref())
            .bind(update.message.as_deref())
            .bind(update.url.as_deref())
            .bind(update.next_poll_at.0)
            .bind(update.poll_interval_ms)
            .bind(update.poll_failures)
            .bind(update.now.0)
            .bind(i64::from(terminal));
        let Some(row) = returning(query, &mut *tx).await? else {
            return Ok(false);
        };
        if let Some(key) = &update.state_key {
            let ti = rows::task_instance(&row)?;
            // The key tells the newest generation's story: an older one that ends after a
            // newer was submitted (a cancelled run, once a later try ran the job anew) leaves it.
            let newer: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM jobs g, jobs j WHERE j.id = $1 AND g.dag_id = j.dag_id \
                 AND g.run_id = j.run_id AND g.task_id = j.task_id AND g.map_index = j.map_index \
                 AND g.name = j.name AND g.generation > j.generation",
            )
            .bind(lease.job_id.0)
            .fetch_one(&mut *tx)
            .await?;
            if newer == 0 {
                write_state_key(&mut tx, &ti, key, update.now).await?;
            }
        }
        if let Some((kind, detail)) = &update.event {
            insert_event(
                &mut tx,
                lease.job_id,
                kind,
                Some(update.state),
                detail,
                &lease.owner,
                update.now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Takes the lease of one unfinished job (a lease of its own, until `until`) if nobody
    /// else holds a live one.
    pub async fn claim(
        &self,
        job_id: JobId,
        owner: &str,
        now: Millis,
        until: Millis,
    ) -> Result<Option<JobRecord>, DbError> {
        let sql = format!(
            "UPDATE jobs SET lease_owner = $2, lease_epoch = lease_epoch + 1, \
             lease_expires_at = $3 WHERE id = $1 AND phase <> 'terminal' AND \
             (lease_owner = $2 OR {}) RETURNING *",
            free_at("$4")
        );
        let row = sqlx::query(&sql)
            .bind(job_id.0)
            .bind(owner)
            .bind(until.0)
            .bind(now.0);
        let row = returning(row, &mut *self.db.acquire().await?).await?;
        row.as_ref().map(rows::job).transpose()
    }

    /// Claims up to `limit` unfinished jobs whose lease is free or has run out; `only`
    /// restricts the claim to one job. Each is held until `until` under a lease of its own,
    /// or with `None`, through `owner`'s group lease (a supervisor's row in `supervisors`).
    /// Returns what a supervisor holds of each (not the whole record: with many held jobs,
    /// that is the memory of tracking).
    ///
    /// The free jobs are searched through indexes, one way a lease is free after another,
    /// soonest poll first within each: nobody holds the job (new, handed back); its own lease
    /// ran out (a submitter's, `tether run`'s); its supervisor's group lease ran out (that
    /// supervisor died). Each is a search, so a claim costs about the same at 100 and at
    /// 100,000 held jobs. `thorough` adds a walk over every unfinished job for the one way
    /// no index finds: a holder with no row in `supervisors` at all (a row removed by hand,
    /// or by a binary from before [`super::members::Members::leave`] handed its jobs back).
    pub async fn claim_batch(
        &self,
        owner: &str,
        now: Millis,
        until: Option<Millis>,
        limit: i64,
        only: Option<JobId>,
        thorough: bool,
    ) -> Result<Vec<HeldJob>, DbError> {
        let free_ways: Vec<String> = match only {
            Some(id) => vec![format!("id = {} AND {}", id.0, free_at("$3"))],
            None => {
                // `+` keeps SQLite (which has no statistics here) from walking the
                // `next_poll_at` index to save a sort, and from searching `lease_expires_at`
                // IS NULL, which every group-held job is. `$3 IS NOT NULL`, always true, is
                // there because PostgreSQL refuses a parameter a statement does not use.
                let mut ways = vec![
                    "lease_owner IS NULL AND $3 IS NOT NULL".to_string(),
                    "lease_expires_at < $3".to_string(),
                    "+lease_expires_at IS NULL AND lease_owner IN (SELECT s.owner \
                     FROM supervisors s WHERE s.lease_expires_at IS NULL \
                     OR s.lease_expires_at < $3)"
                        .to_string(),
                ];
                if thorough {
                    ways.push(free_at("$3"));
                }
                ways
            }
        };
        let skip_locked = match self.db.backend() {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let mut claimed = Vec::new();
        for free in free_ways {
            let left = limit - claimed.len() as i64;
            if left <= 0 {
                break;
            }
            let sql = format!(
                "UPDATE jobs SET lease_owner = $1, lease_epoch = lease_epoch + 1, \
                 lease_expires_at = $2 WHERE id IN (SELECT id FROM jobs \
                 WHERE phase <> 'terminal' AND {free} \
                 ORDER BY +next_poll_at LIMIT $4 {skip_locked}) RETURNING {HELD_COLUMNS}"
            );
            let rows = sqlx::query(&sql)
                .bind(owner)
                .bind(until.map(|u| u.0))
                .bind(now.0)
                .bind(left)
                .fetch_all(&mut *self.db.acquire().await?)
                .await?;
            for row in &rows {
                claimed.push(rows::held(row)?);
            }
        }
        Ok(claimed)
    }

    /// Extends every live lease of its own that `owner` holds to `until` (never shortening
    /// one); how many it extended. For holders without a group lease (`tether run`'s
    /// supervisor of its one job); a supervisor renews its group lease instead
    /// ([`super::members::Members::renew`]), and this leaves the jobs held through it alone.
    pub async fn renew(&self, owner: &str, now: Millis, until: Millis) -> Result<u64, DbError> {
        let done = sqlx::query(
            "UPDATE jobs SET lease_expires_at = CASE WHEN lease_expires_at > $1 \
             THEN lease_expires_at ELSE $1 END WHERE lease_owner = $2 \
             AND lease_expires_at >= $3 AND phase <> 'terminal'",
        )
        .bind(until.0)
        .bind(owner)
        .bind(now.0)
        .execute(&mut *self.db.acquire().await?)
        .await?;
        Ok(done.rows_affected())
    }

    /// A digest of the live leases `owner` holds on unfinished jobs (of their own, or through
    /// its group lease while that is alive): how many, and the sum of
    /// [`lease_digest`] over them. One row, however many jobs: a supervisor compares it with
    /// the same digest of the jobs it believes it holds, and asks which leases it has
    /// ([`JobStore::leases_of`]) only when they differ. (A count alone can agree by chance: a
    /// lease lost and another held unknowingly.)
    pub async fn lease_digest_of(&self, owner: &str, now: Millis) -> Result<(i64, i64), DbError> {
        let row = sqlx::query(&format!(
            "SELECT COUNT(*) AS n, \
             CAST(COALESCE(SUM((id * 7919 + lease_epoch * 104729) % 2147483647), 0) AS BIGINT) AS d \
             FROM jobs WHERE {} AND phase <> 'terminal'",
            held_by("$1", "$2")
        ))
        .bind(owner)
        .bind(now.0)
        .fetch_one(&mut *self.db.acquire().await?)
        .await?;
        Ok((row.try_get("n")?, row.try_get("d")?))
    }

    /// The live leases `owner` holds on unfinished jobs (as [`JobStore::lease_digest_of`]).
    pub async fn leases_of(&self, owner: &str, now: Millis) -> Result<Vec<Renewed>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT id, lease_epoch, cancel_requested_at, cancel_sent_at FROM jobs \
             WHERE {} AND phase <> 'terminal'",
            held_by("$1", "$2")
        ))
        .bind(owner)
        .bind(now.0)
        .fetch_all(&mut *self.db.acquire().await?)
        .await?;
        rows.iter().map(renewed).collect()
    }

    /// The jobs `owner` holds whose cancel was requested and has not reached the provider.
    pub async fn cancels_pending(&self, owner: &str) -> Result<Vec<Renewed>, DbError> {
        let rows = sqlx::query(
            "SELECT id, lease_epoch, cancel_requested_at, cancel_sent_at FROM jobs \
             WHERE lease_owner = $1 AND cancel_requested_at IS NOT NULL \
             AND cancel_sent_at IS NULL AND phase <> 'terminal'",
        )
        .bind(owner)
        .fetch_all(&mut *self.db.acquire().await?)
        .await?;
        rows.iter().map(renewed).collect()
    }

    /// Extends one lease (fenced) to `until`, never shortening it. False if the lease was
    /// lost. Fencing by epoch makes this safe even after the lease ran out: nobody claimed the
    /// job meanwhile, or the epoch would differ.
    pub async fn extend(&self, lease: &Lease, until: Millis) -> Result<bool, DbError> {
        let sql = format!(
            "UPDATE jobs SET lease_expires_at = CASE WHEN lease_expires_at > $4 \
             THEN lease_expires_at ELSE $4 END WHERE {FENCE} AND phase <> 'terminal'"
        );
        let done = fenced(&sql, lease)
            .bind(until.0)
            .execute(&mut *self.db.acquire().await?)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records remote jobs found with a job's key besides the one it tracks (not fenced: an
    /// observation anyone may make), with a `duplicate_detected` event. Returns how many were
    /// new.
    pub async fn note_duplicates(
        &self,
        job_id: JobId,
        found: &[Handle],
        actor: &str,
        now: Millis,
    ) -> Result<u64, DbError> {
        let mut conn = self.db.acquire().await?;
        let mut tx = conn.begin().await?;
        let Some(row) = sqlx::query("SELECT * FROM jobs WHERE id = $1")
            .bind(job_id.0)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(0);
        };
        let mut record = rows::job(&row)?;
        let tracked = record.handle.clone();
        let new: Vec<&Handle> = found
            .iter()
            .filter(|h| tracked.as_ref() != Some(*h) && !record.duplicates.contains(*h))
            .collect();
        if new.is_empty() {
            return Ok(0);
        }
        record.duplicates.extend(new.iter().map(|h| (*h).clone()));
        sqlx::query("UPDATE jobs SET duplicates = $2, updated_at = $3 WHERE id = $1")
            .bind(job_id.0)
            .bind(serde_json::to_string(&record.duplicates).expect("handles serialise"))
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
        let detail = serde_json::json!({ "tracked": tracked, "duplicates": new });
        insert_event(
            &mut tx,
            job_id,
            "duplicate_detected",
            Some(record.state),
            &detail,
            actor,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(new.len() as u64)
    }

    /// Gives up one lease (fenced), leaving the job for any supervisor.
    pub async fn release(&self, lease: &Lease) -> Result<bool, DbError> {
        let sql =
            format!("UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL WHERE {FENCE}");
        let done = fenced(&sql, lease)
            .execute(&mut *self.db.acquire().await?)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives up every lease `owner` holds (on shutdown). Returns how many.
    pub async fn release_all(&self, owner: &str) -> Result<u64, DbError> {
        let done = sqlx::query(
            "UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = $1",
        )
        .bind(owner)
        .execute(&mut *self.db.acquire().await?)
        .await?;
        Ok(done.rows_affected())
    }

    /// Records an explicit cancel request (not fenced: anyone may ask). `by_try`: the try of
    /// the task instance that asks (an Airflow task's `on_kill`); its request is refused once
    /// a later try owns the job ([`JobRecord::owner_try`]). A person's cancel names no try.
    pub async fn request_cancel(
        &self,
        job_id: JobId,
        reason: &str,
        actor: &str,
        now: Millis,
        by_try: Option<i64>,
    ) -> Result<CancelRequest, DbError> {
        let mut conn = self.db.acquire().await?;
        let mut tx = conn.begin().await?;
        let row = sqlx::query(
            "UPDATE jobs SET cancel_requested_at = COALESCE(cancel_requested_at, $2), \
             cancel_reason = COALESCE(cancel_reason, $3), updated_at = $2 \
             WHERE id = $1 AND phase <> 'terminal' \
             AND COALESCE(attached_try, try_number) <= $4 AND try_number <= $4 RETURNING *",
        )
        .bind(job_id.0)
        .bind(now.0)
        .bind(reason)
        .bind(by_try.unwrap_or(i64::MAX));
        let Some(row) = returning(row, &mut *tx).await? else {
            drop(tx);
            return Ok(match self.get(job_id).await? {
                None => CancelRequest::Missing,
                Some(job) if job.phase == Phase::Terminal => CancelRequest::Finished(job),
                Some(job) => CancelRequest::TakenOver(job),
            });
        };
        let record = rows::job(&row)?;
        let mut detail = serde_json::json!({ "reason": reason });
        if let Some(t) = by_try {
            detail["try_number"] = t.into();
        }
        insert_event(
            &mut tx,
            job_id,
            "cancel_requested",
            Some(record.state),
            &detail,
            actor,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(CancelRequest::Recorded(record))
    }

    /// Hands a running job to try `try_number` (a retry reattaching), with a `reattached`
    /// event: it owns the job from now on if it is the latest try. `None` if the job is no
    /// longer running, or a cancel was asked for it and this try is a later one than its owner
    /// (a later try never takes over a job on its way out): the caller reads it again.
    pub async fn attach(
        &self,
        job_id: JobId,
        try_number: i64,
        actor: &str,
        now: Millis,
    ) -> Result<Option<JobRecord>, DbError> {
        let query = sqlx::query(
            "UPDATE jobs SET attached_try = CASE WHEN COALESCE(attached_try, try_number) < $2 \
             THEN $2 ELSE COALESCE(attached_try, try_number) END \
             WHERE id = $1 AND phase <> 'terminal' AND (cancel_requested_at IS NULL \
             OR $2 <= COALESCE(attached_try, try_number)) RETURNING *",
        )
        .bind(job_id.0)
        .bind(try_number);
        let detail = serde_json::json!({ "try_number": try_number });
        self.transition(query, None, ("reattached", None, detail), actor, now)
            .await
    }

    /// Records that try `try_number` took the finished job's result (its task instance
    /// completed with it), with a `consumed` event. `None` if the job has not finished (or
    /// does not exist).
    pub async fn consume(
        &self,
        job_id: JobId,
        try_number: i64,
        actor: &str,
        now: Millis,
    ) -> Result<Option<JobRecord>, DbError> {
        let query = sqlx::query(
            "UPDATE jobs SET consumed_try = CASE WHEN consumed_try IS NULL OR consumed_try < $2 \
             THEN $2 ELSE consumed_try END WHERE id = $1 AND phase = 'terminal' RETURNING *",
        )
        .bind(job_id.0)
        .bind(try_number);
        let detail = serde_json::json!({ "try_number": try_number });
        self.transition(query, None, ("consumed", None, detail), actor, now)
            .await
    }

    /// When the cancel of a job reached the provider, if it has.
    pub async fn cancel_sent_at(
        &self,
        job_id: JobId,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, DbError> {
        let sent: Option<Option<i64>> =
            sqlx::query_scalar("SELECT cancel_sent_at FROM jobs WHERE id = $1")
                .bind(job_id.0)
                .fetch_optional(&mut *self.db.acquire().await?)
                .await?;
        Ok(sent.flatten().map(crate::model::from_millis))
    }

    /// Records that the provider accepted the cancel.
    pub async fn mark_cancel_sent(
        &self,
        job_id: JobId,
        actor: &str,
        now: Millis,
    ) -> Result<(), DbError> {
        let mut conn = self.db.acquire().await?;
        let mut tx = conn.begin().await?;
        let first = sqlx::query(
            "UPDATE jobs SET cancel_sent_at = $2 WHERE id = $1 AND cancel_sent_at IS NULL",
        )
        .bind(job_id.0)
        .bind(now.0)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !first {
            // Sent by another process too: the first send is the one recorded.
            return Ok(());
        }
        insert_event(
            &mut tx,
            job_id,
            "cancel_sent",
            None,
            &Value::Null,
            actor,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The phase of a job (cheap check for watchers).
    pub async fn phase(&self, job_id: JobId) -> Result<Option<Phase>, DbError> {
        Ok(self.get(job_id).await?.map(|j| j.phase))
    }
}

/// Ends the transaction that recorded an intent: its task-state key, its `intent` event
/// (`after`: the event it follows, when a refused submission is taken up again), the commit.
async fn commit_intent(
    mut tx: sqlx::Transaction<'_, sqlx::Any>,
    job: &NewJob<'_>,
    record: &JobRecord,
    state_key: &StateKeyWrite,
    after: Option<&str>,
) -> Result<(), DbError> {
    write_state_key(&mut tx, job.task_instance, state_key, job.now).await?;
    let mut detail = serde_json::json!({
        "generation": record.generation,
        "try_number": job.try_number,
        "idempotency_key": record.idempotency_key,
        "spec_hash": job.spec_hash,
    });
    if let Some(after) = after {
        detail["after"] = after.into();
    }
    insert_event(
        &mut tx,
        record.id,
        "intent",
        Some(JobState::Pending),
        &detail,
        job.owner,
        job.now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Writes a job's task-state key on `conn`, inside the transaction that changes the job.
async fn write_state_key(
    conn: &mut AnyConnection,
    ti: &TaskInstanceId,
    key: &StateKeyWrite,
    now: Millis,
) -> Result<(), DbError> {
    let scope = Scope::TaskInstance(ti.clone());
    write_key(
        conn,
        &Put {
            scope: &scope,
            key: &key.key,
            json: &key.json,
            if_version: None,
            now,
            expires_at: key.expires_at,
            // The engine's own keys (`tether.job.*`) are exempt from the quota: a job's
            // record and its key change together, and a full scope must not fail a submit.
            max_keys: None,
        },
    )
    .await?;
    Ok(())
}

async fn insert_event(
    conn: &mut AnyConnection,
    job_id: JobId,
    kind: &str,
    state: Option<JobState>,
    detail: &Value,
    actor: &str,
    now: Millis,
) -> Result<(), DbError> {
    let detail = (!detail.is_null()).then(|| detail.to_string());
    sqlx::query(
        "INSERT INTO job_events (job_id, at, kind, state, detail, actor) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(job_id.0)
    .bind(now.0)
    .bind(kind)
    .bind(state.map(JobState::as_str))
    .bind(detail)
    .bind(actor)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
