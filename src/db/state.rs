//! The SQL of task state (`task_state`), for SQLite and PostgreSQL alike.
//!
//! It does no validation and knows no defaults: `crate::state::TaskState` does both and is
//! what callers use. Times are passed in so that the caller's clock decides what has expired.
//! [`write_key`] takes the caller's connection, so that a job record and its task-state key change
//! in one transaction (`super::jobs`).
//!
//! Every compare-and-set is one statement (`INSERT .. ON CONFLICT .. DO UPDATE .. WHERE` or
//! `UPDATE .. WHERE version = ..`), so no read-then-write race exists on either backend.

use sqlx::AnyConnection;
use sqlx::Row;

use super::rows::{self, ENTRY_COLUMNS};
use super::{returning, Backend, Db, DbError};
use crate::model::{CasOutcome, ClearTarget, Entry, Millis, Scope, ScopeKind, TaskInstanceId};

/// A write, already validated.
#[derive(Debug, Clone)]
pub struct Put<'a> {
    /// Whose state.
    pub scope: &'a Scope,
    /// The key.
    pub key: &'a str,
    /// The value as compact JSON.
    pub json: &'a str,
    /// Compare-and-set: the version the key must have now; 0 means it must not exist.
    pub if_version: Option<i64>,
    /// The time of the write.
    pub now: Millis,
    /// When the value expires, if ever.
    pub expires_at: Option<Millis>,
    /// How many live keys the scope may hold: a write of a new key into a scope that holds
    /// this many is refused ([`CasOutcome::ScopeFull`]); rewrites of live keys always pass.
    /// `None` for no limit (the engine's own job keys, written inside its transactions).
    pub max_keys: Option<u32>,
}

/// The `task_state` table.
#[derive(Debug, Clone)]
pub struct StateTable {
    db: Db,
}

impl StateTable {
    /// The table in an open (and migrated) database.
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

/// A scope spread over its columns; unused ones hold the sentinels `''` and `-1`.
struct ScopeColumns<'a> {
    kind: &'static str,
    dag_id: &'a str,
    run_id: &'a str,
    task_id: &'a str,
    map_index: i64,
    asset: &'a str,
}

impl<'a> From<&'a Scope> for ScopeColumns<'a> {
    fn from(scope: &'a Scope) -> Self {
        let kind = scope.kind().as_str();
        match scope {
            Scope::TaskInstance(TaskInstanceId {
                dag_id,
                run_id,
                task_id,
                map_index,
            }) => Self {
                kind,
                dag_id,
                run_id,
                task_id,
                map_index: *map_index,
                asset: "",
            },
            Scope::Task { dag_id, task_id } => Self {
                kind,
                dag_id,
                run_id: "",
                task_id,
                map_index: -1,
                asset: "",
            },
            Scope::Asset { asset } => Self {
                kind,
                dag_id: "",
                run_id: "",
                task_id: "",
                map_index: -1,
                asset,
            },
        }
    }
}

/// The scope columns as `$1`..`$6`; queries using it bind [`bind_scope`] first.
const SCOPE_MATCH: &str = "scope_kind = $1 AND dag_id = $2 AND run_id = $3 AND task_id = $4 \
                           AND map_index = $5 AND asset = $6";
/// "Not expired at the time bound to parameter `$8`" (what `get`, `put` and `delete` bind).
const LIVE: &str = "(expires_at IS NULL OR expires_at > $8)";

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

fn bind_scope<'q>(query: AnyQuery<'q>, cols: &ScopeColumns<'q>) -> AnyQuery<'q> {
    query
        .bind(cols.kind)
        .bind(cols.dag_id)
        .bind(cols.run_id)
        .bind(cols.task_id)
        .bind(cols.map_index)
        .bind(cols.asset)
}

impl StateTable {
    /// The version a live key has now, for conflict messages.
    async fn live_version(
        &self,
        scope: &Scope,
        key: &str,
        now: Millis,
    ) -> Result<Option<i64>, DbError> {
        Ok(self.get(scope, key, now).await?.map(|e| e.version))
    }
}

/// Writes a key on `conn` (which may be inside a transaction, so that a job record and its
/// task-state key change together). Returns the new version, or `None` if `if_version` did not
/// match or the scope is full (the caller tells which).
///
/// The quota is counted in the write's own statement: exact on SQLite (one writer at a time);
/// on PostgreSQL, writers of new keys racing into a scope one short of full may each see room,
/// so a scope can end up to their number over (a bound on growth, not an invariant).
pub async fn write_key(conn: &mut AnyConnection, put: &Put<'_>) -> Result<Option<i64>, DbError> {
    let cols = ScopeColumns::from(put.scope);
    let row = match put.if_version {
        // Compare-and-set against an existing, live version: a plain conditional update.
        Some(expected) if expected > 0 => {
            let sql = format!(
                "UPDATE task_state SET value = $9, version = version + 1, updated_at = $8, \
                     expires_at = $10 WHERE {SCOPE_MATCH} AND key = $7 AND {LIVE} \
                     AND version = $11 RETURNING version"
            );
            let query = bind_scope(sqlx::query(&sql), &cols)
                .bind(put.key)
                .bind(put.now.0)
                .bind(put.json)
                .bind(put.expires_at.map(|t| t.0))
                .bind(expected);
            returning(query, &mut *conn).await?
        }
        // Unconditional, or "must not exist": an upsert. An expired row counts as absent;
        // its version carries on so that versions of a key never repeat while it exists.
        // With a quota, the row to insert exists only if the key is live already or the
        // scope has room.
        _ => {
            let room = if put.max_keys.is_some() {
                format!(
                    "WHERE EXISTS (SELECT 1 FROM task_state WHERE {SCOPE_MATCH} AND key = $7 \
                     AND {LIVE}) OR (SELECT COUNT(*) FROM task_state WHERE {SCOPE_MATCH} \
                     AND {LIVE}) < $11"
                )
            } else {
                String::new()
            };
            let must_be_absent = if put.if_version == Some(0) {
                "WHERE task_state.expires_at IS NOT NULL AND task_state.expires_at <= $8"
            } else {
                ""
            };
            let sql = format!(
                "INSERT INTO task_state (scope_kind, dag_id, run_id, task_id, map_index, \
                     asset, key, value, version, created_at, updated_at, expires_at) \
                     SELECT $1, $2, $3, $4, $5, $6, $7, $9, 1, $8, $8, $10 {room} \
                     ON CONFLICT (scope_kind, dag_id, run_id, task_id, map_index, asset, key) \
                     DO UPDATE SET value = excluded.value, version = task_state.version + 1, \
                     updated_at = excluded.updated_at, expires_at = excluded.expires_at, \
                     created_at = CASE WHEN task_state.expires_at IS NOT NULL \
                     AND task_state.expires_at <= $8 THEN excluded.created_at \
                     ELSE task_state.created_at END {must_be_absent} RETURNING version"
            );
            let mut query = bind_scope(sqlx::query(&sql), &cols)
                .bind(put.key)
                .bind(put.now.0)
                .bind(put.json)
                .bind(put.expires_at.map(|t| t.0));
            if let Some(max) = put.max_keys {
                query = query.bind(i64::from(max));
            }
            returning(query, &mut *conn).await?
        }
    };
    row.map(|row| row.try_get("version"))
        .transpose()
        .map_err(DbError::from)
}

impl StateTable {
    /// The live (unexpired at `now`) entry of a key.
    pub async fn get(
        &self,
        scope: &Scope,
        key: &str,
        now: Millis,
    ) -> Result<Option<Entry>, DbError> {
        let cols = ScopeColumns::from(scope);
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM task_state WHERE {SCOPE_MATCH} AND key = $7 AND {LIVE}"
        );
        let row = bind_scope(sqlx::query(&sql), &cols)
            .bind(key)
            .bind(now.0)
            .fetch_optional(&mut *self.db.acquire().await?)
            .await?;
        row.as_ref().map(rows::entry).transpose()
    }

    /// Writes a key, honouring `if_version` and the quota.
    pub async fn put(&self, put: Put<'_>) -> Result<CasOutcome, DbError> {
        let mut conn = self.db.acquire().await?;
        match write_key(&mut conn, &put).await? {
            Some(version) => Ok(CasOutcome::Done { version }),
            None => {
                drop(conn);
                let found = self.live_version(put.scope, put.key, put.now).await?;
                // Refused with the compare-and-set satisfied: by the quota. An unconditional
                // write is refused by nothing else; a "must not exist" one, unless the key
                // exists.
                let cas_holds = match put.if_version {
                    None => true,
                    Some(0) => found.is_none(),
                    Some(_) => false,
                };
                if cas_holds && put.max_keys.is_some() {
                    Ok(CasOutcome::ScopeFull)
                } else {
                    Ok(CasOutcome::Conflict { found })
                }
            }
        }
    }

    /// Deletes a key, honouring `if_version`.
    pub async fn delete(
        &self,
        scope: &Scope,
        key: &str,
        if_version: Option<i64>,
        now: Millis,
    ) -> Result<CasOutcome, DbError> {
        let cols = ScopeColumns::from(scope);
        let version_match = if if_version.is_some() {
            "AND version = $9"
        } else {
            ""
        };
        let sql = format!(
            "DELETE FROM task_state WHERE {SCOPE_MATCH} AND key = $7 AND {LIVE} {version_match} \
             RETURNING version"
        );
        let mut query = bind_scope(sqlx::query(&sql), &cols).bind(key).bind(now.0);
        if let Some(v) = if_version {
            query = query.bind(v);
        }
        let deleted = returning(query, &mut *self.db.acquire().await?).await?;
        match (deleted, if_version) {
            (Some(_), _) => Ok(CasOutcome::Done { version: 0 }),
            (None, None) => Ok(CasOutcome::Absent),
            (None, Some(_)) => Ok(CasOutcome::Conflict {
                found: self.live_version(scope, key, now).await?,
            }),
        }
    }

    /// At most `limit` live entries of a scope, by key, from the first key after `after`.
    pub async fn list(
        &self,
        scope: &Scope,
        now: Millis,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Entry>, DbError> {
        let cols = ScopeColumns::from(scope);
        // Keys are compared as bytes (SQLite's default; `COLLATE "C"` on PostgreSQL), so
        // that a page ends where the next begins whatever the database's locale.
        let collate = match self.db.backend() {
            Backend::Postgres => " COLLATE \"C\"",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM task_state WHERE {SCOPE_MATCH} \
             AND (expires_at IS NULL OR expires_at > $7) AND key{collate} > $8 \
             ORDER BY key{collate} LIMIT $9"
        );
        let rows = bind_scope(sqlx::query(&sql), &cols)
            .bind(now.0)
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&mut *self.db.acquire().await?)
            .await?;
        rows.iter().map(rows::entry).collect()
    }

    /// Deletes every key of the target; returns how many were deleted.
    pub async fn clear(&self, target: &ClearTarget) -> Result<u64, DbError> {
        let result =
            match target {
                ClearTarget::Scope(scope) => {
                    let cols = ScopeColumns::from(scope);
                    let sql = format!("DELETE FROM task_state WHERE {SCOPE_MATCH}");
                    bind_scope(sqlx::query(&sql), &cols)
                        .execute(&mut *self.db.acquire().await?)
                        .await?
                }
                ClearTarget::AllMapIndices {
                    dag_id,
                    run_id,
                    task_id,
                } => sqlx::query(
                    "DELETE FROM task_state WHERE scope_kind = 'task_instance' AND dag_id = $1 \
                     AND run_id = $2 AND task_id = $3",
                )
                .bind(dag_id)
                .bind(run_id)
                .bind(task_id)
                .execute(&mut *self.db.acquire().await?)
                .await?,
                ClearTarget::Run { dag_id, run_id } => sqlx::query(
                    "DELETE FROM task_state WHERE scope_kind = 'task_instance' AND dag_id = $1 \
                     AND run_id = $2",
                )
                .bind(dag_id)
                .bind(run_id)
                .execute(&mut *self.db.acquire().await?)
                .await?,
            };
        Ok(result.rows_affected())
    }

    /// Deletes at most `limit` keys that expired at or before `now`; returns the scope kind
    /// of each one deleted.
    pub async fn delete_expired(&self, now: Millis, limit: u32) -> Result<Vec<ScopeKind>, DbError> {
        // On PostgreSQL, rows another sweeper is deleting are skipped instead of waited for.
        let skip_locked = match self.db.backend() {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "DELETE FROM task_state WHERE id IN (SELECT id FROM task_state \
             WHERE expires_at IS NOT NULL AND expires_at <= $1 ORDER BY expires_at LIMIT $2 \
             {skip_locked}) RETURNING scope_kind"
        );
        let rows = sqlx::query(&sql)
            .bind(now.0)
            .bind(i64::from(limit))
            .fetch_all(&mut *self.db.acquire().await?)
            .await?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("scope_kind")?;
                ScopeKind::parse(&kind).ok_or_else(|| {
                    rows::decode_error(format!("unknown scope_kind {kind:?} in task_state"))
                })
            })
            .collect()
    }
}
