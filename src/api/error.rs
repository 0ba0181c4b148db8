//! `ApiError`: the one place where errors become HTTP status codes and JSON bodies.
//!
//! Bodies are `{"error": "<code>", "message": "<what is wrong>"}`. Internal details (database
//! errors) are logged, not sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tether_provider::ErrorKind;
use utoipa::ToSchema;

use crate::db::DbError;
use crate::engine::EngineError;
use crate::state::{StateError, ValueError};

/// An error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable code: `invalid_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `version_conflict`, `quota_exceeded`, `payload_too_large`, `unavailable`, ...
    pub error: String,
    /// What is wrong, for people.
    pub message: String,
}

/// An error with its HTTP status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Sent as `Retry-After` (seconds): on every 503 and 429, so that clients wait and try
    /// again.
    retry_after: Option<std::time::Duration>,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 503 with `Retry-After`: a condition that passes (the database unreachable or full, a
    /// submission in progress elsewhere).
    pub fn unavailable(
        code: &'static str,
        message: impl Into<String>,
        retry_after: std::time::Duration,
    ) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }

    /// The same error, telling the client to ask again after `after` (`Retry-After`).
    pub fn retry_after(self, after: std::time::Duration) -> Self {
        Self {
            retry_after: Some(after),
            ..self
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The code (`not_found`, `forbidden`, ...).
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_string(),
            message: self.message,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(after) = self.retry_after {
            let seconds = after.as_secs().max(1).to_string();
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                seconds.parse().expect("digits are a header value"),
            );
        }
        response
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        if let Some(why) = e.unavailable() {
            tracing::warn!(error = %e, reason = why.as_str(), "database unavailable");
            crate::metrics::DB_UNAVAILABLE
                .with_label_values(&[why.as_str()])
                .inc();
            return Self::unavailable("unavailable", why.message(), why.retry_after());
        }
        tracing::error!(error = %e, "database error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }
}

impl From<StateError> for ApiError {
    fn from(e: StateError) -> Self {
        match e {
            StateError::Invalid(v) => Self::bad_request(v.to_string()),
            StateError::Value(v @ ValueError::TooLarge { .. }) => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                v.to_string(),
            ),
            StateError::Value(v) => Self::bad_request(v.to_string()),
            StateError::Conflict { .. } => {
                Self::new(StatusCode::CONFLICT, "version_conflict", e.to_string())
            }
            StateError::NotFound { .. } => Self::not_found(e.to_string()),
            StateError::ScopeFull { .. } => {
                Self::new(StatusCode::CONFLICT, "quota_exceeded", e.to_string())
            }
            StateError::Db(d) => d.into(),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Invalid(v) => Self::bad_request(v.to_string()),
            EngineError::UnknownProvider { .. } => Self::bad_request(e.to_string()),
            EngineError::Provider(p) => match p.kind {
                ErrorKind::InvalidSpec => {
                    Self::new(StatusCode::BAD_REQUEST, "invalid_spec", p.to_string())
                }
                ErrorKind::Transient => Self::new(
                    StatusCode::BAD_GATEWAY,
                    "provider_unavailable",
                    p.to_string(),
                ),
                _ => Self::new(StatusCode::BAD_GATEWAY, "provider_error", p.to_string()),
            },
            EngineError::SubmissionRefused { ref source, .. } => {
                let (status, code) = match source.kind {
                    ErrorKind::InvalidSpec => (StatusCode::BAD_REQUEST, "invalid_spec"),
                    _ => (StatusCode::BAD_GATEWAY, "submission_refused"),
                };
                Self::new(status, code, e.to_string())
            }
            EngineError::SpecChanged { .. } => {
                Self::new(StatusCode::CONFLICT, "spec_changed", e.to_string())
            }
            EngineError::JobNotFound(_) => Self::not_found(e.to_string()),
            EngineError::CancelRefused { .. } => {
                Self::new(StatusCode::CONFLICT, "cancel_refused", e.to_string())
            }
            EngineError::NotFinished(_) => {
                Self::new(StatusCode::CONFLICT, "not_finished", e.to_string())
            }
            EngineError::OutcomeKnown { .. } => {
                Self::new(StatusCode::CONFLICT, "outcome_known", e.to_string())
            }
            EngineError::SubmissionUncertain { .. } | EngineError::Busy { .. } => {
                Self::unavailable("retry", e.to_string(), std::time::Duration::from_secs(2))
            }
            EngineError::ClockSkew { .. } => Self::unavailable(
                "clock_skew",
                e.to_string(),
                std::time::Duration::from_secs(10),
            ),
            EngineError::LeaseProtocol { .. } => Self::unavailable(
                "lease_protocol",
                e.to_string(),
                std::time::Duration::from_secs(30),
            ),
            EngineError::Db(d) => d.into(),
            EngineError::State(s) => s.into(),
        }
    }
}
