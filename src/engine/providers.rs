//! The configured provider accounts, built from `[providers.NAME]` by their crates' factories
//! ([`crate::registry`]), looked up by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use tether_provider::{CommonSettings, PollSettings, Provider, ProviderError};

use super::EngineError;
use crate::config::ProviderConfig;

/// Provider adapters by configured name.
#[derive(Debug, Clone, Default)]
pub struct Providers {
    by_name: BTreeMap<String, Arc<dyn Provider>>,
    /// How the accounts whose services tell tether of their jobs' ends are polled (see
    /// [`CommonSettings::poll_with_events`]).
    evented: BTreeMap<String, PollSettings>,
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
        let with_webhooks: Vec<String> = by_name
            .iter()
            .filter(|(_, p)| p.webhook().is_some())
            .map(|(n, _)| n.clone())
            .collect();
        Ok(Self {
            by_name,
            evented: BTreeMap::new(),
        }
        .with_events(with_webhooks))
    }

    /// Notes that the services of accounts `names` tell tether of their jobs' ends: their
    /// jobs are polled at most every `poll_max_with_events`.
    pub fn with_events(mut self, names: impl IntoIterator<Item = String>) -> Self {
        for name in names {
            if let Some(p) = self.by_name.get(&name) {
                let poll = p.settings().poll_with_events();
                tracing::info!(provider = %name, poll_max_ms = poll.max.as_millis() as u64,
                    "provider events: polling is the safety net, at most this far apart");
                self.evented.insert(name, poll);
            }
        }
        self
    }

    /// How jobs of account `name` (whose settings are `settings`) are polled.
    pub fn poll<'a>(&'a self, name: &str, settings: &'a CommonSettings) -> &'a PollSettings {
        self.evented.get(name).unwrap_or(&settings.poll)
    }

    /// A set of adapters given directly (tests).
    pub fn from_adapters(adapters: impl IntoIterator<Item = (String, Arc<dyn Provider>)>) -> Self {
        Self {
            by_name: adapters.into_iter().collect(),
            evented: BTreeMap::new(),
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
