//! Task tokens: signing them (`POST /v1/tokens`, `tether token issue`), the registry of those
//! signed (`api_tokens`: id, scope, key id, expiry; never the token), listing the live ones
//! (`GET /v1/tokens`, `tether token list`) and revoking one (`DELETE /v1/tokens/{id}`,
//! `tether token revoke`). A revoked token is refused by every supervisor sharing the
//! database from the next request on: [`super::auth`] looks its id up on each request.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use utoipa::{IntoParams, ToSchema};

use super::auth::{Principal, TaskClaims};
use super::error::{ApiError, ErrorBody};
use super::extract::{Json, Path, Query};
use super::ApiState;
use crate::clock::from_millis;
use crate::db::{Db, DbError};
use crate::state::TaskInstanceId;

/// A request for a task token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The DAG the token is bound to.
    pub dag_id: String,
    /// Bind to one run.
    pub run_id: Option<String>,
    /// Bind to one task.
    pub task_id: Option<String>,
    /// Bind to one map index.
    pub map_index: Option<i64>,
    /// Assets whose state the token may use.
    #[serde(default)]
    pub assets: Vec<String>,
    /// The provider accounts (`[providers.NAME]`) it may ensure jobs on (default: every one).
    pub providers: Option<Vec<String>>,
    /// Lifetime in seconds (default `api.task_token_ttl`, at most 7 days).
    pub ttl_seconds: Option<u64>,
}

/// A signed task token.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// The token's id (to list and revoke it).
    pub id: String,
    /// The bearer token.
    pub token: String,
    /// What it may touch.
    pub claims: TaskClaims,
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
    pub async fn record(
        &self,
        claims: &TaskClaims,
        kid: &str,
        issued_by: &str,
        now: i64,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO api_tokens (id, dag_id, run_id, task_id, map_index, assets, kid, \
             issued_by, issued_at, expires_at, providers) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&claims.jti)
        .bind(&claims.dag_id)
        .bind(claims.run_id.as_deref())
        .bind(claims.task_id.as_deref())
        .bind(claims.map_index)
        .bind(serde_json::to_string(&claims.assets).expect("strings serialise"))
        .bind(kid)
        .bind(issued_by)
        .bind(now)
        .bind(i64::try_from(claims.exp).unwrap_or(i64::MAX / 1000) * 1000)
        .bind(
            claims
                .providers
                .as_ref()
                .map(|p| serde_json::to_string(p).expect("strings serialise")),
        )
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Whether the token with this id was revoked.
    pub async fn is_revoked(&self, id: &str) -> Result<bool, DbError> {
        let revoked: Option<Option<i64>> =
            sqlx::query_scalar("SELECT revoked_at FROM api_tokens WHERE id = $1")
                .bind(id)
                .fetch_optional(self.db.pool())
                .await?;
        Ok(matches!(revoked, Some(Some(_))))
    }

    /// Revokes a token (again: no change); `None` if there is no such token.
    pub async fn revoke(&self, id: &str, now: i64) -> Result<Option<TokenInfo>, DbError> {
        sqlx::query("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(self.db.pool())
            .await?;
        let row = sqlx::query("SELECT * FROM api_tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(info).transpose()
    }

    /// The tokens neither expired nor revoked at `now`, newest first.
    pub async fn live(&self, now: i64) -> Result<Vec<TokenInfo>, DbError> {
        self.live_after(now, None, i64::MAX).await
    }

    /// At most `limit` of the tokens neither expired nor revoked at `now`, newest first, from
    /// the first after `after` (a token's place in that order).
    pub async fn live_after(
        &self,
        now: i64,
        after: Option<&TokenCursor>,
        limit: i64,
    ) -> Result<Vec<TokenInfo>, DbError> {
        let (issued_at, id) = after.map_or((i64::MAX, ""), |c| (c.issued_at, c.id.as_str()));
        let rows = sqlx::query(
            "SELECT * FROM api_tokens WHERE revoked_at IS NULL AND expires_at > $1 \
             AND (issued_at < $2 OR (issued_at = $2 AND id > $3)) \
             ORDER BY issued_at DESC, id LIMIT $4",
        )
        .bind(now)
        .bind(issued_at)
        .bind(id)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(info).collect()
    }
}

/// A token's place in the list, newest first: `<issued_at ms>.<id>` in a query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenCursor {
    issued_at: i64,
    id: String,
}

impl TokenCursor {
    fn of(t: &TokenInfo) -> Self {
        Self {
            issued_at: t.issued_at.timestamp_millis(),
            id: t.id.clone(),
        }
    }

    fn parse(text: &str) -> Result<Self, String> {
        let (at, id) = text
            .split_once('.')
            .ok_or_else(|| format!("after {text:?} is not the next_after of a token list"))?;
        let issued_at = at
            .parse()
            .map_err(|_| format!("after {text:?} is not the next_after of a token list"))?;
        if id.contains('\0') {
            return Err("after contains a NUL byte".into());
        }
        Ok(Self {
            issued_at,
            id: id.to_string(),
        })
    }
}

impl std::fmt::Display for TokenCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.issued_at, self.id)
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

/// Checks a token request and turns it into claims, with a new id.
/// The claims `req` asks for, checked, expiring `default_ttl` seconds (or the request's own
/// ttl) after `now` (seconds since the epoch).
pub fn claims_for(req: TokenRequest, default_ttl: u64, now: i64) -> Result<TaskClaims, ApiError> {
    let check = |field: &'static str, value: &str, extra: &str| {
        crate::state::scope::validate_id(field, value, extra)
            .map_err(|e| ApiError::bad_request(e.to_string()))
    };
    check("dag_id", &req.dag_id, "")?;
    if let Some(r) = &req.run_id {
        check("run_id", r, ":+")?;
    }
    if let Some(t) = &req.task_id {
        check("task_id", t, "")?;
    }
    if let Some(m) = req.map_index {
        TaskInstanceId::new("d", "r", "t", m)
            .validate()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    for a in &req.assets {
        crate::state::Scope::asset(a.clone())
            .validate()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    let ttl = req.ttl_seconds.unwrap_or(default_ttl);
    if ttl == 0 || ttl > 7 * 86400 {
        return Err(ApiError::bad_request(format!(
            "ttl_seconds {ttl} is outside 1..=604800"
        )));
    }
    let exp = now.max(0) as u64 + ttl;
    Ok(TaskClaims {
        jti: hex::encode(rand::random::<[u8; 12]>()),
        dag_id: req.dag_id,
        run_id: req.run_id,
        task_id: req.task_id,
        map_index: req.map_index,
        assets: req.assets,
        providers: req.providers,
        nbf: None,
        exp,
    })
}

/// The provider accounts a token is bound to must be configured ones, and at least one.
pub fn check_providers(
    claims: &TaskClaims,
    config: &crate::config::Config,
) -> Result<(), ApiError> {
    let Some(providers) = &claims.providers else {
        return Ok(());
    };
    if providers.is_empty() {
        return Err(ApiError::bad_request(
            "providers names no provider account: name at least one, or leave it out for every one",
        ));
    }
    for p in providers {
        if !config.providers.contains_key(p) {
            return Err(ApiError::bad_request(format!(
                "providers: {p:?} is not a configured provider account (configured: {:?})",
                config.providers.keys().collect::<Vec<_>>()
            )));
        }
    }
    Ok(())
}

/// Sign a task token (admin only); it is recorded, to be listed and revoked.
#[utoipa::path(post, path = "/v1/tokens", tag = "ops", request_body = TokenRequest,
    responses((status = 200, body = TokenResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn issue_token(
    State(s): State<ApiState>,
    who: Principal,
    Json(req): Json<TokenRequest>,
) -> Result<axum::Json<TokenResponse>, ApiError> {
    who.require_admin("signing task tokens")?;
    let now = s.app.clock.now();
    let claims = claims_for(
        req,
        s.app.config.api.task_token_ttl.as_secs(),
        now.timestamp(),
    )?;
    check_providers(&claims, &s.app.config)?;
    let (token, kid) = s.keys.sign(&claims);
    s.tokens
        .record(&claims, &kid, "api:admin", now.timestamp_millis())
        .await?;
    Ok(axum::Json(TokenResponse {
        id: claims.jti.clone(),
        token,
        claims,
    }))
}

/// Paging of the token list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TokensQuery {
    /// Page size, 1 to 1000; default 100.
    pub limit: Option<i64>,
    /// The `next_after` of the previous page.
    pub after: Option<String>,
}

/// A page of the live task tokens, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPage {
    /// The tokens' records (never the tokens).
    pub tokens: Vec<TokenInfo>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<String>,
}

/// The live task tokens (admin only): neither expired nor revoked; never the tokens.
#[utoipa::path(get, path = "/v1/tokens", tag = "ops", params(TokensQuery),
    responses((status = 200, body = TokenPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn list_tokens(
    State(s): State<ApiState>,
    who: Principal,
    Query(q): Query<TokensQuery>,
) -> Result<axum::Json<TokenPage>, ApiError> {
    who.require_admin("listing task tokens")?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit {limit} is outside 1..=1000"
        )));
    }
    let after = q
        .after
        .as_deref()
        .map(TokenCursor::parse)
        .transpose()
        .map_err(ApiError::bad_request)?;
    let mut tokens = s
        .tokens
        .live_after(
            s.app.clock.now().timestamp_millis(),
            after.as_ref(),
            limit + 1,
        )
        .await?;
    let next_after = if tokens.len() as i64 > limit {
        tokens.truncate(limit as usize);
        tokens.last().map(|t| TokenCursor::of(t).to_string())
    } else {
        None
    };
    Ok(axum::Json(TokenPage { tokens, next_after }))
}

/// Revoke a task token (admin only): refused from now on by every supervisor sharing the
/// database.
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "ops", params(("id" = String, Path, description = "Token id")),
    responses((status = 200, body = TokenInfo), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn revoke_token(
    State(s): State<ApiState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<TokenInfo>, ApiError> {
    who.require_admin("revoking task tokens")?;
    if id.contains('\0') {
        return Err(ApiError::bad_request("the token id contains a NUL byte"));
    }
    s.tokens
        .revoke(&id, s.app.clock.now().timestamp_millis())
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found(format!("no task token with id {id:?}")))
}
