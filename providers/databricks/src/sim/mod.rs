//! A Databricks simulator: the workspace APIs tether uses, on a loopback port.
//!
//! - Jobs (here): runs move PENDING -> RUNNING -> TERMINATING -> TERMINATED on a schedule,
//!   ending with a configurable result; `idempotency_token` deduplicates submissions as
//!   Databricks does; `runs/list` pages at most 24 runs, as the SDKs document.
//! - Pipelines (`pipelines.rs`): updates, one active per pipeline, stopped with `stop`, failures
//!   in the event log.
//! - SQL (`statements.rs`): statements on warehouses, and the query history.
//! - `lives.rs`: what updates and statements share: their life, the state names their APIs
//!   give it, and the store that keeps them in creation order.
//! - `notify.rs`: notification destinations, and the job notifications runs send to them
//!   (`webhook_notifications`), with faults that drop, repeat or delay them.
//!
//! Submissions (in all and per key) and cancels are counted; faults can be injected per
//! endpoint (an HTTP status with Retry-After, a slow answer, a connection dropped mid-answer,
//! malformed JSON, a run state tether does not know). Bearer tokens are checked, and OAuth M2M
//! tokens are issued at `/oidc/v1/token`. `GET /_sim/stats` reports the counters;
//! `POST /_sim/runs/end` ends chosen runs now and says when (a benchmark's exact remote ends).
//!
//! It is tether's test peer, and `tether sim databricks` serves it for people who want to try
//! DAGs without a workspace.

mod lives;
mod notify;
mod pipelines;
mod repair;
mod statements;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use tether_provider::registry;
use tether_provider::settings::{Setting, Table};
use tether_provider::sim::{self as harness, Counters, Harness, Hosted, Lifetimes, Simulated};
use tether_provider::JobState;

use crate::client::{Run, RunState, RunStatus, RunsPage, TerminationDetails};
use lives::{Life, Phase};
pub use notify::{NotificationFault, WORKSPACE_ID};

/// How the simulator behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The personal access token it accepts.
    pub token: String,
    /// An OAuth client (id, secret) it issues tokens to.
    pub oauth_client: Option<(String, String)>,
    /// Time a new run spends PENDING.
    pub pending: Duration,
    /// Time it spends RUNNING.
    pub running: Duration,
    /// Time it spends TERMINATING.
    pub terminating: Duration,
    /// The `result_state` runs end with (SUCCESS, FAILED, ...).
    pub outcome: String,
    /// Whether runs also carry the newer `status` field.
    pub report_status: bool,
    /// `runs/list` reports every run it lists as finished successfully, whatever its real
    /// state: a list that lies, to prove that tether never records a terminal state from a
    /// list alone.
    pub lists_report_success: bool,
    /// The `run_page_url` new runs report instead of their own page (a hostile provider's
    /// link, such as `javascript:...`, for the web view's tests).
    pub run_page_url: Option<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            token: "dapi-sim-token".into(),
            oauth_client: None,
            pending: Duration::from_secs(2),
            running: Duration::from_secs(10),
            terminating: Duration::from_secs(1),
            outcome: "SUCCESS".into(),
            report_status: true,
            lists_report_success: false,
            run_page_url: None,
        }
    }
}

/// Which endpoint a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `runs/submit` and `run-now`.
    Submit,
    /// `runs/get`.
    Get,
    /// `runs/list`.
    List,
    /// `runs/cancel`.
    Cancel,
}

/// What goes wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this status (and `Retry-After` seconds, if given) and a Databricks error.
    Status {
        /// The HTTP status.
        code: u16,
        /// `Retry-After`, in seconds.
        retry_after: Option<u64>,
    },
    /// Answer normally, after this long.
    Delay(Duration),
    /// Send the status line, then cut the connection before the body.
    Drop,
    /// Answer 200 with a body that is not JSON.
    MalformedJson,
    /// `runs/get` reports this `life_cycle_state`.
    UnknownState(String),
    /// Process the request (a submit creates its run), then answer 500.
    FailAfterProcessing,
}

/// A fault for the next `times` requests to `endpoint` (or to any endpoint).
#[derive(Debug, Clone)]
pub struct Fault {
    /// Where; `None` for every endpoint.
    pub endpoint: Option<Endpoint>,
    /// What.
    pub kind: FaultKind,
    /// How many requests it affects.
    pub times: u32,
}

/// The simulator's counters: the harness's ([`Counters`]: requests, runs made in all and per
/// `idempotency_token`, cancels; read through this as `stats.submissions`), and its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// What every simulator counts.
    #[serde(flatten)]
    pub common: Counters,
    /// Submit requests received, including deduplicated ones.
    pub submit_requests: u64,
    /// `runs/get` requests.
    pub get_requests: u64,
    /// `runs/list` requests.
    #[serde(default)]
    pub list_requests: u64,
    /// Repairs of runs made (`runs/repair`).
    #[serde(default)]
    pub repairs: u64,
    /// Task runs started, per task key (a repair reruns only some).
    #[serde(default)]
    pub task_runs: BTreeMap<String, u64>,
    /// OAuth tokens issued.
    pub tokens_issued: u64,
    /// Job notifications POSTed to destinations (a repeated one counts twice); not requests.
    #[serde(default)]
    pub notifications_sent: u64,
    /// Job notifications dropped by a [`NotificationFault::Drop`].
    #[serde(default)]
    pub notifications_dropped: u64,
    /// Job notifications sent that failed (no answer, or not 2xx); none is sent again.
    #[serde(default)]
    pub notifications_failed: u64,
}

impl std::ops::Deref for SimStats {
    type Target = Counters;

    fn deref(&self) -> &Counters {
        &self.common
    }
}

/// Where the ids of one-time runs' jobs start (run 7's job is 900,000,007).
const ONE_TIME_JOB_IDS: i64 = 900_000_000;

#[derive(Debug)]
struct SimRun {
    id: i64,
    /// The job it is a run of: the one `run-now` named, or for a one-time run
    /// (`runs/submit`) the job Databricks makes for it (as the real API reports one).
    job_id: i64,
    name: String,
    created: Instant,
    pending: Duration,
    running: Duration,
    terminating: Duration,
    outcome: String,
    cancelled: bool,
    /// When it was cancelled.
    cancelled_at: Option<Instant>,
    /// `start_time`: when it was created, in ms since the Unix epoch.
    start_ms: i64,
    /// When a client last read this run (`runs/get`, or a `runs/list` page holding it).
    last_seen: Option<Instant>,
    /// The page it reports, if not its own (`SimConfig::run_page_url`).
    page_url: Option<String>,
    /// The state it reports whatever its schedule says
    /// ([`registry::RunningSim::set_state`]).
    forced: Option<String>,
    /// Left out of `runs/list` ([`registry::RunningSim::hide_from_lists`]).
    hidden: bool,
    /// Its tasks' keys.
    tasks: Vec<String>,
    /// The tasks that fail in the original run and succeed when repaired (those whose
    /// definition names `fail-once`, e.g. `dbfs:/sim/fail-once.py`).
    fail_once: Vec<String>,
    /// The original run, then each repair; the last is the one under way.
    attempts: Vec<repair::Attempt>,
    /// The notifications its `webhook_notifications` ask for, and what was sent.
    webhooks: Option<notify::RunWebhooks>,
}

/// The simulator's state (behind [`Simulator`]).
#[derive(Debug)]
pub struct Inner {
    config: SimConfig,
    /// By run id: lookups stay cheap with 100,000 runs, and listing is newest first.
    runs: BTreeMap<i64, SimRun>,
    /// (start_time, run id) in creation order (both ascending): where a `start_time_to`
    /// bound starts listing, found by binary search.
    starts: Vec<(i64, i64)>,
    /// The id of the next run.
    next_id: i64,
    /// The id of the last repair made.
    last_repair_id: i64,
    tokens: HashMap<String, i64>,
    oauth_tokens: Vec<String>,
    /// Faults, the common counters, and when runs, updates and statements can be read.
    harness: Harness<Fault>,
    /// Its own counters (`stats.common` is unused: the harness counts those).
    stats: SimStats,
    /// Pipeline updates.
    updates: pipelines::Updates,
    /// SQL statements.
    statements: statements::Statements,
    /// Notification destinations, and the runs with notifications to send.
    notices: notify::Notices,
}

impl Inner {
    /// Counts a job made (with tether's key, if the request carried it).
    fn count_submission(&mut self, key: Option<String>) {
        self.harness.counters.job_made(key.as_deref());
    }

    /// The run `id`, if a client can read it at `now`; else the answer to a missing run.
    fn readable_run(&mut self, id: i64, now: Instant) -> Result<&mut SimRun, Refusal> {
        let lifetimes = self.harness.lifetimes;
        self.runs
            .get_mut(&id)
            .filter(|r| r.readable(&lifetimes, now))
            .ok_or_else(|| run_not_found(id))
    }

    /// Every counter.
    fn stats(&self) -> SimStats {
        SimStats {
            common: self.harness.counters.clone(),
            ..self.stats.clone()
        }
    }

    /// The life of the update or statement `handle` names.
    fn life_mut(&mut self, handle: &tether_provider::Handle) -> Option<&mut Life> {
        if let Some(id) = handle.get_str("update_id") {
            return self.updates.get_mut(&id).map(|u| &mut u.life);
        }
        let id = handle.get_str("statement_id")?;
        self.statements.get_mut(&id).map(|s| &mut s.life)
    }
}

/// The state the server answers from.
type Shared = Arc<Mutex<Inner>>;

/// A running simulator: its state and server ([`Hosted`]: `url`, `addr`, `inject`,
/// `clear_faults`, `set_lifetimes`, `jobs_for_key`), and what only this simulator tells.
#[derive(Debug)]
pub struct Simulator(Hosted<Inner>);

impl std::ops::Deref for Simulator {
    type Target = Hosted<Inner>;

    fn deref(&self) -> &Hosted<Inner> {
        &self.0
    }
}

impl Simulated for Inner {
    type Fault = Fault;

    fn harness(&mut self) -> &mut Harness<Fault> {
        &mut self.harness
    }

    fn times(fault: &Fault) -> u32 {
        fault.times
    }
}

impl Simulator {
    /// Serves the simulator on `addr` (port 0 picks a free one), every run, update and
    /// statement readable at once and kept for ever.
    pub async fn start(config: SimConfig, addr: SocketAddr) -> std::io::Result<Self> {
        Self::start_with(config, Lifetimes::default(), addr).await
    }

    /// As [`Simulator::start`], with the not-visible-yet and forgotten edges switched on as
    /// `lifetimes` says.
    pub async fn start_with(
        config: SimConfig,
        lifetimes: Lifetimes,
        addr: SocketAddr,
    ) -> std::io::Result<Self> {
        let inner = Inner {
            config,
            runs: BTreeMap::new(),
            starts: Vec::new(),
            next_id: 1001,
            last_repair_id: 500_000,
            tokens: HashMap::new(),
            oauth_tokens: Vec::new(),
            harness: Harness::new(lifetimes),
            stats: SimStats::default(),
            updates: pipelines::Updates::default(),
            statements: statements::Statements::default(),
            notices: notify::Notices::default(),
        };
        let app = |shared: Shared| {
            notify::start(&shared);
            router(shared)
        };
        Ok(Self(Hosted::start("databricks", inner, app, addr).await?))
    }

    /// The counters so far.
    pub fn stats(&self) -> SimStats {
        self.lock().stats()
    }

    /// Changes the result and timings of runs created from now on.
    pub fn configure(&self, f: impl FnOnce(&mut SimConfig)) {
        f(&mut self.lock().config);
    }

    /// Ends a run now with `result_state`.
    pub fn finish_run(&self, run_id: i64, result_state: &str) {
        let mut inner = self.lock();
        if let Some(run) = inner.runs.get_mut(&run_id) {
            run.outcome = result_state.to_string();
            run.pending = Duration::ZERO;
            run.running = Duration::ZERO;
            run.terminating = Duration::ZERO;
        }
        inner.notices.changed();
    }

    /// The classic life cycle state of a run now (`None`: no such run).
    pub fn run_state(&self, run_id: i64) -> Option<String> {
        let inner = self.lock();
        let run = inner.runs.get(&run_id)?;
        let (life, result, _) = run.state(Instant::now());
        Some(match result {
            Some(r) => format!("{life}/{r}"),
            None => life.to_string(),
        })
    }

    /// Forgets a run, as if it had aged out of the workspace.
    pub fn delete_run(&self, run_id: i64) {
        self.lock().runs.remove(&run_id);
    }
}

impl Simulator {
    /// Changes the run `handle` names; false if there is none.
    fn with_run(&self, handle: &tether_provider::Handle, f: impl FnOnce(&mut SimRun)) -> bool {
        let Some(run_id) = handle.get_i64("run_id") else {
            return false;
        };
        match self.lock().runs.get_mut(&run_id) {
            Some(run) => {
                f(run);
                true
            }
            None => false,
        }
    }
}

impl SimRun {
    /// When it ends (or ended), as far as its schedule (of its last repair) or a cancel tells.
    fn end(&self) -> Option<Instant> {
        if self.cancelled {
            return self.cancelled_at;
        }
        let started = self.attempts.last().map_or(self.created, |a| a.created);
        Some(started + self.pending + self.running + self.terminating)
    }

    /// Ends its current attempt at `now` with `result_state`, unless it has ended: its
    /// schedule is cut so that [`SimRun::end`] is `now` (what it spent pending stays so).
    /// Whether it was still under way.
    fn end_at(&mut self, now: Instant, result_state: &str) -> bool {
        if self.state(now).0 == "TERMINATED" {
            return false;
        }
        let started = self.attempts.last().map_or(self.created, |a| a.created);
        let age = now.saturating_duration_since(started);
        self.pending = self.pending.min(age);
        self.running = age - self.pending;
        self.terminating = Duration::ZERO;
        self.outcome = result_state.to_string();
        true
    }

    /// Whether a client can read it at `now` ([`Lifetimes::readable`]): not while the
    /// workspace does not show it yet, nor once it forgot it.
    fn readable(&self, lifetimes: &Lifetimes, now: Instant) -> bool {
        lifetimes.readable(self.created, self.end(), now)
    }

    /// (life_cycle_state, result_state, newer status state) at `now`.
    fn state(&self, now: Instant) -> (&'static str, Option<String>, &'static str) {
        if self.cancelled {
            return ("TERMINATED", Some("CANCELED".into()), "TERMINATED");
        }
        let started = self.attempts.last().map_or(self.created, |a| a.created);
        let age = now.saturating_duration_since(started);
        if age < self.pending {
            ("PENDING", None, "PENDING")
        } else if age < self.pending + self.running {
            ("RUNNING", None, "RUNNING")
        } else if age < self.pending + self.running + self.terminating {
            ("TERMINATING", None, "TERMINATING")
        } else {
            let last = self.attempts.len().saturating_sub(1);
            ("TERMINATED", Some(self.attempt_outcome(last)), "TERMINATED")
        }
    }

    fn to_api(&self, report_status: bool, base: &str) -> Run {
        let (life, result, status_state) = self.state(Instant::now());
        let message = match result.as_deref() {
            Some("SUCCESS") | None => String::new(),
            Some(r) => format!("simulated run ended with {r}"),
        };
        let status = report_status.then(|| RunStatus {
            state: Some(status_state.to_string()),
            termination_details: result.as_ref().map(|r| TerminationDetails {
                code: Some(match r.as_str() {
                    "SUCCESS" => "SUCCESS".to_string(),
                    "CANCELED" => "USER_CANCELED".to_string(),
                    _ => "RUN_EXECUTION_ERROR".to_string(),
                }),
                kind: Some(
                    if r == "SUCCESS" || r == "CANCELED" {
                        "SUCCESS"
                    } else {
                        "CLIENT_ERROR"
                    }
                    .into(),
                ),
                message: Some(message.clone()),
            }),
        });
        let (state, status) = match &self.forced {
            Some(raw) => forced_state(raw),
            None => (
                Some(RunState {
                    life_cycle_state: Some(life.to_string()),
                    result_state: result,
                    state_message: Some(message),
                }),
                status,
            ),
        };
        Run {
            run_id: self.id,
            job_id: Some(self.job_id),
            run_name: Some(self.name.clone()),
            state,
            status,
            run_page_url: Some(
                self.page_url
                    .clone()
                    .unwrap_or_else(|| format!("{base}/#job/runs/{}", self.id)),
            ),
            start_time: Some(self.start_ms),
            tasks: Vec::new(),
            repair_history: Vec::new(),
            next_page_token: None,
        }
    }
}

/// The fields of a run told to report `raw` ([`registry::RunningSim::set_state`]):
/// `LIFE` or `LIFE/RESULT` as the classic `state` alone; `status:STATE` or
/// `status:TERMINATED/CODE` as the newer `status` alone.
fn forced_state(raw: &str) -> (Option<RunState>, Option<RunStatus>) {
    match raw.strip_prefix("status:") {
        Some(newer) => {
            let (state, code) = match newer.split_once('/') {
                Some((state, code)) => (state, Some(code)),
                None => (newer, None),
            };
            let status = RunStatus {
                state: Some(state.to_string()),
                termination_details: code.map(|code| TerminationDetails {
                    code: Some(code.to_string()),
                    kind: None,
                    message: None,
                }),
            };
            (None, Some(status))
        }
        None => {
            let (life, result) = match raw.split_once('/') {
                Some((life, result)) => (life, Some(result.to_string())),
                None => (raw, None),
            };
            let state = RunState {
                life_cycle_state: Some(life.to_string()),
                result_state: result,
                state_message: None,
            };
            (Some(state), None)
        }
    }
}

fn router(inner: Shared) -> Router {
    let api = Router::new()
        .route("/jobs/runs/submit", post(submit))
        .route("/jobs/run-now", post(submit))
        .route("/jobs/runs/get", get(get_run))
        .route("/jobs/runs/list", get(list_runs))
        .route("/jobs/runs/cancel", post(cancel_run))
        .route("/jobs/runs/repair", post(repair::repair_run));
    let pipelines = Router::new()
        .route(
            "/{pipeline_id}/updates",
            post(pipelines::start).get(pipelines::list),
        )
        .route(
            "/{pipeline_id}/updates/{update_id}",
            get(pipelines::get_one),
        )
        .route("/{pipeline_id}/stop", post(pipelines::stop))
        .route("/{pipeline_id}/events", get(pipelines::events));
    let sql = Router::new()
        .route("/statements", post(statements::execute))
        .route("/statements/{statement_id}", get(statements::get_one))
        .route(
            "/statements/{statement_id}/cancel",
            post(statements::cancel),
        )
        .route("/history/queries", get(statements::history));
    let destinations = Router::new()
        .route("/", post(notify::create_destination))
        .route("/{id}", get(notify::get_destination));
    Router::new()
        .nest("/api/2.1", api.clone())
        .nest("/api/2.2", api)
        .nest("/api/2.0/pipelines", pipelines)
        .nest("/api/2.0/sql", sql)
        .nest("/api/2.0/notification-destinations", destinations)
        .route("/oidc/v1/token", post(issue_token))
        .route("/_sim/stats", get(stats))
        .route("/_sim/runs/end", post(end_runs))
        .with_state(inner)
}

/// A handler's answer: `Err` holds the error (or fault) answered instead of the real one.
type Answer = Result<Response, Refusal>;

/// An answer that refuses a request (an error, or an injected fault), boxed: a handler
/// returns it early with `?`.
#[derive(Debug)]
struct Refusal(Box<Response>);

impl From<Response> for Refusal {
    fn from(response: Response) -> Self {
        Self(Box::new(response))
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        *self.0
    }
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "error_code": code, "message": message.into() })),
    )
        .into_response()
}

/// Databricks' answer to a parameter it refuses: 400 `INVALID_PARAMETER_VALUE`.
fn invalid(message: impl Into<String>) -> Refusal {
    error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE", message).into()
}

/// The page token the simulator gave (a number; `None`: the first page), or the answer to
/// one it did not give.
fn page_token<T: std::str::FromStr>(token: Option<&str>) -> Result<Option<T>, Refusal> {
    token
        .map(str::parse)
        .transpose()
        .map_err(|_| invalid("Invalid page_token"))
}

/// A page size: `default` if none is given, the one given if within `range`, else the answer
/// `refusal` words.
fn bounded(
    given: Option<usize>,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
    refusal: impl FnOnce(usize) -> String,
) -> Result<usize, Refusal> {
    match given {
        None => Ok(default),
        Some(n) if range.contains(&n) => Ok(n),
        Some(n) => Err(invalid(refusal(n))),
    }
}

/// Locks the simulator to answer a request to `endpoint` that passed its checks, counted in
/// the stats (submits, gets and lists; a cancel is counted once it is done).
fn counted(inner: &Shared, endpoint: Endpoint) -> std::sync::MutexGuard<'_, Inner> {
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let stats = &mut guard.stats;
    match endpoint {
        Endpoint::Submit => stats.submit_requests += 1,
        Endpoint::Get => stats.get_requests += 1,
        Endpoint::List => stats.list_requests += 1,
        Endpoint::Cancel => {}
    }
    guard
}

impl Inner {
    /// Whether `headers` carry the simulator's token or an OAuth token it issued.
    fn bearer_ok(&self, headers: &HeaderMap) -> bool {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        bearer == self.config.token || self.oauth_tokens.iter().any(|t| t == bearer)
    }
}

/// Databricks' answer to a request without valid credentials.
fn unauthenticated() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "Invalid access token.",
    )
}

/// Checks the bearer token, then applies a queued fault for `endpoint`, if any. Returns the
/// response to send instead of the real one, or the fault to apply after processing.
async fn gate(
    inner: &Shared,
    headers: &HeaderMap,
    endpoint: Endpoint,
) -> Result<Option<FaultKind>, Response> {
    let fault = {
        let mut guard = inner.lock().expect("simulator mutex poisoned");
        let authorized = guard.bearer_ok(headers);
        let admitted = guard
            .harness
            .admit(authorized, |f| f.endpoint.is_none_or(|e| e == endpoint));
        let Ok(fault) = admitted else {
            return Err(unauthenticated());
        };
        fault.map(|f| f.kind)
    };
    match fault {
        None => Ok(None),
        Some(FaultKind::Status { code, retry_after }) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let code_name = match code {
                429 => "REQUEST_LIMIT_EXCEEDED",
                503 => "TEMPORARILY_UNAVAILABLE",
                _ => "INTERNAL_ERROR",
            };
            Err(harness::with_retry_after(
                error(status, code_name, "simulated fault"),
                retry_after.map(Duration::from_secs),
            ))
        }
        Some(FaultKind::Delay(d)) => {
            tokio::time::sleep(d).await;
            Ok(None)
        }
        Some(FaultKind::Drop) => Err(harness::dropped_connection()),
        Some(FaultKind::MalformedJson) => Err((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"run_id\": 1,, \"state\": {",
        )
            .into_response()),
        Some(other) => Ok(Some(other)),
    }
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

async fn submit(State(inner): State<Shared>, headers: HeaderMap, body: String) -> Answer {
    let after = gate(&inner, &headers, Endpoint::Submit).await?;
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return Err(malformed());
    };
    let run_now = body.get("job_id").is_some();
    if !run_now && !body.get("tasks").is_some_and(Value::is_array) {
        return Err(invalid("Missing required field: tasks"));
    }
    if run_now && body["job_id"].as_i64().is_none_or(|id| id <= 0) {
        return Err(invalid(format!("Job {} does not exist.", body["job_id"])));
    }
    // A job's runs (run-now) notify as the job's settings say: the simulator keeps no jobs.
    let webhooks = if run_now {
        None
    } else {
        notify::RunWebhooks::of_submission(&body)?
    };
    let mut guard = counted(&inner, Endpoint::Submit);
    let token = body
        .get("idempotency_token")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(run_id) = token.as_ref().and_then(|t| guard.tokens.get(t)) {
        let run_id = *run_id;
        // "If a run with the provided token is deleted, an error is returned": a run removed
        // (or aged out) does not free its token. (A run not visible yet still holds it.)
        let lifetimes = guard.harness.lifetimes;
        let now = Instant::now();
        let held = guard
            .runs
            .get(&run_id)
            .is_some_and(|r| lifetimes.held(r.end(), now));
        drop(guard);
        if !held {
            return Err(invalid(format!(
                "The run {run_id} with the provided idempotency token was deleted."
            )));
        }
        return Ok(respond_after(
            after,
            Json(json!({ "run_id": run_id })).into_response(),
        ));
    }
    let id = guard.next_id;
    guard.next_id += 1;
    let name = match body.get("run_name").and_then(Value::as_str) {
        Some(n) => n.to_string(),
        None if run_now => format!("job {}", body["job_id"]),
        None => "Untitled".to_string(),
    };
    let config = guard.config.clone();
    let (tasks, fail_once) = repair::tasks_of(&body);
    for task in &tasks {
        *guard.stats.task_runs.entry(task.clone()).or_default() += 1;
    }
    // Kept ascending with the ids, so that listing by start_time can binary-search.
    let start_ms = guard
        .starts
        .last()
        .map_or(0, |&(t, _)| t)
        .max(crate::now_ms());
    guard.starts.push((start_ms, id));
    guard.runs.insert(
        id,
        SimRun {
            id,
            job_id: body["job_id"].as_i64().unwrap_or(ONE_TIME_JOB_IDS + id),
            name,
            created: Instant::now(),
            pending: config.pending,
            running: config.running,
            terminating: config.terminating,
            outcome: config.outcome,
            cancelled: false,
            cancelled_at: None,
            start_ms,
            last_seen: None,
            page_url: config.run_page_url,
            forced: None,
            hidden: false,
            attempts: vec![repair::Attempt::original(&tasks, start_ms)],
            tasks,
            fail_once,
            webhooks,
        },
    );
    if guard.runs[&id].webhooks.is_some() {
        guard.notices.watch(id);
    }
    guard.harness.counters.job_made(token.as_deref());
    if let Some(t) = token {
        guard.tokens.insert(t, id);
    }
    drop(guard);
    let body = if run_now {
        json!({ "run_id": id, "number_in_job": id })
    } else {
        json!({ "run_id": id })
    };
    Ok(respond_after(after, Json(body).into_response()))
}

/// Databricks' answer to a request body that is not JSON.
fn malformed() -> Refusal {
    error(
        StatusCode::BAD_REQUEST,
        "MALFORMED_REQUEST",
        "Could not parse request object.",
    )
    .into()
}

fn respond_after(after: Option<FaultKind>, response: Response) -> Response {
    match after {
        Some(FaultKind::FailAfterProcessing) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "simulated failure after the request was processed",
        ),
        _ => response,
    }
}

#[derive(Deserialize)]
struct RunIdQuery {
    run_id: Option<String>,
    include_history: Option<bool>,
    page_token: Option<String>,
}

/// Elements of an array property `runs/get` shows a page ("Large arrays in the results will be
/// paginated when they exceed 100 elements").
const ARRAY_PAGE: usize = 100;

/// Page `page` of an array property.
fn page_of<T>(all: Vec<T>, page: usize) -> Vec<T> {
    all.into_iter()
        .skip(page * ARRAY_PAGE)
        .take(ARRAY_PAGE)
        .collect()
}

/// The parameters of a GET endpoint, from the query string or from a JSON body (Airflow's
/// Databricks hooks send them as a body, which real Databricks accepts); the query wins.
fn get_params<T: serde::de::DeserializeOwned>(uri: &Uri, body: &str) -> Result<T, Refusal> {
    let mut url = reqwest::Url::parse("http://sim/").expect("a valid URL");
    url.set_query(uri.query());
    if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(body) {
        let given: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
        let mut pairs = url.query_pairs_mut();
        for (k, v) in fields.iter().filter(|(k, _)| !given.contains(k)) {
            match v {
                Value::String(s) => pairs.append_pair(k, s),
                Value::Number(_) | Value::Bool(_) => pairs.append_pair(k, &v.to_string()),
                _ => continue,
            };
        }
    }
    let uri: Uri = url.as_str().parse().expect("a URL is a URI");
    Query::<T>::try_from_uri(&uri)
        .map(|Query(q)| q)
        .map_err(|e| invalid(e.body_text()))
}

fn run_not_found(id: impl std::fmt::Display) -> Refusal {
    invalid(format!("Run {id} does not exist."))
}

async fn get_run(
    State(inner): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    body: String,
) -> Answer {
    let after = gate(&inner, &headers, Endpoint::Get).await?;
    let q: RunIdQuery = get_params(&uri, &body)?;
    let Some(id) = q.run_id.as_deref().and_then(|s| s.parse::<i64>().ok()) else {
        return Err(invalid("run_id is required and must be a number"));
    };
    let mut guard = counted(&inner, Endpoint::Get);
    let report_status = guard.config.report_status;
    let run = guard.readable_run(id, Instant::now())?;
    run.last_seen = Some(Instant::now());
    let mut api = run.to_api(report_status, &base_url(&headers));
    api.tasks = run.api_tasks(Instant::now());
    if q.include_history == Some(true) {
        api.repair_history = run.api_history(Instant::now());
    }
    let page = page_token(q.page_token.as_deref())?.unwrap_or(0);
    let shown = (page + 1) * ARRAY_PAGE;
    let more = api.tasks.len() > shown || api.repair_history.len() > shown;
    api.tasks = page_of(std::mem::take(&mut api.tasks), page);
    api.repair_history = page_of(std::mem::take(&mut api.repair_history), page);
    api.next_page_token = more.then(|| (page + 1).to_string());
    if let Some(FaultKind::UnknownState(state)) = after {
        api.state = Some(RunState {
            life_cycle_state: Some(state.clone()),
            result_state: None,
            state_message: None,
        });
        api.status = Some(RunStatus {
            state: Some(state),
            termination_details: None,
        });
    }
    Ok(Json(api).into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    active_only: Option<bool>,
    limit: Option<usize>,
    page_token: Option<String>,
    start_time_from: Option<i64>,
    start_time_to: Option<i64>,
}

/// `runs/list`: newest first, at most 24 a page (the SDKs' bound), `active_only`,
/// `start_time_from` / `start_time_to`; the page token is the last run id returned, so paging
/// through a set that changes meanwhile neither repeats nor skips a run.
async fn list_runs(
    State(inner): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    body: String,
) -> Answer {
    gate(&inner, &headers, Endpoint::List).await?;
    let q: ListQuery = get_params(&uri, &body)?;
    // The SDKs' bound ("greater than 0 and less than 25"), the stricter reading.
    let limit = bounded(q.limit, 20, 1..=24, |n| {
        format!("Invalid limit {n}: it must be greater than 0 and less than 25")
    })?;
    let cursor: Option<i64> = page_token(q.page_token.as_deref())?;
    let mut guard = counted(&inner, Endpoint::List);
    let now = Instant::now();
    let base = base_url(&headers);
    let from = q.start_time_from.unwrap_or(i64::MIN);
    // The newest run that may be listed: before the cursor, started at or before `to`.
    let mut upper = cursor.map_or(i64::MAX, |c| c - 1);
    if let Some(to) = q.start_time_to {
        let n = guard.starts.partition_point(|&(t, _)| t <= to);
        upper = upper.min(n.checked_sub(1).map_or(i64::MIN, |k| guard.starts[k].1));
    }
    let active_only = q.active_only.unwrap_or(false);
    let lifetimes = guard.harness.lifetimes;
    let mut matching = guard
        .runs
        .range(..=upper)
        .rev()
        .take_while(|(_, r)| r.start_ms >= from)
        .filter(|(_, r)| {
            !r.hidden
                && r.readable(&lifetimes, now)
                && (!active_only || r.state(now).0 != "TERMINATED")
        })
        .map(|(_, r)| r);
    let lie = guard.config.lists_report_success;
    let page: Vec<Run> = matching
        .by_ref()
        .take(limit)
        .map(|r| {
            let mut run = r.to_api(guard.config.report_status, &base);
            if lie {
                run.state = Some(RunState {
                    life_cycle_state: Some("TERMINATED".into()),
                    result_state: Some("SUCCESS".into()),
                    state_message: None,
                });
                run.status = None;
            }
            run
        })
        .collect();
    let has_more = matching.next().is_some();
    for run in &page {
        if let Some(r) = guard.runs.get_mut(&run.run_id) {
            r.last_seen = Some(now);
        }
    }
    let next_page_token = has_more
        .then(|| page.last().map(|r| r.run_id.to_string()))
        .flatten();
    let page = RunsPage {
        runs: page,
        has_more,
        next_page_token,
    };
    Ok(Json(page).into_response())
}

async fn cancel_run(State(inner): State<Shared>, headers: HeaderMap, body: String) -> Answer {
    let after = gate(&inner, &headers, Endpoint::Cancel).await?;
    let Some(id) = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.get("run_id").and_then(Value::as_i64))
    else {
        return Err(invalid("run_id is required"));
    };
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let now = Instant::now();
    let run = guard.readable_run(id, now)?;
    if run.state(now).0 != "TERMINATED" {
        run.cancelled = true;
        run.cancelled_at = Some(now);
    }
    guard.notices.changed();
    guard.harness.counters.cancelled();
    Ok(respond_after(after, Json(json!({})).into_response()))
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
}

async fn issue_token(
    State(inner): State<Shared>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<TokenForm>,
) -> Response {
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let Some((id, secret)) = guard.config.oauth_client.clone() else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "OAuth is not enabled",
        );
    };
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    );
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if given != expected || form.grant_type.as_deref() != Some("client_credentials") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "error_description": "Client authentication failed"})),
        )
            .into_response();
    }
    guard.stats.tokens_issued += 1;
    let token = format!("sim-oauth-{}", guard.stats.tokens_issued);
    guard.oauth_tokens.push(token.clone());
    Json(json!({ "access_token": token, "token_type": "Bearer", "expires_in": 3600 }))
        .into_response()
}

#[derive(Deserialize)]
struct StatsQuery {
    /// Also count the runs not terminated, and those of them read within this many seconds.
    fresh_within: Option<f64>,
}

/// The counters; with `?fresh_within=S`, also `active_runs` and `fresh_runs` (active runs a
/// client read within the last S seconds), so that a benchmark can tell whether every job
/// is polled within its cadence.
async fn stats(State(inner): State<Shared>, Query(q): Query<StatsQuery>) -> Response {
    let guard = inner.lock().expect("simulator mutex poisoned");
    let mut body = serde_json::to_value(guard.stats()).expect("stats serialise");
    if let Some(secs) = q.fresh_within {
        let now = Instant::now();
        let window = Duration::from_secs_f64(secs.max(0.0));
        let active = guard
            .runs
            .values()
            .filter(|r| r.state(now).0 != "TERMINATED");
        let (mut total, mut fresh) = (0u64, 0u64);
        for run in active {
            total += 1;
            if run
                .last_seen
                .is_some_and(|t| now.duration_since(t) <= window)
            {
                fresh += 1;
            }
        }
        body["active_runs"] = json!(total);
        body["fresh_runs"] = json!(fresh);
    }
    Json(body).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndRuns {
    /// The runs to end.
    run_ids: Vec<i64>,
    /// The `result_state` they end with (default SUCCESS).
    result_state: Option<String>,
}

/// `POST /_sim/runs/end` `{"run_ids": [...], "result_state": "SUCCESS"}`: ends each run
/// named that is still under way now, and answers `{"ended": [{"run_id", "end_time"}]}`
/// (`end_time` in ms since the Unix epoch, as Databricks gives a run's), leaving out the runs
/// unknown or ended already. Their notifications follow at once. A benchmark's control, not
/// a Databricks API: it takes no token.
async fn end_runs(State(inner): State<Shared>, body: String) -> Answer {
    let request: EndRuns = serde_json::from_str(&body).map_err(|e| invalid(e.to_string()))?;
    let result_state = request.result_state.as_deref().unwrap_or("SUCCESS");
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let now = Instant::now();
    let end_time = crate::now_ms();
    let mut ended = Vec::new();
    for id in request.run_ids {
        if guard
            .runs
            .get_mut(&id)
            .is_some_and(|run| run.end_at(now, result_state))
        {
            ended.push(json!({"run_id": id, "end_time": end_time}));
        }
    }
    guard.notices.changed();
    Ok(Json(json!({ "ended": ended })).into_response())
}

/// The Databricks simulator, as the registry starts it ([`crate::FACTORY`]).
pub static SIMULATORS: Simulators = Simulators;

/// See [`SIMULATORS`].
#[derive(Debug)]
pub struct Simulators;

/// The SQL warehouse sample statements run on (any id of 16 hex digits is one).
pub const SAMPLE_WAREHOUSE: &str = "5e0d7a1c2b3f4e69";

/// Where `tether sim databricks` listens by default.
pub const DEFAULT_PORT: u16 = 8089;

#[async_trait::async_trait]
impl registry::SimFactory for Simulators {
    fn default_port(&self, _kind: &str) -> u16 {
        DEFAULT_PORT
    }

    /// databricks-sdk's `RunLifeCycleState` (with each `RunResultState` once terminated),
    /// `RunLifecycleStateV2State` and `TerminationCodeCode`, as `src/state.rs` and the book's Databricks page
    /// document them.
    fn documented_states(&self, kind: &str) -> Vec<(String, JobState)> {
        use JobState::{Cancelled, Failed, Pending, Running, Succeeded};
        let read = |states: &[(&str, JobState)]| {
            states
                .iter()
                .map(|&(raw, state)| (raw.to_string(), state))
                .collect()
        };
        match kind {
            crate::pipelines::KIND => return read(crate::state::UPDATE_STATES),
            crate::statements::KIND => return read(crate::state::STATEMENT_STATES),
            _ => {}
        }
        let mut states: Vec<(String, JobState)> = [
            ("BLOCKED", Pending),
            ("PENDING", Pending),
            ("QUEUED", Pending),
            ("WAITING_FOR_RETRY", Pending),
            ("RUNNING", Running),
            ("TERMINATING", Running),
            ("SKIPPED", Cancelled),
            ("INTERNAL_ERROR", Failed),
            // Terminated without a result: not finished for tether (logged as unknown).
            ("TERMINATED", Running),
            ("TERMINATED/SUCCESS", Succeeded),
            ("TERMINATED/SUCCESS_WITH_FAILURES", Succeeded),
            ("TERMINATED/EXCLUDED", Cancelled),
            ("TERMINATED/FAILED", Failed),
            ("TERMINATED/TIMEDOUT", Failed),
            ("TERMINATED/MAXIMUM_CONCURRENT_RUNS_REACHED", Failed),
            ("TERMINATED/UPSTREAM_FAILED", Failed),
            ("TERMINATED/CANCELED", Cancelled),
            ("TERMINATED/UPSTREAM_CANCELED", Cancelled),
            ("TERMINATED/DISABLED", Cancelled),
            ("status:BLOCKED", Pending),
            ("status:PENDING", Pending),
            ("status:QUEUED", Pending),
            ("status:WAITING", Pending),
            ("status:RUNNING", Running),
            ("status:TERMINATING", Running),
            ("status:TERMINATED/SUCCESS", Succeeded),
            ("status:TERMINATED/SUCCESS_WITH_FAILURES", Succeeded),
            ("status:TERMINATED/USER_CANCELED", Cancelled),
            ("status:TERMINATED/CANCELED", Cancelled),
            ("status:TERMINATED/SKIPPED", Cancelled),
            ("status:TERMINATED/DISABLED", Cancelled),
        ]
        .iter()
        .map(|(raw, state)| (raw.to_string(), *state))
        .collect();
        // Every other termination code names a failure.
        for code in [
            "BREAKING_CHANGE",
            "BUDGET_POLICY_LIMIT_EXCEEDED",
            "CLOUD_FAILURE",
            "CLUSTER_ERROR",
            "CLUSTER_REQUEST_LIMIT_EXCEEDED",
            "CLUSTER_TERMINATED_BY_USER",
            "DRIVER_ERROR",
            "FEATURE_DISABLED",
            "INTERNAL_ERROR",
            "INVALID_CLUSTER_REQUEST",
            "INVALID_RUN_CONFIGURATION",
            "LIBRARY_INSTALLATION_ERROR",
            "MAX_CONCURRENT_RUNS_EXCEEDED",
            "MAX_JOB_QUEUE_SIZE_EXCEEDED",
            "MAX_SPARK_CONTEXTS_EXCEEDED",
            "REPOSITORY_CHECKOUT_FAILED",
            "RESOURCE_NOT_FOUND",
            "RUN_EXECUTION_ERROR",
            "STORAGE_ACCESS_ERROR",
            "UNAUTHORIZED_ERROR",
            "WORKSPACE_RUN_LIMIT_EXCEEDED",
        ] {
            states.push((format!("status:TERMINATED/{code}"), Failed));
        }
        states
    }

    /// A one-time run; an update of the pipeline named after `name` (each name its own
    /// pipeline, as a pipeline runs one update at a time); a statement on a warehouse.
    fn sample_spec(&self, kind: &str, name: &str) -> Value {
        match kind {
            crate::pipelines::KIND => {
                json!({"pipeline_id": pipelines::pipeline_for(name), "full_refresh": false})
            }
            crate::statements::KIND => json!({
                "warehouse_id": SAMPLE_WAREHOUSE,
                "statement": format!("SELECT '{}' AS job", name.replace('\'', "''")),
            }),
            _ => json!({"run_name": name,
                "tasks": [{"task_key": "t", "spark_python_task": {"python_file": "dbfs:/sim.py"}}]}),
        }
    }

    async fn start(
        &self,
        _kind: &str,
        options: registry::SimOptions,
    ) -> std::io::Result<Box<dyn registry::RunningSim>> {
        let lifetimes = Lifetimes::of(&options);
        let mut config = SimConfig {
            pending: options.pending,
            running: options.running,
            outcome: match options.outcome {
                registry::SimOutcome::Succeed => "SUCCESS".into(),
                registry::SimOutcome::Fail => "FAILED".into(),
                registry::SimOutcome::Named(state) => state,
            },
            ..SimConfig::default()
        };
        for (key, value) in options.switches {
            match (key.as_str(), value) {
                ("token", Setting::String(token)) => config.token = token,
                (key, _) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("the databricks simulator takes no {key:?} (it takes a token)"),
                    ))
                }
            }
        }
        let port = options.port.unwrap_or(DEFAULT_PORT);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let sim = Simulator::start_with(config, lifetimes, addr).await?;
        Ok(Box::new(sim))
    }
}

impl registry::RunningSim for Simulator {
    fn url(&self) -> String {
        self.0.url()
    }

    fn banner(&self) -> Vec<String> {
        let (url, token) = (self.url(), self.lock().config.token.clone());
        vec![
            format!("Databricks simulator on {url} (token {token:?}); stats at {url}/_sim/stats"),
            format!("Use it with: [providers.databricks] host = \"{url}\", token = \"{token}\""),
        ]
    }

    fn settings(&self, _kind: &str) -> Table {
        let token = self.lock().config.token.clone();
        Table::from([
            ("host".to_string(), Setting::String(self.url())),
            ("token".to_string(), Setting::String(token)),
        ])
    }

    fn env(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    fn inject(&self, fault: registry::SimFault) {
        let secs = |d: Option<Duration>| d.map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0));
        let kind = match fault.kind {
            registry::SimFaultKind::Throttle(after) => FaultKind::Status {
                code: 429,
                retry_after: secs(after),
            },
            registry::SimFaultKind::Unavailable(after) => FaultKind::Status {
                code: 503,
                retry_after: secs(after),
            },
            registry::SimFaultKind::ServerError => FaultKind::Status {
                code: 500,
                retry_after: None,
            },
            registry::SimFaultKind::Delay(by) => FaultKind::Delay(by),
            registry::SimFaultKind::FailAfterProcessing => FaultKind::FailAfterProcessing,
            registry::SimFaultKind::Drop => FaultKind::Drop,
        };
        let endpoint = match fault.calls {
            registry::SimCalls::All => None,
            registry::SimCalls::Submits => Some(Endpoint::Submit),
            registry::SimCalls::Cancels => Some(Endpoint::Cancel),
        };
        self.0.inject_lasting(
            Fault {
                endpoint,
                kind,
                times: fault.times,
            },
            fault.lasting,
        );
    }

    fn clear_faults(&self) {
        self.0.clear_faults();
    }

    fn jobs_by_key(&self) -> BTreeMap<String, u64> {
        self.lock().harness.counters.by_key.clone()
    }

    fn jobs_for_key(&self, key: &str) -> u64 {
        self.lock().harness.counters.jobs_for_key(key)
    }

    fn job_state(&self, handle: &tether_provider::Handle) -> Option<registry::SimJobState> {
        {
            let mut inner = self.lock();
            if let Some(life) = inner.life_mut(handle) {
                return Some(match life.phase(Instant::now()) {
                    Phase::Pending | Phase::Running => registry::SimJobState::Running,
                    Phase::Cancelled => registry::SimJobState::Cancelled,
                    Phase::Ended => match life.outcome.as_str() {
                        "SUCCESS" | "COMPLETED" | "SUCCEEDED" | "CLOSED" => {
                            registry::SimJobState::Succeeded
                        }
                        "CANCELED" => registry::SimJobState::Cancelled,
                        _ => registry::SimJobState::Failed,
                    },
                });
            }
        }
        let run_id = handle.get_i64("run_id")?;
        let inner = self.lock();
        let (_, result, _) = inner.runs.get(&run_id)?.state(Instant::now());
        Some(match result.as_deref() {
            None => registry::SimJobState::Running,
            Some("SUCCESS") => registry::SimJobState::Succeeded,
            Some("CANCELED") => registry::SimJobState::Cancelled,
            Some(_) => registry::SimJobState::Failed,
        })
    }

    fn set_state(&self, handle: &tether_provider::Handle, raw: &str) -> bool {
        if let Some(life) = self.lock().life_mut(handle) {
            life.forced = Some(raw.to_string());
            return true;
        }
        self.with_run(handle, |run| run.forced = Some(raw.to_string()))
    }

    fn forget(&self, handle: &tether_provider::Handle) -> bool {
        let mut inner = self.lock();
        if let Some(id) = handle.get_str("update_id") {
            return inner.updates.remove(&id);
        }
        if let Some(id) = handle.get_str("statement_id") {
            return inner.statements.remove(&id);
        }
        let Some(run_id) = handle.get_i64("run_id") else {
            return false;
        };
        inner.runs.remove(&run_id).is_some()
    }

    fn hide_from_lists(&self, handle: &tether_provider::Handle) -> bool {
        if let Some(life) = self.lock().life_mut(handle) {
            life.hidden = true;
            return true;
        }
        self.with_run(handle, |run| run.hidden = true)
    }

    fn lie_in_lists(&self, on: bool) {
        self.configure(|c| c.lists_report_success = on);
    }

    fn counts(&self) -> registry::SimCounts {
        self.lock().harness.counters.counts()
    }
}
