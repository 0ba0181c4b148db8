//! tether's AWS adapters: EMR on EC2 steps, EMR Serverless job runs, Glue job runs, AWS Batch
//! jobs, Amazon ECS tasks, Step Functions executions, SageMaker training and processing jobs,
//! EMR on EKS job runs, Redshift Data API statements and Athena queries.
//!
//! One crate for the services, because what is hard is shared: SigV4 signing, the
//! credential chain, AWS's error shapes and throttling, and the shape of a job API. Each
//! service is a description ([`kit::JobApi`]) that one adapter ([`kit::Kit`]) runs: its
//! module holds only what is its own (its calls, names, answers and hooks), and its state
//! mapping sits in `state.rs`.
//!
//! - `factory.rs`: [`FACTORY`], what tether's registry lists: the kinds, their settings
//!   check, adapters and simulator.
//! - `config.rs`: service, region, endpoint override, profile.
//! - `credential.rs`: the standard AWS credential chain (`aws-config`), cached and refreshed.
//! - `client.rs`: SigV4 (`aws-sigv4`), JSON 1.0/1.1 and REST JSON calls, AWS errors.
//! - `kit/`: the job API description, the adapter over it, its list walks (find's pages,
//!   sweeps) and the REST job-run shape.
//! - `emr.rs`, `emr_serverless.rs`, `glue.rs`, `batch.rs`, `ecs.rs`, `stepfunctions.rs`,
//!   `sagemaker.rs` (training and processing), `emr_containers.rs`, `redshift_data.rs`,
//!   `athena.rs`: the descriptions.
//! - `state.rs`: the state mappings.
//! - `edges.rs`: each kind's edge catalog.
//! - `events.rs`: each kind's EventBridge state-change event and the reader of one
//!   (`events::read`); `sqs.rs`: the `aws-sqs` event source that receives them from a queue.
//! - `sim/` (feature `sim`, off by default): simulators of the services that check SigV4
//!   signatures (`tether sim KIND` for each of these kinds); each service's part implements
//!   `sim/service.rs`' `ServiceSim`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod athena;
pub mod batch;
pub mod client;
pub mod config;
pub mod credential;
pub mod ecs;
pub mod edges;
pub mod emr;
pub mod emr_containers;
pub mod emr_serverless;
pub mod events;
pub mod factory;
pub mod glue;
pub mod kit;
pub mod redshift_data;
pub mod sagemaker;
#[cfg(feature = "sim")]
pub mod sim;
pub mod sqs;
pub mod state;
pub mod stepfunctions;

use serde_json::Value;

pub use athena::Athena;
pub use batch::Batch;
pub use config::{AwsConfig, Service};
pub use ecs::Ecs;
pub use emr::Emr;
pub use emr_containers::EmrContainers;
pub use emr_serverless::EmrServerless;
pub use factory::FACTORY;
pub use glue::Glue;
pub use redshift_data::RedshiftData;
pub use sagemaker::SageMaker;
pub use stepfunctions::StepFunctions;

/// A job name tagged with tether's key, so that `find` can recognise it.
pub fn tagged_name(name: Option<&str>, key: &str) -> String {
    match name {
        Some(n) if !n.is_empty() => format!("{n} [{key}]"),
        _ => key.to_string(),
    }
}

/// A job name carrying tether's key where the service limits names (Batch, Step Functions,
/// SageMaker, EMR on EKS): `<name>-<key>`, the name cut so that the whole fits in `max`
/// characters; the key alone without a name. `find` and the simulators read the key back
/// from the end.
pub fn keyed_name(name: Option<&str>, key: &str, max: usize) -> String {
    match name {
        Some(n) if !n.is_empty() => {
            let room = max.saturating_sub(key.len() + 1);
            let cut: String = n.chars().take(room).collect();
            format!("{cut}-{key}")
        }
        _ => key.to_string(),
    }
}

/// A status message from two text fields of `value` (a reason and its details, such as Step
/// Functions' `error` and `cause`): `"<first>: <second>"`, either alone, or none when both are
/// missing or empty.
fn reason_message(value: &Value, first: &str, second: &str) -> Option<String> {
    match (kit::text(&value[first]), kit::text(&value[second])) {
        (None, None) => None,
        (Some(a), None) | (None, Some(a)) => Some(a.to_string()),
        (Some(a), Some(b)) => Some(format!("{a}: {b}")),
    }
}

/// An AWS timestamp as seconds since the epoch: a number (JSON 1.1 and REST JSON's default)
/// or an ISO 8601 string.
fn timestamp(value: &Value) -> Option<f64> {
    value.as_f64().or_else(|| {
        let text = value.as_str()?;
        let t = chrono::DateTime::parse_from_rfc3339(text).ok()?;
        Some(t.timestamp_micros() as f64 / 1e6)
    })
}

/// Percent-encodes one path segment (or query value).
fn path_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
