//! The Amazon Redshift Data API part of the simulator: `ExecuteStatement`,
//! `DescribeStatement`, `ListStatements` and `CancelStatement` (JSON 1.1,
//! `RedshiftData.<Operation>`), as botocore's `redshift-data` model and the API reference
//! describe them: `ClientToken` deduplicates a repeated `ExecuteStatement`; statements are
//! the account's (one list for all clusters and workgroups); `ListStatements` takes one
//! `Status` (by default only `FINISHED` statements, `ALL` for every one) and matches
//! `StatementName` as a case-sensitive prefix, 100 statements a page at most; an unknown
//! statement is `ResourceNotFoundException`; cancelling an ended statement is a
//! `ValidationException`.

use serde_json::{json, Value};

use super::service::{Request, ServiceSim};
use super::{bad, list_page, new_job, page_answer, page_size, text, Inner, OpResult, SimJob};
use crate::config::Service;

/// The JSON 1.1 target prefix.
pub(super) const TARGET: &str = "RedshiftData";

/// The Redshift Data part of the simulator.
pub(super) struct Statements;

impl ServiceSim for Statements {
    /// "Redshift Data Statement Status Change": only for a statement started `WithEvent`.
    fn event_detail(&self, j: &SimJob) -> Option<Value> {
        (j.arguments["WithEvent"] == json!(true)).then(|| {
            json!({"statementId": j.id, "clusterId": j.arguments["ClusterIdentifier"],
                "statementName": j.name, "state": j.state(),
                "expireAt": super::events::iso(j.created_at + 86_400.0),
                "principal": "arn:aws:sts::000000000000:assumed-role/tether-sim"})
        })
    }

    fn sample_spec(&self, name: &str) -> Value {
        json!({"Sql": "CALL etl.nightly_load()", "ClusterIdentifier": "sim-cluster",
            "Database": "dev", "DbUser": "etl", "StatementName": name})
    }

    /// What a lying list says: finished.
    fn lie_success(&self, entry: &mut Value) {
        entry["Status"] = json!("FINISHED");
        if let Some(o) = entry.as_object_mut() {
            o.remove("Error");
        }
    }

    fn call(&self, inner: &mut Inner, request: &Request, input: &Value) -> OpResult {
        route(inner, request.target, input)
    }
}

/// The statements of the account: one list for every cluster and workgroup.
const ACCOUNT: &str = "";

/// A statement as `DescribeStatement` answers it (`ListStatements` answers the same fields
/// less `Error`).
fn statement_json(j: &SimJob) -> Value {
    let mut s = json!({"Id": j.id, "Status": j.state(), "StatementName": j.name,
        "QueryString": j.arguments["Sql"], "CreatedAt": j.created_at, "UpdatedAt": j.created_at,
        "ClusterIdentifier": j.arguments["ClusterIdentifier"], "Database": j.arguments["Database"],
        "HasResultSet": false, "IsBatchStatement": false});
    if j.state() == "FAILED" {
        s["Error"] = json!("ERROR: simulated statement failure");
    }
    s
}

fn list_item(j: &SimJob) -> Value {
    let mut s = statement_json(j);
    if let Some(o) = s.as_object_mut() {
        o.remove("Error");
    }
    s
}

/// One Redshift Data API request: the operation `target` with the JSON `input`.
fn route(inner: &mut Inner, target: &str, input: &Value) -> OpResult {
    match target.strip_prefix(TARGET).unwrap_or("") {
        ".ExecuteStatement" => execute_statement(inner, input),
        ".DescribeStatement" => {
            inner.stats.status_requests += 1;
            let i = statement(inner, &text(input, "Id"))?;
            inner.jobs[i].last_seen = Some(std::time::Instant::now());
            Ok(statement_json(&inner.jobs[i]))
        }
        ".ListStatements" => list_statements(inner, input),
        ".CancelStatement" => {
            let i = statement(inner, &text(input, "Id"))?;
            let j = &mut inner.jobs[i];
            if j.finished() {
                return Err(bad(
                    "ValidationException",
                    format!(
                        "Could not cancel a query that is already in {} state with ID: {}",
                        j.state(),
                        j.id
                    ),
                ));
            }
            j.cancel();
            inner.harness.counters.cancelled();
            Ok(json!({ "Status": true }))
        }
        other => Err(bad(
            "UnknownOperationException",
            format!("unknown operation {TARGET}{other}"),
        )),
    }
}

/// The statement `id`, or `ResourceNotFoundException`.
fn statement(inner: &Inner, id: &str) -> Result<usize, Box<axum::response::Response>> {
    inner
        .lookup(id)
        .filter(|&i| inner.jobs[i].service == Service::RedshiftData)
        .ok_or_else(|| {
            bad(
                "ResourceNotFoundException",
                format!("Query does not exist: {id}"),
            )
        })
}

/// `ExecuteStatement`: `Sql` and one of `ClusterIdentifier` and `WorkgroupName` required;
/// `ClientToken` (1-64) deduplicates; `StatementName` up to 500 characters.
fn execute_statement(inner: &mut Inner, input: &Value) -> OpResult {
    let (sql, cluster, workgroup) = (
        text(input, "Sql"),
        text(input, "ClusterIdentifier"),
        text(input, "WorkgroupName"),
    );
    if sql.is_empty() {
        return Err(bad("ValidationException", "Sql is required".into()));
    }
    if cluster.is_empty() == workgroup.is_empty() {
        return Err(bad(
            "ValidationException",
            "Either ClusterIdentifier or WorkgroupName must be specified, not both".into(),
        ));
    }
    let (token, name) = (text(input, "ClientToken"), text(input, "StatementName"));
    if token.len() > 64 || name.len() > 500 {
        return Err(bad(
            "ValidationException",
            "ClientToken is at most 64 characters, StatementName at most 500".into(),
        ));
    }
    let dedup = (TARGET.to_string(), token.clone());
    if !token.is_empty() {
        if let Some(id) = inner.client_tokens.get(&dedup) {
            return Ok(
                json!({"Id": id, "ClusterIdentifier": cluster, "Database": input["Database"]}),
            );
        }
    }
    let n = inner.jobs.len() + 1;
    let id = format!("{n:08x}-5130-4d5a-9c1e-{:012x}", n);
    new_job(
        inner,
        Service::RedshiftData,
        id.clone(),
        ACCOUNT,
        &name,
        input.clone(),
        &token,
    );
    if !token.is_empty() {
        inner.client_tokens.insert(dedup, id.clone());
    }
    let created = inner.jobs[n - 1].created_at;
    Ok(
        json!({"Id": id, "ClusterIdentifier": cluster, "WorkgroupName": workgroup,
        "Database": input["Database"], "CreatedAt": created}),
    )
}

/// `ListStatements`: one `Status` (`FINISHED` when absent, `ALL` for every status), a
/// case-sensitive `StatementName` prefix, `MaxResults` 0-100 (0: the default, 100).
fn list_statements(inner: &mut Inner, input: &Value) -> OpResult {
    let status = match text(input, "Status") {
        s if s.is_empty() => "FINISHED".to_string(),
        s => s,
    };
    let prefix = text(input, "StatementName");
    let size = match input["MaxResults"].as_u64() {
        None | Some(0) => 100,
        Some(_) => page_size(&input["MaxResults"], 100, 100, "MaxResults")?,
    };
    let (statements, next) = list_page(
        inner,
        Service::RedshiftData,
        ACCOUNT,
        input["NextToken"].as_str(),
        size,
        |j| (status == "ALL" || j.state() == status) && j.name.starts_with(&prefix),
        list_item,
    )?;
    page_answer("Statements", statements, "NextToken", next)
}
