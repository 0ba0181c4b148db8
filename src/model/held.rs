//! What a supervisor keeps in memory of a job it holds under a lease: the columns a poll
//! reads and writes, nothing else.
//!
//! A supervisor may hold 100,000 jobs at once, so this is the per-job memory of tracking. The
//! full [`JobRecord`](super::JobRecord) (task instance, spec, spec hash, lease owner, times
//! that polls never read) is read from the database only when a job needs it: reconciling an
//! orphaned submission. The handle is shared (`Arc`), so a sweep over many jobs does not copy
//! every handle.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tether_provider::{Handle, JobState};

use super::ids::{Epoch, JobId};
use super::job::Phase;

/// A job held by a supervisor, as it last wrote or read it.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldJob {
    /// tether's id for the job.
    pub id: JobId,
    /// The job's name within its task instance (the task-state key is made from it).
    pub name: String,
    /// The submission generation (written into the task-state key's value).
    pub generation: i64,
    /// The key the provider deduplicates on (written into the task-state key's value).
    pub idempotency_key: String,
    /// The configured provider name.
    pub provider: String,
    /// The try that submitted it.
    pub try_number: i64,
    /// Where it is in the protocol.
    pub phase: Phase,
    /// The provider's handle, once recorded; shared with the sweeps that cover the job.
    pub handle: Option<Arc<Handle>>,
    /// The normalised state.
    pub state: JobState,
    /// The provider's own state.
    pub raw_state: Option<String>,
    /// The provider's message.
    pub message: Option<String>,
    /// A link to the job in the provider's UI.
    pub url: Option<String>,
    /// When an explicit cancel was requested.
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// When the cancel reached the provider.
    pub cancel_sent_at: Option<DateTime<Utc>>,
    /// When it is next polled.
    pub next_poll_at: DateTime<Utc>,
    /// The current polling delay (ms).
    pub poll_interval_ms: i64,
    /// Failed polls in a row.
    pub poll_failures: i64,
    /// The fencing value of the holder's lease.
    pub lease_epoch: Epoch,
    /// When the intent was recorded (a sweep looks for the remote job from then on).
    pub created_at: DateTime<Utc>,
    /// When the handle was recorded: a "not found" within the account's `not_found_grace`
    /// of it is read as "not visible yet". `None` for jobs recorded before tether kept it (the
    /// intent's time stands in).
    pub handle_at: Option<DateTime<Utc>>,
}

impl HeldJob {
    /// Whether the provider has reported the job at least once (a poll read its state): a job
    /// it no longer knows after that was forgotten, not never made.
    pub fn seen(&self) -> bool {
        self.raw_state.is_some()
    }

    /// When the handle was recorded, or for an older record, when its intent was.
    pub fn handle_time(&self) -> DateTime<Utc> {
        self.handle_at.unwrap_or(self.created_at)
    }

    /// Whether an explicit cancel was asked for and has not reached the provider yet.
    pub fn cancel_unsent(&self) -> bool {
        self.cancel_requested_at.is_some() && self.cancel_sent_at.is_none()
    }
}
