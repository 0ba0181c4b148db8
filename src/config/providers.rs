//! `[providers.NAME]`: provider accounts, each checked by its kind's factory in the registry
//! (`crate::registry`), from the neutral form of its table.

use std::collections::BTreeMap;

use tether_provider::settings::{Setting, Table};
use tether_provider::ProviderSettings;

use super::Problems;

/// One configured provider account: its checked settings, from its crate's factory
/// ([`crate::registry`]).
pub type ProviderConfig = std::sync::Arc<dyn ProviderSettings>;

/// Builds each `[providers.NAME]` table through the registry: the kind is the `kind` field, or
/// the name itself when it names a kind, and that kind's factory checks the rest. A factory
/// may configure a provider from the environment when the file has no table of its name
/// (`DATABRICKS_*`).
pub(super) fn build(
    raw: BTreeMap<String, toml::Table>,
    problems: &mut Problems,
) -> BTreeMap<String, ProviderConfig> {
    let env = |name: &str| std::env::var(name).ok();
    let mut tables: BTreeMap<String, Table> = BTreeMap::new();
    for factory in crate::registry::FACTORIES {
        if let Some((name, table)) = factory.configured_by_env(&env) {
            if !raw.contains_key(name) {
                tables.insert(name.to_string(), table);
            }
        }
    }
    tables.extend(raw.into_iter().map(|(name, t)| (name, neutral_table(t))));
    let mut providers = BTreeMap::new();
    for (name, table) in tables {
        let prefix = format!("providers.{name}");
        if let Err(e) = crate::model::scope::validate_id("provider name", &name, "") {
            problems.push(format!("{prefix}: {e}"));
            continue;
        }
        let kind = match table.get("kind") {
            Some(Setting::String(k)) => k.clone(),
            Some(other) => {
                problems.push(format!("{prefix}.kind: must be a string, not {other}"));
                continue;
            }
            None => name.clone(),
        };
        let Some(factory) = crate::registry::factory(&kind) else {
            problems.push(format!(
                "{prefix}.kind: {kind:?} is not a provider kind (known: {})",
                crate::registry::kinds().join(", ")
            ));
            continue;
        };
        let mut table = table;
        table.remove("kind");
        match factory.check(&kind, &prefix, table, &env) {
            Ok(settings) => {
                providers.insert(name, settings);
            }
            Err(p) => problems.extend(p),
        }
    }
    providers
}

/// A provider's table as the file gave it, in the form providers read (no TOML types).
fn neutral_table(table: toml::Table) -> Table {
    tether_provider::settings::from_toml(table)
}
