//! Apache Livy's batch API, as its REST documentation describes it: `POST /batches` (201, the
//! batch; a name already held by a session is refused with 400 `Duplicate session name`),
//! `GET /batches` (`from`, `size`; `{from, total, sessions}`), `GET /batches/{id}` (404
//! `Session '{id}' not found.`), `DELETE /batches/{id}` (the batch is killed and forgotten).
//! Errors are `{"msg": "..."}`; requests carry basic credentials (`tether` and the secret
//! [`super::Api::secret`] names).
//!
//! Reference: <https://livy.apache.org/docs/latest/rest-api.html>

use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use super::Outcome::{Done, Refused};
use super::{serve_change, serve_read, Api, Class, Job, Phase, Shared, Store};

/// Livy's error answer.
pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "msg": message }))).into_response()
}

pub(super) fn sample_spec(name: &str) -> Value {
    json!({
        "file": "local:/opt/jobs/etl.py",
        "args": ["--table", name],
        "conf": {"spark.app.name": name},
        "numExecutors": 2
    })
}

fn authorized(headers: &HeaderMap) -> bool {
    let (_, secret) = Api::Livy.secret();
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("tether:{secret}"))
    );
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(want.as_str())
}

pub(super) fn router(store: Shared) -> Router {
    Router::new()
        .route("/batches", get(list).post(create))
        .route("/batches/{id}", get(one).delete(delete))
        .with_state(store)
}

fn state(store: &Store, job: &Job, now: Instant) -> String {
    if let Some(raw) = &job.forced {
        return raw.clone();
    }
    match store.phase(job, now) {
        Phase::Pending => "starting",
        Phase::Running => "running",
        Phase::Succeeded => "success",
        Phase::Failed => "dead",
        Phase::Cancelled => "killed",
    }
    .to_string()
}

fn batch(store: &Store, job: &Job, now: Instant) -> Value {
    let state = state(store, job, now);
    let started = !matches!(state.as_str(), "not_started" | "starting");
    let mut log = vec!["stdout: ".to_string(), "\nstderr: ".to_string()];
    if state == "dead" || state == "error" {
        log.push(
            "Exception in thread \"main\" org.apache.spark.SparkException: simulated failure"
                .into(),
        );
    }
    json!({
        "id": job.id,
        "name": job.tag,
        "owner": "tether",
        "proxyUser": job.body.get("proxyUser"),
        "state": state,
        "appId": started.then(|| format!("application_1700000000000_{:04}", job.id)),
        "appInfo": {
            "driverLogUrl": null,
            "sparkUiUrl": started.then(|| format!("http://spark-history:18080/history/application_1700000000000_{:04}/", job.id)),
        },
        "log": log,
    })
}

async fn create(State(store): State<Shared>, headers: HeaderMap, body: String) -> Response {
    serve_change(&store, &headers, Class::Submit, authorized, |s| {
        let Ok(body) = serde_json::from_str::<Value>(&body) else {
            return Refused(error(
                StatusCode::BAD_REQUEST,
                "Rejected, Reason: invalid JSON in the request body",
            ));
        };
        if !body.get("file").is_some_and(Value::is_string) {
            return Refused(error(
                StatusCode::BAD_REQUEST,
                "Rejected, Reason: file is required",
            ));
        }
        let name = match body.get("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(n)) => Some(n.clone()),
            Some(_) => {
                return Refused(error(
                    StatusCode::BAD_REQUEST,
                    "Rejected, Reason: name must be a string",
                ))
            }
        };
        let now = Instant::now();
        if let Some(n) = &name {
            if s.jobs
                .values()
                .any(|j| s.holds(j, now) && j.tag.as_deref() == Some(n))
            {
                return Refused(error(
                    StatusCode::BAD_REQUEST,
                    &format!("Duplicate session name: {n}"),
                ));
            }
        }
        let id = s.create(name, 0, body);
        let answer = batch(s, &s.jobs[&id], Instant::now());
        Done((StatusCode::CREATED, Json(answer)).into_response())
    })
    .await
}

#[derive(Deserialize)]
struct Page {
    from: Option<usize>,
    size: Option<usize>,
}

async fn list(
    State(store): State<Shared>,
    headers: HeaderMap,
    q: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Response {
    serve_read(&store, &headers, authorized, |s| {
        let Ok(Query(q)) = q else {
            return error(StatusCode::BAD_REQUEST, "from and size must be numbers");
        };
        let now = Instant::now();
        let held: Vec<&Job> = s
            .jobs
            .values()
            .filter(|j| !j.hidden && s.readable(j, now))
            .collect();
        let from = q.from.unwrap_or(0);
        let size = q.size.unwrap_or(100);
        let sessions: Vec<Value> = held
            .iter()
            .skip(from)
            .take(size)
            .map(|j| {
                let mut b = batch(s, j, now);
                if s.lie {
                    b["state"] = json!("success");
                }
                b
            })
            .collect();
        Json(json!({ "from": from, "total": held.len(), "sessions": sessions })).into_response()
    })
    .await
}

fn not_found(id: &str) -> Response {
    error(StatusCode::NOT_FOUND, &format!("Session '{id}' not found."))
}

async fn one(State(store): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    serve_read(&store, &headers, authorized, |s| {
        let now = Instant::now();
        match s.lookup(&id, now) {
            Some(j) => Json(batch(s, j, now)).into_response(),
            None => not_found(&id),
        }
    })
    .await
}

async fn delete(
    State(store): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    serve_change(&store, &headers, Class::Cancel, authorized, |s| {
        let now = Instant::now();
        let Some(n) = s.lookup(&id, now).map(|j| j.id) else {
            return Refused(not_found(&id));
        };
        s.cancel(n, now);
        s.jobs.get_mut(&n).expect("checked").deleted = true;
        Done(Json(json!({ "msg": "deleted" })).into_response())
    })
    .await
}
