//! Supervisor membership: which `tether serve` processes are alive, one heartbeat row each in
//! `supervisors`, so that each claims a fair share of the unfinished jobs (the supervisor's
//! claim loop reads [`Members::workload`]). A supervisor that stops leaves; one that dies is
//! no longer counted once its heartbeat is older than the loop's liveness window, and its row
//! is forgotten after a day.

use sqlx::Row;

use super::{Db, DbError};
use crate::model::Millis;

/// The supervisors' heartbeats.
#[derive(Debug, Clone)]
pub struct Members {
    db: Db,
}

impl Members {
    /// Membership kept in `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// How many jobs are unfinished, and how many supervisors were seen since `live_since`
    /// (see [`Members::heartbeat`]): what a fair share per supervisor is computed from.
    pub async fn workload(&self, live_since: Millis) -> Result<(i64, i64), DbError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM jobs WHERE phase <> 'terminal') AS unfinished, \
             (SELECT COUNT(*) FROM supervisors WHERE seen_at >= $1) AS supervisors",
        )
        .bind(live_since.0)
        .fetch_one(&mut *self.db.acquire().await?)
        .await?;
        Ok((row.try_get("unfinished")?, row.try_get("supervisors")?))
    }

    /// Records that supervisor `owner` is alive at `now` (and forgets supervisors not seen
    /// for a day).
    pub async fn heartbeat(&self, owner: &str, now: Millis) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO supervisors (owner, seen_at) VALUES ($1, $2) \
             ON CONFLICT (owner) DO UPDATE SET seen_at = excluded.seen_at",
        )
        .bind(owner)
        .bind(now.0)
        .execute(&mut *self.db.acquire().await?)
        .await?;
        sqlx::query("DELETE FROM supervisors WHERE seen_at < $1")
            .bind(now.plus(-86_400_000).0)
            .execute(&mut *self.db.acquire().await?)
            .await?;
        Ok(())
    }

    /// Removes supervisor `owner` (it stopped).
    pub async fn leave(&self, owner: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM supervisors WHERE owner = $1")
            .bind(owner)
            .execute(&mut *self.db.acquire().await?)
            .await?;
        Ok(())
    }
}
