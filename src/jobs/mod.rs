//! Remote jobs as tether records them: one row per submission generation, its lease, and an
//! append-only event log.
//!
//! - [`record`]: the job record and event types.
//! - [`held`]: what a supervisor keeps in memory of a job it holds and polls.
//! - [`store`]: the SQL that reads and writes them; every write by a lease holder is fenced by
//!   the lease epoch.
//! - [`retention`]: how long finished jobs are kept (`jobs.retention`), and their removal.

pub mod held;
pub mod record;
pub mod retention;
pub mod store;

pub use held::HeldJob;
pub use record::{JobEvent, JobRecord, Lease, Phase};
pub use store::{CancelRequest, JobFilter, JobStore, NewJob, PollUpdate};
