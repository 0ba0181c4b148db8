//! The database's side of job change announcements: how other processes' changes are heard.
//!
//! On PostgreSQL a trigger on `jobs` announces each change on the channel [`CHANNEL`]
//! (`NOTIFY`, payload: the job id), and each poke (a provider event naming the job) on
//! [`POKES`], both heard with [`listen`]. On SQLite the same triggers append the job id to the
//! table `job_changes` (`poke = 1` for a poke), read by a [`SqliteLog`]: one connection of its own
//! asks `PRAGMA data_version` (which moves when another connection committed) and reads only
//! then. `crate::engine::changes` turns both into wake-ups of waiters.

use sqlx::Row as _;

use super::Db;

/// The PostgreSQL channel the trigger announces on.
pub const CHANNEL: &str = "tether_jobs";
/// The PostgreSQL channel pokes are announced on (a provider event named the job).
pub const POKES: &str = "tether_pokes";
/// How many of the latest rows of `job_changes` are kept (older ones are pruned).
pub const SQLITE_KEEP_CHANGES: i64 = 10_000;

/// A listening connection on [`CHANNEL`] and [`POKES`] (PostgreSQL).
pub async fn listen(url: &str) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen_all([CHANNEL, POKES]).await?;
    Ok(listener)
}

/// What a look at SQLite's change log found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Look {
    /// The jobs changed since the last look, each once, in order of their first change.
    pub jobs: Vec<i64>,
    /// The jobs poked since the last look, each once.
    pub pokes: Vec<i64>,
    /// Whether changes may have been missed (pruned before this look, or more than one look
    /// reads): every waiter should re-read.
    pub missed: bool,
}

/// A reader of SQLite's `job_changes` on a connection of its own.
#[derive(Debug)]
pub struct SqliteLog {
    conn: sqlx::AnyConnection,
    version: i64,
    last: i64,
}

impl SqliteLog {
    /// Opens the reader at the log's end: changes from now on.
    pub async fn open(db: &Db) -> Result<Self, sqlx::Error> {
        // A connection of its own: `data_version` tells of commits by every *other* one.
        let mut conn = db.pool().acquire().await?.detach();
        let version = data_version(&mut conn).await?;
        let last: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM job_changes")
            .fetch_one(&mut conn)
            .await?
            .try_get(0)?;
        Ok(Self {
            conn,
            version,
            last,
        })
    }

    /// The jobs changed since the last look (nothing, at the cost of one `PRAGMA`, if no other
    /// connection committed); prunes all but the latest [`SQLITE_KEEP_CHANGES`] rows now and
    /// then.
    pub async fn look(&mut self) -> Result<Look, sqlx::Error> {
        let now = data_version(&mut self.conn).await?;
        if now == self.version {
            return Ok(Look::default());
        }
        self.version = now;
        let rows = sqlx::query(
            "SELECT id, job_id, poke FROM job_changes WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(self.last)
        .bind(SQLITE_KEEP_CHANGES)
        .fetch_all(&mut self.conn)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(Look::default());
        };
        let first: i64 = first.try_get(0)?;
        let mut look = Look {
            jobs: Vec::new(),
            pokes: Vec::new(),
            missed: first != self.last + 1 || rows.len() as i64 == SQLITE_KEEP_CHANGES,
        };
        let mut seen = std::collections::HashSet::new();
        let mut poked = std::collections::HashSet::new();
        for row in &rows {
            self.last = row.try_get(0)?;
            let job: i64 = row.try_get(1)?;
            let poke: i64 = row.try_get(2)?;
            if poke != 0 {
                if poked.insert(job) {
                    look.pokes.push(job);
                }
            } else if seen.insert(job) {
                look.jobs.push(job);
            }
        }
        if self.last % 1000 < rows.len() as i64 {
            sqlx::query("DELETE FROM job_changes WHERE id <= $1")
                .bind(self.last - SQLITE_KEEP_CHANGES)
                .execute(&mut self.conn)
                .await?;
        }
        Ok(look)
    }
}

async fn data_version(conn: &mut sqlx::AnyConnection) -> Result<i64, sqlx::Error> {
    sqlx::query("PRAGMA data_version")
        .fetch_one(conn)
        .await?
        .try_get(0)
}
