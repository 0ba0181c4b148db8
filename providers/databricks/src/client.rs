//! The workspace client every Databricks kind calls through (bearer or OAuth token, tether's
//! retrying HTTP client, Databricks' error shapes), and the Jobs API's requests and answers.
//! The Pipelines and SQL Statement Execution calls live with their kinds (`pipelines.rs`,
//! `statements.rs`).
//!
//! Reference: <https://docs.databricks.com/api/workspace/jobs>

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tether_provider::http::{HttpClient, Idempotency, Response};
use tether_provider::paging::{walk, Page};
use tether_provider::token::once_more_after_401;
use tether_provider::{ErrorKind, ProviderError};

use crate::auth::Authenticator;
use crate::{DatabricksConfig, PROVIDER};

/// Runs asked for per page of `runs/list`. The API reference and tether's old simulator
/// allow 25, but the official SDKs (Python, JavaScript) document `limit` as "greater than 0
/// and less than 25": 24 is what both readings accept, and the simulator refuses 25.
pub const LIST_LIMIT: usize = 24;

/// A run, as `runs/get` and `runs/list` return it (only the fields tether reads).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Run {
    /// The run's id.
    pub run_id: i64,
    /// The job the run belongs to (one-time runs have one too); Airflow's deferrable
    /// Databricks operators read it before they defer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<i64>,
    /// The run's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_name: Option<String>,
    /// The classic state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<RunState>,
    /// The newer status, in workspaces that report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
    /// Link to the run in the workspace UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_page_url: Option<String>,
    /// When the run was created (ms since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    /// Its tasks, each as its latest attempt stands (a multi-task run's failure names one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<RunTask>,
    /// The original run and each repair, oldest first (with `include_history=true`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repair_history: Vec<RepairHistoryItem>,
    /// `runs/get` shows the first 100 elements of each array property (`tasks`,
    /// `repair_history`, ...): the token of the next page, if there is more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// The most pages of a run's array properties `runs/get` is followed through (100 elements
/// a page: 10,000 tasks or repairs).
const RUN_PAGES: u64 = 100;

/// A task of a run (`tasks[]` of `runs/get`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunTask {
    /// The task's key in the job.
    #[serde(default)]
    pub task_key: String,
    /// The task run's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
    /// Which attempt this is (0 the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_number: Option<i64>,
    /// The classic state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<RunState>,
}

/// An item of `repair_history`: the original run, or a repair.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RepairHistoryItem {
    /// The repair's id (absent for the original run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// `ORIGINAL` or `REPAIR`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// When it started (ms since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    /// The classic state of this attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<RunState>,
    /// The newer status of this attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
    /// The task runs of this attempt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub task_run_ids: Vec<i64>,
}

/// `state` of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunState {
    /// QUEUED, PENDING, RUNNING, TERMINATING, TERMINATED, SKIPPED, INTERNAL_ERROR, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub life_cycle_state: Option<String>,
    /// SUCCESS, FAILED, TIMEDOUT, CANCELED, ... once terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_state: Option<String>,
    /// A human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_message: Option<String>,
}

/// `status` of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunStatus {
    /// BLOCKED, PENDING, QUEUED, RUNNING, TERMINATING, TERMINATED, WAITING.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Why a terminated run ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_details: Option<TerminationDetails>,
}

/// `status.termination_details`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TerminationDetails {
    /// SUCCESS, USER_CANCELED, RUN_EXECUTION_ERROR, DRIVER_ERROR, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// SUCCESS, INTERNAL_ERROR, CLIENT_ERROR, CLOUD_FAILURE.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// A human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SubmitResponse {
    run_id: i64,
}

#[derive(Debug, Deserialize)]
struct RepairResponse {
    repair_id: i64,
}

/// A page of `runs/list`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RunsPage {
    /// The runs on this page.
    #[serde(default)]
    pub runs: Vec<Run>,
    /// Whether more pages follow.
    #[serde(default)]
    pub has_more: bool,
    /// The token of the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// Databricks' error body: `{"error_code": "...", "message": "..."}`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ApiError {
    /// E.g. `INVALID_PARAMETER_VALUE`, `RESOURCE_DOES_NOT_EXIST`.
    #[serde(default)]
    pub error_code: String,
    /// What went wrong.
    #[serde(default)]
    pub message: String,
}

/// A workspace's API, as tether calls it: the Jobs API calls here, the others through
/// [`Client::call`].
#[derive(Debug)]
pub struct Client {
    host: String,
    http: HttpClient,
    auth: Authenticator,
}

impl Client {
    /// A client for the workspace at `host`.
    pub fn new(host: String, http: HttpClient, auth: Authenticator) -> Self {
        Self { host, http, auth }
    }

    /// A client for the configured workspace.
    pub fn for_config(config: &DatabricksConfig) -> Result<Self, ProviderError> {
        let http = HttpClient::new(config.kind, &config.common)?;
        let auth = Authenticator::new(&config.host, config.auth.clone());
        Ok(Self::new(config.host.clone(), http, auth))
    }

    /// The HTTP client (for its rate limiter).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// `POST /api/2.1/jobs/runs/submit` or, when the spec names a `job_id`,
    /// `POST /api/2.1/jobs/run-now`; both with `idempotency_token`, so a repeated submission
    /// returns the run the first one created.
    ///
    /// <https://docs.databricks.com/api/workspace/jobs/submit>,
    /// <https://docs.databricks.com/api/workspace/jobs/runnow>
    pub async fn submit(&self, body: &Value) -> Result<i64, ProviderError> {
        let path = if body.get("job_id").is_some() {
            "/api/2.1/jobs/run-now"
        } else {
            "/api/2.1/jobs/runs/submit"
        };
        let r: SubmitResponse = self
            .call(path, Call::Submit, Idempotency::Idempotent, |c, url| {
                c.post(url).json(body)
            })
            .await?;
        Ok(r.run_id)
    }

    /// `GET /api/2.1/jobs/runs/get?run_id=`: <https://docs.databricks.com/api/workspace/jobs/getrun>,
    /// every page of its tasks.
    pub async fn get_run(&self, run_id: i64) -> Result<Run, ProviderError> {
        self.get_run_pages("/api/2.1/jobs/runs/get", run_id, false)
            .await
    }

    /// `GET /api/2.2/jobs/runs/get?run_id=&include_history=true`: the run with its
    /// `repair_history`, every page of it.
    pub async fn get_run_with_history(&self, run_id: i64) -> Result<Run, ProviderError> {
        self.get_run_pages("/api/2.2/jobs/runs/get", run_id, true)
            .await
    }

    /// `runs/get`, following `next_page_token` ("Large arrays in the results will be
    /// paginated when they exceed 100 elements") and joining the pages' `tasks` and
    /// `repair_history`, so that a repair past the 100th, or a failed task past the 100th, is
    /// read. More than [`RUN_PAGES`] pages is an error, never a run read in part.
    async fn get_run_pages(
        &self,
        path: &str,
        run_id: i64,
        include_history: bool,
    ) -> Result<Run, ProviderError> {
        let fetch = |token: Option<String>| async move {
            let mut query = vec![("run_id", run_id.to_string())];
            if include_history {
                query.push(("include_history", "true".into()));
            }
            let page: Run = self.get(path, &with_page_token(query, token)).await?;
            let next = page.next_page_token.clone();
            Ok(Page::new(vec![page], next))
        };
        let mut run: Option<Run> = None;
        let walked = walk(RUN_PAGES, fetch, |page| {
            match &mut run {
                None => run = Some(page),
                Some(first) => {
                    first.tasks.extend(page.tasks);
                    first.repair_history.extend(page.repair_history);
                }
            }
            true
        })
        .await?;
        if walked.complete {
            let mut whole = run.expect("a page was read");
            whole.next_page_token = None;
            return Ok(whole);
        }
        Err(ProviderError::transient(
            PROVIDER,
            format!(
                "{path}: run {run_id} has more than {RUN_PAGES} pages of tasks or repairs; \
                 tether reads no run in part"
            ),
        ))
    }

    /// `POST /api/2.2/jobs/runs/repair` with `rerun_all_failed_tasks` (and `latest_repair_id`
    /// after a first repair, which keeps repairs in sequence): the repair's id. No
    /// idempotency token: sent through `gate`.
    ///
    /// <https://docs.databricks.com/api/workspace/jobs/repairrun>
    pub async fn repair(
        &self,
        run_id: i64,
        latest_repair_id: Option<i64>,
        gate: &dyn tether_provider::SendGate,
    ) -> Result<i64, ProviderError> {
        let mut body = serde_json::json!({ "run_id": run_id, "rerun_all_failed_tasks": true });
        if let Some(id) = latest_repair_id {
            body["latest_repair_id"] = id.into();
        }
        let r: RepairResponse = self
            .call(
                "/api/2.2/jobs/runs/repair",
                Call::Submit,
                Idempotency::NotIdempotent(gate),
                |c, url| c.post(url).json(&body),
            )
            .await?;
        Ok(r.repair_id)
    }

    /// `GET /api/2.1/jobs/runs/list` (submitted runs, newest first):
    /// <https://docs.databricks.com/api/workspace/jobs/listruns>
    pub async fn list_runs(&self, page_token: Option<&str>) -> Result<RunsPage, ProviderError> {
        let q = vec![
            ("run_type", "SUBMIT_RUN".to_string()),
            ("limit", LIST_LIMIT.to_string()),
        ];
        self.list(q, page_token).await
    }

    /// `GET /api/2.1/jobs/runs/list?active_only=true`, every run type, started within
    /// `[start_time_from, start_time_to]` (ms; `None`: unbounded), newest first,
    /// [`LIST_LIMIT`] a page.
    pub async fn list_active_runs(
        &self,
        start_time_from: i64,
        start_time_to: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<RunsPage, ProviderError> {
        let mut q = vec![
            ("active_only", "true".to_string()),
            ("limit", LIST_LIMIT.to_string()),
            ("start_time_from", start_time_from.to_string()),
        ];
        if let Some(to) = start_time_to {
            q.push(("start_time_to", to.to_string()));
        }
        self.list(q, page_token).await
    }

    /// One page of `runs/list` with the query `q`, from `page_token`.
    async fn list(
        &self,
        q: Vec<(&'static str, String)>,
        page_token: Option<&str>,
    ) -> Result<RunsPage, ProviderError> {
        let q = with_page_token(q, page_token.map(str::to_string));
        self.get("/api/2.1/jobs/runs/list", &q).await
    }

    /// `POST /api/2.1/jobs/runs/cancel`: <https://docs.databricks.com/api/workspace/jobs/cancelrun>
    pub async fn cancel(&self, run_id: i64) -> Result<(), ProviderError> {
        let body = serde_json::json!({ "run_id": run_id });
        self.post_idempotent("/api/2.1/jobs/runs/cancel", Some(&body))
            .await
    }

    /// The workspace's URL.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `GET path` with the query `query` (none when it is empty): a read, which may be repeated.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ProviderError> {
        self.call(path, Call::Other, Idempotency::Idempotent, |c, url| {
            let request = c.get(url);
            if query.is_empty() {
                request
            } else {
                request.query(query)
            }
        })
        .await
    }

    /// `POST path` with the JSON `body` (`None`: no body) whose answer tether does not read: a
    /// cancel or a stop, which may be repeated.
    pub async fn post_idempotent(
        &self,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(), ProviderError> {
        let _: Value = self
            .call(
                path,
                Call::Other,
                Idempotency::Idempotent,
                |c, url| match body {
                    Some(body) => c.post(url).json(body),
                    None => c.post(url),
                },
            )
            .await?;
        Ok(())
    }

    /// Calls `path` (`/api/2.1/jobs/runs/get`, ...) with the request `build` makes, with a
    /// bearer token (fetched again once on a 401), and decodes the answer or classifies the
    /// error.
    pub async fn call<T: DeserializeOwned>(
        &self,
        path: &str,
        call: Call,
        idempotency: Idempotency<'_>,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<T, ProviderError> {
        let url = format!("{}{path}", self.host);
        // An OAuth token may have been revoked early: a 401 fetches a new one, once.
        let send = || async {
            let token = self.auth.bearer(&self.http).await?;
            self.http
                .send(path, idempotency, |c| {
                    build(c, &url).bearer_auth(token.expose())
                })
                .await
        };
        let response = once_more_after_401(send, || self.auth.invalidate()).await?;
        decode(path, call, response)
    }
}

/// Whether `id` (a pipeline, update, statement or warehouse id) can stand in a URL path as it
/// is: letters, digits, `-` and `_`, at most 128 of them.
pub fn is_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `query` with the page token `token`, if any (the first page has none).
pub fn with_page_token(
    mut query: Vec<(&'static str, String)>,
    token: Option<String>,
) -> Vec<(&'static str, String)> {
    if let Some(t) = token {
        query.push(("page_token", t));
    }
    query
}

/// The id a submission's answer names in `id` (its `field`), or a permanent error of `kind`:
/// an answer without one names no job tether could follow.
pub fn answered_id(
    kind: &'static str,
    path: &str,
    field: &str,
    id: Option<String>,
) -> Result<String, ProviderError> {
    id.filter(|id| is_id(id)).ok_or_else(|| {
        ProviderError::permanent(kind, format!("{path}: the answer names no {field}"))
    })
}

/// What a call does, for the classification of its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// It makes a job (a run, a pipeline update, a statement): a 400 names a bad spec.
    Submit,
    /// Anything else.
    Other,
}

/// Turns a response into `T` or a classified error.
fn decode<T: DeserializeOwned>(
    path: &str,
    call: Call,
    response: Response,
) -> Result<T, ProviderError> {
    let status = response.status;
    if status.is_success() {
        return serde_json::from_slice(&response.body).map_err(|e| {
            // A broken body (a proxy's error page, a cut-off answer) is worth asking again.
            ProviderError::transient(
                PROVIDER,
                format!(
                    "{path}: malformed JSON in the response ({e}): {}",
                    response.body_snippet()
                ),
            )
        });
    }
    let api: ApiError = serde_json::from_slice(&response.body).unwrap_or_default();
    let what = if api.error_code.is_empty() {
        format!("{path}: HTTP {status} ({})", response.body_snippet())
    } else {
        format!(
            "{path}: {} ({}): {}",
            api.error_code,
            status.as_u16(),
            api.message
        )
    };
    let kind = match (call, status.as_u16(), api.error_code.as_str()) {
        // A submission naming a job, pipeline or warehouse that does not exist is a bad spec.
        (Call::Submit, 400 | 404, _) => ErrorKind::InvalidSpec,
        (_, 404, _) | (_, _, "RESOURCE_DOES_NOT_EXIST" | "NOT_FOUND") => ErrorKind::NotFound,
        (_, 400, "INVALID_PARAMETER_VALUE") if api.message.contains("does not exist") => {
            ErrorKind::NotFound
        }
        _ => ErrorKind::Permanent,
    };
    Err(ProviderError::new(PROVIDER, kind, what).with_retry_after(response.retry_after()))
}
