//! How tether finds this crate: [`FACTORY`], its kind (`kubernetes`), its settings check,
//! its adapter and (feature `sim`) the simulator.

use std::sync::Arc;

use tether_provider::registry::{Checked, Env, ProviderFactory, ProviderSettings};
use tether_provider::settings::Table;
use tether_provider::{CommonSettings, Provider, ProviderError};

use crate::adapter::{Kubernetes, KIND};
use crate::config::KubeConfig;

/// The kinds this crate serves.
pub const KINDS: &[&str] = &[KIND];

/// The Kubernetes provider, as tether's registry lists it.
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

    fn check(&self, _kind: &str, prefix: &str, table: Table, _env: Env<'_>) -> Checked {
        Ok(Arc::new(KubeConfig::build(prefix, table)?))
    }

    fn event_kinds(&self) -> &'static [&'static str] {
        &[crate::watch::KIND]
    }

    /// `kubernetes-watch`: watches of the resources tether made (`watch.rs`).
    fn event_source(
        &self,
        kind: &str,
        prefix: &str,
        table: Table,
        _env: Env<'_>,
    ) -> Result<Arc<dyn tether_provider::events::EventSource>, Vec<String>> {
        if kind != crate::watch::KIND {
            return Err(vec![format!(
                "{prefix}.kind: {kind:?} is not a Kubernetes event source kind (kubernetes-watch)"
            )]);
        }
        let config = crate::watch::WatchConfig::build(prefix, table)?;
        Ok(Arc::new(crate::watch::WatchSource::new(config)))
    }

    #[cfg(feature = "sim")]
    fn simulators(&self) -> Option<&dyn tether_provider::registry::SimFactory> {
        Some(&crate::sim::SIMULATORS)
    }
}

impl ProviderSettings for KubeConfig {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn common(&self) -> &CommonSettings {
        &self.common
    }

    fn adapter(&self) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(Arc::new(Kubernetes::new(self.clone())))
    }
}
