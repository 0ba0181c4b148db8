//! Scopes: whose state a key belongs to, and the identifier rules they must follow.
//!
//! Three scopes, as in Airflow's task state store plus one it lacks:
//! - [`Scope::TaskInstance`]: one task instance (dag, run, task, map index), shared by all of
//!   its tries. The try number is never part of a scope: that is what lets a retry find what
//!   an earlier try recorded.
//! - [`Scope::Task`]: one task across all DAG runs, for incremental work without an asset.
//! - [`Scope::Asset`]: one asset, by name or URI (watermarks).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest dag, task and run id Airflow accepts (its `ID_LEN`).
pub const MAX_ID_LEN: usize = 250;
/// Longest asset name or URI Airflow accepts.
pub const MAX_ASSET_LEN: usize = 1500;

/// An input that breaks a rule; names the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct ValidationError {
    /// The field, as the user spelled it (`dag_id`, `key`, ...).
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl ValidationError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }

    /// The same rule broken by another field (a cursor checked as a key, say).
    pub(crate) fn renamed(self, field: &'static str) -> Self {
        Self { field, ..self }
    }
}

/// One task instance: the unit whose state survives its retries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TaskInstanceId {
    /// The DAG's id.
    pub dag_id: String,
    /// The DAG run's id.
    pub run_id: String,
    /// The task's id (with its task group prefix, if any).
    pub task_id: String,
    /// The map index; -1 for a task that is not mapped.
    #[serde(default = "unmapped")]
    pub map_index: i64,
}

fn unmapped() -> i64 {
    -1
}

impl TaskInstanceId {
    /// A task instance id (not yet validated: see [`TaskInstanceId::validate`]).
    pub fn new(
        dag_id: impl Into<String>,
        run_id: impl Into<String>,
        task_id: impl Into<String>,
        map_index: i64,
    ) -> Self {
        Self {
            dag_id: dag_id.into(),
            run_id: run_id.into(),
            task_id: task_id.into(),
            map_index,
        }
    }

    /// Checks every field against Airflow's rules.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_id("dag_id", &self.dag_id, "")?;
        validate_id("run_id", &self.run_id, ":+")?;
        validate_id("task_id", &self.task_id, "")?;
        validate_map_index(self.map_index)
    }
}

impl fmt::Display for TaskInstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.dag_id, self.run_id, self.task_id)?;
        if self.map_index >= 0 {
            write!(f, "[{}]", self.map_index)?;
        }
        Ok(())
    }
}

/// Whose state a key belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum Scope {
    /// One task instance, across its tries.
    TaskInstance(TaskInstanceId),
    /// One task across all runs of its DAG.
    Task {
        /// The DAG's id.
        dag_id: String,
        /// The task's id.
        task_id: String,
    },
    /// One asset, by name or URI.
    Asset {
        /// The asset's name or URI.
        asset: String,
    },
}

/// The three kinds of scope, as stored in the `scope_kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeKind {
    /// [`Scope::TaskInstance`].
    TaskInstance,
    /// [`Scope::Task`].
    Task,
    /// [`Scope::Asset`].
    Asset,
}

impl ScopeKind {
    /// The name stored in the database and printed to users.
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeKind::TaskInstance => "task_instance",
            ScopeKind::Task => "task",
            ScopeKind::Asset => "asset",
        }
    }

    /// The inverse of [`ScopeKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "task_instance" => Some(ScopeKind::TaskInstance),
            "task" => Some(ScopeKind::Task),
            "asset" => Some(ScopeKind::Asset),
            _ => None,
        }
    }
}

impl Scope {
    /// The scope of one task across runs.
    pub fn task(dag_id: impl Into<String>, task_id: impl Into<String>) -> Self {
        Scope::Task {
            dag_id: dag_id.into(),
            task_id: task_id.into(),
        }
    }

    /// The scope of one asset.
    pub fn asset(asset: impl Into<String>) -> Self {
        Scope::Asset {
            asset: asset.into(),
        }
    }

    /// Which kind of scope this is.
    pub fn kind(&self) -> ScopeKind {
        match self {
            Scope::TaskInstance(_) => ScopeKind::TaskInstance,
            Scope::Task { .. } => ScopeKind::Task,
            Scope::Asset { .. } => ScopeKind::Asset,
        }
    }

    /// Checks every identifier in the scope.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            Scope::TaskInstance(ti) => ti.validate(),
            Scope::Task { dag_id, task_id } => {
                validate_id("dag_id", dag_id, "")?;
                validate_id("task_id", task_id, "")
            }
            Scope::Asset { asset } => validate_asset(asset),
        }
    }
}

impl From<TaskInstanceId> for Scope {
    fn from(ti: TaskInstanceId) -> Self {
        Scope::TaskInstance(ti)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::TaskInstance(ti) => write!(f, "task instance {ti}"),
            Scope::Task { dag_id, task_id } => write!(f, "task {dag_id}/{task_id}"),
            Scope::Asset { asset } => write!(f, "asset {asset}"),
        }
    }
}

/// Airflow's id rule: letters, digits, `_`, `-`, `.` (and `extra`), at most [`MAX_ID_LEN`].
pub(crate) fn validate_id(
    field: &'static str,
    value: &str,
    extra: &str,
) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.len() > MAX_ID_LEN {
        return Err(ValidationError::new(
            field,
            format!("is {} bytes; the limit is {MAX_ID_LEN}", value.len()),
        ));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_-.".contains(*c) || extra.contains(*c)))
    {
        let allowed = if extra.is_empty() {
            "letters, digits, '_', '-' and '.'".to_string()
        } else {
            let extra: Vec<String> = extra.chars().map(|c| format!("'{c}'")).collect();
            format!("letters, digits, '_', '-', '.', {}", extra.join(", "))
        };
        return Err(ValidationError::new(
            field,
            format!("{value:?} contains {bad:?}; only {allowed} are allowed"),
        ));
    }
    Ok(())
}

fn validate_map_index(map_index: i64) -> Result<(), ValidationError> {
    if map_index < -1 {
        return Err(ValidationError::new(
            "map_index",
            format!("{map_index} is below -1 (-1 means the task is not mapped)"),
        ));
    }
    Ok(())
}

fn validate_asset(asset: &str) -> Result<(), ValidationError> {
    if asset.trim().is_empty() {
        return Err(ValidationError::new("asset", "must not be empty"));
    }
    if asset.len() > MAX_ASSET_LEN {
        return Err(ValidationError::new(
            "asset",
            format!("is {} bytes; the limit is {MAX_ASSET_LEN}", asset.len()),
        ));
    }
    if asset.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "asset",
            "must not contain control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn airflow_ids() {
        let ok = TaskInstanceId::new(
            "etl.daily",
            "scheduled__2026-11-24T00:00:00+00:00",
            "group.load-1",
            3,
        );
        assert!(ok.validate().is_ok());
        let bad = TaskInstanceId::new("etl daily", "r", "t", -1);
        let err = bad.validate().unwrap_err();
        assert_eq!(err.field, "dag_id");
        assert!(err.to_string().contains("' '"), "{err}");
        let colon_in_task = TaskInstanceId::new("d", "r", "a:b", -1);
        assert_eq!(colon_in_task.validate().unwrap_err().field, "task_id");
        let bad_map = TaskInstanceId::new("d", "r", "t", -2);
        assert_eq!(bad_map.validate().unwrap_err().field, "map_index");
        let long = TaskInstanceId::new("d".repeat(251), "r", "t", -1);
        assert!(long.validate().unwrap_err().reason.contains("251"));
    }

    #[test]
    fn assets() {
        assert!(Scope::asset("s3://bucket/table").validate().is_ok());
        assert_eq!(Scope::asset(" ").validate().unwrap_err().field, "asset");
        assert!(Scope::asset("a\nb").validate().is_err());
    }
}
