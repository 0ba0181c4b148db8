//! Supervisor membership and group leases: which `tether serve` processes are alive, one row
//! each in `supervisors`.
//!
//! A supervisor's row is its **group lease**: `lease_expires_at` covers every job it holds
//! (those whose `lease_owner` is the supervisor and whose own `lease_expires_at` is NULL, see
//! [`super::jobs`]), so that renewing the leases of all its jobs is one statement on one row
//! ([`Members::renew`]), whatever their number. The same row counts the supervisor among those
//! that share the unfinished jobs ([`Members::workload`]: a fair share each), unless its clock
//! is untrusted (`claiming` = 0: it claims nothing, but its lease stays alive while it polls
//! what it holds). A supervisor that stops leaves; one that dies loses its jobs once its row's
//! lease has run out, is no longer counted once its heartbeat is older than the claim loop's
//! liveness window, and its row is forgotten after a day (by the next supervisor to start).
//!
//! Each row records the lease protocol its supervisor speaks ([`PROTOCOL`]). Rows written by
//! a binary from before group leases have none: such a supervisor takes a group-held job for
//! free, so a supervisor refuses to run while one of another protocol is alive
//! ([`Renewal::other`]).

use sqlx::{Acquire as _, Row};

use super::{Db, DbError};
use crate::model::Millis;

/// The lease protocol this binary speaks: 2, group leases (a job is held through its
/// supervisor's row). Rows of older binaries have none (protocol 1: a lease per job).
pub const PROTOCOL: i64 = 2;

/// Another live supervisor that speaks another lease protocol than [`PROTOCOL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherProtocol {
    /// Its owner id.
    pub owner: String,
    /// The protocol its row records (`None`: an older binary, a lease per job).
    pub protocol: Option<i64>,
}

/// What a renewal of a supervisor's group lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewal {
    /// A live supervisor of another protocol, if there is one: this one must not run.
    pub other: Option<OtherProtocol>,
}

/// The supervisors' rows.
#[derive(Debug, Clone)]
pub struct Members {
    db: Db,
}

/// The condition, on `supervisors o`, of a live supervisor of another protocol than `$p`
/// (other than `$me`): seen since `$since`, or its group lease runs until `$now` or later.
fn other_protocol_live(me: &str, p: &str, since: &str, now: &str) -> String {
    format!(
        "o.owner <> {me} AND (o.protocol IS NULL OR o.protocol <> {p}) \
         AND (o.seen_at >= {since} OR o.lease_expires_at >= {now})"
    )
}

impl Members {
    /// Membership kept in `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// How many jobs are unfinished, and how many supervisors that claim were seen since
    /// `live_since` (see [`Members::renew`]): what a fair share per supervisor is computed from.
    pub async fn workload(&self, live_since: Millis) -> Result<(i64, i64), DbError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM jobs WHERE phase <> 'terminal') AS unfinished, \
             (SELECT COUNT(*) FROM supervisors WHERE seen_at >= $1 AND claiming = 1) \
             AS supervisors",
        )
        .bind(live_since.0)
        .fetch_one(&mut *self.db.acquire().await?)
        .await?;
        Ok((row.try_get("unfinished")?, row.try_get("supervisors")?))
    }

    /// Renews supervisor `owner`'s group lease to `until`, and records it alive at `now`
    /// (`claiming`: counted among those that share the jobs). One statement on one row,
    /// however many jobs the lease covers; it also answers whether a supervisor of another
    /// lease protocol is alive (seen since `live_since`, or its lease not run out at `now`).
    pub async fn renew(
        &self,
        owner: &str,
        now: Millis,
        until: Millis,
        claiming: bool,
        live_since: Millis,
    ) -> Result<Renewal, DbError> {
        let other = other_protocol_live("$1", "$4", "$6", "$2");
        let sql = format!(
            "INSERT INTO supervisors (owner, seen_at, lease_expires_at, protocol, claiming) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (owner) DO UPDATE SET \
             seen_at = excluded.seen_at, lease_expires_at = excluded.lease_expires_at, \
             protocol = excluded.protocol, claiming = excluded.claiming \
             RETURNING \
             (SELECT o.owner FROM supervisors o WHERE {other} ORDER BY o.owner LIMIT 1) \
             AS other_owner, \
             (SELECT o.protocol FROM supervisors o WHERE {other} ORDER BY o.owner LIMIT 1) \
             AS other_protocol"
        );
        let row = sqlx::query(&sql)
            .bind(owner)
            .bind(now.0)
            .bind(until.0)
            .bind(PROTOCOL)
            .bind(i64::from(claiming))
            .bind(live_since.0)
            .fetch_one(&mut *self.db.acquire().await?)
            .await?;
        let other = row
            .try_get::<Option<String>, _>("other_owner")?
            .map(|owner| -> Result<_, DbError> {
                Ok(OtherProtocol {
                    owner,
                    protocol: row.try_get("other_protocol")?,
                })
            })
            .transpose()?;
        Ok(Renewal { other })
    }

    /// A live supervisor (other than `owner`) of another lease protocol, if there is one:
    /// seen since `live_since`, or its lease not run out at `now`. What a supervisor checks
    /// before it starts; it also forgets supervisors not seen for a day.
    pub async fn other_protocol(
        &self,
        owner: &str,
        now: Millis,
        live_since: Millis,
    ) -> Result<Option<OtherProtocol>, DbError> {
        let mut conn = self.db.acquire().await?;
        let mut tx = conn.begin().await?;
        let forgotten = "SELECT owner FROM supervisors WHERE seen_at < $1 \
             AND (lease_expires_at IS NULL OR lease_expires_at < $2)";
        // Their jobs are handed back with them: a claim finds a job held through a supervisor
        // by its row (see `JobStore::claim_batch`).
        sqlx::query(&format!(
            "UPDATE jobs SET lease_owner = NULL WHERE lease_expires_at IS NULL \
             AND phase <> 'terminal' AND lease_owner IN ({forgotten})"
        ))
        .bind(now.plus(-86_400_000).0)
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "DELETE FROM supervisors WHERE owner IN ({forgotten})"
        ))
        .bind(now.plus(-86_400_000).0)
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let other = other_protocol_live("$1", "$2", "$3", "$4");
        let row = sqlx::query(&format!(
            "SELECT o.owner, o.protocol FROM supervisors o WHERE {other} ORDER BY o.owner LIMIT 1"
        ))
        .bind(owner)
        .bind(PROTOCOL)
        .bind(live_since.0)
        .bind(now.0)
        .fetch_optional(&mut *conn)
        .await?;
        row.map(|r| {
            Ok(OtherProtocol {
                owner: r.try_get("owner")?,
                protocol: r.try_get("protocol")?,
            })
        })
        .transpose()
    }

    /// When supervisor `owner`'s group lease runs out, if it has a row with one.
    pub async fn lease_expiry(&self, owner: &str) -> Result<Option<Millis>, DbError> {
        let until: Option<Option<i64>> =
            sqlx::query_scalar("SELECT lease_expires_at FROM supervisors WHERE owner = $1")
                .bind(owner)
                .fetch_optional(&mut *self.db.acquire().await?)
                .await?;
        Ok(until.flatten().map(Millis))
    }

    /// Removes supervisor `owner` (it stopped): its group lease ends with it, and the jobs it
    /// held through it are handed back in the same transaction (a claim finds a job held
    /// through a supervisor by its row, see `JobStore::claim_batch`).
    pub async fn leave(&self, owner: &str) -> Result<(), DbError> {
        let mut conn = self.db.acquire().await?;
        let mut tx = conn.begin().await?;
        sqlx::query(
            "UPDATE jobs SET lease_owner = NULL WHERE lease_owner = $1 \
             AND lease_expires_at IS NULL AND phase <> 'terminal'",
        )
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM supervisors WHERE owner = $1")
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
