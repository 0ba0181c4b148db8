//! Task state: durable key/value state per task instance, per task and per asset.
//!
//! This is the model of Airflow's task state store (AIP-103) with what it lacks: versions with
//! compare-and-set, size limits on every path, expiry with automatic garbage collection.
//!
//! - The scopes and Airflow's identifier rules are `crate::model::scope` (re-exported here).
//! - [`value`]: key and value rules (size, JSON without null).
//! - [`retention`]: how long a write lives.
//! - The SQL is `crate::db::state`.
//! - [`gc`]: removing expired keys in bounded batches (scheduled by [`crate::maintenance`]).
//!
//! [`TaskState`] is the entry point: it validates every input, applies defaults, and turns
//! storage outcomes into [`StateError`]s.

pub mod gc;
pub mod retention;
pub mod value;

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use self::gc::GcReport;
pub use self::retention::Retention;
pub use self::value::{ValueError, DEFAULT_MAX_VALUE_BYTES, MAX_KEY_BYTES};
pub use crate::model::scope::{self, Scope, ScopeKind, TaskInstanceId, ValidationError};
pub use crate::model::{CasOutcome, ClearTarget, Entry};

use crate::clock::Clock;
use crate::db::state::{Put, StateTable};
use crate::db::{Db, DbError};
use crate::model::Millis;

/// Why a task-state operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// An identifier or key breaks a rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The value cannot be stored.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// Compare-and-set lost: the key's version is not the one the writer expected.
    #[error(
        "version conflict on key {key:?} in {scope}: expected {}, found {}",
        describe_version(Some(*expected)),
        describe_version(*found)
    )]
    Conflict {
        /// The scope, as printed.
        scope: String,
        /// The key.
        key: String,
        /// The version the writer expected (0: absent).
        expected: i64,
        /// The version the key has (`None`: absent).
        found: Option<i64>,
    },
    /// A new key was refused: the scope holds as many live keys as
    /// [`StateSettings::max_keys_per_scope`] allows.
    #[error(
        "{scope} holds {limit} keys, the most a scope may hold (state.max_keys_per_scope); \
         delete keys, or let them expire, before writing new ones"
    )]
    ScopeFull {
        /// The scope, as printed.
        scope: String,
        /// The limit.
        limit: u32,
    },
    /// The key does not exist (or has expired).
    #[error("key {key:?} not found in {scope}")]
    NotFound {
        /// The scope, as printed.
        scope: String,
        /// The key.
        key: String,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

fn describe_version(v: Option<i64>) -> String {
    match v {
        None | Some(0) => "absent".to_string(),
        Some(v) => format!("version {v}"),
    }
}

/// How task state behaves; from the `[state]` section of the config.
#[derive(Debug, Clone)]
pub struct StateSettings {
    /// Retention of task-instance keys written without one. Task and asset keys never expire
    /// unless a write says so.
    pub default_retention: Retention,
    /// Size limit of one value, in bytes of compact JSON.
    pub max_value_bytes: usize,
    /// Whether a task instance's state is removed when it succeeds.
    pub clear_on_success: bool,
    /// How many live keys one scope may hold (0: no limit). The engine's own job keys
    /// (`tether.job.*`) are exempt.
    pub max_keys_per_scope: u32,
}

/// The default of [`StateSettings::max_keys_per_scope`].
pub const DEFAULT_MAX_KEYS_PER_SCOPE: u32 = 1000;

/// The largest page of a key list.
pub const MAX_PAGE: u32 = 1000;

/// A page of a list, and where the next begins.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items, in order.
    pub items: Vec<T>,
    /// Pass as `after` to read the next page; `None` on the last.
    pub next_after: Option<String>,
}

impl Default for StateSettings {
    fn default() -> Self {
        Self {
            default_retention: Retention::For(std::time::Duration::from_secs(30 * 24 * 3600)),
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            clear_on_success: false,
            max_keys_per_scope: DEFAULT_MAX_KEYS_PER_SCOPE,
        }
    }
}

/// Options of a write.
#[derive(Debug, Clone, Copy, Default)]
pub struct SetOptions {
    /// Compare-and-set: the version the key must have; 0 means it must not exist.
    pub if_version: Option<i64>,
    /// How long the value lives; `None` for the scope's default.
    pub retention: Option<Retention>,
}

/// The result of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Written {
    /// The key's version after the write.
    pub version: i64,
    /// When the value expires, if ever.
    pub expires_at: Option<DateTime<Utc>>,
}

/// The task-state store: validated access to the `task_state` table.
#[derive(Clone)]
pub struct TaskState {
    storage: StateTable,
    clock: Arc<dyn Clock>,
    settings: StateSettings,
}

impl fmt::Debug for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskState")
            .field("storage", &self.storage)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl TaskState {
    /// A store on `db`, reading time from `clock`.
    pub fn new(db: Db, clock: Arc<dyn Clock>, settings: StateSettings) -> Self {
        Self {
            storage: StateTable::new(db),
            clock,
            settings,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &StateSettings {
        &self.settings
    }

    /// The current time on the store's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The live value of a key, or `None` if it is absent or expired.
    pub async fn get(&self, scope: &Scope, key: &str) -> Result<Option<Entry>, StateError> {
        let started = std::time::Instant::now();
        let result = async {
            scope.validate()?;
            value::validate_key(key)?;
            Ok(self
                .storage
                .get(scope, key, Millis::from(self.now()))
                .await?)
        }
        .await;
        crate::metrics::observe_state("get", started, &result);
        result
    }

    /// Writes a key. With `if_version`, fails with [`StateError::Conflict`] unless the key has
    /// that version now (0: unless it is absent).
    pub async fn set(
        &self,
        scope: &Scope,
        key: &str,
        value: Value,
        options: SetOptions,
    ) -> Result<Written, StateError> {
        let started = std::time::Instant::now();
        let result = async {
            scope.validate()?;
            value::validate_key(key)?;
            validate_if_version(options.if_version)?;
            let checked = value::check_value(value, self.settings.max_value_bytes)?;
            let now = self.now();
            let retention = options
                .retention
                .unwrap_or_else(|| self.default_retention(scope.kind()));
            let expires_at = retention.expires_at(now);
            let outcome = self
                .storage
                .put(Put {
                    scope,
                    key,
                    json: &checked.json,
                    if_version: options.if_version,
                    now: Millis::from(now),
                    expires_at: expires_at.map(Millis::from),
                    max_keys: Some(self.settings.max_keys_per_scope).filter(|n| *n > 0),
                })
                .await?;
            match outcome {
                CasOutcome::Done { version } => Ok(Written {
                    version,
                    expires_at,
                }),
                CasOutcome::Conflict { found } => Err(StateError::Conflict {
                    scope: scope.to_string(),
                    key: key.to_string(),
                    expected: options.if_version.unwrap_or_default(),
                    found,
                }),
                CasOutcome::ScopeFull => Err(StateError::ScopeFull {
                    scope: scope.to_string(),
                    limit: self.settings.max_keys_per_scope,
                }),
                CasOutcome::Absent => unreachable!("a write never reports Absent"),
            }
        }
        .await;
        crate::metrics::observe_state("set", started, &result);
        result
    }

    /// Deletes a key; with `if_version`, only if it has that version. Fails with
    /// [`StateError::NotFound`] if it does not exist.
    pub async fn delete(
        &self,
        scope: &Scope,
        key: &str,
        if_version: Option<i64>,
    ) -> Result<(), StateError> {
        let started = std::time::Instant::now();
        let result = async {
            scope.validate()?;
            value::validate_key(key)?;
            if let Some(v) = if_version.filter(|v| *v < 1) {
                return Err(ValidationError::new(
                    "if_version",
                    format!("{v} cannot be deleted: a delete expects a version of 1 or more"),
                )
                .into());
            }
            let now = Millis::from(self.now());
            match self.storage.delete(scope, key, if_version, now).await? {
                CasOutcome::Done { .. } => Ok(()),
                CasOutcome::Absent | CasOutcome::Conflict { found: None } => {
                    Err(StateError::NotFound {
                        scope: scope.to_string(),
                        key: key.to_string(),
                    })
                }
                CasOutcome::Conflict { found } => Err(StateError::Conflict {
                    scope: scope.to_string(),
                    key: key.to_string(),
                    expected: if_version.unwrap_or_default(),
                    found,
                }),
                CasOutcome::ScopeFull => unreachable!("a delete never fills a scope"),
            }
        }
        .await;
        crate::metrics::observe_state("delete", started, &result);
        result
    }

    /// At most `limit` (1 to [`MAX_PAGE`]) live keys of a scope, by key (compared as
    /// bytes), from the first after `after`.
    pub async fn list_page(
        &self,
        scope: &Scope,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<Entry>, StateError> {
        let started = std::time::Instant::now();
        let result = async {
            scope.validate()?;
            if let Some(after) = after {
                value::validate_key(after).map_err(|e| e.renamed("after"))?;
            }
            if !(1..=MAX_PAGE).contains(&limit) {
                return Err(ValidationError::new(
                    "limit",
                    format!("{limit} is outside 1..={MAX_PAGE}"),
                )
                .into());
            }
            let now = Millis::from(self.now());
            let mut items = self.storage.list(scope, now, after, limit + 1).await?;
            let next_after = if items.len() > limit as usize {
                items.truncate(limit as usize);
                items.last().map(|e| e.key.clone())
            } else {
                None
            };
            Ok(Page { items, next_after })
        }
        .await;
        crate::metrics::observe_state("list", started, &result);
        result
    }

    /// Every live key of a scope, by key, read a page at a time (for the CLI).
    pub async fn list(&self, scope: &Scope) -> Result<Vec<Entry>, StateError> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = self.list_page(scope, after.as_deref(), MAX_PAGE).await?;
            all.extend(page.items);
            match page.next_after {
                Some(next) => after = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// Removes every key of `target`; returns how many were removed.
    pub async fn clear(&self, target: &ClearTarget) -> Result<u64, StateError> {
        let started = std::time::Instant::now();
        let result = async {
            match target {
                ClearTarget::Scope(scope) => scope.validate()?,
                ClearTarget::AllMapIndices {
                    dag_id,
                    run_id,
                    task_id,
                } => TaskInstanceId::new(dag_id, run_id, task_id, -1).validate()?,
                ClearTarget::Run { dag_id, run_id } => {
                    TaskInstanceId::new(dag_id, run_id, "t", -1).validate()?
                }
            }
            Ok(self.storage.clear(target).await?)
        }
        .await;
        crate::metrics::observe_state("clear", started, &result);
        result
    }

    /// Removes all task-instance state of a DAG run, as Airflow's run deletion does.
    pub async fn forget_run(&self, dag_id: &str, run_id: &str) -> Result<u64, StateError> {
        self.clear(&ClearTarget::Run {
            dag_id: dag_id.to_string(),
            run_id: run_id.to_string(),
        })
        .await
    }

    /// Called when a task instance succeeds: removes its state if `clear_on_success` is set.
    /// Returns how many keys were removed.
    pub async fn task_instance_succeeded(&self, ti: &TaskInstanceId) -> Result<u64, StateError> {
        if !self.settings.clear_on_success {
            ti.validate()?;
            return Ok(0);
        }
        self.clear(&ClearTarget::Scope(Scope::TaskInstance(ti.clone())))
            .await
    }

    /// Runs one garbage-collection sweep: removes every key expired by now, `batch_size` at a
    /// time.
    pub async fn sweep(&self, batch_size: u32) -> Result<GcReport, StateError> {
        Ok(gc::sweep(&self.storage, self.now(), batch_size).await?)
    }

    fn default_retention(&self, kind: ScopeKind) -> Retention {
        match kind {
            ScopeKind::TaskInstance => self.settings.default_retention,
            ScopeKind::Task | ScopeKind::Asset => Retention::Never,
        }
    }
}

fn validate_if_version(if_version: Option<i64>) -> Result<(), ValidationError> {
    match if_version {
        Some(v) if v < 0 => Err(ValidationError::new(
            "if_version",
            format!("{v} is negative (0 means the key must not exist)"),
        )),
        _ => Ok(()),
    }
}
