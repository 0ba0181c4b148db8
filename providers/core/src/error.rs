//! Provider errors, classified so that the engine decides from the kind alone.

use std::time::Duration;

/// How the engine should treat a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Try again later: timeouts, connection failures, 5xx, 429.
    Transient,
    /// The request will not succeed as it is: 4xx, rejected credentials.
    Permanent,
    /// The job (or what the spec names) does not exist.
    NotFound,
    /// The job spec is wrong; nothing was submitted.
    InvalidSpec,
}

/// A provider call's result: `Result<T>` is `Result<T, ProviderError>`.
pub type Result<T, E = ProviderError> = std::result::Result<T, E>;

/// A failed call to a provider.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{provider}: {message}")]
pub struct ProviderError {
    /// Which provider kind failed (`databricks`, ...).
    pub provider: &'static str,
    /// How to treat it.
    pub kind: ErrorKind,
    /// What went wrong, in the provider's words where it gave any. Never holds a credential.
    pub message: String,
    /// How long the provider asked us to wait (Retry-After).
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    /// An error of `kind`.
    pub fn new(provider: &'static str, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            provider,
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A transient error.
    pub fn transient(provider: &'static str, message: impl Into<String>) -> Self {
        Self::new(provider, ErrorKind::Transient, message)
    }

    /// A permanent error.
    pub fn permanent(provider: &'static str, message: impl Into<String>) -> Self {
        Self::new(provider, ErrorKind::Permanent, message)
    }

    /// The job is gone (the engine records it as lost).
    pub fn not_found(provider: &'static str, message: impl Into<String>) -> Self {
        Self::new(provider, ErrorKind::NotFound, message)
    }

    /// A bad job spec.
    pub fn invalid_spec(provider: &'static str, message: impl Into<String>) -> Self {
        Self::new(provider, ErrorKind::InvalidSpec, message)
    }

    /// With the wait the provider asked for.
    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// Whether the call may succeed if repeated later.
    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Transient
    }
}
