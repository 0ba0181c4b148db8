//! BigQuery's jobs API, simulated: `jobs.insert`, `jobs.get`, `jobs.list`, `jobs.cancel`
//! under `/bigquery/v2/projects/{project}/jobs`, with the service's hard edges (see
//! `src/edges.rs`): the caller's job id, a second insert of it answered 409 `duplicate`
//! whatever became of the first job; a job outside the `US` and `EU` multi-regions read only
//! with its location; lists filtered by state and creation time only, newest first, with
//! `state` and `errorResult` at the entry's top level (and `status` too with
//! `projection=full`, as Google's clients read it); a cancel answered at once.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tether_provider::registry::SimJobState;
use tether_provider::sim::Lifetimes;
use tether_provider::Handle;

use super::{error, gate, invalid, respond_after, Answer, Endpoint, Refusal, Shared, SimConfig};

/// The configurations a job has exactly one of, with the `jobType` each gives.
const CONFIGURATIONS: [(&str, &str); 4] = [
    ("query", "QUERY"),
    ("load", "LOAD"),
    ("extract", "EXTRACT"),
    ("copy", "COPY"),
];

/// A simulated job.
#[derive(Debug)]
pub(super) struct SimJob {
    project: String,
    location: String,
    job_id: String,
    configuration: Value,
    created: Instant,
    created_ms: i64,
    pending: Duration,
    running: Duration,
    outcome: Option<String>,
    cancelled_at: Option<Instant>,
    /// Ended now by `/_sim/jobs/end`.
    ended_at: Option<Instant>,
    /// The raw state it reports whatever its schedule says (`DONE/reason` for an error).
    pub(super) forced: Option<String>,
    /// Left out of `jobs.list`.
    pub(super) hidden: bool,
    /// The state its last log entry was made for (`events.rs`).
    emitted: Option<String>,
    /// When a client last read it (`jobs.get`, `jobs.list`): what `?fresh_within` counts.
    /// (A cell: reads hold the simulator's lock shared among the jobs they walk.)
    last_seen: std::cell::Cell<Option<Instant>>,
}

/// Where a job stands at a moment: state, error reason, and when it started and ended.
struct Standing {
    state: String,
    reason: Option<String>,
    started: Option<Instant>,
    ended: Option<Instant>,
}

impl SimJob {
    fn standing(&self, config: &SimConfig, now: Instant) -> Standing {
        if let Some(raw) = &self.forced {
            let (state, reason) = match raw.split_once('/') {
                Some((s, r)) => (s.to_string(), Some(r.to_string())),
                None => (raw.clone(), None),
            };
            let ended = (state == "DONE").then_some(now);
            return Standing {
                state,
                reason,
                started: Some(self.created),
                ended,
            };
        }
        let started = self.created + self.pending;
        let mut end = started + self.running;
        let mut reason = self.outcome.clone();
        if let Some(early) = self.ended_at.filter(|e| *e < end) {
            end = early;
        }
        if let Some(stop) = self.cancelled_at.map(|c| c + config.cancel_takes) {
            if stop < end {
                end = stop;
                reason = Some("stopped".into());
            }
        }
        if now >= end {
            Standing {
                state: "DONE".into(),
                reason,
                started: Some(started.min(end)),
                ended: Some(end),
            }
        } else if now >= started {
            Standing {
                state: "RUNNING".into(),
                reason: None,
                started: Some(started),
                ended: None,
            }
        } else {
            Standing {
                state: "PENDING".into(),
                reason: None,
                started: None,
                ended: None,
            }
        }
    }

    /// How the job truly stands (for the registry's `job_state`): a job whose cancel was
    /// accepted before it ended is cancelled, though its API still reads it running for
    /// `cancel_takes` (as BigQuery's cancel "will return immediately").
    pub(super) fn truth(&self, config: &SimConfig, now: Instant) -> SimJobState {
        if let Some(at) = self.cancelled_at {
            if self.forced.is_none() && self.standing(config, at).state != "DONE" {
                return SimJobState::Cancelled;
            }
        }
        let s = self.standing(config, now);
        match (s.state.as_str(), s.reason.as_deref()) {
            ("DONE", None) => SimJobState::Succeeded,
            ("DONE", Some("stopped")) => SimJobState::Cancelled,
            ("DONE", Some(_)) => SimJobState::Failed,
            _ => SimJobState::Running,
        }
    }

    fn readable(&self, config: &SimConfig, lifetimes: &Lifetimes, now: Instant) -> bool {
        lifetimes.readable(self.created, self.standing(config, now).ended, now)
    }

    /// The job as `jobs.get` and `jobs.insert` answer it.
    fn resource(&self, config: &SimConfig, now: Instant) -> Value {
        let s = self.standing(config, now);
        let mut status = json!({"state": s.state});
        if let Some(reason) = &s.reason {
            let error = error_result(reason);
            status["errorResult"] = error.clone();
            status["errors"] = json!([error]);
        }
        let mut configuration = self.configuration.clone();
        configuration["jobType"] = json!(self.job_type());
        json!({
            "kind": "bigquery#job",
            "etag": format!("\"{:x}\"", self.created_ms),
            "id": self.full_id(),
            "selfLink": format!("/bigquery/v2/projects/{}/jobs/{}?location={}", self.project, self.job_id, self.location),
            "user_email": super::CLIENT_EMAIL,
            "jobReference": self.reference(),
            "configuration": configuration,
            "status": status,
            "statistics": self.statistics(&s),
            "jobCreationReason": {"code": "REQUESTED"},
        })
    }

    /// The job as a `jobs.list` page lists it (`ListFormatJob`).
    fn listed(&self, config: &SimConfig, now: Instant, full: bool) -> Value {
        let mut s = self.standing(config, now);
        if config.lists_report_success {
            s.state = "DONE".into();
            s.reason = None;
            s.ended = Some(now);
        }
        let mut entry = json!({
            "id": self.full_id(),
            "kind": "bigquery#job",
            "jobReference": self.reference(),
            "state": s.state,
            "statistics": self.statistics(&s),
        });
        if let Some(reason) = &s.reason {
            entry["errorResult"] = error_result(reason);
        }
        if full {
            let mut configuration = self.configuration.clone();
            configuration["jobType"] = json!(self.job_type());
            entry["configuration"] = configuration;
            entry["status"] = json!({"state": entry["state"]});
            if let Some(e) = entry.get("errorResult").cloned() {
                entry["status"]["errorResult"] = e;
            }
            entry["user_email"] = json!(super::CLIENT_EMAIL);
        }
        entry
    }

    fn reference(&self) -> Value {
        json!({"projectId": self.project, "jobId": self.job_id, "location": self.location})
    }

    /// `project:LOCATION.jobId`, as BigQuery names a job in `id` and in its messages.
    fn full_id(&self) -> String {
        format!("{}:{}.{}", self.project, self.location, self.job_id)
    }

    fn job_type(&self) -> &'static str {
        CONFIGURATIONS
            .iter()
            .find(|(k, _)| self.configuration.get(*k).is_some())
            .map_or("UNKNOWN", |(_, t)| t)
    }

    fn statistics(&self, s: &Standing) -> Value {
        let ms = |at: Instant| {
            let offset = at.saturating_duration_since(self.created).as_millis() as i64;
            (self.created_ms + offset).to_string()
        };
        let mut stats = json!({"creationTime": self.created_ms.to_string()});
        if let Some(at) = s.started {
            stats["startTime"] = json!(ms(at));
        }
        if let Some(at) = s.ended {
            stats["endTime"] = json!(ms(at));
        }
        stats
    }
}

impl SimJob {
    /// The audit log entry BigQuery writes as the job reaches its state at `now`, if that
    /// is not the state its last entry was for (`BigQueryAuditMetadata.jobChange`).
    fn job_change(&mut self, config: &SimConfig, now: Instant) -> Option<Value> {
        let s = self.standing(config, now);
        let raw = match &s.reason {
            Some(reason) => format!("{}/{reason}", s.state),
            None => s.state.clone(),
        };
        if self.emitted.as_deref() == Some(raw.as_str()) {
            return None;
        }
        let before = self.emitted.replace(raw);
        let before = before.as_deref().map(|b| b.split('/').next().unwrap_or(b));
        let mut status = json!({"jobState": s.state});
        if let Some(reason) = &s.reason {
            status["errorResult"] = json!({"code": 1, "message": error_result(reason)["message"]});
        }
        Some(json!({
            "protoPayload": {
                "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                "serviceName": "bigquery.googleapis.com",
                "methodName": "google.cloud.bigquery.v2.JobService.InsertJob",
                "resourceName": format!("projects/{}/jobs/{}", self.project, self.job_id),
                "metadata": {
                    "@type": "type.googleapis.com/google.cloud.audit.BigQueryAuditMetadata",
                    "jobChange": {
                        "before": before.unwrap_or("JOB_STATE_UNSPECIFIED"),
                        "after": s.state,
                        "job": {
                            "jobName": format!("projects/{}/jobs/{}", self.project, self.job_id),
                            "jobConfig": {"type": self.job_type()},
                            "jobStatus": status,
                        },
                    },
                },
            },
            "resource": {"type": "bigquery_project",
                         "labels": {"project_id": self.project, "location": self.location}},
            "logName": format!("projects/{}/logs/cloudaudit.googleapis.com%2Fdata_access", self.project),
            "severity": "INFO",
        }))
    }
}

impl Jobs {
    /// How many jobs are not done, and how many of those a client read within `within`.
    pub(super) fn freshness(
        &self,
        config: &SimConfig,
        now: Instant,
        within: Duration,
    ) -> (u64, u64) {
        let active = self
            .by_id
            .values()
            .filter(|j| j.standing(config, now).state != "DONE");
        let (mut all, mut fresh) = (0, 0);
        for job in active {
            all += 1;
            if job
                .last_seen
                .get()
                .is_some_and(|s| now.duration_since(s) <= within)
            {
                fresh += 1;
            }
        }
        (all, fresh)
    }

    /// The log entries of the jobs whose state changed since their last entry.
    pub(super) fn log_entries(&mut self, config: &SimConfig, now: Instant) -> Vec<Value> {
        self.by_id
            .values_mut()
            .filter_map(|j| j.job_change(config, now))
            .collect()
    }
}

/// An `ErrorProto` for `reason`.
fn error_result(reason: &str) -> Value {
    let message = match reason {
        "stopped" => "Job execution was cancelled: User requested cancellation".to_string(),
        "timeout" => "Job timed out after the jobTimeoutMs.".to_string(),
        other => format!("The job failed ({other})."),
    };
    json!({"reason": reason, "message": message})
}

/// The jobs, by project and id, in creation order.
#[derive(Debug, Default)]
pub(super) struct Jobs {
    by_id: HashMap<(String, String), SimJob>,
    /// (project, job id), oldest first: lists walk it backwards.
    order: Vec<(String, String)>,
    /// Every (project, job id) ever made: a forgotten job's id stays taken.
    taken: HashSet<(String, String)>,
}

impl Jobs {
    fn key_of(handle: &Handle) -> Option<(String, String)> {
        Some((handle.get_str("project")?, handle.get_str("job_id")?))
    }

    pub(super) fn by_handle(&self, handle: &Handle) -> Option<&SimJob> {
        self.by_id.get(&Self::key_of(handle)?)
    }

    pub(super) fn by_handle_mut(&mut self, handle: &Handle) -> Option<&mut SimJob> {
        self.by_id.get_mut(&Self::key_of(handle)?)
    }

    /// Forgets the job, as if it aged out of BigQuery's six months (its id stays taken).
    pub(super) fn forget(&mut self, handle: &Handle) -> bool {
        Self::key_of(handle).is_some_and(|k| self.by_id.remove(&k).is_some())
    }
}

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/bigquery/v2/projects/{project}/jobs",
            post(insert).get(list),
        )
        .route(
            "/bigquery/v2/projects/{project}/jobs/{job_id}",
            get(get_job),
        )
        .route(
            "/bigquery/v2/projects/{project}/jobs/{job_id}/cancel",
            post(cancel),
        )
}

/// The query's parameters, repeated ones kept (`stateFilter=pending&stateFilter=running`),
/// decoded.
pub(super) fn params(uri: &Uri) -> Vec<(String, String)> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

pub(super) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Whether `id` is a job id BigQuery takes.
fn valid_job_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Whether labels follow BigQuery's rules: at most 64; keys of 1 to 63 lowercase letters,
/// digits, `_` and `-`, starting with a letter; values of at most 63 of the same.
fn check_labels(labels: &Value) -> Result<(), String> {
    let Some(labels) = labels.as_object() else {
        return Err("Invalid value for labels: must be a map".into());
    };
    if labels.len() > 64 {
        return Err("Too many labels (at most 64)".into());
    }
    let word = |s: &str| {
        s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    };
    for (k, v) in labels {
        let v = v.as_str().unwrap_or("\u{0}");
        if k.is_empty() || !k.starts_with(|c: char| c.is_ascii_lowercase()) || !word(k) || !word(v)
        {
            return Err(format!("Invalid label: {k}={v}"));
        }
    }
    Ok(())
}

/// A job outside the `US` and `EU` multi-regions is found only with its location; any job
/// is not found with another location.
fn located(job: &SimJob, asked: Option<&str>) -> bool {
    match asked {
        Some(l) if !l.is_empty() => l.eq_ignore_ascii_case(&job.location),
        _ => ["US", "EU"]
            .iter()
            .any(|m| m.eq_ignore_ascii_case(&job.location)),
    }
}

fn not_found(project: &str, job_id: &str) -> Refusal {
    error(
        StatusCode::NOT_FOUND,
        "notFound",
        format!("Not found: Job {project}:{job_id}"),
    )
    .into()
}

async fn insert(
    State(inner): State<Shared>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Answer {
    let after = gate(&inner, &headers, Endpoint::Insert).await?;
    let body: Value = serde_json::from_str(&body)
        .map_err(|e| invalid(format!("Invalid JSON payload received. {e}")))?;
    let configuration = body
        .get("configuration")
        .filter(|c| c.is_object())
        .ok_or_else(|| invalid("Required parameter is missing: configuration"))?
        .clone();
    let kinds = CONFIGURATIONS
        .iter()
        .filter(|(k, _)| configuration.get(*k).is_some())
        .count();
    if kinds != 1 {
        return Err(invalid(
            "Invalid value for configuration: exactly one of query, load, extract, copy",
        ));
    }
    if let Some(labels) = configuration.get("labels") {
        check_labels(labels).map_err(invalid)?;
    }
    let reference = &body["jobReference"];
    if let Some(p) = reference["projectId"].as_str() {
        if p != project {
            return Err(invalid(format!(
                "Invalid project ID '{p}'. The project in the job reference must be the project the request is made in ({project})."
            )));
        }
    }
    let location = reference["location"].as_str().unwrap_or("US").to_string();
    let job_id = match reference["jobId"].as_str() {
        Some(id) if valid_job_id(id) => id.to_string(),
        Some(id) => {
            return Err(invalid(format!(
                "Invalid job ID \"{id}\". Job IDs must be alphanumeric (plus underscores and dashes) and must be at most 1024 characters long."
            )))
        }
        None => format!("job_{:016x}", rand::random::<u64>()),
    };
    let dry_run = configuration.get("dryRun") == Some(&Value::Bool(true));
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let inner_ref = &mut *guard;
    let key = (project.clone(), job_id.clone());
    if !dry_run && inner_ref.jobs.taken.contains(&key) {
        let taken_in = inner_ref
            .jobs
            .by_id
            .get(&key)
            .map_or(location.as_str(), |j| j.location.as_str());
        return Err(error(
            StatusCode::CONFLICT,
            "duplicate",
            format!("Already Exists: Job {project}:{taken_in}.{job_id}"),
        )
        .into());
    }
    let now = Instant::now();
    let config = &inner_ref.config;
    let job = SimJob {
        project,
        location,
        job_id,
        configuration,
        created: now,
        created_ms: super::now_ms(),
        pending: config.pending,
        running: config.running,
        outcome: config.outcome.clone(),
        cancelled_at: None,
        ended_at: None,
        forced: None,
        hidden: false,
        emitted: None,
        last_seen: std::cell::Cell::new(None),
    };
    let answer = job.resource(config, now);
    if dry_run {
        return Ok(Json(answer).into_response());
    }
    inner_ref.harness.counters.job_made(Some(&job.job_id));
    inner_ref.jobs.taken.insert(key.clone());
    inner_ref.jobs.order.push(key.clone());
    inner_ref.jobs.by_id.insert(key, job);
    drop(guard);
    Ok(respond_after(after, Json(answer).into_response()))
}

async fn get_job(
    State(inner): State<Shared>,
    Path((project, job_id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Answer {
    gate(&inner, &headers, Endpoint::Get).await?;
    let params = params(&uri);
    let guard = inner.lock().expect("simulator mutex poisoned");
    let now = Instant::now();
    let job = guard
        .jobs
        .by_id
        .get(&(project.clone(), job_id.clone()))
        .filter(|j| j.readable(&guard.config, &guard.harness.lifetimes, now))
        .filter(|j| located(j, param(&params, "location")))
        .ok_or_else(|| not_found(&project, &job_id))?;
    job.last_seen.set(Some(now));
    Ok(Json(job.resource(&guard.config, now)).into_response())
}

async fn cancel(
    State(inner): State<Shared>,
    Path((project, job_id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Answer {
    let after = gate(&inner, &headers, Endpoint::Cancel).await?;
    let params = params(&uri);
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let inner_ref = &mut *guard;
    let now = Instant::now();
    let (config, lifetimes) = (&inner_ref.config, inner_ref.harness.lifetimes);
    let job = inner_ref
        .jobs
        .by_id
        .get_mut(&(project.clone(), job_id.clone()))
        .filter(|j| j.readable(config, &lifetimes, now))
        .filter(|j| located(j, param(&params, "location")))
        .ok_or_else(|| not_found(&project, &job_id))?;
    if job.standing(config, now).state != "DONE" && job.cancelled_at.is_none() {
        job.cancelled_at = Some(now);
        inner_ref.harness.counters.cancelled();
    }
    let answer = json!({"kind": "bigquery#jobCancelResponse", "job": job.resource(config, now)});
    drop(guard);
    Ok(respond_after(after, Json(answer).into_response()))
}

/// The states `stateFilter` takes.
const STATE_FILTERS: [(&str, &str); 3] = [
    ("done", "DONE"),
    ("pending", "PENDING"),
    ("running", "RUNNING"),
];

async fn list(
    State(inner): State<Shared>,
    Path(project): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Answer {
    gate(&inner, &headers, Endpoint::List).await?;
    let params = params(&uri);
    let mut states = Vec::new();
    for (k, v) in &params {
        match k.as_str() {
            "stateFilter" => match STATE_FILTERS
                .iter()
                .find(|(f, _)| f.eq_ignore_ascii_case(v))
            {
                Some((_, state)) => states.push(*state),
                None => return Err(invalid(format!("Invalid value for stateFilter: {v}"))),
            },
            "minCreationTime" | "maxCreationTime" | "maxResults" if v.parse::<i64>().is_err() => {
                return Err(invalid(format!("Invalid value for {k}: {v}")))
            }
            "projection" if v != "full" && v != "minimal" => {
                return Err(invalid(format!("Invalid value for projection: {v}")))
            }
            _ => {}
        }
    }
    let number = |name: &str| param(&params, name).and_then(|v| v.parse::<i64>().ok());
    let (min, max) = (number("minCreationTime"), number("maxCreationTime"));
    let page_size = number("maxResults").map_or(50, |n| n.clamp(1, 100_000) as usize);
    let offset = match param(&params, "pageToken") {
        None | Some("") => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| invalid(format!("Invalid page token: {t}")))?,
    };
    let full = param(&params, "projection") == Some("full");
    let guard = inner.lock().expect("simulator mutex poisoned");
    let now = Instant::now();
    let (config, lifetimes) = (&guard.config, &guard.harness.lifetimes);
    let matching = guard
        .jobs
        .order
        .iter()
        .rev()
        .filter(|(p, _)| *p == project)
        .filter_map(|k| guard.jobs.by_id.get(k))
        .filter(|j| !j.hidden && j.readable(config, lifetimes, now))
        .filter(|j| min.is_none_or(|m| j.created_ms >= m) && max.is_none_or(|m| j.created_ms <= m))
        .filter(|j| states.is_empty() || states.contains(&j.standing(config, now).state.as_str()));
    let mut jobs: Vec<Value> = Vec::new();
    let mut more = false;
    for (i, job) in matching.skip(offset).enumerate() {
        if i == page_size {
            more = true;
            break;
        }
        job.last_seen.set(Some(now));
        jobs.push(job.listed(config, now, full));
    }
    let mut page = json!({"kind": "bigquery#jobList", "etag": "\"sim\"", "jobs": jobs});
    if more {
        page["nextPageToken"] = json!((offset + page_size).to_string());
    }
    Ok(Json(page).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EndJobs {
    /// The jobs to end (their ids, in the simulator's project unless `project` says).
    job_ids: Vec<String>,
    #[serde(default)]
    project: Option<String>,
}

/// `POST /_sim/jobs/end`: ends the chosen running jobs now (successfully, or as the
/// simulator's outcome says) and answers when each ended (ms since the Unix epoch).
pub(super) async fn end_jobs(State(inner): State<Shared>, Json(body): Json<EndJobs>) -> Response {
    let project = body.project.unwrap_or_else(|| super::PROJECT.to_string());
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let inner_ref = &mut *guard;
    let now = Instant::now();
    let mut ended = Vec::new();
    for id in body.job_ids {
        if let Some(job) = inner_ref.jobs.by_id.get_mut(&(project.clone(), id.clone())) {
            if job.standing(&inner_ref.config, now).state != "DONE" {
                job.ended_at = Some(now);
                ended.push(json!({"job_id": id, "end_time": super::now_ms()}));
            }
        }
    }
    (StatusCode::OK, Json(json!({"ended": ended}))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded() {
        let uri: Uri = "/x?a=a%2Fb+c&s=1&s=2".parse().unwrap();
        let got = params(&uri);
        assert_eq!(param(&got, "a"), Some("a/b c"));
        assert_eq!(got.iter().filter(|(k, _)| k == "s").count(), 2);
    }

    #[test]
    fn labels_follow_bigquerys_rules() {
        assert!(check_labels(&json!({"env": "prod", "team-a": ""})).is_ok());
        assert!(check_labels(&json!({"Env": "prod"})).is_err());
        assert!(check_labels(&json!({"env": "Prod"})).is_err());
        assert!(check_labels(&json!({"1env": "x"})).is_err());
    }
}
