//! The harness every provider's simulator is built on (feature `sim`): what is the same in a
//! Databricks workspace, an AWS endpoint and a declared REST API once they are simulated.
//!
//! - [`FaultQueue`]: faults queued for the next requests, each for so many requests (and, if
//!   given, until a deadline), taken by the first request they apply to;
//! - [`Counters`]: requests, jobs made (in all and per idempotency key), cancels, and the
//!   [`SimCounts`] the registry reports;
//! - [`Lifetimes`]: the two edges every service has in its catalog ([`crate::Edges`]), switched
//!   on by [`SimOptions`]: a new job not readable yet (`invisible_for`), an ended job forgotten
//!   after a retention (`forget_after`). A simulator asks [`Lifetimes::readable`] wherever it
//!   looks a job up or lists it, and nowhere decides it otherwise;
//! - [`Harness`]: the three together, with [`Harness::admit`], the part of every request gate
//!   that is the same (count the request, take its fault);
//! - the answers every gate gives alike: [`dropped_connection`], [`with_retry_after`];
//! - [`Server`]: a router served on a loopback port until dropped (over TLS with [`Tls`]); [`Hosted`]: a simulator's
//!   state under its lock with the server answering from it, and what every simulator does
//!   with its harness (queue and clear faults, switch lifetimes);
//! - `event_faults.rs`: for a simulator that sends its jobs' events, what befalls them on
//!   the way ([`EventFaults`]: lost, repeated, delayed; chaos for the soak).
//!
//! What stays in a provider's simulator is what differs: its wire protocol, its credentials,
//! its error bodies, which requests a fault may be aimed at, and its jobs' own states.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::registry::{SimCounts, SimOptions};

mod event_faults;
pub use event_faults::{Emitter, EventFault, EventFaultKind, EventFaults, Outgoing, CHAOS_DELAY};

/// Faults waiting for the requests they apply to, in the order they were queued.
#[derive(Debug, Clone)]
pub struct FaultQueue<F> {
    /// Each fault, the requests it has left, and when it lapses (if it does).
    queued: VecDeque<(F, u32, Option<Instant>)>,
}

impl<F> Default for FaultQueue<F> {
    fn default() -> Self {
        Self {
            queued: VecDeque::new(),
        }
    }
}

impl<F: Clone> FaultQueue<F> {
    /// Queues `fault` for the next `times` requests it applies to (none if `times` is 0).
    pub fn push(&mut self, fault: F, times: u32) {
        self.push_until(fault, times, None);
    }

    /// Queues `fault` for the next `times` requests it applies to, made before `until` (when
    /// given): a burst that lasts so many requests or so long, whichever ends first. Without
    /// a deadline, bursts queued one after another add up, and where requests are few they
    /// last as long as it takes the clients to make that many.
    pub fn push_until(&mut self, fault: F, times: u32, until: Option<Instant>) {
        if times > 0 {
            self.queued.push_back((fault, times, until));
        }
    }

    /// Queues `fault` for the next `times` requests it applies to, made within `lasting` from
    /// now (when given): [`FaultQueue::push_until`] with the deadline taken from the clock.
    pub fn push_lasting(&mut self, fault: F, times: u32, lasting: Option<Duration>) {
        self.push_until(fault, times, lasting.map(|d| Instant::now() + d));
    }

    /// The first queued fault that `applies` to a request, counted down (and dropped once
    /// used up); faults past their deadline are dropped unused.
    pub fn take(&mut self, applies: impl Fn(&F) -> bool) -> Option<F> {
        let now = Instant::now();
        self.queued
            .retain(|(_, _, until)| until.is_none_or(|until| now < until));
        let i = self.queued.iter().position(|(f, _, _)| applies(f))?;
        let (fault, left, _) = &mut self.queued[i];
        let fault = fault.clone();
        *left -= 1;
        if *left == 0 {
            self.queued.remove(i);
        }
        Some(fault)
    }

    /// Drops every queued fault.
    pub fn clear(&mut self) {
        self.queued.clear();
    }

    /// Whether none is queued.
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }
}

/// What every simulator counts. `GET /_sim/stats` shows these fields under these names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Requests received (before faults and credential checks).
    pub requests: u64,
    /// Jobs made (a deduplicated submission makes none).
    pub submissions: u64,
    /// Cancels that reached a job.
    pub cancels: u64,
    /// Jobs made per tether idempotency key, as the service carries it (more than one for a
    /// key is a duplicate submission).
    #[serde(default)]
    pub by_key: BTreeMap<String, u64>,
}

impl Counters {
    /// Counts a job made, under `key` if the request carried tether's.
    pub fn job_made(&mut self, key: Option<&str>) {
        self.submissions += 1;
        if let Some(key) = key {
            *self.by_key.entry(key.to_string()).or_default() += 1;
        }
    }

    /// Counts a cancel that reached a job.
    pub fn cancelled(&mut self) {
        self.cancels += 1;
    }

    /// Jobs made with `key`.
    pub fn jobs_for_key(&self, key: &str) -> u64 {
        self.by_key.get(key).copied().unwrap_or(0)
    }

    /// As the registry reports them.
    pub fn counts(&self) -> SimCounts {
        SimCounts {
            requests: self.requests,
            submissions: self.submissions,
            cancels: self.cancels,
        }
    }
}

/// When a job can be read: the consistency-after-create and retention edges of a service's
/// catalog, as a simulator models them. Both are off by default (readable from its creation,
/// kept for ever).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lifetimes {
    /// How long a new job answers "not found" and is left out of lists.
    pub invisible_for: Duration,
    /// How long a job is kept once it ended; `None`: for ever.
    pub forget_after: Option<Duration>,
}

impl Lifetimes {
    /// The switches of `options`.
    pub fn of(options: &SimOptions) -> Self {
        Self {
            invisible_for: options.invisible_for,
            forget_after: options.forget_after,
        }
    }

    /// Whether a job made at `created` that ends (or ended) at `ended` (`None`: no end in
    /// sight) can be read (looked up, listed, cancelled) at `now`: not while it is not visible
    /// yet, nor once it is forgotten.
    pub fn readable(&self, created: Instant, ended: Option<Instant>, now: Instant) -> bool {
        now.saturating_duration_since(created) >= self.invisible_for && self.held(ended, now)
    }
}

impl Lifetimes {
    /// Whether the service still holds a job that ends (or ended) at `ended`: not yet
    /// forgotten, visible or not. What a name or token must not be reused while.
    pub fn held(&self, ended: Option<Instant>, now: Instant) -> bool {
        match (ended, self.forget_after) {
            (Some(ended), Some(kept)) => now < ended || now.duration_since(ended) < kept,
            _ => true,
        }
    }
}

/// A simulator's faults, counters and lifetimes, kept under its lock.
#[derive(Debug, Clone)]
pub struct Harness<F> {
    /// The queued faults.
    pub faults: FaultQueue<F>,
    /// What it counted.
    pub counters: Counters,
    /// When its jobs can be read.
    pub lifetimes: Lifetimes,
}

impl<F: Clone> Harness<F> {
    /// A harness with nothing queued or counted.
    pub fn new(lifetimes: Lifetimes) -> Self {
        Self {
            faults: FaultQueue::default(),
            counters: Counters::default(),
            lifetimes,
        }
    }

    /// The start of every request: counted; refused (`Err`) unless its credentials are
    /// `authorized`; then the first queued fault that `applies` to it taken, if any (the
    /// simulator answers with it, or applies it after processing). A refused request takes no
    /// fault.
    pub fn admit(
        &mut self,
        authorized: bool,
        applies: impl Fn(&F) -> bool,
    ) -> Result<Option<F>, Unauthorized> {
        self.counters.requests += 1;
        if !authorized {
            return Err(Unauthorized);
        }
        Ok(self.faults.take(applies))
    }
}

/// A request whose credentials a simulator refused ([`Harness::admit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unauthorized;

/// An answer whose status line is sent and whose connection is then cut before the body: the
/// client cannot know whether the request was processed (the simulators process nothing).
pub fn dropped_connection() -> Response {
    let cut = futures_util::stream::once(async {
        Err::<Vec<u8>, std::io::Error>(std::io::Error::other("simulated dropped connection"))
    });
    (StatusCode::OK, Body::from_stream(cut)).into_response()
}

/// `response` with a `Retry-After` of `wait` in whole seconds (rounded up), if given.
pub fn with_retry_after(mut response: Response, wait: Option<Duration>) -> Response {
    if let Some(wait) = wait {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        response.headers_mut().insert(
            header::RETRY_AFTER,
            secs.to_string().parse().expect("digits"),
        );
    }
    response
}

/// A router served on a loopback address until dropped.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    tls: bool,
}

/// A certificate and its private key, PEM-encoded, that a simulator serves TLS with.
#[derive(Debug, Clone)]
pub struct Tls {
    /// The server's certificate chain.
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
}

impl Server {
    /// Serves `router` on `addr` (port 0 picks a free one); `name` names it in the log if it
    /// stops.
    pub async fn start(
        name: &'static str,
        router: axum::Router,
        addr: SocketAddr,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, simulator = name, "simulator stopped");
            }
        });
        Ok(Self {
            addr,
            task,
            tls: false,
        })
    }

    /// As [`Server::start`], over TLS with `tls`'s certificate (`https://` URLs).
    pub async fn start_tls(
        name: &'static str,
        router: axum::Router,
        addr: SocketAddr,
        tls: &Tls,
    ) -> std::io::Result<Self> {
        // Ring, as the rest of tether: the first caller installs it.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = axum_server::tls_rustls::RustlsConfig::from_pem(
            tls.cert_pem.clone().into_bytes(),
            tls.key_pem.clone().into_bytes(),
        )
        .await?;
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let served = axum_server::from_tcp_rustls(listener, config)
                .serve(router.into_make_service())
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, simulator = name, "simulator stopped");
            }
        });
        Ok(Self {
            addr,
            task,
            tls: true,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }
}

/// A simulator's state, as [`Hosted`] needs it: its harness, and how many requests a fault
/// is for.
pub trait Simulated: Send + 'static {
    /// The simulator's fault.
    type Fault: Clone;

    /// The state's harness.
    fn harness(&mut self) -> &mut Harness<Self::Fault>;

    /// How many requests `fault` is for.
    fn times(fault: &Self::Fault) -> u32;
}

/// A simulator's state under its lock, and the server answering from it: what each
/// provider's `Simulator` derefs to.
#[derive(Debug)]
pub struct Hosted<S> {
    state: Arc<Mutex<S>>,
    server: Server,
}

impl<S: Simulated> Hosted<S> {
    /// Serves `app` over `state` on `addr` (port 0 picks a free one); `name` names it in the
    /// log if it stops.
    pub async fn start(
        name: &'static str,
        state: S,
        app: impl FnOnce(Arc<Mutex<S>>) -> axum::Router,
        addr: SocketAddr,
    ) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(state));
        let server = Server::start(name, app(state.clone()), addr).await?;
        Ok(Self { state, server })
    }

    /// As [`Hosted::start`], over TLS with `tls`'s certificate.
    pub async fn start_tls(
        name: &'static str,
        state: S,
        app: impl FnOnce(Arc<Mutex<S>>) -> axum::Router,
        addr: SocketAddr,
        tls: &Tls,
    ) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(state));
        let server = Server::start_tls(name, app(state.clone()), addr, tls).await?;
        Ok(Self { state, server })
    }

    /// The base URL.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The state, locked.
    pub fn lock(&self) -> MutexGuard<'_, S> {
        self.state.lock().expect("simulator mutex poisoned")
    }

    /// Queues a fault.
    pub fn inject(&self, fault: S::Fault) {
        self.inject_lasting(fault, None);
    }

    /// Queues a fault that lapses after `lasting` (when given), used up or not.
    pub fn inject_lasting(&self, fault: S::Fault, lasting: Option<Duration>) {
        let times = S::times(&fault);
        self.lock()
            .harness()
            .faults
            .push_lasting(fault, times, lasting);
    }

    /// Removes every queued fault.
    pub fn clear_faults(&self) {
        self.lock().harness().faults.clear();
    }

    /// Switches the not-visible-yet and forgotten edges for every job, made before or after.
    pub fn set_lifetimes(&self, lifetimes: Lifetimes) {
        self.lock().harness().lifetimes = lifetimes;
    }

    /// Jobs created for one idempotency key.
    pub fn jobs_for_key(&self, key: &str) -> u64 {
        self.lock().harness().counters.jobs_for_key(key)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_serves_its_count_then_the_next_in_line() {
        let mut q = FaultQueue::default();
        q.push("a", 2);
        q.push("b", 1);
        q.push("never", 0);
        assert_eq!(q.take(|f| *f == "b"), Some("b"));
        assert_eq!(q.take(|f| *f == "b"), None);
        assert_eq!(q.take(|_| true), Some("a"));
        assert_eq!(q.take(|_| true), Some("a"));
        assert_eq!(q.take(|_| true), None);
        assert!(q.is_empty());
    }

    #[test]
    fn a_fault_with_a_deadline_lapses_unused() {
        let mut q = FaultQueue::default();
        let past = Instant::now() - Duration::from_millis(1);
        let later = Instant::now() + Duration::from_secs(60);
        q.push_until("lapsed", 5, Some(past));
        q.push_until("live", 1, Some(later));
        q.push("kept", 1);
        assert_eq!(q.take(|_| true), Some("live"));
        assert_eq!(q.take(|_| true), Some("kept"));
        assert_eq!(q.take(|_| true), None);
        assert!(q.is_empty());
    }

    #[test]
    fn a_job_is_unreadable_until_visible_and_after_it_is_forgotten() {
        let t0 = Instant::now();
        let s = |n| Duration::from_secs(n);
        let kept = Lifetimes::default();
        assert!(kept.readable(t0, Some(t0), t0 + s(1_000_000)));
        let edges = Lifetimes {
            invisible_for: s(2),
            forget_after: Some(s(10)),
        };
        assert!(!edges.readable(t0, None, t0 + s(1)));
        assert!(edges.readable(t0, None, t0 + s(2)));
        assert!(edges.readable(t0, None, t0 + s(1000)), "running: kept");
        assert!(edges.readable(t0, Some(t0 + s(5)), t0 + s(14)));
        assert!(!edges.readable(t0, Some(t0 + s(5)), t0 + s(15)));
        let at_once = Lifetimes {
            invisible_for: Duration::ZERO,
            forget_after: Some(Duration::ZERO),
        };
        assert!(
            at_once.readable(t0, Some(t0 + s(5)), t0 + s(4)),
            "not ended yet"
        );
        assert!(
            !at_once.readable(t0, Some(t0 + s(5)), t0 + s(5)),
            "gone as it ends"
        );
    }
}
