//! The database layer: every SQL statement tether runs, the migrations, and the change
//! notifications, for SQLite and PostgreSQL alike.
//!
//! tether keeps one implementation of each store for both backends, written against sqlx's
//! `Any` driver with `$N` placeholders (which SQLite accepts too). Where the dialects differ,
//! a store asks [`Db::backend`]. The schema lives in `migrations/sqlite` and
//! `migrations/postgres`: the same logical tables in each engine's DDL (`tests/schema_parity.rs`
//! checks that they agree).
//!
//! - [`jobs`]: job records, leases and events; writes that change a job and its task-state key
//!   do both in one transaction, in that module.
//! - [`members`]: the supervisors' heartbeats, from which each takes its fair share of jobs.
//! - [`state`]: task-state keys (`task_state`); its [`state::write_key`] takes the caller's
//!   connection, so a job's transaction can write a key.
//! - [`tokens`]: the registry of signed task tokens.
//! - [`settings`]: values of the database every process reads (the key namespace).
//! - [`changes`]: the feeds that tell waiters a job changed (PostgreSQL `NOTIFY`, SQLite's
//!   `job_changes` table).
//! - [`pokes`]: provider events: the job an event names, marked due now.
//! - `rows`: one decoder per record type.
//!
//! Nothing outside this module writes SQL; the records themselves are in `crate::model`.

pub mod changes;
mod fault;
pub mod jobs;
pub mod members;
pub mod pokes;
mod rows;
pub mod settings;
pub mod state;
pub mod tokens;
mod url;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

pub use self::fault::Unavailable;
pub use self::url::{mask, Backend, DatabaseUrl, UrlError};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// The page cache of each SQLite connection: 512 KiB (negative values are KiB).
const SQLITE_CACHE_SIZE: &str = "PRAGMA cache_size = -512";

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The URL is malformed or names an unsupported database.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The database could not be reached or opened.
    #[error("cannot connect to database `{url}`: {reason}")]
    Connect {
        /// The URL, password masked.
        url: String,
        /// What the driver said.
        reason: String,
    },
    /// Applying the embedded migrations failed.
    #[error("cannot migrate database `{url}`: {reason}")]
    Migrate {
        /// The URL, password masked.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// No connection could be obtained from the pool: every failure there (the server
    /// refusing new connections for whatever reason, a database being recreated, a password
    /// changed under a running process, the pool's wait running out) passes, whatever the
    /// driver called it. Only [`Db::connect`], at start-up, fails for good on such errors.
    #[error("{}: {}", Unavailable::from_acquire(.0), .0)]
    Acquire(sqlx::Error),
    /// A query failed.
    #[error("{}", query_message(.0))]
    Query(#[from] sqlx::Error),
}

fn query_message(e: &sqlx::Error) -> String {
    match fault::classify(e) {
        Some(why) => format!("{why}: {e}"),
        None => format!("database error: {e}"),
    }
}

impl DbError {
    /// Why the database cannot serve now, when the failure passes (as opposed to a bad
    /// query), so that callers can retry later.
    pub fn unavailable(&self) -> Option<Unavailable> {
        match self {
            DbError::Connect { .. } => Some(Unavailable::Unreachable),
            DbError::Acquire(e) => Some(Unavailable::from_acquire(e)),
            DbError::Query(e) => fault::classify(e),
            _ => None,
        }
    }

    /// Whether the failure passes: see [`DbError::unavailable`].
    pub fn is_unavailable(&self) -> bool {
        self.unavailable().is_some()
    }
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Runs a write that has a `RETURNING` clause to its end and returns its first row.
///
/// Every write that returns rows goes through here rather than `fetch_one`/`fetch_optional`:
/// those stop reading after the first row and reset the statement, and on SQLite, outside a
/// transaction, the statement's own commit then happens inside that reset, whose error (a full
/// disk) nobody sees: the caller would acknowledge a write that was never committed.
pub async fn returning<'q, 'e, E>(
    query: AnyQuery<'q>,
    executor: E,
) -> Result<Option<sqlx::any::AnyRow>, sqlx::Error>
where
    'q: 'e,
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(query.fetch_all(executor).await?.into_iter().next())
}

/// Takes an exclusive lock on `<db_file>.migrate.lock`, waiting for another process that
/// holds it. The lock ends when the returned file is dropped or the process exits.
async fn lock_file(db_file: std::path::PathBuf) -> Result<std::fs::File, String> {
    let mut path = db_file.into_os_string();
    path.push(".migrate.lock");
    let path = std::path::PathBuf::from(path);
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open the lock file {}: {e}", path.display()))?;
        file.lock()
            .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
        Ok(file)
    })
    .await
    .map_err(|e| format!("the lock task failed: {e}"))?
}

/// How many connections to keep and how long to wait for one.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Upper bound on open connections.
    pub max_connections: u32,
    /// How long to wait for a connection (and for the first one when connecting).
    pub acquire_timeout: Duration,
    /// How long a connection may sit unused before it is closed: after a burst (or an outage,
    /// when every waiter reconnected at once) the pool shrinks back to what it uses, and hands
    /// the server's slots back.
    pub idle_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Whether a connection handed back to the pool is outside any transaction, so that the next
/// borrower's statements commit by themselves. A connection that is not (a commit or a statement
/// failed mid-transaction, say with SQLite's "disk full", and SQLite rolled the transaction back
/// by itself, or did not) is closed instead of kept: kept, its open transaction would hold the
/// write lock and swallow every later write uncommitted.
///
/// On SQLite a `BEGIN` tells SQLite's own view (it fails inside a transaction); sqlx's count of
/// open transactions tells its view (asked after the `BEGIN`, which runs after any rollback
/// still queued on the connection). Both must say "none".
async fn settled(conn: &mut AnyConnection, backend: Backend) -> bool {
    if backend == Backend::Sqlite {
        if conn.execute("BEGIN").await.is_err() {
            tracing::warn!("a database connection was left inside a transaction; closing it");
            return false;
        }
        if conn.execute("ROLLBACK").await.is_err() {
            return false;
        }
    }
    if conn.is_in_transaction() {
        tracing::warn!("a database connection was handed back inside a transaction; closing it");
        return false;
    }
    true
}

/// Closes the connections a pool did not need for a whole `idle_timeout`, until the pool is
/// closed, keeping one spare.
///
/// sqlx's own `idle_timeout` closes a connection only once it sat unused that long, but the pool
/// hands its idle connections out in turn, so that under any steady trickle of queries (the
/// supervisor's heartbeats) none ever sits unused, and a pool that grew in a burst (an outage's
/// reconnects) would hold the server's slots for good. Here the fewest idle connections seen in
/// each period were not needed in it: that many (but one) are closed.
async fn shrink_when_idle(
    pool: AnyPool,
    idle_timeout: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let sample = (idle_timeout / 10).max(Duration::from_millis(100));
    while !pool.is_closed() && !stop.is_cancelled() {
        let started = tokio::time::Instant::now();
        let mut fewest = usize::MAX;
        while started.elapsed() < idle_timeout && !pool.is_closed() {
            fewest = fewest.min(pool.num_idle());
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(sample) => {}
            }
        }
        for _ in 1..fewest.min(pool.num_idle()) {
            match pool.try_acquire() {
                Some(conn) => drop(conn.close().await),
                None => break,
            }
        }
    }
}

/// A pool of connections to tether's database.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    url: DatabaseUrl,
    /// Stops the pool's shrinker once the last clone of this `Db` is gone.
    _shrinker: Arc<tokio_util::sync::DropGuard>,
}

impl Db {
    /// Connects to `url`. A SQLite file (and its folder) is created if missing and put in WAL
    /// mode. Does not migrate: call [`Db::migrate`].
    pub async fn connect(url: &DatabaseUrl, settings: &PoolSettings) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let connect_err = |reason: String| DbError::Connect {
            url: url.to_string(),
            reason,
        };
        let backend = url.backend();
        let mut raw = url.expose().to_string();
        let mut max_connections = settings.max_connections.max(1);
        if backend == Backend::Sqlite {
            match url.sqlite_file_path() {
                Some(path) => {
                    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        std::fs::create_dir_all(dir).map_err(|e| {
                            connect_err(format!("cannot create folder {}: {e}", dir.display()))
                        })?;
                    }
                    if !raw.contains("mode=") {
                        raw.push_str(if raw.contains('?') { "&" } else { "?" });
                        raw.push_str("mode=rwc");
                    }
                }
                // Every connection to `sqlite::memory:` is its own database: keep one.
                None => max_connections = 1,
            }
        }
        let options = AnyConnectOptions::from_str(&raw).map_err(|e| connect_err(e.to_string()))?;
        // One direct connection first: a pool that cannot connect only says "timed out",
        // while the driver's own error names the cause (refused, unknown host, bad password).
        match tokio::time::timeout(
            settings.acquire_timeout,
            AnyConnection::connect_with(&options),
        )
        .await
        {
            Ok(Ok(conn)) => drop(conn.close().await),
            Ok(Err(e)) => return Err(connect_err(e.to_string())),
            Err(_) => {
                return Err(connect_err(format!(
                    "no answer within {:?}",
                    settings.acquire_timeout
                )))
            }
        }
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .min_connections(0)
            .idle_timeout(settings.idle_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the one writer; FULL makes a commit
                        // durable before it returns (a recorded job handle must survive a
                        // power loss, not only a process crash).
                        // The busy timeout first: switching to WAL needs a lock that another
                        // process opening the same new file may hold for a moment.
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        // Each connection has its own page cache (2 MiB by default), emptied
                        // whenever another connection commits, which the supervisor does all
                        // the time: 512 KiB each keeps a pool's memory small; reads that miss
                        // come from the operating system's cache.
                        conn.execute(SQLITE_CACHE_SIZE).await?;
                    }
                    Ok(())
                })
            })
            .after_release(move |conn, _meta| {
                Box::pin(async move { Ok(settled(conn, backend).await) })
            })
            .connect_with(options)
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(shrink_when_idle(
            pool.clone(),
            settings.idle_timeout,
            stop.clone(),
        ));
        Ok(Self {
            pool,
            backend,
            url: url.clone(),
            _shrinker: Arc::new(stop.drop_guard()),
        })
    }

    /// Applies the embedded migrations that have not been applied yet.
    ///
    /// Several processes may start at once on a new database. PostgreSQL serialises them with
    /// sqlx's advisory lock; on SQLite that lock is a no-op, so migrating holds an exclusive
    /// lock on `<file>.migrate.lock` beside the database (released when the process ends,
    /// however it ends), and whoever comes second finds the migrations applied.
    pub async fn migrate(&self) -> Result<(), DbError> {
        let migrate_err = |reason: String| DbError::Migrate {
            url: self.url.to_string(),
            reason,
        };
        let _lock = match self.url.sqlite_file_path() {
            Some(db_file) => Some(lock_file(db_file).await.map_err(migrate_err)?),
            None => None,
        };
        self.migrator()
            .run(&self.pool)
            .await
            .map_err(|e| migrate_err(e.to_string()))
    }

    /// Whether every embedded migration has been applied.
    pub async fn is_migrated(&self) -> Result<bool, DbError> {
        let table = "SELECT COUNT(*) FROM _sqlx_migrations WHERE success = $1";
        let applied: i64 = match sqlx::query_scalar(table)
            .bind(true)
            .fetch_one(&mut *self.acquire().await?)
            .await
        {
            Ok(n) => n,
            Err(sqlx::Error::Database(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        Ok(applied as usize >= self.migrator().iter().count())
    }

    fn migrator(&self) -> &'static Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// The database's clock now, in milliseconds since the epoch: PostgreSQL's
    /// `clock_timestamp()`, SQLite's `'now'` (the host's clock: SQLite is one host).
    pub async fn now_ms(&self) -> Result<i64, DbError> {
        let sql = match self.backend {
            Backend::Postgres => {
                "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
            }
            Backend::Sqlite => {
                "SELECT CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)"
            }
        };
        Ok(sqlx::query_scalar(sql)
            .fetch_one(&mut *self.acquire().await?)
            .await?)
    }

    /// A connection from the pool: the one place where tether's queries obtain one, so that
    /// any failure to get it is told apart from a failure of a query ([`DbError::Acquire`],
    /// always "unavailable": 503 with `Retry-After`, a back-off in the supervisor).
    pub async fn acquire(&self) -> Result<PoolConnection<sqlx::Any>, DbError> {
        self.pool.acquire().await.map_err(DbError::Acquire)
    }

    /// The connection pool, for tests and tools that run their own SQL; tether's own queries
    /// take their connection from [`Db::acquire`].
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which engine this is, for the few statements whose dialects differ.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL connected to (prints with the password masked).
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
