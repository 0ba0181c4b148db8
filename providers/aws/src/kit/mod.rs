//! The AWS job kit: most AWS job services are "start with a token or a name, describe by id,
//! list with a filter, stop". [`JobApi`] describes one such service (its calls, how a handle
//! and a status are read from an answer, what `find` lists, how a sweep reads many jobs) and
//! [`Kit`] is the one adapter that implements tether's provider trait over any description:
//! the submit's idempotency and gate, the answer checks, `find`'s paging and ordering, the
//! sweeps' grouping, paging and matching, the settings. A service's module holds only what is
//! its own.
//!
//! - `adapter.rs`: [`Kit`], the provider over a description.
//! - `walk.rs`: the list walks: `find`'s pages, a sweep's grouped lists and batched reads
//!   by id, on `tether_provider::paging`'s one pager.
//! - `job_runs.rs`: [`JobRuns`], the REST job-run shape EMR Serverless and EMR on EKS share
//!   (a description of descriptions: each of the two is a constant of it).

mod adapter;
mod gather;
mod job_runs;
mod walk;

use std::fmt::Debug;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{json, Value};
use tether_provider::{Handle, ProviderError, RemoteStatus};

pub use adapter::Kit;
pub use job_runs::{JobRuns, Parent};

use crate::client::AwsClient;
use crate::path_segment;

/// How a service's operations are called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// REST JSON: each call its method and path.
    Rest,
    /// JSON 1.0 (`POST /` with `X-Amz-Target: <prefix>.<operation>`): Step Functions.
    Json10(&'static str),
    /// JSON 1.1, as JSON 1.0 with another content type: Glue, ECS, SageMaker, EMR.
    Json11(&'static str),
}

/// Whether a service deduplicates its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The start carries a token (or a unique name) the service deduplicates by: a submit
    /// may be sent again without the gate.
    Deduplicated,
    /// It does not: the start goes through the gate, and [`JobApi::find`] is what keeps one
    /// job per key.
    Gated,
}

/// What a description is: its kind, how it is called, and its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct About {
    /// tether's kind.
    pub kind: &'static str,
    /// How the service is called.
    pub protocol: Protocol,
    /// Whether the service deduplicates the start.
    pub start: Start,
    /// The handle's field holding the remote job's own id as the service's EventBridge
    /// events name it (`job_id`: a Batch event's `detail.jobId`): the job's
    /// [`tether_provider::Provider::handle_ref`], matched against [`crate::events`]' hints.
    pub reference: &'static str,
}

impl About {
    /// A description's kind, protocol, start, and the handle's field its events name.
    pub const fn new(
        kind: &'static str,
        protocol: Protocol,
        start: Start,
        reference: &'static str,
    ) -> Self {
        Self {
            kind,
            protocol,
            start,
            reference,
        }
    }
}

/// One call of an operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The operation's name (`StartJobRun`), for errors, metrics and the RPC target.
    pub op: &'static str,
    /// REST: the method (the RPC protocols always `POST`).
    pub method: Method,
    /// REST: the path and query, percent-encoded (the RPC protocols always `/`).
    pub path: String,
    /// The JSON body, if any.
    pub body: Option<Value>,
}

impl Call {
    /// A JSON RPC call (JSON 1.0 or 1.1): the operation and its body.
    pub fn rpc(op: &'static str, body: Value) -> Self {
        Self {
            op,
            method: Method::POST,
            path: "/".into(),
            body: Some(body),
        }
    }

    /// A REST call without a body.
    pub fn rest(op: &'static str, method: Method, path: String) -> Self {
        Self {
            op,
            method,
            path,
            body: None,
        }
    }

    /// A REST call with a JSON body.
    pub fn rest_with(op: &'static str, method: Method, path: String, body: Value) -> Self {
        Self {
            body: Some(body),
            ..Self::rest(op, method, path)
        }
    }

    /// The same call for the page after `token`: the token in the body's field `next`, or,
    /// for a call without a body, in the query parameter `next`.
    pub fn page(&self, next: &str, token: Option<String>) -> Self {
        let mut call = self.clone();
        let Some(token) = token else { return call };
        match &mut call.body {
            Some(body) => body[next] = json!(token),
            None => {
                let sep = if call.path.contains('?') { '&' } else { '?' };
                call.path = format!("{}{sep}{next}={}", call.path, path_segment(&token));
            }
        }
        call
    }
}

/// A paged list call: its first page, the answer's field holding the entries, and the field
/// of the next page's token (the same name in the request and the answer, as in every AWS
/// list operation tether uses).
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    /// The first page's call.
    pub call: Call,
    /// The answer's field holding the entries.
    pub items: &'static str,
    /// The token's field.
    pub next: &'static str,
}

/// How a coalesced sweep reads many jobs at once. The handle's `parent` field (an EMR
/// cluster, an application, a Glue job) groups the jobs, each group read on its own; without
/// one, the account's jobs are one group. `id` is the handle's field a listed entry is
/// matched by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepBy {
    /// Pages through [`JobApi::sweep_list`] of each group, matching entries by
    /// [`JobApi::listed`], until the entries are older than the oldest job asked about
    /// ([`JobApi::past`]) or the pages end.
    List {
        /// The handle's field naming the group, if any.
        parent: Option<&'static str>,
        /// The handle's field a listed entry's id is matched with.
        id: &'static str,
    },
    /// Reads up to `chunk` ids a call with [`JobApi::describe_ids`].
    Ids {
        /// The handle's field naming the group, if any.
        parent: Option<&'static str>,
        /// The handle's field holding the id a call asks for.
        id: &'static str,
        /// The most ids one call takes (the service's limit).
        chunk: usize,
    },
}

/// A description of one AWS job service: everything [`Kit`] needs to run its jobs. The
/// methods without a default are what every service has; the defaulted ones are the hooks
/// where some services differ.
#[async_trait]
pub trait JobApi: Debug + Send + Sync + 'static {
    /// The service's kind, protocol and start.
    fn about(&self) -> About;

    /// Why `spec` cannot be started, if it cannot (the message names the field).
    fn check(&self, spec: &Value) -> Result<(), String>;

    /// A check that needs a call before the start (Step Functions refuses EXPRESS machines).
    async fn before_start(&self, _client: &AwsClient, _spec: &Value) -> Result<(), ProviderError> {
        Ok(())
    }

    /// The start call of the checked `spec` under `key`.
    fn start(&self, spec: &Value, key: &str) -> Call;

    /// The handle from the start's answer ([`no_field`] when the answer holds no id).
    fn started(&self, spec: &Value, key: &str, answer: &Value) -> Result<Value, ProviderError>;

    /// The call that reads one job's status.
    fn describe(&self, handle: &Handle) -> Result<Call, ProviderError>;

    /// The job's status from that call's answer (an answer that leaves the job out is
    /// [`ProviderError::not_found`]).
    fn status(&self, handle: &Handle, answer: &Value) -> Result<RemoteStatus, ProviderError>;

    /// The call that stops (cancels) the job.
    fn stop(&self, handle: &Handle) -> Result<Call, ProviderError>;

    /// Whether the stop's answer reports a failure (Glue's batch stop answers 200 with
    /// errors).
    fn stopped(&self, _answer: &Value) -> Result<(), String> {
        Ok(())
    }

    /// A start the service refused because the job is there already, with the handle the
    /// key names (Step Functions' `ExecutionAlreadyExists` for the key's execution name):
    /// the submit adopts it.
    fn adopt(&self, _spec: &Value, _key: &str, _refusal: &ProviderError) -> Option<Value> {
        None
    }

    /// The handle of the job of `spec` under `key`, where the service's ids follow from the
    /// key (Step Functions' execution ARN): `find` then reads its status instead of listing.
    fn named(&self, _spec: &Value, _key: &str) -> Option<Value> {
        None
    }

    /// What `find` lists for a job of `spec` under `key`; none: there is nothing to list
    /// (the spec names no parent, or [`JobApi::named`] names the job).
    fn find(&self, spec: &Value, key: &str) -> Option<Listing>;

    /// Where `find`'s list names ids only (Athena's `ListQueryExecutions`): the call that
    /// reads one page of them, and the field of its answer holding the entries
    /// [`JobApi::found`] then judges.
    fn find_reads(&self, _ids: Vec<String>) -> Option<(Call, &'static str)> {
        None
    }

    /// A listed entry that is the job of `spec` under `key`: its handle and creation time
    /// (seconds since the epoch).
    fn found(&self, spec: &Value, key: &str, entry: &Value) -> Option<(Value, Option<f64>)>;

    /// How a sweep reads many jobs; none: every job is read singly.
    fn sweep_by(&self) -> Option<SweepBy> {
        None
    }

    /// [`SweepBy::List`]: the list of `parent`'s jobs that may still change, created since
    /// `since` (seconds since the epoch, the oldest job asked about less the clocks' skew).
    fn sweep_list(&self, _parent: &str, _since: f64) -> Option<Listing> {
        None
    }

    /// [`SweepBy::List`]: a listed entry's id and status.
    fn listed(&self, _entry: &Value) -> Option<(String, RemoteStatus)> {
        None
    }

    /// [`SweepBy::List`]: whether the list (newest first) is past `since` at `entry`, so
    /// that no later page holds a job asked about.
    fn past(&self, _entry: &Value, _since: f64) -> bool {
        false
    }

    /// [`SweepBy::Ids`]: whether the answer of [`JobApi::describe_ids`] is read by
    /// [`JobApi::status`] for each of its ids exactly as an answer of [`JobApi::describe`]
    /// (the same call, for many ids), so that single status reads may be gathered into one
    /// call (see `gather`).
    fn gathers(&self) -> bool {
        false
    }

    /// [`SweepBy::Ids`]: the call that reads `ids` of `parent`.
    fn describe_ids(&self, _parent: &str, _ids: Vec<String>) -> Option<Call> {
        None
    }

    /// [`SweepBy::Ids`]: the statuses, by id, of that call's answer.
    fn described(&self, _answer: &Value) -> Vec<(String, RemoteStatus)> {
        Vec::new()
    }
}

/// An answer of `op` that lacks `field`: a transient error (the call may be read again).
pub fn no_field(kind: &'static str, op: &str, field: &str, answer: &Value) -> ProviderError {
    ProviderError::transient(kind, format!("{op}: no {field} in the answer: {answer}"))
}

/// The text at `pointer` (a JSON pointer) in `op`'s answer; without it, [`no_field`] naming
/// the pointer's first field.
pub fn answered<'a>(
    kind: &'static str,
    op: &str,
    answer: &'a Value,
    pointer: &str,
) -> Result<&'a str, ProviderError> {
    answer
        .pointer(pointer)
        .and_then(Value::as_str)
        .ok_or_else(|| {
            let field = pointer
                .split('/')
                .find(|p| !p.is_empty())
                .unwrap_or(pointer);
            no_field(kind, op, field, answer)
        })
}

/// The handle's text fields `parent` and `id` (a job of a cluster, of a Glue job, ...).
pub fn handle_pair(
    handle: &Handle,
    (parent, id): (&str, &str),
    kind: &'static str,
) -> Result<(String, String), ProviderError> {
    Ok((
        handle_field(handle, parent, kind)?,
        handle_field(handle, id, kind)?,
    ))
}

/// The statuses of a batched read's answer, by id: each entry of the array `items` with its
/// text field `id`, read by `status` (an entry without an id is left out).
pub fn statuses(
    answer: &Value,
    (items, id): (&str, &str),
    status: fn(&Value) -> RemoteStatus,
) -> Vec<(String, RemoteStatus)> {
    answer[items]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| Some((entry[id].as_str()?.to_string(), status(entry))))
        .collect()
}

/// `value` as text, unless it is not a string or is empty.
pub fn text(value: &Value) -> Option<&str> {
    value.as_str().filter(|t| !t.is_empty())
}

/// The handle's text field `name` (a handle without it is a permanent error of `kind`).
pub fn handle_field(
    handle: &Handle,
    name: &str,
    kind: &'static str,
) -> Result<String, ProviderError> {
    handle
        .get_str(name)
        .ok_or_else(|| ProviderError::permanent(kind, format!("handle {handle} has no {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_token_goes_in_the_body_or_the_query() {
        let get = Call::rest(
            "ListJobRuns",
            Method::GET,
            "/a/jobruns?maxResults=50".into(),
        );
        assert_eq!(get.page("nextToken", None), get);
        assert_eq!(
            get.page("nextToken", Some("x y/z".into())).path,
            "/a/jobruns?maxResults=50&nextToken=x%20y%2Fz"
        );
        let bare = Call::rest("ListJobRuns", Method::GET, "/a".into());
        assert_eq!(
            bare.page("nextToken", Some("t".into())).path,
            "/a?nextToken=t"
        );
        let rpc = Call::rpc("GetJobRuns", json!({"JobName": "j"}));
        assert_eq!(
            rpc.page("NextToken", Some("t".into())).body,
            Some(json!({"JobName": "j", "NextToken": "t"}))
        );
    }
}
