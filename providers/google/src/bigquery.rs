//! The `bigquery` kind: BigQuery jobs (query, load, extract, copy).
//!
//! A job spec is the body of `jobs.insert` (a `Job` resource): its `configuration` (one of
//! `query`, `load`, `extract`, `copy`, with `labels`, `jobTimeoutMs`, ...) and, optionally,
//! `jobReference.projectId` and `jobReference.location` (else the account's `project` and
//! `location`). tether sets `jobReference.jobId` from its key, so BigQuery itself keeps one
//! job per key: a second insert of the id answers 409 `duplicate`, which means the job was
//! made (by an earlier try whose answer was lost), never a failure. The id is never reused:
//! a new generation has a new key, so a new try can never be handed the old job.
//!
//! - status: `jobs.get` with the job's location (a job outside the `US` and `EU`
//!   multi-regions is "not found" without it);
//! - cancel: `jobs.cancel`, which answers at once; the job ends `DONE` with the reason
//!   `stopped` (or ends as it would have, if it finished first);
//! - find: `jobs.get` of the id the key gives;
//! - coalesced sweep: `jobs.list` of the project's pending and running jobs created since the
//!   oldest job asked about (less the clocks' skew), 1,000 a page; a job not listed has
//!   ended (or is not visible yet) and is read with `jobs.get`, which confirms every end.
//!
//! Reference: <https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs>,
//! googleapis `google/cloud/bigquery/v2/job.proto`.

use async_trait::async_trait;
use serde_json::{json, Value};
use tether_provider::http::Idempotency;
use tether_provider::paging::{walk, Page};
use tether_provider::{
    CommonSettings, Handle, Provider, ProviderError, RemoteStatus, Result, SendGate, Sweep, Tracked,
};

use crate::client::{segment, Call, Client};
use crate::config::{check_location, check_project};
use crate::state::{bigquery_status, JobStatus};
use crate::GoogleConfig;

/// The kind, as in config and errors.
pub const KIND: &str = "bigquery";
/// Jobs asked for per page of `jobs.list` (the API documents no maximum).
pub const LIST_PAGE: usize = 1000;
/// The longest job id BigQuery takes.
pub const MAX_JOB_ID: usize = 1024;
/// The configurations a job has exactly one of.
const CONFIGURATIONS: [&str; 4] = ["query", "load", "extract", "copy"];

/// The BigQuery adapter.
#[derive(Debug)]
pub struct BigQuery {
    client: Client,
    config: GoogleConfig,
}

impl BigQuery {
    /// An adapter for the configured project.
    pub fn new(config: GoogleConfig) -> Result<Self, ProviderError> {
        Ok(Self {
            client: Client::for_config(&config)?,
            config,
        })
    }

    /// The project and location a spec's job is made in: its `jobReference`'s, else the
    /// account's.
    fn place(&self, spec: &Value) -> (String, String) {
        let reference = &spec["jobReference"];
        let project = reference["projectId"]
            .as_str()
            .unwrap_or(&self.config.project);
        let location = reference["location"]
            .as_str()
            .unwrap_or(&self.config.location);
        (project.to_string(), location.to_string())
    }

    /// `jobs.get` of a job.
    async fn get(&self, job: &JobRef) -> Result<Value, ProviderError> {
        let path = format!("{}?location={}", job.path(), segment(&job.location));
        self.client
            .call(&path, Call::Other, Idempotency::Idempotent, |c, url| {
                c.get(url)
            })
            .await
    }

    /// Every pending and running job of `project` created at or after `since_ms`, page after
    /// page: (job id, location) with its status; and the calls made.
    async fn active_jobs(
        &self,
        project: &str,
        since_ms: i64,
    ) -> Result<(Vec<(String, RemoteStatus)>, u64), ProviderError> {
        let mut jobs = Vec::new();
        let fetch = |token: Option<String>| async move {
            let mut path = format!(
                "/bigquery/v2/projects/{}/jobs?stateFilter=pending&stateFilter=running\
                 &projection=minimal&maxResults={LIST_PAGE}&minCreationTime={}",
                segment(project),
                since_ms.max(0)
            );
            if let Some(t) = token {
                path.push_str("&pageToken=");
                path.push_str(&segment(&t));
            }
            let page: Value = self
                .client
                .call(&path, Call::Other, Idempotency::Idempotent, |c, url| {
                    c.get(url)
                })
                .await?;
            Ok(Page::from_json(&page, "jobs", "nextPageToken"))
        };
        let walked = walk(u64::MAX, fetch, |entry: Value| {
            if let Some(id) = entry["jobReference"]["jobId"].as_str() {
                jobs.push((id.to_string(), listed_status(&entry)));
            }
            true
        })
        .await?;
        Ok((jobs, walked.calls))
    }
}

/// A job as tether names it: project, location, id.
#[derive(Debug, Clone, PartialEq, Eq)]
struct JobRef {
    project: String,
    location: String,
    job_id: String,
}

impl JobRef {
    fn of(handle: &Handle) -> Result<Self, ProviderError> {
        match (
            handle.get_str("project"),
            handle.get_str("location"),
            handle.get_str("job_id"),
        ) {
            (Some(project), Some(location), Some(job_id)) => Ok(Self {
                project,
                location,
                job_id,
            }),
            _ => Err(ProviderError::permanent(
                KIND,
                format!("handle {handle} does not name a project, location and job_id"),
            )),
        }
    }

    fn handle(&self) -> Handle {
        Handle::new(json!({
            "job_id": self.job_id,
            "location": self.location,
            "project": self.project,
        }))
    }

    fn path(&self) -> String {
        format!(
            "/bigquery/v2/projects/{}/jobs/{}",
            segment(&self.project),
            segment(&self.job_id)
        )
    }
}

/// The job id tether gives the job of `key`: the key itself where BigQuery takes it
/// (letters, digits, `_` and `-`, at most 1,024), else the key with every other character
/// made `_` (tether's own keys, `tether-` and hex digits, are always taken as they are).
pub fn job_id_for(key: &str) -> String {
    key.chars()
        .take(MAX_JOB_ID)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The status a `jobs.list` entry gives: its top-level `state` and `errorResult` (with a
/// full projection, `status` too).
fn listed_status(entry: &Value) -> RemoteStatus {
    let status = if entry["status"].is_object() {
        serde_json::from_value(entry["status"].clone()).unwrap_or_default()
    } else {
        JobStatus {
            state: entry["state"].as_str().unwrap_or_default().to_string(),
            error_result: serde_json::from_value(entry["errorResult"].clone()).ok(),
        }
    };
    bigquery_status(&status)
}

/// A job's status from `jobs.get`'s answer, with its error message and link.
fn job_status(job: &Value, link: Option<String>) -> RemoteStatus {
    let status: JobStatus = serde_json::from_value(job["status"].clone()).unwrap_or_default();
    let mut read = bigquery_status(&status);
    read.url = link;
    read
}

/// Checks a spec: a `jobs.insert` body with exactly one configuration, no job id of its own,
/// not a dry run.
fn check_spec(spec: &Value) -> Result<(), String> {
    let Some(obj) = spec.as_object() else {
        return Err("the job spec must be a JSON object (a jobs.insert body: configuration, and optionally jobReference)".into());
    };
    if let Some(key) = obj
        .keys()
        .find(|k| !["configuration", "jobReference"].contains(&k.as_str()))
    {
        return Err(format!(
            "{key}: not a field tether sends (a job spec has configuration, and optionally jobReference.projectId and jobReference.location)"
        ));
    }
    let Some(configuration) = obj.get("configuration").and_then(Value::as_object) else {
        return Err(
            "configuration: missing (an object with one of query, load, extract, copy)".into(),
        );
    };
    let kinds: Vec<&str> = CONFIGURATIONS
        .into_iter()
        .filter(|k| configuration.contains_key(*k))
        .collect();
    if kinds.len() != 1 {
        return Err(format!(
            "configuration: must have exactly one of query, load, extract, copy (it has {})",
            if kinds.is_empty() {
                "none".to_string()
            } else {
                kinds.join(", ")
            }
        ));
    }
    if configuration.get("dryRun") == Some(&Value::Bool(true)) {
        return Err("configuration.dryRun: a dry run makes no job to track".into());
    }
    if let Some(reference) = obj.get("jobReference") {
        let Some(reference) = reference.as_object() else {
            return Err("jobReference: must be an object".into());
        };
        for (field, value) in reference {
            let text = value
                .as_str()
                .ok_or_else(|| format!("jobReference.{field}: must be a string"))?;
            match field.as_str() {
                "projectId" => {
                    check_project(text).map_err(|e| format!("jobReference.projectId: {e}"))?
                }
                "location" => {
                    check_location(text).map_err(|e| format!("jobReference.location: {e}"))?
                }
                "jobId" => {
                    return Err(
                        "jobReference.jobId: tether sets it (from the idempotency key)".into(),
                    )
                }
                other => {
                    return Err(format!(
                    "jobReference.{other}: not a field of a job reference (projectId, location)"
                ))
                }
            }
        }
    }
    Ok(())
}

#[async_trait]
impl Provider for BigQuery {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn validate_spec(&self, spec: &Value) -> Result<(), ProviderError> {
        check_spec(spec).map_err(|e| ProviderError::invalid_spec(KIND, e))
    }

    /// `jobs.insert` with the job id the key gives: repeated as it is after a lost answer
    /// (no gate needed), and a 409 `duplicate` is the job an earlier try made.
    async fn submit(&self, spec: &Value, key: &str, _gate: &dyn SendGate) -> Result<Handle> {
        self.validate_spec(spec)?;
        let (project, location) = self.place(spec);
        let job = JobRef {
            project,
            location,
            job_id: job_id_for(key),
        };
        let mut body = spec.clone();
        body["jobReference"] = json!({
            "projectId": job.project,
            "jobId": job.job_id,
            "location": job.location,
        });
        let path = format!("/bigquery/v2/projects/{}/jobs", segment(&job.project));
        let response = self
            .client
            .send(&path, Idempotency::Idempotent, |c, url| {
                c.post(url).json(&body)
            })
            .await?;
        if response.status.as_u16() == 409 {
            tracing::info!(
                provider = KIND,
                job_id = %job.job_id,
                "jobs.insert: the job id is taken (409 duplicate): the job an earlier try made"
            );
            return Ok(job.handle());
        }
        let answer: Value = self.client.decode(&path, Call::Submit, &response)?;
        // BigQuery answers the location it chose (it may write it differently, `us` as `US`).
        let location = answer["jobReference"]["location"]
            .as_str()
            .filter(|l| check_location(l).is_ok())
            .map_or(job.location.clone(), str::to_string);
        Ok(JobRef { location, ..job }.handle())
    }

    fn submit_is_idempotent(&self) -> bool {
        true
    }

    async fn status(&self, handle: &Handle) -> Result<RemoteStatus, ProviderError> {
        let job = JobRef::of(handle)?;
        let answer = self.get(&job).await?;
        Ok(job_status(&answer, self.job_url(handle)))
    }

    async fn cancel(&self, handle: &Handle) -> Result<(), ProviderError> {
        let job = JobRef::of(handle)?;
        let path = format!("{}/cancel?location={}", job.path(), segment(&job.location));
        let _: Value = self
            .client
            .call(&path, Call::Other, Idempotency::Idempotent, |c, url| {
                c.post(url)
            })
            .await?;
        Ok(())
    }

    /// `jobs.get` of the id the key gives: the job, or none.
    async fn find(&self, key: &str, spec: &Value, _intent_ms: i64) -> Result<Vec<Handle>> {
        let (project, location) = self.place(spec);
        let job = JobRef {
            project,
            location,
            job_id: job_id_for(key),
        };
        match self.get(&job).await {
            Ok(answer) => {
                let location = answer["jobReference"]["location"]
                    .as_str()
                    .map_or(job.location.clone(), str::to_string);
                Ok(vec![JobRef { location, ..job }.handle()])
            }
            Err(e) if e.kind == tether_provider::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    fn coalesces(&self) -> bool {
        self.config.common.coalesce
    }

    /// `jobs.list` of each project's pending and running jobs created since its oldest job
    /// asked about, less the clocks' skew.
    async fn status_many(&self, jobs: &[Tracked<'_>]) -> Result<Sweep, ProviderError> {
        let place = |h: &Handle| JobRef::of(h).ok().map(|j| (j.project, j.job_id));
        crate::sweep::sweep(jobs, place, |project: String, since| async move {
            self.active_jobs(&project, since).await
        })
        .await
    }

    /// `projects/P/jobs/ID`: the job's name in BigQuery's audit log entries.
    fn handle_ref(&self, handle: &Handle) -> String {
        match JobRef::of(handle) {
            Ok(job) => crate::events::bigquery_ref(&job.project, &job.job_id),
            Err(_) => handle.as_json().to_string(),
        }
    }

    /// The job in the Google Cloud console.
    fn job_url(&self, handle: &Handle) -> Option<String> {
        let job = JobRef::of(handle).ok()?;
        Some(format!(
            "https://console.cloud.google.com/bigquery?project={}&j=bq:{}:{}&page=queryresults",
            segment(&job.project),
            segment(&job.location),
            segment(&job.job_id)
        ))
    }

    fn settings(&self) -> &CommonSettings {
        &self.config.common
    }

    fn rate_limiter(&self) -> Option<&tether_provider::RateLimiter> {
        Some(self.client.http().limiter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_id_is_the_key_where_bigquery_takes_it() {
        assert_eq!(job_id_for("tether-0123abcd"), "tether-0123abcd");
        assert_eq!(job_id_for("a/b c.d"), "a_b_c_d");
        assert_eq!(job_id_for(&"x".repeat(2000)).len(), MAX_JOB_ID);
    }

    #[test]
    fn specs_are_checked_field_by_field() {
        let ok = json!({"configuration": {"query": {"query": "SELECT 1", "useLegacySql": false}}});
        assert!(check_spec(&ok).is_ok());
        let placed = json!({"configuration": {"copy": {}}, "jobReference": {"projectId": "other-project", "location": "europe-west1"}});
        assert!(check_spec(&placed).is_ok());
        for (spec, needle) in [
            (json!([]), "must be a JSON object"),
            (
                json!({"query": "SELECT 1"}),
                "query: not a field tether sends",
            ),
            (
                json!({"configuration": {}}),
                "exactly one of query, load, extract, copy (it has none)",
            ),
            (
                json!({"configuration": {"query": {}, "load": {}}}),
                "(it has query, load)",
            ),
            (
                json!({"configuration": {"query": {}, "dryRun": true}}),
                "dryRun: a dry run makes no job",
            ),
            (
                json!({"configuration": {"query": {}}, "jobReference": {"jobId": "x"}}),
                "jobReference.jobId: tether sets it",
            ),
            (
                json!({"configuration": {"query": {}}, "jobReference": {"location": 5}}),
                "jobReference.location: must be a string",
            ),
            (
                json!({"configuration": {"query": {}}, "jobReference": {"projectId": "Bad"}}),
                "jobReference.projectId",
            ),
        ] {
            let err = check_spec(&spec).unwrap_err();
            assert!(err.contains(needle), "{spec}: {err}");
        }
    }

    #[test]
    fn a_list_entry_is_read_with_either_shape() {
        let minimal = json!({"jobReference": {"jobId": "j"}, "state": "RUNNING"});
        assert_eq!(listed_status(&minimal).raw_state, "RUNNING");
        let full = json!({"jobReference": {"jobId": "j"}, "state": "DONE",
            "errorResult": {"reason": "stopped"}, "status": {"state": "DONE", "errorResult": {"reason": "stopped"}}});
        assert_eq!(
            listed_status(&full).state,
            tether_provider::JobState::Cancelled
        );
        let lean = json!({"jobReference": {"jobId": "j"}, "state": "DONE", "errorResult": {"reason": "invalidQuery"}});
        assert_eq!(
            listed_status(&lean).state,
            tether_provider::JobState::Failed
        );
    }

    #[test]
    fn the_console_link_names_project_location_and_job() {
        let adapter = BigQuery::new(GoogleConfig::for_tests(KIND)).unwrap();
        let handle = JobRef {
            project: "my-project".into(),
            location: "EU".into(),
            job_id: "tether-1".into(),
        }
        .handle();
        assert_eq!(
            adapter.job_url(&handle).unwrap(),
            "https://console.cloud.google.com/bigquery?project=my-project&j=bq:EU:tether-1&page=queryresults"
        );
    }
}
