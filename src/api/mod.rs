//! The HTTP API (`/v1`, JSON) that `tether serve` offers to deferrable operators, Airflow
//! backends and platform tooling.
//!
//! - [`jobs`]: ensure, get, long-poll wait, events, cancel, list.
//! - [`state`]: task state of the three scopes, shaped like Airflow's state-store routes.
//! - [`ops`]: health, readiness, metrics, the OpenAPI document.
//! - [`tokens`]: task tokens: signing, the registry, listing, revoking.
//! - [`events`]: provider events: pokes, and the notifications services send.
//! - [`paging`]: page sizes and cursors of every list; [`limits`]: slow and oversized
//!   requests; [`waits`]: caps on long polls in flight.
//! - [`auth`]: admin and task tokens; [`error`]: the one status-code mapping; [`extract`]:
//!   extractors that answer bad input with that mapping.

pub mod auth;
pub mod error;
pub mod events;
pub mod extract;
pub mod jobs;
pub mod limits;
pub mod ops;
pub mod paging;
pub mod state;
pub mod tokens;
pub mod waits;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;

use crate::app::App;
use auth::TokenKeys;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The services.
    pub app: App,
    /// Hashes of the admin tokens.
    pub admin_hashes: Arc<Vec<String>>,
    /// The task-token signing keys.
    pub keys: TokenKeys,
    /// The task tokens signed, and which were revoked.
    pub tokens: tokens::TokenRegistry,
    /// Cancelled when the server shuts down, so that long polls return at once.
    pub shutdown: CancellationToken,
    /// The long polls in flight, capped.
    pub waits: Arc<waits::WaitSlots>,
}

impl ApiState {
    /// The API state for an opened app. Without `api.signing_key` (or `api.signing_keys`),
    /// task tokens are signed with a random key that lives as long as this process.
    pub fn new(app: App) -> Self {
        let keys = TokenKeys::from_config(&app.config.api.signing_keys).unwrap_or_else(|| {
            tracing::warn!("api.signing_key is not set: task tokens are signed with a random key and stop working when this process restarts");
            let secret: Vec<u8> = (0..4)
                .flat_map(|_| rand::random::<u64>().to_le_bytes())
                .collect();
            TokenKeys::new("process", &secret)
        });
        Self {
            admin_hashes: Arc::new(app.config.api.admin_token_sha256.clone()),
            keys,
            tokens: tokens::TokenRegistry::new(app.db.clone()),
            shutdown: CancellationToken::new(),
            waits: Arc::new(waits::WaitSlots::new(
                app.config.api.max_waits,
                app.config.api.max_waits_per_token,
            )),
            app,
        }
    }
}

/// The OpenAPI document, generated from the handlers so that it cannot drift.
#[derive(OpenApi)]
#[openapi(
    info(title = "tether", description = "Resumable remote jobs and durable task state"),
    paths(
        jobs::ensure, jobs::get_job, jobs::wait_job, jobs::wait_jobs, jobs::job_events, jobs::cancel_job, jobs::consume_job, jobs::list_jobs, jobs::job_counts,
        state::ti_get, state::ti_put, state::ti_delete, state::ti_list, state::ti_clear,
        state::task_get, state::task_put, state::task_delete, state::task_list, state::task_clear,
        state::asset_get, state::asset_put, state::asset_delete, state::asset_list, state::asset_clear,
        state::forget_run,
        ops::healthz, ops::readyz, ops::metrics, ops::info,
        tokens::issue_token, tokens::list_tokens, tokens::revoke_token,
        events::poke, events::notification,
    ),
    modifiers(&BearerAuth, &IdRules),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Writes Airflow's identifier rules into the path parameters of the document, so that
/// clients (and fuzzers) know them.
struct IdRules;

impl utoipa::Modify for IdRules {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let rule = |pattern: &str, max: usize| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(pattern))
                .min_length(Some(1))
                .max_length(Some(max))
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                for p in op.parameters.iter_mut().flatten() {
                    let schema = match p.name.as_str() {
                        "dag_id" | "task_id" => rule("^[A-Za-z0-9_.-]+$", 250),
                        "run_id" => rule("^[A-Za-z0-9_.:+-]+$", 250),
                        "key" => rule("^[^\\x00-\\x1f\\x7f]+$", 512),
                        _ => continue,
                    };
                    p.schema = Some(schema.into());
                }
            }
        }
    }
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    let max_body = state.app.config.api.max_body_bytes;
    let body_limits = limits::BodyLimits {
        max_bytes: max_body,
        read_timeout: state.app.config.api.body_read_timeout,
    };
    let ti = "/v1/state/task-instances/{dag_id}/{run_id}/{task_id}/{map_index}";
    let task = "/v1/state/tasks/{dag_id}/{task_id}";
    let asset = "/v1/state/assets/{asset}";
    Router::new()
        .route("/v1/jobs", post(jobs::ensure).get(jobs::list_jobs))
        .route("/v1/jobs/counts", get(jobs::job_counts))
        .route("/v1/jobs/wait", post(jobs::wait_jobs))
        .route("/v1/jobs/{id}", get(jobs::get_job))
        .route("/v1/jobs/{id}/wait", get(jobs::wait_job))
        .route("/v1/jobs/{id}/events", get(jobs::job_events))
        .route("/v1/jobs/{id}/cancel", post(jobs::cancel_job))
        .route("/v1/jobs/{id}/consume", post(jobs::consume_job))
        .route(
            &format!("{ti}/keys/{{key}}"),
            get(state::ti_get)
                .put(state::ti_put)
                .delete(state::ti_delete),
        )
        .route(&format!("{ti}/keys"), get(state::ti_list))
        .route(ti, axum::routing::delete(state::ti_clear))
        .route(
            &format!("{task}/keys/{{key}}"),
            get(state::task_get)
                .put(state::task_put)
                .delete(state::task_delete),
        )
        .route(&format!("{task}/keys"), get(state::task_list))
        .route(task, axum::routing::delete(state::task_clear))
        .route(
            &format!("{asset}/keys/{{key}}"),
            get(state::asset_get)
                .put(state::asset_put)
                .delete(state::asset_delete),
        )
        .route(&format!("{asset}/keys"), get(state::asset_list))
        .route(asset, axum::routing::delete(state::asset_clear))
        .route(
            "/v1/state/runs/{dag_id}/{run_id}",
            axum::routing::delete(state::forget_run),
        )
        .route(
            "/v1/tokens",
            post(tokens::issue_token).get(tokens::list_tokens),
        )
        .route(
            "/v1/tokens/{id}",
            axum::routing::delete(tokens::revoke_token),
        )
        .route("/v1/events/poke", post(events::poke))
        .route("/v1/events/{kind}/{account}", post(events::notification))
        .route("/v1/info", get(ops::info))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .merge(crate::ui::routes())
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            body_limits,
            limits::guard_body,
        ))
        .layer(axum::middleware::from_fn(crate::ui::secure))
        .layer(axum::middleware::from_fn(record_latency))
        .with_state(state)
}

async fn record_latency(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    crate::metrics::HTTP_LATENCY
        .with_label_values(&[route.as_str(), response.status().as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Binds the API's address (`api.listen`): done first, so that a taken port ends `tether
/// serve` before it claims anything.
pub fn bind(listen: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves the API on `listener` (see [`bind`]; HTTPS when `api.tls_cert` and `api.tls_key` are
/// set) until `shutdown`: then it stops accepting, long polls return at once, and requests in
/// flight get `supervisor.shutdown_grace` to finish.
pub async fn serve(
    app: App,
    listener: std::net::TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    crate::metrics::init();
    let tls = app.config.api.tls.clone();
    let grace = app.config.supervisor.shutdown_grace;
    let mut state = ApiState::new(app);
    state.shutdown = shutdown.clone();
    let header_read_timeout = state.app.config.api.header_read_timeout;
    let routes = router(state);
    let address = listener.local_addr()?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        stopper.graceful_shutdown(Some(grace));
    });
    match tls {
        Some(files) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let config =
                axum_server::tls_rustls::RustlsConfig::from_pem_file(&files.cert, &files.key)
                    .await
                    .map_err(|e| {
                        std::io::Error::other(format!(
                            "loading {} and {}: {e}",
                            files.cert.display(),
                            files.key.display()
                        ))
                    })?;
            tracing::info!(%address, "HTTP API listening (HTTPS)");
            let tls = axum_server::tls_rustls::RustlsAcceptor::new(config)
                .acceptor(limits::FirstByteWithin(header_read_timeout));
            let mut server = axum_server::from_tcp(listener).acceptor(tls);
            read_headers_within(server.http_builder(), header_read_timeout);
            server
                .handle(handle)
                .serve(routes.into_make_service())
                .await
        }
        None => {
            tracing::info!(%address, "HTTP API listening");
            let mut server = axum_server::from_tcp(listener)
                .acceptor(limits::FirstByteWithin(header_read_timeout));
            read_headers_within(server.http_builder(), header_read_timeout);
            server
                .handle(handle)
                .serve(routes.into_make_service())
                .await
        }
    }
}

/// `api.header_read_timeout`: a connection that has not sent a request's whole header this
/// long after the server began waiting for it (slowly, or not at all, or idle after an
/// earlier request) is closed. hyper enforces it once it has a timer.
fn read_headers_within(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    timeout: std::time::Duration,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(timeout);
}
