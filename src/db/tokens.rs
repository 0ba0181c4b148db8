//! The registry of signed task tokens (`api_tokens`): id, scope, key id, expiry, revocation;
//! never the token itself. Signing and checking tokens belong to `crate::api`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row as _;
use utoipa::ToSchema;

use super::{Db, DbError};
use crate::model::from_millis;

/// A token just signed, as the registry records it (times in ms since the epoch).
#[derive(Debug, Clone, Copy)]
pub struct NewToken<'a> {
    /// Its id (`jti`).
    pub id: &'a str,
    /// The DAG.
    pub dag_id: &'a str,
    /// The run, if bound to one.
    pub run_id: Option<&'a str>,
    /// The task, if bound to one.
    pub task_id: Option<&'a str>,
    /// The map index, if bound to one.
    pub map_index: Option<i64>,
    /// Assets it may use.
    pub assets: &'a [String],
    /// The provider accounts it may ensure jobs on (none: every one).
    pub providers: Option<&'a [String]>,
    /// The id of the key that signed it.
    pub kid: &'a str,
    /// Who asked for it.
    pub issued_by: &'a str,
    /// When it was signed.
    pub issued_at: i64,
    /// When it expires.
    pub expires_at: i64,
}

/// A task token as the registry keeps it: no secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenInfo {
    /// Its id (`jti`).
    pub id: String,
    /// The DAG.
    pub dag_id: String,
    /// The run, if bound to one.
    pub run_id: Option<String>,
    /// The task, if bound to one.
    pub task_id: Option<String>,
    /// The map index, if bound to one.
    pub map_index: Option<i64>,
    /// Assets it may use.
    pub assets: Vec<String>,
    /// The provider accounts it may ensure jobs on (none: every one).
    pub providers: Option<Vec<String>>,
    /// The id of the key that signed it.
    pub kid: String,
    /// Who asked for it (`api:admin`, `cli`).
    pub issued_by: String,
    /// When it was signed.
    pub issued_at: DateTime<Utc>,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The registry of signed task tokens.
#[derive(Debug, Clone)]
pub struct TokenRegistry {
    db: Db,
}

impl TokenRegistry {
    /// The registry in `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Records a token just signed.
    pub async fn record(&self, token: &NewToken<'_>) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO api_tokens (id, dag_id, run_id, task_id, map_index, assets, kid, \
             issued_by, issued_at, expires_at, providers) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(token.id)
        .bind(token.dag_id)
        .bind(token.run_id)
        .bind(token.task_id)
        .bind(token.map_index)
        .bind(serde_json::to_string(token.assets).expect("strings serialise"))
        .bind(token.kid)
        .bind(token.issued_by)
        .bind(token.issued_at)
        .bind(token.expires_at)
        .bind(
            token
                .providers
                .map(|p| serde_json::to_string(p).expect("strings serialise")),
        )
        .execute(&mut *self.db.acquire().await?)
        .await?;
        Ok(())
    }

    /// Whether the token with this id was revoked.
    pub async fn is_revoked(&self, id: &str) -> Result<bool, DbError> {
        let revoked: Option<Option<i64>> =
            sqlx::query_scalar("SELECT revoked_at FROM api_tokens WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *self.db.acquire().await?)
                .await?;
        Ok(matches!(revoked, Some(Some(_))))
    }

    /// Revokes a token (again: no change); `None` if there is no such token.
    pub async fn revoke(&self, id: &str, now: i64) -> Result<Option<TokenInfo>, DbError> {
        sqlx::query("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&mut *self.db.acquire().await?)
            .await?;
        let row = sqlx::query("SELECT * FROM api_tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.db.acquire().await?)
            .await?;
        row.as_ref().map(info).transpose()
    }

    /// The tokens neither expired nor revoked at `now`, newest first.
    pub async fn live(&self, now: i64) -> Result<Vec<TokenInfo>, DbError> {
        self.live_after(now, None, i64::MAX).await
    }

    /// At most `limit` of the tokens neither expired nor revoked at `now`, newest first, from
    /// the first after `after` (a token's place in that order: its `issued_at` in ms and id).
    pub async fn live_after(
        &self,
        now: i64,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<TokenInfo>, DbError> {
        let (issued_at, id) = after.unwrap_or((i64::MAX, ""));
        let rows = sqlx::query(
            "SELECT * FROM api_tokens WHERE revoked_at IS NULL AND expires_at > $1 \
             AND (issued_at < $2 OR (issued_at = $2 AND id > $3)) \
             ORDER BY issued_at DESC, id LIMIT $4",
        )
        .bind(now)
        .bind(issued_at)
        .bind(id)
        .bind(limit)
        .fetch_all(&mut *self.db.acquire().await?)
        .await?;
        rows.iter().map(info).collect()
    }
}

fn info(row: &sqlx::any::AnyRow) -> Result<TokenInfo, DbError> {
    let assets: String = row.try_get("assets")?;
    Ok(TokenInfo {
        id: row.try_get("id")?,
        dag_id: row.try_get("dag_id")?,
        run_id: row.try_get("run_id")?,
        task_id: row.try_get("task_id")?,
        map_index: row.try_get("map_index")?,
        assets: serde_json::from_str(&assets).unwrap_or_default(),
        providers: row
            .try_get::<Option<String>, _>("providers")?
            .and_then(|p| serde_json::from_str(&p).ok()),
        kid: row.try_get("kid")?,
        issued_by: row.try_get("issued_by")?,
        issued_at: from_millis(row.try_get("issued_at")?),
        expires_at: from_millis(row.try_get("expires_at")?),
        revoked_at: row
            .try_get::<Option<i64>, _>("revoked_at")?
            .map(from_millis),
    })
}
