//! The configured provider accounts, built from `[providers.NAME]` by their crates' factories
//! ([`crate::registry`]), looked up by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use tether_provider::{Provider, ProviderError};

use super::EngineError;
use crate::config::ProviderConfig;

/// Provider adapters by configured name.
#[derive(Debug, Clone, Default)]
pub struct Providers {
    by_name: BTreeMap<String, Arc<dyn Provider>>,
}

impl Providers {
    /// Builds an adapter for each configured provider.
    pub fn from_config(config: &BTreeMap<String, ProviderConfig>) -> Result<Self, ProviderError> {
        let mut by_name: BTreeMap<String, Arc<dyn Provider>> = BTreeMap::new();
        for (name, settings) in config {
            let adapter = settings.adapter()?;
            if let Some(why) = adapter.settings().retention_warning() {
                tracing::warn!(provider = %name, "providers.{name}: {why}");
            }
            by_name.insert(name.clone(), adapter);
        }
        Ok(Self { by_name })
    }

    /// A set of adapters given directly (tests).
    pub fn from_adapters(adapters: impl IntoIterator<Item = (String, Arc<dyn Provider>)>) -> Self {
        Self {
            by_name: adapters.into_iter().collect(),
        }
    }

    /// Every adapter with its name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<dyn Provider>)> {
        self.by_name.iter().map(|(n, p)| (n.as_str(), p))
    }

    /// The adapter configured as `name`.
    pub fn get(&self, name: &str) -> Result<Arc<dyn Provider>, EngineError> {
        self.by_name
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::UnknownProvider {
                name: name.to_string(),
                known: self.by_name.keys().cloned().collect(),
            })
    }
}
