//! Garbage collection of expired task state.
//!
//! [`sweep`] deletes expired keys in bounded batches (each batch its own short statement, so
//! writers get in between batches, even on SQLite's single writer lock). The schedule, and
//! the removal of old job history after it, belong to [`crate::maintenance`], above both
//! stores.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::state::StateTable;
use crate::db::DbError;
use crate::model::{Millis, ScopeKind};

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
    storage: &StateTable,
    now: DateTime<Utc>,
    batch_size: u32,
) -> Result<GcReport, DbError> {
    let started = Instant::now();
    let batch_size = batch_size.max(1);
    let mut report = GcReport::default();
    loop {
        let removed = storage
            .delete_expired(Millis::from(now), batch_size)
            .await?;
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
