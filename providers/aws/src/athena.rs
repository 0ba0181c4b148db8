//! Amazon Athena queries (JSON 1.1, `AmazonAthena.<Operation>`, SigV4 service `athena`), a kit
//! description.
//!
//! A job spec is the `StartQueryExecution` body: `{"QueryString": "...", "WorkGroup": "...",
//! "QueryExecutionContext": {...}, "ResultConfiguration": {...}, "ExecutionParameters":
//! [...]}`. tether sets `ClientRequestToken` (32 to 128 characters) to its key: Athena answers
//! a repeated start with the same token and request with the same query, so a lost answer is
//! resolved by sending the start again. No list names a query by its token, so tether also
//! ends the query text with a comment carrying the key (`-- tether:<key>`), and `find` reads
//! the workgroup's recent queries (`ListQueryExecutions`, ids only, 50 a page, each page read
//! with `BatchGetQueryExecution`) for the one whose text carries it.
//!
//! A coalesced sweep reads up to 50 queries a call with `BatchGetQueryExecution`.
//!
//! <https://docs.aws.amazon.com/athena/latest/APIReference/API_StartQueryExecution.html>,
//! `API_GetQueryExecution.html`, `API_BatchGetQueryExecution.html`,
//! `API_StopQueryExecution.html`.

use serde_json::{json, Value};
use tether_provider::{Handle, ProviderError, RemoteStatus};

use crate::kit::{
    answered, handle_field, text, About, Call, JobApi, Kit, Listing, Protocol, Start, SweepBy,
};

const PROVIDER: &str = "athena";
const TARGET: &str = "AmazonAthena";
/// Query ids per `BatchGetQueryExecution` call (the API's limit).
const BATCH_MAX: usize = 50;
/// The shortest `ClientRequestToken`.
const TOKEN_MIN: usize = 32;

/// The token of `key`: the key itself (tether's keys are 39 characters), a shorter one padded
/// to Athena's minimum.
fn token(key: &str) -> String {
    format!("{key:-<TOKEN_MIN$}")
}

/// The comment that ends the query text of `key`'s query.
fn tag(key: &str) -> String {
    format!("\n-- tether:{key}")
}

/// The Athena adapter.
pub type Athena = Kit<Queries>;

/// Athena queries, as the kit runs them.
#[derive(Debug, Default)]
pub struct Queries;

/// A query (from `GetQueryExecution` or `BatchGetQueryExecution`) as tether sees it, with
/// the state's reason (or the error's message) as the message.
fn query_status(query: &Value) -> RemoteStatus {
    let status = &query["Status"];
    let raw = status["State"].as_str().unwrap_or("").to_string();
    let message = text(&status["StateChangeReason"])
        .or_else(|| text(&status["AthenaError"]["ErrorMessage"]))
        .map(str::to_string);
    RemoteStatus::new(crate::state::athena_query(&raw), raw, message)
}

fn by_id(op: &'static str, handle: &Handle) -> Result<Call, ProviderError> {
    let id = handle_field(handle, "query_execution_id", PROVIDER)?;
    Ok(Call::rpc(op, json!({ "QueryExecutionId": id })))
}

impl JobApi for Queries {
    fn about(&self) -> About {
        // `ClientRequestToken` is the key: the same start answers the same query.
        About::new(
            PROVIDER,
            Protocol::Json11(TARGET),
            Start::Deduplicated,
            "query_execution_id",
        )
    }

    fn check(&self, spec: &Value) -> Result<(), String> {
        let query = spec.get("QueryString").and_then(Value::as_str);
        if !spec.is_object() || query.is_none_or(str::is_empty) {
            return Err(
                "the job spec must be a StartQueryExecution body holding QueryString".into(),
            );
        }
        if spec.get("ClientRequestToken").is_some() {
            return Err("ClientRequestToken must be absent: tether sets it to its key".into());
        }
        match spec.get("WorkGroup") {
            None | Some(Value::String(_)) => Ok(()),
            Some(other) => Err(format!("WorkGroup must be a workgroup's name, not {other}")),
        }
    }

    fn start(&self, spec: &Value, key: &str) -> Call {
        let mut body = spec.clone();
        body["ClientRequestToken"] = json!(token(key));
        let query = spec["QueryString"].as_str().unwrap_or_default();
        body["QueryString"] = json!(format!("{query}{}", tag(key)));
        Call::rpc("StartQueryExecution", body)
    }

    fn started(&self, _spec: &Value, _key: &str, answer: &Value) -> Result<Value, ProviderError> {
        let id = answered(PROVIDER, "StartQueryExecution", answer, "/QueryExecutionId")?;
        Ok(json!({ "query_execution_id": id }))
    }

    fn describe(&self, handle: &Handle) -> Result<Call, ProviderError> {
        by_id("GetQueryExecution", handle)
    }

    fn status(&self, _handle: &Handle, answer: &Value) -> Result<RemoteStatus, ProviderError> {
        Ok(query_status(&answer["QueryExecution"]))
    }

    fn stop(&self, handle: &Handle) -> Result<Call, ProviderError> {
        by_id("StopQueryExecution", handle)
    }

    /// The workgroup's recent query ids (`primary` when the spec names none).
    fn find(&self, spec: &Value, _key: &str) -> Option<Listing> {
        let mut body = json!({ "MaxResults": BATCH_MAX });
        if let Some(workgroup) = spec.get("WorkGroup") {
            body["WorkGroup"] = workgroup.clone();
        }
        Some(Listing {
            call: Call::rpc("ListQueryExecutions", body),
            items: "QueryExecutionIds",
            next: "NextToken",
        })
    }

    /// Each page of ids, read whole.
    fn find_reads(&self, ids: Vec<String>) -> Option<(Call, &'static str)> {
        let call = Call::rpc(
            "BatchGetQueryExecution",
            json!({ "QueryExecutionIds": ids }),
        );
        Some((call, "QueryExecutions"))
    }

    /// The query whose text ends with the key's comment.
    fn found(&self, _spec: &Value, key: &str, query: &Value) -> Option<(Value, Option<f64>)> {
        let text = query["Query"].as_str()?;
        text.ends_with(&tag(key)).then(|| {
            (
                json!({ "query_execution_id": query["QueryExecutionId"] }),
                crate::timestamp(&query["Status"]["SubmissionDateTime"]),
            )
        })
    }

    /// `BatchGetQueryExecution` for up to 50 queries a call; the ones it could not read come
    /// back in `UnprocessedQueryExecutionIds` and are read singly.
    fn sweep_by(&self) -> Option<SweepBy> {
        Some(SweepBy::Ids {
            parent: None,
            id: "query_execution_id",
            chunk: BATCH_MAX,
        })
    }

    fn describe_ids(&self, _parent: &str, ids: Vec<String>) -> Option<Call> {
        Some(Call::rpc(
            "BatchGetQueryExecution",
            json!({ "QueryExecutionIds": ids }),
        ))
    }

    fn described(&self, answer: &Value) -> Vec<(String, RemoteStatus)> {
        answer["QueryExecutions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|q| Some((q["QueryExecutionId"].as_str()?.to_string(), query_status(q))))
            .collect()
    }
}
