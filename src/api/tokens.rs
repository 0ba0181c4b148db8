//! Task tokens: signing them (`POST /v1/tokens`, `tether token issue`), recording those signed
//! (in [`crate::db::tokens`]: id, scope, key id, expiry; never the token), listing the live
//! ones a page at a time (`GET /v1/tokens`, `tether token list`) and revoking one
//! (`DELETE /v1/tokens/{id}`, `tether token revoke`). A revoked token is refused by every supervisor sharing the
//! database from the next request on: [`super::auth`] looks its id up on each request.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Principal, TaskClaims};
use super::error::{ApiError, ErrorBody};
use super::extract::{Json, Path, Query};
use super::ApiState;
pub use crate::db::tokens::{NewToken, TokenInfo, TokenRegistry};
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

/// The registry's record of a token just signed with `claims` by key `kid`.
pub fn new_token<'a>(
    claims: &'a TaskClaims,
    kid: &'a str,
    issued_by: &'a str,
    now: i64,
) -> NewToken<'a> {
    NewToken {
        id: &claims.jti,
        dag_id: &claims.dag_id,
        run_id: claims.run_id.as_deref(),
        task_id: claims.task_id.as_deref(),
        map_index: claims.map_index,
        assets: &claims.assets,
        providers: claims.providers.as_deref(),
        kid,
        issued_by,
        issued_at: now,
        expires_at: i64::try_from(claims.exp).unwrap_or(i64::MAX / 1000) * 1000,
    }
}

/// The claims `req` asks for, checked, expiring `default_ttl` seconds (or the request's own
/// ttl) after `now` (seconds since the epoch).
pub fn claims_for(req: TokenRequest, default_ttl: u64, now: i64) -> Result<TaskClaims, ApiError> {
    let check = |field: &'static str, value: &str, extra: &str| {
        crate::model::scope::validate_id(field, value, extra)
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
        .record(&new_token(
            &claims,
            &kid,
            "api:admin",
            now.timestamp_millis(),
        ))
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
    let limit = super::paging::page_size(q.limit, 100, 1000)?;
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
            after.as_ref().map(|c| (c.issued_at, c.id.as_str())),
            limit + 1,
        )
        .await?;
    let next_after = super::paging::cut(&mut tokens, limit).map(|t| TokenCursor::of(t).to_string());
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
