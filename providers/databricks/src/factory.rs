//! How tether finds this crate: [`FACTORY`], its kind (`databricks`), its settings check, its
//! adapter and (feature `sim`) its simulator.

use std::sync::Arc;

use tether_provider::registry::{Env, ProviderFactory, ProviderSettings};
use tether_provider::settings::Table;
use tether_provider::{CommonSettings, Provider, ProviderError};

use crate::{Databricks, DatabricksConfig, PROVIDER};

/// The Databricks provider, as tether's registry lists it.
pub static FACTORY: Factory = Factory;

/// See [`FACTORY`].
#[derive(Debug)]
pub struct Factory;

impl ProviderFactory for Factory {
    fn kinds(&self) -> &'static [&'static str] {
        &[PROVIDER]
    }

    fn check(
        &self,
        _kind: &str,
        prefix: &str,
        table: Table,
        env: Env<'_>,
    ) -> Result<Arc<dyn ProviderSettings>, Vec<String>> {
        Ok(Arc::new(DatabricksConfig::build(prefix, table, env)?))
    }

    /// `[providers.databricks]` from `DATABRICKS_HOST` with a token or an OAuth client id
    /// (the variables Databricks' own tools read). `DATABRICKS_HOST` alone, set for tools
    /// that read a profile file, configures nothing: a half-configured provider would fail
    /// every command.
    fn configured_by_env(&self, env: Env<'_>) -> Option<(&'static str, Table)> {
        let set = |name: &str| env(name).is_some();
        (set("DATABRICKS_HOST") && (set("DATABRICKS_TOKEN") || set("DATABRICKS_CLIENT_ID")))
            .then(|| (PROVIDER, Table::new()))
    }

    #[cfg(feature = "sim")]
    fn simulators(&self) -> Option<&dyn tether_provider::registry::SimFactory> {
        Some(&crate::sim::SIMULATORS)
    }
}

impl ProviderSettings for DatabricksConfig {
    fn kind(&self) -> &'static str {
        PROVIDER
    }

    fn common(&self) -> &CommonSettings {
        &self.common
    }

    fn adapter(&self) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(Arc::new(Databricks::new(self.clone())?))
    }
}
