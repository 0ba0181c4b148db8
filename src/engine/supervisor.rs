//! The supervisor loop: claim jobs under leases, renew the leases, poll each job when due.
//!
//! Several supervisors may share one PostgreSQL database. Each holds one lease, its row in the
//! `supervisors` table, that covers every job it holds (a **group lease**: a job it holds names
//! it as `lease_owner`, and has no lease time of its own), so that renewing is one statement on
//! one row however many jobs it holds; fencing is per job as before (owner and epoch). It
//! claims unfinished jobs whose lease is free or has run out (so a crashed supervisor's jobs
//! move to another once its group lease expires), up to
//! its fair share: the unfinished jobs divided by the supervisors seen within one lease time
//! (itself included), claimed `claim_batch` at a time until the share is reached or nothing is
//! left. One that holds more than its share (another supervisor joined) hands the excess back.
//! It renews its leases every third of the lease time (and learns there of cancels asked for
//! elsewhere, even for a job whose poll is in flight), and polls the jobs it holds when they are
//! due, at most `max_concurrent_polls` at once. A job whose lease renewal or fenced write fails
//! is dropped at once: someone else holds it now.
//!
//! What it holds in memory and what the database says it holds are kept the same, compared at
//! every renewal by a digest of (job, lease epoch): a job whose lease is gone is dropped (once
//! its poll in flight is back), a job claimed again after its lease ran out (renewals failed
//! meanwhile) ignores what returns of a poll or sweep under the earlier lease, and a lease it
//! holds without knowing (a claim whose answer was lost) is handed back rather than renewed
//! unpolled forever.
//!
//! Every time it writes or compares is on the database's clock ([`crate::clock::DbClock`]),
//! synced at each renewal, which also measures this process's skew: beyond
//! `supervisor.max_clock_skew` the supervisor claims nothing and is not counted in the
//! `supervisors` table (so the others' fair shares cover every job), while it keeps renewing
//! its group lease and polling what it holds.
//!
//! It refuses to run (at start, and at every renewal) beside a live supervisor of another
//! lease protocol ([`crate::db::members::PROTOCOL`]): one from before group leases takes a
//! group-held job for free. Upgrading is: stop all supervisors, migrate, start.
//!
//! Each provider account's rate limit is split evenly among the live supervisors (the same
//! count as the fair share), so that three supervisors do not make three times the calls.
//!
//! The jobs wait in a due-time queue (a heap keyed by next-poll time): a wake-up touches only
//! the jobs that are due. The supervisor keeps what a poll needs of each held job in memory
//! ([`HeldJob`], not the whole record) and polls from it, so a poll reads nothing first and
//! writes only what changed.
//!
//! On shutdown the loop stops claiming, waits for polls in flight (up to
//! `shutdown_grace`), and releases its leases. It never cancels a remote job.
//!
//! The loop is its state (`Running`: held jobs, the due queue, polls and sweeps in flight)
//! and one handler per event: `on_heartbeat_due` (renew), `on_claim_due` (claim),
//! `dispatch` (start due polls and sweeps), `on_poll`, `on_sweep`, and `stop`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use tether_provider::{ProviderError, RemoteStatus, Sweep, SweepPart, Tracked};

use super::coalesce::{Coalescer, Pace, Route};
use super::poll::PollOutcome;
use super::{Engine, EngineError};
use crate::clock::to_millis;
use crate::db::jobs::lease_digest;
use crate::jobs::{HeldJob, Lease};
use crate::model::{Epoch, JobId, Millis};

/// How long a supervisor that learns of a cancel at a renewal leaves it to the process that
/// recorded it (the API sends the cancel itself right away) before it sends it itself.
const CANCEL_HANDOFF: Duration = Duration::from_secs(2);

/// How often a claim also walks every unfinished job, besides its index searches: for jobs
/// whose holder has no row in `supervisors` at all, which no index finds. No binary of this
/// protocol leaves such jobs (leaving and forgetting a supervisor hand its jobs back), so this
/// is a safety net, at the cost of one walk (50 ms at 100,000 jobs on SQLite) per period.
const THOROUGH_CLAIM_EVERY: Duration = Duration::from_secs(600);

/// A job this supervisor holds.
#[derive(Debug)]
struct Held {
    /// The job as this supervisor last wrote or read it: what a poll starts from.
    job: HeldJob,
    /// A sweep covered it since its last poll: the next poll takes `listed` (what the sweep
    /// reported, if anything) and asks singly for what the sweep did not settle.
    swept: bool,
    /// What that sweep reported for it (boxed: most held jobs have none).
    listed: Option<Box<RemoteStatus>>,
    /// A provider event named it since its last poll started: it is polled now, singly
    /// (a status call of its own, whatever a sweep said), or as soon as its poll in flight is
    /// back (it leaves a sweep that covers it).
    poked: bool,
    /// Which queue entry is this job's current one (older entries are skipped when popped).
    seq: u64,
    /// What of it is in flight: nothing, a poll, or a sweep.
    flight: Flight,
    /// Its lease was found gone while a poll or sweep of it was in flight: it is dropped when
    /// that comes back (whatever it learnt, another supervisor holds the job now).
    orphaned: bool,
}

/// What of a held job is in flight. A sweep only reads (what it says is settled when it is
/// back), so a job an event names while a sweep covers it leaves that sweep and is polled
/// singly at once: the sweep's word on it is then ignored. A poll carries the job's record,
/// and the job waits for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flight {
    /// Nothing: it can be polled or swept.
    Idle,
    /// A poll of it.
    Poll,
    /// The sweep with this number covers it.
    Sweep(u64),
}

impl Held {
    /// Whether nothing of it is in flight.
    fn idle(&self) -> bool {
        self.flight == Flight::Idle
    }

    /// Takes back the record a poll started from and updated, keeping a cancel request that
    /// the supervisor learnt of while the poll was in flight (the poll's copy predates it).
    /// Returns whether there was one: its cancel still has to be sent.
    fn take_poll(&mut self, polled: HeldJob) -> bool {
        let learnt = polled.cancel_requested_at.is_none() && self.job.cancel_requested_at.is_some();
        let asked = self.job.cancel_requested_at;
        self.job = polled;
        if learnt {
            self.job.cancel_requested_at = asked;
        }
        learnt
    }
}

/// The held job that flight `flight` (a poll, or a sweep) started under lease `epoch` comes
/// back to, idle again; `None` when the result is not its to take: the job was claimed again
/// meanwhile (the result belongs to the earlier lease, the new one polls for itself), it left
/// the sweep for a poll of its own (an event named it), or its lease went while the flight was
/// out (the job is dropped now).
fn back_from_flight(
    held: &mut HeldJobs,
    id: JobId,
    epoch: Epoch,
    flight: Flight,
) -> Option<&mut Held> {
    let ours = |h: &Held| h.flight == flight && h.job.lease_epoch == epoch;
    match held.get(&id) {
        Some(h) if ours(h) && h.orphaned => {
            held.remove(&id);
            None
        }
        Some(h) if ours(h) => {
            let h = held.get_mut(&id)?;
            h.flight = Flight::Idle;
            Some(h)
        }
        _ => {
            tracing::debug!(
                job_id = id.0,
                epoch = epoch.0,
                "result of a poll or sweep under an earlier lease (or of a job no longer held) ignored"
            );
            None
        }
    }
}

/// The jobs held, by id. Boxed, so that the table (sized in powers of two, and copied when it
/// grows) holds pointers rather than whole jobs.
type HeldJobs = HashMap<JobId, Box<Held>>;

/// The due-time queue: (due time in ms, entry sequence, job id), soonest first.
#[derive(Debug, Default)]
struct DueQueue {
    heap: BinaryHeap<Reverse<(i64, u64, JobId)>>,
    next_seq: u64,
}

impl DueQueue {
    /// Schedules `held` at `at`; any earlier entry of the job goes stale.
    fn schedule(&mut self, id: JobId, held: &mut Held, at: DateTime<Utc>) {
        self.next_seq += 1;
        held.seq = self.next_seq;
        self.heap.push(Reverse((to_millis(at), self.next_seq, id)));
    }

    /// A number for a sweep about to start, that no other sweep had (drawn from the entries'
    /// sequence).
    fn next_sweep(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// When the soonest entry is due.
    fn next_due(&self) -> Option<i64> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }
}

type PollResult = (JobId, HeldJob, Result<PollOutcome, EngineError>);
/// A finished sweep: the account, its number, the jobs it covered (id and the lease epoch it was started
/// under), and what it learned.
type SweepResult = (
    String,
    u64,
    Vec<(JobId, Epoch)>,
    Result<Sweep, ProviderError>,
);

/// What the supervisor's loop keeps from one turn to the next.
struct Running {
    /// The jobs it holds, by id.
    held: HeldJobs,
    /// When each is next due.
    queue: DueQueue,
    /// Polls in flight.
    polls: JoinSet<PollResult>,
    /// Sweeps in flight.
    sweeps: JoinSet<SweepResult>,
    /// The sweeps' book, per account.
    coalescer: Coalescer,
    /// Provider calls in flight at once (`max_concurrent_polls`).
    permits: Arc<Semaphore>,
    heartbeat_every: Duration,
    claim_every: Duration,
    next_heartbeat: DateTime<Utc>,
    next_claim: DateTime<Utc>,
    /// When a claim next also walks every unfinished job for holders that have no row in
    /// `supervisors` (see [`THOROUGH_CLAIM_EVERY`]); the first claim does.
    next_thorough_claim: DateTime<Utc>,
    /// Database failures in a row: claims and heartbeats back off while it is unreachable.
    db_failures: u32,
    /// Pokes may have been missed (the relay was down): read them from the database.
    pokes_missed: bool,
    /// Since when pokes were last read from the database (ms), when some were missed.
    pokes_read_since: Millis,
    /// When reading them next, after a failed read (backing off with `db_failures`).
    pokes_retry_at: DateTime<Utc>,
    /// The one job supervised has finished (`tether run`).
    done: bool,
    /// A live supervisor of another lease protocol was found at a renewal: the loop ends,
    /// with this error.
    refused: Option<EngineError>,
    /// Until when its group lease was last renewed (`tether serve`): it claims only while
    /// that lease is alive, or the jobs it claims would be free to claim again at once.
    lease_alive_until: DateTime<Utc>,
    /// Renewals since its leases were last compared with the database's (see `renew`).
    renewals_since_compare: u32,
    /// A claim failed (its answer may have been lost, with leases taken): compare at the next
    /// renewal.
    compare_forced: bool,
}

impl Running {
    fn new(engine: &Engine) -> Self {
        let settings = engine.settings();
        Self {
            held: HeldJobs::new(),
            queue: DueQueue::default(),
            polls: JoinSet::new(),
            sweeps: JoinSet::new(),
            coalescer: Coalescer::default(),
            permits: Arc::new(Semaphore::new(settings.max_concurrent_polls as usize)),
            heartbeat_every: settings.lease / 3,
            claim_every: (settings.lease / 6)
                .clamp(Duration::from_millis(250), Duration::from_secs(5)),
            next_heartbeat: engine.now(),
            next_claim: engine.now(),
            next_thorough_claim: engine.now(),
            db_failures: 0,
            pokes_missed: false,
            pokes_read_since: Millis::from(engine.now()),
            pokes_retry_at: engine.now(),
            done: false,
            refused: None,
            lease_alive_until: DateTime::<Utc>::MIN_UTC,
            renewals_since_compare: 0,
            compare_forced: true,
        }
    }

    /// How long until the next renewal, claim or due poll.
    fn until_next_due(&self, engine: &Engine) -> Duration {
        let mut wake = to_millis(self.next_heartbeat.min(self.next_claim));
        if let Some(due) = self.queue.next_due() {
            wake = wake.min(due);
        }
        if let Some(sweep) = self.coalescer.next_due() {
            wake = wake.min(to_millis(sweep));
        }
        Duration::from_millis((wake - to_millis(engine.now())).max(0) as u64)
    }
}

/// What ends the loop's wait. One lives on the stack per turn: a poll's result is not boxed
/// (that would allocate once per poll).
#[allow(clippy::large_enum_variant)]
enum Wake {
    Shutdown,
    Poll(Result<PollResult, tokio::task::JoinError>),
    Sweep(Result<SweepResult, tokio::task::JoinError>),
    /// A provider event named jobs (this supervisor's, perhaps).
    Poked,
    /// A renewal, a claim or a poll is due.
    Due,
}

/// How long claims and heartbeats wait after `n` database failures in a row.
fn backoff(n: u32) -> Duration {
    Duration::from_millis(250u64 << n.min(6)).min(Duration::from_secs(10))
}

/// Claims and polls jobs until shut down.
#[derive(Debug)]
pub struct Supervisor {
    engine: Engine,
    /// Only this job (`tether run` supervises its own job); `None` for all.
    only: Option<JobId>,
}

impl Supervisor {
    /// A supervisor for every unfinished job.
    pub fn new(engine: Engine) -> Self {
        Self { engine, only: None }
    }

    /// A supervisor for one job.
    pub fn for_job(engine: Engine, job_id: JobId) -> Self {
        Self {
            engine,
            only: Some(job_id),
        }
    }

    /// Runs until `shutdown` is cancelled (or, for one job, until it finishes). Database
    /// failures are logged and retried; they never end the loop.
    ///
    /// Each turn: renew the leases and claim jobs when those are due, start the due polls and
    /// sweeps, then wait for whatever comes first (a poll or a sweep back, the next due time,
    /// shutdown) and hand it to its handler.
    pub async fn run(self, shutdown: CancellationToken) {
        if let Err(e) = self.supervise(shutdown).await {
            tracing::error!(error = %e, "supervisor stopped");
        }
    }

    /// As [`Supervisor::run`], but ends with an error when a live supervisor of another lease
    /// protocol shares the database ([`EngineError::LeaseProtocol`]; checked before anything
    /// is claimed, and at every renewal): it then hands its leases back and stops.
    pub async fn supervise(self, shutdown: CancellationToken) -> Result<(), EngineError> {
        let engine = &self.engine;
        if self.only.is_none() {
            self.check_protocol().await?;
        }
        let mut s = Running::new(engine);
        tracing::info!(owner = engine.owner(), "supervisor started");
        while !s.done && s.refused.is_none() && !shutdown.is_cancelled() {
            let now = engine.now();
            if now >= s.next_heartbeat {
                self.on_heartbeat_due(&mut s, now).await;
            }
            if now >= s.next_claim {
                self.on_claim_due(&mut s, now).await;
            }
            if s.pokes_missed && now >= s.pokes_retry_at {
                self.read_missed_pokes(&mut s).await;
            }
            self.dispatch(&mut s);
            let sleep = s.until_next_due(engine);
            let wake = tokio::select! {
                _ = shutdown.cancelled() => Wake::Shutdown,
                Some(joined) = s.polls.join_next(), if !s.polls.is_empty() => Wake::Poll(joined),
                Some(joined) = s.sweeps.join_next(), if !s.sweeps.is_empty() => Wake::Sweep(joined),
                _ = engine.changes().poked() => Wake::Poked,
                _ = tokio::time::sleep(sleep) => Wake::Due,
            };
            match wake {
                Wake::Shutdown => break,
                Wake::Poll(Ok(result)) => self.on_poll(&mut s, result).await,
                Wake::Sweep(Ok(result)) => self.on_sweep(&mut s, result),
                Wake::Poked => self.on_poked(&mut s),
                // A poll or sweep task that panicked (none should) brings nothing back: its
                // jobs stay marked in flight.
                Wake::Poll(Err(_)) | Wake::Sweep(Err(_)) | Wake::Due => {}
            }
        }
        let refused = s.refused.take();
        self.stop(s).await;
        refused.map_or(Ok(()), Err)
    }

    /// Refuses to start beside a live supervisor of another lease protocol.
    pub async fn check_protocol(&self) -> Result<(), EngineError> {
        let engine = &self.engine;
        let now = engine.now();
        let other = engine
            .members()
            .other_protocol(engine.owner(), Millis::from(now), self.live_since(now))
            .await?;
        other.map_or(Ok(()), |other| Err(other.into()))
    }

    /// Since when a supervisor seen counts as alive: one lease time.
    fn live_since(&self, now: DateTime<Utc>) -> Millis {
        Millis::from(now).plus(-(self.engine.settings().lease.as_millis() as i64))
    }

    /// Renews the leases; after a failure, tries again sooner, backing off.
    async fn on_heartbeat_due(&self, s: &mut Running, now: DateTime<Utc>) {
        s.next_heartbeat = now + s.heartbeat_every;
        let compare_due =
            s.compare_forced || s.renewals_since_compare + 1 >= compare_every(s.held.len());
        let renewed = self
            .renew(&mut s.held, &mut s.queue, compare_due, s.lease_alive_until)
            .await;
        match renewed {
            Ok(compared) => {
                s.db_failures = 0;
                s.lease_alive_until = now + self.engine.settings().lease;
                if compared {
                    s.renewals_since_compare = 0;
                    s.compare_forced = false;
                } else {
                    s.renewals_since_compare += 1;
                }
            }
            Err(e @ EngineError::LeaseProtocol { .. }) => {
                tracing::error!(error = %e, "another lease protocol is alive: stopping");
                s.refused = Some(e);
            }
            Err(e) => {
                s.db_failures += 1;
                s.next_heartbeat = now + backoff(s.db_failures).min(s.heartbeat_every);
                tracing::warn!(error = %e, failures = s.db_failures, "renewing leases failed; retrying");
            }
        }
    }

    /// Provider events named jobs: those it holds are due now (see [`super::events`]).
    fn on_poked(&self, s: &mut Running) {
        let poked = self.engine.changes().take_pokes();
        s.pokes_missed |= poked.missed;
        for id in poked.jobs {
            mark_poked(s, id);
        }
    }

    /// The relay of pokes was down for a while: reads the pokes of the jobs it holds since
    /// the last read (a few seconds' margin for the clocks of the processes that poked).
    async fn read_missed_pokes(&self, s: &mut Running) {
        let engine = &self.engine;
        let now = engine.now();
        let since = s.pokes_read_since.plus(-MISSED_POKES_MARGIN_MS);
        match engine.pokes().poked_since(engine.owner(), since).await {
            Ok(ids) => {
                s.pokes_missed = false;
                s.pokes_read_since = Millis::from(now);
                for id in ids {
                    mark_poked(s, id);
                }
            }
            Err(e) => {
                s.db_failures += 1;
                s.pokes_retry_at = now + backoff(s.db_failures);
                tracing::warn!(error = %e, failures = s.db_failures,
                    "reading missed pokes failed; retrying with backoff")
            }
        }
    }

    /// Claims jobs; after a failure, backs off.
    async fn on_claim_due(&self, s: &mut Running, now: DateTime<Utc>) {
        s.next_claim = now + s.claim_every;
        if self.only.is_none() && now >= s.lease_alive_until {
            // Its group lease has run out (renewals failed): what it claimed now would be
            // free for anyone at once. The next successful renewal revives it.
            return;
        }
        let thorough = now >= s.next_thorough_claim;
        match self.claim(&mut s.held, &mut s.queue, thorough).await {
            Ok(()) => {
                s.db_failures = 0;
                if thorough {
                    s.next_thorough_claim = now + THOROUGH_CLAIM_EVERY;
                }
            }
            Err(e) => {
                s.db_failures += 1;
                s.compare_forced = true;
                s.next_claim = now + backoff(s.db_failures);
                tracing::warn!(error = %e, failures = s.db_failures, "claiming jobs failed; retrying with backoff");
            }
        }
    }

    /// Starts the sweeps that are due, then every due poll that a permit allows; due jobs of
    /// an account that coalesces wait for its sweep when one runs or comes soon (see
    /// `coalesce`).
    fn dispatch(&self, s: &mut Running) {
        let engine = &self.engine;
        let now = engine.now();
        let now_ms = to_millis(now);
        self.start_due_sweeps(s, now);
        // Accounts whose sweep of due jobs was not worth it this turn: their other due jobs
        // are polled singly without asking again (each ask scans every held job).
        let mut unswept: Vec<String> = Vec::new();
        while let Some(Reverse((at, seq, id))) = s.queue.heap.peek().copied() {
            if at > now_ms {
                break;
            }
            let Some(h) = s.held.get_mut(&id).filter(|h| h.seq == seq && h.idle()) else {
                s.queue.heap.pop();
                continue;
            };
            if !h.swept && !h.poked && sweepable(&h.job) {
                let name = h.job.provider.clone();
                let route = match engine.providers().get(&name) {
                    Ok(p) => s.coalescer.route(&name, &*p, now, h.job.poll_interval_ms),
                    Err(_) => Route::Single,
                };
                match route {
                    Route::Wait => {
                        s.queue.heap.pop();
                        s.coalescer.defer(&name, id);
                        continue;
                    }
                    Route::Sweep if !unswept.contains(&name) => {
                        // No pace (no paced sweep runs, or none was worth it): every due job
                        // may be covered.
                        let every_ms = s.coalescer.every_ms(&name).unwrap_or(i64::MAX);
                        let cover = Cover::DueBy(now_ms, every_ms);
                        if let Some((covered, parts)) = start_sweep(
                            engine,
                            &name,
                            &mut s.held,
                            &mut s.coalescer,
                            &mut s.sweeps,
                            cover,
                            &mut s.queue,
                        ) {
                            tracing::debug!(provider = %name, jobs = covered, parts, "sweep of due jobs started");
                            s.queue.heap.pop();
                            continue;
                        }
                        unswept.push(name);
                    }
                    Route::Sweep | Route::Single => {}
                }
            }
            let Some(h) = s.held.get_mut(&id) else {
                continue;
            };
            let Ok(permit) = s.permits.clone().try_acquire_owned() else {
                break;
            };
            s.queue.heap.pop();
            h.flight = Flight::Poll;
            let engine = engine.clone();
            let mut job = h.job.clone();
            // A poked job is asked about afresh: what a sweep said may predate the event.
            let listed = h.listed.take().filter(|_| !h.poked).map(|l| *l);
            h.swept = false;
            h.poked = false;
            let lease = Lease {
                job_id: id,
                owner: engine.owner().to_string(),
                epoch: job.lease_epoch,
            };
            s.polls.spawn(async move {
                let result = engine.poll_record(&mut job, &lease, listed).await;
                drop(permit);
                (id, job, result)
            });
        }
    }

    /// Starts a sweep of each account that coalesces whose sweep is due, covering every
    /// active job of it this supervisor holds that is idle; schedules the next when none is
    /// worth starting (too few jobs), and hands the jobs that waited for it back.
    fn start_due_sweeps(&self, s: &mut Running, now: DateTime<Utc>) {
        let engine = &self.engine;
        for (name, provider) in engine.providers().iter() {
            if !provider.coalesces() || !s.coalescer.sweep_due(name, now) {
                continue;
            }
            match start_sweep(
                engine,
                name,
                &mut s.held,
                &mut s.coalescer,
                &mut s.sweeps,
                Cover::All,
                &mut s.queue,
            ) {
                Some((covered, parts)) => {
                    tracing::debug!(provider = %name, jobs = covered, parts, "sweep of every held job started");
                }
                None => {
                    let poll_max = engine.providers().poll(name, provider.settings()).max;
                    let next = now + Pace::of(&**provider, poll_max).every;
                    for id in s.coalescer.skipped(name, next) {
                        if let Some(h) = s.held.get_mut(&id).filter(|h| h.idle()) {
                            s.queue.schedule(id, h, now);
                        }
                    }
                }
            }
        }
    }

    /// A poll came back: the job is queued for its next poll, or dropped when it finished or
    /// its lease was lost.
    async fn on_poll(&self, s: &mut Running, (id, job, result): PollResult) {
        let engine = &self.engine;
        let Some(h) = back_from_flight(&mut s.held, id, job.lease_epoch, Flight::Poll) else {
            return;
        };
        match result {
            Ok(PollOutcome::Again(at)) => {
                let cancel_learnt = h.take_poll(job);
                // A cancel learnt during the poll is sent now, not at `at`; so is a poll
                // asked for by an event heard meanwhile.
                let at = if h.poked {
                    AHEAD_OF_ALL
                } else if cancel_learnt {
                    engine.now()
                } else {
                    at
                };
                s.queue.schedule(id, h, at);
            }
            Ok(outcome @ (PollOutcome::Finished | PollOutcome::LeaseLost)) => {
                if outcome == PollOutcome::LeaseLost {
                    crate::metrics::LEASES.with_label_values(&["lost"]).inc();
                }
                s.held.remove(&id);
                if self.only == Some(id) {
                    s.done = self.only_job_finished(id).await;
                }
            }
            Err(e) => {
                tracing::warn!(job_id = id.0, error = %e, "poll failed; retrying");
                s.queue
                    .schedule(id, h, engine.now() + Duration::from_secs(1));
            }
        }
    }

    /// A sweep came back: swept jobs are polled now, with what the sweep said (most are
    /// unchanged and settled here, without a task or a write); after a failed sweep they wait
    /// (for the provider's Retry-After, if it gave one) and are swept again. Jobs deferred
    /// while it ran are due now.
    fn on_sweep(&self, s: &mut Running, (name, number, ids, result): SweepResult) {
        let engine = &self.engine;
        let now = engine.now();
        let provider = engine.providers().get(&name).ok();
        let poll = provider
            .as_ref()
            .map(|p| engine.providers().poll(&name, p.settings()));
        let pace = match (&provider, poll) {
            (Some(p), Some(poll)) => Pace::of(&**p, poll.max),
            _ => Pace {
                every: Duration::from_secs(60),
                rate_per_second: 0.0,
                retry: Duration::from_secs(5),
            },
        };
        let deferred = s.coalescer.finished(&name, &result, now, pace);
        let (statuses, at, swept) = match result {
            Ok(sweep) => (sweep.statuses, now, true),
            Err(e) => {
                let wait = e.retry_after.unwrap_or(Duration::from_secs(5));
                (Vec::new(), now + wait, false)
            }
        };
        let mut statuses = statuses.into_iter();
        let mut settled_here = 0u64;
        for (id, epoch) in ids {
            let listed = statuses.next().flatten();
            let Some(h) = back_from_flight(&mut s.held, id, epoch, Flight::Sweep(number)) else {
                continue;
            };
            // (A job an event named meanwhile left this sweep: it is not back here.)
            let settled = listed
                .as_ref()
                .zip(poll)
                .and_then(|(status, poll)| Engine::settle_listed(&mut h.job, status, poll, now));
            if let Some(next) = settled {
                settled_here += 1;
                s.queue.schedule(id, h, next);
            } else {
                h.swept = swept;
                h.listed = listed.map(Box::new);
                // A cancel learnt during the sweep is sent now, whatever the sweep met.
                let at = if h.job.cancel_unsent() { now } else { at };
                s.queue.schedule(id, h, at);
            }
        }
        crate::metrics::POLLS
            .with_label_values(&[name.as_str(), "listed"])
            .inc_by(settled_here);
        for id in deferred {
            if let Some(h) = s.held.get_mut(&id).filter(|h| h.idle()) {
                s.queue.schedule(id, h, now);
            }
        }
    }

    /// Shutdown: lets polls in flight finish (for the grace period), then hands every lease
    /// back. Remote jobs are left running.
    async fn stop(&self, mut s: Running) {
        let engine = &self.engine;
        let grace = tokio::time::timeout(engine.settings().shutdown_grace, async {
            while s.polls.join_next().await.is_some() {}
        });
        if grace.await.is_err() {
            s.polls.abort_all();
        }
        s.sweeps.abort_all();
        if self.only.is_none() {
            if let Err(e) = engine.members().leave(engine.owner()).await {
                tracing::warn!(error = %e, "leaving the supervisors' table failed; it ages out");
            }
        }
        match engine.jobs().release_all(engine.owner()).await {
            Ok(n) => tracing::info!(
                released = n,
                "supervisor stopped; leases released, remote jobs left running"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "releasing leases failed; they expire by themselves")
            }
        }
    }

    /// Renews every lease this supervisor holds in one statement (its group lease: its row in
    /// `supervisors`, one row however many jobs; `tether run` renews its one job's own lease),
    /// then compares a digest of
    /// the leases the database says it holds with the same digest of the jobs it holds (one
    /// row either way). Only when they differ does it ask which it has: it drops the jobs it
    /// no longer holds (another supervisor may hold them now; fencing refuses their writes
    /// anyway), or marks them to be dropped when their poll in flight comes back, and hands
    /// back the leases it holds without knowing. Then it learns of cancels asked for
    /// elsewhere, and sends them now rather than at the next poll.
    ///
    /// The comparison reads every lease it holds (the database's side of the digest), so with
    /// many jobs it is made every few renewals only ([`compare_every`]: about 10,000 leases
    /// read per renewal, amortised), but always (`compare_due`) after a claim failed and at the
    /// first renewal, and whenever its group lease may have run out since the last renewal
    /// (`alive_until` passed: another supervisor may have claimed its jobs). Returns whether
    /// it compared.
    async fn renew(
        &self,
        held: &mut HeldJobs,
        queue: &mut DueQueue,
        compare_due: bool,
        alive_until: DateTime<Utc>,
    ) -> Result<bool, EngineError> {
        let engine = &self.engine;
        engine.sync_clock().await?;
        let now = engine.now();
        let jobs = engine.jobs();
        if self.only.is_none() {
            // While its clock is untrusted it claims nothing and is not counted among the
            // live supervisors (the others' fair shares then cover every job), but its lease
            // stays alive: it keeps polling what it holds.
            let claiming = engine.clock_trusted().is_ok();
            let renewal = engine
                .members()
                .renew(
                    engine.owner(),
                    Millis::from(now),
                    engine.lease_until(now),
                    claiming,
                    self.live_since(now),
                )
                .await?;
            if let Some(other) = renewal.other {
                return Err(other.into());
            }
            crate::crash::crash_point("during_renewal");
        } else {
            crate::crash::crash_point("during_renewal");
            jobs.renew(engine.owner(), Millis::from(now), engine.lease_until(now))
                .await?;
        }
        let compare = compare_due || self.only.is_some() || engine.now() >= alive_until;
        let in_memory = if compare {
            held.iter()
                .filter(|(_, h)| !h.orphaned)
                .fold((0i64, 0i64), |(n, d), (id, h)| {
                    (n + 1, d.wrapping_add(lease_digest(*id, h.job.lease_epoch)))
                })
        } else {
            (0, 0)
        };
        let in_db = if compare {
            jobs.lease_digest_of(engine.owner(), Millis::from(now))
                .await?
        } else {
            in_memory
        };
        if in_db != in_memory {
            let live: HashMap<JobId, Epoch> = jobs
                .leases_of(engine.owner(), Millis::from(now))
                .await?
                .into_iter()
                .map(|r| (r.job_id, r.epoch))
                .collect();
            held.retain(|id, h| {
                if live.get(id) == Some(&h.job.lease_epoch) {
                    return true;
                }
                if !h.orphaned {
                    tracing::warn!(job_id = id.0, "lease lost; another supervisor may hold it");
                }
                h.orphaned = !h.idle();
                h.orphaned
            });
            // A lease this supervisor holds without knowing it (a claim whose answer was lost
            // with the connection, say) would be renewed with the others and never polled:
            // it is handed back, for whoever claims next.
            for (&job_id, &epoch) in &live {
                if held
                    .get(&job_id)
                    .is_none_or(|h| h.orphaned || h.job.lease_epoch != epoch)
                {
                    let lease = Lease {
                        job_id,
                        owner: engine.owner().to_string(),
                        epoch,
                    };
                    if jobs.release(&lease).await? {
                        tracing::warn!(
                            job_id = job_id.0,
                            epoch = epoch.0,
                            "a lease held unknowingly was handed back"
                        );
                        crate::metrics::LEASES
                            .with_label_values(&["released"])
                            .inc();
                    }
                }
            }
        }
        for pending in jobs.cancels_pending(engine.owner()).await? {
            if let Some(h) = held.get_mut(&pending.job_id) {
                if h.job.cancel_requested_at.is_none() {
                    // Recorded even while a poll or sweep of the job is in flight: its result
                    // keeps the request (see `Held::take_poll`), and the job is polled, which
                    // sends the cancel, as soon as it is back.
                    h.job.cancel_requested_at = Some(now);
                    if h.idle() {
                        // After a moment: the process that recorded the request sends it
                        // itself at once, and the poll then finds it sent.
                        queue.schedule(pending.job_id, h, now + CANCEL_HANDOFF);
                    }
                }
            }
        }
        Ok(compare)
    }

    /// Claims free jobs up to this supervisor's fair share, `claim_batch` at a time, and
    /// queues them at their next-poll time.
    async fn claim(
        &self,
        held: &mut HeldJobs,
        queue: &mut DueQueue,
        thorough: bool,
    ) -> Result<(), EngineError> {
        let engine = &self.engine;
        if engine.clock_trusted().is_err() {
            // Said at each clock sync (see `Engine::sync_clock`); the jobs it holds are still
            // polled and renewed, on the database's clock.
            return Ok(());
        }
        let batch = i64::from(engine.settings().claim_batch.max(1));
        let mut want = match self.only {
            Some(_) => 1 - held.len() as i64,
            None => {
                let now = engine.now();
                let live_since =
                    Millis::from(now).plus(-(engine.settings().lease.as_millis() as i64));
                let (unfinished, supervisors) = engine.members().workload(live_since).await?;
                let sharers = supervisors.max(1);
                // Every provider account's rate limit is split among the live supervisors.
                for (_, provider) in engine.providers().iter() {
                    provider.share_rate_limit(sharers as u32);
                }
                let share = (unfinished + sharers - 1) / sharers;
                let excess = held.len() as i64 - share;
                // A little above the share is kept, so that shares do not flap.
                if excess > (share / 20).max(1) {
                    self.release_excess(held, excess as usize).await?;
                }
                share - held.len() as i64
            }
        };
        while want > 0 {
            let now = engine.now();
            let claimed = engine
                .jobs()
                .claim_batch(
                    engine.owner(),
                    Millis::from(now),
                    // A supervisor holds its jobs through its group lease; `tether run` holds
                    // its one job under a lease of its own.
                    self.only.map(|_| engine.lease_until(now)),
                    want.min(batch),
                    self.only,
                    thorough,
                )
                .await?;
            let got = claimed.len() as i64;
            if got > 0 {
                crate::crash::crash_point("during_claim");
            }
            for job in claimed {
                crate::metrics::LEASES.with_label_values(&["claimed"]).inc();
                tracing::debug!(job_id = job.id.0, epoch = job.lease_epoch.0, "claimed");
                let at = job.next_poll_at;
                let id = job.id;
                let mut h = Box::new(Held {
                    job,
                    swept: false,
                    listed: None,
                    poked: false,
                    seq: 0,
                    flight: Flight::Idle,
                    orphaned: false,
                });
                queue.schedule(id, &mut h, at);
                if let Some(earlier) = held.insert(id, h) {
                    // Its earlier lease ran out (renewals failed for a lease time) while it
                    // was held: what is in flight under that one is ignored when it returns.
                    tracing::info!(
                        job_id = id.0,
                        earlier_epoch = earlier.job.lease_epoch.0,
                        "claimed again after its lease ran out"
                    );
                }
            }
            if got < want.min(batch) {
                break;
            }
            want -= got;
        }
        Ok(())
    }

    /// Hands back `count` of the held jobs that are not being polled (another supervisor
    /// joined, so this one holds more than its share); whoever has room claims them.
    async fn release_excess(&self, held: &mut HeldJobs, count: usize) -> Result<(), EngineError> {
        let engine = &self.engine;
        let chosen: Vec<(JobId, Epoch)> = held
            .iter()
            .filter(|(_, h)| h.idle())
            .take(count)
            .map(|(id, h)| (*id, h.job.lease_epoch))
            .collect();
        for (id, epoch) in &chosen {
            let lease = Lease {
                job_id: *id,
                owner: engine.owner().to_string(),
                epoch: *epoch,
            };
            engine.jobs().release(&lease).await?;
            held.remove(id);
            crate::metrics::LEASES
                .with_label_values(&["released"])
                .inc();
        }
        tracing::info!(
            released = chosen.len(),
            "holding more than a fair share: leases handed back"
        );
        Ok(())
    }

    async fn only_job_finished(&self, id: JobId) -> bool {
        matches!(
            self.engine.jobs().phase(id).await,
            Ok(Some(crate::jobs::Phase::Terminal)) | Ok(None)
        )
    }
}

/// About how many leases a renewal's comparison may read, amortised: a supervisor holding
/// more compares every [`compare_every`] renewals, so that renewing costs about the same at
/// 10,000 jobs and at 1,000,000.
const COMPARED_PER_RENEWAL: usize = 10_000;

/// Every how many renewals a supervisor holding `held` jobs compares its leases with the
/// database's (when nothing forces it sooner).
fn compare_every(held: usize) -> u32 {
    u32::try_from(held / COMPARED_PER_RENEWAL)
        .unwrap_or(u32::MAX)
        .max(1)
}

/// How far before the last read of missed pokes the next one reaches (ms): the processes
/// that poke write their own clock's time, synced to the database's.
const MISSED_POKES_MARGIN_MS: i64 = 5_000;

/// Marks held job `id` poked: due now, leaving the sweep that covers it if one does (the
/// sweep's word on it is then ignored); a job being polled is polled again as soon as that
/// poll is back.
fn mark_poked(s: &mut Running, id: JobId) {
    if let Some(h) = s.held.get_mut(&id) {
        if h.orphaned {
            return;
        }
        h.poked = true;
        if let Flight::Sweep(_) = h.flight {
            h.flight = Flight::Idle;
        }
        if h.idle() {
            s.queue.schedule(id, h, AHEAD_OF_ALL);
        }
    }
}

/// When a poked job is due: before every other due job (when the polls are behind, those
/// that an event says may have ended go first).
const AHEAD_OF_ALL: DateTime<Utc> = DateTime::UNIX_EPOCH;

/// Whether a job can be polled by a sweep: it has a handle and no cancel waiting to be sent.
fn sweepable(job: &HeldJob) -> bool {
    job.phase == crate::jobs::Phase::Active && job.handle.is_some() && !job.cancel_unsent()
}

/// Which held jobs of an account a sweep covers.
#[derive(Debug, Clone, Copy)]
enum Cover {
    /// Every idle active one: the account's paced sweep (a list call costs the same whichever
    /// of its jobs are due).
    All,
    /// Those due within half their polling interval of this time (ms), of those polled more
    /// often than the pace (ms; young ones): a sweep between paced ones, which lists only
    /// theirs where the provider can. The others wait for the paced sweep.
    DueBy(i64, i64),
}

/// Starts a sweep of account `name` over the jobs of it that are held, idle and active and that
/// `cover` takes, if that is worth a sweep, and notes it in the coalescer's book; returns how many
/// jobs it covers and in how many parts. Where the provider cuts sweeps in parts
/// ([`Provider::sweep_part`]), the jobs are sorted by creation and each part is a task of its own
/// that waits for the part before it, so that parts are asked about oldest first, one at a time,
/// and each comes back (and is settled) on its own.
///
/// [`Provider::sweep_part`]: tether_provider::Provider::sweep_part
fn start_sweep(
    engine: &Engine,
    name: &str,
    held: &mut HeldJobs,
    coalescer: &mut Coalescer,
    sweeps: &mut JoinSet<SweepResult>,
    cover: Cover,
    queue: &mut DueQueue,
) -> Option<(usize, usize)> {
    let provider = engine.providers().get(name).ok()?;
    let mut ids: Vec<(i64, JobId)> = held
        .iter()
        .filter(|(_, h)| {
            h.idle()
                && !h.swept
                && !h.poked
                && h.job.provider == name
                && sweepable(&h.job)
                && match cover {
                    Cover::All => true,
                    Cover::DueBy(now_ms, every_ms) => {
                        h.job.poll_interval_ms < every_ms
                            && to_millis(h.job.next_poll_at) <= now_ms + h.job.poll_interval_ms / 2
                    }
                }
        })
        .map(|(id, h)| (to_millis(h.job.created_at), *id))
        .collect();
    if !coalescer.worth_it(name, ids.len(), matches!(cover, Cover::All)) {
        return None;
    }
    let covered = ids.len();
    let part_size = provider.sweep_part().unwrap_or(usize::MAX).max(1);
    if part_size < covered {
        ids.sort_unstable();
    }
    let parts: Vec<&[(i64, JobId)]> = ids.chunks(part_size).collect();
    let count = parts.len();
    let mut previous: Option<tokio::sync::oneshot::Receiver<()>> = None;
    for (k, part) in parts.iter().enumerate() {
        let number = queue.next_sweep();
        let mut jobs = Vec::with_capacity(part.len());
        let mut covered_ids = Vec::with_capacity(part.len());
        for (created_ms, id) in part.iter() {
            let h = held.get_mut(id).expect("just listed");
            h.flight = Flight::Sweep(number);
            covered_ids.push((*id, h.job.lease_epoch));
            jobs.push((h.job.handle.clone().expect("sweepable"), *created_ms));
        }
        let bounds = SweepPart {
            after_earlier: k > 0,
            before_ms: parts.get(k + 1).map(|next| next[0].0),
        };
        let (done, next) = tokio::sync::oneshot::channel::<()>();
        let wait_for = previous.replace(next);
        let provider = provider.clone();
        let name = name.to_string();
        sweeps.spawn(async move {
            // The part before is back (or gone): this one's turn.
            if let Some(earlier) = wait_for {
                let _ = earlier.await;
            }
            let tracked: Vec<Tracked<'_>> = jobs
                .iter()
                .map(|(handle, created_ms)| Tracked {
                    handle,
                    created_ms: *created_ms,
                })
                .collect();
            let result = provider.status_part(&tracked, bounds).await;
            let _ = done.send(());
            if let Ok(sweep) = &result {
                crate::metrics::SWEEP_CALLS
                    .with_label_values(&[name.as_str()])
                    .inc_by(sweep.calls);
            }
            (name, number, covered_ids, result)
        });
    }
    // The jobs that waited for a sweep and are in this one are its now (no longer idle).
    coalescer.started(
        name,
        engine.now(),
        matches!(cover, Cover::All),
        count,
        |id| held.get(&id).is_some_and(|h| !h.idle()),
    );
    Some((covered, count))
}

#[cfg(test)]
mod tests {
    use super::compare_every;

    /// Up to 10,000 held jobs, every renewal compares; beyond, about 10,000 leases are read
    /// per renewal, amortised.
    #[test]
    fn comparisons_are_spread_with_many_jobs() {
        assert_eq!(compare_every(0), 1);
        assert_eq!(compare_every(9_999), 1);
        assert_eq!(compare_every(100_000), 10);
        assert_eq!(compare_every(1_000_000), 100);
    }
}
