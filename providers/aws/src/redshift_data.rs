//! Amazon Redshift Data API statements (JSON 1.1, `RedshiftData.<Operation>`, SigV4 service
//! `redshift-data`), a kit description.
//!
//! A job spec is the `ExecuteStatement` body: `{"Sql": "...", "ClusterIdentifier": "..." or
//! "WorkgroupName": "...", "Database": "...", "SecretArn" or "DbUser": ..., "StatementName":
//! "...", "Parameters": [...]}`. tether sets `ClientToken` to its key and names the statement
//! `<StatementName>-<key>` (the key alone without a name), so that `find` lists the
//! statements by that name (`ListStatements` with `StatementName`, a prefix match compared
//! exactly here, and `Status = ALL`: by default the list shows only finished statements).
//! The service holds a `ClientToken` for 8 hours at most, so the start counts as not
//! idempotent: after a lost answer tether looks for the statement by its name before sending
//! anything again.
//!
//! A coalesced sweep lists the account's `STARTED` statements (`ListStatements` takes one
//! status): a statement not listed is read on its own (`DescribeStatement`).
//!
//! <https://docs.aws.amazon.com/redshift-data/latest/APIReference/API_ExecuteStatement.html>,
//! `API_DescribeStatement.html`, `API_ListStatements.html`, `API_CancelStatement.html`.

use serde_json::{json, Value};
use tether_provider::{Handle, ProviderError, RemoteStatus};

use crate::keyed_name;
use crate::kit::{
    answered, handle_field, text, About, Call, JobApi, Kit, Listing, Protocol, Start, SweepBy,
};
use crate::timestamp;

const PROVIDER: &str = "redshift-data";
const TARGET: &str = "RedshiftData";
/// The longest statement name (`StatementNameString`).
const NAME_MAX: usize = 500;

/// The Redshift Data API adapter.
pub type RedshiftData = Kit<Statements>;

/// Redshift Data API statements, as the kit runs them.
#[derive(Debug, Default)]
pub struct Statements;

/// The statement name carrying `key`.
pub fn statement_name(spec: &Value, key: &str) -> String {
    keyed_name(
        spec.get("StatementName").and_then(Value::as_str),
        key,
        NAME_MAX,
    )
}

/// A statement (from `DescribeStatement` or `ListStatements`) as tether sees it, with
/// `Error` as the message.
fn statement_status(statement: &Value) -> RemoteStatus {
    let raw = statement["Status"].as_str().unwrap_or("").to_string();
    RemoteStatus::new(
        crate::state::redshift_statement(&raw),
        raw,
        text(&statement["Error"]).map(str::to_string),
    )
}

fn by_id(op: &'static str, handle: &Handle) -> Result<Call, ProviderError> {
    let id = handle_field(handle, "statement_id", PROVIDER)?;
    Ok(Call::rpc(op, json!({ "Id": id })))
}

impl JobApi for Statements {
    fn about(&self) -> About {
        // `ClientToken` is sent, but the service holds it 8 hours at most: a lost answer is
        // resolved by `find`, never by sending again blind.
        About::new(
            PROVIDER,
            Protocol::Json11(TARGET),
            Start::Gated,
            "statement_id",
        )
    }

    fn check(&self, spec: &Value) -> Result<(), String> {
        let has = |k: &str| text(&spec[k]).is_some();
        if !spec.is_object() || !has("Sql") {
            return Err("the job spec must be an ExecuteStatement body holding Sql".into());
        }
        if has("ClusterIdentifier") == has("WorkgroupName") {
            return Err(
                "the job spec must name one of ClusterIdentifier (a provisioned cluster) and \
                 WorkgroupName (Redshift Serverless)"
                    .into(),
            );
        }
        for tethers in ["ClientToken", "SessionId", "SessionKeepAliveSeconds"] {
            if spec.get(tethers).is_some() {
                return Err(format!(
                    "{tethers} must be absent: tether sets ClientToken to its key, and a \
                     statement in a session cannot be found again by its name"
                ));
            }
        }
        match spec.get("StatementName") {
            None | Some(Value::String(_)) => Ok(()),
            Some(other) => Err(format!("StatementName must be text, not {other}")),
        }
    }

    fn start(&self, spec: &Value, key: &str) -> Call {
        let mut body = spec.clone();
        body["ClientToken"] = json!(key);
        body["StatementName"] = json!(statement_name(spec, key));
        // "Redshift Data Statement Status Change" is sent only for a statement started
        // with `WithEvent`: on unless the spec says otherwise.
        if body.get("WithEvent").is_none() {
            body["WithEvent"] = json!(true);
        }
        Call::rpc("ExecuteStatement", body)
    }

    fn started(&self, _spec: &Value, _key: &str, answer: &Value) -> Result<Value, ProviderError> {
        let id = answered(PROVIDER, "ExecuteStatement", answer, "/Id")?;
        Ok(json!({ "statement_id": id }))
    }

    fn describe(&self, handle: &Handle) -> Result<Call, ProviderError> {
        by_id("DescribeStatement", handle)
    }

    fn status(&self, _handle: &Handle, answer: &Value) -> Result<RemoteStatus, ProviderError> {
        Ok(statement_status(answer))
    }

    /// `CancelStatement` answers `Status: false` when the statement could not be cancelled
    /// (it has ended).
    fn stop(&self, handle: &Handle) -> Result<Call, ProviderError> {
        by_id("CancelStatement", handle)
    }

    fn stopped(&self, answer: &Value) -> Result<(), String> {
        match answer["Status"].as_bool() {
            Some(false) => Err("the statement was not cancelled (it has ended)".into()),
            _ => Ok(()),
        }
    }

    /// The statements named with the key, whatever their status.
    fn find(&self, spec: &Value, key: &str) -> Option<Listing> {
        let body = json!({"StatementName": statement_name(spec, key), "Status": "ALL",
            "MaxResults": 100});
        Some(Listing {
            call: Call::rpc("ListStatements", body),
            items: "Statements",
            next: "NextToken",
        })
    }

    /// The name filter is a prefix: compare exactly.
    fn found(&self, spec: &Value, key: &str, statement: &Value) -> Option<(Value, Option<f64>)> {
        (statement["StatementName"].as_str() == Some(statement_name(spec, key).as_str())).then(
            || {
                (
                    json!({ "statement_id": statement["Id"] }),
                    timestamp(&statement["CreatedAt"]),
                )
            },
        )
    }

    fn sweep_by(&self) -> Option<SweepBy> {
        Some(SweepBy::List {
            parent: None,
            id: "statement_id",
        })
    }

    /// `ListStatements` with `Status = STARTED`, 100 a page.
    fn sweep_list(&self, _parent: &str, _since: f64) -> Option<Listing> {
        Some(Listing {
            call: Call::rpc(
                "ListStatements",
                json!({"Status": "STARTED", "MaxResults": 100}),
            ),
            items: "Statements",
            next: "NextToken",
        })
    }

    fn listed(&self, statement: &Value) -> Option<(String, RemoteStatus)> {
        let id = statement["Id"].as_str()?;
        Some((id.to_string(), statement_status(statement)))
    }
}
