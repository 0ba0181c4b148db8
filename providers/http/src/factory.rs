//! How tether finds this crate: [`FACTORY`], its kind (`http`), the description's check, the
//! adapter and (feature `sim`) the simulators of the example APIs.

use std::sync::Arc;

use tether_provider::registry::{Checked, Env, ProviderFactory, ProviderSettings};
use tether_provider::settings::Table;
use tether_provider::{CommonSettings, Provider, ProviderError};

use crate::{Declared, HttpApiConfig, PROVIDER};

/// The declared provider, as tether's registry lists it.
pub static FACTORY: Factory = Factory;

/// See [`FACTORY`].
#[derive(Debug)]
pub struct Factory;

impl ProviderFactory for Factory {
    fn kinds(&self) -> &'static [&'static str] {
        &[PROVIDER]
    }

    fn edges(&self, _kind: &str) -> &'static tether_provider::Edges {
        &crate::edges::DECLARED
    }

    fn check(&self, _kind: &str, prefix: &str, table: Table, env: Env<'_>) -> Checked {
        Ok(Arc::new(HttpApiConfig::build(prefix, table, env)?))
    }

    #[cfg(feature = "sim")]
    fn simulators(&self) -> Option<&dyn tether_provider::registry::SimFactory> {
        Some(&crate::sim::SIMULATORS)
    }
}

impl ProviderSettings for HttpApiConfig {
    fn kind(&self) -> &'static str {
        PROVIDER
    }

    fn common(&self) -> &CommonSettings {
        &self.common
    }

    fn adapter(&self) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(Arc::new(Declared::new(self.clone())?))
    }
}
