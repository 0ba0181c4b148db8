//! The soak's errors, and their exit codes: tether's own, and a broken promise (exit 7).

use std::process::ExitCode;

/// Exit code when a promise broke (a duplicate submission, a lost job, a cancel nobody asked
/// for, ...).
pub const CHECK_FAILED: u8 = 7;

/// Why the soak stopped or failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A promise broke: what the soak exists to find.
    #[error("{0}")]
    CheckFailed(String),
    /// Interrupted (SIGINT/SIGTERM).
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// Arguments or a setup that do not fit together.
    #[error("{0}")]
    Usage(String),
    /// Starting a process, or reading and writing a file, failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// tether failed (the database, the engine, the config).
    #[error(transparent)]
    Tether(#[from] tether::Error),
}

impl From<tether::db::DbError> for Error {
    fn from(e: tether::db::DbError) -> Self {
        Self::Tether(e.into())
    }
}

impl Error {
    /// The process exit code: 7 for a broken promise, else tether's code for the same error.
    pub fn to_exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Error::CheckFailed(_) => CHECK_FAILED,
            Error::Interrupted(m) => tether::Error::Interrupted(m.clone()).exit_code(),
            Error::Usage(_) => tether::error::exit::USAGE,
            Error::Io { .. } => tether::error::exit::OPERATIONAL,
            Error::Tether(e) => e.exit_code(),
        })
    }
}
