//! How tether finds this crate: [`FACTORY`], its kinds (`bigquery`, `dataproc-job`,
//! `dataproc-batch`), their settings check,
//! their adapters and (feature `sim`) the simulator.

use std::sync::Arc;

use tether_provider::registry::{Checked, Env, ProviderFactory, ProviderSettings};
use tether_provider::settings::Table;
use tether_provider::{CommonSettings, Provider, ProviderError};

use crate::{bigquery, dataproc, BigQuery, Dataproc, GoogleConfig};

/// The kinds this crate serves.
pub const KINDS: &[&str] = &[bigquery::KIND, dataproc::JOB_KIND, dataproc::BATCH_KIND];

/// The Google Cloud provider, as tether's registry lists it.
pub static FACTORY: Factory = Factory;

/// See [`FACTORY`].
#[derive(Debug)]
pub struct Factory;

impl ProviderFactory for Factory {
    fn kinds(&self) -> &'static [&'static str] {
        KINDS
    }

    fn edges(&self, kind: &str) -> &'static tether_provider::Edges {
        crate::edges::of(kind)
    }

    fn check(&self, kind: &str, prefix: &str, table: Table, env: Env<'_>) -> Checked {
        let kind = KINDS
            .iter()
            .copied()
            .find(|k| *k == kind)
            .unwrap_or(bigquery::KIND);
        Ok(Arc::new(GoogleConfig::build(kind, prefix, table, env)?))
    }

    fn event_kinds(&self) -> &'static [&'static str] {
        &[crate::pubsub::KIND]
    }

    /// `gcp-pubsub`: the Google kinds' job events from a Pub/Sub subscription (`pubsub.rs`).
    fn event_source(
        &self,
        kind: &str,
        prefix: &str,
        table: Table,
        _env: Env<'_>,
    ) -> Result<Arc<dyn tether_provider::events::EventSource>, Vec<String>> {
        if kind != crate::pubsub::KIND {
            return Err(vec![format!(
                "{prefix}.kind: {kind:?} is not a Google event source kind (gcp-pubsub)"
            )]);
        }
        let config = crate::pubsub::PubSubConfig::build(prefix, table)?;
        let source =
            crate::pubsub::PubSubSource::new(config).map_err(|e| vec![format!("{prefix}: {e}")])?;
        Ok(Arc::new(source))
    }

    #[cfg(feature = "sim")]
    fn simulators(&self) -> Option<&dyn tether_provider::registry::SimFactory> {
        Some(&crate::sim::SIMULATORS)
    }
}

impl ProviderSettings for GoogleConfig {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn common(&self) -> &CommonSettings {
        &self.common
    }

    fn adapter(&self) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(match self.kind {
            dataproc::JOB_KIND | dataproc::BATCH_KIND => Arc::new(Dataproc::new(self.clone())?),
            _ => Arc::new(BigQuery::new(self.clone())?),
        })
    }
}
