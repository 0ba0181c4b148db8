//! `/v1/jobs`: ensure a job (submit or reattach), read it, wait for it (or for any of many) to
//! change, read its events, cancel it, list jobs.

use std::time::Duration;

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tether_provider::JobState;
use utoipa::{IntoParams, ToSchema};

use super::auth::Principal;
use super::error::{ApiError, ErrorBody};
use super::extract::{Json, Path, Query};
use super::ApiState;
use crate::engine::{EnsureAction, EnsureRequest};
use crate::jobs::{JobEvent, JobFilter, JobRecord};
use crate::model::JobId;
use crate::state::TaskInstanceId;

/// A job, as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    /// tether's id.
    pub id: i64,
    /// The DAG.
    pub dag_id: String,
    /// The run.
    pub run_id: String,
    /// The task.
    pub task_id: String,
    /// The map index (-1: not mapped).
    pub map_index: i64,
    /// The job's name in the task instance.
    pub name: String,
    /// 1, then +1 per real retry.
    pub generation: i64,
    /// The configured provider.
    pub provider: String,
    /// The try that submitted it.
    pub try_number: i64,
    /// `submitting`, `active` or `terminal`.
    pub phase: String,
    /// `pending`, `running`, `succeeded`, `failed`, `cancelled`, `lost` or `unknown`.
    pub state: String,
    /// The provider's own state.
    pub raw_state: Option<String>,
    /// The provider's message.
    pub message: Option<String>,
    /// A link to the job in the provider's UI.
    pub url: Option<String>,
    /// The provider's handle (e.g. `{"run_id": 42}`).
    #[schema(value_type = Option<Object>)]
    pub handle: Option<Value>,
    /// The idempotency key the provider deduplicates on.
    pub idempotency_key: String,
    /// The supervisor (or submitter) holding the job's lease now.
    pub lease_owner: Option<String>,
    /// When that lease runs out.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// When a cancel was requested.
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// Why.
    pub cancel_reason: Option<String>,
    /// When the intent was recorded.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Handles of other remote jobs that carry this job's idempotency key: duplicate
    /// submissions tether does not track, for a person to act on. Empty normally.
    #[schema(value_type = Vec<Object>)]
    pub duplicates: Vec<Value>,
    /// Warnings a person should act on (one per duplicate submission).
    pub warnings: Vec<String>,
    /// The latest try of the task instance handed the job (its submitter, or a try that
    /// reattached): the only try whose cancel is taken.
    pub owner_try: i64,
    /// The try that took the finished job's result, if one did (`POST .../consume`).
    pub consumed_try: Option<i64>,
    /// For a generation that repairs the failed one before it in place (`on_retry =
    /// "repair"`), the failed generation's handle.
    #[schema(value_type = Option<Object>)]
    pub repair_of: Option<Value>,
}

impl From<JobRecord> for JobView {
    fn from(j: JobRecord) -> Self {
        let owner_try = j.owner_try();
        Self {
            id: j.id.0,
            dag_id: j.task_instance.dag_id,
            run_id: j.task_instance.run_id,
            task_id: j.task_instance.task_id,
            map_index: j.task_instance.map_index,
            name: j.name,
            generation: j.generation,
            provider: j.provider,
            try_number: j.try_number,
            phase: j.phase.as_str().to_string(),
            state: j.state.as_str().to_string(),
            raw_state: j.raw_state,
            message: j.message,
            url: j.url,
            handle: j.handle.map(|h| h.value()),
            idempotency_key: j.idempotency_key,
            lease_owner: j.lease_owner,
            lease_expires_at: j.lease_expires_at,
            cancel_requested_at: j.cancel_requested_at,
            cancel_reason: j.cancel_reason,
            created_at: j.created_at,
            updated_at: j.updated_at,
            finished_at: j.finished_at,
            warnings: j
                .duplicates
                .iter()
                .map(|d| format!("duplicate submission: the provider also has job {d} with this job's key; tether does not track it"))
                .collect(),
            duplicates: j.duplicates.iter().map(tether_provider::Handle::value).collect(),
            owner_try,
            consumed_try: j.consumed_try,
            repair_of: j.repair_of.map(|h| h.value()),
        }
    }
}

/// A request for a job.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnsureBody {
    /// The DAG.
    pub dag_id: String,
    /// The run.
    pub run_id: String,
    /// The task.
    pub task_id: String,
    /// The map index; -1 (default) for an unmapped task.
    #[serde(default = "unmapped")]
    pub map_index: i64,
    /// The task's try number, from 1.
    pub try_number: i64,
    /// The job's name; `main` by default.
    #[serde(default = "main")]
    pub name: String,
    /// The configured provider.
    pub provider: String,
    /// The provider's submit body.
    #[schema(value_type = Object)]
    pub spec: Value,
}

fn unmapped() -> i64 {
    -1
}

fn main() -> String {
    "main".into()
}

/// What `ensure` did, and the job.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnsureResponse {
    /// `submitted`, `reattached`, `resubmitted`, `recovered` or `finished`.
    #[schema(value_type = String)]
    pub action: EnsureAction,
    /// Whether this request submitted a job to the provider.
    pub submitted: bool,
    /// The job.
    pub job: JobView,
}

/// Ensure a job: submit it, or reattach to the one already recorded for this task instance and
/// name (see the decision table in the book's docs/src/concepts/decision-table.md).
#[utoipa::path(post, path = "/v1/jobs", request_body = EnsureBody, tag = "jobs",
    responses((status = 200, body = EnsureResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn ensure(
    State(s): State<ApiState>,
    who: Principal,
    Json(body): Json<EnsureBody>,
) -> Result<axum::Json<EnsureResponse>, ApiError> {
    let ti = TaskInstanceId::new(body.dag_id, body.run_id, body.task_id, body.map_index);
    ti.validate()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    who.allow_task_instance(&ti)?;
    who.allow_provider(&body.provider)?;
    let req = EnsureRequest {
        task_instance: ti,
        try_number: body.try_number,
        name: body.name,
        provider: body.provider,
        spec: body.spec,
    };
    // Run apart from the request: a client that goes away (a task SIGKILLed mid-submit) drops
    // this handler, not the submission, which records its handle for the next try to find.
    let engine = s.app.engine.clone();
    let ensured = tokio::spawn(async move { engine.ensure(&req).await })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "an ensure task failed");
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error; see the server log",
            )
        })??;
    Ok(axum::Json(EnsureResponse {
        action: ensured.action,
        submitted: ensured.action.submitted(),
        job: ensured.job.into(),
    }))
}

/// A job state named by a client (a wait's known state, a list's filter), if any.
fn job_state(name: Option<&str>) -> Result<Option<JobState>, String> {
    name.map(|n| {
        JobState::parse(n)
            .ok_or_else(|| format!("state {n:?} is not a job state ({})", JobState::NAMES))
    })
    .transpose()
}

async fn load(s: &ApiState, who: &Principal, id: JobId) -> Result<JobRecord, ApiError> {
    let job = s
        .app
        .engine
        .jobs()
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job {id} not found")))?;
    who.allow_task_instance(&job.task_instance)?;
    Ok(job)
}

/// A job by id.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs", params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, body = JobView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn get_job(
    State(s): State<ApiState>,
    who: Principal,
    Path(id): Path<JobId>,
) -> Result<axum::Json<JobView>, ApiError> {
    Ok(axum::Json(load(&s, &who, id).await?.into()))
}

/// Long-poll parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    /// The state the caller knows; the answer comes as soon as the job's state differs (or the
    /// job ends). Without it: the state at the time of the request.
    pub state: Option<String>,
    /// Seconds to wait at most (capped by the server's `api.max_wait`); default 30.
    pub timeout: Option<u64>,
}

/// The job after a wait.
#[derive(Debug, Serialize, ToSchema)]
pub struct WaitResponse {
    /// Whether the state changed (or the job ended) before the timeout.
    pub changed: bool,
    /// The job now.
    pub job: JobView,
}

/// Wait for a job's state to change: one open request instead of a poll loop.
#[utoipa::path(get, path = "/v1/jobs/{id}/wait", tag = "jobs", params(("id" = i64, Path, description = "Job id"), WaitQuery),
    responses((status = 200, body = WaitResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn wait_job(
    State(s): State<ApiState>,
    who: Principal,
    Path(id): Path<JobId>,
    Query(q): Query<WaitQuery>,
) -> Result<axum::Json<WaitResponse>, ApiError> {
    let known = job_state(q.state.as_deref()).map_err(ApiError::bad_request)?;
    let max = s.app.config.api.max_wait;
    let timeout = Duration::from_secs(q.timeout.unwrap_or(30)).min(max);
    let _slot = s.waits.take(&who)?;
    // Registered before the first reading, so that no change after it goes unheard.
    let watch = s.app.engine.changes().watch([id]);
    let first = load(&s, &who, id).await?;
    let known = known.unwrap_or(first.state);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut job = first;
    loop {
        if job.state != known || job.phase == crate::jobs::Phase::Terminal {
            return Ok(axum::Json(WaitResponse {
                changed: true,
                job: job.into(),
            }));
        }
        // Woken by announced changes at once (see `engine::changes`); re-read now and then
        // in case one was not announced.
        let reread = s.app.engine.changes().reread_every();
        tokio::select! {
            _ = watch.changed() => {}
            _ = tokio::time::sleep(reread) => {}
            _ = tokio::time::sleep_until(deadline) => {
                return Ok(axum::Json(WaitResponse { changed: false, job: job.into() }));
            }
            _ = s.shutdown.cancelled() => {
                return Ok(axum::Json(WaitResponse { changed: false, job: job.into() }));
            }
        }
        job = load(&s, &who, id).await?;
    }
}

/// The most jobs one `POST /v1/jobs/wait` may name.
pub const MAX_WAIT_JOBS: usize = 1000;

/// A job to wait for, and the state its waiter knows.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KnownJob {
    /// tether's job id.
    pub id: i64,
    /// The state the caller knows (none: the state at the time of the request).
    pub state: Option<String>,
}

/// Many jobs to wait for at once.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitManyRequest {
    /// The jobs (1 to 1,000, each once).
    pub jobs: Vec<KnownJob>,
    /// Seconds to wait at most (capped by the server's `api.max_wait`); default 30.
    pub timeout: Option<u64>,
}

/// A job of the request that cannot be waited for.
#[derive(Debug, Serialize, ToSchema)]
pub struct WaitManyError {
    /// The job id.
    pub id: i64,
    /// `not_found` or `forbidden`.
    pub error: String,
    /// What is wrong.
    pub message: String,
}

/// The jobs that changed (or ended), and those that cannot be waited for.
#[derive(Debug, Serialize, ToSchema)]
pub struct WaitManyResponse {
    /// Every listed job whose state differs from the one given, or that has ended; empty
    /// after the timeout.
    pub changed: Vec<JobView>,
    /// Listed jobs that do not exist, or that the token may not see.
    pub errors: Vec<WaitManyError>,
}

/// Wait for any of many jobs to change: one open request for all of a process's waiters
/// (Airflow's triggerer holds one for all its tether triggers), answered as soon as one of
/// them changes state or ends.
#[utoipa::path(post, path = "/v1/jobs/wait", tag = "jobs", request_body = WaitManyRequest,
    responses((status = 200, body = WaitManyResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn wait_jobs(
    State(s): State<ApiState>,
    who: Principal,
    Json(request): Json<WaitManyRequest>,
) -> Result<axum::Json<WaitManyResponse>, ApiError> {
    if request.jobs.is_empty() || request.jobs.len() > MAX_WAIT_JOBS {
        return Err(ApiError::bad_request(format!(
            "jobs must list 1 to {MAX_WAIT_JOBS} jobs, not {}",
            request.jobs.len()
        )));
    }
    let mut known: std::collections::HashMap<i64, Option<JobState>> =
        std::collections::HashMap::with_capacity(request.jobs.len());
    for job in &request.jobs {
        let state = job_state(job.state.as_deref())
            .map_err(|e| ApiError::bad_request(format!("job {}: {e}", job.id)))?;
        if known.insert(job.id, state).is_some() {
            return Err(ApiError::bad_request(format!(
                "job {} is listed twice",
                job.id
            )));
        }
    }
    let ids: Vec<JobId> = known.keys().copied().map(JobId).collect();
    let timeout = Duration::from_secs(request.timeout.unwrap_or(30)).min(s.app.config.api.max_wait);
    let deadline = tokio::time::Instant::now() + timeout;
    let _slot = s.waits.take(&who)?;
    let watch = s.app.engine.changes().watch(ids.iter().copied());
    // What is read at each turn: every job named at first (and after a relay outage, or at
    // each re-read in case), then only those announced as changed since. Of each, a few
    // columns; the whole record only of those that changed.
    let mut to_read = ids.clone();
    loop {
        let jobs = s.app.engine.jobs().waited(&to_read).await?;
        let mut answer = WaitManyResponse {
            changed: Vec::new(),
            errors: Vec::new(),
        };
        let mut found = std::collections::HashSet::with_capacity(jobs.len());
        let mut changed = Vec::new();
        for job in jobs {
            found.insert(job.id);
            if let Err(e) = who.allow_task_instance(&job.task_instance) {
                answer.errors.push(WaitManyError {
                    id: job.id.0,
                    error: e.code().into(),
                    message: e.message().into(),
                });
                continue;
            }
            // A job listed without a state is measured against its first reading.
            let baseline = *known
                .get_mut(&job.id.0)
                .expect("only listed jobs are read")
                .get_or_insert(job.state);
            if job.state != baseline || job.phase == crate::jobs::Phase::Terminal {
                changed.push(job.id);
            }
        }
        for id in to_read.iter().filter(|id| !found.contains(id)) {
            answer.errors.push(WaitManyError {
                id: id.0,
                error: "not_found".into(),
                message: format!("job {id} not found"),
            });
        }
        // The whole records of those that changed (one that went meanwhile is left out: it
        // is not found at the next read).
        let records = s.app.engine.jobs().get_many(&changed).await?;
        answer.changed = records.into_iter().map(Into::into).collect();
        if !answer.changed.is_empty() || !answer.errors.is_empty() {
            return Ok(axum::Json(answer));
        }
        // As in `wait_job`: woken by announced changes, re-read now and then in case.
        let reread = s.app.engine.changes().reread_every();
        tokio::select! {
            _ = watch.changed() => {
                to_read = watch.take_announced().unwrap_or_else(|| ids.clone());
            }
            _ = tokio::time::sleep(reread) => {
                watch.take_announced();
                to_read = ids.clone();
            }
            _ = tokio::time::sleep_until(deadline) => return Ok(axum::Json(answer)),
            _ = s.shutdown.cancelled() => return Ok(axum::Json(answer)),
        }
    }
}

/// A job event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Order.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: String,
    /// The job's state after it.
    pub state: Option<String>,
    /// Details.
    #[schema(value_type = Option<Object>)]
    pub detail: Option<Value>,
    /// Who.
    pub actor: String,
}

impl From<JobEvent> for EventView {
    fn from(e: JobEvent) -> Self {
        Self {
            id: e.id,
            at: e.at,
            kind: e.kind,
            state: e.state,
            detail: e.detail,
            actor: e.actor,
        }
    }
}

/// Paging of a job's event log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Page size, 1 to 1000; default 100.
    pub limit: Option<i64>,
    /// The `next_after_id` of the previous page.
    pub after_id: Option<i64>,
}

/// A page of a job's event log, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    /// The events.
    pub events: Vec<EventView>,
    /// Pass as `after_id` for the next page; absent on the last page.
    pub next_after_id: Option<i64>,
}

/// A job's event log, oldest first, a page at a time.
#[utoipa::path(get, path = "/v1/jobs/{id}/events", tag = "jobs", params(("id" = i64, Path, description = "Job id"), EventsQuery),
    responses((status = 200, body = EventPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn job_events(
    State(s): State<ApiState>,
    who: Principal,
    Path(id): Path<JobId>,
    Query(q): Query<EventsQuery>,
) -> Result<axum::Json<EventPage>, ApiError> {
    let limit = super::paging::page_size(q.limit, 100, 1000)?;
    load(&s, &who, id).await?;
    let mut events = s
        .app
        .engine
        .jobs()
        .events_after(id, q.after_id.unwrap_or(0), limit + 1)
        .await?;
    let next_after_id = super::paging::cut(&mut events, limit).map(|e| e.id);
    Ok(axum::Json(EventPage {
        events: events.into_iter().map(Into::into).collect(),
        next_after_id,
    }))
}

/// Why a job is cancelled.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    /// Recorded in the event log; optional (recorded as empty).
    #[serde(default)]
    pub reason: String,
    /// The try of the job's task instance that asks (an Airflow task's `on_kill`): refused
    /// with 409 once a later try owns the job (it reattached after a clear). A person's cancel
    /// names none.
    #[serde(default)]
    pub try_number: Option<i64>,
}

/// Which try took a finished job's result.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsumeBody {
    /// The try whose task instance completed with the job's result.
    pub try_number: i64,
}

/// Cancel a job at the provider: the only way tether ever cancels one.
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", tag = "jobs", request_body = CancelBody, params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, body = JobView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn cancel_job(
    State(s): State<ApiState>,
    who: Principal,
    Path(id): Path<JobId>,
    Json(body): Json<CancelBody>,
) -> Result<axum::Json<JobView>, ApiError> {
    load(&s, &who, id).await?;
    if body.reason.contains('\0') {
        return Err(ApiError::bad_request("reason contains a NUL byte"));
    }
    if body.reason.len() > 1000 {
        return Err(ApiError::bad_request(format!(
            "reason is {} bytes; at most 1000",
            body.reason.len()
        )));
    }
    let actor = match &who {
        Principal::Admin => "api:admin".to_string(),
        Principal::Task(c) => format!("api:task:{}", c.dag_id),
    };
    let job = s
        .app
        .engine
        .cancel_for_try(id, &body.reason, &actor, body.try_number)
        .await?;
    Ok(axum::Json(job.into()))
}

/// Record that a try took the finished job's result (its task instance completed with it): a
/// later try of the task instance (Airflow's clear) then runs the job anew, where otherwise it
/// is told the result (the job ended while its try was gone). 409 while the job runs.
#[utoipa::path(post, path = "/v1/jobs/{id}/consume", tag = "jobs", request_body = ConsumeBody, params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, body = JobView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn consume_job(
    State(s): State<ApiState>,
    who: Principal,
    Path(id): Path<JobId>,
    Json(body): Json<ConsumeBody>,
) -> Result<axum::Json<JobView>, ApiError> {
    load(&s, &who, id).await?;
    let actor = match &who {
        Principal::Admin => "api:admin".to_string(),
        Principal::Task(c) => format!("api:task:{}", c.dag_id),
    };
    let job = s.app.engine.consume(id, body.try_number, &actor).await?;
    Ok(axum::Json(job.into()))
}

/// Filters and paging of the job list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this DAG (a task token sees only its own).
    pub dag_id: Option<String>,
    /// Only this run.
    pub run_id: Option<String>,
    /// Only this task.
    pub task_id: Option<String>,
    /// Only this state.
    pub state: Option<String>,
    /// Only this provider.
    pub provider: Option<String>,
    /// Page size, 1 to 500; default 50.
    pub limit: Option<i64>,
    /// The `next_before_id` of the previous page.
    pub before_id: Option<i64>,
}

/// A page of jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    /// The jobs.
    pub jobs: Vec<JobView>,
    /// Pass as `before_id` for the next page; absent on the last page.
    pub next_before_id: Option<i64>,
}

/// List jobs, newest first.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", params(ListQuery),
    responses((status = 200, body = JobPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn list_jobs(
    State(s): State<ApiState>,
    who: Principal,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<JobPage>, ApiError> {
    let filter = scoped_filter(&who, q)?;
    let limit = filter.limit - 1;
    let mut jobs = s.app.engine.jobs().list(&filter).await?;
    if let Principal::Task(_) = &who {
        jobs.retain(|j| who.allow_task_instance(&j.task_instance).is_ok());
    }
    let more = jobs.len() as i64 > limit;
    jobs.truncate(limit as usize);
    let next_before_id = if more {
        jobs.last().map(|j| j.id.0)
    } else {
        None
    };
    Ok(axum::Json(JobPage {
        jobs: jobs.into_iter().map(Into::into).collect(),
        next_before_id,
    }))
}

/// The filter a list query asks for, narrowed to what the caller may see (a task token: its
/// DAG, and its run, task and map index if it is bound to them); `limit` is one more than the
/// page, to tell whether there is another.
fn scoped_filter(who: &Principal, q: ListQuery) -> Result<JobFilter, ApiError> {
    // PostgreSQL text cannot hold a NUL byte, and no id or provider name has one.
    for (name, value) in [
        ("dag_id", &q.dag_id),
        ("run_id", &q.run_id),
        ("task_id", &q.task_id),
        ("provider", &q.provider),
    ] {
        if value.as_deref().is_some_and(|v| v.contains('\0')) {
            return Err(ApiError::bad_request(format!("{name} contains a NUL byte")));
        }
    }
    let limit = super::paging::page_size(q.limit, 50, 500)?;
    let state = job_state(q.state.as_deref()).map_err(ApiError::bad_request)?;
    let mut filter = JobFilter {
        dag_id: q.dag_id,
        run_id: q.run_id,
        task_id: q.task_id,
        map_index: None,
        state,
        provider: q.provider,
        limit: limit + 1,
        before_id: q.before_id.map(JobId),
    };
    if let Principal::Task(c) = who {
        let narrow = |asked: &mut Option<String>, bound: &Option<String>, what: &str| {
            if let Some(b) = bound {
                if asked.as_ref().is_some_and(|a| a != b) {
                    return Err(ApiError::forbidden(format!(
                        "this task token lacks the scope of {what} {:?}",
                        asked.clone().unwrap_or_default()
                    )));
                }
                *asked = Some(b.clone());
            }
            Ok(())
        };
        narrow(&mut filter.dag_id, &Some(c.dag_id.clone()), "dag")?;
        narrow(&mut filter.run_id, &c.run_id, "run")?;
        narrow(&mut filter.task_id, &c.task_id, "task")?;
        filter.map_index = c.map_index;
    }
    Ok(filter)
}

/// How many jobs there are in each state, with the list's filters (its `state`, `limit` and
/// `before_id` ignored).
#[derive(Debug, Serialize, ToSchema)]
pub struct JobCounts {
    /// Jobs by state; states without jobs are absent.
    #[schema(value_type = Object)]
    pub by_state: std::collections::BTreeMap<String, i64>,
    /// All of them.
    pub total: i64,
}

/// Count jobs by state.
#[utoipa::path(get, path = "/v1/jobs/counts", tag = "jobs", params(ListQuery),
    responses((status = 200, body = JobCounts), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn job_counts(
    State(s): State<ApiState>,
    who: Principal,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<JobCounts>, ApiError> {
    let filter = scoped_filter(&who, q)?;
    let by_state: std::collections::BTreeMap<String, i64> = s
        .app
        .engine
        .jobs()
        .count_by_state(&filter)
        .await?
        .into_iter()
        .collect();
    let total = by_state.values().sum();
    Ok(axum::Json(JobCounts { by_state, total }))
}
