//! A Google Cloud simulator: BigQuery's jobs API and Dataproc's jobs and Serverless batches
//! on one loopback port, with Google's credentials checked as the real services check them.
//!
//! - `bigquery.rs`: jobs move PENDING -> RUNNING -> DONE on a schedule; `jobs.insert` takes
//!   the caller's job id and answers a second insert of it 409 `duplicate` (also once the
//!   job ended or was forgotten); a job outside the `US` and `EU` multi-regions is "not
//!   found" without its location; `jobs.list` filters by state and creation time only,
//!   newest first; `jobs.cancel` answers at once and the job ends `DONE`/`stopped` a moment
//!   later.
//! - `dataproc.rs`: jobs (`PENDING`, `RUNNING`, `DONE` or `ERROR`; `CANCEL_PENDING` then
//!   `CANCELLED`) and batches (`PENDING`, `RUNNING`, `SUCCEEDED` or `FAILED`; `CANCELLING`
//!   then `CANCELLED`, through the batch's operation), deduplicated by request id, their ids
//!   taken (409 `ALREADY_EXISTS`), listed with Dataproc's filters.
//! - here: the credentials, the error shape, the faults, the counters, the registry's view.
//!
//! Credentials: a request carries `Authorization: Bearer` with either a token this simulator
//! issued (its metadata server at `/computeMetadata/v1/.../token`, which wants
//! `Metadata-Flavor: Google`, or its OAuth token endpoint `/token`, which runs the JWT-bearer
//! exchange of a service account's signed assertion) or a service account's self-signed JWT
//! (what Google's libraries, `google-cloud-auth` among them, send), whose RS256 signature is
//! checked against the public key of the service account the simulator trusts, with its
//! expiry and scope. Its own service account's key is the workspace's test-only key pair:
//! the simulator writes it as a key file (`settings()` names it as `credentials_file`), so
//! every adapter pointed at it signs its tokens with the real signing path.
//!
//! `GET /_sim/stats` reports the counters (with `?fresh_within=S`, also `active_runs` and
//! `fresh_runs`: BigQuery jobs not finished, and those of them a client read within the last
//! S seconds); `POST /_sim/jobs/end` ends chosen jobs now. With an [`EventTopic`]
//! (`events.rs`), every state change is published to Pub/Sub as a log sink would.

mod bigquery;
mod dataproc;
mod events;

pub use events::{EventFault, EventTopic};
pub use tether_provider::sim::EventFaultKind;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tether_provider::registry;
use tether_provider::settings::{Setting, Table};
use tether_provider::sim::{self as harness, Counters, Harness, Hosted, Lifetimes, Simulated};
use tether_provider::JobState;

/// The project the simulator's jobs are made in unless a request names another.
pub const PROJECT: &str = "tether-sim";
/// The region its Dataproc jobs and batches run in unless a request names another.
pub const REGION: &str = "us-central1";
/// Its service account.
pub const CLIENT_EMAIL: &str = "tether-sim@tether-sim.iam.gserviceaccount.com";
/// Its service account's key id.
pub const KEY_ID: &str = "tether-sim-key-1";
/// The private key of its service account: the workspace's test-only key pair.
const PRIVATE_KEY: &str = include_str!("../../../core/testdata/test-only-rsa-key.pem");
/// Its public half.
const PUBLIC_KEY: &str = include_str!("../../../core/testdata/test-only-rsa-key.pub.pem");
/// Where `tether sim bigquery` listens by default.
pub const DEFAULT_PORT: u16 = 8092;

/// How the simulator behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Time a new job spends PENDING.
    pub pending: Duration,
    /// Time it spends RUNNING.
    pub running: Duration,
    /// How jobs end: `None` successfully, else `DONE` with this `errorResult.reason`.
    pub outcome: Option<String>,
    /// `jobs.list` reports every job it lists as `DONE` without error, whatever its real
    /// state: a list that lies, to prove that tether never records an end from a list alone.
    pub lists_report_success: bool,
    /// How long after `jobs.cancel` a job ends `stopped`.
    pub cancel_takes: Duration,
    /// Where the jobs' log entries are published (none: nowhere). Read when the simulator
    /// starts.
    pub events: Option<EventTopic>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            pending: Duration::from_secs(2),
            running: Duration::from_secs(10),
            outcome: None,
            lists_report_success: false,
            cancel_takes: Duration::from_millis(200),
            events: None,
        }
    }
}

/// Which requests a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `jobs.insert`.
    Insert,
    /// `jobs.get`.
    Get,
    /// `jobs.list`.
    List,
    /// `jobs.cancel`.
    Cancel,
}

/// What goes wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this status (and `Retry-After` seconds, if given) and Google's error.
    Status {
        /// The HTTP status (403 is BigQuery's `rateLimitExceeded`).
        code: u16,
        /// `Retry-After`, in seconds.
        retry_after: Option<u64>,
    },
    /// Answer normally, after this long.
    Delay(Duration),
    /// Send the status line, then cut the connection before the body.
    Drop,
    /// Process the request (an insert makes its job), then answer 503 `backendError`.
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

/// The simulator's counters: the harness's ([`Counters`]), and its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// What every simulator counts.
    #[serde(flatten)]
    pub common: Counters,
    /// `jobs.insert` requests, including those answered 409.
    pub insert_requests: u64,
    /// `jobs.get` requests.
    pub get_requests: u64,
    /// `jobs.list` requests.
    pub list_requests: u64,
    /// Access tokens issued (metadata server and token endpoint).
    pub tokens_issued: u64,
    /// Requests whose bearer was a self-signed JWT that verified.
    pub signed_tokens_verified: u64,
    /// Log entries published to the event topic (a repeated one counts twice).
    pub events_sent: u64,
    /// Log entries the topic refused or that could not reach it.
    pub events_failed: u64,
}

/// The simulator's state (behind [`Simulator`]).
#[derive(Debug)]
pub struct Inner {
    config: SimConfig,
    jobs: bigquery::Jobs,
    /// Dataproc's jobs and batches.
    runs: dataproc::Runs,
    /// Access tokens it issued.
    tokens: HashSet<String>,
    /// The service accounts it trusts: client email -> public key (PEM).
    trusted: HashMap<String, String>,
    harness: Harness<Fault>,
    stats: SimStats,
    /// The log entries' faults and counts (`events.rs`).
    emitted: events::Emitted,
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

impl Inner {
    /// Every counter.
    fn stats(&self) -> SimStats {
        SimStats {
            common: self.harness.counters.clone(),
            events_sent: self.emitted.sent,
            events_failed: self.emitted.failed,
            ..self.stats.clone()
        }
    }

    /// Whether `headers` carry a token it issued or a trusted service account's valid
    /// self-signed JWT.
    fn bearer_ok(&mut self, headers: &HeaderMap) -> bool {
        let Some(bearer) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        if self.tokens.contains(bearer) {
            return true;
        }
        let verified = self.verify_jwt(bearer, |claims| {
            claims["scope"].as_str().is_some_and(|s| {
                s.split(' ')
                    .any(|s| s.ends_with("/auth/cloud-platform") || s.ends_with("/auth/bigquery"))
            }) || claims["aud"]
                .as_str()
                .is_some_and(|a| a.contains("googleapis.com"))
        });
        if verified {
            self.stats.signed_tokens_verified += 1;
        }
        verified
    }

    /// Whether `token` is a JWT signed (RS256) by a trusted service account named in its
    /// `iss`, not expired, whose claims `claims_ok`.
    fn verify_jwt(&self, token: &str, claims_ok: impl Fn(&Value) -> bool) -> bool {
        use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
        // Some signers pad the segments with '='; JWTs are unpadded.
        let token = token
            .split('.')
            .map(|s| s.trim_end_matches('='))
            .collect::<Vec<_>>()
            .join(".");
        let Ok(head) = decode_header(&token) else {
            return false;
        };
        if head.alg != Algorithm::RS256 {
            return false;
        }
        let Some(iss) = unverified_claim(&token, "iss") else {
            return false;
        };
        let Some(pem) = self.trusted.get(&iss) else {
            return false;
        };
        let Ok(key) = DecodingKey::from_rsa_pem(pem.as_bytes()) else {
            return false;
        };
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_aud = false;
        validation.leeway = 60;
        match decode::<Value>(&token, &key, &validation) {
            Ok(data) => claims_ok(&data.claims),
            Err(_) => false,
        }
    }

    /// A new access token.
    fn issue_token(&mut self) -> String {
        let token = format!("ya29.sim-{:032x}", rand::random::<u128>());
        self.tokens.insert(token.clone());
        self.stats.tokens_issued += 1;
        token
    }
}

/// A claim of a JWT's payload, read without checking the signature (to find the key that
/// checks it).
fn unverified_claim(token: &str, claim: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims[claim].as_str().map(str::to_string)
}

/// Now, in ms since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The state the server answers from.
type Shared = Arc<Mutex<Inner>>;

/// A running simulator: its state and server ([`Hosted`]), the key file it wrote for its
/// service account (removed when it stops), and the task publishing its log entries when
/// [`SimConfig::events`] names a topic.
#[derive(Debug)]
pub struct Simulator {
    hosted: Hosted<Inner>,
    key_file: KeyFile,
    // Held for its drop: the publishing stops with the simulator.
    _emitter: Option<tether_provider::sim::Emitter>,
}

impl std::ops::Deref for Simulator {
    type Target = Hosted<Inner>;

    fn deref(&self) -> &Hosted<Inner> {
        &self.hosted
    }
}

/// A service account key file, removed when dropped.
#[derive(Debug)]
struct KeyFile(std::path::PathBuf);

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Simulator {
    /// Serves the simulator on `addr` (port 0 picks a free one), every job readable at once
    /// and kept for ever.
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
            jobs: bigquery::Jobs::default(),
            runs: dataproc::Runs::default(),
            tokens: HashSet::new(),
            trusted: HashMap::from([(CLIENT_EMAIL.to_string(), PUBLIC_KEY.to_string())]),
            harness: Harness::new(lifetimes),
            stats: SimStats::default(),
            emitted: events::Emitted::default(),
        };
        let topic = inner.config.events.clone();
        let mut state = None;
        let app = |shared: Shared| {
            state = Some(shared.clone());
            router(shared)
        };
        let hosted = Hosted::start("google", inner, app, addr).await?;
        let key_file = write_key_file(&hosted.url())?;
        let emitter = match (topic, state) {
            (Some(topic), Some(state)) => Some(events::spawn(state, topic)),
            _ => None,
        };
        Ok(Self {
            hosted,
            key_file,
            _emitter: emitter,
        })
    }

    /// Applies `fault` to the next log entries published (dropped, repeated or delayed).
    pub fn inject_event_fault(&self, fault: EventFault) {
        self.lock().emitted.inject(fault);
    }

    /// Log entries published so far (a repeated one counts twice), and those that could not
    /// be.
    pub fn events_sent(&self) -> (u64, u64) {
        let inner = self.lock();
        (inner.emitted.sent, inner.emitted.failed)
    }

    /// The counters so far.
    pub fn stats(&self) -> SimStats {
        self.lock().stats()
    }

    /// Changes the timings and outcome of jobs made from now on.
    pub fn configure(&self, f: impl FnOnce(&mut SimConfig)) {
        f(&mut self.lock().config);
    }

    /// Trusts another service account: its tokens, signed with the private half of
    /// `public_key_pem`, are accepted.
    pub fn trust(&self, client_email: &str, public_key_pem: &str) {
        self.lock()
            .trusted
            .insert(client_email.to_string(), public_key_pem.to_string());
    }

    /// Changes the BigQuery job, Dataproc job or batch `handle` names (its forced state and
    /// whether lists leave it out); false if there is none.
    fn with_job(
        &self,
        handle: &tether_provider::Handle,
        f: impl FnOnce(&mut Option<String>, &mut bool),
    ) -> bool {
        let mut inner = self.lock();
        if handle.get_str("region").is_some() {
            return match inner.runs.by_handle_mut(handle) {
                Some(run) => {
                    f(&mut run.forced, &mut run.hidden);
                    true
                }
                None => false,
            };
        }
        match inner.jobs.by_handle_mut(handle) {
            Some(job) => {
                f(&mut job.forced, &mut job.hidden);
                true
            }
            None => false,
        }
    }

    /// The path of the key file of the simulator's own service account.
    pub fn key_file(&self) -> &std::path::Path {
        &self.key_file.0
    }
}

/// Writes the simulator's service account key (a Google key file whose `token_uri` is the
/// simulator's own) to a file of its own, readable by its owner only.
fn write_key_file(url: &str) -> std::io::Result<KeyFile> {
    let port = url.rsplit(':').next().unwrap_or("0");
    let path = std::env::temp_dir().join(format!(
        "tether-sim-google-{}-{port}.json",
        std::process::id()
    ));
    let key = json!({
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": KEY_ID,
        "private_key": PRIVATE_KEY,
        "client_email": CLIENT_EMAIL,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": format!("{url}/token"),
    });
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write as _;
    let mut file = options.open(&path)?;
    file.write_all(serde_json::to_string_pretty(&key)?.as_bytes())?;
    Ok(KeyFile(path))
}

fn router(inner: Shared) -> Router {
    Router::new()
        .merge(bigquery::routes())
        .merge(dataproc::routes())
        .route("/token", post(exchange_token))
        .route(
            "/computeMetadata/v1/instance/service-accounts/default/token",
            get(metadata_token),
        )
        .route(
            "/computeMetadata/v1/project/project-id",
            get(metadata_project),
        )
        .route("/_sim/stats", get(stats))
        .route("/_sim/jobs/end", post(bigquery::end_jobs))
        .with_state(inner)
}

/// A handler's answer: `Err` holds the error (or fault) answered instead of the real one.
type Answer = Result<Response, Refusal>;

/// An answer that refuses a request (an error, or an injected fault), boxed.
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

/// Google's error answer: `{"error": {"code", "message", "errors": [{"message", "domain",
/// "reason"}], "status"}}`.
fn error(status: StatusCode, reason: &str, message: impl Into<String>) -> Response {
    let message = message.into();
    let canonical = match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    (
        status,
        Json(json!({"error": {
            "code": status.as_u16(),
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": canonical,
        }})),
    )
        .into_response()
}

/// BigQuery's answer to a value it refuses: 400 `invalid`.
fn invalid(message: impl Into<String>) -> Refusal {
    error(StatusCode::BAD_REQUEST, "invalid", message).into()
}

/// The answer to a request without valid credentials.
fn unauthenticated() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "authError",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
    )
}

/// Checks the credentials, then applies a queued fault for `endpoint`, if any. Returns the
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
        match endpoint {
            Endpoint::Insert => guard.stats.insert_requests += 1,
            Endpoint::Get => guard.stats.get_requests += 1,
            Endpoint::List => guard.stats.list_requests += 1,
            Endpoint::Cancel => {}
        }
        fault.map(|f| f.kind)
    };
    match fault {
        None => Ok(None),
        Some(FaultKind::Status { code, retry_after }) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let (reason, message) = match code {
                403 => ("rateLimitExceeded", "Exceeded rate limits: too many api requests per user per method for this user_method."),
                429 => ("rateLimitExceeded", "Too many requests"),
                503 => ("backendError", "Error encountered during execution. Retrying may solve the problem."),
                _ => ("internalError", "An internal error occurred and the request could not be completed."),
            };
            Err(harness::with_retry_after(
                error(status, reason, message),
                retry_after.map(Duration::from_secs),
            ))
        }
        Some(FaultKind::Delay(d)) => {
            tokio::time::sleep(d).await;
            Ok(None)
        }
        Some(FaultKind::Drop) => Err(harness::dropped_connection()),
        Some(other) => Ok(Some(other)),
    }
}

/// The answer after processing, when a [`FaultKind::FailAfterProcessing`] was queued: a 503
/// `backendError`, after which the request may have run.
fn respond_after(after: Option<FaultKind>, response: Response) -> Response {
    match after {
        Some(FaultKind::FailAfterProcessing) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "backendError",
            "Error encountered during execution. Retrying may solve the problem.",
        ),
        _ => response,
    }
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    assertion: String,
}

/// The OAuth token endpoint's JWT-bearer exchange (RFC 7523): a trusted service account's
/// assertion, signed RS256, for an access token.
async fn exchange_token(State(inner): State<Shared>, Form(form): Form<TokenForm>) -> Response {
    let oauth_error = |description: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": description})),
        )
            .into_response()
    };
    if form.grant_type != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
        return oauth_error("Unsupported grant type.");
    }
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let valid = guard.verify_jwt(&form.assertion, |claims| {
        claims["aud"]
            .as_str()
            .is_some_and(|a| a.ends_with("/token"))
            && claims["scope"].as_str().is_some_and(|s| !s.is_empty())
    });
    if !valid {
        return oauth_error("Invalid JWT Signature.");
    }
    let token = guard.issue_token();
    Json(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})).into_response()
}

/// The metadata server's token of the instance's service account: only for a request that
/// says `Metadata-Flavor: Google`, as the real one.
async fn metadata_token(State(inner): State<Shared>, headers: HeaderMap) -> Response {
    if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
        return (
            StatusCode::FORBIDDEN,
            "Missing Metadata-Flavor:Google header.",
        )
            .into_response();
    }
    let token = inner
        .lock()
        .expect("simulator mutex poisoned")
        .issue_token();
    (
        [("metadata-flavor", "Google")],
        Json(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})),
    )
        .into_response()
}

/// The metadata server's project id.
async fn metadata_project(headers: HeaderMap) -> Response {
    if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
        return (
            StatusCode::FORBIDDEN,
            "Missing Metadata-Flavor:Google header.",
        )
            .into_response();
    }
    ([("metadata-flavor", "Google")], PROJECT).into_response()
}

/// The counters; with `?fresh_within=S`, also `active_runs` and `fresh_runs` (BigQuery jobs
/// not finished, and those of them a client read within the last S seconds).
async fn stats(State(inner): State<Shared>, uri: axum::http::Uri) -> Response {
    let guard = inner.lock().expect("simulator mutex poisoned");
    let mut body = serde_json::to_value(guard.stats()).unwrap_or_default();
    let fresh_within = bigquery::param(&bigquery::params(&uri), "fresh_within")
        .and_then(|v| v.parse::<f64>().ok())
        .and_then(|s| Duration::try_from_secs_f64(s).ok());
    if let Some(within) = fresh_within {
        let (active, fresh) = guard.jobs.freshness(&guard.config, Instant::now(), within);
        body["active_runs"] = json!(active);
        body["fresh_runs"] = json!(fresh);
    }
    Json(body).into_response()
}

/// The simulators, as the registry starts them ([`crate::FACTORY`]).
pub static SIMULATORS: Simulators = Simulators;

/// See [`SIMULATORS`].
#[derive(Debug)]
pub struct Simulators;

#[async_trait::async_trait]
impl registry::SimFactory for Simulators {
    fn default_port(&self, _kind: &str) -> u16 {
        DEFAULT_PORT
    }

    /// BigQuery's `JobStatus.state` with the `errorResult.reason`s of an unsuccessful end;
    /// Dataproc's `JobStatus.State` and `Batch.State`; as `src/state.rs` documents them.
    fn documented_states(&self, kind: &str) -> Vec<(String, JobState)> {
        let table = match kind {
            crate::dataproc::JOB_KIND => crate::state::DATAPROC_JOB_STATES,
            crate::dataproc::BATCH_KIND => crate::state::DATAPROC_BATCH_STATES,
            _ => crate::state::BIGQUERY_STATES,
        };
        table
            .iter()
            .map(|&(raw, state)| (raw.to_string(), state))
            .collect()
    }

    fn sample_spec(&self, kind: &str, name: &str) -> Value {
        let file = format!("gs://tether-sim/{}.py", name.replace(['/', ' '], "_"));
        match kind {
            crate::dataproc::JOB_KIND => json!({"job": {
                "placement": {"clusterName": "tether-sim-cluster"},
                "pysparkJob": {"mainPythonFileUri": file},
            }}),
            crate::dataproc::BATCH_KIND => json!({"batch": {
                "pysparkBatch": {"mainPythonFileUri": file},
            }}),
            _ => json!({"configuration": {"query": {
                "query": format!("SELECT '{}' AS job", name.replace('\'', "\\'")),
                "useLegacySql": false,
            }}}),
        }
    }

    async fn start(
        &self,
        _kind: &str,
        options: registry::SimOptions,
    ) -> std::io::Result<Box<dyn registry::RunningSim>> {
        let lifetimes = Lifetimes::of(&options);
        let config = SimConfig {
            pending: options.pending,
            running: options.running,
            outcome: match options.outcome {
                registry::SimOutcome::Succeed => None,
                registry::SimOutcome::Fail => Some("invalidQuery".into()),
                registry::SimOutcome::Named(state) => {
                    let reason = state.strip_prefix("DONE/").unwrap_or(&state);
                    (reason != "DONE").then(|| reason.to_string())
                }
            },
            ..SimConfig::default()
        };
        let mut config = config;
        config.events = event_switches(options.switches)?;
        let port = options.port.unwrap_or(DEFAULT_PORT);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        Ok(Box::new(
            Simulator::start_with(config, lifetimes, addr).await?,
        ))
    }
}

/// The events switches (`event_topic`, `projects/P/topics/T`, with `event_pubsub_endpoint`, the
/// Pub/Sub emulator's URL; `event_chaos_every`: every Nth entry dropped, duplicated or delayed
/// in turn): where the jobs' log entries go, if anywhere. Anything else is refused by name.
fn event_switches(mut switches: Table) -> std::io::Result<Option<EventTopic>> {
    let invalid = |message: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, message);
    let mut text = |key: &str| match switches.remove(key) {
        None => Ok(None),
        Some(Setting::String(s)) => Ok(Some(s)),
        Some(other) => Err(invalid(format!(
            "the Google simulator's {key} must be a string, not {}",
            other.type_str()
        ))),
    };
    let topic = text("event_topic")?;
    let endpoint = text("event_pubsub_endpoint")?;
    let chaos_every = match switches.remove("event_chaos_every") {
        None => None,
        Some(Setting::Integer(n)) if n > 0 => Some(n as u64),
        Some(other) => {
            return Err(invalid(format!(
            "the Google simulator's event_chaos_every must be a whole number above 0, not {other}"
        )))
        }
    };
    if let Some(key) = switches.keys().next() {
        return Err(invalid(format!(
            "the Google simulator takes no {key:?} (it takes event_topic, event_pubsub_endpoint and \
             event_chaos_every)"
        )));
    }
    match (topic, endpoint) {
        (None, None) => Ok(None),
        (Some(topic), Some(endpoint)) => {
            let mut t = EventTopic::new(&endpoint, &topic).map_err(invalid)?;
            t.chaos_every = chaos_every;
            Ok(Some(t))
        }
        _ => Err(invalid(
            "the Google simulator's event_topic and event_pubsub_endpoint go together (the topic, \
             projects/P/topics/T, of the Pub/Sub emulator at the endpoint)"
                .into(),
        )),
    }
}

impl registry::RunningSim for Simulator {
    fn url(&self) -> String {
        self.hosted.url()
    }

    fn banner(&self) -> Vec<String> {
        let (url, key) = (self.url(), self.key_file().display().to_string());
        vec![
            format!(
                "Google Cloud simulator (BigQuery, Dataproc) on {url} (project {PROJECT:?}); \
                 stats at {url}/_sim/stats"
            ),
            format!("Its service account's key file: {key}"),
            format!(
                "Use it with: [providers.bigquery] project = \"{PROJECT}\", location = \"US\", \
                 endpoint = \"{url}\", credentials_file = \"{key}\""
            ),
            format!(
                "        or: [providers.dataproc-job] (or dataproc-batch) project = \"{PROJECT}\", \
                 location = \"{REGION}\", endpoint = \"{url}\", credentials_file = \"{key}\""
            ),
        ]
    }

    fn settings(&self, kind: &str) -> Table {
        let location = if kind.starts_with("dataproc") {
            REGION
        } else {
            "US"
        };
        Table::from([
            ("project".to_string(), Setting::String(PROJECT.into())),
            ("location".to_string(), Setting::String(location.into())),
            ("endpoint".to_string(), Setting::String(self.url())),
            (
                "credentials_file".to_string(),
                Setting::String(self.key_file().display().to_string()),
            ),
        ])
    }

    fn env(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    fn inject(&self, fault: registry::SimFault) {
        let secs = |d: Option<Duration>| d.map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0));
        let kind = match fault.kind {
            registry::SimFaultKind::Throttle(after) => FaultKind::Status {
                code: 403,
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
            registry::SimCalls::Submits => Some(Endpoint::Insert),
            registry::SimCalls::Cancels => Some(Endpoint::Cancel),
        };
        self.hosted.inject_lasting(
            Fault {
                endpoint,
                kind,
                times: fault.times,
            },
            fault.lasting,
        );
    }

    fn clear_faults(&self) {
        self.hosted.clear_faults();
    }

    fn jobs_by_key(&self) -> BTreeMap<String, u64> {
        self.lock().harness.counters.by_key.clone()
    }

    fn jobs_for_key(&self, key: &str) -> u64 {
        self.lock().harness.counters.jobs_for_key(key)
    }

    fn job_state(&self, handle: &tether_provider::Handle) -> Option<registry::SimJobState> {
        let inner = self.lock();
        let now = Instant::now();
        if handle.get_str("region").is_some() {
            return Some(inner.runs.by_handle(handle)?.truth(&inner.config, now));
        }
        Some(inner.jobs.by_handle(handle)?.truth(&inner.config, now))
    }

    fn set_state(&self, handle: &tether_provider::Handle, raw: &str) -> bool {
        self.with_job(handle, |forced, _| *forced = Some(raw.to_string()))
    }

    fn forget(&self, handle: &tether_provider::Handle) -> bool {
        let mut inner = self.lock();
        if handle.get_str("region").is_some() {
            return inner.runs.forget(handle);
        }
        inner.jobs.forget(handle)
    }

    fn hide_from_lists(&self, handle: &tether_provider::Handle) -> bool {
        self.with_job(handle, |_, hidden| *hidden = true)
    }

    fn lie_in_lists(&self, on: bool) {
        self.configure(|c| c.lists_report_success = on);
    }

    fn counts(&self) -> registry::SimCounts {
        self.lock().harness.counters.counts()
    }
}
