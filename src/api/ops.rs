//! Health, readiness, metrics and the OpenAPI document.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::auth::Principal;
use super::error::{ApiError, ErrorBody};
use super::{ApiDoc, ApiState};

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
                    status: e
                        .unavailable()
                        .map_or("database error", |why| why.message())
                        .into(),
                }),
            )
        }
    }
}

/// What this deployment is: its version, its database's kind, and the namespace its
/// idempotency keys are derived in (two deployments with different namespaces never adopt
/// each other's remote jobs).
#[derive(Debug, Serialize, ToSchema)]
pub struct Info {
    /// tether's version.
    pub version: String,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// The key namespace, and where it comes from.
    pub key_namespace: crate::engine::KeyNamespace,
    /// The largest task-state value this deployment stores, in bytes of compact JSON
    /// (`state.max_value_bytes`): what a client that packs state, as the Airflow package's
    /// checkpoints do, must fit each value within.
    pub state_max_value_bytes: usize,
}

/// This deployment's version, database kind, key namespace and task-state value limit.
#[utoipa::path(get, path = "/v1/info", tag = "ops",
    responses((status = 200, body = Info), (status = 401, body = ErrorBody)))]
pub async fn info(State(s): State<ApiState>, _who: Principal) -> axum::Json<Info> {
    axum::Json(Info {
        version: env!("CARGO_PKG_VERSION").to_string(),
        database: s.app.db.backend().to_string(),
        key_namespace: s.app.engine.key_namespace().clone(),
        state_max_value_bytes: s.app.config.state.max_value_bytes,
    })
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
