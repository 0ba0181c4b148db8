//! `[events.NAME]`: the queues of provider events supervisors read (an SQS queue that an
//! EventBridge rule feeds, ...). `kind` picks the registry's factory that reads it; `accounts`
//! names the provider accounts its events are matched to; `on_unreadable` says what becomes of
//! an event that cannot be read (`"delete"`, the default, or `"leave"` it for the queue's
//! redrive policy). The factory checks the rest of the table.

use std::collections::BTreeMap;
use std::sync::Arc;

use tether_provider::events::EventSource;
use tether_provider::settings::Setting;

use super::{Problems, ProviderConfig};

/// One configured event source.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// Its kind (`aws-sqs`).
    pub kind: String,
    /// The reader, from its factory.
    pub source: Arc<dyn EventSource>,
    /// The provider accounts its events are about.
    pub accounts: Vec<String>,
    /// Whether an unreadable event is deleted (else left for the queue's redrive policy).
    pub delete_unreadable: bool,
}

/// Every event source kind tether knows.
fn kinds() -> Vec<&'static str> {
    crate::registry::FACTORIES
        .iter()
        .flat_map(|f| f.event_kinds().iter().copied())
        .collect()
}

/// Builds each `[events.NAME]` table; `providers` are the accounts configured.
pub(super) fn build(
    raw: BTreeMap<String, toml::Table>,
    providers: &BTreeMap<String, ProviderConfig>,
    problems: &mut Problems,
) -> BTreeMap<String, EventsConfig> {
    let env = |name: &str| std::env::var(name).ok();
    let mut sources = BTreeMap::new();
    for (name, table) in raw {
        let prefix = format!("events.{name}");
        if let Err(e) = crate::model::scope::validate_id("event source name", &name, "") {
            problems.push(format!("{prefix}: {e}"));
            continue;
        }
        let mut table = tether_provider::settings::from_toml(table);
        let kind = match table.remove("kind") {
            Some(Setting::String(k)) => k,
            Some(other) => {
                problems.push(format!("{prefix}.kind: must be a string, not {other}"));
                continue;
            }
            None => {
                problems.push(format!(
                    "{prefix}.kind: is required (one of: {})",
                    kinds().join(", ")
                ));
                continue;
            }
        };
        let accounts = accounts(table.remove("accounts"), &prefix, providers, problems);
        let delete_unreadable = match table.remove("on_unreadable") {
            None => true,
            Some(Setting::String(s)) if s == "delete" => true,
            Some(Setting::String(s)) if s == "leave" => false,
            Some(other) => {
                problems.push(format!(
                    "{prefix}.on_unreadable: must be \"delete\" or \"leave\", not {other}"
                ));
                true
            }
        };
        let Some(factory) = crate::registry::FACTORIES
            .iter()
            .find(|f| f.event_kinds().contains(&kind.as_str()))
        else {
            problems.push(format!(
                "{prefix}.kind: {kind:?} is not an event source kind (known: {})",
                kinds().join(", ")
            ));
            continue;
        };
        match factory.event_source(&kind, &prefix, table, &env) {
            Ok(source) => {
                if let Some(accounts) = accounts {
                    sources.insert(
                        name,
                        EventsConfig {
                            kind,
                            source,
                            accounts,
                            delete_unreadable,
                        },
                    );
                }
            }
            Err(p) => problems.extend(p),
        }
    }
    sources
}

/// Reads `accounts`: a non-empty list of configured provider accounts.
fn accounts(
    value: Option<Setting>,
    prefix: &str,
    providers: &BTreeMap<String, ProviderConfig>,
    problems: &mut Problems,
) -> Option<Vec<String>> {
    let field = format!("{prefix}.accounts");
    let list = match value {
        Some(Setting::List(items)) => items,
        Some(other) => {
            problems.push(format!(
                "{field}: must be a list of provider account names, not {other}"
            ));
            return None;
        }
        None => {
            problems.push(format!(
                "{field}: is required: the provider accounts whose jobs its events report"
            ));
            return None;
        }
    };
    let mut names = Vec::new();
    let mut ok = true;
    for item in list {
        match item {
            Setting::String(name) if providers.contains_key(&name) => names.push(name),
            Setting::String(name) => {
                ok = false;
                let known: Vec<&str> = providers.keys().map(String::as_str).collect();
                problems.push(format!(
                    "{field}: {name:?} is not a configured provider account (configured: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
            }
            other => {
                ok = false;
                problems.push(format!("{field}: each must be a string, not {other}"));
            }
        }
    }
    if ok && names.is_empty() {
        problems.push(format!("{field}: names no account"));
        return None;
    }
    ok.then_some(names)
}
