//! Job history retention: a finished job and its event log are removed `jobs.retention` after
//! it finished, by the same cron GC sweep as task state (and by `tether gc` and
//! `tether jobs prune`), in batches of one short transaction each. Kept always: unfinished
//! jobs, and a task instance's newest generation while its `tether.job.<name>` task-state key
//! is there (see [`super::JobStore::prunable`]).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::jobs::JobStore;
use crate::db::DbError;
use crate::model::Millis;
use crate::state::Retention;

/// What a prune removed (or, dry, would remove).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    /// Finished jobs.
    pub jobs: u64,
    /// Their events (not counted in a dry run).
    pub events: u64,
}

/// Removes finished jobs older than `before`, `batch_size` per transaction; with `dry_run`,
/// only counts them.
pub async fn prune(
    store: &JobStore,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
    batch_size: u32,
    dry_run: bool,
) -> Result<Pruned, DbError> {
    let (before, now) = (Millis::from(before), Millis::from(now));
    if dry_run {
        let ids = store.prunable(before, now, i64::MAX).await?;
        return Ok(Pruned {
            jobs: ids.len() as u64,
            events: 0,
        });
    }
    let batch = i64::from(batch_size.max(1));
    let mut pruned = Pruned::default();
    loop {
        let ids = store.prunable(before, now, batch).await?;
        let (jobs, events) = store.remove_finished(&ids).await?;
        pruned.jobs += jobs;
        pruned.events += events;
        if (ids.len() as i64) < batch {
            return Ok(pruned);
        }
        // Let waiting writers take the database between batches.
        tokio::task::yield_now().await;
    }
}

/// When a job must have finished, at `now`, to be older than `keep`; `None` if that is before
/// any time there is.
pub fn cutoff(now: DateTime<Utc>, keep: std::time::Duration) -> Option<DateTime<Utc>> {
    chrono::Duration::from_std(keep)
        .ok()
        .and_then(|k| now.checked_sub_signed(k))
}

/// Removes the finished jobs that `retention` no longer keeps at `now` (none for `never`).
pub async fn sweep(
    store: &JobStore,
    retention: Retention,
    now: DateTime<Utc>,
    batch_size: u32,
) -> Result<Pruned, DbError> {
    let Retention::For(keep) = retention else {
        return Ok(Pruned::default());
    };
    let before = cutoff(now, keep).unwrap_or(DateTime::<Utc>::MIN_UTC);
    prune(store, before, now, batch_size, false).await
}
