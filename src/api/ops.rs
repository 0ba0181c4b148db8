//! Health, readiness, metrics, the OpenAPI document, and task tokens.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::auth::{Principal, TaskClaims};
use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use super::{ApiDoc, ApiState};
use crate::state::TaskInstanceId;

/// Health or readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or what is wrong.
    pub status: String,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", security(()), responses((status = 200, body = Health)))]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok".into(),
    })
}

/// The database is reachable and migrated.
#[utoipa::path(get, path = "/readyz", tag = "ops", security(()), responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn readyz(State(s): State<ApiState>) -> (StatusCode, axum::Json<Health>) {
    match s.app.db.is_migrated().await {
        Ok(true) => (
            StatusCode::OK,
            axum::Json(Health {
                status: "ok".into(),
            }),
        ),
        Ok(false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(Health {
                status: "migrations pending".into(),
            }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(Health {
                    status: "database unreachable".into(),
                }),
            )
        }
    }
}

/// Prometheus metrics (text format).
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, content_type = "text/plain", body = String), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn metrics(State(s): State<ApiState>, _who: Principal) -> Result<Response, ApiError> {
    let counts = s.app.engine.jobs().count_by_provider_and_state().await?;
    crate::metrics::JOBS.reset();
    for (provider, state, n) in counts {
        crate::metrics::JOBS
            .with_label_values(&[&state, &provider])
            .set(n);
    }
    for (name, provider) in s.app.engine.providers().iter() {
        crate::metrics::RATE_LIMIT_WAITS
            .with_label_values(&[name])
            .set(provider.rate_limit_waits() as i64);
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
        .into_response())
}

/// The OpenAPI document of this API.
pub async fn openapi() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

/// Unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// A known route asked with a method it does not serve.
pub async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not served on this route (see /openapi.json)"),
    )
}

/// A request for a task token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The DAG the token is bound to.
    pub dag_id: String,
    /// Bind to one run.
    pub run_id: Option<String>,
    /// Bind to one task.
    pub task_id: Option<String>,
    /// Bind to one map index.
    pub map_index: Option<i64>,
    /// Assets whose state the token may use.
    #[serde(default)]
    pub assets: Vec<String>,
    /// Lifetime in seconds (default `api.task_token_ttl`, at most 7 days).
    pub ttl_seconds: Option<u64>,
}

/// A signed task token.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// The bearer token.
    pub token: String,
    /// What it may touch.
    pub claims: TaskClaims,
}

/// Sign a task token (admin only).
#[utoipa::path(post, path = "/v1/tokens", tag = "ops", request_body = TokenRequest,
    responses((status = 200, body = TokenResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn issue_token(
    State(s): State<ApiState>,
    who: Principal,
    Json(req): Json<TokenRequest>,
) -> Result<axum::Json<TokenResponse>, ApiError> {
    who.require_admin("signing task tokens")?;
    let claims = claims_for(req, s.app.config.api.task_token_ttl.as_secs())?;
    Ok(axum::Json(TokenResponse {
        token: s.keys.sign(&claims),
        claims,
    }))
}

/// Checks a token request and turns it into claims.
pub fn claims_for(req: TokenRequest, default_ttl: u64) -> Result<TaskClaims, ApiError> {
    let check = |field: &'static str, value: &str, extra: &str| {
        crate::state::scope::validate_id(field, value, extra)
            .map_err(|e| ApiError::bad_request(e.to_string()))
    };
    check("dag_id", &req.dag_id, "")?;
    if let Some(r) = &req.run_id {
        check("run_id", r, ":+")?;
    }
    if let Some(t) = &req.task_id {
        check("task_id", t, "")?;
    }
    if let Some(m) = req.map_index {
        TaskInstanceId::new("d", "r", "t", m)
            .validate()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    for a in &req.assets {
        crate::state::Scope::asset(a.clone())
            .validate()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    let ttl = req.ttl_seconds.unwrap_or(default_ttl);
    if ttl == 0 || ttl > 7 * 86400 {
        return Err(ApiError::bad_request(format!(
            "ttl_seconds {ttl} is outside 1..=604800"
        )));
    }
    let exp = chrono::Utc::now().timestamp() as u64 + ttl;
    Ok(TaskClaims {
        dag_id: req.dag_id,
        run_id: req.run_id,
        task_id: req.task_id,
        map_index: req.map_index,
        assets: req.assets,
        exp,
    })
}
