//! Remote jobs as tether records them: one row per submission generation, its lease, and an
//! append-only event log.
//!
//! - The records are in `crate::model` ([`JobRecord`], [`HeldJob`], [`JobEvent`], [`Lease`]).
//! - The SQL that reads and writes them is `crate::db::jobs` ([`JobStore`]); every write by a
//!   lease holder is fenced by the lease epoch.
//! - [`retention`]: how long finished jobs are kept (`jobs.retention`), and their removal.

pub mod retention;

pub use crate::db::jobs::{CancelRequest, JobFilter, JobStore, NewJob, PollUpdate};
pub use crate::model::{HeldJob, JobEvent, JobRecord, Lease, Phase, Waited};
