//! Configuration: the TOML file, its defaults, and the checks that run before anything starts.
//!
//! [`Config::from_toml`] reads the file into a raw form and builds the typed [`Config`] in one
//! pass that reports every bad field at once, each named by its path (`gc.schedule`, ...).
//! Environment and command-line overrides (such as `TETHER_DATABASE_URL`) are applied by the
//! caller with [`Config::with_database_url`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use tether_provider::settings::{Setting, Table};
use tether_provider::ProviderSettings;

use crate::db::{DatabaseUrl, PoolSettings};
use crate::state::{Retention, StateSettings};

/// The default garbage-collection schedule: every 15 minutes.
pub const DEFAULT_GC_SCHEDULE: &str = "0 */15 * * * *";

/// The default port of the HTTP API (`api.listen` is `127.0.0.1:8470`): not 8080, which is
/// Airflow's API server's, so that both run on one machine as they come.
pub const DEFAULT_API_PORT: u16 = 8470;

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

/// Where the database is and how to reach it.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// The database URL (password masked when printed).
    pub url: DatabaseUrl,
    /// Pool sizing and timeouts.
    pub pool: PoolSettings,
}

/// Garbage collection of expired task state.
#[derive(Debug, Clone)]
pub struct GcConfig {
    /// When the sweeper in `tether serve` runs.
    pub schedule: cron::Schedule,
    /// Keys deleted per statement, so that a large sweep never holds writers back for long.
    pub batch_size: u32,
}

/// Job history: how long finished jobs and their events are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct JobsConfig {
    /// How long a finished job (and its event log) is kept after it finished; `never` keeps
    /// it. The GC sweep removes older ones, except a task instance's newest generation while
    /// its `tether.job.<name>` task-state key is there.
    pub retention: Retention,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            retention: Retention::For(std::time::Duration::from_secs(30 * 24 * 3600)),
        }
    }
}

/// What `ensure` does when a job is running and the spec it is asked for differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnSpecChange {
    /// Reattach to the running job and log a warning.
    Reattach,
    /// Refuse (exit 4 / a conflict), leaving the running job alone.
    Fail,
}

/// The supervisor: leases, polling concurrency, the resumption policy.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// How long a lease lasts without renewal; a crashed supervisor's jobs are picked up by
    /// another this long after its last heartbeat.
    pub lease: Duration,
    /// Jobs claimed per statement; a claim round repeats it up to the supervisor's fair share.
    pub claim_batch: u32,
    /// Provider calls in flight at once.
    pub max_concurrent_polls: u32,
    /// See [`OnSpecChange`].
    pub on_spec_change: OnSpecChange,
    /// How long shutdown waits for polls in flight.
    pub shutdown_grace: Duration,
    /// How far this process's clock may be from the database's. Leases are judged by the
    /// database's clock whatever the skew (see [`crate::clock::DbClock`]); beyond this bound
    /// the process distrusts its host and neither claims jobs nor submits any, and says so.
    pub max_clock_skew: Duration,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            claim_batch: 1000,
            max_concurrent_polls: 16,
            on_spec_change: OnSpecChange::Reattach,
            shutdown_grace: Duration::from_secs(10),
            max_clock_skew: Duration::from_secs(10),
        }
    }
}

/// The HTTP API of `tether serve`.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Whether `tether serve` serves the API.
    pub enabled: bool,
    /// Address to listen on.
    pub listen: std::net::SocketAddr,
    /// SHA-256 (hex) of each admin token; the tokens themselves are never stored.
    pub admin_token_sha256: Vec<String>,
    /// The keys task tokens are signed with (HS256), by key id; the first signs, the others
    /// are accepted until removed (`api.signing_keys` with `api.signing_kid`, or one
    /// `api.signing_key`, whose id is `default`). Empty: a random key per process.
    pub signing_keys: Vec<SigningKey>,
    /// Lifetime of a task token when the request gives none.
    pub task_token_ttl: Duration,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Longest long-poll wait a client may ask for.
    pub max_wait: Duration,
    /// Most long polls (`/v1/jobs/{id}/wait`, `/v1/jobs/wait`) open at once; more are 429.
    pub max_waits: usize,
    /// Most long polls open at once with one token (every admin token counts as one); more
    /// are 429.
    pub max_waits_per_token: usize,
    /// How long a connection may take to send a request's headers, counted from when the
    /// server starts waiting for them: a connection idle between requests (or that never
    /// sends one) is closed after it too.
    pub header_read_timeout: Duration,
    /// How long a request's body may take to arrive in full (then 408).
    pub body_read_timeout: Duration,
    /// Serve HTTPS with this certificate chain and key (PEM files).
    pub tls: Option<TlsFiles>,
}

/// A task-token signing key and its id (`kid`).
#[derive(Debug, Clone)]
pub struct SigningKey {
    /// The key id, carried in the header of the tokens it signs.
    pub kid: String,
    /// The secret.
    pub key: tether_provider::Secret,
}

/// PEM files for HTTPS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: ([127, 0, 0, 1], DEFAULT_API_PORT).into(),
            admin_token_sha256: Vec::new(),
            signing_keys: Vec::new(),
            task_token_ttl: Duration::from_secs(12 * 3600),
            max_body_bytes: 1024 * 1024,
            max_wait: Duration::from_secs(60),
            max_waits: 2048,
            max_waits_per_token: 1024,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(60),
            tls: None,
        }
    }
}

/// One configured provider account: its checked settings, from its crate's factory
/// ([`crate::registry`]).
pub type ProviderConfig = std::sync::Arc<dyn ProviderSettings>;

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
    api: RawApi,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    enabled: Option<bool>,
    listen: Option<String>,
    admin_token_sha256: Option<Vec<String>>,
    signing_key: Option<String>,
    signing_keys: Option<BTreeMap<String, String>>,
    signing_kid: Option<String>,
    task_token_ttl: Option<String>,
    max_body_bytes: Option<usize>,
    max_wait: Option<String>,
    max_waits: Option<usize>,
    max_waits_per_token: Option<usize>,
    header_read_timeout: Option<String>,
    body_read_timeout: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSupervisor {
    lease: Option<String>,
    claim_batch: Option<u32>,
    max_concurrent_polls: Option<u32>,
    on_spec_change: Option<OnSpecChange>,
    shutdown_grace: Option<String>,
    max_clock_skew: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: Option<String>,
    max_connections: Option<u32>,
    connect_timeout: Option<String>,
    idle_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    default_retention: Option<String>,
    max_value_bytes: Option<u64>,
    clear_on_success: Option<bool>,
    max_keys_per_scope: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJobs {
    retention: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGc {
    schedule: Option<String>,
    batch_size: Option<u32>,
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
    /// Builds the typed config, collecting every problem instead of stopping at the first.
    fn build(self) -> Result<Config, Vec<String>> {
        let mut problems = Vec::new();
        let mut check = |field: &str, result: Result<(), String>| {
            if let Err(e) = result {
                problems.push(format!("{field}: {e}"));
            }
        };

        let data_dir = self.data_dir.unwrap_or_else(default_data_dir);
        let mut url = DatabaseUrl::sqlite_file(&data_dir.join("tether.db"));
        if let Some(raw) = &self.database.url {
            check(
                "database.url",
                DatabaseUrl::parse(raw)
                    .map(|u| url = u)
                    .map_err(|e| e.to_string()),
            );
        }
        let mut pool = PoolSettings::default();
        if let Some(n) = self.database.max_connections {
            check(
                "database.max_connections",
                if n == 0 {
                    Err("must be at least 1".into())
                } else {
                    pool.max_connections = n;
                    Ok(())
                },
            );
        }
        if let Some(t) = &self.database.connect_timeout {
            check(
                "database.connect_timeout",
                parse_duration(t).map(|d| pool.acquire_timeout = d),
            );
        }
        if let Some(t) = &self.database.idle_timeout {
            check(
                "database.idle_timeout",
                parse_duration(t).map(|d| pool.idle_timeout = d),
            );
        }

        let mut jobs = JobsConfig::default();
        if let Some(r) = &self.jobs.retention {
            check(
                "jobs.retention",
                Retention::from_str(r)
                    .map(|r| jobs.retention = r)
                    .map_err(|e| e.to_string()),
            );
        }

        let mut state = StateSettings::default();
        if let Some(r) = &self.state.default_retention {
            check(
                "state.default_retention",
                Retention::from_str(r)
                    .map(|r| state.default_retention = r)
                    .map_err(|e| e.to_string()),
            );
        }
        if let Some(n) = self.state.max_value_bytes {
            check(
                "state.max_value_bytes",
                if n == 0 || n > 64 * 1024 * 1024 {
                    Err(format!("{n} is outside 1..=67108864"))
                } else {
                    state.max_value_bytes = n as usize;
                    Ok(())
                },
            );
        }
        if let Some(b) = self.state.clear_on_success {
            state.clear_on_success = b;
        }
        if let Some(n) = self.state.max_keys_per_scope {
            state.max_keys_per_scope = n;
        }

        let schedule_text = self
            .gc
            .schedule
            .unwrap_or_else(|| DEFAULT_GC_SCHEDULE.to_string());
        let mut schedule = None;
        check(
            "gc.schedule",
            parse_cron(&schedule_text).map(|s| schedule = Some(s)),
        );
        let batch_size = self.gc.batch_size.unwrap_or(1000);
        check(
            "gc.batch_size",
            if batch_size == 0 {
                Err("must be at least 1".into())
            } else {
                Ok(())
            },
        );

        let mut supervisor = SupervisorConfig::default();
        if let Some(t) = &self.supervisor.lease {
            check(
                "supervisor.lease",
                parse_duration(t).and_then(|d| {
                    if d < Duration::from_secs(1) {
                        Err(format!("{t:?} is shorter than 1s"))
                    } else {
                        supervisor.lease = d;
                        Ok(())
                    }
                }),
            );
        }
        if let Some(t) = &self.supervisor.shutdown_grace {
            check(
                "supervisor.shutdown_grace",
                parse_duration(t).map(|d| supervisor.shutdown_grace = d),
            );
        }
        if let Some(t) = &self.supervisor.max_clock_skew {
            check(
                "supervisor.max_clock_skew",
                parse_duration(t).map(|d| supervisor.max_clock_skew = d),
            );
        }
        for (field, value, target) in [
            (
                "supervisor.claim_batch",
                self.supervisor.claim_batch,
                &mut supervisor.claim_batch,
            ),
            (
                "supervisor.max_concurrent_polls",
                self.supervisor.max_concurrent_polls,
                &mut supervisor.max_concurrent_polls,
            ),
        ] {
            match value {
                Some(0) => check(field, Err("must be at least 1".into())),
                Some(n) => *target = n,
                None => {}
            }
        }
        if let Some(p) = self.supervisor.on_spec_change {
            supervisor.on_spec_change = p;
        }

        let mut api = ApiConfig::default();
        if let Some(e) = self.api.enabled {
            api.enabled = e;
        }
        if let Some(l) = &self.api.listen {
            check(
                "api.listen",
                l.parse()
                    .map(|a| api.listen = a)
                    .map_err(|_| format!("{l:?} is not an address such as 127.0.0.1:8470")),
            );
        }
        for (i, h) in self.api.admin_token_sha256.iter().flatten().enumerate() {
            let h = h.trim().to_ascii_lowercase();
            if h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()) {
                api.admin_token_sha256.push(h);
            } else {
                check(
                    "api.admin_token_sha256",
                    Err(format!(
                        "entry {i} is not 64 hex digits (use `tether token hash`)"
                    )),
                );
            }
        }
        let single = self
            .api
            .signing_key
            .clone()
            .or_else(|| std::env::var("TETHER_API_SIGNING_KEY").ok())
            .filter(|k| !k.is_empty());
        let ring = self.api.signing_keys.clone().unwrap_or_default();
        let strong = |key: &str| {
            if key.len() < 32 {
                Err(format!(
                    "is {} bytes; use at least 32 random bytes",
                    key.len()
                ))
            } else {
                Ok(())
            }
        };
        if ring.is_empty() {
            if let Some(kid) = &self.api.signing_kid {
                check(
                    "api.signing_kid",
                    Err(format!("names {kid:?}, but api.signing_keys is empty")),
                );
            }
            if let Some(k) = single {
                match strong(&k) {
                    Ok(()) => api.signing_keys.push(SigningKey {
                        kid: "default".into(),
                        key: tether_provider::Secret::new(k),
                    }),
                    Err(e) => check("api.signing_key", Err(e)),
                }
            }
        } else if self.api.signing_key.is_some() {
            check(
                "api.signing_key",
                Err(
                    "set api.signing_keys (with api.signing_kid) or api.signing_key, not both \
                     (during a rotation, put the old key in api.signing_keys as `default`)"
                        .into(),
                ),
            );
        } else {
            let signer = match (&self.api.signing_kid, ring.len()) {
                (Some(kid), _) => Some(kid.clone()),
                (None, 1) => ring.keys().next().cloned(),
                (None, _) => None,
            };
            match &signer {
                None => check(
                    "api.signing_kid",
                    Err(format!(
                        "is required with {} signing keys: name the one that signs ({})",
                        ring.len(),
                        ring.keys().cloned().collect::<Vec<_>>().join(", ")
                    )),
                ),
                Some(kid) if !ring.contains_key(kid) => check(
                    "api.signing_kid",
                    Err(format!(
                        "{kid:?} is not in api.signing_keys ({})",
                        ring.keys().cloned().collect::<Vec<_>>().join(", ")
                    )),
                ),
                Some(_) => {}
            }
            for (kid, key) in &ring {
                let field = format!("api.signing_keys.{kid}");
                if let Err(e) = crate::model::scope::validate_id("key id", kid, "") {
                    check(&field, Err(e.to_string()));
                    continue;
                }
                match strong(key) {
                    Ok(()) => {
                        let entry = SigningKey {
                            kid: kid.clone(),
                            key: tether_provider::Secret::new(key.clone()),
                        };
                        if signer.as_deref() == Some(kid.as_str()) {
                            api.signing_keys.insert(0, entry);
                        } else {
                            api.signing_keys.push(entry);
                        }
                    }
                    Err(e) => check(&field, Err(e)),
                }
            }
        }
        if let Some(t) = &self.api.task_token_ttl {
            check(
                "api.task_token_ttl",
                parse_duration(t).map(|d| api.task_token_ttl = d),
            );
        }
        if let Some(t) = &self.api.max_wait {
            check("api.max_wait", parse_duration(t).map(|d| api.max_wait = d));
        }
        for (field, value, target) in [
            ("api.max_waits", self.api.max_waits, &mut api.max_waits),
            (
                "api.max_waits_per_token",
                self.api.max_waits_per_token,
                &mut api.max_waits_per_token,
            ),
        ] {
            if let Some(n) = value {
                check(
                    field,
                    if n == 0 {
                        Err("must be at least 1".into())
                    } else {
                        *target = n;
                        Ok(())
                    },
                );
            }
        }
        if let Some(t) = &self.api.header_read_timeout {
            check(
                "api.header_read_timeout",
                parse_duration(t)
                    .and_then(positive)
                    .map(|d| api.header_read_timeout = d),
            );
        }
        if let Some(t) = &self.api.body_read_timeout {
            check(
                "api.body_read_timeout",
                parse_duration(t)
                    .and_then(positive)
                    .map(|d| api.body_read_timeout = d),
            );
        }
        if let Some(n) = self.api.max_body_bytes {
            check(
                "api.max_body_bytes",
                if n < 1024 {
                    Err(format!("{n} is below 1024"))
                } else {
                    api.max_body_bytes = n;
                    Ok(())
                },
            );
        }

        match (self.api.tls_cert, self.api.tls_key) {
            (Some(cert), Some(key)) => {
                for (field, path) in [("api.tls_cert", &cert), ("api.tls_key", &key)] {
                    if !path.is_file() {
                        check(
                            field,
                            Err(format!("{} is not a readable file", path.display())),
                        );
                    }
                }
                api.tls = Some(TlsFiles { cert, key });
            }
            (None, None) => {}
            (Some(_), None) => check("api.tls_key", Err("missing: api.tls_cert is set".into())),
            (None, Some(_)) => check("api.tls_cert", Err("missing: api.tls_key is set".into())),
        }

        let providers = build_providers(self.providers, &mut problems);

        match schedule {
            Some(schedule) if problems.is_empty() => Ok(Config {
                database: DatabaseConfig { url, pool },
                state,
                gc: GcConfig {
                    schedule,
                    batch_size,
                },
                jobs,
                supervisor,
                providers,
                api,
            }),
            _ => Err(problems),
        }
    }
}

/// Builds each `[providers.NAME]` table through the registry: the kind is the `kind` field, or
/// the name itself when it names a kind, and that kind's factory checks the rest. A factory
/// may configure a provider from the environment when the file has no table of its name
/// (`DATABRICKS_*`).
fn build_providers(
    mut raw: BTreeMap<String, toml::Table>,
    problems: &mut Vec<String>,
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
    let file: Vec<(String, toml::Table)> = std::mem::take(&mut raw).into_iter().collect();
    for (name, table) in file {
        tables.insert(name, neutral_table(table));
    }
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
    table.into_iter().map(|(k, v)| (k, neutral(v))).collect()
}

fn neutral(value: toml::Value) -> Setting {
    match value {
        toml::Value::String(s) => Setting::String(s),
        toml::Value::Integer(i) => Setting::Integer(i),
        toml::Value::Float(f) => Setting::Float(f),
        toml::Value::Boolean(b) => Setting::Boolean(b),
        toml::Value::Datetime(d) => Setting::Datetime(d.to_string()),
        toml::Value::Array(items) => Setting::List(items.into_iter().map(neutral).collect()),
        toml::Value::Table(t) => Setting::Table(neutral_table(t)),
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

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration such as 10s or 5m ({e})"))
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
