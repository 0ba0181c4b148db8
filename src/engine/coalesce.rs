//! Coalesced polling: when the supervisor asks a provider account about many jobs through its
//! list calls (a *sweep*, [`Provider::status_many`]) rather than one status call per job, and
//! what becomes of a sweep's answer.
//!
//! - A sweep starts when a job of an account that coalesces falls due. It covers every job of
//!   that account the supervisor holds that is due within half its polling interval: those
//!   are polled a little early, by the sweep, rather than each by a call of its own later.
//! - It is worth it only when it costs fewer calls than the jobs it covers; the cost is the
//!   previous sweep's number of calls. Otherwise the jobs are polled singly.
//! - While an account's sweep runs, its jobs that fall due wait for the sweep's end and are
//!   considered for the next one.
//! - What a sweep reports is the poll's answer for non-terminal states; a job the sweep did not
//!   report, or reported terminal, is asked about singly (see [`Engine::poll_record`]).
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

/// The supervisor's book of sweeps, per provider account.
#[derive(Debug, Default)]
pub(crate) struct Coalescer {
    accounts: HashMap<String, Account>,
}

#[derive(Debug, Default)]
struct Account {
    running: bool,
    /// The calls the last sweep made: what the next one is expected to cost.
    last_calls: u64,
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
    /// A sweep of its account is running: wait for it.
    Wait,
    /// Start a sweep (if enough jobs are due to make it worth it).
    Sweep,
}

impl Coalescer {
    /// How a due job of `provider` (the account's name) is to be polled.
    pub(crate) fn route(
        &mut self,
        name: &str,
        provider: &dyn Provider,
        now: DateTime<Utc>,
    ) -> Route {
        if !provider.coalesces() {
            return Route::Single;
        }
        let account = self.accounts.entry(name.to_string()).or_default();
        match account.paused_until {
            Some(until) if until > now => Route::Single,
            _ if account.running => Route::Wait,
            _ => Route::Sweep,
        }
    }

    /// Whether a sweep covering `jobs` jobs is cheaper than polling them singly.
    pub(crate) fn worth_it(&self, name: &str, jobs: usize) -> bool {
        let expected = self.accounts.get(name).map_or(0, |a| a.last_calls);
        jobs >= 2 && jobs as u64 > expected
    }

    /// Notes that a sweep of `name` started.
    pub(crate) fn started(&mut self, name: &str) {
        self.accounts.entry(name.to_string()).or_default().running = true;
    }

    /// Parks a due job until the running sweep of `name` ends.
    pub(crate) fn defer(&mut self, name: &str, job_id: JobId) {
        self.accounts
            .entry(name.to_string())
            .or_default()
            .deferred
            .push(job_id);
    }

    /// Records how a sweep of `name` ended, and hands back the jobs deferred meanwhile.
    pub(crate) fn finished(
        &mut self,
        name: &str,
        result: &Result<Sweep, ProviderError>,
        now: DateTime<Utc>,
    ) -> Vec<JobId> {
        let account = self.accounts.entry(name.to_string()).or_default();
        account.running = false;
        match result {
            Ok(sweep) => {
                account.last_calls = sweep.calls;
                account.failures = 0;
            }
            Err(e) => {
                account.failures += 1;
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
        std::mem::take(&mut account.deferred)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed instant: the coalescer is given its time, never reads a clock.
    fn at() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("a valid instant")
    }

    #[test]
    fn a_sweep_is_worth_it_only_when_cheaper_than_single_calls() {
        let mut c = Coalescer::default();
        assert!(!c.worth_it("d", 1));
        assert!(c.worth_it("d", 2));
        c.started("d");
        let sweep = Sweep {
            statuses: vec![],
            calls: 40,
        };
        c.finished("d", &Ok(sweep), at());
        assert!(!c.worth_it("d", 40));
        assert!(c.worth_it("d", 41));
    }

    #[test]
    fn repeated_failures_pause_coalescing() {
        let mut c = Coalescer::default();
        let now = at();
        let transient = Err(ProviderError::transient("d", "503"));
        for _ in 0..FAILURES_BEFORE_PAUSE - 1 {
            c.finished("d", &transient, now);
            assert!(c.accounts["d"].paused_until.is_none());
        }
        c.finished("d", &transient, now);
        assert_eq!(c.accounts["d"].paused_until, Some(now + PAUSE));
        c.finished("e", &Err(ProviderError::permanent("e", "403")), now);
        assert!(c.accounts["e"].paused_until.is_some());
    }
}
