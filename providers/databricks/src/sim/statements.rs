//! The simulator's SQL Statement Execution API and query history: statements executed, read
//! and cancelled as `/api/2.0/sql/statements` does it, and listed by
//! `/api/2.0/sql/history/queries`.
//!
//! A warehouse exists if its id is 16 hexadecimal digits (as Databricks' are); a statement on
//! any other is answered 404 `RESOURCE_DOES_NOT_EXIST`. `wait_timeout` must be `0s` or 5 to
//! 50 seconds (the simulator answers at once either way). Statements are pending, run, then
//! end in `SUCCEEDED` (or the configured outcome). The history filters by warehouse and start
//! time (`filter_by.` in the query string, as the SDKs send it), newest first, and reports
//! each statement's tags and text, which is where tether looks for its key.

use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::lives::{Job, JobKind, Life, Store, Vocabulary};
use super::{bounded, error, gate, get_params, invalid, malformed, respond_after};
use super::{counted, Answer, Endpoint, Refusal, Shared};
use crate::statements::{
    ListQueriesResponse, QueryInfo, QueryTag, ServiceError, StatementResponse, StatementStatus,
    KEY_TAG,
};

/// The statements the simulator holds.
pub type Statements = Store<SimStatement>;

/// What the simulator keeps of a statement.
#[derive(Debug)]
pub struct SimStatement {
    pub warehouse_id: String,
    pub text: String,
    pub tags: Vec<QueryTag>,
}

impl JobKind for SimStatement {
    /// The statement states (`crate::state::STATEMENT_STATES`), and those the simulator's
    /// statements pass.
    const WORDS: Vocabulary = Vocabulary {
        states: crate::state::STATEMENT_STATES,
        pending: "PENDING",
        succeeded: "SUCCEEDED",
    };
}

impl Job<SimStatement> {
    fn answer(&self, id: &str, now: Instant) -> StatementResponse {
        let state = self.state(now);
        let error = (state == "FAILED").then(|| ServiceError {
            error_code: Some("BAD_REQUEST".into()),
            message: Some("[SIMULATED_ERROR] simulated failure of the statement".into()),
        });
        StatementResponse {
            statement_id: Some(id.to_string()),
            status: Some(StatementStatus {
                state: Some(state),
                error,
            }),
        }
    }

    /// The history's status (`QueryStatus`) for the state it reports.
    fn query_status(&self, now: Instant) -> &'static str {
        match self.state(now).as_str() {
            "PENDING" => "QUEUED",
            "RUNNING" => "RUNNING",
            "SUCCEEDED" | "CLOSED" => "FINISHED",
            "CANCELED" => "CANCELED",
            "FAILED" => "FAILED",
            _ => "STARTED",
        }
    }
}

/// Whether `id` looks like a SQL warehouse's id.
pub fn is_warehouse(id: &str) -> bool {
    id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit())
}

fn no_statement(id: &str) -> Refusal {
    error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("The statement {id} was not found."),
    )
    .into()
}

/// `POST /api/2.0/sql/statements`.
pub async fn execute(State(inner): State<Shared>, headers: HeaderMap, body: String) -> Answer {
    let after = gate(&inner, &headers, Endpoint::Submit).await?;
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return Err(malformed());
    };
    let Some(text) = body["statement"].as_str().filter(|s| !s.trim().is_empty()) else {
        return Err(invalid("statement is required"));
    };
    let Some(warehouse) = body["warehouse_id"].as_str() else {
        return Err(invalid("warehouse_id is required"));
    };
    match body.get("wait_timeout").map(|w| w.as_str()) {
        None => {}
        Some(Some(w)) if valid_wait(w) => {}
        Some(_) => return Err(invalid("wait_timeout must be 0s, or between 5s and 50s")),
    }
    if !matches!(
        body.get("on_wait_timeout").map(|w| w.as_str()),
        None | Some(Some("CONTINUE" | "CANCEL"))
    ) {
        return Err(invalid("on_wait_timeout must be CONTINUE or CANCEL"));
    }
    let tags: Vec<QueryTag> = match body.get("query_tags") {
        None => Vec::new(),
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|e| invalid(format!("query_tags: {e}")))?
        }
    };
    if !is_warehouse(warehouse) {
        return Err(error(
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            format!("Warehouse {warehouse} does not exist."),
        )
        .into());
    }
    let key = tags
        .iter()
        .find(|t| t.key == KEY_TAG)
        .and_then(|t| t.value.clone());
    let mut guard = counted(&inner, Endpoint::Submit);
    let id = guard
        .statements
        .new_id(|n| format!("01f0{n:04x}-0000-1000-8000-{:012x}", n * 104_729));
    let life = Life::new(&guard.config);
    let of = SimStatement {
        warehouse_id: warehouse.to_string(),
        text: text.to_string(),
        tags: tags.into_iter().take(20).collect(),
    };
    let statement = Job { life, of };
    let answer = statement.answer(&id, Instant::now());
    guard.statements.insert(id, statement);
    guard.count_submission(key);
    drop(guard);
    Ok(respond_after(after, Json(answer).into_response()))
}

fn valid_wait(w: &str) -> bool {
    w.strip_suffix('s')
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n == 0 || (5..=50).contains(&n))
}

/// `GET /api/2.0/sql/statements/{id}`.
pub async fn get_one(
    State(inner): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    gate(&inner, &headers, Endpoint::Get).await?;
    let mut guard = counted(&inner, Endpoint::Get);
    let now = Instant::now();
    let lifetimes = guard.harness.lifetimes;
    let Some(s) = guard.statements.readable(&id, &lifetimes, now) else {
        return Err(no_statement(&id));
    };
    s.life.last_seen = Some(now);
    Ok(Json(s.answer(&id, now)).into_response())
}

/// `POST /api/2.0/sql/statements/{id}/cancel`.
pub async fn cancel(
    State(inner): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let after = gate(&inner, &headers, Endpoint::Cancel).await?;
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let now = Instant::now();
    let lifetimes = guard.harness.lifetimes;
    let Some(s) = guard.statements.readable(&id, &lifetimes, now) else {
        return Err(no_statement(&id));
    };
    s.life.cancel(now);
    guard.harness.counters.cancelled();
    Ok(respond_after(after, Json(json!({})).into_response()))
}

#[derive(Deserialize)]
struct HistoryQuery {
    max_results: Option<usize>,
    page_token: Option<String>,
    #[serde(rename = "filter_by.warehouse_ids")]
    warehouse: Option<String>,
    #[serde(rename = "filter_by.query_start_time_range.start_time_ms")]
    since: Option<i64>,
    #[serde(rename = "filter_by.query_start_time_range.end_time_ms")]
    until: Option<i64>,
}

/// The longest time range a history request may filter by (30 days).
const MAX_RANGE_MS: i64 = 30 * 24 * 3600 * 1000;

/// A history request's filter: (position reached, since, until, warehouse), from the query or
/// from its page token (`SKIP:SINCE:UNTIL:WAREHOUSE`).
type Filter = (usize, Option<i64>, Option<i64>, Option<String>);

/// The filter `q` asks for, or why it cannot be used.
fn filter(q: HistoryQuery) -> Result<Filter, Refusal> {
    let Some(token) = q.page_token.as_deref() else {
        if let (Some(from), Some(to)) = (q.since, q.until) {
            if to - from > MAX_RANGE_MS {
                return Err(invalid("query_start_time_range must span at most 30 days"));
            }
        }
        return Ok((0, q.since, q.until, q.warehouse));
    };
    let mut parts = token.splitn(4, ':');
    let skip = parts.next().and_then(|s| s.parse::<usize>().ok());
    let since = parts.next().map(|s| s.parse::<i64>().ok());
    let until = parts.next().map(|s| s.parse::<i64>().ok());
    let warehouse = parts.next().map(str::to_string);
    match (skip, since, until) {
        (Some(skip), Some(since), Some(until)) => {
            Ok((skip, since, until, warehouse.filter(|w| !w.is_empty())))
        }
        _ => Err(invalid("Invalid page_token")),
    }
}

/// `GET /api/2.0/sql/history/queries`: newest first, filtered by warehouse and start time
/// range (at most 30 days); a page token stands for the filter and the position reached
/// (`SKIP:SINCE:UNTIL:WAREHOUSE`).
pub async fn history(State(inner): State<Shared>, headers: HeaderMap, uri: Uri) -> Answer {
    gate(&inner, &headers, Endpoint::List).await?;
    let q: HistoryQuery = get_params(&uri, "")?;
    let limit = bounded(q.max_results, 100, 1..=999, |n| {
        format!("max_results must be less than 1000, not {n}")
    })?;
    let (skip, since, until, warehouse) = filter(q)?;
    let mut guard = counted(&inner, Endpoint::List);
    let now = Instant::now();
    let lie = guard.config.lists_report_success;
    let lifetimes = guard.harness.lifetimes;
    let (res, has_next_page) = guard.statements.page(
        (&lifetimes, now),
        |s| {
            warehouse.as_deref().is_none_or(|w| s.of.warehouse_id == w)
                && since.is_none_or(|t| s.life.start_ms >= t)
                && until.is_none_or(|t| s.life.start_ms <= t)
        },
        (skip, limit),
        |id, s| {
            let info = QueryInfo {
                query_id: Some(id.to_string()),
                query_text: Some(s.of.text.clone()),
                query_tags: s.of.tags.clone(),
                query_start_time_ms: Some(s.life.start_ms),
            };
            let mut v = serde_json::to_value(info).expect("serialises");
            v["status"] = json!(if lie { "FINISHED" } else { s.query_status(now) });
            v["warehouse_id"] = json!(s.of.warehouse_id);
            v["endpoint_id"] = json!(s.of.warehouse_id);
            v
        },
    );
    let end = skip + res.len();
    let next_page_token = has_next_page.then(|| {
        format!(
            "{end}:{}:{}:{}",
            since.map_or(String::new(), |t| t.to_string()),
            until.map_or(String::new(), |t| t.to_string()),
            warehouse.unwrap_or_default()
        )
    });
    let page = json!({
        "res": res,
        "has_next_page": has_next_page,
        "next_page_token": next_page_token,
    });
    // The page has the shape tether reads.
    debug_assert!(serde_json::from_value::<ListQueriesResponse>(page.clone()).is_ok());
    Ok(Json(page).into_response())
}
