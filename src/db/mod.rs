//! The database connection shared by every store: connecting, migrations, and the two dialects.
//!
//! tether keeps one implementation of each store for both backends, written against sqlx's
//! `Any` driver with `$N` placeholders (which SQLite accepts too). Where the dialects differ,
//! a store asks [`Db::backend`]. The schema lives in `migrations/sqlite` and
//! `migrations/postgres`: the same logical tables in each engine's DDL.

mod url;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

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
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
}

impl DbError {
    /// Whether the failure is the database being out of reach (as opposed to a bad query), so
    /// that callers can retry later.
    pub fn is_unavailable(&self) -> bool {
        match self {
            DbError::Connect { .. } => true,
            DbError::Query(e) => matches!(
                e,
                // A connection cut mid-handshake shows up as a protocol or TLS error.
                sqlx::Error::Io(_)
                    | sqlx::Error::Protocol(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
            ),
            _ => false,
        }
    }
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
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// A pool of connections to tether's database.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    url: DatabaseUrl,
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
            .connect_with(options)
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        Ok(Self {
            pool,
            backend,
            url: url.clone(),
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
            .fetch_one(&self.pool)
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

    /// The connection pool.
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
