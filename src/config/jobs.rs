//! `[jobs]`: how long finished jobs and their events are kept.

use std::str::FromStr;

use serde::Deserialize;

use super::Problems;
use crate::state::Retention;

/// Job history: how long finished jobs and their events are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct JobsConfig {
    /// How long a finished job (and its event log) is kept after it finished; `never` keeps
    /// it. The GC sweep removes older ones, except a task instance's newest generation while
    /// its `tether.job.<name>` task-state key is there.
    pub retention: Retention,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            retention: Retention::For(std::time::Duration::from_secs(30 * 24 * 3600)),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJobs {
    retention: Option<String>,
}

impl RawJobs {
    /// The section, checked.
    pub(super) fn build(self, problems: &mut Problems) -> JobsConfig {
        let mut jobs = JobsConfig::default();
        if let Some(r) = &self.retention {
            problems.check(
                "jobs.retention",
                Retention::from_str(r)
                    .map(|r| jobs.retention = r)
                    .map_err(|e| e.to_string()),
            );
        }

        jobs
    }
}
