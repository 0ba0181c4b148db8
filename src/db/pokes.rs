//! The SQL behind provider events: finding the job an event names by its `handle_ref`, and
//! marking it due now (`poked_at`, which a trigger announces to the job's holder; see the
//! migration `job_events` and [`super::changes`]).
//!
//! A poke writes only `poked_at` and pulls `next_poll_at` forward: nothing a lease holder
//! fences on, so it never competes with the holder's writes, and a job claimed afresh (its
//! holder died) is due at once too.

use sqlx::Row as _;

use super::{Db, DbError};
use crate::model::{JobId, Millis};

/// The pokes of one database.
#[derive(Debug, Clone)]
pub struct Pokes {
    db: Db,
}

/// A job whose `handle_ref` was never written (recorded before the column existed).
#[derive(Debug, Clone)]
pub struct Unreferenced {
    /// The job.
    pub job_id: JobId,
    /// Its provider account.
    pub provider: String,
    /// Its handle's JSON text.
    pub handle: String,
}

impl Pokes {
    /// The pokes of `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Marks the active jobs of account `provider` whose reference is `reference` due now;
    /// returns them (none: no such job is active, or none of that account).
    pub async fn poke(
        &self,
        provider: &str,
        reference: &str,
        now: Millis,
    ) -> Result<Vec<JobId>, DbError> {
        let rows = sqlx::query(
            "UPDATE jobs SET poked_at = $3, \
             next_poll_at = CASE WHEN next_poll_at > $3 THEN $3 ELSE next_poll_at END \
             WHERE handle_ref = $1 AND phase = 'active' AND provider = $2 RETURNING id",
        )
        .bind(reference)
        .bind(provider)
        .bind(now.0)
        .fetch_all(&mut *self.db.acquire().await?)
        .await?;
        job_ids(&rows)
    }

    /// As [`Pokes::poke`], for an event that reports the raw state `state`: a job whose record
    /// already says that state is left as it is (the event tells nothing it does not know,
    /// and polling it would cost a call for nothing). Returns the jobs poked, and those left
    /// because they knew.
    pub async fn poke_unless_known(
        &self,
        provider: &str,
        reference: &str,
        state: &str,
        now: Millis,
    ) -> Result<(Vec<JobId>, Vec<JobId>), DbError> {
        let poked = sqlx::query(
            "UPDATE jobs SET poked_at = $3, \
             next_poll_at = CASE WHEN next_poll_at > $3 THEN $3 ELSE next_poll_at END \
             WHERE handle_ref = $1 AND phase = 'active' AND provider = $2 \
             AND (raw_state IS NULL OR raw_state <> $4) RETURNING id",
        )
        .bind(reference)
        .bind(provider)
        .bind(now.0)
        .bind(state)
        .fetch_all(&mut *self.db.acquire().await?)
        .await?;
        if !poked.is_empty() {
            return Ok((job_ids(&poked)?, Vec::new()));
        }
        Ok((
            Vec::new(),
            self.active(provider, reference, Some(state)).await?,
        ))
    }

    /// The active jobs of account `provider` whose reference is `reference`, and whose
    /// record says the raw state `state` if one is given (an event's match, without marking
    /// them due).
    pub async fn active(
        &self,
        provider: &str,
        reference: &str,
        state: Option<&str>,
    ) -> Result<Vec<JobId>, DbError> {
        let rows = sqlx::query(
            "SELECT id FROM jobs WHERE handle_ref = $1 AND phase = 'active' AND provider = $2 \
             AND ($3 IS NULL OR raw_state = $3)",
        )
        .bind(reference)
        .bind(provider)
        .bind(state)
        .fetch_all(&mut *self.db.acquire().await?)
        .await?;
        job_ids(&rows)
    }

    /// The active jobs whose lease `owner` holds that were poked at or after `since`.
    pub async fn poked_since(&self, owner: &str, since: Millis) -> Result<Vec<JobId>, DbError> {
        let rows = sqlx::query(
            "SELECT id FROM jobs WHERE lease_owner = $1 AND poked_at >= $2 AND phase = 'active'",
        )
        .bind(owner)
        .bind(since.0)
        .fetch_all(&mut *self.db.acquire().await?)
        .await?;
        job_ids(&rows)
    }

    /// Up to `limit` active jobs with a handle but no `handle_ref`.
    pub async fn unreferenced(&self, limit: i64) -> Result<Vec<Unreferenced>, DbError> {
        let rows = sqlx::query(
            "SELECT id, provider, handle FROM jobs WHERE phase = 'active' \
             AND handle IS NOT NULL AND handle_ref IS NULL ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&mut *self.db.acquire().await?)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Unreferenced {
                    job_id: JobId(row.try_get(0)?),
                    provider: row.try_get(1)?,
                    handle: row.try_get(2)?,
                })
            })
            .collect()
    }

    /// Writes the `handle_ref` of a job that has none.
    pub async fn set_ref(&self, job_id: JobId, reference: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE jobs SET handle_ref = $2 WHERE id = $1 AND handle_ref IS NULL")
            .bind(job_id.0)
            .bind(reference)
            .execute(&mut *self.db.acquire().await?)
            .await?;
        Ok(())
    }
}

/// The job ids in the first column of `rows`.
fn job_ids(rows: &[sqlx::any::AnyRow]) -> Result<Vec<JobId>, DbError> {
    rows.iter()
        .map(|row| Ok(JobId(row.try_get::<i64, _>(0)?)))
        .collect()
}
