//! Provider events over HTTP: a job's end told to tether rather than found at its next poll
//! (see [`crate::engine::events`]).
//!
//! - `POST /v1/events/poke`: an admin, or a task token bound to the account (its `providers`
//!   list names it), names a job by its account and handle (or reference); the job is due now.
//!   For declared providers and in-house systems that know when their jobs end.
//! - `POST /v1/events/{kind}/{account}`: the notifications an account's service sends
//!   (Databricks job notifications: `/v1/events/databricks/{account}`), authenticated by the
//!   account's own secret (not a tether token), read by its provider crate.
//!
//! Either way the event is a hint: the job is polled, and only what its status call says is
//! recorded.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tether_provider::events::Reading;
use tether_provider::Handle;
use utoipa::ToSchema;

use super::auth::Principal;
use super::error::{ApiError, ErrorBody};
use super::extract::{Json, Path};
use super::ApiState;
use crate::engine::events::Outcome;

/// A poke: which job's service says it changed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PokeBody {
    /// The provider account (`[providers.NAME]`) the job runs on.
    pub provider: String,
    /// The job's handle, as tether shows it (`{"run_id": 42}`). Give this or `ref`.
    #[serde(default)]
    pub handle: Option<Value>,
    /// The job's reference (the remote job's own id, as its service's events name it). Give
    /// this or `handle`.
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
}

/// What became of an event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventAnswer {
    /// `matched` (the jobs below are due now), `known` (the jobs below already record the state the
    /// event reports: nothing to poll), `progress` (it reports a state that is not an end, such as
    /// a run's start, of the jobs below: left to polling), `unmatched` (no active job of the
    /// account has that reference: it ended already, or tether does not track it), `foreign` (not
    /// about a job tether could track).
    pub outcome: String,
    /// The jobs marked due now (or, for `known` and `progress`, those it names).
    pub jobs: Vec<i64>,
    /// What a foreign event was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl EventAnswer {
    fn of(outcome: Outcome) -> Result<Self, ApiError> {
        let label = outcome.label().to_string();
        match outcome {
            Outcome::Matched(jobs) | Outcome::Known(jobs) | Outcome::Progress(jobs) => Ok(Self {
                outcome: label,
                jobs: jobs.into_iter().map(|j| j.0).collect(),
                detail: None,
            }),
            Outcome::Unmatched => Ok(Self {
                outcome: label,
                jobs: Vec::new(),
                detail: None,
            }),
            Outcome::Foreign(what) => Ok(Self {
                outcome: label,
                jobs: Vec::new(),
                detail: Some(what),
            }),
            Outcome::Unreadable(why) => Err(ApiError::bad_request(why)),
        }
    }
}

/// The source name metrics count pokes under.
const POKE_SOURCE: &str = "poke";

/// Mark a job due now: its service says it changed (it ended, most likely). Polled at once,
/// and only what the poll finds is recorded.
#[utoipa::path(post, path = "/v1/events/poke", tag = "events", request_body = PokeBody,
    responses((status = 200, body = EventAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn poke(
    State(s): State<ApiState>,
    who: Principal,
    Json(body): Json<PokeBody>,
) -> Result<axum::Json<EventAnswer>, ApiError> {
    if let Principal::Task(claims) = &who {
        let bound = claims
            .providers
            .as_ref()
            .is_some_and(|p| p.contains(&body.provider));
        if !bound {
            return Err(ApiError::forbidden(format!(
                "this task token is not bound to provider account {:?}: only an admin token, or a task token whose providers list names the account, may poke its jobs",
                body.provider
            )));
        }
    }
    let engine = &s.app.engine;
    engine.providers().get(&body.provider).map_err(|_| {
        ApiError::not_found(format!(
            "provider account {:?} is not configured (configured: {})",
            body.provider,
            engine
                .providers()
                .iter()
                .map(|(n, _)| n)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let reference = match (body.handle, body.reference) {
        (Some(handle), None) if handle.is_object() => {
            engine.handle_ref(&body.provider, &Handle::new(handle))
        }
        (Some(_), None) => {
            return Err(ApiError::bad_request(
                "handle must be a JSON object, the job's handle as tether shows it",
            ))
        }
        (None, Some(reference)) if !reference.is_empty() && reference.len() <= 2048 => reference,
        (None, Some(_)) => {
            return Err(ApiError::bad_request(
                "ref must be a non-empty string of at most 2048 bytes",
            ))
        }
        (Some(_), Some(_)) => return Err(ApiError::bad_request("give handle or ref, not both")),
        (None, None) => {
            return Err(ApiError::bad_request(
                "give the job's handle (a JSON object) or its ref",
            ))
        }
    };
    let jobs = engine.poke(&[body.provider], &reference).await?;
    let outcome = if jobs.is_empty() {
        Outcome::Unmatched
    } else {
        Outcome::Matched(jobs)
    };
    crate::metrics::EVENTS
        .with_label_values(&[POKE_SOURCE, outcome.label()])
        .inc();
    Ok(axum::Json(EventAnswer::of(outcome)?))
}

/// A notification from the service of provider account `account` of kind `kind`
/// (Databricks: a job notification its destination sends). Authenticated by the account's
/// own secret; 404 when the account takes no notifications.
#[utoipa::path(post, path = "/v1/events/{kind}/{account}", tag = "events", request_body = Value,
    params(("kind" = String, Path, description = "The account's kind (databricks)"), ("account" = String, Path, description = "The provider account")),
    security(()),
    responses((status = 200, body = EventAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn notification(
    State(s): State<ApiState>,
    Path((kind, account)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<EventAnswer>, ApiError> {
    let engine = &s.app.engine;
    let provider = engine
        .providers()
        .get(&account)
        .ok()
        .filter(|p| p.kind() == kind)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no {kind} provider account named {account:?} is configured"
            ))
        })?;
    let Some(webhook) = provider.webhook() else {
        return Err(ApiError::not_found(format!(
            "provider account {account:?} takes no notifications (its notification settings are not set)"
        )));
    };
    let authorization = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    if !webhook.authentic(authorization) {
        return Err(ApiError::unauthorized(format!(
            "the notification does not carry provider account {account:?}'s secret"
        )));
    }
    let reading: Result<Reading, String> = webhook.read(&body);
    let source = format!("{kind}:{account}");
    let outcome = engine.handle_event(&source, &[account], reading).await?;
    Ok(axum::Json(EventAnswer::of(outcome)?))
}
