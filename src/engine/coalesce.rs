//! Coalesced polling: when the supervisor asks a provider account about many jobs through its
//! list calls (a *sweep*, [`Provider::status_many`]) rather than one status call per job, and
//! what becomes of a sweep's answer.
//!
//! - Sweeps are paced per account, not per job: a sweep of an account that coalesces starts
//!   every `sweep_every` (the account's `poll_max`, or `poll_max_with_events`, when unset) and covers every active job of
//!   the account the supervisor holds, whatever each one's own cadence. A list call costs one
//!   call per page however many of the jobs on it are due, so a sweep that covered only the
//!   jobs due soon (as it once did: those due within half their interval) listed the same
//!   pages as a whole one, and two of them ran per cadence.
//! - The pace is bounded by the account's rate limit: sweeps take at most
//!   [`SWEEP_RATE_SHARE`] of this process's part of it (the previous sweep's calls set what
//!   the next is expected to cost), leaving the rest for single polls, confirmations and
//!   submissions. A sweep that takes longer than the pace is followed by the next at once.
//! - A sweep is worth it only when it costs fewer calls than the jobs it covers; otherwise
//!   the jobs are polled singly, each at its own cadence.
//! - A job that falls due while its account's sweep runs, shortly before the next one (within
//!   half its own polling interval), or whose interval is no shorter than the pace (the paced
//!   sweep covers it at its cadence), waits for that sweep rather than making a call of its
//!   own. A young job, polled more often than the pace, that falls due earlier starts a sweep
//!   of the young jobs due within half their interval, which lists only theirs where the
//!   provider can (Databricks lists from the oldest covered job's start). Such a sweep once
//!   covered every job due soon, young or not, and so listed nearly every page again between
//!   paced sweeps wherever the jobs were created within the clocks' skew of one another.
//! - What a sweep reports is the poll's answer for non-terminal states; a job the sweep did not
//!   report, or reported terminal, is asked about singly (see [`Engine::poll_record`]).
//! - A sweep of a provider whose list calls can be split by job ([`Provider::sweep_part`]:
//!   Databricks' `start_time` windows, Batch's reads by id) *rolls*: it is cut into parts of
//!   jobs contiguous in creation time, oldest first, asked about one after another, and each
//!   part's jobs are settled as soon as that part is back. A job's end is then heard about
//!   half a sweep interval plus one part after it happened, not plus the whole sweep; the
//!   calls are those of a whole sweep. The book below counts a sweep running until its last
//!   part is back.
//! - A sweep that fails puts its jobs back for later (after the provider's Retry-After); three
//!   failures in a row, or a refusal (the list call not permitted, say), pause coalescing for
//!   that account for [`PAUSE`]: its jobs are polled singly meanwhile.
//!
//! [`Engine::poll_record`]: super::Engine::poll_record

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tether_provider::{ErrorKind, Provider, ProviderError, Sweep};

use crate::model::JobId;

/// How long coalescing stays off for an account after it kept failing or was refused.
pub const PAUSE: Duration = Duration::from_secs(300);
/// Sweep failures in a row that pause coalescing.
const FAILURES_BEFORE_PAUSE: u32 = 3;
/// The share of this process's part of an account's rate limit that its sweeps may take.
pub const SWEEP_RATE_SHARE: f64 = 0.5;

/// The supervisor's book of sweeps, per provider account.
#[derive(Debug, Default)]
pub(crate) struct Coalescer {
    accounts: HashMap<String, Account>,
}

#[derive(Debug, Default)]
struct Account {
    /// Parts of the running sweep not back yet (0: none runs).
    running: usize,
    /// The calls the running sweep's parts made so far.
    calls: u64,
    /// Whether a part of the running sweep failed.
    failed: bool,
    /// When the running (or last) sweep started.
    started_at: Option<DateTime<Utc>>,
    /// Whether the running (or last) sweep is the paced one, of every held job.
    paced: bool,
    /// When the next sweep is due (`None`: at once, none has been scheduled).
    next_sweep: Option<DateTime<Utc>>,
    /// The pace (`sweep_every`) of the paced sweeps, in ms, while they run (unset when the
    /// last was not worth starting: the jobs are then polled singly).
    every_ms: Option<i64>,
    /// The calls the last sweep made: what the next one is expected to cost.
    last_calls: u64,
    /// The calls the last sweep of due jobs made.
    last_due_calls: u64,
    failures: u32,
    paused_until: Option<DateTime<Utc>>,
    /// Jobs that fell due while a sweep ran.
    deferred: Vec<JobId>,
}

/// What to do with a due job of an account that coalesces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Poll it singly.
    Single,
    /// A sweep of its account runs, or starts soon: wait for it.
    Wait,
    /// Start a sweep of the jobs due about now (if enough are to make it worth it).
    Sweep,
}

impl Coalescer {
    /// How a due job of `provider` (the account's name) whose polling interval is
    /// `interval_ms` is to be polled.
    pub(crate) fn route(
        &mut self,
        name: &str,
        provider: &dyn Provider,
        now: DateTime<Utc>,
        interval_ms: i64,
    ) -> Route {
        if !provider.coalesces() {
            return Route::Single;
        }
        let account = self.accounts.entry(name.to_string()).or_default();
        let soon = now + chrono::Duration::milliseconds(interval_ms / 2);
        match account.paused_until {
            Some(until) if until > now => Route::Single,
            _ if account.running > 0 => Route::Wait,
            _ if account.every_ms.is_some_and(|every| interval_ms >= every) => Route::Wait,
            _ if account.next_sweep.is_none_or(|at| at <= soon) => Route::Wait,
            _ => Route::Sweep,
        }
    }

    /// Whether a sweep of `name` should start now: none runs, coalescing is not paused, and
    /// the next one is due.
    pub(crate) fn sweep_due(&self, name: &str, now: DateTime<Utc>) -> bool {
        self.accounts.get(name).is_none_or(|a| {
            a.running == 0
                && a.paused_until.is_none_or(|until| until <= now)
                && a.next_sweep.is_none_or(|at| at <= now)
        })
    }

    /// The pace of `name`'s sweeps, in ms, once one was scheduled: a job polled at least this
    /// far apart is covered by the paced sweeps at its cadence.
    pub(crate) fn every_ms(&self, name: &str) -> Option<i64> {
        self.accounts.get(name).and_then(|a| a.every_ms)
    }

    /// When the soonest sweep not yet running is due, if any is scheduled.
    pub(crate) fn next_due(&self) -> Option<DateTime<Utc>> {
        self.accounts
            .values()
            .filter(|a| a.running == 0)
            .filter_map(|a| match a.paused_until {
                Some(until) => Some(until.max(a.next_sweep?)),
                None => a.next_sweep,
            })
            .min()
    }

    /// Whether a sweep covering `jobs` jobs (`paced`: the paced sweep, else one of due jobs)
    /// is cheaper than polling them singly, at what the last sweep of its sort cost.
    pub(crate) fn worth_it(&self, name: &str, jobs: usize, paced: bool) -> bool {
        let expected = self.accounts.get(name).map_or(0, |a| match paced {
            true => a.last_calls,
            false => a.last_due_calls,
        });
        jobs >= 2 && jobs as u64 > expected
    }

    /// Notes that a sweep of `name` in `parts` parts started at `now` (`paced`: the paced
    /// sweep of every held job, else one of the young jobs due about now). Of the jobs that
    /// waited for a sweep, those it covers (`covers`) are the sweep's now; the others (older
    /// jobs a sweep of young ones leaves out) wait on, and are handed back when it ends.
    pub(crate) fn started(
        &mut self,
        name: &str,
        now: DateTime<Utc>,
        paced: bool,
        parts: usize,
        covers: impl Fn(JobId) -> bool,
    ) {
        let account = self.accounts.entry(name.to_string()).or_default();
        account.running = parts.max(1);
        account.calls = 0;
        account.failed = false;
        account.started_at = Some(now);
        account.paced = paced;
        account.deferred.retain(|id| !covers(*id));
    }

    /// Notes that no sweep of `name` was worth starting now: the next is due at `next`, and
    /// the jobs that waited for one are handed back, to be polled singly (no job waits for
    /// the pace until a paced sweep runs again).
    pub(crate) fn skipped(&mut self, name: &str, next: DateTime<Utc>) -> Vec<JobId> {
        let account = self.accounts.entry(name.to_string()).or_default();
        account.next_sweep = Some(next);
        // No paced sweep covers the account's jobs now: each is polled at its own cadence.
        account.every_ms = None;
        std::mem::take(&mut account.deferred)
    }

    /// Parks a due job until the running sweep of `name` ends.
    pub(crate) fn defer(&mut self, name: &str, job_id: JobId) {
        self.accounts
            .entry(name.to_string())
            .or_default()
            .deferred
            .push(job_id);
    }

    /// Records how a part of a sweep of `name` ended at `now`; when it was the last part,
    /// schedules the next paced sweep: after a paced sweep, `every` after it started, or later
    /// if that would take more than [`SWEEP_RATE_SHARE`] of `rate_per_second` (this process's
    /// part of the account's rate limit) at what it cost, or at once if it took longer; after
    /// a failure, not before `retry` (or the provider's Retry-After) has passed. A sweep of
    /// due jobs leaves the pace as it was. Hands back the jobs that fell due meanwhile once
    /// the last part is back (none before).
    pub(crate) fn finished(
        &mut self,
        name: &str,
        result: &Result<Sweep, ProviderError>,
        now: DateTime<Utc>,
        pace: Pace,
    ) -> Vec<JobId> {
        let account = self.accounts.entry(name.to_string()).or_default();
        account.running = account.running.saturating_sub(1);
        if account.paced {
            account.every_ms = Some(pace.every.as_millis() as i64);
        }
        match result {
            Ok(sweep) => {
                account.failures = 0;
                account.calls += sweep.calls;
            }
            Err(e) => {
                account.failed = true;
                account.failures += 1;
                let retry = now + e.retry_after.unwrap_or(pace.retry);
                account.next_sweep = Some(account.next_sweep.map_or(retry, |at| at.max(retry)));
                let refused = e.kind != ErrorKind::Transient;
                if refused || account.failures >= FAILURES_BEFORE_PAUSE {
                    tracing::warn!(provider = name, error = %e, pause_secs = PAUSE.as_secs(),
                        "coalesced polling failed; polling this account's jobs singly for a while");
                    account.paused_until = Some(now + PAUSE);
                    account.failures = 0;
                } else {
                    tracing::info!(provider = name, error = %e, "coalesced polling failed; trying again later");
                }
            }
        }
        if account.running > 0 {
            return Vec::new();
        }
        if !account.paced {
            account.last_due_calls = account.calls;
        } else if !account.failed {
            account.last_calls = account.calls;
            let budget = pace.rate_per_second * SWEEP_RATE_SHARE;
            let spaced = if budget > 0.0 {
                Duration::from_secs_f64(account.calls as f64 / budget)
            } else {
                Duration::ZERO
            };
            let started = account.started_at.unwrap_or(now);
            account.next_sweep = Some((started + pace.every.max(spaced)).max(now));
        }
        std::mem::take(&mut account.deferred)
    }
}

/// How often an account is swept.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// The account's `sweep_every` (or `poll_max`).
    pub every: Duration,
    /// This process's part of the account's rate limit, in calls per second (0: unlimited).
    pub rate_per_second: f64,
    /// How long after a failed sweep the next one starts, when the provider said nothing.
    pub retry: Duration,
}

impl Pace {
    /// The pace of the sweeps of `provider`, whose jobs are polled at most every `poll_max`.
    pub(crate) fn of(provider: &dyn Provider, poll_max: Duration) -> Self {
        let settings = provider.settings();
        Self {
            every: settings.sweep_every.unwrap_or(poll_max),
            rate_per_second: provider
                .rate_limiter()
                .map_or(0.0, |l| l.per_second_share()),
            retry: Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed instant: the coalescer is given its time, never reads a clock.
    fn at() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("a valid instant")
    }

    fn pace(every_secs: u64, rate_per_second: f64) -> Pace {
        Pace {
            every: Duration::from_secs(every_secs),
            rate_per_second,
            retry: Duration::from_secs(5),
        }
    }

    fn sweep(calls: u64) -> Result<Sweep, ProviderError> {
        Ok(Sweep {
            statuses: vec![],
            calls,
        })
    }

    /// The next sweep starts `every` after the last one started; at once if that one took
    /// longer; later if `every` would take more than its share of the rate limit.
    #[test]
    fn sweeps_are_paced_by_the_target_and_the_rate_limit() {
        let mut c = Coalescer::default();
        let t0 = at();
        assert!(c.sweep_due("d", t0), "never swept: due at once");
        c.started("d", t0, true, 1, |_| true);
        assert!(!c.sweep_due("d", t0), "running");
        let secs = |n: i64| chrono::Duration::seconds(n);
        c.finished("d", &sweep(10), t0 + secs(2), pace(5, 100.0));
        assert_eq!(c.next_due(), Some(t0 + secs(5)));
        assert!(!c.sweep_due("d", t0 + secs(4)));
        assert!(c.sweep_due("d", t0 + secs(5)));
        // Took longer than the pace: the next at once.
        c.started("d", t0 + secs(5), true, 1, |_| true);
        c.finished("d", &sweep(10), t0 + secs(12), pace(5, 100.0));
        assert_eq!(c.next_due(), Some(t0 + secs(12)));
        // 400 calls at 10 calls/s, half of it for sweeps: one every 80 s at most.
        c.started("d", t0 + secs(12), true, 1, |_| true);
        c.finished("d", &sweep(400), t0 + secs(20), pace(5, 10.0));
        assert_eq!(c.next_due(), Some(t0 + secs(92)));
    }

    /// A rolling sweep runs until its last part is back: the jobs that waited for it are
    /// handed back then, and the next is paced by the calls of all its parts.
    #[test]
    fn a_rolling_sweep_ends_with_its_last_part() {
        let mut c = Coalescer::default();
        let t0 = at();
        let secs = |n: i64| chrono::Duration::seconds(n);
        c.started("d", t0, true, 3, |_| true);
        c.defer("d", JobId(7));
        assert!(c
            .finished("d", &sweep(100), t0 + secs(1), pace(5, 10.0))
            .is_empty());
        assert!(!c.sweep_due("d", t0 + secs(60)), "two parts still out");
        let failed = Err(ProviderError::transient("d", "boom"));
        assert!(c
            .finished("d", &failed, t0 + secs(2), pace(5, 10.0))
            .is_empty());
        assert_eq!(
            c.finished("d", &sweep(100), t0 + secs(3), pace(5, 10.0)),
            vec![JobId(7)],
            "the last part hands back the jobs that waited"
        );
        // A part failed: the next sweep is the retry's, not the pace's.
        assert_eq!(c.next_due(), Some(t0 + secs(7)));
        // All parts good: paced by their calls together (200 at half of 10/s: 40 s).
        c.started("d", t0 + secs(10), true, 2, |_| true);
        c.finished("d", &sweep(100), t0 + secs(11), pace(5, 10.0));
        c.finished("d", &sweep(100), t0 + secs(12), pace(5, 10.0));
        assert_eq!(c.next_due(), Some(t0 + secs(50)));
    }

    /// A due job waits for its account's sweep when one runs or starts within half its
    /// interval, or when it is polled no more often than the pace; otherwise it starts a
    /// sweep of the young jobs due about now.
    #[test]
    fn a_due_job_waits_for_a_sweep_that_comes_soon() {
        #[derive(Debug)]
        struct Coalescing(tether_provider::CommonSettings);
        #[async_trait::async_trait]
        impl Provider for Coalescing {
            fn kind(&self) -> &'static str {
                "test"
            }
            fn validate_spec(&self, _: &serde_json::Value) -> Result<(), ProviderError> {
                Ok(())
            }
            async fn submit(
                &self,
                _: &serde_json::Value,
                _: &str,
                _: &dyn tether_provider::SendGate,
            ) -> tether_provider::Result<tether_provider::Handle> {
                unreachable!()
            }
            fn submit_is_idempotent(&self) -> bool {
                true
            }
            async fn status(
                &self,
                _: &tether_provider::Handle,
            ) -> Result<tether_provider::RemoteStatus, ProviderError> {
                unreachable!()
            }
            async fn cancel(&self, _: &tether_provider::Handle) -> Result<(), ProviderError> {
                unreachable!()
            }
            async fn find(
                &self,
                _: &str,
                _: &serde_json::Value,
                _: i64,
            ) -> tether_provider::Result<Vec<tether_provider::Handle>> {
                unreachable!()
            }
            fn coalesces(&self) -> bool {
                true
            }
            fn settings(&self) -> &tether_provider::CommonSettings {
                &self.0
            }
        }
        let p = Coalescing(tether_provider::CommonSettings::default());
        let mut c = Coalescer::default();
        let t0 = at();
        let secs = |n: i64| chrono::Duration::seconds(n);
        assert_eq!(c.route("d", &p, t0, 30_000), Route::Wait, "never swept");
        c.started("d", t0, true, 1, |_| true);
        assert_eq!(c.route("d", &p, t0, 30_000), Route::Wait, "running");
        c.finished("d", &sweep(3), t0, pace(60, 0.0));
        assert_eq!(c.route("d", &p, t0 + secs(41), 40_000), Route::Wait);
        assert_eq!(c.route("d", &p, t0 + secs(10), 40_000), Route::Sweep);
        assert_eq!(c.route("d", &p, t0 + secs(10), 5_000), Route::Sweep);
        assert_eq!(
            c.route("d", &p, t0 + secs(10), 60_000),
            Route::Wait,
            "polled no more often than the pace: the paced sweep covers it"
        );
        // A paced sweep not worth starting (too few jobs): no job waits for the pace.
        c.skipped("d", t0 + secs(70));
        assert_eq!(c.route("d", &p, t0 + secs(10), 60_000), Route::Sweep);
    }

    #[test]
    fn a_sweep_is_worth_it_only_when_cheaper_than_single_calls() {
        let mut c = Coalescer::default();
        assert!(!c.worth_it("d", 1, true));
        assert!(c.worth_it("d", 2, true));
        c.started("d", at(), true, 1, |_| true);
        let sweep = Sweep {
            statuses: vec![],
            calls: 40,
        };
        c.finished("d", &Ok(sweep), at(), pace(30, 0.0));
        assert!(!c.worth_it("d", 40, true));
        assert!(c.worth_it("d", 41, true));
        assert!(
            c.worth_it("d", 2, false),
            "a sweep of due jobs has its own cost"
        );
    }

    #[test]
    fn repeated_failures_pause_coalescing() {
        let mut c = Coalescer::default();
        let now = at();
        let transient = Err(ProviderError::transient("d", "503"));
        for _ in 0..FAILURES_BEFORE_PAUSE - 1 {
            c.finished("d", &transient, now, pace(30, 0.0));
            assert!(c.accounts["d"].paused_until.is_none());
        }
        c.finished("d", &transient, now, pace(30, 0.0));
        assert_eq!(c.accounts["d"].paused_until, Some(now + PAUSE));
        assert!(!c.sweep_due("d", now + PAUSE / 2), "paused");
        c.finished(
            "e",
            &Err(ProviderError::permanent("e", "403")),
            now,
            pace(30, 0.0),
        );
        assert!(c.accounts["e"].paused_until.is_some());
    }
}
