//! The `databricks-sql` kind: a SQL statement on a SQL warehouse, through the Statement
//! Execution API.
//!
//! - submit: `POST /api/2.0/sql/statements` with `wait_timeout = "0s"` and
//!   `on_wait_timeout = "CONTINUE"` (the call answers at once; the statement runs on); the
//!   handle is `{statement_id, warehouse_id}`;
//! - status: `GET /api/2.0/sql/statements/{id}`, the message from `status.error`;
//! - cancel: `POST /api/2.0/sql/statements/{id}/cancel`;
//! - find: a statement has no idempotency token, so tether tags it twice with its key: a
//!   query tag ([`KEY_TAG`]) and a leading SQL comment (`/* tether-key: KEY */`, for
//!   workspaces whose history lacks tags). A lost answer is reconciled by reading the query
//!   history (`GET /api/2.0/sql/history/queries`) of the warehouse from the intent until now
//!   for a statement so tagged, before anything is submitted again: bounded by time, every
//!   page of it read (never a row count), in ranges of at most the API's 30 days.
//!
//! What this kind can and cannot guarantee: the history lags by a time Databricks does not
//! document, and statements carry no idempotency key. A lost answer is looked for twice, the
//! second time `not_found_grace` (two minutes) after the takeover; a statement the history
//! shows only later than that is submitted a second time, and tether cannot see that
//! duplicate. A history too large to read to its end is an outcome tether cannot tell, never
//! "not found".
//!
//! Reference: <https://docs.databricks.com/api/workspace/statementexecution>

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tether_provider::http::Idempotency;
use tether_provider::paging::{walk, Page};
use tether_provider::{
    CommonSettings, Handle, Provider, ProviderError, RemoteStatus, Result, SendGate,
};

use crate::client::{answered_id, is_id, with_page_token, Call, Client};
use crate::{spec, state, DatabricksConfig, CLOCK_SKEW_MS};

/// The kind, as in config and errors.
pub const KIND: &str = "databricks-sql";

/// The query tag that carries tether's key.
pub const KEY_TAG: &str = "tether_key";

/// The statement's leading comment that carries tether's key.
pub fn key_comment(key: &str) -> String {
    format!("/* tether-key: {key} */")
}

/// Queries asked for per page of the history (the API takes fewer than 1000).
const HISTORY_PAGE: usize = 999;

/// The longest time range one history request may filter by (the API's 30 days): a longer
/// search is made of several.
const HISTORY_RANGE_MS: i64 = 30 * 24 * 3600 * 1000;

/// The most pages `find` reads of one time range before it says it cannot tell (about a
/// million queries): never "not found" for a search it did not finish.
const HISTORY_MAX_PAGES: u64 = 1000;

/// The most query tags a statement keeps (more are cut to 20): tether's takes one.
const MAX_USER_TAGS: usize = 19;

/// The fields of the request body a spec may set (databricks-sdk's `execute_statement`),
/// less `wait_timeout` and `on_wait_timeout`, which tether sets.
const BODY_FIELDS: &[&str] = &[
    "byte_limit",
    "catalog",
    "disposition",
    "format",
    "parameters",
    "query_tags",
    "row_limit",
    "schema",
    "statement",
    "warehouse_id",
];

/// A statement, as `POST /sql/statements` and `GET /sql/statements/{id}` return it (only the
/// fields tether reads).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatementResponse {
    /// The statement's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_id: Option<String>,
    /// How it stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatementStatus>,
}

/// `status` of a statement.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatementStatus {
    /// `PENDING`, `RUNNING`, `SUCCEEDED`, `FAILED`, `CANCELED`, `CLOSED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ServiceError>,
}

/// `status.error`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServiceError {
    /// E.g. `BAD_REQUEST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A query of the history (only the fields tether reads).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QueryInfo {
    /// The query's id: the statement's id for a statement run through the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_id: Option<String>,
    /// Its text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_text: Option<String>,
    /// Its tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query_tags: Vec<QueryTag>,
    /// When it started, in ms since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_start_time_ms: Option<i64>,
}

/// A query tag.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QueryTag {
    /// Its key.
    pub key: String,
    /// Its value, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A page of the query history, newest first.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ListQueriesResponse {
    /// The queries.
    #[serde(default)]
    pub res: Vec<QueryInfo>,
    /// Whether more pages follow.
    #[serde(default)]
    pub has_next_page: bool,
    /// The next page's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// The `databricks-sql` adapter.
#[derive(Debug)]
pub struct DatabricksSql {
    client: Client,
    config: DatabricksConfig,
}

impl DatabricksSql {
    /// The statements tagged with `key` that the query history holds for `warehouse` started
    /// between `from` and `to` (ms, both included), newest first: every page of the range,
    /// or an error if there are more than [`HISTORY_MAX_PAGES`] (then nobody can tell whether
    /// the statement ran, and the engine says so rather than submit again).
    /// <https://docs.databricks.com/api/workspace/queryhistory/list>
    async fn history_between(
        &self,
        warehouse: &str,
        key: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<Handle>, ProviderError> {
        let fetch = |token: Option<String>| async move {
            let mut q = vec![("max_results", HISTORY_PAGE.to_string())];
            // A page token stands for the whole filter.
            if token.is_none() {
                q.push(("filter_by.warehouse_ids", warehouse.to_string()));
                q.push((
                    "filter_by.query_start_time_range.start_time_ms",
                    from.to_string(),
                ));
                q.push((
                    "filter_by.query_start_time_range.end_time_ms",
                    to.to_string(),
                ));
            }
            let q = with_page_token(q, token);
            let page: ListQueriesResponse =
                self.client.get("/api/2.0/sql/history/queries", &q).await?;
            Ok(Page::new(
                page.res,
                page.next_page_token.filter(|_| page.has_next_page),
            ))
        };
        let mut found = Vec::new();
        let walked = walk(HISTORY_MAX_PAGES, fetch, |q| {
            if tagged_with(&q, key) {
                if let Some(id) = q.query_id.clone() {
                    found.push(Handle::new(
                        json!({ "statement_id": id, "warehouse_id": warehouse }),
                    ));
                }
            }
            true
        })
        .await?;
        if walked.complete {
            return Ok(found);
        }
        Err(ProviderError::transient(
            KIND,
            format!(
                "the query history of warehouse {warehouse} holds more than {} queries started \
                 between {from} and {to} (ms): tether cannot tell whether the statement ran; \
                 look for the tag {KEY_TAG}={key} by hand",
                HISTORY_MAX_PAGES * HISTORY_PAGE as u64
            ),
        ))
    }

    /// An adapter for the configured workspace.
    pub fn new(config: DatabricksConfig) -> Result<Self, ProviderError> {
        let client = Client::for_config(&config)?;
        Ok(Self { client, config })
    }
}

fn statement_id(handle: &Handle) -> Result<String, ProviderError> {
    handle
        .get_str("statement_id")
        .filter(|id| is_id(id))
        .ok_or_else(|| {
            ProviderError::permanent(KIND, format!("handle {handle} has no statement_id"))
        })
}

/// Whether a query of the history is the statement tether submitted with `key`.
fn tagged_with(query: &QueryInfo, key: &str) -> bool {
    query
        .query_tags
        .iter()
        .any(|t| t.key == KEY_TAG && t.value.as_deref() == Some(key))
        || query
            .query_text
            .as_deref()
            .is_some_and(|text| text.starts_with(&key_comment(key)))
}

/// Why `spec` is not a statement's spec, if it is not.
fn check(spec: &Value) -> Result<(), String> {
    let obj = spec::object(spec, "statement, warehouse_id and options")?;
    for field in ["wait_timeout", "on_wait_timeout"] {
        if obj.contains_key(field) {
            return Err(format!(
                "the job spec must not set {field}: tether runs the statement asynchronously (wait_timeout 0s, on_wait_timeout CONTINUE)"
            ));
        }
    }
    if let Some(unknown) = spec::unknown_fields(obj, |k| BODY_FIELDS.contains(&k)) {
        return Err(format!(
            "unknown field(s) {unknown}: a statement takes {}",
            BODY_FIELDS.join(", ")
        ));
    }
    match obj.get("statement") {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        Some(_) => return Err("statement must be SQL text".into()),
        None => return Err("the job spec needs statement (the SQL to run)".into()),
    }
    spec::id_field(obj, "warehouse_id", "a SQL warehouse's id")?;
    match obj.get("query_tags") {
        None => Ok(()),
        Some(Value::Array(tags)) if tags.len() > MAX_USER_TAGS => Err(format!(
            "query_tags holds {} tags: a statement keeps 20, and tether adds one",
            tags.len()
        )),
        Some(Value::Array(tags)) if tags.iter().any(|t| t.get("key") == Some(&json!(KEY_TAG))) => {
            Err(format!(
                "query_tags must not use the key {KEY_TAG:?}: tether sets it"
            ))
        }
        Some(Value::Array(_)) => Ok(()),
        Some(_) => Err("query_tags must be a list of {key, value}".into()),
    }
}

#[async_trait]
impl Provider for DatabricksSql {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn validate_spec(&self, spec: &Value) -> Result<(), ProviderError> {
        check(spec).map_err(|why| ProviderError::invalid_spec(KIND, why))
    }

    /// `POST /api/2.0/sql/statements`:
    /// <https://docs.databricks.com/api/workspace/statementexecution/executestatement>. Not
    /// idempotent: sent through `gate`.
    async fn submit(&self, spec: &Value, key: &str, gate: &dyn SendGate) -> Result<Handle> {
        self.validate_spec(spec)?;
        let mut body = spec.clone();
        let obj = body.as_object_mut().expect("validated");
        let statement = obj["statement"].as_str().expect("validated");
        let tagged = format!("{}\n{statement}", key_comment(key));
        obj.insert("statement".into(), json!(tagged));
        let mut tags = obj
            .get("query_tags")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        tags.push(json!({ "key": KEY_TAG, "value": key }));
        obj.insert("query_tags".into(), json!(tags));
        obj.insert("wait_timeout".into(), json!("0s"));
        obj.insert("on_wait_timeout".into(), json!("CONTINUE"));
        let warehouse = obj["warehouse_id"].as_str().expect("validated").to_string();
        let started: StatementResponse = self
            .client
            .call(
                "/api/2.0/sql/statements",
                Call::Submit,
                Idempotency::NotIdempotent(gate),
                |c, url| c.post(url).json(&body),
            )
            .await?;
        let id = answered_id(
            KIND,
            "/api/2.0/sql/statements",
            "statement_id",
            started.statement_id,
        )?;
        Ok(Handle::new(
            json!({ "statement_id": id, "warehouse_id": warehouse }),
        ))
    }

    fn submit_is_idempotent(&self) -> bool {
        false
    }

    /// The `statement_id`. SQL statements send no notifications, so nothing names one by it but
    /// `POST /v1/events/poke`; the statement id is what the API and the query history name it by.
    fn handle_ref(&self, handle: &Handle) -> String {
        handle
            .get_str("statement_id")
            .unwrap_or_else(|| handle.as_json().to_string())
    }

    /// `GET /api/2.0/sql/statements/{id}`:
    /// <https://docs.databricks.com/api/workspace/statementexecution/getstatement>
    async fn status(&self, handle: &Handle) -> Result<RemoteStatus, ProviderError> {
        let id = statement_id(handle)?;
        let path = format!("/api/2.0/sql/statements/{id}");
        let got: StatementResponse = self.client.get(&path, &[]).await?;
        let status = got.status.unwrap_or_default();
        let mut read =
            state::read_state(KIND, &id, status.state.as_deref(), state::statement_state);
        read.message = status.error.and_then(|e| match (e.error_code, e.message) {
            (Some(code), Some(m)) => Some(format!("{code}: {m}")),
            (_, m) => m,
        });
        read.url = self.job_url(handle);
        Ok(read)
    }

    /// `POST /api/2.0/sql/statements/{id}/cancel`:
    /// <https://docs.databricks.com/api/workspace/statementexecution/cancelexecution>
    async fn cancel(&self, handle: &Handle) -> Result<(), ProviderError> {
        let id = statement_id(handle)?;
        let path = format!("/api/2.0/sql/statements/{id}/cancel");
        self.client.post_idempotent(&path, None).await
    }

    /// The warehouse's query history since the intent (less the clocks' skew), page after
    /// page, for statements tagged with the key; oldest first.
    ///
    /// <https://docs.databricks.com/api/workspace/queryhistory/list>
    async fn find(&self, key: &str, spec: &Value, intent_ms: i64) -> Result<Vec<Handle>> {
        let Some(warehouse) = spec
            .get("warehouse_id")
            .and_then(Value::as_str)
            .filter(|w| is_id(w))
        else {
            return Ok(Vec::new());
        };
        // Bounded by time, not by a row count: every query the warehouse started from the
        // intent (less the clocks' skew) until now (plus the skew), in ranges of at most 30
        // days, each read to its last page.
        let since = intent_ms.saturating_sub(CLOCK_SKEW_MS);
        let until = crate::now_ms().saturating_add(CLOCK_SKEW_MS).max(since);
        let mut found = Vec::new();
        let mut from = since;
        while from <= until {
            let to = from.saturating_add(HISTORY_RANGE_MS - 1).min(until);
            found.extend(self.history_between(warehouse, key, from, to).await?);
            from = to.saturating_add(1);
        }
        found.reverse();
        Ok(found)
    }

    fn job_url(&self, handle: &Handle) -> Option<String> {
        let id = statement_id(handle).ok()?;
        Some(format!("{}/sql/history?queryId={id}", self.client.host()))
    }

    fn settings(&self) -> &CommonSettings {
        &self.config.common
    }

    fn rate_limiter(&self) -> Option<&tether_provider::RateLimiter> {
        Some(self.client.http().limiter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_ref_is_the_statement_id() {
        let adapter = DatabricksSql::new(DatabricksConfig::for_tests(KIND)).unwrap();
        let handle = Handle::new(json!({"statement_id": "01ef-abc", "warehouse_id": "w"}));
        assert_eq!(adapter.handle_ref(&handle), "01ef-abc");
        assert!(adapter.webhook().is_none());
    }

    #[test]
    fn specs_are_checked() {
        let sql = DatabricksSql::new(DatabricksConfig::for_tests(KIND)).unwrap();
        let ok = json!({"statement": "SELECT 1", "warehouse_id": "abc123",
            "query_tags": [{"key": "team", "value": "eng"}]});
        assert!(sql.validate_spec(&ok).is_ok());
        for (bad, says) in [
            (json!("SELECT 1"), "JSON object"),
            (json!({"warehouse_id": "w"}), "needs statement"),
            (
                json!({"statement": " ", "warehouse_id": "w"}),
                "statement must be",
            ),
            (json!({"statement": "SELECT 1"}), "needs warehouse_id"),
            (
                json!({"statement": "SELECT 1", "warehouse_id": "a/b"}),
                "warehouse_id must be",
            ),
            (
                json!({"statement": "SELECT 1", "warehouse_id": "w", "wait_timeout": "30s"}),
                "wait_timeout",
            ),
            (
                json!({"statement": "SELECT 1", "warehouse_id": "w", "sql": "x"}),
                "sql",
            ),
            (
                json!({"statement": "SELECT 1", "warehouse_id": "w", "query_tags": [{"key": KEY_TAG}]}),
                KEY_TAG,
            ),
        ] {
            let err = sql.validate_spec(&bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn tags_and_comments_both_name_the_key() {
        let by_tag = QueryInfo {
            query_tags: vec![QueryTag {
                key: KEY_TAG.into(),
                value: Some("k1".into()),
            }],
            ..QueryInfo::default()
        };
        let by_comment = QueryInfo {
            query_text: Some(format!("{}\nSELECT 1", key_comment("k1"))),
            ..QueryInfo::default()
        };
        for q in [&by_tag, &by_comment] {
            assert!(tagged_with(q, "k1"));
            assert!(!tagged_with(q, "k2"));
            assert!(!tagged_with(q, "k"));
        }
    }
}
