//! A task-state key as stored, and what a write, delete or clear of keys can find.

use super::scope::Scope;

/// A stored key with its value and metadata.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// The value.
    pub value: serde_json::Value,
    /// Increases by one on every write; 1 after the first.
    pub version: i64,
    /// When the key was first written (or rewritten after it expired).
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When the key was last written.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// When the key expires; `None` for never.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What a compare-and-set write or delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasOutcome {
    /// Done; the key's version after a write (0 after a delete).
    Done {
        /// The version now.
        version: i64,
    },
    /// The key did not have the expected version; `found` is what it had (`None`: absent).
    Conflict {
        /// The version found, if the key exists.
        found: Option<i64>,
    },
    /// A delete of a key that does not exist.
    Absent,
    /// A write of a new key into a scope that already holds [`Put::max_keys`] live keys.
    ScopeFull,
}

/// Which keys a clear removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClearTarget {
    /// Every key of one scope.
    Scope(Scope),
    /// Every key of every map index of one task in one run.
    AllMapIndices {
        /// The DAG.
        dag_id: String,
        /// The run.
        run_id: String,
        /// The task.
        task_id: String,
    },
    /// Every task-instance key of one DAG run (the run was deleted).
    Run {
        /// The DAG.
        dag_id: String,
        /// The run.
        run_id: String,
    },
}
