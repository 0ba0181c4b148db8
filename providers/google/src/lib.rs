//! tether's Google Cloud adapters, one per kind, on one REST client with Google's own
//! credential chain:
//!
//! - `bigquery` (`bigquery.rs`): BigQuery jobs (query, load, extract, copy), inserted with a
//!   job id derived from tether's key (`jobs.insert`; a second insert of the id answers 409
//!   `duplicate`, which is the job already made), read with `jobs.get`, swept with
//!   `jobs.list`, cancelled with `jobs.cancel`;
//! - `dataproc-job` and `dataproc-batch` (`dataproc.rs`): Dataproc jobs on a cluster and
//!   Dataproc Serverless batches, submitted with a request id and a job (or batch) id from
//!   tether's key, read, listed and cancelled (a batch through its long-running operation).
//!
//! The modules:
//! - `factory.rs`: [`FACTORY`], what tether's registry lists: the kinds, the settings check,
//!   the adapters and the simulator.
//! - `config.rs`: project, location, endpoint and credentials (config or the variables
//!   Google's own tools read).
//! - `auth.rs`: Application Default Credentials through `google-cloud-auth`, Google's
//!   official crate: key files, workload identity federation, gcloud's user credentials, the
//!   metadata server.
//! - `client.rs`: the REST client: bearer tokens, tether's retrying HTTP client, Google's
//!   error shape (`{"error": {"code", "message", "status", "errors": [{"reason"}]}}`).
//! - `state.rs`: how each kind's states map to tether's.
//! - `sweep.rs`: what the kinds' coalesced sweeps share (jobs grouped by where one list
//!   lists them, statuses matched back by id).
//! - `events.rs`: the job events of Cloud Logging entries a log sink routes to Pub/Sub;
//!   `pubsub.rs`: the event source that pulls them (`[events.NAME] kind = "gcp-pubsub"`).
//! - `edges.rs`: each kind's catalog of its service's documented hard edges.
//! - `sim/` (feature `sim`, off by default): a simulator of the same REST APIs that checks
//!   the credentials (the signature of a service account's token, the metadata server's
//!   tokens), for tests and for trying tether without a project (`tether sim bigquery`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod bigquery;
pub mod client;
pub mod config;
pub mod dataproc;
pub mod edges;
pub mod events;
pub mod factory;
pub mod pubsub;
#[cfg(feature = "sim")]
pub mod sim;
pub mod state;
mod sweep;

pub use bigquery::BigQuery;
pub use config::{Credentials, GoogleConfig};
pub use dataproc::Dataproc;
pub use factory::FACTORY;

/// How far a service's clock may be from tether's: how much earlier than tether's record a
/// job's creation time may be, in ms.
pub(crate) const CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

/// The scope tether asks Google's credentials for: every Cloud API the project allows.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
