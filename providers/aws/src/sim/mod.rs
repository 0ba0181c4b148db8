//! Simulators of EMR steps, EMR Serverless job runs, Glue job runs, Batch jobs, ECS tasks,
//! Step Functions executions, SageMaker training and processing jobs, EMR on EKS job runs,
//! Redshift Data API statements and Athena queries, on one loopback port: the harness here, each service in a
//! module of its own with a function per operation.
//!
//! Every request's SigV4 signature is checked against the configured key pair (a wrong secret
//! gets AWS's `InvalidSignatureException`, an unknown key `UnrecognizedClientException`).
//! Jobs move through each service's states on a schedule and end as configured; EMR
//! Serverless deduplicates `clientToken` as AWS documents; submissions and cancels are
//! counted (in all, and per idempotency key) and served at `GET /_sim/stats`; throttling,
//! unavailability, server errors, slow answers, connections dropped mid-answer and a submit
//! processed but answered with 500 can be injected, for submits only or for every request.
//! JSON 1.1 requests are routed by `X-Amz-Target`, EMR Serverless and Batch by their REST
//! paths.
//!
//! Batch's `DescribeJobs` and ECS's `DescribeTasks` read many jobs at once: asked about more
//! than one, they count as list calls, leave out hidden jobs and lie with the lists.

mod athena;
mod batch;
mod ecs;
mod emr;
mod emr_containers;
mod emr_serverless;
mod events;
mod glue;
mod redshift_data;
mod sagemaker;
mod service;
mod sigv4;
mod states;
mod stepfunctions;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};

use tether_provider::registry;
use tether_provider::settings::{Setting, Table};
use tether_provider::sim::{self as harness, Harness, Hosted, Lifetimes, Simulated};
use tether_provider::JobState;

use crate::config::Service;
pub use events::{EventFault, EventQueue};
use service::Request;
pub use tether_provider::sim::EventFaultKind;

/// How the simulator behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The access key id it accepts.
    pub access_key_id: String,
    /// Its secret.
    pub secret_access_key: String,
    /// Time a new job spends before RUNNING.
    pub pending: Duration,
    /// Time it spends RUNNING.
    pub running: Duration,
    /// Whether jobs end successfully.
    pub succeed: bool,
    /// List calls (`ListSteps`, `ListJobRuns`, `GetJobRuns`) report every job as finished
    /// successfully, whatever its real state: a list that lies, as an eventually consistent
    /// one may lag, to prove that tether never records a terminal state from a list alone.
    pub lists_report_success: bool,
    /// Where the jobs' EventBridge events go (none: no events are sent). Read when the
    /// simulator starts.
    pub events: Option<EventQueue>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            access_key_id: "AKIATETHERSIMULATOR".into(),
            secret_access_key: "tether-simulator-secret-key-0123456789".into(),
            pending: Duration::from_secs(2),
            running: Duration::from_secs(10),
            succeed: true,
            lists_report_success: false,
            events: None,
        }
    }
}

/// What goes wrong, for the next `times` requests to `service` (or any).
#[derive(Debug, Clone)]
pub struct Fault {
    /// Which service; `None` for all.
    pub service: Option<Service>,
    /// Which requests of the service: every one, submits or cancels only.
    pub calls: Calls,
    /// What.
    pub kind: FaultKind,
    /// How many requests.
    pub times: u32,
    /// The `Retry-After` header of throttled and unavailable answers.
    pub retry_after: Option<Duration>,
}

impl Fault {
    /// `kind` for the next `times` requests to any service.
    pub fn new(kind: FaultKind, times: u32) -> Self {
        Self {
            service: None,
            calls: Calls::All,
            kind,
            times,
            retry_after: None,
        }
    }

    /// Only for `service`.
    pub fn on(mut self, service: Service) -> Self {
        self.service = Some(service);
        self
    }

    /// Only for submit requests.
    pub fn submits_only(mut self) -> Self {
        self.calls = Calls::Submits;
        self
    }

    /// Only for cancel requests.
    pub fn cancels_only(mut self) -> Self {
        self.calls = Calls::Cancels;
        self
    }

    /// With a `Retry-After` header (whole seconds, rounded up).
    pub fn retry_after(mut self, wait: Option<Duration>) -> Self {
        self.retry_after = wait;
        self
    }
}

/// Which requests a [`Fault`] applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calls {
    /// Every request.
    All,
    /// Submits: `AddJobFlowSteps`, `StartJobRun` (Glue and EMR Serverless).
    Submits,
    /// Cancels: `CancelSteps`, `BatchStopJobRun`, EMR Serverless `CancelJobRun`.
    Cancels,
}

/// Kinds of injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// AWS throttling: JSON 1.1 `400 ThrottlingException`, REST `429`.
    Throttle,
    /// `503 ServiceUnavailableException`, before processing.
    Unavailable,
    /// `500 InternalFailure` before processing.
    ServerError,
    /// Answer normally, after this long.
    Delay(Duration),
    /// Process the request (a submit creates its job), then answer `500`.
    FailAfterProcessing,
    /// Process the request, then answer this service's own "timed out" error (Glue's
    /// `400 OperationTimeoutException`, "The operation timed out."; other services' `408
    /// RequestTimeoutException`): an error whose status says nothing of whether the request
    /// ran.
    TimedOutAfterProcessing,
    /// Process the request, then answer `503 ServiceUnavailableException`: AWS documents
    /// that an exception of a server issue may come "after the resources are mutated".
    UnavailableAfterProcessing,
    /// Send the status line, then cut the connection before the body (nothing processed).
    Drop,
}

/// The counters (the harness's requests, cancels and jobs per key, and the simulator's own),
/// as `GET /_sim/stats` shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SimStats {
    /// Jobs created, by service kind (the harness counts them in all).
    pub submissions: HashMap<String, u64>,
    /// Jobs created per idempotency key, as each service carries it: the bracketed tag of an
    /// EMR step's name, EMR Serverless' `clientToken`, Glue's `--tether-key` argument. More
    /// than one for a key is a duplicate submission.
    pub by_key: BTreeMap<String, u64>,
    /// Cancel requests that reached a job.
    pub cancels: u64,
    /// Requests refused for their signature or key.
    pub rejected_signatures: u64,
    /// Requests received.
    pub requests: u64,
    /// List requests (`ListSteps`, `ListJobRuns`, `GetJobRuns`).
    pub list_requests: u64,
    /// Single status requests (`DescribeStep`, `GetJobRun`).
    pub status_requests: u64,
}

#[derive(Debug)]
struct SimJob {
    service: Service,
    id: String,
    /// Cluster id, application id or Glue job name.
    parent: String,
    name: String,
    arguments: Value,
    created: Instant,
    /// Seconds since the epoch, as AWS reports creation times.
    created_at: f64,
    pending: Duration,
    running: Duration,
    succeed: bool,
    cancelled: bool,
    /// The state it reports whatever its schedule says ([`registry::RunningSim::set_state`]).
    forced: Option<String>,
    /// Left out of list calls ([`registry::RunningSim::hide_from_lists`]).
    hidden: bool,
    /// When a client last read it (a status or list call): what `?fresh_within` counts.
    last_seen: Option<Instant>,
    /// When it was cancelled.
    cancelled_at: Option<Instant>,
    /// Its record was removed to make room (EMR keeps the records of a cluster's last 1,000
    /// steps): forgotten, whatever the retention.
    evicted: bool,
    /// The state its last event was made for (`events.rs`).
    emitted: Option<String>,
}

impl SimJob {
    fn state(&self) -> &str {
        if let Some(forced) = &self.forced {
            return forced;
        }
        let age = self.created.elapsed();
        let phase = if self.cancelled {
            3
        } else if age < self.pending {
            0
        } else if age < self.pending + self.running {
            1
        } else if self.succeed {
            2
        } else {
            4
        };
        states::lifecycle(self.service)[phase]
    }

    fn finished(&self) -> bool {
        self.cancelled || self.created.elapsed() >= self.pending + self.running
    }

    /// Marks it cancelled now, unless it ended.
    fn cancel(&mut self) {
        if !self.finished() {
            self.cancelled = true;
            self.cancelled_at = Some(Instant::now());
        }
    }

    /// When it ends (or ended), as its schedule or a cancel tells.
    fn end(&self) -> Option<Instant> {
        if self.cancelled {
            return self.cancelled_at;
        }
        Some(self.created + self.pending + self.running)
    }
}

/// The simulator's state (behind [`Simulator`]).
#[derive(Debug)]
pub struct Inner {
    config: SimConfig,
    jobs: Vec<SimJob>,
    /// Position in `jobs` by job id (ids are unique across services): lookups stay cheap
    /// with many jobs.
    by_id: HashMap<String, usize>,
    /// Positions in `jobs` by (service, cluster / application / Glue job), ascending: what
    /// the list calls page through.
    by_parent: HashMap<(Service, String), Vec<usize>>,
    client_tokens: HashMap<(String, String), String>,
    /// ECS: the answer of a `RunTask` that placed no task, by (cluster, clientToken): ECS
    /// returns the original request's result to a retry with the same token (for 24 hours).
    refused_tokens: HashMap<(String, String), Value>,
    /// ECS: the (cluster, task definition) pairs whose first placement failed already.
    placements_failed: std::collections::HashSet<(String, String)>,
    /// Faults, the common counters, and when jobs can be read.
    harness: Harness<Fault>,
    /// Its own counters (the common fields are the harness's, filled in by [`Inner::stats`]).
    stats: SimStats,
    /// The events sent, and the faults to apply to the next ones (`events.rs`).
    emitted: events::Emitted,
}

impl Inner {
    /// Every counter.
    fn stats(&self) -> SimStats {
        let c = &self.harness.counters;
        SimStats {
            by_key: c.by_key.clone(),
            cancels: c.cancels,
            requests: c.requests,
            ..self.stats.clone()
        }
    }

    /// The position of the job `id` names, if a client can read it now: not while the
    /// service does not show it yet, nor once it forgot it ([`Lifetimes::readable`]). Every
    /// lookup of a request goes through here.
    fn lookup(&self, id: &str) -> Option<usize> {
        let i = *self.by_id.get(id)?;
        self.readable(i).then_some(i)
    }

    /// The position of the job `id` names while the service holds it: visible or not yet,
    /// but not forgotten (what a name or token must not repeat).
    fn held(&self, id: &str) -> Option<usize> {
        let i = *self.by_id.get(id)?;
        let job = &self.jobs[i];
        self.harness
            .lifetimes
            .held(job.end(), Instant::now())
            .then_some(i)
    }

    /// The job an earlier start with the client token `token` in `scope` made, or else the
    /// one `make` makes now, remembered under the token (a repeated start answers its first
    /// job).
    fn once_per_token(
        &mut self,
        scope: String,
        token: &str,
        make: impl FnOnce(&mut Inner) -> String,
    ) -> String {
        let key = (scope, token.to_string());
        if let Some(id) = self.client_tokens.get(&key) {
            return id.clone();
        }
        let id = make(self);
        self.client_tokens.insert(key, id.clone());
        id
    }

    /// Counts a read of `n` jobs at once, `field` of the request naming them (more than one
    /// counts as a list call, as a sweep's does), and says whether the lying-list fault
    /// applies to it; or why the service refuses it (`n` outside 1 to `max` `what`).
    fn count_read(
        &mut self,
        n: usize,
        (field, max, what): (&str, usize, &str),
    ) -> Result<bool, String> {
        if n == 0 || n > max {
            return Err(format!("{field} must hold 1 to {max} {what}, not {n}"));
        }
        if n > 1 {
            self.stats.list_requests += 1;
        } else {
            self.stats.status_requests += 1;
        }
        Ok(n > 1 && self.config.lists_report_success)
    }

    /// Whether the job at `i` can be read now.
    fn readable(&self, i: usize) -> bool {
        let job = &self.jobs[i];
        !job.evicted
            && self
                .harness
                .lifetimes
                .readable(job.created, job.end(), Instant::now())
    }
}

/// The state the server answers from.
type Shared = Arc<Mutex<Inner>>;

/// A running simulator: its state and server ([`Hosted`]: `url`, `inject`, `clear_faults`,
/// `set_lifetimes`, `jobs_for_key`), what only this simulator tells, and the task sending its
/// events when [`SimConfig::events`] names a queue.
#[derive(Debug)]
pub struct Simulator(
    Hosted<Inner>,
    // Held for its drop: the events task stops with the simulator.
    #[allow(dead_code)] Option<tether_provider::sim::Emitter>,
);

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
    /// Serves on `addr` (port 0 picks one), every job readable at once and kept for ever.
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
            jobs: Vec::new(),
            by_id: HashMap::new(),
            by_parent: HashMap::new(),
            client_tokens: HashMap::new(),
            refused_tokens: HashMap::new(),
            placements_failed: Default::default(),
            harness: Harness::new(lifetimes),
            stats: SimStats::default(),
            emitted: events::Emitted::default(),
        };
        let queue = inner.config.events.clone();
        let mut state = None;
        let app = |shared: Shared| {
            state = Some(shared.clone());
            axum::Router::new().fallback(handle).with_state(shared)
        };
        let hosted = Hosted::start("aws", inner, app, addr).await?;
        let emitter = match (queue, state) {
            (Some(queue), Some(state)) => Some(events::spawn(state, queue)?),
            _ => None,
        };
        Ok(Self(hosted, emitter))
    }

    /// Applies `fault` to the next events sent (dropped, repeated or delayed).
    pub fn inject_event_fault(&self, fault: EventFault) {
        self.lock().emitted.inject(fault);
    }

    /// Events handed to the queue so far (a repeated one counts twice), and those that could
    /// not be sent.
    pub fn events_sent(&self) -> (u64, u64) {
        let inner = self.lock();
        (inner.emitted.sent, inner.emitted.failed)
    }

    /// The counters.
    pub fn stats(&self) -> SimStats {
        self.lock().stats()
    }

    /// Jobs created for one service.
    pub fn submissions(&self, service: Service) -> u64 {
        self.lock()
            .stats
            .submissions
            .get(service.kind())
            .copied()
            .unwrap_or(0)
    }

    /// Changes timings and outcome of jobs created from now on.
    pub fn configure(&self, f: impl FnOnce(&mut SimConfig)) {
        f(&mut self.lock().config);
    }

    /// The state of a job now (`None`: no such job).
    pub fn job_state(&self, id: &str) -> Option<String> {
        let inner = self.lock();
        let i = *inner.by_id.get(id)?;
        Some(inner.jobs[i].state().to_string())
    }
}

/// An AWS error answer: JSON 1.1 style body plus the REST header.
fn aws_error(status: StatusCode, kind: &str, message: &str) -> Response {
    let mut r = (status, Json(json!({"__type": kind, "message": message}))).into_response();
    r.headers_mut()
        .insert("x-amzn-errortype", kind.parse().expect("ascii"));
    r
}

/// A REST service's 404 `ResourceNotFoundException` (EMR Serverless, EMR on EKS).
fn not_found(what: String) -> Box<Response> {
    Box::new(aws_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        &what,
    ))
}

/// What a request does, as far as faults tell requests apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Submit,
    Cancel,
    Other,
}

impl Calls {
    /// Whether a fault for these calls applies to `call`.
    fn cover(self, call: Call) -> bool {
        matches!(
            (self, call),
            (Calls::All, _) | (Calls::Submits, Call::Submit) | (Calls::Cancels, Call::Cancel)
        )
    }
}

/// A throttled or unavailable answer, with `Retry-After` when the fault has one.
fn refusal(fault: &Fault, service: Service) -> Response {
    let response = match fault.kind {
        FaultKind::Throttle if service::about(service).rest() => aws_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            "Rate exceeded",
        ),
        FaultKind::Throttle => aws_error(
            StatusCode::BAD_REQUEST,
            "ThrottlingException",
            "Rate exceeded",
        ),
        _ => aws_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            "Service is unavailable, try again later",
        ),
    };
    harness::with_retry_after(response, fault.retry_after)
}

/// The counters, and the events sent and failed; with `?fresh_within=S`, also `active_runs`
/// and `fresh_runs` (jobs not finished, and those of them a client read within the last S
/// seconds), so that a benchmark can tell whether every job is polled within its cadence.
fn stats_body(inner: &Inner, query: Option<&str>) -> Value {
    let mut body = serde_json::to_value(inner.stats()).expect("stats serialise");
    body["events_sent"] = json!(inner.emitted.sent);
    body["events_failed"] = json!(inner.emitted.failed);
    let fresh_within = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "fresh_within")
        .and_then(|(_, v)| v.parse::<f64>().ok());
    if let Some(secs) = fresh_within {
        let now = Instant::now();
        let window = Duration::from_secs_f64(secs.max(0.0));
        let (mut total, mut fresh) = (0u64, 0u64);
        for job in inner.jobs.iter().filter(|j| !j.finished()) {
            total += 1;
            if job
                .last_seen
                .is_some_and(|t| now.duration_since(t) <= window)
            {
                fresh += 1;
            }
        }
        body["active_runs"] = json!(total);
        body["fresh_runs"] = json!(fresh);
    }
    body
}

/// `POST /_sim/jobs/end` with `{"ids": [...]}`: the named jobs (any service's ids) that
/// have not ended end now, as their schedules say (succeeded, or failed when the simulator
/// fails its jobs); answers `{"ended": [{"id", "end_time"}]}`, the end time in ms since the
/// epoch, so that a benchmark can tell how long after an end tether knew of it (the
/// Databricks simulator's `/_sim/runs/end`).
fn end_jobs(inner: &Shared, body: &[u8]) -> Response {
    let ids: Vec<String> = match serde_json::from_slice::<Value>(body) {
        Ok(v) => v["ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|id| id.as_str().map(str::to_string))
            .collect(),
        Err(_) => {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "SerializationException",
                "the body is not JSON: {\"ids\": [...]}",
            )
        }
    };
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let end_time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let mut ended = Vec::new();
    for id in ids {
        let Some(&i) = guard.by_id.get(&id) else {
            continue;
        };
        let job = &mut guard.jobs[i];
        if job.finished() || job.forced.is_some() {
            continue;
        }
        let age = job.created.elapsed();
        job.pending = job.pending.min(age);
        job.running = age - job.pending;
        ended.push(json!({"id": id, "end_time": end_time}));
    }
    Json(json!({ "ended": ended })).into_response()
}

async fn handle(
    State(inner): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method == Method::GET && uri.path() == "/_sim/stats" {
        let guard = inner.lock().expect("simulator mutex poisoned");
        return Json(stats_body(&guard, uri.query())).into_response();
    }
    if method == Method::POST && uri.path() == "/_sim/jobs/end" {
        return end_jobs(&inner, &body);
    }
    let (service, target, fault) = match admit(&inner, &method, &uri, &headers, &body) {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    if let Some(FaultKind::Delay(wait)) = fault {
        tokio::time::sleep(wait).await;
    }
    let input: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => {
                return aws_error(
                    StatusCode::BAD_REQUEST,
                    "SerializationException",
                    "the body is not JSON",
                )
            }
        }
    };
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let request = Request {
        method: &method,
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        target: target.as_deref().unwrap_or(""),
    };
    let response = service::of(service).call(&mut guard, &request, &input);
    match (fault, response) {
        (Some(FaultKind::FailAfterProcessing), _) => aws_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            "simulated failure after processing",
        ),
        (Some(FaultKind::UnavailableAfterProcessing), _) => aws_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            "simulated: the service was unavailable after the request was processed",
        ),
        (Some(FaultKind::TimedOutAfterProcessing), _) if service == Service::Glue => aws_error(
            StatusCode::BAD_REQUEST,
            "OperationTimeoutException",
            "The operation timed out.",
        ),
        (Some(FaultKind::TimedOutAfterProcessing), _) => aws_error(
            StatusCode::REQUEST_TIMEOUT,
            "RequestTimeoutException",
            "simulated: the request timed out after it was processed",
        ),
        (_, Ok(v)) => Json(v).into_response(),
        (_, Err(r)) => *r,
    }
}

/// Routes, checks the signature and takes a queued fault: the service, the JSON 1.1 target
/// and the fault to apply while processing; or the answer to send instead.
fn admit(
    inner: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Service, Option<String>, Option<FaultKind>), Box<Response>> {
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let service = match target.as_deref().and_then(|t| t.split('.').next()) {
        Some("ElasticMapReduce") => Service::Emr,
        Some("AWSGlue") => Service::Glue,
        Some(ecs::TARGET) => Service::Ecs,
        Some(stepfunctions::TARGET) => Service::StepFunctions,
        Some(redshift_data::TARGET) => Service::RedshiftData,
        Some(athena::TARGET) => Service::Athena,
        Some(sagemaker::TARGET) => sagemaker::service_of(target.as_deref().unwrap_or("")),
        _ if uri.path().starts_with("/virtualclusters/") => Service::EmrContainers,
        _ if uri.path().starts_with("/applications/") => Service::EmrServerless,
        _ if uri.path().starts_with("/v1/") => Service::Batch,
        _ => {
            guard.harness.counters.requests += 1;
            return Err(Box::new(aws_error(
                StatusCode::BAD_REQUEST,
                "UnknownOperationException",
                "no such operation",
            )));
        }
    };
    let signed = sigv4::verify(&guard.config, service, method, uri, headers, body);
    let request = Request {
        method,
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        target: target.as_deref().unwrap_or(""),
    };
    let call = service::about(service).call_of(&request);
    let admitted = guard.harness.admit(signed.is_ok(), |f| {
        f.service.is_none_or(|s| s == service) && f.calls.cover(call)
    });
    let fault = match (admitted, signed) {
        (Ok(fault), _) => fault,
        (Err(_), Err((kind, message))) => {
            guard.stats.rejected_signatures += 1;
            return Err(Box::new(aws_error(StatusCode::FORBIDDEN, kind, &message)));
        }
        (Err(_), Ok(())) => unreachable!("admitted unless the signature was refused"),
    };
    let Some(fault) = fault else {
        return Ok((service, target, None));
    };
    match fault.kind {
        FaultKind::Throttle | FaultKind::Unavailable => Err(Box::new(refusal(&fault, service))),
        FaultKind::ServerError => Err(Box::new(aws_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            "simulated failure",
        ))),
        FaultKind::Drop => Err(Box::new(harness::dropped_connection())),
        kind => Ok((service, target, Some(kind))),
    }
}

fn new_job(
    inner: &mut Inner,
    service: Service,
    id: String,
    parent: &str,
    name: &str,
    arguments: Value,
    client_token: &str,
) -> String {
    let c = inner.config.clone();
    let key = service::about(service)
        .key_in
        .of(name, &arguments, client_token);
    inner.harness.counters.job_made(Some(&key));
    inner.by_id.insert(id.clone(), inner.jobs.len());
    let position = inner.jobs.len();
    inner
        .by_parent
        .entry((service, parent.to_string()))
        .or_default()
        .push(position);
    inner.jobs.push(SimJob {
        service,
        id: id.clone(),
        parent: parent.to_string(),
        name: name.to_string(),
        arguments,
        created: Instant::now(),
        created_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        pending: c.pending,
        running: c.running,
        succeed: c.succeed,
        cancelled: false,
        forced: None,
        hidden: false,
        last_seen: None,
        cancelled_at: None,
        evicted: false,
        emitted: None,
    });
    *inner
        .stats
        .submissions
        .entry(service.kind().to_string())
        .or_default() += 1;
    id
}

fn find_job<'a>(
    inner: &'a mut Inner,
    service: Service,
    parent: &str,
    id: &str,
) -> Option<&'a mut SimJob> {
    let i = inner.lookup(id)?;
    let job = &mut inner.jobs[i];
    job.last_seen = Some(Instant::now());
    (job.service == service && job.parent == parent).then_some(job)
}

/// An error answer of an operation (boxed: a response is large).
type OpResult = Result<Value, Box<Response>>;

fn bad(kind: &str, message: String) -> Box<Response> {
    Box::new(aws_error(StatusCode::BAD_REQUEST, kind, &message))
}

/// One page of a parent's jobs, newest first, from `token` (an opaque position), keeping the
/// jobs `keep` accepts, at most `size`; and the next page's token. Pages never repeat or skip
/// a job when jobs are added meanwhile.
fn list_page(
    inner: &mut Inner,
    service: Service,
    parent: &str,
    token: Option<&str>,
    size: usize,
    keep: impl Fn(&SimJob) -> bool,
    render: fn(&SimJob) -> Value,
) -> Result<(Vec<Value>, Option<String>), Box<Response>> {
    list_page_then(
        inner,
        (service, parent),
        (token, size),
        (keep, |_| true),
        render,
    )
}

/// A list call's answer: the page's entries under `field`, and the next page's token under
/// `next_field` when there is one.
fn page_answer(
    field: impl Into<String>,
    entries: Vec<Value>,
    next_field: &str,
    next: Option<String>,
) -> OpResult {
    let mut out = serde_json::Map::new();
    out.insert(field.into(), Value::Array(entries));
    if let Some(t) = next {
        out.insert(next_field.to_string(), json!(t));
    }
    Ok(Value::Object(out))
}

/// As [`list_page`], then leaving out of the page the jobs `then` refuses: a service that
/// reads `size` jobs first and filters them after (SageMaker's `StatusEquals`), so that a
/// page may be short, or empty, while a next token follows.
fn list_page_then(
    inner: &mut Inner,
    (service, parent): (Service, &str),
    (token, size): (Option<&str>, usize),
    (keep, then): (impl Fn(&SimJob) -> bool, impl Fn(&SimJob) -> bool),
    render: fn(&SimJob) -> Value,
) -> Result<(Vec<Value>, Option<String>), Box<Response>> {
    inner.stats.list_requests += 1;
    let positions = inner
        .by_parent
        .get(&(service, parent.to_string()))
        .map_or(&[][..], Vec::as_slice);
    let end = match token {
        None => positions.len(),
        Some(t) => match t.parse::<usize>() {
            Ok(k) if k <= positions.len() => k,
            _ => return Err(bad("ValidationException", format!("invalid token {t:?}"))),
        },
    };
    let mut matching = positions[..end]
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, &i)| !inner.jobs[i].hidden && inner.readable(i) && keep(&inner.jobs[i]));
    let mut page = Vec::new();
    let mut seen = Vec::new();
    let mut last = end;
    for (k, &i) in matching.by_ref().take(size) {
        last = k;
        if !then(&inner.jobs[i]) {
            continue;
        }
        let mut entry = render(&inner.jobs[i]);
        if inner.config.lists_report_success {
            service::of(service).lie_success(&mut entry);
        }
        page.push(entry);
        seen.push(i);
    }
    let next = matching.next().is_some().then(|| last.to_string());
    let now = Instant::now();
    for i in seen {
        inner.jobs[i].last_seen = Some(now);
    }
    Ok((page, next))
}

/// A REST list call's query string (EMR Serverless, EMR on EKS).
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: &str) -> Self {
        Self(
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The first value of `k`.
    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    /// Every value of `k` (a repeated parameter, as `states`).
    fn all(&self, k: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The timestamp `k`, if given.
    fn time(&self, k: &str) -> Result<Option<f64>, Box<Response>> {
        self.get(k)
            .map(|t| {
                crate::timestamp(&json!(t))
                    .ok_or_else(|| bad("ValidationException", format!("{k}: not a timestamp: {t}")))
            })
            .transpose()
    }

    /// `maxResults`: 1 to 50, 50 if not given.
    fn size(&self) -> Result<usize, Box<Response>> {
        match self.get("maxResults") {
            None => Ok(50),
            Some(n) => page_size(&json!(n.parse::<u64>().ok()), 50, 50, "maxResults"),
        }
    }
}

/// A sample job's name from a test's `name`: each character `keep` refuses (the service's
/// name rule) becomes `-`.
fn sample_name(name: &str, keep: impl Fn(char) -> bool) -> String {
    name.chars()
        .map(|c| if keep(c) { c } else { '-' })
        .collect()
}

/// A page size within `1..=max`, `default` if not given.
fn page_size(
    value: &Value,
    default: usize,
    max: usize,
    name: &str,
) -> Result<usize, Box<Response>> {
    match value {
        Value::Null => Ok(default),
        v => match v.as_u64() {
            Some(n) if (1..=max as u64).contains(&n) => Ok(n as usize),
            _ => Err(bad(
                "ValidationException",
                format!("{name} must be between 1 and {max}, not {v}"),
            )),
        },
    }
}

/// The strings of the array field `k` of a JSON request body (ids to read or stop).
pub(super) fn texts<'a>(input: &'a Value, k: &str) -> Vec<&'a str> {
    input[k]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// The string field `k` of a JSON request body ("" when absent).
pub(super) fn text(input: &Value, k: &str) -> String {
    input
        .get(k)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// The AWS simulator, as the registry starts it ([`crate::FACTORY`]): one server for the
/// three services, whichever kind it is started for.
pub static SIMULATORS: Simulators = Simulators;

/// See [`SIMULATORS`].
#[derive(Debug)]
pub struct Simulators;

/// Where `tether sim emr | emr-serverless | glue` listens by default.
pub const DEFAULT_PORT: u16 = 8090;

#[async_trait::async_trait]
impl registry::SimFactory for Simulators {
    fn default_port(&self, _kind: &str) -> u16 {
        DEFAULT_PORT
    }

    /// The state enums of botocore's models, as each service's part of the simulator lists
    /// them and `providers/aws/src/state.rs` and the book's AWS page document them.
    fn documented_states(&self, kind: &str) -> Vec<(String, JobState)> {
        Service::from_kind(kind).map_or_else(Vec::new, |s| {
            states::documented(s)
                .map(|(raw, state)| (raw.to_string(), state))
                .collect()
        })
    }

    fn sample_spec(&self, kind: &str, name: &str) -> Value {
        Service::from_kind(kind).map_or(Value::Null, |s| service::of(s).sample_spec(name))
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
            ..SimConfig::default()
        };
        config.succeed = match options.outcome {
            registry::SimOutcome::Succeed => true,
            registry::SimOutcome::Fail => false,
            registry::SimOutcome::Named(state) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "the AWS simulator ends jobs in success or failure only, not {state:?}"
                    ),
                ))
            }
        };
        let mut switches = options.switches.clone();
        config.events = event_switches(&mut switches, &config)?;
        for (key, value) in switches {
            match (key.as_str(), value) {
                ("access_key_id", Setting::String(id)) => config.access_key_id = id,
                ("secret_access_key", Setting::String(secret)) => config.secret_access_key = secret,
                (key, _) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!(
                            "the AWS simulator takes no {key:?} (it takes an access key id and \
                             a secret access key, and event_queue_url, event_endpoint_url, \
                             event_region, event_access_key_id, event_secret_access_key)"
                        ),
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

/// The events switches (`event_queue_url`, and `event_endpoint_url`, `event_region`,
/// `event_access_key_id`, `event_secret_access_key` to reach it; the key pair defaults to the
/// simulator's own; `event_chaos_every`: every Nth event dropped, duplicated or delayed in
/// turn), taken out of `switches`: where the jobs' events go, if anywhere.
fn event_switches(switches: &mut Table, config: &SimConfig) -> std::io::Result<Option<EventQueue>> {
    let mut text = |key: &str| match switches.remove(key) {
        None => Ok(None),
        Some(Setting::String(s)) => Ok(Some(s)),
        Some(other) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "the AWS simulator's {key} must be a string, not {}",
                other.type_str()
            ),
        )),
    };
    let url = text("event_queue_url")?;
    let endpoint = text("event_endpoint_url")?;
    let region = text("event_region")?;
    let id = text("event_access_key_id")?;
    let secret = text("event_secret_access_key")?;
    let chaos_every = match switches.remove("event_chaos_every") {
        None => None,
        Some(Setting::Integer(n)) if n > 0 => Some(n as u64),
        Some(other) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                "the AWS simulator's event_chaos_every must be a whole number above 0, not {other}"
            ),
            ))
        }
    };
    let Some(url) = url else {
        return Ok(None);
    };
    let mut queue = EventQueue::new(
        &url,
        (
            id.as_deref().unwrap_or(&config.access_key_id),
            secret.as_deref().unwrap_or(&config.secret_access_key),
        ),
    );
    if let Some(endpoint) = endpoint {
        queue.endpoint = endpoint.trim_end_matches('/').to_string();
    }
    if let Some(region) = region {
        queue.region = region;
    }
    queue.chaos_every = chaos_every;
    Ok(Some(queue))
}

impl registry::RunningSim for Simulator {
    fn url(&self) -> String {
        self.0.url()
    }

    fn banner(&self) -> Vec<String> {
        let (url, key) = (self.url(), self.lock().config.access_key_id.clone());
        vec![
            format!(
                "AWS simulator (EMR, EMR Serverless, Glue, Batch, ECS, Step Functions, SageMaker, \
                 EMR on EKS) on {url}; it checks SigV4 with key \
                 {key}; stats at {url}/_sim/stats"
            ),
            format!(
                "Use it with: endpoint_url = \"{url}\" and AWS_ACCESS_KEY_ID / \
                 AWS_SECRET_ACCESS_KEY set to that key pair"
            ),
        ]
    }

    fn settings(&self, _kind: &str) -> Table {
        Table::from([
            ("region".to_string(), Setting::from("us-east-1")),
            ("endpoint_url".to_string(), Setting::String(self.url())),
        ])
    }

    fn env(&self) -> Vec<(String, String)> {
        let inner = self.lock();
        vec![
            (
                "AWS_ACCESS_KEY_ID".into(),
                inner.config.access_key_id.clone(),
            ),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                inner.config.secret_access_key.clone(),
            ),
        ]
    }

    fn inject(&self, fault: registry::SimFault) {
        let (kind, retry_after) = match fault.kind {
            registry::SimFaultKind::Throttle(after) => (FaultKind::Throttle, after),
            registry::SimFaultKind::Unavailable(after) => (FaultKind::Unavailable, after),
            registry::SimFaultKind::ServerError => (FaultKind::ServerError, None),
            registry::SimFaultKind::Delay(by) => (FaultKind::Delay(by), None),
            registry::SimFaultKind::FailAfterProcessing => (FaultKind::FailAfterProcessing, None),
            registry::SimFaultKind::Drop => (FaultKind::Drop, None),
        };
        let calls = match fault.calls {
            registry::SimCalls::All => Calls::All,
            registry::SimCalls::Submits => Calls::Submits,
            registry::SimCalls::Cancels => Calls::Cancels,
        };
        self.0.inject_lasting(
            Fault {
                calls,
                ..Fault::new(kind, fault.times).retry_after(retry_after)
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
        self.0.jobs_for_key(key)
    }

    fn job_state(&self, handle: &tether_provider::Handle) -> Option<registry::SimJobState> {
        let id = job_id(handle)?;
        let inner = self.lock();
        let job = &inner.jobs[*inner.by_id.get(&id)?];
        Some(if job.cancelled {
            registry::SimJobState::Cancelled
        } else if !job.finished() {
            registry::SimJobState::Running
        } else if job.succeed {
            registry::SimJobState::Succeeded
        } else {
            registry::SimJobState::Failed
        })
    }

    fn counts(&self) -> registry::SimCounts {
        self.lock().harness.counters.counts()
    }

    fn set_state(&self, handle: &tether_provider::Handle, raw: &str) -> bool {
        self.with_job(handle, |job| job.forced = Some(raw.to_string()))
    }

    fn forget(&self, handle: &tether_provider::Handle) -> bool {
        let Some(id) = job_id(handle) else {
            return false;
        };
        self.lock().by_id.remove(&id).is_some()
    }

    fn hide_from_lists(&self, handle: &tether_provider::Handle) -> bool {
        self.with_job(handle, |job| job.hidden = true)
    }

    fn lie_in_lists(&self, on: bool) {
        self.configure(|c| c.lists_report_success = on);
    }

    fn single_reads(&self, kind: &str) -> String {
        match kind {
            "batch" | "ecs" => "status_gather = \"0s\"\n".into(),
            _ => String::new(),
        }
    }
}

/// The id of the job a handle names: an EMR step's, a job run's, a Batch job's, a Redshift Data
/// statement's, an ECS task's
/// ARN.
fn job_id(handle: &tether_provider::Handle) -> Option<String> {
    handle
        .get_str("step_id")
        .or_else(|| handle.get_str("job_run_id"))
        .or_else(|| handle.get_str("job_id"))
        .or_else(|| handle.get_str("task_arn"))
        .or_else(|| handle.get_str("execution_arn"))
        .or_else(|| handle.get_str("statement_id"))
        .or_else(|| handle.get_str("query_execution_id"))
        .or_else(|| {
            let name = handle.get_str("training_job_name")?;
            Some(sagemaker::job_key(Service::SageMakerTraining, &name))
        })
        .or_else(|| {
            let name = handle.get_str("processing_job_name")?;
            Some(sagemaker::job_key(Service::SageMakerProcessing, &name))
        })
}

impl Simulator {
    /// Changes the job `handle` names; false if there is none.
    fn with_job(&self, handle: &tether_provider::Handle, f: impl FnOnce(&mut SimJob)) -> bool {
        let Some(id) = job_id(handle) else {
            return false;
        };
        let mut inner = self.lock();
        let Some(i) = inner.lookup(&id) else {
            return false;
        };
        f(&mut inner.jobs[i]);
        true
    }
}
