//! What a database failure means to the caller: whether it passes (retry later, and why), or
//! is a fault of the query itself.
//!
//! A failure that passes is an [`Unavailable`]: the database out of reach, no connection free,
//! its disk full, a lock held by another writer. The API answers each with 503 and a
//! `Retry-After`, the CLI names it, and the supervisor backs off; nothing is acknowledged that
//! was not committed (see [`super::returning`] and the pool's release check in [`super::Db`]).

use std::fmt;
use std::time::Duration;

use sqlx::error::DatabaseError;

/// Why the database cannot serve a request now, in a way that passes by itself or by an
/// operator's hand (never a bad query).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unavailable {
    /// Out of reach: refused, cut, shutting down or starting.
    Unreachable,
    /// No connection to be had: every one of the pool's is busy past its wait, or the server
    /// refuses more clients (`max_connections`, a role's `CONNECTION LIMIT`).
    NoConnection,
    /// The disk (or quota) holding the database is full: nothing was written.
    DiskFull,
    /// The database file cannot be read or written (an I/O error of the file system).
    Storage,
    /// Another writer holds a lock past the wait (SQLite's `busy_timeout`), or the server
    /// aborted the transaction to break a deadlock or a serialization conflict.
    Busy,
}

impl Unavailable {
    /// What to tell a client: what is wrong, and that trying again is safe.
    pub fn message(self) -> &'static str {
        match self {
            Unavailable::Unreachable => "the database is unreachable; try again shortly",
            Unavailable::NoConnection => {
                "no database connection could be had in time (the database is unreachable, \
                 refuses more clients, or every pooled connection is busy); try again shortly"
            }
            Unavailable::DiskFull => {
                "the database's disk is full: nothing was written; try again once space is freed"
            }
            Unavailable::Storage => {
                "the database file cannot be read or written (an I/O error); try again shortly"
            }
            Unavailable::Busy => {
                "the database is busy (locked by another writer); try again shortly"
            }
        }
    }

    /// How long a client should wait before trying again (`Retry-After`).
    pub fn retry_after(self) -> Duration {
        match self {
            Unavailable::DiskFull | Unavailable::Storage => Duration::from_secs(10),
            Unavailable::Unreachable => Duration::from_secs(2),
            Unavailable::NoConnection | Unavailable::Busy => Duration::from_secs(1),
        }
    }

    /// Why no connection could be obtained: what [`classify`] says of the driver's error, and
    /// otherwise "no connection" (whatever the server answered a new connection with:
    /// `55000`, a database that does not accept connections; `3D000`, one being recreated;
    /// `28P01`, a password changed under a running process).
    pub fn from_acquire(error: &sqlx::Error) -> Self {
        classify(error).unwrap_or(Unavailable::NoConnection)
    }

    /// A stable label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Unavailable::Unreachable => "unreachable",
            Unavailable::NoConnection => "no_connection",
            Unavailable::DiskFull => "disk_full",
            Unavailable::Storage => "storage",
            Unavailable::Busy => "busy",
        }
    }
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unavailable::Unreachable => "database unreachable",
            Unavailable::NoConnection => "no database connection free",
            Unavailable::DiskFull => "database disk full",
            Unavailable::Storage => "database I/O error",
            Unavailable::Busy => "database busy",
        })
    }
}

/// What `error` means, if it passes.
pub fn classify(error: &sqlx::Error) -> Option<Unavailable> {
    match error {
        // A connection cut mid-handshake shows up as a protocol or TLS error.
        sqlx::Error::Io(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Some(Unavailable::Unreachable),
        sqlx::Error::PoolTimedOut => Some(Unavailable::NoConnection),
        sqlx::Error::Database(e) => classify_database(e.as_ref()),
        _ => None,
    }
}

fn classify_database(e: &dyn DatabaseError) -> Option<Unavailable> {
    if let Some(e) = e.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
        // Extended result codes: the primary code is the low byte.
        let code: i32 = e.code()?.parse().ok()?;
        return match code & 0xff {
            13 => Some(Unavailable::DiskFull),     // SQLITE_FULL
            5 | 6 => Some(Unavailable::Busy),      // SQLITE_BUSY, SQLITE_LOCKED
            10 | 14 => Some(Unavailable::Storage), // SQLITE_IOERR, SQLITE_CANTOPEN
            _ => None,
        };
    }
    let e = e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
    classify_sqlstate(e.code())
}

/// PostgreSQL's SQLSTATE codes that pass (Appendix A of its manual).
fn classify_sqlstate(code: &str) -> Option<Unavailable> {
    match code {
        "53100" => Some(Unavailable::DiskFull),
        // too_many_connections, configuration_limit_exceeded
        "53300" | "53400" => Some(Unavailable::NoConnection),
        // out_of_memory: the server is overloaded
        "53200" => Some(Unavailable::Busy),
        // admin_shutdown, crash_shutdown, cannot_connect_now, database_dropped
        "57P01" | "57P02" | "57P03" | "57P04" => Some(Unavailable::Unreachable),
        // serialization_failure, deadlock_detected, lock_not_available
        "40001" | "40P01" | "55P03" => Some(Unavailable::Busy),
        // read_only_sql_transaction: a standby answered (failover in progress)
        "25006" => Some(Unavailable::Unreachable),
        // io_error, data_corrupted (of the server's files)
        "58030" => Some(Unavailable::Storage),
        // connection_exception and its subclasses
        c if c.starts_with("08") => Some(Unavailable::Unreachable),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates() {
        assert_eq!(classify_sqlstate("53300"), Some(Unavailable::NoConnection));
        assert_eq!(classify_sqlstate("53100"), Some(Unavailable::DiskFull));
        assert_eq!(classify_sqlstate("08006"), Some(Unavailable::Unreachable));
        assert_eq!(classify_sqlstate("57P01"), Some(Unavailable::Unreachable));
        assert_eq!(
            classify_sqlstate("23505"),
            None,
            "a unique violation is the query's"
        );
        assert_eq!(classify_sqlstate("42P01"), None);
    }

    #[test]
    fn driver_errors() {
        assert_eq!(
            classify(&sqlx::Error::PoolTimedOut),
            Some(Unavailable::NoConnection)
        );
        assert_eq!(classify(&sqlx::Error::RowNotFound), None);
    }
}
