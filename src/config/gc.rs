//! `[gc]`: when the sweep of expired task state (and old job history) runs, and its batches.

use serde::Deserialize;

use super::{parse_cron, Problems};

/// The default garbage-collection schedule: every 15 minutes.
pub const DEFAULT_GC_SCHEDULE: &str = "0 */15 * * * *";

/// Garbage collection of expired task state.
#[derive(Debug, Clone)]
pub struct GcConfig {
    /// When the sweeper in `tether serve` runs.
    pub schedule: cron::Schedule,
    /// Keys deleted per statement, so that a large sweep never holds writers back for long.
    pub batch_size: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGc {
    schedule: Option<String>,
    batch_size: Option<u32>,
}

impl RawGc {
    /// The section, checked; `None` if the schedule is bad (reported).
    pub(super) fn build(self, problems: &mut Problems) -> Option<GcConfig> {
        let schedule_text = self
            .schedule
            .unwrap_or_else(|| DEFAULT_GC_SCHEDULE.to_string());
        let mut schedule = None;
        problems.check(
            "gc.schedule",
            parse_cron(&schedule_text).map(|s| schedule = Some(s)),
        );
        let batch_size = self.batch_size.unwrap_or(1000);
        problems.check(
            "gc.batch_size",
            if batch_size == 0 {
                Err("must be at least 1".into())
            } else {
                Ok(())
            },
        );

        schedule.map(|schedule| GcConfig {
            schedule,
            batch_size,
        })
    }
}
