//! dbt Cloud's job runs (Administrative API v2), as its documentation describes them:
//! `POST /api/v2/accounts/{account}/jobs/{job}/run/` (`cause` required; the run),
//! `GET .../runs/{id}/`, `POST .../runs/{id}/cancel/`, `GET .../runs/` (`job_definition_id`,
//! `order_by`, `limit` up to 100, `offset`, `include_related`). A run's `cause` is on its
//! `trigger`, which is `null` unless `include_related` asks for it. Answers are `{"status": {...}, "data": ...}`, a
//! run's `status` one of 1 Queued, 2 Starting, 3 Running, 10 Success, 20 Error, 30 Cancelled;
//! requests carry `Authorization: Token <token>` (or `Bearer`). The account is the example
//! description's (`12345`).
//!
//! Reference: <https://docs.getdbt.com/dbt-cloud/api-v2>

use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::Outcome::{Done, Refused};
use super::{serve_change, serve_read, Api, Class, Job, Phase, Shared, Store};

/// The account the example description names.
const ACCOUNT: &str = "12345";

/// dbt Cloud's answer envelope for an error.
pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({
            "status": {"code": status.as_u16(), "is_success": false, "user_message": message, "developer_message": ""},
            "data": null,
        })),
    )
        .into_response()
}

fn ok(data: Value) -> Response {
    Json(json!({
        "status": {"code": 200, "is_success": true, "user_message": "Success!", "developer_message": ""},
        "data": data,
    }))
    .into_response()
}

pub(super) fn sample_spec(name: &str) -> Value {
    json!({"job_id": 4242, "steps_override": [format!("dbt build --select tag:{name}")]})
}

fn authorized(headers: &HeaderMap) -> bool {
    let (_, token) = Api::DbtCloud.secret();
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    given == format!("Token {token}") || given == format!("Bearer {token}")
}

pub(super) fn router(store: Shared) -> Router {
    Router::new()
        .route("/api/v2/accounts/{account}/jobs/{job}/run/", post(trigger))
        .route("/api/v2/accounts/{account}/runs/", get(list))
        .route("/api/v2/accounts/{account}/runs/{id}/", get(one))
        .route("/api/v2/accounts/{account}/runs/{id}/cancel/", post(cancel))
        .with_state(store)
}

fn missing() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "The requested resource was not found.",
    )
}

fn status(store: &Store, job: &Job, now: Instant) -> (Value, &'static str) {
    if let Some(raw) = &job.forced {
        let v = raw.parse::<i64>().map_or_else(|_| json!(raw), |n| json!(n));
        return (v, "Unknown");
    }
    let (code, name) = match store.phase(job, now) {
        Phase::Pending => (1, "Queued"),
        Phase::Running => (3, "Running"),
        Phase::Succeeded => (10, "Success"),
        Phase::Failed => (20, "Error"),
        Phase::Cancelled => (30, "Cancelled"),
    };
    (json!(code), name)
}

/// A run as the API answers it. Its `cause` is on its trigger (`RunResponse` has no `cause`;
/// `RunTrigger` has), and the trigger is filled only when the request asked for it with
/// `include_related` holding `trigger` (else `null`): `openapi-v2.yaml` of
/// dbt-labs/dbt-cloud-openapi-spec, `RunResponse`, `RunTrigger`, List Runs `include_related`.
fn run(store: &Store, job: &Job, now: Instant, with_trigger: bool) -> Value {
    let (status, humanized) = status(store, job, now);
    let code = status.as_i64().unwrap_or(0);
    let trigger = with_trigger.then(|| {
        json!({"id": job.id, "cause": job.tag, "job_definition_id": job.job_definition_id,
               "git_branch": job.body.get("git_branch"), "cause_category": "api"})
    });
    json!({
        "id": job.id,
        "account_id": ACCOUNT.parse::<i64>().expect("digits"),
        "job_definition_id": job.job_definition_id,
        "trigger_id": job.id,
        "trigger": trigger,
        "status": status,
        "status_humanized": humanized,
        "status_message": (code == 20).then_some("Database Error in model orders (models/orders.sql): simulated failure"),
        "in_progress": matches!(code, 1..=3),
        "is_complete": matches!(code, 10 | 20 | 30),
        "is_success": code == 10,
        "is_error": code == 20,
        "is_cancelled": code == 30,
        "git_branch": job.body.get("git_branch"),
        "steps_override": job.body.get("steps_override"),
        "created_at_ms": job.created_ms,
        "href": format!("https://cloud.getdbt.com/deploy/{ACCOUNT}/projects/1/runs/{}/", job.id),
    })
}

async fn trigger(
    State(store): State<Shared>,
    headers: HeaderMap,
    Path((account, job)): Path<(String, String)>,
    body: String,
) -> Response {
    serve_change(&store, &headers, Class::Submit, authorized, |s| {
        let Some(job_id) = job
            .parse::<i64>()
            .ok()
            .filter(|j| *j > 0 && account == ACCOUNT)
        else {
            return Refused(missing());
        };
        let Ok(body) = serde_json::from_str::<Value>(&body) else {
            return Refused(error(
                StatusCode::BAD_REQUEST,
                "The request was invalid: malformed JSON.",
            ));
        };
        let Some(cause) = body
            .get("cause")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
        else {
            return Refused(error(
                StatusCode::BAD_REQUEST,
                "The request was invalid. Please double check the provided data and try again: cause is required.",
            ));
        };
        if body
            .get("steps_override")
            .is_some_and(|s| !s.as_array().is_some_and(|a| a.iter().all(Value::is_string)))
        {
            return Refused(error(
                StatusCode::BAD_REQUEST,
                "steps_override must be a list of commands.",
            ));
        }
        let id = s.create(Some(cause.to_string()), job_id, body.clone());
        // The trigger's answer is the run with its trigger.
        Done(ok(run(s, &s.jobs[&id], Instant::now(), true)))
    })
    .await
}

/// Whether a query asks for the runs' triggers: `include_related` holding `trigger`, as a
/// repeated parameter, a list (`["trigger"]`) or a comma-separated value.
fn includes_trigger(query: Option<&str>) -> bool {
    query.unwrap_or_default().split('&').any(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_encoding::percent_decode_str(v).decode_utf8_lossy();
        k == "include_related" && v.contains("trigger")
    })
}

async fn one(
    State(store): State<Shared>,
    headers: HeaderMap,
    Path((account, id)): Path<(String, String)>,
    uri: axum::http::Uri,
) -> Response {
    serve_read(&store, &headers, authorized, |s| {
        let with_trigger = includes_trigger(uri.query());
        let now = Instant::now();
        match s.lookup(&id, now).filter(|_| account == ACCOUNT) {
            Some(j) => ok(run(s, j, now, with_trigger)),
            None => missing(),
        }
    })
    .await
}

async fn cancel(
    State(store): State<Shared>,
    headers: HeaderMap,
    Path((account, id)): Path<(String, String)>,
) -> Response {
    serve_change(&store, &headers, Class::Cancel, authorized, |s| {
        let now = Instant::now();
        let Some(n) = s
            .lookup(&id, now)
            .filter(|_| account == ACCOUNT)
            .map(|j| j.id)
        else {
            return Refused(missing());
        };
        s.cancel(n, now);
        Done(ok(run(s, &s.jobs[&n], now, false)))
    })
    .await
}

#[derive(Deserialize)]
struct ListQuery {
    job_definition_id: Option<i64>,
    order_by: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
    // `include_related` is read from the raw query (`includes_trigger`): it may repeat.
}

async fn list(
    State(store): State<Shared>,
    headers: HeaderMap,
    Path(account): Path<String>,
    uri: axum::http::Uri,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let with_trigger = includes_trigger(uri.query());
    serve_read(&store, &headers, authorized, |s| {
        list_runs(s, &account, with_trigger, q)
    })
    .await
}

/// The runs `GET .../runs/` lists, in the API's envelope.
fn list_runs(
    s: &Store,
    account: &str,
    with_trigger: bool,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if account != ACCOUNT {
        return missing();
    }
    let Ok(Query(q)) = q else {
        return error(
            StatusCode::BAD_REQUEST,
            "The request was invalid: bad query parameters.",
        );
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=100).contains(&limit) {
        return error(StatusCode::BAD_REQUEST, "limit must be between 1 and 100.");
    }
    let newest_first = match q.order_by.as_deref() {
        None | Some("id") => false,
        Some("-id") => true,
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("Invalid order_by: {other}"),
            )
        }
    };
    let now = Instant::now();
    let mut runs: Vec<&Job> = s
        .jobs
        .values()
        .filter(|j| {
            !j.hidden
                && s.readable(j, now)
                && q.job_definition_id.is_none_or(|d| d == j.job_definition_id)
        })
        .collect();
    if newest_first {
        runs.reverse();
    }
    let total = runs.len();
    let data: Vec<Value> = runs
        .into_iter()
        .skip(q.offset.unwrap_or(0))
        .take(limit)
        .map(|j| {
            let mut r = run(s, j, now, with_trigger);
            if s.lie {
                r["status"] = json!(10);
            }
            r
        })
        .collect();
    Json(json!({
        "status": {"code": 200, "is_success": true, "user_message": "Success!", "developer_message": ""},
        "data": data,
        "extra": {"filters": {"job_definition_id": q.job_definition_id}, "order_by": q.order_by,
                  "pagination": {"count": data.len(), "total_count": total}},
    }))
    .into_response()
}
