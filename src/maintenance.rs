//! Maintenance: what the long-running process removes on a schedule, above both stores (so
//! that neither store knows of the other): expired task state first, then finished jobs past
//! `jobs.retention`. Every "now" is the stores' clock.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::jobs::JobStore;
use crate::state::{GcReport, Retention, StateError, TaskState};

/// Runs maintenance on a cron schedule until cancelled: expired task state
/// ([`TaskState::sweep`]), then finished jobs past `jobs.retention`.
#[derive(Debug)]
pub struct Sweeper {
    state: TaskState,
    schedule: cron::Schedule,
    batch_size: u32,
    history: Option<(JobStore, Retention)>,
}

impl Sweeper {
    /// A sweeper for `state` on `schedule`.
    pub fn new(state: TaskState, schedule: cron::Schedule, batch_size: u32) -> Self {
        Self {
            state,
            schedule,
            batch_size,
            history: None,
        }
    }

    /// Also removes the finished jobs in `jobs` that `retention` no longer keeps.
    pub fn with_job_history(mut self, jobs: JobStore, retention: Retention) -> Self {
        self.history = Some((jobs, retention));
        self
    }

    /// One sweep: expired task state, then old job history.
    pub async fn sweep(&self) -> Result<GcReport, StateError> {
        let mut report = self.state.sweep(self.batch_size).await?;
        if let Some((jobs, retention)) = &self.history {
            let pruned =
                crate::jobs::retention::sweep(jobs, *retention, self.state.now(), self.batch_size)
                    .await?;
            report.jobs = pruned.jobs;
            report.job_events = pruned.events;
        }
        Ok(report)
    }

    /// Sleeps until each scheduled time and sweeps, until `shutdown` is cancelled. A failed
    /// sweep is logged and the next one runs on schedule.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let Some(next) = self.schedule.after(&self.state.now()).next() else {
                tracing::warn!("gc schedule has no upcoming time; the sweeper stops");
                return;
            };
            let wait = (next - self.state.now()).to_std().unwrap_or(Duration::ZERO);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            self.sweep_once().await;
        }
    }

    #[tracing::instrument(name = "gc_sweep", skip(self))]
    async fn sweep_once(&self) {
        match self.sweep().await {
            Ok(report) if report.total() + report.jobs > 0 => tracing::info!(%report, "gc sweep"),
            Ok(report) => tracing::debug!(%report, "gc sweep"),
            Err(e) => tracing::warn!(error = %e, "gc sweep failed; retrying on schedule"),
        }
    }
}
