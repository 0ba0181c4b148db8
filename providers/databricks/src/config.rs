//! Databricks settings: workspace host, credentials, and the common provider settings.
//!
//! Read from `[providers.NAME]` with `kind = "databricks"`; any field left out falls back to
//! the variables Databricks' own tools use: `DATABRICKS_HOST`, `DATABRICKS_TOKEN`,
//! `DATABRICKS_CLIENT_ID`, `DATABRICKS_CLIENT_SECRET`.

use tether_provider::settings::{Setting, Table};
use tether_provider::Problems;
use tether_provider::{CommonSettings, Secret};

/// How tether authenticates to the workspace.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    /// A personal access token, sent as a bearer token.
    Token(Secret),
    /// OAuth machine-to-machine: a service principal's client id and secret, exchanged at the
    /// workspace's token endpoint for short-lived tokens.
    OAuth {
        /// The service principal's application id.
        client_id: String,
        /// Its OAuth secret.
        client_secret: Secret,
    },
}

/// What a later try does with a run that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnRetry {
    /// Submit a new run (every task runs again).
    #[default]
    Resubmit,
    /// Repair the failed run (`runs/repair` with `rerun_all_failed_tasks`): only the failed
    /// tasks and those depending on them run again, in the same run.
    Repair,
}

/// Checked Databricks settings (one account of one kind).
#[derive(Debug, Clone, PartialEq)]
pub struct DatabricksConfig {
    /// The kind: `databricks`, `databricks-pipeline` or `databricks-sql`.
    pub kind: &'static str,
    /// The workspace URL, e.g. `https://adb-1234.5.azuredatabricks.net`, without a trailing
    /// slash.
    pub host: String,
    /// Credentials.
    pub auth: Auth,
    /// Polling, rate limit, retries, timeouts.
    pub common: CommonSettings,
    /// How many pages of a list `find` reads at most.
    pub find_max_pages: u32,
    /// What a later try does with a failed run (`on_retry`: `resubmit` or `repair`; runs of
    /// the `databricks` kind only).
    pub on_retry: OnRetry,
}

impl DatabricksConfig {
    /// Builds the config of a `databricks` account from a provider table and the
    /// environment, reporting every bad or missing field (prefixed with `prefix`, e.g.
    /// `providers.databricks`).
    pub fn build(
        prefix: &str,
        table: Table,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Vec<String>> {
        Self::build_kind(crate::PROVIDER, prefix, table, env)
    }

    /// [`DatabricksConfig::build`] for an account of `kind` (one of [`crate::factory::KINDS`]).
    pub fn build_kind(
        kind: &'static str,
        prefix: &str,
        mut table: Table,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Vec<String>> {
        let mut p = Problems::new(prefix);
        table.remove("kind");
        let common = CommonSettings::take_from(&mut table, &mut p, crate::edges::of(kind));
        let mut field = |p: &mut Problems, key: &str, var: &str| {
            p.string(&mut table, key)
                .or_else(|| env(var))
                .filter(|v| !v.trim().is_empty())
        };
        let host = field(&mut p, "host", "DATABRICKS_HOST");
        let token = field(&mut p, "token", "DATABRICKS_TOKEN");
        let client_id = field(&mut p, "client_id", "DATABRICKS_CLIENT_ID");
        let client_secret = field(&mut p, "client_secret", "DATABRICKS_CLIENT_SECRET");
        let find_max_pages = p.positive(&mut table, "find_max_pages").unwrap_or(20);
        let on_retry = match table.remove("on_retry") {
            None => OnRetry::Resubmit,
            Some(Setting::String(s)) if s == "resubmit" => OnRetry::Resubmit,
            Some(Setting::String(s)) if s == "repair" && kind == crate::PROVIDER => OnRetry::Repair,
            Some(Setting::String(s)) if s == "repair" => {
                p.at(
                    "on_retry",
                    format!(
                        "\"repair\" repairs job runs: kind = \"{}\" only ({kind} has nothing to repair)",
                        crate::PROVIDER
                    ),
                );
                OnRetry::Resubmit
            }
            Some(other) => {
                p.at(
                    "on_retry",
                    format!("must be \"resubmit\" or \"repair\", not {other}"),
                );
                OnRetry::Resubmit
            }
        };
        p.unknown("", &table);
        let host = match host {
            None => {
                p.at("host", "missing (set it, or DATABRICKS_HOST)");
                None
            }
            Some(h) if !(h.starts_with("https://") || h.starts_with("http://")) => {
                p.at(
                    "host",
                    format!("{h:?} must start with https:// (or http:// for a simulator)"),
                );
                None
            }
            Some(h) => Some(h.trim_end_matches('/').to_string()),
        };
        let auth = match (token, client_id, client_secret) {
            (Some(t), _, _) => Some(Auth::Token(Secret::new(t))),
            (None, Some(id), Some(secret)) => Some(Auth::OAuth {
                client_id: id,
                client_secret: Secret::new(secret),
            }),
            (None, Some(_), None) => {
                p.at(
                    "client_secret",
                    "missing (client_id is set; set client_secret or DATABRICKS_CLIENT_SECRET)",
                );
                None
            }
            (None, None, _) => {
                p.at("token", "no credentials (set token or DATABRICKS_TOKEN, or client_id and client_secret for OAuth)");
                None
            }
        };
        match (host, auth) {
            (Some(host), Some(auth)) if p.is_empty() => Ok(Self {
                kind,
                host,
                auth,
                common,
                find_max_pages,
                on_retry,
            }),
            _ => Err(p.into_lines()),
        }
    }

    /// A `kind` account of the workspace `https://x` with a token, for the adapters' tests.
    #[cfg(test)]
    pub(crate) fn for_tests(kind: &'static str) -> Self {
        let table = Table::from([
            ("host".to_string(), "https://x".into()),
            ("token".to_string(), "t".into()),
        ]);
        Self::build_kind(kind, "p", table, |_| None).expect("a valid test account")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, &str)]) -> Table {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), (*v).into()))
            .collect()
    }

    #[test]
    fn token_from_config_or_environment() {
        let c = DatabricksConfig::build(
            "p",
            table(&[
                ("host", "https://x.cloud.databricks.com/"),
                ("token", "dapi123"),
            ]),
            |_| None,
        )
        .unwrap();
        assert_eq!(c.host, "https://x.cloud.databricks.com");
        assert_eq!(c.auth, Auth::Token(Secret::new("dapi123")));
        assert!(!format!("{c:?}").contains("dapi123"));

        let env = |v: &str| match v {
            "DATABRICKS_HOST" => Some("https://h".to_string()),
            "DATABRICKS_CLIENT_ID" => Some("sp".to_string()),
            "DATABRICKS_CLIENT_SECRET" => Some("s3cr3t".to_string()),
            _ => None,
        };
        let c = DatabricksConfig::build("p", table(&[]), env).unwrap();
        assert!(matches!(c.auth, Auth::OAuth { .. }));
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn reports_every_problem() {
        let err = DatabricksConfig::build(
            "providers.db",
            table(&[
                ("host", "ftp://x"),
                ("client_id", "a"),
                ("colour", "red"),
                ("poll_max", "x"),
            ]),
            |_| None,
        )
        .unwrap_err();
        let all = err.join("\n");
        for needle in ["host", "client_secret", "colour: unknown", "poll_max"] {
            assert!(all.contains(needle), "{needle} not in {all}");
        }
    }

    #[test]
    fn on_retry() {
        let base = [("host", "https://h"), ("token", "t")];
        let with = |kind, value: &str| {
            let mut t = table(&base);
            t.insert("on_retry".into(), value.into());
            DatabricksConfig::build_kind(kind, "providers.db", t, |_| None)
        };
        assert_eq!(
            with("databricks", "repair").unwrap().on_retry,
            OnRetry::Repair
        );
        assert_eq!(
            with("databricks", "resubmit").unwrap().on_retry,
            OnRetry::Resubmit
        );
        let err = with("databricks", "fix").unwrap_err().join("; ");
        assert!(err.contains("providers.db.on_retry: must be"), "{err}");
        let err = with("databricks-sql", "repair").unwrap_err().join("; ");
        assert!(
            err.contains("providers.db.on_retry") && err.contains("databricks-sql"),
            "{err}"
        );
    }
}
