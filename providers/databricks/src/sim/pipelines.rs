//! The simulator's Pipelines API: updates started, read, listed and stopped as
//! `/api/2.0/pipelines/...` does it.
//!
//! A pipeline exists if its id is a UUID (the simulator learns pipelines as they are named);
//! any other id is answered 404 `RESOURCE_DOES_NOT_EXIST`. A pipeline runs one update at a
//! time: starting another while one is active is answered 409 `RESOURCE_CONFLICT`. Updates
//! wait for resources, run, then end in `COMPLETED` (or the configured outcome); `stop`
//! cancels the active update. A failed update leaves an `ERROR` event in the pipeline's event
//! log. tether's key is read from the submission's `User-Agent` only to count updates per
//! key (the API has no place for it).

use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::lives::{Job, JobKind, Life, Store, Vocabulary};
use super::{bounded, error, gate, get_params, invalid, malformed, page_token, respond_after};
use super::{counted, Answer, Endpoint, Refusal, Shared};
use crate::pipelines::{GetUpdateResponse, ListUpdatesResponse, UpdateInfo};

/// The updates the simulator holds.
pub type Updates = Store<SimUpdate>;

/// What the simulator keeps of an update.
#[derive(Debug)]
pub struct SimUpdate {
    pub pipeline_id: String,
    /// The request's body (its selection, its cause), which the record keeps.
    pub request: Value,
}

impl JobKind for SimUpdate {
    /// The update states (`crate::state::UPDATE_STATES`), and those the simulator's updates
    /// pass.
    const WORDS: Vocabulary = Vocabulary {
        states: crate::state::UPDATE_STATES,
        pending: "WAITING_FOR_RESOURCES",
        succeeded: "COMPLETED",
    };
}

impl Job<SimUpdate> {
    fn info(&self, id: &str, now: Instant) -> UpdateInfo {
        let request = &self.of.request;
        UpdateInfo {
            update_id: Some(id.to_string()),
            pipeline_id: Some(self.of.pipeline_id.clone()),
            state: Some(self.state(now)),
            creation_time: Some(self.life.start_ms),
            cause: Some(
                request
                    .get("cause")
                    .and_then(Value::as_str)
                    .unwrap_or("API_CALL")
                    .to_string(),
            ),
            full_refresh: Some(request["full_refresh"].as_bool().unwrap_or(false)),
            refresh_selection: tables(&request["refresh_selection"]),
            full_refresh_selection: tables(&request["full_refresh_selection"]),
            validate_only: Some(request["validate_only"].as_bool().unwrap_or(false)),
        }
    }
}

fn tables(v: &Value) -> Option<Vec<String>> {
    v.as_array().map(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    })
}

/// Whether `id` looks like a pipeline's id (a UUID).
pub fn is_pipeline(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A pipeline id for a name: the same name, the same pipeline.
pub fn pipeline_for(name: &str) -> String {
    // FNV-1a, twice with different seeds: 128 bits from the name.
    let hash = |seed: u64| {
        name.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let (a, b) = (hash(0xcbf2_9ce4_8422_2325), hash(0x8422_2325_cbf2_9ce4));
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

/// A 404 unless `id` is a pipeline's.
fn known_pipeline(id: &str) -> Result<(), Refusal> {
    if is_pipeline(id) {
        return Ok(());
    }
    Err(error(
        StatusCode::NOT_FOUND,
        "RESOURCE_DOES_NOT_EXIST",
        format!("The specified pipeline {id} was not found."),
    )
    .into())
}

fn no_update(pipeline: &str, update: &str) -> Refusal {
    error(
        StatusCode::NOT_FOUND,
        "RESOURCE_DOES_NOT_EXIST",
        format!("Update {update} of pipeline {pipeline} does not exist."),
    )
    .into()
}

/// `POST /api/2.0/pipelines/{id}/updates`.
pub async fn start(
    State(inner): State<Shared>,
    Path(pipeline_id): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Answer {
    let after = gate(&inner, &headers, Endpoint::Submit).await?;
    let body: Value = if body.trim().is_empty() {
        json!({})
    } else {
        match serde_json::from_str(&body) {
            Ok(v @ Value::Object(_)) => v,
            _ => return Err(malformed()),
        }
    };
    known_pipeline(&pipeline_id)?;
    for flag in ["full_refresh", "validate_only"] {
        if body.get(flag).is_some_and(|v| !v.is_boolean()) {
            return Err(invalid(format!(
                "Invalid value for {flag}: expected a boolean"
            )));
        }
    }
    let mut guard = counted(&inner, Endpoint::Submit);
    let now = Instant::now();
    let active = guard
        .updates
        .newest_first(|u| u.of.pipeline_id == pipeline_id && !u.life.ended(now))
        .next();
    if let Some((active, _)) = active {
        return Err(error(
            StatusCode::CONFLICT,
            "RESOURCE_CONFLICT",
            format!("Pipeline {pipeline_id} already has an active update {active}: stop it or wait for it to end before starting another."),
        )
        .into());
    }
    let id = guard
        .updates
        .new_id(|n| format!("{n:08x}-0000-4000-8000-{:012x}", n * 7919));
    let key = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split(' ').find_map(|p| p.strip_prefix("tether-key/")))
        .map(str::to_string);
    let life = Life::new(&guard.config);
    let of = SimUpdate {
        pipeline_id,
        request: body,
    };
    guard.updates.insert(id.clone(), Job { life, of });
    guard.count_submission(key);
    drop(guard);
    Ok(respond_after(
        after,
        Json(json!({ "update_id": id })).into_response(),
    ))
}

/// `GET /api/2.0/pipelines/{id}/updates/{update_id}`.
pub async fn get_one(
    State(inner): State<Shared>,
    Path((pipeline, update)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    gate(&inner, &headers, Endpoint::Get).await?;
    let mut guard = counted(&inner, Endpoint::Get);
    let now = Instant::now();
    let lifetimes = guard.harness.lifetimes;
    let found = guard
        .updates
        .readable(&update, &lifetimes, now)
        .filter(|u| u.of.pipeline_id == pipeline);
    let Some(u) = found else {
        known_pipeline(&pipeline)?;
        return Err(no_update(&pipeline, &update));
    };
    u.life.last_seen = Some(now);
    let update = Some(u.info(&update, now));
    Ok(Json(GetUpdateResponse { update }).into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    max_results: Option<usize>,
    page_token: Option<String>,
}

/// `GET /api/2.0/pipelines/{id}/updates`: newest first; the page token is the position
/// reached.
pub async fn list(
    State(inner): State<Shared>,
    Path(pipeline): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Answer {
    gate(&inner, &headers, Endpoint::List).await?;
    known_pipeline(&pipeline)?;
    let q: ListQuery = get_params(&uri, "")?;
    let limit = bounded(q.max_results, 25, 1..=100, |n| {
        format!("max_results must be between 1 and 100, not {n}")
    })?;
    let skip = page_token(q.page_token.as_deref())?.unwrap_or(0);
    let mut guard = counted(&inner, Endpoint::List);
    let now = Instant::now();
    let lie = guard.config.lists_report_success;
    let lifetimes = guard.harness.lifetimes;
    let (updates, more) = guard.updates.page(
        (&lifetimes, now),
        |u| u.of.pipeline_id == pipeline,
        (skip, limit),
        |id, u| {
            let mut info = u.info(id, now);
            if lie {
                info.state = Some("COMPLETED".into());
            }
            info
        },
    );
    let next_page_token = more.then(|| (skip + updates.len()).to_string());
    let page = ListUpdatesResponse {
        updates,
        next_page_token,
    };
    Ok(Json(page).into_response())
}

/// `POST /api/2.0/pipelines/{id}/stop`: cancels the active update, if any.
pub async fn stop(
    State(inner): State<Shared>,
    Path(pipeline): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let after = gate(&inner, &headers, Endpoint::Cancel).await?;
    known_pipeline(&pipeline)?;
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let now = Instant::now();
    for u in guard.updates.values_mut() {
        if u.of.pipeline_id == pipeline {
            u.life.cancel(now);
        }
    }
    guard.harness.counters.cancelled();
    Ok(respond_after(after, Json(json!({})).into_response()))
}

/// `GET /api/2.0/pipelines/{id}/events`: an `ERROR` event for each failed update, newest
/// first (the `filter` is taken as `level='ERROR'`, the only one tether sends).
pub async fn events(
    State(inner): State<Shared>,
    Path(pipeline): Path<String>,
    headers: HeaderMap,
) -> Answer {
    gate(&inner, &headers, Endpoint::List).await?;
    known_pipeline(&pipeline)?;
    let guard = inner.lock().expect("simulator mutex poisoned");
    let now = Instant::now();
    let failed = |u: &Job<SimUpdate>| u.of.pipeline_id == pipeline && u.state(now) == "FAILED";
    let events: Vec<Value> = guard
        .updates
        .newest_first(failed)
        .map(|(id, _)| {
            json!({
                "id": format!("event-{id}"),
                "event_type": "update_progress",
                "level": "ERROR",
                "message": format!("Update {} has failed. Simulated failure of table sim_table.", &id[..8]),
                "origin": { "pipeline_id": pipeline, "update_id": id },
                "error": { "fatal": true, "exceptions": [{"class_name": "SimulatedError", "message": "simulated failure"}] },
            })
        })
        .collect();
    Ok(Json(json!({ "events": events })).into_response())
}
