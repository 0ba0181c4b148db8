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

use std::collections::BTreeMap;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{error, gate, get_params, malformed, respond_after, Endpoint, Life, Phase, Shared};
use crate::pipelines::{GetUpdateResponse, ListUpdatesResponse, UpdateInfo};

/// The documented update states (databricks-sdk's `UpdateInfoState`).
pub const STATES: &[&str] = &[
    "QUEUED",
    "CREATED",
    "WAITING_FOR_RESOURCES",
    "INITIALIZING",
    "RESETTING",
    "SETTING_UP_TABLES",
    "RUNNING",
    "STOPPING",
    "COMPLETED",
    "FAILED",
    "CANCELED",
];

/// The updates the simulator holds.
#[derive(Debug, Default)]
pub struct Updates {
    /// By update id.
    pub by_id: BTreeMap<String, SimUpdate>,
    /// Update ids in creation order.
    pub order: Vec<String>,
    next: u64,
}

/// One update.
#[derive(Debug)]
pub struct SimUpdate {
    pub pipeline_id: String,
    pub life: Life,
    /// The request's body (its selection, its cause), which the record keeps.
    pub request: Value,
}

impl SimUpdate {
    /// The state it reports now.
    pub fn state(&self, now: Instant) -> String {
        if let Some(raw) = &self.life.forced {
            return raw.clone();
        }
        match self.life.phase(now) {
            Phase::Pending => "WAITING_FOR_RESOURCES".into(),
            Phase::Running => "RUNNING".into(),
            Phase::Cancelled => "CANCELED".into(),
            Phase::Ended => outcome(&self.life.outcome),
        }
    }

    fn info(&self, id: &str, now: Instant) -> UpdateInfo {
        UpdateInfo {
            update_id: Some(id.to_string()),
            pipeline_id: Some(self.pipeline_id.clone()),
            state: Some(self.state(now)),
            creation_time: Some(self.life.start_ms),
            cause: Some(
                self.request
                    .get("cause")
                    .and_then(Value::as_str)
                    .unwrap_or("API_CALL")
                    .to_string(),
            ),
            full_refresh: Some(self.request["full_refresh"].as_bool().unwrap_or(false)),
            refresh_selection: tables(&self.request["refresh_selection"]),
            full_refresh_selection: tables(&self.request["full_refresh_selection"]),
            validate_only: Some(self.request["validate_only"].as_bool().unwrap_or(false)),
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

/// The update state a run outcome (`SUCCESS`, `FAILED`, a state name) ends an update in.
pub fn outcome(result: &str) -> String {
    match result {
        "SUCCESS" => "COMPLETED".into(),
        s if STATES.contains(&s) => s.into(),
        _ => "FAILED".into(),
    }
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

fn no_pipeline(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "RESOURCE_DOES_NOT_EXIST",
        format!("The specified pipeline {id} was not found."),
    )
}

fn no_update(pipeline: &str, update: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "RESOURCE_DOES_NOT_EXIST",
        format!("Update {update} of pipeline {pipeline} does not exist."),
    )
}

/// `POST /api/2.0/pipelines/{id}/updates`.
pub async fn start(
    State(inner): State<Shared>,
    Path(pipeline): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let after = match gate(&inner, &headers, Endpoint::Submit).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let body: Value = if body.trim().is_empty() {
        json!({})
    } else {
        match serde_json::from_str(&body) {
            Ok(v @ Value::Object(_)) => v,
            _ => return malformed(),
        }
    };
    if !is_pipeline(&pipeline) {
        return no_pipeline(&pipeline);
    }
    for flag in ["full_refresh", "validate_only"] {
        if body.get(flag).is_some_and(|v| !v.is_boolean()) {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_PARAMETER_VALUE",
                format!("Invalid value for {flag}: expected a boolean"),
            );
        }
    }
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    guard.stats.submit_requests += 1;
    let now = Instant::now();
    let active = guard.updates.order.iter().rev().find(|id| {
        guard
            .updates
            .by_id
            .get(*id)
            .is_some_and(|u| u.pipeline_id == pipeline && !u.life.ended(now))
    });
    if let Some(active) = active {
        return error(
            StatusCode::CONFLICT,
            "RESOURCE_CONFLICT",
            format!("Pipeline {pipeline} already has an active update {active}: stop it or wait for it to end before starting another."),
        );
    }
    guard.updates.next += 1;
    let n = guard.updates.next;
    let id = format!("{n:08x}-0000-4000-8000-{:012x}", n * 7919);
    let key = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split(' ').find_map(|p| p.strip_prefix("tether-key/")))
        .map(str::to_string);
    let life = Life::new(&guard.config);
    guard.updates.by_id.insert(
        id.clone(),
        SimUpdate {
            pipeline_id: pipeline,
            life,
            request: body,
        },
    );
    guard.updates.order.push(id.clone());
    guard.count_submission(key);
    drop(guard);
    respond_after(after, Json(json!({ "update_id": id })).into_response())
}

/// `GET /api/2.0/pipelines/{id}/updates/{update_id}`.
pub async fn get_one(
    State(inner): State<Shared>,
    Path((pipeline, update)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = gate(&inner, &headers, Endpoint::Get).await {
        return response;
    }
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    guard.stats.get_requests += 1;
    let now = Instant::now();
    let lifetimes = guard.harness.lifetimes;
    match guard.updates.by_id.get_mut(&update) {
        Some(u) if u.pipeline_id == pipeline && u.life.readable(&lifetimes, now) => {
            u.life.last_seen = Some(now);
            Json(GetUpdateResponse {
                update: Some(u.info(&update, now)),
            })
            .into_response()
        }
        _ if !is_pipeline(&pipeline) => no_pipeline(&pipeline),
        _ => no_update(&pipeline, &update),
    }
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
) -> Response {
    if let Err(response) = gate(&inner, &headers, Endpoint::List).await {
        return response;
    }
    if !is_pipeline(&pipeline) {
        return no_pipeline(&pipeline);
    }
    let q: ListQuery = match get_params(&uri, "") {
        Ok(q) => q,
        Err(response) => return *response,
    };
    let limit = match q.max_results {
        None => 25,
        Some(n @ 1..=100) => n,
        Some(n) => {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_PARAMETER_VALUE",
                format!("max_results must be between 1 and 100, not {n}"),
            )
        }
    };
    let skip = match q.page_token.as_deref().map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_PARAMETER_VALUE",
                "Invalid page_token",
            )
        }
    };
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    guard.stats.list_requests += 1;
    let now = Instant::now();
    let lie = guard.config.lists_report_success;
    let lifetimes = guard.harness.lifetimes;
    let ids: Vec<String> = guard
        .updates
        .order
        .iter()
        .rev()
        .filter(|id| {
            guard.updates.by_id.get(*id).is_some_and(|u| {
                u.pipeline_id == pipeline && !u.life.hidden && u.life.readable(&lifetimes, now)
            })
        })
        .cloned()
        .collect();
    let page: Vec<UpdateInfo> = ids
        .iter()
        .skip(skip)
        .take(limit)
        .map(|id| {
            let u = guard.updates.by_id.get_mut(id).expect("listed");
            u.life.last_seen = Some(now);
            let mut info = u.info(id, now);
            if lie {
                info.state = Some("COMPLETED".into());
            }
            info
        })
        .collect();
    let next_page_token = (skip + page.len() < ids.len()).then(|| (skip + page.len()).to_string());
    Json(ListUpdatesResponse {
        updates: page,
        next_page_token,
    })
    .into_response()
}

/// `POST /api/2.0/pipelines/{id}/stop`: cancels the active update, if any.
pub async fn stop(
    State(inner): State<Shared>,
    Path(pipeline): Path<String>,
    headers: HeaderMap,
) -> Response {
    let after = match gate(&inner, &headers, Endpoint::Cancel).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    if !is_pipeline(&pipeline) {
        return no_pipeline(&pipeline);
    }
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let now = Instant::now();
    for u in guard.updates.by_id.values_mut() {
        if u.pipeline_id == pipeline {
            u.life.cancel(now);
        }
    }
    guard.harness.counters.cancelled();
    respond_after(after, Json(json!({})).into_response())
}

/// `GET /api/2.0/pipelines/{id}/events`: an `ERROR` event for each failed update, newest
/// first (the `filter` is taken as `level='ERROR'`, the only one tether sends).
pub async fn events(
    State(inner): State<Shared>,
    Path(pipeline): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = gate(&inner, &headers, Endpoint::List).await {
        return response;
    }
    if !is_pipeline(&pipeline) {
        return no_pipeline(&pipeline);
    }
    let guard = inner.lock().expect("simulator mutex poisoned");
    let now = Instant::now();
    let events: Vec<Value> = guard
        .updates
        .order
        .iter()
        .rev()
        .filter_map(|id| {
            let u = guard.updates.by_id.get(id)?;
            (u.pipeline_id == pipeline && u.state(now) == "FAILED").then(|| {
                json!({
                    "id": format!("event-{id}"),
                    "event_type": "update_progress",
                    "level": "ERROR",
                    "message": format!("Update {} has failed. Simulated failure of table sim_table.", &id[..8]),
                    "origin": { "pipeline_id": pipeline, "update_id": id },
                    "error": { "fatal": true, "exceptions": [{"class_name": "SimulatedError", "message": "simulated failure"}] },
                })
            })
        })
        .collect();
    Json(json!({ "events": events })).into_response()
}
