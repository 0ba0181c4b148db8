//! tether's AWS adapters: EMR on EC2 steps, EMR Serverless job runs and Glue job runs.
//!
//! One crate for the three services, because what is hard is shared: SigV4 signing, the
//! credential chain, AWS's error shapes and throttling. Each service has its own module with
//! the same parts as every provider (the adapter, its spec and handle), and its state mapping
//! sits in `state.rs`.
//!
//! - `config.rs`: service, region, endpoint override, profile.
//! - `credential.rs`: the standard AWS credential chain (`aws-config`), cached and refreshed.
//! - `client.rs`: SigV4 (`aws-sigv4`), JSON 1.1 and REST JSON calls, AWS errors.
//! - `emr.rs`, `emr_serverless.rs`, `glue.rs`: the adapters.
//! - `state.rs`: the state mappings.
//! - `sim/`: simulators of the three services that check SigV4 signatures
//!   (`tether sim emr | emr-serverless | glue`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod credential;
pub mod emr;
pub mod emr_serverless;
pub mod glue;
pub mod sim;
pub mod state;

use serde_json::Value;
use tether_provider::{Handle, ProviderError};

pub use config::{AwsConfig, Service};
pub use emr::Emr;
pub use emr_serverless::EmrServerless;
pub use glue::Glue;

/// A job name tagged with tether's key, so that `find` can recognise it.
pub fn tagged_name(name: Option<&str>, key: &str) -> String {
    match name {
        Some(n) if !n.is_empty() => format!("{n} [{key}]"),
        _ => key.to_string(),
    }
}

fn field<'h>(
    handle: &'h Handle,
    name: &str,
    provider: &'static str,
) -> Result<&'h str, ProviderError> {
    handle
        .0
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| ProviderError::permanent(provider, format!("handle {handle} has no {name}")))
}

/// Pages through a list call for every job `pick` recognises, oldest first. `list(token)`
/// fetches one page (the answer's JSON); `items` and `next` name the fields holding its
/// entries and the next page's token; `pick` gives a recognised entry's handle and creation
/// time. The services do not promise an order (EMR lists steps newest first, moto lists Glue
/// runs oldest first), so the creation time decides, and the list order only breaks ties
/// (as newest first). At most `max_pages` pages are read.
async fn find_in_pages<F, Fut>(
    max_pages: u32,
    items: &str,
    next: &str,
    mut list: F,
    pick: impl Fn(&Value) -> Option<(Handle, Option<f64>)>,
) -> Result<Vec<Handle>, ProviderError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Value, ProviderError>>,
{
    let mut found = Vec::new();
    let mut token = None;
    for _ in 0..max_pages {
        let page = list(token.take()).await?;
        found.extend(
            page[items]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(&pick),
        );
        match page[next].as_str() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    found.reverse();
    found.sort_by(|(_, a), (_, b)| a.unwrap_or(0.0).total_cmp(&b.unwrap_or(0.0)));
    Ok(found.into_iter().map(|(handle, _)| handle).collect())
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
