//! Configuration: the TOML file, its defaults, and the checks that run before anything starts.
//!
//! [`Config::from_toml`] reads the file into a raw form and builds the typed [`Config`] in one
//! pass that reports every bad field at once, each named by its path (`gc.schedule`, ...).
//! Each section is its own module, owning its typed struct, its raw form and its checks:
//! [`database`], [`state`](mod@state), [`gc`], [`jobs`], [`supervisor`], [`api`],
//! [`providers`] and [`events`] (checked by the registry's factories). Environment and command-line
//! overrides (such as `TETHER_DATABASE_URL`) are applied by the caller with
//! [`Config::with_database_url`].

pub mod api;
pub mod database;
pub mod events;
pub mod gc;
pub mod jobs;
pub mod providers;
pub mod state;
pub mod supervisor;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

pub use self::api::{ApiConfig, SigningKey, TlsFiles, DEFAULT_API_PORT};
pub use self::database::DatabaseConfig;
pub use self::events::EventsConfig;
pub use self::gc::{GcConfig, DEFAULT_GC_SCHEDULE};
pub use self::jobs::JobsConfig;
pub use self::providers::ProviderConfig;
pub use self::supervisor::{OnSpecChange, SupervisorConfig};
use self::{
    api::RawApi, database::RawDatabase, gc::RawGc, jobs::RawJobs, state::RawState,
    supervisor::RawSupervisor,
};
use tether_provider::problems::{parse_duration, Problems};

use crate::db::DatabaseUrl;
use crate::state::StateSettings;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for tether (syntax, unknown or mistyped field).
    #[error("config file {origin}: {message}")]
    Syntax {
        /// The file, or `<defaults>`.
        origin: String,
        /// What the parser said, with the line.
        message: String,
    },
    /// One or more fields have values that cannot be used.
    #[error("config file {origin}: {}", problems.join("; "))]
    Invalid {
        /// The file, or `<defaults>`.
        origin: String,
        /// One line per bad field, starting with its path.
        problems: Vec<String>,
    },
}

/// tether's configuration, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// The database.
    pub database: DatabaseConfig,
    /// Task-state behaviour.
    pub state: StateSettings,
    /// Garbage collection.
    pub gc: GcConfig,
    /// Job history.
    pub jobs: JobsConfig,
    /// The supervisor.
    pub supervisor: SupervisorConfig,
    /// Provider accounts by name (`[providers.NAME]`).
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Queues of provider events by name (`[events.NAME]`).
    pub events: BTreeMap<String, EventsConfig>,
    /// The HTTP API.
    pub api: ApiConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data_dir: Option<PathBuf>,
    #[serde(default)]
    database: RawDatabase,
    #[serde(default)]
    state: RawState,
    #[serde(default)]
    gc: RawGc,
    #[serde(default)]
    jobs: RawJobs,
    #[serde(default)]
    supervisor: RawSupervisor,
    #[serde(default)]
    providers: BTreeMap<String, toml::Table>,
    #[serde(default)]
    events: BTreeMap<String, toml::Table>,
    #[serde(default)]
    api: RawApi,
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// The configuration when no file is given: SQLite in the default data directory, and
    /// the providers the environment configures (`DATABRICKS_*`), which may be invalid.
    pub fn defaults() -> Result<Self, ConfigError> {
        Self::from_toml("", "<defaults>")
    }

    /// Parses and checks TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            origin: origin.to_string(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        raw.build().map_err(|problems| ConfigError::Invalid {
            origin: origin.to_string(),
            problems,
        })
    }

    /// Replaces the database URL (from `--database-url` or `TETHER_DATABASE_URL`).
    pub fn with_database_url(mut self, url: DatabaseUrl) -> Self {
        self.database.url = url;
        self
    }
}

impl RawConfig {
    /// Builds the typed config, section by section, collecting every problem instead of
    /// stopping at the first.
    fn build(self) -> Result<Config, Vec<String>> {
        let mut problems = Problems::default();
        let data_dir = self.data_dir.unwrap_or_else(default_data_dir);
        let database = self.database.build(&data_dir, &mut problems);
        let state = self.state.build(&mut problems);
        let gc = self.gc.build(&mut problems);
        let jobs = self.jobs.build(&mut problems);
        let supervisor = self.supervisor.build(&mut problems);
        let api = self.api.build(&mut problems);
        let providers = providers::build(self.providers, &mut problems);
        let events = events::build(self.events, &providers, &mut problems);
        match gc {
            Some(gc) if problems.is_empty() => Ok(Config {
                database,
                state,
                gc,
                jobs,
                supervisor,
                providers,
                events,
                api,
            }),
            _ => Err(problems.into_lines()),
        }
    }
}

/// Where SQLite lives when nothing says otherwise: `$XDG_DATA_HOME/tether`,
/// `$HOME/.local/share/tether`, or `.tether` in the current folder.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("tether");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".local/share/tether");
    }
    PathBuf::from(".tether")
}

/// A duration that must not be zero.
fn positive(d: Duration) -> Result<Duration, String> {
    if d.is_zero() {
        Err("must be above 0".into())
    } else {
        Ok(d)
    }
}

/// Parses a cron expression: the `cron` crate's 6 or 7 fields (with seconds), or the usual
/// 5 fields (minute first), which run at second 0.
pub fn parse_cron(text: &str) -> Result<cron::Schedule, String> {
    let fields = text.split_whitespace().count();
    let expr = if fields == 5 {
        format!("0 {text}")
    } else {
        text.to_string()
    };
    cron::Schedule::from_str(&expr).map_err(|e| {
        // The parser's message repeats the expression and points at it on extra lines; keep
        // its last line, which says what is wrong.
        let message = e.to_string();
        let reason = message
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        format!(
            "{text:?} is not a cron expression such as \"0 */15 * * * *\" ({})",
            reason.trim()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Retention;

    #[test]
    fn defaults_are_sqlite_30_days_every_15_minutes() {
        let c = Config::defaults().unwrap();
        assert_eq!(c.database.url.backend(), crate::db::Backend::Sqlite);
        assert_eq!(
            c.state.default_retention,
            Retention::For(Duration::from_secs(30 * 86400))
        );
        assert_eq!(c.state.max_value_bytes, 65_535);
        assert_eq!(c.gc.batch_size, 1000);
    }

    /// One duration grammar: the same text means the same in every table, the file's own
    /// sections and every provider family's account table alike.
    #[test]
    fn the_same_duration_text_is_accepted_in_every_table() {
        let livy = include_str!("../../config/livy.toml");
        let livy = livy[livy
            .find("[providers.livy]")
            .expect("the example's account")..]
            .replace("password_env = \"LIVY_PASSWORD\"", "password = \"x\"");
        let common = |d: &str| {
            format!(
                "poll_initial = \"{d}\"\npoll_max = \"{d}\"\nrequest_timeout = \"{d}\"\n\
                 not_found_grace = \"{d}\"\nforgotten_after = \"{d}\"\n"
            )
        };
        for (text, seconds) in [("1m30s", 90), ("90s", 90), ("1h 30m", 5400), ("2h", 7200)] {
            let account = common(text);
            let livy = livy.replacen(
                "[providers.livy]\n",
                &format!("[providers.livy]\n{account}"),
                1,
            );
            let livy = livy
                .lines()
                .filter(|l| {
                    !["poll_initial =", "poll_max =", "forgotten_after ="]
                        .iter()
                        .any(|k| l.starts_with(k))
                        || l.contains(text)
                })
                .collect::<Vec<_>>()
                .join("\n");
            let file = format!(
                r#"
                [database]
                connect_timeout = "{text}"
                idle_timeout = "{text}"
                [state]
                default_retention = "{text}"
                [jobs]
                retention = "{text}"
                [supervisor]
                lease = "{text}"
                shutdown_grace = "{text}"
                max_clock_skew = "{text}"
                [api]
                task_token_ttl = "{text}"
                max_wait = "{text}"
                header_read_timeout = "{text}"
                body_read_timeout = "{text}"
                [providers.db]
                kind = "databricks"
                host = "https://x.cloud.databricks.com"
                token = "dapi-x"
                {account}
                [providers.emr]
                kind = "emr"
                region = "us-east-1"
                {account}
                {livy}
                "#
            );
            let c = Config::from_toml(&file, "t.toml").unwrap_or_else(|e| panic!("{text}: {e}"));
            let d = Duration::from_secs(seconds);
            let pool = &c.database.pool;
            assert_eq!((pool.acquire_timeout, pool.idle_timeout), (d, d), "{text}");
            assert_eq!(c.state.default_retention, Retention::For(d), "{text}");
            assert_eq!(c.jobs.retention, Retention::For(d), "{text}");
            let s = &c.supervisor;
            assert_eq!(
                (s.lease, s.shutdown_grace, s.max_clock_skew),
                (d, d, d),
                "{text}"
            );
            let a = &c.api;
            assert_eq!(
                (
                    a.task_token_ttl,
                    a.max_wait,
                    a.header_read_timeout,
                    a.body_read_timeout
                ),
                (d, d, d, d),
                "{text}"
            );
            for name in ["db", "emr", "livy"] {
                let p = c.providers[name].common();
                assert_eq!(
                    (
                        p.poll.initial,
                        p.poll.max,
                        p.request_timeout,
                        p.not_found_grace
                    ),
                    (d, d, d, d),
                    "{text} in providers.{name}"
                );
                assert_eq!(p.forgotten_after, Some(d), "{text} in providers.{name}");
            }
        }
    }

    #[test]
    fn every_bad_field_is_reported() {
        let err = Config::from_toml(
            r#"
            [database]
            url = "mysql://x"
            max_connections = 0
            [state]
            default_retention = "forever"
            [gc]
            schedule = "every minute"
            batch_size = 0
            [jobs]
            retention = "0s"
            "#,
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        for field in [
            "database.url",
            "database.max_connections",
            "state.default_retention",
            "gc.schedule",
            "gc.batch_size",
            "jobs.retention",
        ] {
            assert!(err.contains(field), "{field} missing from: {err}");
        }
        assert!(err.starts_with("config file t.toml:"), "{err}");
    }

    #[test]
    fn signing_key_rings_are_checked() {
        let long = "k".repeat(32);
        let ring = |api: &str| Config::from_toml(&format!("[api]\n{api}"), "t.toml");
        let two = format!("[api.signing_keys]\na = \"{long}\"\nb = \"{long}\"");
        let err = ring(&two).unwrap_err().to_string();
        assert!(
            err.contains("api.signing_kid: is required with 2 signing keys"),
            "{err}"
        );
        let err = ring(&format!("signing_kid = \"c\"\n{two}"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"c\" is not in api.signing_keys (a, b)"),
            "{err}"
        );
        let err = ring(&format!("signing_key = \"{long}\"\n{two}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not both"), "{err}");
        let err = ring("[api.signing_keys]\na = \"short\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("api.signing_keys.a: is 5 bytes"), "{err}");
        let config = ring(&format!("signing_kid = \"b\"\n{two}")).unwrap();
        let kids: Vec<&str> = config
            .api
            .signing_keys
            .iter()
            .map(|k| k.kid.as_str())
            .collect();
        assert_eq!(kids, ["b", "a"], "the signing key first");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = Config::from_toml("[state]\nretention = \"1d\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("retention"), "{err}");
    }

    #[test]
    fn five_field_cron_is_accepted() {
        assert!(parse_cron("*/5 * * * *").is_ok());
        assert!(parse_cron("0 */15 * * * *").is_ok());
    }
}
