//! A Kubernetes API server simulator: the part of the API that tether and common clients
//! (kube-rs, `kubectl`, the official Python client) use, for any resource type.
//!
//! - `discovery.rs`: `/api`, `/apis` and each group version's resource list; built-in types
//!   (`Namespace`, `ConfigMap`, `batch/v1` `Job`, `CustomResourceDefinition`), the operators'
//!   types of tether's built-in conditions, and any type a created CRD defines.
//! - `store.rs`: every object under one `resourceVersion` sequence, the log of changes that
//!   watches replay (compacted: a watch from before it answers 410 Gone), label selectors.
//! - `api.rs`: create, get, list (`labelSelector`, `fieldSelector` on name and namespace,
//!   `limit`/`continue`), watch (bookmarks, `timeoutSeconds`, 410), patch, delete
//!   (`propagationPolicy`, `preconditions.uid`); the API's `Status` error bodies; names,
//!   labels and a Job's spec validated as the server validates them (422 `Invalid`).
//! - `controller.rs`: the Job controller (and the operators') moving statuses along, the
//!   TTL-after-finished deletion.
//! - here: the credentials (a bearer token, written with the server's address into a
//!   kubeconfig file that tether, `kubectl` and the Python client read), the faults, the
//!   counters, namespaces' termination, the registry's view.
//!
//! `GET /_sim/stats` reports the counters; `POST /_sim/compact` forgets the change log (every
//! resumed watch then answers 410 Gone); `POST /_sim/watches/close` ends every open watch;
//! `POST /_sim/jobs/end` (`{"uids": [...]}`) ends chosen resources now.

mod api;
mod controller;
mod discovery;
mod store;

pub use controller::{Outcome, JOB_STATES};

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tether_provider::registry;
use tether_provider::settings::{Setting, Table};
use tether_provider::sim::{self as harness, Counters, Harness, Hosted, Lifetimes, Simulated};
use tether_provider::JobState;

use controller::Controller;
use discovery::Types;
use store::{Key, Store};

/// Where `tether sim kubernetes` listens by default.
pub const DEFAULT_PORT: u16 = 8093;
/// The context (and cluster and user) its kubeconfig names.
pub const CONTEXT: &str = "tether-sim";
/// The namespaces it starts with.
pub const NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// How the simulator behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Time a new resource spends before it runs.
    pub pending: Duration,
    /// Time it runs.
    pub running: Duration,
    /// How resources end.
    pub outcome: Outcome,
    /// Lists report every Job they list as `Complete`, whatever its real state: a list that
    /// lies, to prove that tether never records an end from a list alone.
    pub lists_report_success: bool,
    /// How often a watch that asked for bookmarks gets one.
    pub bookmark_every: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            pending: Duration::from_secs(2),
            running: Duration::from_secs(10),
            outcome: Outcome::Succeed,
            lists_report_success: false,
            bookmark_every: Duration::from_secs(5),
        }
    }
}

/// Which requests a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// Creates (`POST` to a collection).
    Create,
    /// Reads of one object.
    Get,
    /// Lists.
    List,
    /// Watches.
    Watch,
    /// Deletes.
    Delete,
    /// Anything else (discovery, patches).
    Other,
}

/// What goes wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this status, `Status` reason and message (and `Retry-After` seconds).
    Status {
        /// The HTTP status.
        code: u16,
        /// The `Status` reason (`TooManyRequests`, `Forbidden`, ...).
        reason: String,
        /// Its message.
        message: String,
        /// `Retry-After`, in seconds.
        retry_after: Option<u64>,
    },
    /// Answer normally, after this long.
    Delay(Duration),
    /// Send the status line, then cut the connection before the body.
    Drop,
    /// Process the request (a create makes its object), then answer 504 `Timeout`.
    FailAfterProcessing,
}

/// A fault for the next `times` requests to `endpoint` (or to any).
#[derive(Debug, Clone)]
pub struct Fault {
    /// Where; `None` for every endpoint.
    pub endpoint: Option<Endpoint>,
    /// What.
    pub kind: FaultKind,
    /// How many requests it affects.
    pub times: u32,
}

impl Fault {
    /// An admission webhook refusing the next create with `message`, as the API server
    /// answers it (400 unless the webhook gives a code).
    pub fn webhook_denies(webhook: &str, message: &str) -> Self {
        Self {
            endpoint: Some(Endpoint::Create),
            kind: FaultKind::Status {
                code: 400,
                reason: "BadRequest".into(),
                message: format!("admission webhook \"{webhook}\" denied the request: {message}"),
                retry_after: None,
            },
            times: 1,
        }
    }

    /// A `ResourceQuota` refusing the next create.
    pub fn quota_exceeded(quota: &str) -> Self {
        Self {
            endpoint: Some(Endpoint::Create),
            kind: FaultKind::Status {
                code: 403,
                reason: "Forbidden".into(),
                message: format!(
                    "exceeded quota: {quota}, requested: count/jobs.batch=1, used: count/jobs.batch=10, limited: count/jobs.batch=10"
                ),
                retry_after: None,
            },
            times: 1,
        }
    }
}

/// The simulator's counters: the harness's ([`Counters`]), and its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// What every simulator counts.
    #[serde(flatten)]
    pub common: Counters,
    /// Creates, including those refused.
    pub create_requests: u64,
    /// Reads of one object.
    pub get_requests: u64,
    /// Lists.
    pub list_requests: u64,
    /// Watches opened.
    pub watch_requests: u64,
    /// Watch events sent (bookmarks included).
    pub watch_events: u64,
    /// Deletes.
    pub delete_requests: u64,
}

/// The simulator's state (behind [`Simulator`]).
#[derive(Debug)]
pub struct Inner {
    config: SimConfig,
    types: Types,
    store: Store,
    controller: Controller,
    /// Objects being deleted (foreground deletion, a terminating namespace) and when they go.
    removals: BTreeSet<(Instant, Key)>,
    harness: Harness<Fault>,
    stats: SimStats,
    /// Ends every open watch when it changes.
    closer: tokio::sync::watch::Sender<u64>,
    token: String,
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
    fn new(config: SimConfig, lifetimes: Lifetimes, token: String) -> Self {
        let mut inner = Self {
            config,
            types: Types::default(),
            store: Store::default(),
            controller: Controller::default(),
            removals: BTreeSet::new(),
            harness: Harness::new(lifetimes),
            stats: SimStats::default(),
            closer: tokio::sync::watch::channel(0).0,
            token,
        };
        for ns in NAMESPACES {
            let value = json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "uid": api::new_uid(), "creationTimestamp": controller::timestamp()},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
            let key: Key = (
                String::new(),
                "namespaces".into(),
                String::new(),
                (*ns).to_string(),
            );
            let object = store::Object {
                value,
                created: Instant::now() - Duration::from_secs(3600),
                ended: None,
                hidden: false,
                seen: None,
            };
            inner.store.put(key, object);
        }
        inner
    }

    fn stats(&self) -> SimStats {
        SimStats {
            common: self.harness.counters.clone(),
            ..self.stats.clone()
        }
    }

    /// Moves the controllers along and carries out the deletions due.
    fn tick(&mut self, now: Instant) {
        self.controller.tick(&mut self.store, now);
        while let Some(first) = self.removals.first().cloned() {
            if first.0 > now {
                break;
            }
            self.removals.pop_first();
            let key = first.1;
            if key.1 == "namespaces" && key.0.is_empty() {
                for inside in self.store.keys().into_iter().filter(|k| k.2 == key.3) {
                    self.remove(&inside);
                }
            }
            self.remove(&key);
        }
    }

    /// Removes the object at `key` now.
    fn remove(&mut self, key: &Key) {
        if let Some(object) = self.store.remove(key) {
            self.controller.deleted(object.uid());
        }
    }

    /// The object the handle names (by uid).
    fn by_handle(&self, handle: &tether_provider::Handle) -> Option<Key> {
        self.store.key_of(&handle.get_str("uid")?)
    }
}

/// The state the server answers from.
type Shared = Arc<Mutex<Inner>>;

/// A running simulator: its state and server ([`Hosted`]), the kubeconfig file it wrote
/// (removed when it stops), and its controllers' clock.
#[derive(Debug)]
pub struct Simulator {
    hosted: Hosted<Inner>,
    kubeconfig: KubeconfigFile,
    ca_pem: String,
    _ticker: Ticker,
}

impl std::ops::Deref for Simulator {
    type Target = Hosted<Inner>;

    fn deref(&self) -> &Hosted<Inner> {
        &self.hosted
    }
}

/// A kubeconfig file, removed when dropped.
#[derive(Debug)]
struct KubeconfigFile(std::path::PathBuf);

impl Drop for KubeconfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The controllers' clock: a task ticking every 50 ms, stopped when dropped.
#[derive(Debug)]
struct Ticker(tokio::task::JoinHandle<()>);

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How often the controllers look at what is due.
const TICK: Duration = Duration::from_millis(50);

impl Simulator {
    /// Serves the simulator on `addr` (port 0 picks a free one).
    pub async fn start(config: SimConfig, addr: SocketAddr) -> std::io::Result<Self> {
        Self::start_with(config, Lifetimes::default(), addr).await
    }

    /// As [`Simulator::start`], with the not-visible-yet and forgotten edges switched on as
    /// `lifetimes` says (`forget_after`: every ended resource is deleted that long after,
    /// as a TTL after finished would).
    pub async fn start_with(
        config: SimConfig,
        lifetimes: Lifetimes,
        addr: SocketAddr,
    ) -> std::io::Result<Self> {
        Self::start_token(config, lifetimes, addr, None).await
    }

    /// As [`Simulator::start_with`], accepting `token` (a random one if `None`).
    pub async fn start_token(
        config: SimConfig,
        lifetimes: Lifetimes,
        addr: SocketAddr,
        token: Option<String>,
    ) -> std::io::Result<Self> {
        let token = token.unwrap_or_else(|| format!("tether-sim-{:032x}", rand::random::<u128>()));
        let inner = Inner::new(config, lifetimes, token.clone());
        let mut state = None;
        let app = |shared: Shared| {
            state = Some(shared.clone());
            router(shared)
        };
        let (tls, ca_pem) = certificates()?;
        let hosted = Hosted::start_tls("kubernetes", inner, app, addr, &tls).await?;
        let shared = state.expect("the router was built");
        let ticker = Ticker(tokio::spawn(async move {
            let mut interval = tokio::time::interval(TICK);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                shared
                    .lock()
                    .expect("simulator mutex poisoned")
                    .tick(Instant::now());
            }
        }));
        let kubeconfig = write_kubeconfig(&hosted.url(), &token, &ca_pem)?;
        Ok(Self {
            hosted,
            kubeconfig,
            ca_pem,
            _ticker: ticker,
        })
    }

    /// The counters so far.
    pub fn stats(&self) -> SimStats {
        self.lock().stats()
    }

    /// Changes the timings and outcome of resources made from now on.
    pub fn configure(&self, f: impl FnOnce(&mut SimConfig)) {
        f(&mut self.lock().config);
    }

    /// The path of the kubeconfig file that points at it.
    pub fn kubeconfig(&self) -> &std::path::Path {
        &self.kubeconfig.0
    }

    /// Its CA certificate (PEM), which its serving certificate is signed by.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Its bearer token.
    pub fn token(&self) -> String {
        self.lock().token.clone()
    }

    /// Forgets the change log (etcd's compaction): a watch resumed from an earlier version,
    /// or a list continued from one, answers 410 Gone.
    pub fn compact(&self) {
        self.lock().store.compact();
    }

    /// Ends every open watch (the API server restarting, a load balancer's idle timeout).
    pub fn close_watches(&self) {
        self.lock().closer.send_modify(|n| *n += 1);
    }

    /// The object at (group, plural, namespace, name), as the API shows it.
    pub fn object(&self, group: &str, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let key: Key = (group.into(), plural.into(), namespace.into(), name.into());
        self.lock().store.get(&key).map(|o| o.value.clone())
    }

    /// Deletes the object at (group, plural, namespace, name) at once, as someone else would
    /// (`kubectl delete`); false if there is none.
    pub fn delete(&self, group: &str, plural: &str, namespace: &str, name: &str) -> bool {
        let key: Key = (group.into(), plural.into(), namespace.into(), name.into());
        let mut inner = self.lock();
        let found = inner.store.get(&key).is_some();
        inner.remove(&key);
        found
    }

    /// Deletes the namespace and everything in it, as `kubectl delete namespace` does (it is
    /// `Terminating` for a moment, refusing creates, then gone).
    pub fn delete_namespace(&self, namespace: &str) -> bool {
        let key: Key = (
            String::new(),
            "namespaces".into(),
            String::new(),
            namespace.into(),
        );
        api::terminate(&mut self.lock(), &key, Instant::now())
    }
}

/// A CA made for this run and the serving certificate it signs, for 127.0.0.1 and
/// `localhost`: what the server serves, and the CA's PEM for clients to trust.
fn certificates() -> std::io::Result<(harness::Tls, String)> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let fail = |e: rcgen::Error| std::io::Error::other(format!("simulator certificate: {e}"));
    let ca_key = KeyPair::generate().map_err(fail)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.distinguished_name
        .push(DnType::CommonName, "tether-sim-ca");
    let ca_cert = ca.self_signed(&ca_key).map_err(fail)?;
    let key = KeyPair::generate().map_err(fail)?;
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .map_err(fail)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    leaf.use_authority_key_identifier_extension = true;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).map_err(fail)?;
    let tls = harness::Tls {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    };
    Ok((tls, ca_cert.pem()))
}

/// Writes a kubeconfig naming the simulator (cluster with its CA, user with its token,
/// context) to a file of its own, readable by its owner only.
fn write_kubeconfig(url: &str, token: &str, ca_pem: &str) -> std::io::Result<KubeconfigFile> {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let port = url.rsplit(':').next().unwrap_or("0");
    let path = std::env::temp_dir().join(format!(
        "tether-sim-kubeconfig-{}-{port}.yaml",
        std::process::id()
    ));
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {CONTEXT}\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\n\
         users:\n- name: {CONTEXT}\n  user:\n    token: {token}\ncontexts:\n- name: {CONTEXT}\n  \
         context:\n    cluster: {CONTEXT}\n    user: {CONTEXT}\n    namespace: default\n\
         current-context: {CONTEXT}\n"
    );
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write as _;
    options.open(&path)?.write_all(text.as_bytes())?;
    Ok(KubeconfigFile(path))
}

fn router(inner: Shared) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/_sim/stats", get(stats))
        .route("/_sim/compact", post(compact))
        .route("/_sim/watches/close", post(close_watches))
        .route("/_sim/jobs/end", post(end_jobs))
        .fallback(api::dispatch)
        .with_state(inner)
}

/// The API's `Status` error body.
pub(crate) fn status_error(
    code: u16,
    reason: &str,
    message: impl Into<String>,
    details: Option<Value>,
) -> Response {
    let mut body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message.into(), "reason": reason, "code": code});
    if let Some(details) = details {
        body["details"] = details;
    }
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body)).into_response()
}

/// Checks the credentials, then applies a queued fault for `endpoint`, if any: the response
/// to send instead of the real one, or the fault to apply after processing.
async fn gate(
    inner: &Shared,
    headers: &HeaderMap,
    endpoint: Endpoint,
) -> Result<Option<FaultKind>, Response> {
    let fault = {
        let mut guard = inner.lock().expect("simulator mutex poisoned");
        let want = format!("Bearer {}", guard.token);
        let authorized = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            == Some(want.as_str());
        let admitted = guard
            .harness
            .admit(authorized, |f| f.endpoint.is_none_or(|e| e == endpoint));
        let Ok(fault) = admitted else {
            return Err(status_error(401, "Unauthorized", "Unauthorized", None));
        };
        let stats = &mut guard.stats;
        match endpoint {
            Endpoint::Create => stats.create_requests += 1,
            Endpoint::Get => stats.get_requests += 1,
            Endpoint::List => stats.list_requests += 1,
            Endpoint::Watch => stats.watch_requests += 1,
            Endpoint::Delete => stats.delete_requests += 1,
            Endpoint::Other => {}
        }
        fault.map(|f| f.kind)
    };
    match fault {
        None => Ok(None),
        Some(FaultKind::Status {
            code,
            reason,
            message,
            retry_after,
        }) => {
            let details = retry_after.map(|s| json!({"retryAfterSeconds": s}));
            Err(harness::with_retry_after(
                status_error(code, &reason, message, details),
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

/// The answer after processing, when a [`FaultKind::FailAfterProcessing`] was queued: 504
/// `Timeout`, after which the request may have been carried out.
fn respond_after(after: Option<FaultKind>, response: Response) -> Response {
    match after {
        Some(FaultKind::FailAfterProcessing) => status_error(
            504,
            "Timeout",
            "Timeout: request did not complete within requested timeout - context deadline exceeded",
            None,
        ),
        _ => response,
    }
}

async fn version() -> Json<Value> {
    Json(
        json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-tether-sim",
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc",
        "platform": "linux/amd64"}),
    )
}

/// The counters; with `?fresh_within=S`, also `active_runs` and `fresh_runs` (tether's
/// resources not ended, and those of them a client read within the last S seconds).
async fn stats(State(inner): State<Shared>, uri: axum::http::Uri) -> Json<Value> {
    let guard = inner.lock().expect("simulator mutex poisoned");
    let mut body = serde_json::to_value(guard.stats()).unwrap_or_default();
    let params = api::params(&uri);
    let within = api::param(&params, "fresh_within")
        .and_then(|v| v.parse::<f64>().ok())
        .and_then(|s| Duration::try_from_secs_f64(s).ok());
    if let Some(within) = within {
        let (active, fresh) = guard.store.freshness(Instant::now(), within);
        body["active_runs"] = json!(active);
        body["fresh_runs"] = json!(fresh);
    }
    Json(body)
}

async fn compact(State(inner): State<Shared>) -> StatusCode {
    inner
        .lock()
        .expect("simulator mutex poisoned")
        .store
        .compact();
    StatusCode::NO_CONTENT
}

async fn close_watches(State(inner): State<Shared>) -> StatusCode {
    inner
        .lock()
        .expect("simulator mutex poisoned")
        .closer
        .send_modify(|n| *n += 1);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct EndJobs {
    uids: Vec<String>,
}

/// Ends the scripted resources named by uid now (their outcome as planned): each one ended,
/// with its end time in ms since the Unix epoch (`{"ended": [{"uid", "end_time"}]}`).
async fn end_jobs(State(inner): State<Shared>, Json(body): Json<EndJobs>) -> Json<Value> {
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let inner = &mut *guard;
    let ended = inner
        .controller
        .end_now(&mut inner.store, &body.uids, Instant::now());
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let ended: Vec<Value> = ended
        .into_iter()
        .map(|uid| json!({"uid": uid, "end_time": at}))
        .collect();
    Json(json!({ "ended": ended }))
}

/// The simulator, as the registry starts it.
pub static SIMULATORS: Simulators = Simulators;

/// See [`SIMULATORS`].
#[derive(Debug)]
pub struct Simulators;

#[async_trait::async_trait]
impl registry::SimFactory for Simulators {
    fn default_port(&self, _kind: &str) -> u16 {
        DEFAULT_PORT
    }

    /// A `batch/v1` Job's states, as the simulator's Job controller writes them and
    /// `builtin.rs` reads them.
    fn documented_states(&self, _kind: &str) -> Vec<(String, JobState)> {
        JOB_STATES
            .iter()
            .map(|&(raw, state)| (raw.to_string(), state))
            .collect()
    }

    fn sample_spec(&self, _kind: &str, name: &str) -> Value {
        json!({"manifest": {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name},
            "spec": {"backoffLimit": 0, "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox:1.36",
                                "command": ["sh", "-c", format!("echo {}", name.replace(['\'', '"'], ""))]}],
            }}},
        }})
    }

    async fn start(
        &self,
        _kind: &str,
        options: registry::SimOptions,
    ) -> std::io::Result<Box<dyn registry::RunningSim>> {
        let mut switches = options.switches.clone();
        let token = match switches.remove("token") {
            None => None,
            Some(Setting::String(t)) if !t.is_empty() => Some(t),
            Some(other) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "the Kubernetes simulator's token must be a non-empty string, not {other}"
                    ),
                ))
            }
        };
        if let Some(key) = switches.keys().next() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("the Kubernetes simulator takes no {key:?} (it takes token)"),
            ));
        }
        let lifetimes = Lifetimes::of(&options);
        let config = SimConfig {
            pending: options.pending,
            running: options.running,
            outcome: match options.outcome {
                registry::SimOutcome::Succeed => Outcome::Succeed,
                registry::SimOutcome::Fail => Outcome::Fail("BackoffLimitExceeded".into()),
                registry::SimOutcome::Named(reason) => Outcome::Fail(reason),
            },
            ..SimConfig::default()
        };
        let port = options.port.unwrap_or(DEFAULT_PORT);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        Ok(Box::new(
            Simulator::start_token(config, lifetimes, addr, token).await?,
        ))
    }
}

impl registry::RunningSim for Simulator {
    fn url(&self) -> String {
        self.hosted.url()
    }

    fn banner(&self) -> Vec<String> {
        let (url, file) = (self.url(), self.kubeconfig().display().to_string());
        vec![
            format!("Kubernetes API server simulator on {url}; stats at {url}/_sim/stats"),
            format!("Its kubeconfig (context {CONTEXT:?}): {file}  (kubectl --kubeconfig {file} get jobs)"),
            format!("Use it with: [providers.kubernetes] kind = \"kubernetes\", kubeconfig = \"{file}\""),
        ]
    }

    fn settings(&self, _kind: &str) -> Table {
        Table::from([(
            "kubeconfig".to_string(),
            Setting::String(self.kubeconfig().display().to_string()),
        )])
    }

    fn env(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    fn inject(&self, fault: registry::SimFault) {
        let secs = |d: Option<Duration>| d.map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0));
        let status =
            |code: u16, reason: &str, message: &str, after: Option<Duration>| FaultKind::Status {
                code,
                reason: reason.into(),
                message: message.into(),
                retry_after: secs(after),
            };
        let kind = match fault.kind {
            registry::SimFaultKind::Throttle(after) => status(
                429,
                "TooManyRequests",
                "Too many requests, please try again later.",
                after.or(Some(Duration::from_secs(1))),
            ),
            registry::SimFaultKind::Unavailable(after) => status(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
                after,
            ),
            registry::SimFaultKind::ServerError => status(
                500,
                "InternalError",
                "Internal error occurred: etcdserver: request timed out",
                None,
            ),
            registry::SimFaultKind::Delay(by) => FaultKind::Delay(by),
            registry::SimFaultKind::FailAfterProcessing => FaultKind::FailAfterProcessing,
            registry::SimFaultKind::Drop => FaultKind::Drop,
        };
        let endpoint = match fault.calls {
            registry::SimCalls::All => None,
            registry::SimCalls::Submits => Some(Endpoint::Create),
            registry::SimCalls::Cancels => Some(Endpoint::Delete),
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

    fn job_state(&self, handle: &tether_provider::Handle) -> Option<registry::SimJobState> {
        self.lock().controller.truth(&handle.get_str("uid")?)
    }

    fn set_state(&self, handle: &tether_provider::Handle, raw: &str) -> bool {
        let mut inner = self.lock();
        let Some(key) = inner.by_handle(handle) else {
            return false;
        };
        let inner = &mut *inner;
        inner
            .controller
            .force(&mut inner.store, &key, raw, Instant::now())
    }

    fn forget(&self, handle: &tether_provider::Handle) -> bool {
        let mut inner = self.lock();
        let Some(key) = inner.by_handle(handle) else {
            return false;
        };
        // Deleted by someone else (a TTL, a person), not by a cancel: its truth stays as it
        // was, and the controller drops its plan once the object is gone.
        inner.store.remove(&key);
        true
    }

    fn hide_from_lists(&self, handle: &tether_provider::Handle) -> bool {
        let mut inner = self.lock();
        let Some(key) = inner.by_handle(handle) else {
            return false;
        };
        inner.store.modify(&key, |o| o.hidden = true)
    }

    fn lie_in_lists(&self, on: bool) {
        self.configure(|c| c.lists_report_success = on);
    }

    fn counts(&self) -> registry::SimCounts {
        self.lock().harness.counters.counts()
    }
}
