//! Garbage collection of expired task state (and, with it, of old job history).
//!
//! [`sweep`] deletes expired keys in bounded batches (each batch its own short statement, so
//! writers get in between batches, even on SQLite's single writer lock). [`Sweeper`] runs a
//! sweep on a cron schedule inside the long-running process until shut down, followed by the
//! removal of finished jobs past `jobs.retention` ([`crate::jobs::retention`]).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::storage::StateStorage;
use super::{ScopeKind, TaskState};
use crate::clock::to_millis;
use crate::db::DbError;

/// What one sweep removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Expired task-instance keys removed.
    pub task_instance: u64,
    /// Expired task keys removed.
    pub task: u64,
    /// Expired asset keys removed.
    pub asset: u64,
    /// Finished jobs removed (past `jobs.retention`).
    pub jobs: u64,
    /// Their events removed.
    pub job_events: u64,
    /// How many delete statements ran.
    pub batches: u32,
    /// How long the sweep took, in milliseconds.
    pub elapsed_ms: u64,
}

impl GcReport {
    /// Keys removed, all scopes together.
    pub fn total(&self) -> u64 {
        self.task_instance + self.task + self.asset
    }
}

impl std::fmt::Display for GcReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "removed {} expired keys (task_instance {}, task {}, asset {}) and {} finished jobs \
             ({} events); {} batch(es), {} ms",
            self.total(),
            self.task_instance,
            self.task,
            self.asset,
            self.jobs,
            self.job_events,
            self.batches,
            self.elapsed_ms
        )
    }
}

/// Deletes every key expired at `now`, at most `batch_size` per statement.
pub async fn sweep(
    storage: &dyn StateStorage,
    now: DateTime<Utc>,
    batch_size: u32,
) -> Result<GcReport, DbError> {
    let started = Instant::now();
    let batch_size = batch_size.max(1);
    let mut report = GcReport::default();
    loop {
        let removed = storage.delete_expired(to_millis(now), batch_size).await?;
        report.batches += 1;
        for kind in &removed {
            match kind {
                ScopeKind::TaskInstance => report.task_instance += 1,
                ScopeKind::Task => report.task += 1,
                ScopeKind::Asset => report.asset += 1,
            }
        }
        if removed.len() < batch_size as usize {
            break;
        }
        crate::crash::crash_point("during_gc");
        // Let waiting writers take the database between batches.
        tokio::task::yield_now().await;
    }
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Runs [`TaskState::sweep`] on a cron schedule until cancelled.
#[derive(Debug)]
pub struct Sweeper {
    state: TaskState,
    schedule: cron::Schedule,
    batch_size: u32,
    history: Option<(crate::jobs::JobStore, super::Retention)>,
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
    pub fn with_job_history(
        mut self,
        jobs: crate::jobs::JobStore,
        retention: super::Retention,
    ) -> Self {
        self.history = Some((jobs, retention));
        self
    }

    /// One sweep: expired task state, then old job history.
    pub async fn sweep(&self) -> Result<GcReport, super::StateError> {
        let mut report = self.state.sweep(self.batch_size).await?;
        if let Some((jobs, retention)) = &self.history {
            let pruned =
                crate::jobs::retention::sweep(jobs, *retention, Utc::now(), self.batch_size)
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
            let Some(next) = self.schedule.upcoming(Utc).next() else {
                tracing::warn!("gc schedule has no upcoming time; the sweeper stops");
                return;
            };
            let wait = (next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
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
