//! What tether records, apart from where it is kept: the identifiers and their rules, the job
//! record and what a supervisor holds of it, task-state entries, and the typed values the
//! database layer takes.
//!
//! Every other module may use this one; it uses none of them, so the stores (`crate::db`) and
//! the layers above them (`crate::state`, `crate::jobs`, `crate::engine`) share one model
//! without importing each other.
//!
//! - [`ids`]: `JobId`, `Epoch`, `Millis`.
//! - [`scope`]: whose state a key belongs to, and Airflow's identifier rules.
//! - [`job`]: the job record, its phases, leases and events.
//! - [`held`]: what a supervisor keeps in memory of a job it holds.
//! - [`entry`]: a task-state key as stored, and what a compare-and-set found.

pub mod entry;
pub mod held;
pub mod ids;
pub mod job;
pub mod scope;

pub use self::entry::{CasOutcome, ClearTarget, Entry};
pub use self::held::HeldJob;
pub use self::ids::{from_millis, to_millis, Epoch, JobId, Millis};
pub use self::job::{JobEvent, JobRecord, Lease, Phase, Waited};
pub use self::scope::{Scope, ScopeKind, TaskInstanceId, ValidationError};
