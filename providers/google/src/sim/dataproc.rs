//! Dataproc, simulated: jobs on clusters (`/v1/projects/{p}/regions/{r}/jobs`) and Serverless
//! batches (`/v1/projects/{p}/locations/{l}/batches`, with their long-running operations
//! under `regions`), with the service's hard edges (see `src/edges.rs`): a repeated request id
//! answers the first job or operation (whatever became of it, whatever the new body says); a
//! taken job or batch id with another request id answers 409 `ALREADY_EXISTS`; the jobs list
//! filters by `status.state = ACTIVE|NON_ACTIVE` and labels only; the batches list takes an
//! AIP-160 filter of `state`, `create_time`, `batch_id`, `batch_uuid` and labels; a job's
//! cancel answers the job (`CANCEL_PENDING`), a batch is cancelled through its operation.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tether_provider::registry::SimJobState;
use tether_provider::sim::Lifetimes;
use tether_provider::Handle;

use super::bigquery::{param, params};
use super::{error, gate, respond_after, Answer, Endpoint, Refusal, Shared, SimConfig};

/// A simulated job or batch.
#[derive(Debug)]
pub(super) struct SimRun {
    project: String,
    region: String,
    id: String,
    uuid: String,
    /// The job or batch as submitted.
    body: Value,
    created: Instant,
    created_ms: i64,
    pending: Duration,
    running: Duration,
    fails: bool,
    cancelled_at: Option<Instant>,
    ended_at: Option<Instant>,
    /// The raw state it reports whatever its schedule says.
    pub(super) forced: Option<String>,
    /// Left out of lists.
    pub(super) hidden: bool,
    /// A batch's operation id.
    operation: String,
    /// The state its last log entry was made for (`events.rs`).
    emitted: Option<String>,
}

/// Where a run stands: its phase, and when it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Pending,
    Running,
    Cancelling,
    Cancelled,
    Succeeded,
    Failed,
}

impl SimRun {
    fn phase(&self, config: &SimConfig, now: Instant) -> (Phase, Option<Instant>) {
        let started = self.created + self.pending;
        let mut end = started + self.running;
        if let Some(early) = self.ended_at.filter(|e| *e < end) {
            end = early;
        }
        if let Some(c) = self.cancelled_at.filter(|c| *c < end) {
            let done = c + config.cancel_takes;
            return if now >= done {
                (Phase::Cancelled, Some(done))
            } else {
                (Phase::Cancelling, None)
            };
        }
        if now >= end {
            let phase = if self.fails {
                Phase::Failed
            } else {
                Phase::Succeeded
            };
            (phase, Some(end))
        } else if now >= started {
            (Phase::Running, None)
        } else {
            (Phase::Pending, None)
        }
    }

    pub(super) fn truth(&self, config: &SimConfig, now: Instant) -> SimJobState {
        if self.cancelled_at.is_some() && self.forced.is_none() {
            if let (Phase::Cancelling | Phase::Cancelled, _) = self.phase(config, now) {
                return SimJobState::Cancelled;
            }
        }
        match self.phase(config, now).0 {
            Phase::Succeeded => SimJobState::Succeeded,
            Phase::Failed => SimJobState::Failed,
            Phase::Cancelled => SimJobState::Cancelled,
            _ => SimJobState::Running,
        }
    }

    fn readable(&self, config: &SimConfig, lifetimes: &Lifetimes, now: Instant) -> bool {
        lifetimes.readable(self.created, self.phase(config, now).1, now)
    }

    fn job_state(&self, config: &SimConfig, now: Instant) -> String {
        if let Some(raw) = &self.forced {
            return raw.clone();
        }
        match self.phase(config, now).0 {
            Phase::Pending => "PENDING",
            Phase::Running => "RUNNING",
            Phase::Cancelling => "CANCEL_PENDING",
            Phase::Cancelled => "CANCELLED",
            Phase::Succeeded => "DONE",
            Phase::Failed => "ERROR",
        }
        .into()
    }

    fn batch_state(&self, config: &SimConfig, now: Instant) -> String {
        if let Some(raw) = &self.forced {
            return raw.clone();
        }
        match self.phase(config, now).0 {
            Phase::Pending => "PENDING",
            Phase::Running => "RUNNING",
            Phase::Cancelling => "CANCELLING",
            Phase::Cancelled => "CANCELLED",
            Phase::Succeeded => "SUCCEEDED",
            Phase::Failed => "FAILED",
        }
        .into()
    }

    fn rfc3339(&self, at: Instant) -> String {
        let ms = self.created_ms + at.saturating_duration_since(self.created).as_millis() as i64;
        crate::dataproc::rfc3339_of(ms)
    }

    /// The job as `jobs.get` answers it.
    fn job(&self, config: &SimConfig, now: Instant, lie: bool) -> Value {
        let state = if lie {
            "DONE".into()
        } else {
            self.job_state(config, now)
        };
        let mut job = self.body.clone();
        job["reference"] = json!({"projectId": self.project, "jobId": self.id});
        job["placement"]["clusterUuid"] = json!(format!("{:x}", self.created_ms));
        let mut status = json!({"state": state, "stateStartTime": self.rfc3339(now)});
        if state == "ERROR" {
            status["details"] = json!("Job failed with message [simulated failure]. Additional details can be found at: gs://tether-sim/driveroutput");
        }
        job["status"] = status;
        job["statusHistory"] =
            json!([{"state": "PENDING", "stateStartTime": self.rfc3339(self.created)}]);
        job["jobUuid"] = json!(self.uuid);
        job["done"] = json!(matches!(state.as_str(), "DONE" | "ERROR" | "CANCELLED"));
        job["driverOutputResourceUri"] = json!(format!(
            "gs://tether-sim/google-cloud-dataproc-metainfo/{}/jobs/{}/driveroutput",
            self.uuid, self.id
        ));
        job
    }

    fn batch_name(&self) -> String {
        format!(
            "projects/{}/locations/{}/batches/{}",
            self.project, self.region, self.id
        )
    }

    fn operation_name(&self) -> String {
        format!(
            "projects/{}/regions/{}/operations/{}",
            self.project, self.region, self.operation
        )
    }

    /// The batch as `batches.get` answers it.
    fn batch(&self, config: &SimConfig, now: Instant, lie: bool) -> Value {
        let state = if lie {
            "SUCCEEDED".into()
        } else {
            self.batch_state(config, now)
        };
        let mut batch = self.body.clone();
        batch["name"] = json!(self.batch_name());
        batch["uuid"] = json!(self.uuid);
        batch["createTime"] = json!(self.rfc3339(self.created));
        batch["state"] = json!(state);
        batch["stateTime"] = json!(self.rfc3339(now));
        if state == "FAILED" {
            batch["stateMessage"] =
                json!("Batch failed: the driver exited with code 1 (simulated)");
        }
        batch["creator"] = json!(super::CLIENT_EMAIL);
        batch["operation"] = json!(self.operation_name());
        if batch["runtimeConfig"]["version"].is_null() {
            batch["runtimeConfig"]["version"] = json!("2.2");
        }
        batch["stateHistory"] =
            json!([{"state": "PENDING", "stateStartTime": self.rfc3339(self.created)}]);
        batch
    }

    /// The batch's long-running operation.
    fn operation(&self, config: &SimConfig, now: Instant) -> Value {
        let batch = self.batch(config, now, false);
        let mut op = json!({
            "name": self.operation_name(),
            "metadata": {
                "@type": "type.googleapis.com/google.cloud.dataproc.v1.BatchOperationMetadata",
                "batch": self.batch_name(),
                "batchUuid": self.uuid,
                "createTime": self.rfc3339(self.created),
                "operationType": "BATCH",
            },
        });
        match batch["state"].as_str() {
            Some("SUCCEEDED") => {
                op["done"] = json!(true);
                let mut response = batch;
                response["@type"] = json!("type.googleapis.com/google.cloud.dataproc.v1.Batch");
                op["response"] = response;
            }
            Some("FAILED") => {
                op["done"] = json!(true);
                op["error"] = json!({"code": 9, "message": "Batch failed"});
            }
            Some("CANCELLED") => {
                op["done"] = json!(true);
                op["error"] = json!({"code": 1, "message": "Operation was cancelled"});
            }
            _ => op["done"] = json!(false),
        }
        op
    }
}

impl SimRun {
    /// The entry Dataproc's logs hold for the job (`cloud_dataproc_job`) or batch
    /// (`cloud_dataproc_batch`) as it reaches `state`, if that is not the state its last
    /// entry was for. Dataproc documents no state-change entry: the entry names the run in
    /// its resource labels, which is all that tether reads of it.
    fn log_entry(&mut self, state: String, batch: bool) -> Option<Value> {
        if self.emitted.as_deref() == Some(state.as_str()) {
            return None;
        }
        self.emitted = Some(state.clone());
        let (resource, labels) = if batch {
            let labels = json!({"project_id": self.project, "location": self.region,
                                "batch_id": self.id, "batch_uuid": self.uuid});
            ("cloud_dataproc_batch", labels)
        } else {
            let labels = json!({"project_id": self.project, "region": self.region,
                                "job_id": self.id, "job_uuid": self.uuid});
            ("cloud_dataproc_job", labels)
        };
        Some(json!({
            "jsonPayload": {"message": format!("{} {} is {state}",
                if batch { "Batch" } else { "Job" }, self.id)},
            "resource": {"type": resource, "labels": labels},
            "logName": format!("projects/{}/logs/dataproc.googleapis.com%2F{}",
                self.project, if batch { "batch_events" } else { "job_events" }),
            "severity": if matches!(state.as_str(), "ERROR" | "FAILED") { "ERROR" } else { "INFO" },
        }))
    }
}

/// The jobs and batches.
#[derive(Debug, Default)]
pub(super) struct Runs {
    /// Jobs by (project, job id): an id is unique within the project.
    jobs: HashMap<(String, String), SimRun>,
    /// Batches by (project, location, batch id).
    batches: HashMap<(String, String, String), SimRun>,
    /// Creation order of each: lists walk them newest first.
    job_order: Vec<(String, String)>,
    batch_order: Vec<(String, String, String)>,
    /// Request ids seen, by project: the job (id) or batch each made.
    job_requests: HashMap<(String, String), String>,
    batch_requests: HashMap<(String, String), (String, String, String)>,
}

impl Runs {
    /// The log entries of the jobs and batches whose state changed since their last entry,
    /// each with its kind.
    pub(super) fn log_entries(
        &mut self,
        config: &SimConfig,
        now: Instant,
    ) -> Vec<(&'static str, Value)> {
        let jobs = self.jobs.values_mut().filter_map(|r| {
            let state = r.job_state(config, now);
            r.log_entry(state, false)
                .map(|e| (crate::dataproc::JOB_KIND, e))
        });
        let mut out: Vec<_> = jobs.collect();
        out.extend(self.batches.values_mut().filter_map(|r| {
            let state = r.batch_state(config, now);
            r.log_entry(state, true)
                .map(|e| (crate::dataproc::BATCH_KIND, e))
        }));
        out
    }

    pub(super) fn by_handle(&self, handle: &Handle) -> Option<&SimRun> {
        let project = handle.get_str("project")?;
        if let Some(id) = handle.get_str("batch_id") {
            return self.batches.get(&(project, handle.get_str("region")?, id));
        }
        self.jobs
            .get(&(project, handle.get_str("job_id")?))
            .filter(|j| handle.get_str("region").as_deref() == Some(j.region.as_str()))
    }

    pub(super) fn by_handle_mut(&mut self, handle: &Handle) -> Option<&mut SimRun> {
        let project = handle.get_str("project")?;
        if let Some(id) = handle.get_str("batch_id") {
            return self
                .batches
                .get_mut(&(project, handle.get_str("region")?, id));
        }
        handle.get_str("region")?;
        self.jobs.get_mut(&(project, handle.get_str("job_id")?))
    }

    /// Forgets the job or batch, as if deleted.
    pub(super) fn forget(&mut self, handle: &Handle) -> bool {
        let Some(project) = handle.get_str("project") else {
            return false;
        };
        if let (Some(id), Some(region)) = (handle.get_str("batch_id"), handle.get_str("region")) {
            return self.batches.remove(&(project, region, id)).is_some();
        }
        handle
            .get_str("job_id")
            .is_some_and(|id| self.jobs.remove(&(project, id)).is_some())
    }
}

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/v1/projects/{project}/regions/{region}/jobs:submit",
            post(submit_job),
        )
        .route(
            "/v1/projects/{project}/regions/{region}/jobs",
            get(list_jobs),
        )
        .route(
            "/v1/projects/{project}/regions/{region}/jobs/{job}",
            get(get_job).post(cancel_job),
        )
        .route(
            "/v1/projects/{project}/locations/{location}/batches",
            post(create_batch).get(list_batches),
        )
        .route(
            "/v1/projects/{project}/locations/{location}/batches/{batch}",
            get(get_batch),
        )
        .route(
            "/v1/projects/{project}/regions/{region}/operations/{operation}",
            get(get_operation).post(cancel_operation),
        )
}

/// Google's 400 `INVALID_ARGUMENT` (the reason a Dataproc error carries in `errors`, kept for
/// the shape).
fn invalid(message: impl Into<String>) -> Refusal {
    error(StatusCode::BAD_REQUEST, "badRequest", message).into()
}

fn not_found(what: &str) -> Refusal {
    error(
        StatusCode::NOT_FOUND,
        "notFound",
        format!("Not found: {what}"),
    )
    .into()
}

/// A request or job id: 1 to `max` letters, digits, `_` and `-`.
fn valid_id(id: &str, max: usize) -> bool {
    !id.is_empty()
        && id.len() <= max
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

const JOB_TYPES: [&str; 10] = [
    "hadoopJob",
    "sparkJob",
    "pysparkJob",
    "hiveJob",
    "pigJob",
    "sparkRJob",
    "sparkSqlJob",
    "prestoJob",
    "trinoJob",
    "flinkJob",
];
const BATCH_TYPES: [&str; 5] = [
    "pysparkBatch",
    "sparkBatch",
    "sparkRBatch",
    "sparkSqlBatch",
    "pysparkNotebookBatch",
];

fn new_run(config: &SimConfig, project: &str, region: &str, id: &str, body: Value) -> SimRun {
    SimRun {
        project: project.into(),
        region: region.into(),
        id: id.into(),
        uuid: format!("{:032x}", rand::random::<u128>()),
        body,
        created: Instant::now(),
        created_ms: super::now_ms(),
        pending: config.pending,
        running: config.running,
        fails: config.outcome.is_some(),
        cancelled_at: None,
        ended_at: None,
        forced: None,
        hidden: false,
        operation: format!("{:032x}", rand::random::<u128>()),
        emitted: None,
    }
}

async fn submit_job(
    State(inner): State<Shared>,
    Path((project, region)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Answer {
    let after = gate(&inner, &headers, Endpoint::Insert).await?;
    let body: Value = serde_json::from_str(&body)
        .map_err(|e| invalid(format!("Invalid JSON payload received. {e}")))?;
    let mut job = body
        .get("job")
        .filter(|j| j.is_object())
        .cloned()
        .ok_or_else(|| invalid("job: required"))?;
    let request_id = body["requestId"].as_str().unwrap_or("").to_string();
    if !request_id.is_empty() && !valid_id(&request_id, 40) {
        return Err(invalid(format!(
            "requestId {request_id:?}: at most 40 letters, digits, underscores and hyphens"
        )));
    }
    if JOB_TYPES.iter().filter(|t| job.get(**t).is_some()).count() != 1 {
        return Err(invalid(
            "job: exactly one job type (pysparkJob, sparkJob, ...) is required",
        ));
    }
    let cluster = job["placement"]["clusterName"]
        .as_str()
        .unwrap_or("")
        .to_string();
    if cluster.is_empty() && !job["placement"]["clusterLabels"].is_object() {
        return Err(invalid("job.placement.clusterName: required"));
    }
    if cluster.starts_with("no-such") {
        return Err(not_found(&format!(
            "Cluster projects/{project}/regions/{region}/clusters/{cluster}"
        )));
    }
    if let Some(p) = job["reference"]["projectId"].as_str() {
        if p != project {
            return Err(invalid(format!(
                "job.reference.projectId {p:?} must be the request's project {project:?}"
            )));
        }
    }
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let inner_ref = &mut *guard;
    let now = Instant::now();
    if let Some(first) = inner_ref
        .runs
        .job_requests
        .get(&(project.clone(), request_id.clone()))
    {
        // The second request is ignored and the first job returned, whatever it asked.
        if let Some(run) = inner_ref.runs.jobs.get(&(project.clone(), first.clone())) {
            let answer = run.job(&inner_ref.config, now, false);
            drop(guard);
            return Ok(respond_after(after, Json(answer).into_response()));
        }
    }
    let id = match job["reference"]["jobId"].as_str() {
        Some(id) if valid_id(id, 100) => id.to_string(),
        Some(id) => {
            return Err(invalid(format!(
                "job.reference.jobId {id:?}: at most 100 letters, digits, underscores and hyphens"
            )))
        }
        None => format!("{:032x}", rand::random::<u128>()),
    };
    let key = (project.clone(), id.clone());
    if inner_ref.runs.jobs.contains_key(&key) {
        return Err(error(
            StatusCode::CONFLICT,
            "alreadyExists",
            format!("Already exists: Failed to submit job: Job projects/{project}/regions/{region}/jobs/{id}"),
        ).into());
    }
    if let Some(obj) = job.as_object_mut() {
        obj.remove("status");
    }
    let run = new_run(&inner_ref.config, &project, &region, &id, job);
    let answer = run.job(&inner_ref.config, now, false);
    inner_ref
        .harness
        .counters
        .job_made((!request_id.is_empty()).then_some(request_id.as_str()));
    if !request_id.is_empty() {
        inner_ref
            .runs
            .job_requests
            .insert((project.clone(), request_id), id.clone());
    }
    inner_ref.runs.job_order.push(key.clone());
    inner_ref.runs.jobs.insert(key, run);
    drop(guard);
    Ok(respond_after(after, Json(answer).into_response()))
}

async fn get_job(
    State(inner): State<Shared>,
    Path((project, region, job)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Answer {
    gate(&inner, &headers, Endpoint::Get).await?;
    let guard = inner.lock().expect("simulator mutex poisoned");
    let now = Instant::now();
    let run = guard
        .runs
        .jobs
        .get(&(project.clone(), job.clone()))
        .filter(|r| r.region == region && r.readable(&guard.config, &guard.harness.lifetimes, now))
        .ok_or_else(|| {
            not_found(&format!(
                "Job projects/{project}/regions/{region}/jobs/{job}"
            ))
        })?;
    Ok(Json(run.job(&guard.config, now, false)).into_response())
}

/// `POST .../jobs/{job}:cancel` (the route takes the whole segment).
async fn cancel_job(
    State(inner): State<Shared>,
    Path((project, region, job)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Answer {
    let Some(job) = job.strip_suffix(":cancel").map(str::to_string) else {
        return Err(error(StatusCode::NOT_FOUND, "notFound", "no such method").into());
    };
    let after = gate(&inner, &headers, Endpoint::Cancel).await?;
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let inner_ref = &mut *guard;
    let now = Instant::now();
    let (config, lifetimes) = (&inner_ref.config, inner_ref.harness.lifetimes);
    let run = inner_ref
        .runs
        .jobs
        .get_mut(&(project.clone(), job.clone()))
        .filter(|r| r.region == region && r.readable(config, &lifetimes, now))
        .ok_or_else(|| {
            not_found(&format!(
                "Job projects/{project}/regions/{region}/jobs/{job}"
            ))
        })?;
    let state = run.job_state(config, now);
    if matches!(state.as_str(), "DONE" | "ERROR" | "CANCELLED") {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "failedPrecondition",
            format!(
                "Cannot cancel jobId '{job}' in projectId '{project}': job is in state {state}"
            ),
        )
        .into());
    }
    if run.cancelled_at.is_none() {
        run.cancelled_at = Some(now);
        inner_ref.harness.counters.cancelled();
    }
    let answer = run.job(config, now, false);
    drop(guard);
    Ok(respond_after(after, Json(answer).into_response()))
}

/// The jobs list's filter: `status.state = ACTIVE|NON_ACTIVE` and `labels.KEY = value|*`,
/// joined by `AND` (or spaces); anything else is refused, as Dataproc refuses it.
fn job_filter(filter: &str) -> Result<Vec<(String, String)>, String> {
    let mut clauses = Vec::new();
    let text = filter.replace(" AND ", "\u{0}");
    for clause in text.split('\u{0}').map(str::trim).filter(|c| !c.is_empty()) {
        let (field, value) = clause
            .split_once('=')
            .map(|(f, v)| (f.trim(), v.trim().trim_matches('"')))
            .ok_or_else(|| format!("Invalid filter {filter:?}: {clause:?} is not field = value"))?;
        let ok = match field {
            "status.state" => value == "ACTIVE" || value == "NON_ACTIVE",
            f => f.starts_with("labels.") && f.len() > 7,
        };
        if !ok {
            return Err(format!("Invalid filter {filter:?}: only status.state = ACTIVE|NON_ACTIVE and labels.KEY = value are supported"));
        }
        clauses.push((field.to_string(), value.to_string()));
    }
    Ok(clauses)
}

fn active_job_state(state: &str) -> bool {
    !matches!(state, "DONE" | "ERROR" | "CANCELLED")
}

async fn list_jobs(
    State(inner): State<Shared>,
    Path((project, region)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Answer {
    gate(&inner, &headers, Endpoint::List).await?;
    let params = params(&uri);
    let clauses = match param(&params, "filter") {
        Some(f) if !f.trim().is_empty() => job_filter(f).map_err(invalid)?,
        _ => match param(&params, "jobStateMatcher") {
            Some("ACTIVE" | "1") => vec![("status.state".into(), "ACTIVE".into())],
            Some("NON_ACTIVE" | "2") => vec![("status.state".into(), "NON_ACTIVE".into())],
            _ => Vec::new(),
        },
    };
    let (size, offset) = paging(&params, 10, 1000)?;
    let cluster = param(&params, "clusterName").map(str::to_string);
    let guard = inner.lock().expect("simulator mutex poisoned");
    let now = Instant::now();
    let (config, lifetimes) = (&guard.config, &guard.harness.lifetimes);
    let matching = guard
        .runs
        .job_order
        .iter()
        .rev()
        .filter_map(|k| guard.runs.jobs.get(k))
        .filter(|r| r.project == project && r.region == region && !r.hidden)
        .filter(|r| r.readable(config, lifetimes, now))
        .filter(|r| {
            cluster
                .as_ref()
                .is_none_or(|c| r.body["placement"]["clusterName"] == *c)
        })
        .filter(|r| {
            let state = r.job_state(config, now);
            clauses.iter().all(|(field, value)| match field.as_str() {
                "status.state" => active_job_state(&state) == (value == "ACTIVE"),
                label => {
                    let got = &r.body["labels"][&label[7..]];
                    got.is_string() && (value == "*" || got == value.as_str())
                }
            })
        });
    let (items, next) = page_of(matching, size, offset, |r| {
        r.job(config, now, config.lists_report_success)
    });
    let mut answer = json!({"jobs": items});
    if let Some(next) = next {
        answer["nextPageToken"] = json!(next);
    }
    Ok(Json(answer).into_response())
}

/// `pageSize` (default `default`, at most `max`) and the offset a `pageToken` names.
fn paging(
    params: &[(String, String)],
    default: usize,
    max: usize,
) -> Result<(usize, usize), Refusal> {
    let size = match param(params, "pageSize") {
        None => default,
        Some(s) => s
            .parse::<usize>()
            .map_err(|_| invalid(format!("Invalid pageSize {s:?}")))?
            .clamp(1, max),
    };
    let offset = match param(params, "pageToken") {
        None | Some("") => 0,
        Some(t) => t
            .parse()
            .map_err(|_| invalid(format!("Invalid page token {t:?}")))?,
    };
    Ok((size, offset))
}

/// One page of `all` from `offset`, and the next page's token if more follow.
fn page_of<'a>(
    all: impl Iterator<Item = &'a SimRun>,
    size: usize,
    offset: usize,
    show: impl Fn(&SimRun) -> Value,
) -> (Vec<Value>, Option<String>) {
    let mut items = Vec::new();
    for (i, run) in all.skip(offset).enumerate() {
        if i == size {
            return (items, Some((offset + size).to_string()));
        }
        items.push(show(run));
    }
    (items, None)
}

async fn create_batch(
    State(inner): State<Shared>,
    Path((project, location)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    body: String,
) -> Answer {
    let after = gate(&inner, &headers, Endpoint::Insert).await?;
    let params = params(&uri);
    let mut batch: Value = serde_json::from_str(&body)
        .map_err(|e| invalid(format!("Invalid JSON payload received. {e}")))?;
    if BATCH_TYPES
        .iter()
        .filter(|t| batch.get(**t).is_some())
        .count()
        != 1
    {
        return Err(invalid(
            "batch: exactly one batch type (pysparkBatch, sparkBatch, ...) is required",
        ));
    }
    let request_id = param(&params, "requestId").unwrap_or("").to_string();
    if !request_id.is_empty() && !valid_id(&request_id, 40) {
        return Err(invalid(format!(
            "requestId {request_id:?}: at most 40 letters, digits, underscores and hyphens"
        )));
    }
    let id = match param(&params, "batchId") {
        Some(id) => id.to_string(),
        None => format!("{:032x}", rand::random::<u128>()),
    };
    let id_ok = (4..=63).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !id_ok {
        return Err(invalid(format!(
            "batchId {id:?}: 4 to 63 characters of /[a-z][0-9]-/"
        )));
    }
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let inner_ref = &mut *guard;
    let now = Instant::now();
    if let Some(first) = inner_ref
        .runs
        .batch_requests
        .get(&(project.clone(), request_id.clone()))
    {
        if let Some(run) = inner_ref.runs.batches.get(first) {
            let answer = run.operation(&inner_ref.config, now);
            drop(guard);
            return Ok(respond_after(after, Json(answer).into_response()));
        }
    }
    let key = (project.clone(), location.clone(), id.clone());
    if inner_ref.runs.batches.contains_key(&key) {
        return Err(error(
            StatusCode::CONFLICT,
            "alreadyExists",
            format!("Already exists: Failed to create batch: Batch projects/{project}/locations/{location}/batches/{id}"),
        ).into());
    }
    if let Some(obj) = batch.as_object_mut() {
        for output in [
            "name",
            "uuid",
            "state",
            "createTime",
            "operation",
            "stateHistory",
        ] {
            obj.remove(output);
        }
    }
    let run = new_run(&inner_ref.config, &project, &location, &id, batch);
    let answer = run.operation(&inner_ref.config, now);
    inner_ref
        .harness
        .counters
        .job_made((!request_id.is_empty()).then_some(request_id.as_str()));
    if !request_id.is_empty() {
        inner_ref
            .runs
            .batch_requests
            .insert((project, request_id), key.clone());
    }
    inner_ref.runs.batch_order.push(key.clone());
    inner_ref.runs.batches.insert(key, run);
    drop(guard);
    Ok(respond_after(after, Json(answer).into_response()))
}

async fn get_batch(
    State(inner): State<Shared>,
    Path((project, location, batch)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Answer {
    gate(&inner, &headers, Endpoint::Get).await?;
    let guard = inner.lock().expect("simulator mutex poisoned");
    let now = Instant::now();
    let run = guard
        .runs
        .batches
        .get(&(project.clone(), location.clone(), batch.clone()))
        .filter(|r| r.readable(&guard.config, &guard.harness.lifetimes, now))
        .ok_or_else(|| {
            not_found(&format!(
                "Batch projects/{project}/locations/{location}/batches/{batch}"
            ))
        })?;
    Ok(Json(run.batch(&guard.config, now, false)).into_response())
}

/// The batch whose operation is `operation` in `project` and `region`.
fn by_operation<'a>(
    batches: &'a mut HashMap<(String, String, String), SimRun>,
    project: &str,
    region: &str,
    operation: &str,
) -> Option<&'a mut SimRun> {
    batches
        .values_mut()
        .find(|r| r.project == project && r.region == region && r.operation == operation)
}

async fn get_operation(
    State(inner): State<Shared>,
    Path((project, region, operation)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Answer {
    gate(&inner, &headers, Endpoint::Get).await?;
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let inner_ref = &mut *guard;
    let run = by_operation(&mut inner_ref.runs.batches, &project, &region, &operation).ok_or_else(
        || {
            not_found(&format!(
                "Operation projects/{project}/regions/{region}/operations/{operation}"
            ))
        },
    )?;
    Ok(Json(run.operation(&inner_ref.config, Instant::now())).into_response())
}

/// `POST .../operations/{operation}:cancel`: a batch's cancel. Answers `{}`.
async fn cancel_operation(
    State(inner): State<Shared>,
    Path((project, region, operation)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Answer {
    let Some(operation) = operation.strip_suffix(":cancel").map(str::to_string) else {
        return Err(error(StatusCode::NOT_FOUND, "notFound", "no such method").into());
    };
    let after = gate(&inner, &headers, Endpoint::Cancel).await?;
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let inner_ref = &mut *guard;
    let now = Instant::now();
    let config = &inner_ref.config;
    let run = by_operation(&mut inner_ref.runs.batches, &project, &region, &operation)
        .filter(|r| r.readable(config, &inner_ref.harness.lifetimes, now))
        .ok_or_else(|| {
            not_found(&format!(
                "Operation projects/{project}/regions/{region}/operations/{operation}"
            ))
        })?;
    let state = run.batch_state(config, now);
    if matches!(state.as_str(), "SUCCEEDED" | "FAILED" | "CANCELLED") {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "failedPrecondition",
            format!("Cannot cancel batch {} in state {state}", run.id),
        )
        .into());
    }
    if run.cancelled_at.is_none() {
        run.cancelled_at = Some(now);
        inner_ref.harness.counters.cancelled();
    }
    drop(guard);
    Ok(respond_after(after, Json(json!({})).into_response()))
}

/// One comparison of a batches filter.
fn compare(
    run: &SimRun,
    config: &SimConfig,
    now: Instant,
    field: &str,
    op: &str,
    value: &str,
) -> Result<bool, String> {
    let got = match field {
        "state" => run.batch_state(config, now),
        "create_time" => run.rfc3339(run.created),
        "batch_id" => run.id.clone(),
        "batch_uuid" => run.uuid.clone(),
        f if f.starts_with("labels.") => run.body["labels"][&f[7..]].as_str().unwrap_or("").to_string(),
        f => return Err(format!("Invalid filter: unsupported field {f:?} (batch_id, batch_uuid, state, create_time, labels)")),
    };
    let ord = got.as_str().cmp(value);
    Ok(match op {
        "=" => ord.is_eq(),
        "!=" => !ord.is_eq(),
        "<" => ord.is_lt(),
        "<=" => ord.is_le(),
        ">" => ord.is_gt(),
        ">=" => ord.is_ge(),
        other => return Err(format!("Invalid filter: unsupported operator {other:?}")),
    })
}

/// The tokens of an AIP-160 filter: `(`, `)`, words, operators and quoted strings.
fn tokens(filter: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = filter.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' || c == ')' {
            out.push(c.to_string());
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut s = String::from("\"");
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some(ch) => s.push(ch),
                    None => return Err(format!("Invalid filter {filter:?}: an unclosed string")),
                }
            }
            out.push(s);
        } else if "<>=!".contains(c) {
            let mut op = String::new();
            while let Some(&ch) = chars.peek().filter(|ch| "<>=!".contains(**ch)) {
                op.push(ch);
                chars.next();
            }
            out.push(op);
        } else {
            let mut w = String::new();
            while let Some(&ch) = chars
                .peek()
                .filter(|ch| !ch.is_whitespace() && !"()<>=!\"".contains(**ch))
            {
                w.push(ch);
                chars.next();
            }
            out.push(w);
        }
    }
    Ok(out)
}

/// Evaluates an AIP-160 filter (`AND` of `OR`s of comparisons or parenthesised filters; `OR`
/// binds tighter than `AND`, as AIP-160 says) on a batch.
fn matches_filter(
    run: &SimRun,
    config: &SimConfig,
    now: Instant,
    t: &[String],
) -> Result<bool, String> {
    fn expr(
        r: &SimRun,
        c: &SimConfig,
        n: Instant,
        t: &[String],
        i: &mut usize,
    ) -> Result<bool, String> {
        let mut all = seq(r, c, n, t, i)?;
        while t.get(*i).is_some_and(|w| w == "AND") {
            *i += 1;
            all &= seq(r, c, n, t, i)?;
        }
        Ok(all)
    }
    fn seq(
        r: &SimRun,
        c: &SimConfig,
        n: Instant,
        t: &[String],
        i: &mut usize,
    ) -> Result<bool, String> {
        let mut any = factor(r, c, n, t, i)?;
        while t.get(*i).is_some_and(|w| w == "OR") {
            *i += 1;
            any |= factor(r, c, n, t, i)?;
        }
        Ok(any)
    }
    fn factor(
        r: &SimRun,
        c: &SimConfig,
        n: Instant,
        t: &[String],
        i: &mut usize,
    ) -> Result<bool, String> {
        if t.get(*i).is_some_and(|w| w == "(") {
            *i += 1;
            let v = expr(r, c, n, t, i)?;
            if t.get(*i).is_none_or(|w| w != ")") {
                return Err("Invalid filter: a ( without its )".into());
            }
            *i += 1;
            return Ok(v);
        }
        let (Some(field), Some(op), Some(value)) = (t.get(*i), t.get(*i + 1), t.get(*i + 2)) else {
            return Err("Invalid filter: a comparison is field op value".into());
        };
        *i += 3;
        compare(r, c, n, field, op, value.trim_start_matches('"'))
    }
    let mut i = 0;
    let v = expr(run, config, now, t, &mut i)?;
    if i != t.len() {
        return Err(format!("Invalid filter: unexpected {:?}", t[i]));
    }
    Ok(v)
}

async fn list_batches(
    State(inner): State<Shared>,
    Path((project, location)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Answer {
    gate(&inner, &headers, Endpoint::List).await?;
    let params = params(&uri);
    let filter = match param(&params, "filter") {
        Some(f) if !f.trim().is_empty() => Some(tokens(f).map_err(invalid)?),
        _ => None,
    };
    match param(&params, "orderBy") {
        None | Some("") | Some("create_time desc") => {}
        Some(o) => {
            return Err(invalid(format!(
                "Invalid orderBy {o:?}: only \"create_time desc\" is supported"
            )))
        }
    }
    let (size, offset) = paging(&params, 20, 1000)?;
    let guard = inner.lock().expect("simulator mutex poisoned");
    let now = Instant::now();
    let (config, lifetimes) = (&guard.config, &guard.harness.lifetimes);
    let mut matching = Vec::new();
    for run in guard
        .runs
        .batch_order
        .iter()
        .rev()
        .filter_map(|k| guard.runs.batches.get(k))
    {
        if run.project != project
            || run.region != location
            || run.hidden
            || !run.readable(config, lifetimes, now)
        {
            continue;
        }
        if let Some(t) = &filter {
            if !matches_filter(run, config, now, t).map_err(invalid)? {
                continue;
            }
        }
        matching.push(run);
    }
    let (items, next) = page_of(matching.into_iter(), size, offset, |r| {
        r.batch(config, now, config.lists_report_success)
    });
    let mut answer = json!({"batches": items});
    if let Some(next) = next {
        answer["nextPageToken"] = json!(next);
    }
    Ok(Json(answer).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jobs_filter_takes_state_and_labels_only() {
        assert_eq!(job_filter("status.state = ACTIVE").unwrap().len(), 1);
        assert_eq!(
            job_filter("status.state = NON_ACTIVE AND labels.env = prod")
                .unwrap()
                .len(),
            2
        );
        assert!(job_filter("status.state = RUNNING").is_err());
        assert!(job_filter("insert_time > 5").is_err());
    }

    #[test]
    fn filters_tokenize() {
        let t = tokens(
            "(state = PENDING OR state=RUNNING) AND create_time >= \"2026-01-01T00:00:00Z\"",
        )
        .unwrap();
        assert_eq!(
            t,
            [
                "(",
                "state",
                "=",
                "PENDING",
                "OR",
                "state",
                "=",
                "RUNNING",
                ")",
                "AND",
                "create_time",
                ">=",
                "\"2026-01-01T00:00:00Z"
            ]
        );
        assert!(tokens("state = \"x").is_err());
    }
}
