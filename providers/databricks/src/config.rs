//! Databricks settings: workspace host, credentials, and the common provider settings.
//!
//! Read from `[providers.NAME]` with `kind = "databricks"`; any field left out falls back to
//! the variables Databricks' own tools use: `DATABRICKS_HOST`, `DATABRICKS_TOKEN`,
//! `DATABRICKS_CLIENT_ID`, `DATABRICKS_CLIENT_SECRET`. The job notification settings
//! (`notification_destination`, `notification_secret`) are tether's own, per account: they
//! have no variable.

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

/// Where the workspace sends an account's job notifications, and how they are told from
/// anyone else's requests (see [`crate::notifications`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Notifications {
    /// The notification destination's id (a UUID): a generic webhook destination, made by a
    /// workspace admin, whose URL is tether's `/v1/events/databricks/{account}`.
    pub destination: String,
    /// The password that destination sends (HTTP basic authentication).
    pub secret: Secret,
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
    /// Job notifications (`notification_destination` and `notification_secret`, both or
    /// neither; runs of the `databricks` kind only): `None` learns of runs by polling alone.
    pub notifications: Option<Notifications>,
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
        let destination = p.string(&mut table, "notification_destination");
        let notification_secret = p.string(&mut table, "notification_secret");
        let secret_var = p.string(&mut table, "notification_secret_env");
        let notification_secret = secret_or_var(&mut p, notification_secret, secret_var, &env);
        let notifications = notifications(&mut p, kind, destination, notification_secret);
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
                notifications,
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

/// `notification_secret`, given in the file or (`notification_secret_env`) by the
/// environment variable it names: one or the other.
fn secret_or_var(
    p: &mut Problems,
    given: Option<String>,
    var: Option<String>,
    env: &impl Fn(&str) -> Option<String>,
) -> Option<String> {
    match (given, var) {
        (Some(_), Some(_)) => {
            p.at(
                "notification_secret",
                "give notification_secret or notification_secret_env, not both",
            );
            None
        }
        (given, None) => given,
        (None, Some(var)) => match env(&var).filter(|v| !v.is_empty()) {
            Some(v) => Some(v),
            None => {
                p.at(
                    "notification_secret_env",
                    format!("the environment variable {var} is not set"),
                );
                None
            }
        },
    }
}

/// The job notification settings: both or neither, a destination id shaped as Databricks
/// gives them (a UUID), a secret that is not empty; for the `databricks` kind only (pipeline
/// updates and SQL statements send no webhook notifications).
fn notifications(
    p: &mut Problems,
    kind: &str,
    destination: Option<String>,
    secret: Option<String>,
) -> Option<Notifications> {
    if kind != crate::PROVIDER {
        for (field, given) in [
            ("notification_destination", destination.is_some()),
            ("notification_secret", secret.is_some()),
        ] {
            if given {
                p.at(
                    field,
                    format!(
                        "job notifications are for kind = \"{}\" only ({kind} sends none tether could read)",
                        crate::PROVIDER
                    ),
                );
            }
        }
        return None;
    }
    match (destination, secret) {
        (None, None) => None,
        (Some(_), None) => {
            p.at(
                "notification_secret",
                "missing (notification_destination is set: give the password its destination sends)",
            );
            None
        }
        (None, Some(_)) => {
            p.at(
                "notification_destination",
                "missing (notification_secret is set: give the id of the destination that sends it)",
            );
            None
        }
        (Some(destination), Some(secret)) => {
            let destination = destination.trim().to_string();
            let shaped = is_uuid(&destination);
            if !shaped {
                p.at(
                    "notification_destination",
                    format!("{destination:?} is not a notification destination's id (a UUID, such as 3c90c3cc-0d44-4b50-8888-8dd25736052a)"),
                );
            }
            if secret.is_empty() {
                p.at("notification_secret", "must not be empty");
            }
            (shaped && !secret.is_empty()).then(|| Notifications {
                destination,
                secret: Secret::new(secret),
            })
        }
    }
}

/// Whether `text` is a UUID as 8-4-4-4-12 hex digits ("UUID identifying notification
/// destination": databricks-sdk-py `service/settings.py` `NotificationDestination.id`).
fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
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

    #[test]
    fn notification_settings() {
        let base = [("host", "https://h"), ("token", "t")];
        let with = |kind, more: &[(&str, &str)]| {
            let mut t = table(&base);
            t.extend(table(more));
            DatabricksConfig::build_kind(kind, "providers.db", t, |_| None)
        };
        assert_eq!(with("databricks", &[]).unwrap().notifications, None);
        let id = "3c90c3cc-0d44-4b50-8888-8dd25736052a";
        let c = with(
            "databricks",
            &[
                ("notification_destination", id),
                ("notification_secret", "hunter2-x"),
            ],
        )
        .unwrap();
        let n = c.notifications.as_ref().unwrap();
        assert_eq!(
            (n.destination.as_str(), n.secret.expose()),
            (id, "hunter2-x")
        );
        assert!(!format!("{c:?}").contains("hunter2-x"));

        let err = with("databricks", &[("notification_destination", id)])
            .unwrap_err()
            .join("; ");
        assert!(
            err.contains("providers.db.notification_secret: missing"),
            "{err}"
        );
        let err = with("databricks", &[("notification_secret", "s")])
            .unwrap_err()
            .join("; ");
        assert!(
            err.contains("providers.db.notification_destination: missing"),
            "{err}"
        );
        // Every bad field named at once, with the others'.
        let err = with(
            "databricks",
            &[
                (
                    "notification_destination",
                    "https://tether.example/v1/events",
                ),
                ("notification_secret", ""),
                ("colour", "red"),
            ],
        )
        .unwrap_err()
        .join("; ");
        for needle in [
            "providers.db.notification_destination: \"https://tether.example/v1/events\" is not",
            "providers.db.notification_secret: must not be empty",
            "providers.db.colour: unknown",
        ] {
            assert!(err.contains(needle), "{needle} not in {err}");
        }
        let err = with(
            "databricks-pipeline",
            &[
                ("notification_destination", id),
                ("notification_secret", "s"),
            ],
        )
        .unwrap_err()
        .join("; ");
        assert!(
            err.contains("providers.db.notification_destination: job notifications are for kind = \"databricks\" only")
                && err.contains("providers.db.notification_secret"),
            "{err}"
        );
        assert!(!err.contains(": s "), "the secret is not echoed: {err}");

        // The secret from the environment: the variable named, set or not.
        let from_env = |var: &str| {
            let mut t = table(&base);
            t.extend(table(&[
                ("notification_destination", id),
                ("notification_secret_env", var),
            ]));
            DatabricksConfig::build_kind("databricks", "providers.db", t, |name| {
                (name == "NOTIFY_SECRET").then(|| "from-env".to_string())
            })
        };
        let c = from_env("NOTIFY_SECRET").unwrap();
        assert_eq!(c.notifications.unwrap().secret.expose(), "from-env");
        let err = from_env("UNSET_VAR").unwrap_err().join("; ");
        assert!(
            err.contains("providers.db.notification_secret_env: the environment variable UNSET_VAR is not set"),
            "{err}"
        );
    }

    #[test]
    fn uuid_shape() {
        assert!(is_uuid("3c90c3cc-0d44-4b50-8888-8dd25736052a"));
        assert!(is_uuid("3C90C3CC-0D44-4B50-8888-8DD25736052A"));
        for bad in [
            "",
            "3c90c3cc0d444b5088888dd25736052a",
            "3c90c3cc-0d44-4b50-8888-8dd25736052",
            "3c90c3cc-0d44-4b50-8888-8dd25736052g",
            "3c90c3cc-0d44-4b50-8888-8dd25736052a-1",
        ] {
            assert!(!is_uuid(bad), "{bad}");
        }
    }
}
