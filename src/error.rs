//! The crate's public error, and the one place where errors become exit codes.
//!
//! Each component has its own error type ([`ConfigError`], [`DbError`], [`StateError`]); they
//! fold into [`Error`], which knows the CLI exit code of each. (HTTP status codes will be mapped
//! here too when the API lands.)

use std::process::ExitCode;

use crate::config::ConfigError;
use crate::db::DbError;
use crate::engine::EngineError;
use crate::state::StateError;

/// Exit codes of the `tether` binary.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// An operational error: the database is unreachable, a query failed, ...
    pub const OPERATIONAL: u8 = 1;
    /// A usage error: bad arguments, bad config, a value or key that breaks a rule.
    pub const USAGE: u8 = 2;
    /// What was asked for does not exist.
    pub const NOT_FOUND: u8 = 3;
    /// A compare-and-set write lost, a scope is full of keys, or a job is running with another
    /// spec.
    pub const CONFLICT: u8 = 4;
    /// `tether run` was interrupted (SIGINT/SIGTERM) before its job finished; the remote job
    /// keeps running, and running the command again reattaches.
    pub const INTERRUPTED: u8 = 5;
    /// `tether run`: the remote job ended unsuccessfully (failed, cancelled or lost).
    pub const JOB_FAILED: u8 = 6;
    /// `tether run`: the job's outcome is unknown (the provider forgot it after reporting it,
    /// before tether read its end); nothing is submitted again until a person settles it with
    /// `tether jobs resolve`.
    pub const OUTCOME_UNKNOWN: u8 = 7;
}

/// Any error tether reports to a user.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A task-state operation failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The resumption engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The remote job ended unsuccessfully.
    #[error("job {job_id} {state}: {message}")]
    JobFailed {
        /// The job.
        job_id: crate::model::JobId,
        /// Its final state.
        state: String,
        /// The provider's message.
        message: String,
    },
    /// Interrupted (SIGINT/SIGTERM) before the job finished; a remote job keeps running.
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// Arguments that do not fit together.
    #[error("{0}")]
    Usage(String),
    /// What was asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Reading input or writing output failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) | Error::Usage(_) => exit::USAGE,
            Error::Db(_) | Error::Io { .. } => exit::OPERATIONAL,
            Error::JobFailed { state, .. } if state == "outcome_unknown" => exit::OUTCOME_UNKNOWN,
            Error::JobFailed { .. } => exit::JOB_FAILED,
            Error::Interrupted { .. } => exit::INTERRUPTED,
            Error::NotFound(_) => exit::NOT_FOUND,
            Error::Engine(e) => match e {
                EngineError::Invalid(_) | EngineError::UnknownProvider { .. } => exit::USAGE,
                EngineError::Provider(p) | EngineError::SubmissionRefused { source: p, .. }
                    if p.kind == tether_provider::ErrorKind::InvalidSpec =>
                {
                    exit::USAGE
                }
                EngineError::JobNotFound(_) => exit::NOT_FOUND,
                EngineError::SpecChanged { .. }
                | EngineError::CancelRefused { .. }
                | EngineError::NotFinished(_)
                | EngineError::OutcomeKnown { .. } => exit::CONFLICT,
                _ => exit::OPERATIONAL,
            },
            Error::State(e) => match e {
                StateError::Invalid(_) | StateError::Value(_) => exit::USAGE,
                StateError::NotFound { .. } => exit::NOT_FOUND,
                StateError::Conflict { .. } | StateError::ScopeFull { .. } => exit::CONFLICT,
                _ => exit::OPERATIONAL,
            },
        }
    }

    /// The exit code as a [`ExitCode`].
    pub fn to_exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit_code())
    }
}
