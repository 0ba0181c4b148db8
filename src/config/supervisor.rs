//! `[supervisor]`: leases, polling concurrency, the resumption policy, shutdown and the clock.

use std::time::Duration;

use serde::Deserialize;

use super::{parse_duration, Problems};

/// What `ensure` does when a job is running and the spec it is asked for differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnSpecChange {
    /// Reattach to the running job and log a warning.
    Reattach,
    /// Refuse (exit 4 / a conflict), leaving the running job alone.
    Fail,
}

/// The supervisor: leases, polling concurrency, the resumption policy.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// How long a lease lasts without renewal; a crashed supervisor's jobs are picked up by
    /// another this long after its last heartbeat.
    pub lease: Duration,
    /// Jobs claimed per statement; a claim round repeats it up to the supervisor's fair share.
    pub claim_batch: u32,
    /// Provider calls in flight at once.
    pub max_concurrent_polls: u32,
    /// See [`OnSpecChange`].
    pub on_spec_change: OnSpecChange,
    /// How long shutdown waits for polls in flight.
    pub shutdown_grace: Duration,
    /// How far this process's clock may be from the database's. Leases are judged by the
    /// database's clock whatever the skew (see [`crate::clock::DbClock`]); beyond this bound
    /// the process distrusts its host and neither claims jobs nor submits any, and says so.
    pub max_clock_skew: Duration,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            claim_batch: 1000,
            max_concurrent_polls: 16,
            on_spec_change: OnSpecChange::Reattach,
            shutdown_grace: Duration::from_secs(10),
            max_clock_skew: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSupervisor {
    lease: Option<String>,
    claim_batch: Option<u32>,
    max_concurrent_polls: Option<u32>,
    on_spec_change: Option<OnSpecChange>,
    shutdown_grace: Option<String>,
    max_clock_skew: Option<String>,
}

impl RawSupervisor {
    /// The section, checked.
    pub(super) fn build(self, problems: &mut Problems) -> SupervisorConfig {
        let mut supervisor = SupervisorConfig::default();
        if let Some(t) = &self.lease {
            problems.check(
                "supervisor.lease",
                parse_duration(t).and_then(|d| {
                    if d < Duration::from_secs(1) {
                        Err(format!("{t:?} is shorter than 1s"))
                    } else {
                        supervisor.lease = d;
                        Ok(())
                    }
                }),
            );
        }
        if let Some(t) = &self.shutdown_grace {
            problems.check(
                "supervisor.shutdown_grace",
                parse_duration(t).map(|d| supervisor.shutdown_grace = d),
            );
        }
        if let Some(t) = &self.max_clock_skew {
            problems.check(
                "supervisor.max_clock_skew",
                parse_duration(t).map(|d| supervisor.max_clock_skew = d),
            );
        }
        for (field, value, target) in [
            (
                "supervisor.claim_batch",
                self.claim_batch,
                &mut supervisor.claim_batch,
            ),
            (
                "supervisor.max_concurrent_polls",
                self.max_concurrent_polls,
                &mut supervisor.max_concurrent_polls,
            ),
        ] {
            match value {
                Some(0) => problems.check(field, Err("must be at least 1".into())),
                Some(n) => *target = n,
                None => {}
            }
        }
        if let Some(p) = self.on_spec_change {
            supervisor.on_spec_change = p;
        }

        supervisor
    }
}
