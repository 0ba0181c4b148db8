//! The Amazon Athena part of the simulator: `StartQueryExecution`, `GetQueryExecution`,
//! `BatchGetQueryExecution`, `ListQueryExecutions` and `StopQueryExecution` (JSON 1.1,
//! `AmazonAthena.<Operation>`), as botocore's `athena` model and the API reference describe
//! them: `ClientRequestToken` (32 to 128 characters) answers a repeated start with the first
//! query, and a start with the same token and another query string with
//! `InvalidRequestException` (`IDEMPOTENT_PARAMETER_MISMATCH`); an unknown query is an
//! `InvalidRequestException` "was not found"; a batch read takes 1 to 50 ids and reports the
//! ones it cannot read as unprocessed; the list names a workgroup's query ids, newest first,
//! 50 a page at most; stopping an ended query changes nothing.

use serde_json::{json, Value};

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::service::{Request, ServiceSim};
use super::{
    bad, list_page, new_job, page_answer, page_size, text, texts, Inner, OpResult, SimJob,
};
use crate::config::Service;

/// The JSON 1.1 target prefix.
pub(super) const TARGET: &str = "AmazonAthena";

/// The Athena part of the simulator.
pub(super) struct Queries;

impl ServiceSim for Queries {
    /// "Athena Query State Change": every state of a query.
    fn event_detail(&self, j: &SimJob) -> Option<Value> {
        Some(json!({"currentState": j.state(), "queryExecutionId": j.id,
            "statementType": "DML", "workgroupName": j.parent, "versionId": "0"}))
    }

    fn sample_spec(&self, name: &str) -> Value {
        json!({"QueryString": format!("INSERT INTO daily SELECT * FROM events -- {name}"),
            "WorkGroup": "primary", "QueryExecutionContext": {"Database": "analytics"}})
    }

    /// What a lying read says: succeeded.
    fn lie_success(&self, entry: &mut Value) {
        entry["Status"] = json!({"State": "SUCCEEDED"});
    }

    fn call(&self, inner: &mut Inner, request: &Request, input: &Value) -> OpResult {
        route(inner, request.target, input)
    }
}

/// A query as `GetQueryExecution` and `BatchGetQueryExecution` answer it.
fn query_json(j: &SimJob) -> Value {
    let mut status = json!({"State": j.state(), "SubmissionDateTime": j.created_at});
    match j.state() {
        "FAILED" => {
            status["StateChangeReason"] = json!("simulated query failure");
            status["AthenaError"] = json!({"ErrorCategory": 2, "ErrorType": 1301,
                "Retryable": false, "ErrorMessage": "simulated query failure"});
        }
        "CANCELLED" => status["StateChangeReason"] = json!("Query cancelled by user"),
        _ => {}
    }
    json!({"QueryExecutionId": j.id, "Query": j.arguments["QueryString"],
        "WorkGroup": j.parent, "StatementType": "DML", "Status": status})
}

/// One Athena request: the operation `target` with the JSON `input`.
fn route(inner: &mut Inner, target: &str, input: &Value) -> OpResult {
    match target.strip_prefix(TARGET).unwrap_or("") {
        ".StartQueryExecution" => start_query_execution(inner, input),
        ".GetQueryExecution" => {
            inner.stats.status_requests += 1;
            let id = text(input, "QueryExecutionId");
            let i = query(inner, &id).ok_or_else(|| not_found(&id))?;
            inner.jobs[i].last_seen = Some(std::time::Instant::now());
            Ok(json!({ "QueryExecution": query_json(&inner.jobs[i]) }))
        }
        ".BatchGetQueryExecution" => batch_get(inner, input),
        ".ListQueryExecutions" => list_query_executions(inner, input),
        ".StopQueryExecution" => {
            let id = text(input, "QueryExecutionId");
            let i = query(inner, &id).ok_or_else(|| not_found(&id))?;
            let j = &mut inner.jobs[i];
            if !j.finished() {
                j.cancel();
                inner.harness.counters.cancelled();
            }
            Ok(json!({}))
        }
        other => Err(bad(
            "UnknownOperationException",
            format!("unknown operation {TARGET}{other}"),
        )),
    }
}

fn query(inner: &Inner, id: &str) -> Option<usize> {
    inner
        .lookup(id)
        .filter(|&i| inner.jobs[i].service == Service::Athena)
}

/// `InvalidRequestException` with its `AthenaErrorCode`, as Athena answers it.
fn invalid(code: &str, message: String) -> Box<Response> {
    let body = json!({"__type": "InvalidRequestException", "AthenaErrorCode": code,
        "Message": message});
    let mut r = (StatusCode::BAD_REQUEST, Json(body)).into_response();
    r.headers_mut().insert(
        "x-amzn-errortype",
        HeaderValue::from_static("InvalidRequestException"),
    );
    Box::new(r)
}

fn not_found(id: &str) -> Box<Response> {
    invalid(
        "QUERY_EXECUTION_NOT_FOUND",
        format!("QueryExecution {id} was not found"),
    )
}

/// `StartQueryExecution`: the token deduplicates, its parameters compared.
fn start_query_execution(inner: &mut Inner, input: &Value) -> OpResult {
    let (query, token) = (
        text(input, "QueryString"),
        text(input, "ClientRequestToken"),
    );
    if query.is_empty() || query.len() > 262_144 {
        return Err(invalid(
            "INVALID_INPUT",
            "QueryString must hold 1 to 262144 bytes".into(),
        ));
    }
    if !(32..=128).contains(&token.len()) {
        return Err(invalid(
            "INVALID_INPUT",
            "1 validation error detected: clientRequestToken must be 32 to 128 characters".into(),
        ));
    }
    let workgroup = match text(input, "WorkGroup") {
        w if w.is_empty() => "primary".to_string(),
        w => w,
    };
    let dedup = (TARGET.to_string(), token.clone());
    if let Some(id) = inner.client_tokens.get(&dedup).cloned() {
        let i = inner.by_id[&id];
        if inner.jobs[i].arguments["QueryString"] != json!(query) {
            return Err(invalid(
                "IDEMPOTENT_PARAMETER_MISMATCH",
                "Idempotent parameters do not match".into(),
            ));
        }
        return Ok(json!({ "QueryExecutionId": id }));
    }
    let n = inner.jobs.len() + 1;
    let id = format!("{n:08x}-a7e1-4a5b-8c2d-{n:012x}");
    new_job(
        inner,
        Service::Athena,
        id.clone(),
        &workgroup,
        "",
        json!({ "QueryString": query }),
        &token,
    );
    inner.client_tokens.insert(dedup, id.clone());
    Ok(json!({ "QueryExecutionId": id }))
}

/// `BatchGetQueryExecution`: 1 to 50 ids; more than one counts as a list call, leaves out
/// hidden queries and lies with the lists.
fn batch_get(inner: &mut Inner, input: &Value) -> OpResult {
    let ids = texts(input, "QueryExecutionIds");
    let lie = inner
        .count_read(ids.len(), ("QueryExecutionIds", 50, "ids"))
        .map_err(|why| invalid("INVALID_INPUT", why))?;
    let many = ids.len() > 1;
    let (mut found, mut unprocessed) = (Vec::new(), Vec::new());
    let now = std::time::Instant::now();
    for id in ids {
        let Some(i) = query(inner, id) else {
            unprocessed.push(
                json!({"QueryExecutionId": id, "ErrorCode": "QUERY_EXECUTION_NOT_FOUND",
                "ErrorMessage": format!("QueryExecution {id} was not found")}),
            );
            continue;
        };
        inner.jobs[i].last_seen = Some(now);
        if many && inner.jobs[i].hidden {
            continue;
        }
        let mut q = query_json(&inner.jobs[i]);
        if lie {
            Queries.lie_success(&mut q);
        }
        found.push(q);
    }
    Ok(json!({"QueryExecutions": found, "UnprocessedQueryExecutionIds": unprocessed}))
}

/// `ListQueryExecutions`: a workgroup's query ids (`primary` when none is named), newest
/// first, `MaxResults` 0-50.
fn list_query_executions(inner: &mut Inner, input: &Value) -> OpResult {
    let workgroup = match text(input, "WorkGroup") {
        w if w.is_empty() => "primary".to_string(),
        w => w,
    };
    let size = match input["MaxResults"].as_u64() {
        None | Some(0) => 50,
        Some(_) => page_size(&input["MaxResults"], 50, 50, "MaxResults")?,
    };
    let (ids, next) = list_page(
        inner,
        Service::Athena,
        &workgroup,
        input["NextToken"].as_str(),
        size,
        |_| true,
        |j| json!(j.id),
    )?;
    page_answer("QueryExecutionIds", ids, "NextToken", next)
}
