//! Simulators of the two REST job APIs the example descriptions in `config/` declare, each
//! speaking its API's wire protocol (paths, status codes, error bodies, credentials):
//!
//! - `livy.rs`: Apache Livy's batches (`/batches`), basic credentials;
//! - `dbt_cloud.rs`: dbt Cloud's job runs (API v2), a `Token` in `Authorization`.
//!
//! Both keep their jobs in one [`Store`]: jobs are pending, run, then end with the configured
//! outcome; faults are injected per call class (submits, cancels, all); the stats count
//! requests, jobs made per key (Livy's batch name, dbt Cloud's run cause), and cancels.
//! `tether sim http` serves Livy on 8998 (`--api dbt-cloud` for dbt Cloud, on 8097), and
//! [`registry::RunningSim::settings`] hands out the example description itself, pointed at the
//! simulator: the conformance suite tests what `config/` ships.

mod dbt_cloud;
mod livy;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;
use tether_provider::registry::{self, SimCalls, SimFault, SimFaultKind, SimJobState};
use tether_provider::settings::{Setting, Table};
use tether_provider::sim::{self as harness, Harness, Lifetimes, Server};
use tether_provider::{Handle, JobState};

/// The simulated APIs, as `tether sim http --api` names them.
pub const APIS: &[&str] = &["livy", "dbt-cloud"];

/// Which API a simulator speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// Apache Livy batches.
    Livy,
    /// dbt Cloud job runs.
    DbtCloud,
}

impl Api {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "livy" => Some(Api::Livy),
            "dbt-cloud" => Some(Api::DbtCloud),
            _ => None,
        }
    }

    /// The example description in `config/`.
    fn example(self) -> &'static str {
        match self {
            Api::Livy => include_str!("../../../../config/livy.toml"),
            Api::DbtCloud => include_str!("../../../../config/dbt-cloud.toml"),
        }
    }

    /// The environment variable the example reads its secret from, and the simulator's.
    fn secret(self) -> (&'static str, &'static str) {
        match self {
            Api::Livy => ("LIVY_PASSWORD", "livy-sim-password"),
            Api::DbtCloud => ("DBT_CLOUD_API_TOKEN", "dbt-sim-token"),
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Api::Livy => 8998,
            Api::DbtCloud => 8097,
        }
    }

    /// The documented states, and how the example reads them.
    fn states(self) -> &'static [(&'static str, JobState)] {
        use JobState::{Cancelled, Failed, Pending, Running, Succeeded};
        match self {
            Api::Livy => &[
                ("not_started", Pending),
                ("starting", Pending),
                ("recovering", Running),
                ("idle", Running),
                ("running", Running),
                ("busy", Running),
                ("shutting_down", Running),
                ("success", Succeeded),
                ("error", Failed),
                ("dead", Failed),
                ("killed", Cancelled),
            ],
            Api::DbtCloud => &[
                ("1", Pending),
                ("2", Pending),
                ("3", Running),
                ("10", Succeeded),
                ("20", Failed),
                ("30", Cancelled),
            ],
        }
    }

    /// An error answer in the API's shape.
    fn error(self, status: StatusCode, message: &str) -> Response {
        match self {
            Api::Livy => livy::error(status, message),
            Api::DbtCloud => dbt_cloud::error(status, message),
        }
    }
}

/// Which calls a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Submit,
    Cancel,
    Other,
}

/// How a job ends, and where it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// One job (a Livy batch, a dbt Cloud run).
#[derive(Debug)]
struct Job {
    id: i64,
    /// The value that carries tether's key (Livy's `name`, dbt Cloud's `cause`).
    tag: Option<String>,
    /// dbt Cloud's job the run belongs to.
    job_definition_id: i64,
    /// The request's body.
    body: Value,
    created: Instant,
    created_ms: i64,
    cancelled: bool,
    /// When it was cancelled.
    cancelled_at: Option<Instant>,
    /// Livy forgets a batch once it is deleted: kept only for [`registry::RunningSim::job_state`].
    deleted: bool,
    forced: Option<String>,
    hidden: bool,
}

/// The simulator's jobs, and its harness (faults, counts, lifetimes).
#[derive(Debug)]
struct Store {
    api: Api,
    pending: Duration,
    running: Duration,
    outcome: registry::SimOutcome,
    jobs: BTreeMap<i64, Job>,
    next_id: i64,
    harness: Harness<SimFault>,
    lie: bool,
}

type Shared = Arc<Mutex<Store>>;

impl Store {
    fn phase(&self, job: &Job, now: Instant) -> Phase {
        if job.cancelled {
            return Phase::Cancelled;
        }
        let age = now.saturating_duration_since(job.created);
        if age < self.pending {
            Phase::Pending
        } else if age < self.pending + self.running {
            Phase::Running
        } else {
            match &self.outcome {
                registry::SimOutcome::Succeed => Phase::Succeeded,
                _ => Phase::Failed,
            }
        }
    }

    /// When a job ends (or ended), as its schedule or a cancel tells.
    fn end(&self, job: &Job) -> Option<Instant> {
        if job.cancelled {
            return job.cancelled_at;
        }
        Some(job.created + self.pending + self.running)
    }

    /// Whether a client can read `job` (look it up, list it, cancel it) at `now`: not once
    /// deleted, nor while the API does not show it yet, nor once forgotten
    /// ([`Lifetimes::readable`]).
    fn readable(&self, job: &Job, now: Instant) -> bool {
        !job.deleted
            && self
                .harness
                .lifetimes
                .readable(job.created, self.end(job), now)
    }

    /// The job a URL's `{id}` names, if a client can read it at `now`.
    fn lookup(&self, id: &str, now: Instant) -> Option<&Job> {
        let job = self.jobs.get(&id.parse::<i64>().ok()?)?;
        self.readable(job, now).then_some(job)
    }

    /// Whether the API still holds `job` (readable, or not readable yet): what a name must not
    /// repeat.
    fn holds(&self, job: &Job, now: Instant) -> bool {
        !job.deleted && self.harness.lifetimes.held(self.end(job), now)
    }

    /// Cancels the job `id`, unless it ended; counted either way.
    fn cancel(&mut self, id: i64, now: Instant) {
        let running = self
            .jobs
            .get(&id)
            .is_some_and(|j| matches!(self.phase(j, now), Phase::Pending | Phase::Running));
        if let Some(job) = self.jobs.get_mut(&id).filter(|_| running) {
            job.cancelled = true;
            job.cancelled_at = Some(now);
        }
        self.harness.counters.cancelled();
    }

    /// Makes a job tagged `tag` (counted per key: Livy's name is the key itself, dbt Cloud's
    /// cause is `tether <key>`).
    fn create(&mut self, tag: Option<String>, job_definition_id: i64, body: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.harness
            .counters
            .job_made(tag.as_deref().and_then(key_of));
        self.jobs.insert(
            id,
            Job {
                id,
                tag,
                job_definition_id,
                body,
                created: Instant::now(),
                created_ms: epoch_ms(),
                cancelled: false,
                cancelled_at: None,
                deleted: false,
                forced: None,
                hidden: false,
            },
        );
        id
    }
}

/// tether's key inside a tag (`tether-…` alone, or after `tether `).
fn key_of(tag: &str) -> Option<&str> {
    let key = tag.strip_prefix("tether ").unwrap_or(tag);
    key.starts_with("tether-").then_some(key)
}

fn epoch_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Counts the request, checks `authorized`, and applies the next fault for `class`: the
/// answer to send instead, or whether to fail after processing.
async fn gate(
    store: &Shared,
    headers: &HeaderMap,
    class: Class,
    authorized: impl Fn(&HeaderMap) -> bool,
) -> Result<bool, Response> {
    let (api, fault) = {
        let mut s = store.lock().expect("not poisoned");
        let admitted = s.harness.admit(authorized(headers), |f| match f.calls {
            SimCalls::All => true,
            SimCalls::Submits => class == Class::Submit,
            SimCalls::Cancels => class == Class::Cancel,
        });
        let Ok(fault) = admitted else {
            return Err(s
                .api
                .error(StatusCode::UNAUTHORIZED, "Invalid credentials."));
        };
        (s.api, fault.map(|f| f.kind))
    };
    let with_retry_after = harness::with_retry_after;
    match fault {
        None => Ok(false),
        Some(SimFaultKind::Throttle(after)) => Err(with_retry_after(
            api.error(StatusCode::TOO_MANY_REQUESTS, "Too many requests."),
            after,
        )),
        Some(SimFaultKind::Unavailable(after)) => Err(with_retry_after(
            api.error(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable."),
            after,
        )),
        Some(SimFaultKind::ServerError) => {
            Err(api.error(StatusCode::INTERNAL_SERVER_ERROR, "simulated fault"))
        }
        Some(SimFaultKind::Delay(d)) => {
            tokio::time::sleep(d).await;
            Ok(false)
        }
        Some(SimFaultKind::Drop) => Err(harness::dropped_connection()),
        Some(SimFaultKind::FailAfterProcessing) => Ok(true),
    }
}

/// The answer after processing: a 500 if the fault said to fail after processing.
fn respond(api: Api, fail_after: bool, response: Response) -> Response {
    if fail_after {
        api.error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "simulated failure after the request was processed",
        )
    } else {
        response
    }
}

/// What a request that changes the store came to.
enum Outcome {
    /// Refused before anything changed: sent as it is.
    Refused(Response),
    /// Processed: a fault may still turn the answer into a 500 ([`respond`]).
    Done(Response),
}

/// Serves a request that changes the store (a submit, a cancel): [`gate`] first, then `act`
/// on the locked store.
async fn serve_change(
    store: &Shared,
    headers: &HeaderMap,
    class: Class,
    authorized: impl Fn(&HeaderMap) -> bool,
    act: impl FnOnce(&mut Store) -> Outcome,
) -> Response {
    let fail_after = match gate(store, headers, class, authorized).await {
        Ok(fail_after) => fail_after,
        Err(r) => return r,
    };
    let mut s = store.lock().expect("not poisoned");
    match act(&mut s) {
        Outcome::Done(answer) => respond(s.api, fail_after, answer),
        Outcome::Refused(refused) => refused,
    }
}

/// Serves a request that only reads the store: [`gate`] first (a fault that fails a request
/// after processing has nothing to fail here), then `read` from the locked store.
async fn serve_read(
    store: &Shared,
    headers: &HeaderMap,
    authorized: impl Fn(&HeaderMap) -> bool,
    read: impl FnOnce(&Store) -> Response,
) -> Response {
    if let Err(r) = gate(store, headers, Class::Other, authorized).await {
        return r;
    }
    read(&store.lock().expect("not poisoned"))
}

/// `GET /_sim/stats`: requests, jobs made (in all and per key), cancels.
async fn stats(axum::extract::State(store): axum::extract::State<Shared>) -> Response {
    let s = store.lock().expect("not poisoned");
    axum::Json(&s.harness.counters).into_response()
}

/// A running simulator.
#[derive(Debug)]
pub struct Simulator {
    store: Shared,
    server: Server,
}

impl Simulator {
    /// Serves `api` on `addr` (port 0: any free one).
    pub async fn start(
        api: Api,
        options: &registry::SimOptions,
        addr: SocketAddr,
    ) -> std::io::Result<Self> {
        let store = Arc::new(Mutex::new(Store {
            api,
            pending: options.pending,
            running: options.running,
            outcome: options.outcome.clone(),
            jobs: BTreeMap::new(),
            next_id: 1,
            harness: Harness::new(Lifetimes::of(options)),
            lie: false,
        }));
        let router: Router = match api {
            Api::Livy => livy::router(store.clone()),
            Api::DbtCloud => dbt_cloud::router(store.clone()),
        }
        .merge(
            Router::new()
                .route("/_sim/stats", axum::routing::get(stats))
                .with_state(store.clone()),
        );
        let server = Server::start("http", router, addr).await?;
        Ok(Self { store, server })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().expect("not poisoned")
    }

    fn with_job<T>(&self, handle: &Handle, f: impl FnOnce(&mut Job) -> T) -> Option<T> {
        let id = handle.get_i64("id")?;
        self.lock().jobs.get_mut(&id).filter(|j| !j.deleted).map(f)
    }
}

/// The simulators, as the registry starts them ([`crate::FACTORY`]).
pub static SIMULATORS: Simulators = Simulators;

/// See [`SIMULATORS`].
#[derive(Debug)]
pub struct Simulators;

#[async_trait::async_trait]
impl registry::SimFactory for Simulators {
    fn default_port(&self, _kind: &str) -> u16 {
        Api::Livy.default_port()
    }

    fn documented_states(&self, _kind: &str) -> Vec<(String, JobState)> {
        owned(Api::Livy.states())
    }

    fn sample_spec(&self, _kind: &str, name: &str) -> Value {
        livy::sample_spec(name)
    }

    fn apis(&self, _kind: &str) -> &'static [&'static str] {
        APIS
    }

    async fn start(
        &self,
        _kind: &str,
        options: registry::SimOptions,
    ) -> std::io::Result<Box<dyn registry::RunningSim>> {
        let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
        let mut api = Api::Livy;
        for (key, value) in &options.switches {
            match (key.as_str(), value) {
                ("api", Setting::String(name)) => {
                    api = Api::parse(name).ok_or_else(|| {
                        invalid(format!(
                            "the http simulator serves no API {name:?} (it serves {})",
                            APIS.join(", ")
                        ))
                    })?;
                }
                (key, _) => {
                    return Err(invalid(format!(
                        "the http simulator takes no {key:?} (it takes api = {})",
                        APIS.join(" | ")
                    )))
                }
            }
        }
        let port = options.port.unwrap_or_else(|| api.default_port());
        let sim = Simulator::start(api, &options, SocketAddr::from(([127, 0, 0, 1], port))).await?;
        Ok(Box::new(sim))
    }
}

fn owned(states: &[(&str, JobState)]) -> Vec<(String, JobState)> {
    states.iter().map(|(s, j)| (s.to_string(), *j)).collect()
}

/// The example description's provider table.
fn example_table(api: Api) -> Table {
    let file: toml::Table = api
        .example()
        .parse()
        .expect("the example description parses");
    let providers = file
        .get("providers")
        .and_then(toml::Value::as_table)
        .expect("the example has providers");
    let (_, table) = providers
        .iter()
        .find(|(_, t)| t.get("kind").and_then(toml::Value::as_str) == Some("http"))
        .expect("the example declares an http provider");
    tether_provider::settings::from_toml(table.as_table().expect("a table").clone())
}

impl registry::RunningSim for Simulator {
    fn url(&self) -> String {
        self.server.url()
    }

    fn banner(&self) -> Vec<String> {
        let api = self.lock().api;
        let (var, secret) = api.secret();
        let file = match api {
            Api::Livy => "config/livy.toml",
            Api::DbtCloud => "config/dbt-cloud.toml",
        };
        vec![
            format!(
                "{api:?} simulator (kind = \"http\") on {} ({var}={secret})",
                self.url()
            ),
            format!(
                "Use it with {file}, base_url = \"{}\" and {var}={secret}",
                self.url()
            ),
        ]
    }

    /// The example description, pointed at the simulator: less `kind` and its tuning
    /// (polling, rate limit), which the caller sets.
    fn settings(&self, _kind: &str) -> Table {
        let mut table = example_table(self.lock().api);
        table.insert("base_url".into(), Setting::String(self.url()));
        for key in ["kind", "poll_initial", "poll_max", "rate_limit_per_second"] {
            table.remove(key);
        }
        table
    }

    fn env(&self) -> Vec<(String, String)> {
        let (var, secret) = self.lock().api.secret();
        vec![(var.to_string(), secret.to_string())]
    }

    fn sample_spec(&self, name: &str) -> Option<Value> {
        Some(match self.lock().api {
            Api::Livy => livy::sample_spec(name),
            Api::DbtCloud => dbt_cloud::sample_spec(name),
        })
    }

    fn documented_states(&self) -> Option<Vec<(String, JobState)>> {
        Some(owned(self.lock().api.states()))
    }

    fn inject(&self, fault: SimFault) {
        let (times, lasting) = (fault.times, fault.lasting);
        self.lock()
            .harness
            .faults
            .push_lasting(fault, times, lasting);
    }

    fn clear_faults(&self) {
        self.lock().harness.faults.clear();
    }

    fn jobs_by_key(&self) -> BTreeMap<String, u64> {
        self.lock().harness.counters.by_key.clone()
    }

    fn job_state(&self, handle: &Handle) -> Option<SimJobState> {
        let id = handle.get_i64("id")?;
        let s = self.lock();
        let job = s.jobs.get(&id)?;
        Some(match s.phase(job, Instant::now()) {
            Phase::Pending | Phase::Running => SimJobState::Running,
            Phase::Succeeded => SimJobState::Succeeded,
            Phase::Failed => SimJobState::Failed,
            Phase::Cancelled => SimJobState::Cancelled,
        })
    }

    fn set_state(&self, handle: &Handle, raw: &str) -> bool {
        self.with_job(handle, |j| j.forced = Some(raw.to_string()))
            .is_some()
    }

    fn forget(&self, handle: &Handle) -> bool {
        let Some(id) = handle.get_i64("id") else {
            return false;
        };
        self.lock().jobs.remove(&id).is_some()
    }

    fn hide_from_lists(&self, handle: &Handle) -> bool {
        self.with_job(handle, |j| j.hidden = true).is_some()
    }

    fn lie_in_lists(&self, on: bool) {
        self.lock().lie = on;
    }

    fn counts(&self) -> registry::SimCounts {
        self.lock().harness.counters.counts()
    }
}
