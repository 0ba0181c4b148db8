//! `[jobs]`: how long finished jobs and their events are kept.

use std::str::FromStr;

use serde::Deserialize;

use super::Problems;
use crate::state::Retention;

/// Job history: how long finished jobs and their events are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct JobsConfig {
    /// How long a finished job (and its event log) is kept after it finished; `never` keeps
    /// it. The GC sweep removes older ones, except a task instance's newest generation while
    /// its `tether.job.<name>` task-state key is there.
    pub retention: Retention,
    /// The namespace of the idempotency keys this deployment derives (`jobs.key_namespace`),
    /// instead of the one its database made when first migrated: two deployments configured
    /// with the same value share keys on purpose (and so adopt each other's remote jobs), and a
    /// database rebuilt from nothing keeps its old keys.
    pub key_namespace: Option<String>,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            retention: Retention::For(std::time::Duration::from_secs(30 * 24 * 3600)),
            key_namespace: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJobs {
    retention: Option<String>,
    key_namespace: Option<String>,
}

impl RawJobs {
    /// The section, checked.
    pub(super) fn build(self, problems: &mut Problems) -> JobsConfig {
        let mut jobs = JobsConfig::default();
        if let Some(r) = &self.retention {
            problems.check(
                "jobs.retention",
                Retention::from_str(r)
                    .map(|r| jobs.retention = r)
                    .map_err(|e| e.to_string()),
            );
        }
        if let Some(ns) = self.key_namespace {
            problems.check(
                "jobs.key_namespace",
                check_namespace(&ns).map(|()| jobs.key_namespace = Some(ns)),
            );
        }
        jobs
    }
}

/// The rule of a key namespace: 1 to 64 letters, digits, `-`, `_` or `.`.
fn check_namespace(ns: &str) -> Result<(), String> {
    if ns.is_empty() || ns.len() > 64 {
        return Err(format!(
            "{ns:?} has {} characters; a key namespace has 1 to 64",
            ns.len()
        ));
    }
    match ns
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        Some(c) => Err(format!(
            "{ns:?} holds {c:?}; a key namespace is letters, digits, '-', '_' and '.'"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::check_namespace;

    #[test]
    fn namespace_rule() {
        assert!(check_namespace("prod-eu.1_a").is_ok());
        assert!(check_namespace(&"a".repeat(64)).is_ok());
        let long = check_namespace(&"a".repeat(65)).unwrap_err();
        assert!(long.contains("65 characters"), "{long}");
        assert!(check_namespace("").unwrap_err().contains("0 characters"));
        assert!(check_namespace("a b").unwrap_err().contains("' '"));
    }
}
