//! `/v1/state/...`: task state of the three scopes.
//!
//! The shapes follow Airflow's state-store routes, so that an Airflow backend class maps onto
//! them one to one: `GET|PUT|DELETE .../keys/{key}` with `{"value": ..., "expires_at": ...}`,
//! `GET .../keys` to list (a page at a time: `limit`, and `after` the previous page's
//! `next_after`), `DELETE` on the scope to clear it (`all_map_indices=true` for every
//! map index of a task instance), and `DELETE /v1/state/runs/{dag_id}/{run_id}` to forget a run.
//! Asset names and keys are path segments: percent-encode `/` as `%2F`.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::auth::Principal;
use super::error::{ApiError, ErrorBody};
use super::extract::{Json, Path, Query};
use super::ApiState;
use crate::state::{ClearTarget, Entry, Retention, Scope, SetOptions, StateError, TaskInstanceId};

/// A stored value.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateValue {
    /// The key.
    pub key: String,
    /// The value (any JSON but null).
    pub value: Value,
    /// The key's version.
    pub version: i64,
    /// When the key was written first.
    pub created_at: DateTime<Utc>,
    /// When it was written last.
    pub updated_at: DateTime<Utc>,
    /// When it expires; absent: never.
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<Entry> for StateValue {
    fn from(e: Entry) -> Self {
        Self {
            key: e.key,
            value: e.value,
            version: e.version,
            created_at: e.created_at,
            updated_at: e.updated_at,
            expires_at: e.expires_at,
        }
    }
}

/// A write.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutBody {
    /// The value: any JSON but null.
    pub value: Value,
    /// A duration (`30d`, `12h`) or `never`; default: the scope's default.
    pub retention: Option<String>,
    /// Compare-and-set: the version the key must have (0: must not exist).
    pub if_version: Option<i64>,
}

/// The result of a write.
#[derive(Debug, Serialize, ToSchema)]
pub struct Written {
    /// The key.
    pub key: String,
    /// Its version now.
    pub version: i64,
    /// When it expires; absent: never.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A page of the keys of a scope.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateList {
    /// Live entries, by key (compared as bytes).
    pub entries: Vec<StateValue>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<String>,
}

/// Paging of a key list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListKeysQuery {
    /// Page size, 1 to 1000; default 100.
    pub limit: Option<u32>,
    /// The `next_after` of the previous page: the list goes on from the first key after it.
    pub after: Option<String>,
}

/// How many keys a clear removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Removed {
    /// Keys removed.
    pub removed: u64,
}

/// Compare-and-delete.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// Delete only if the key has this version.
    pub if_version: Option<i64>,
}

/// Clear options of a task instance.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ClearQuery {
    /// Clear every map index of the task in this run.
    #[serde(default)]
    pub all_map_indices: bool,
}

/// Path of a task instance's key.
#[derive(Debug, Deserialize)]
pub struct TiKey {
    dag_id: String,
    run_id: String,
    task_id: String,
    map_index: i64,
    key: String,
}

/// Path of a task instance.
#[derive(Debug, Deserialize)]
pub struct TiPath {
    dag_id: String,
    run_id: String,
    task_id: String,
    map_index: i64,
}

/// Path of a task's key.
#[derive(Debug, Deserialize)]
pub struct TaskKey {
    dag_id: String,
    task_id: String,
    key: String,
}

/// Path of a task.
#[derive(Debug, Deserialize)]
pub struct TaskPath {
    dag_id: String,
    task_id: String,
}

/// Path of an asset's key.
#[derive(Debug, Deserialize)]
pub struct AssetKey {
    asset: String,
    key: String,
}

fn ti_scope(dag_id: String, run_id: String, task_id: String, map_index: i64) -> Scope {
    Scope::TaskInstance(TaskInstanceId::new(dag_id, run_id, task_id, map_index))
}

async fn get_key(
    s: &ApiState,
    who: &Principal,
    scope: Scope,
    key: String,
) -> Result<axum::Json<StateValue>, ApiError> {
    scope.validate().map_err(StateError::from)?;
    who.allow_scope(&scope)?;
    match s.app.state.get(&scope, &key).await? {
        Some(e) => Ok(axum::Json(e.into())),
        None => Err(StateError::NotFound {
            scope: scope.to_string(),
            key,
        }
        .into()),
    }
}

async fn put_key(
    s: &ApiState,
    who: &Principal,
    scope: Scope,
    key: String,
    body: PutBody,
) -> Result<axum::Json<Written>, ApiError> {
    scope.validate().map_err(StateError::from)?;
    who.allow_scope(&scope)?;
    let retention = match body.retention.as_deref() {
        Some(r) => Some(
            r.parse::<Retention>()
                .map_err(|e| ApiError::bad_request(format!("invalid retention: {e}")))?,
        ),
        None => None,
    };
    let w = s
        .app
        .state
        .set(
            &scope,
            &key,
            body.value,
            SetOptions {
                if_version: body.if_version,
                retention,
            },
        )
        .await?;
    Ok(axum::Json(Written {
        key,
        version: w.version,
        expires_at: w.expires_at,
    }))
}

async fn delete_key(
    s: &ApiState,
    who: &Principal,
    scope: Scope,
    key: String,
    q: DeleteQuery,
) -> Result<axum::http::StatusCode, ApiError> {
    scope.validate().map_err(StateError::from)?;
    who.allow_scope(&scope)?;
    s.app.state.delete(&scope, &key, q.if_version).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

async fn list_keys(
    s: &ApiState,
    who: &Principal,
    scope: Scope,
    q: ListKeysQuery,
) -> Result<axum::Json<StateList>, ApiError> {
    scope.validate().map_err(StateError::from)?;
    who.allow_scope(&scope)?;
    let page = s
        .app
        .state
        .list_page(&scope, q.after.as_deref(), q.limit.unwrap_or(100))
        .await?;
    Ok(axum::Json(StateList {
        entries: page.items.into_iter().map(Into::into).collect(),
        next_after: page.next_after,
    }))
}

async fn clear_scope(
    s: &ApiState,
    who: &Principal,
    scope: Scope,
) -> Result<axum::Json<Removed>, ApiError> {
    scope.validate().map_err(StateError::from)?;
    who.allow_scope(&scope)?;
    let removed = s.app.state.clear(&ClearTarget::Scope(scope)).await?;
    Ok(axum::Json(Removed { removed }))
}

/// Read a task instance's key.
#[utoipa::path(get, path = "/v1/state/task-instances/{dag_id}/{run_id}/{task_id}/{map_index}/keys/{key}", tag = "state",
    params(("dag_id" = String, Path), ("run_id" = String, Path), ("task_id" = String, Path), ("map_index" = i64, Path), ("key" = String, Path)),
    responses((status = 200, body = StateValue), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn ti_get(
    State(s): State<ApiState>,
    who: Principal,
    Path(p): Path<TiKey>,
) -> Result<axum::Json<StateValue>, ApiError> {
    get_key(
        &s,
        &who,
        ti_scope(p.dag_id, p.run_id, p.task_id, p.map_index),
        p.key,
    )
    .await
}

/// Write a task instance's key.
#[utoipa::path(put, path = "/v1/state/task-instances/{dag_id}/{run_id}/{task_id}/{map_index}/keys/{key}", tag = "state", request_body = PutBody,
    params(("dag_id" = String, Path), ("run_id" = String, Path), ("task_id" = String, Path), ("map_index" = i64, Path), ("key" = String, Path)),
    responses((status = 200, body = Written), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn ti_put(
    State(s): State<ApiState>,
    who: Principal,
    Path(p): Path<TiKey>,
    Json(body): Json<PutBody>,
) -> Result<axum::Json<Written>, ApiError> {
    put_key(
        &s,
        &who,
        ti_scope(p.dag_id, p.run_id, p.task_id, p.map_index),
        p.key,
        body,
    )
    .await
}

/// Delete a task instance's key.
#[utoipa::path(delete, path = "/v1/state/task-instances/{dag_id}/{run_id}/{task_id}/{map_index}/keys/{key}", tag = "state",
    params(("dag_id" = String, Path), ("run_id" = String, Path), ("task_id" = String, Path), ("map_index" = i64, Path), ("key" = String, Path), DeleteQuery),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn ti_delete(
    State(s): State<ApiState>,
    who: Principal,
    Path(p): Path<TiKey>,
    Query(q): Query<DeleteQuery>,
) -> Result<axum::http::StatusCode, ApiError> {
    delete_key(
        &s,
        &who,
        ti_scope(p.dag_id, p.run_id, p.task_id, p.map_index),
        p.key,
        q,
    )
    .await
}

/// List a task instance's keys.
#[utoipa::path(get, path = "/v1/state/task-instances/{dag_id}/{run_id}/{task_id}/{map_index}/keys", tag = "state",
    params(("dag_id" = String, Path), ("run_id" = String, Path), ("task_id" = String, Path), ("map_index" = i64, Path), ListKeysQuery),
    responses((status = 200, body = StateList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn ti_list(
    State(s): State<ApiState>,
    who: Principal,
    Path(p): Path<TiPath>,
    Query(q): Query<ListKeysQuery>,
) -> Result<axum::Json<StateList>, ApiError> {
    list_keys(
        &s,
        &who,
        ti_scope(p.dag_id, p.run_id, p.task_id, p.map_index),
        q,
    )
    .await
}

/// Clear a task instance's state (or, with `all_map_indices`, every map index of the task in
/// the run).
#[utoipa::path(delete, path = "/v1/state/task-instances/{dag_id}/{run_id}/{task_id}/{map_index}", tag = "state",
    params(("dag_id" = String, Path), ("run_id" = String, Path), ("task_id" = String, Path), ("map_index" = i64, Path), ClearQuery),
    responses((status = 200, body = Removed), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn ti_clear(
    State(s): State<ApiState>,
    who: Principal,
    Path(p): Path<TiPath>,
    Query(q): Query<ClearQuery>,
) -> Result<axum::Json<Removed>, ApiError> {
    if !q.all_map_indices {
        return clear_scope(
            &s,
            &who,
            ti_scope(p.dag_id, p.run_id, p.task_id, p.map_index),
        )
        .await;
    }
    let ti = TaskInstanceId::new(p.dag_id, p.run_id, p.task_id, -1);
    ti.validate().map_err(StateError::from)?;
    if let Principal::Task(c) = &who {
        if c.map_index.is_some() {
            return Err(ApiError::forbidden("this task token is bound to one map index; clearing all map indices needs a token without one"));
        }
    }
    who.allow_task_instance(&ti)?;
    let target = ClearTarget::AllMapIndices {
        dag_id: ti.dag_id,
        run_id: ti.run_id,
        task_id: ti.task_id,
    };
    Ok(axum::Json(Removed {
        removed: s.app.state.clear(&target).await?,
    }))
}

/// Read a task's cross-run key.
#[utoipa::path(get, path = "/v1/state/tasks/{dag_id}/{task_id}/keys/{key}", tag = "state",
    params(("dag_id" = String, Path), ("task_id" = String, Path), ("key" = String, Path)),
    responses((status = 200, body = StateValue), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn task_get(
    State(s): State<ApiState>,
    who: Principal,
    Path(p): Path<TaskKey>,
) -> Result<axum::Json<StateValue>, ApiError> {
    get_key(&s, &who, Scope::task(p.dag_id, p.task_id), p.key).await
}

/// Write a task's cross-run key.
#[utoipa::path(put, path = "/v1/state/tasks/{dag_id}/{task_id}/keys/{key}", tag = "state", request_body = PutBody,
    params(("dag_id" = String, Path), ("task_id" = String, Path), ("key" = String, Path)),
    responses((status = 200, body = Written), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn task_put(
    State(s): State<ApiState>,
    who: Principal,
    Path(p): Path<TaskKey>,
    Json(body): Json<PutBody>,
) -> Result<axum::Json<Written>, ApiError> {
    put_key(&s, &who, Scope::task(p.dag_id, p.task_id), p.key, body).await
}

/// Delete a task's cross-run key.
#[utoipa::path(delete, path = "/v1/state/tasks/{dag_id}/{task_id}/keys/{key}", tag = "state",
    params(("dag_id" = String, Path), ("task_id" = String, Path), ("key" = String, Path), DeleteQuery),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn task_delete(
    State(s): State<ApiState>,
    who: Principal,
    Path(p): Path<TaskKey>,
    Query(q): Query<DeleteQuery>,
) -> Result<axum::http::StatusCode, ApiError> {
    delete_key(&s, &who, Scope::task(p.dag_id, p.task_id), p.key, q).await
}

/// List a task's cross-run keys.
#[utoipa::path(get, path = "/v1/state/tasks/{dag_id}/{task_id}/keys", tag = "state",
    params(("dag_id" = String, Path), ("task_id" = String, Path), ListKeysQuery),
    responses((status = 200, body = StateList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn task_list(
    State(s): State<ApiState>,
    who: Principal,
    Path(p): Path<TaskPath>,
    Query(q): Query<ListKeysQuery>,
) -> Result<axum::Json<StateList>, ApiError> {
    list_keys(&s, &who, Scope::task(p.dag_id, p.task_id), q).await
}

/// Clear a task's cross-run state.
#[utoipa::path(delete, path = "/v1/state/tasks/{dag_id}/{task_id}", tag = "state",
    params(("dag_id" = String, Path), ("task_id" = String, Path)),
    responses((status = 200, body = Removed), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn task_clear(
    State(s): State<ApiState>,
    who: Principal,
    Path(p): Path<TaskPath>,
) -> Result<axum::Json<Removed>, ApiError> {
    clear_scope(&s, &who, Scope::task(p.dag_id, p.task_id)).await
}

/// Read an asset's key.
#[utoipa::path(get, path = "/v1/state/assets/{asset}/keys/{key}", tag = "state",
    params(("asset" = String, Path, description = "Asset name or URI, percent-encoded"), ("key" = String, Path)),
    responses((status = 200, body = StateValue), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn asset_get(
    State(s): State<ApiState>,
    who: Principal,
    Path(p): Path<AssetKey>,
) -> Result<axum::Json<StateValue>, ApiError> {
    get_key(&s, &who, Scope::asset(p.asset), p.key).await
}

/// Write an asset's key (a watermark).
#[utoipa::path(put, path = "/v1/state/assets/{asset}/keys/{key}", tag = "state", request_body = PutBody,
    params(("asset" = String, Path, description = "Asset name or URI, percent-encoded"), ("key" = String, Path)),
    responses((status = 200, body = Written), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn asset_put(
    State(s): State<ApiState>,
    who: Principal,
    Path(p): Path<AssetKey>,
    Json(body): Json<PutBody>,
) -> Result<axum::Json<Written>, ApiError> {
    put_key(&s, &who, Scope::asset(p.asset), p.key, body).await
}

/// Delete an asset's key.
#[utoipa::path(delete, path = "/v1/state/assets/{asset}/keys/{key}", tag = "state",
    params(("asset" = String, Path, description = "Asset name or URI, percent-encoded"), ("key" = String, Path), DeleteQuery),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn asset_delete(
    State(s): State<ApiState>,
    who: Principal,
    Path(p): Path<AssetKey>,
    Query(q): Query<DeleteQuery>,
) -> Result<axum::http::StatusCode, ApiError> {
    delete_key(&s, &who, Scope::asset(p.asset), p.key, q).await
}

/// List an asset's keys.
#[utoipa::path(get, path = "/v1/state/assets/{asset}/keys", tag = "state",
    params(("asset" = String, Path, description = "Asset name or URI, percent-encoded"), ListKeysQuery),
    responses((status = 200, body = StateList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn asset_list(
    State(s): State<ApiState>,
    who: Principal,
    Path(asset): Path<String>,
    Query(q): Query<ListKeysQuery>,
) -> Result<axum::Json<StateList>, ApiError> {
    list_keys(&s, &who, Scope::asset(asset), q).await
}

/// Clear an asset's state.
#[utoipa::path(delete, path = "/v1/state/assets/{asset}", tag = "state",
    params(("asset" = String, Path, description = "Asset name or URI, percent-encoded")),
    responses((status = 200, body = Removed), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn asset_clear(
    State(s): State<ApiState>,
    who: Principal,
    Path(asset): Path<String>,
) -> Result<axum::Json<Removed>, ApiError> {
    clear_scope(&s, &who, Scope::asset(asset)).await
}

/// Forget a DAG run: remove all its task-instance state (admin only), as Airflow's run
/// deletion does.
#[utoipa::path(delete, path = "/v1/state/runs/{dag_id}/{run_id}", tag = "state",
    params(("dag_id" = String, Path), ("run_id" = String, Path)),
    responses((status = 200, body = Removed), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn forget_run(
    State(s): State<ApiState>,
    who: Principal,
    Path((dag_id, run_id)): Path<(String, String)>,
) -> Result<axum::Json<Removed>, ApiError> {
    who.require_admin("forgetting a run")?;
    Ok(axum::Json(Removed {
        removed: s.app.state.forget_run(&dag_id, &run_id).await?,
    }))
}
