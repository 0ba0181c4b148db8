//! How tether finds this crate: [`FACTORY`], its kinds (`databricks`, `databricks-pipeline`,
//! `databricks-sql`), their settings check (one workspace table for all three), their adapters
//! and (feature `sim`) the simulator.

use std::sync::Arc;

use tether_provider::registry::{Checked, Env, ProviderFactory, ProviderSettings};
use tether_provider::settings::Table;
use tether_provider::{CommonSettings, Provider, ProviderError};

use crate::{
    pipelines, statements, Databricks, DatabricksConfig, DatabricksPipeline, DatabricksSql,
    PROVIDER,
};

/// The kinds this crate serves.
pub const KINDS: &[&str] = &[PROVIDER, pipelines::KIND, statements::KIND];

/// The Databricks provider, as tether's registry lists it.
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
            .unwrap_or(PROVIDER);
        Ok(Arc::new(DatabricksConfig::build_kind(
            kind, prefix, table, env,
        )?))
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
        self.kind
    }

    fn common(&self) -> &CommonSettings {
        &self.common
    }

    fn adapter(&self) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(match self.kind {
            pipelines::KIND => Arc::new(DatabricksPipeline::new(self.clone())?),
            statements::KIND => Arc::new(DatabricksSql::new(self.clone())?),
            _ => Arc::new(Databricks::new(self.clone())?),
        })
    }
}
