//! The Dataproc kinds: `dataproc-job` (a job on a cluster, `projects.regions.jobs`) and
//! `dataproc-batch` (a Dataproc Serverless batch, `projects.locations.batches`).
//!
//! A `dataproc-job` spec is `{"job": Job, "projectId"?, "region"?}` (as Airflow's
//! `DataprocSubmitJobOperator` takes `job`, `project_id` and `region`): the `Job` with its
//! `placement` and one job type (`pysparkJob`, `sparkJob`, ...). A `dataproc-batch` spec is
//! `{"batch": Batch, "projectId"?, "region"?}` with one batch type (`pysparkBatch`, ...). The
//! project and region default to the account's `project` and `location`.
//!
//! One job per key, twice over: the request id is the key (Dataproc: "the second request will
//! be ignored and the first Job created and stored in the backend is returned"), and so is the
//! job id (`reference.jobId`) or batch id, which no other request may take (409
//! `ALREADY_EXISTS`, which tether reads as the job made before). A key Dataproc does not take
//! as it is (over 40 characters, or for a batch id anything but lowercase letters, digits and
//! hyphens) is replaced by `t` and 39 hex digits of its SHA-256. Airflow's known caveat (a
//! reused request id hands a new try the old, finished job) cannot arise: a new generation has
//! a new key.
//!
//! - status: `jobs.get` / `batches.get`;
//! - cancel: `jobs.cancel`; a batch is cancelled through its long-running operation
//!   (`operations.cancel` of the batch's `operation`);
//! - find: a get of the id the key gives;
//! - coalesced sweep: `jobs.list` with `filter = status.state = ACTIVE` per region (Dataproc
//!   filters jobs by state and label only), `batches.list` of the pending and running batches
//!   created since the oldest asked about; what a sweep does not list is read singly.
//!
//! Reference: googleapis `google/cloud/dataproc/v1/jobs.proto`, `batches.proto`,
//! `google/longrunning/operations.proto`.

use async_trait::async_trait;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tether_provider::http::Idempotency;
use tether_provider::paging::{walk, Page};
use tether_provider::{
    CommonSettings, ErrorKind, Handle, Provider, ProviderError, RemoteStatus, Result, SendGate,
    Sweep, Tracked,
};

use crate::client::{segment, Call, Client};
use crate::config::{check_location, check_project};
use crate::state::{batch_status, job_status};
use crate::GoogleConfig;

/// The kind of jobs on a cluster.
pub const JOB_KIND: &str = "dataproc-job";
/// The kind of Serverless batches.
pub const BATCH_KIND: &str = "dataproc-batch";
/// Jobs or batches asked for per page of a list.
const LIST_PAGE: usize = 100;
/// The job types a `Job` has exactly one of.
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
/// The batch types a `Batch` has exactly one of.
const BATCH_TYPES: [&str; 5] = [
    "pysparkBatch",
    "sparkBatch",
    "sparkRBatch",
    "sparkSqlBatch",
    "pysparkNotebookBatch",
];

/// Which of the two Dataproc kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Job,
    Batch,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Job => JOB_KIND,
            Kind::Batch => BATCH_KIND,
        }
    }

    /// The spec's field holding the resource, and the id field of the handle.
    fn fields(self) -> (&'static str, &'static str) {
        match self {
            Kind::Job => ("job", "job_id"),
            Kind::Batch => ("batch", "batch_id"),
        }
    }
}

/// A Dataproc adapter (one of the two kinds).
#[derive(Debug)]
pub struct Dataproc {
    kind: Kind,
    client: Client,
    config: GoogleConfig,
}

/// A job or batch as tether names it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Named {
    project: String,
    region: String,
    id: String,
}

impl Dataproc {
    /// An adapter for the configured account (`dataproc-job` or `dataproc-batch`).
    pub fn new(config: GoogleConfig) -> Result<Self, ProviderError> {
        let kind = if config.kind == BATCH_KIND {
            Kind::Batch
        } else {
            Kind::Job
        };
        Ok(Self {
            kind,
            client: Client::for_config(&config)?,
            config,
        })
    }

    fn place(&self, spec: &Value) -> (String, String) {
        let project = spec["projectId"].as_str().unwrap_or(&self.config.project);
        let region = spec["region"].as_str().unwrap_or(&self.config.location);
        (project.to_string(), region.to_string())
    }

    fn named(&self, handle: &Handle) -> Result<Named, ProviderError> {
        let (_, id_field) = self.kind.fields();
        match (
            handle.get_str("project"),
            handle.get_str("region"),
            handle.get_str(id_field),
        ) {
            (Some(project), Some(region), Some(id)) => Ok(Named {
                project,
                region,
                id,
            }),
            _ => Err(ProviderError::permanent(
                self.kind.name(),
                format!("handle {handle} does not name a project, region and {id_field}"),
            )),
        }
    }

    fn handle(&self, n: &Named) -> Handle {
        let (_, id_field) = self.kind.fields();
        Handle::new(json!({ id_field: n.id, "project": n.project, "region": n.region }))
    }

    /// The resource's path: `/v1/projects/P/regions/R/jobs/ID` or
    /// `/v1/projects/P/locations/R/batches/ID`.
    fn path(&self, n: &Named) -> String {
        let (p, r, id) = (segment(&n.project), segment(&n.region), segment(&n.id));
        match self.kind {
            Kind::Job => format!("/v1/projects/{p}/regions/{r}/jobs/{id}"),
            Kind::Batch => format!("/v1/projects/{p}/locations/{r}/batches/{id}"),
        }
    }

    async fn get(&self, n: &Named) -> Result<Value, ProviderError> {
        self.client
            .call(
                &self.path(n),
                Call::Other,
                Idempotency::Idempotent,
                |c, url| c.get(url),
            )
            .await
    }

    fn status_of(&self, resource: &Value) -> RemoteStatus {
        match self.kind {
            Kind::Job => job_status(resource),
            Kind::Batch => batch_status(resource),
        }
    }

    /// One region's active jobs, or batches created since `since_ms`: (id, status) each, and
    /// the calls made.
    async fn active(
        &self,
        project: &str,
        region: &str,
        since_ms: i64,
    ) -> Result<(Vec<(String, RemoteStatus)>, u64), ProviderError> {
        let (p, r) = (segment(project), segment(region));
        let base = match self.kind {
            Kind::Job => format!(
                "/v1/projects/{p}/regions/{r}/jobs?pageSize={LIST_PAGE}&filter={}",
                segment("status.state = ACTIVE")
            ),
            Kind::Batch => format!(
                "/v1/projects/{p}/locations/{r}/batches?pageSize={LIST_PAGE}&filter={}",
                segment(&format!(
                    "(state = PENDING OR state = RUNNING OR state = CANCELLING) AND create_time >= \"{}\"",
                    rfc3339_of(since_ms)
                ))
            ),
        };
        let items = match self.kind {
            Kind::Job => "jobs",
            Kind::Batch => "batches",
        };
        let mut listed = Vec::new();
        let fetch = |token: Option<String>| {
            let base = &base;
            async move {
                let path = match token {
                    Some(t) => format!("{base}&pageToken={}", segment(&t)),
                    None => base.clone(),
                };
                let page: Value = self
                    .client
                    .call(&path, Call::Other, Idempotency::Idempotent, |c, url| {
                        c.get(url)
                    })
                    .await?;
                Ok(Page::from_json(&page, items, "nextPageToken"))
            }
        };
        let walked = walk(u64::MAX, fetch, |entry: Value| {
            let id = match self.kind {
                Kind::Job => entry["reference"]["jobId"].as_str().map(str::to_string),
                Kind::Batch => entry["name"]
                    .as_str()
                    .and_then(|n| n.rsplit('/').next())
                    .map(str::to_string),
            };
            if let Some(id) = id {
                listed.push((id, self.status_of(&entry)));
            }
            true
        })
        .await?;
        Ok((listed, walked.calls))
    }
}

/// The id Dataproc takes for `key`: the key itself where it fits `ok`, else `t` and 39 hex
/// digits of its SHA-256 (40 characters, lowercase: every Dataproc id rule takes it).
fn id_for(key: &str, ok: impl Fn(&str) -> bool) -> String {
    if ok(key) {
        return key.to_string();
    }
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t{}", &hex[..39])
}

/// A request id (and job id): 1 to 40 letters, digits, `_` and `-`.
pub fn request_id_for(key: &str) -> String {
    id_for(key, |k| {
        !k.is_empty()
            && k.len() <= 40
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    })
}

/// A batch id: 4 to 63 lowercase letters, digits and hyphens, starting and ending with a
/// letter or digit.
pub fn batch_id_for(key: &str) -> String {
    id_for(key, |k| {
        (4..=63).contains(&k.len())
            && k.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !k.starts_with('-')
            && !k.ends_with('-')
    })
}

/// `ms` since the Unix epoch as RFC 3339 in UTC, to the second, as Dataproc's filters take
/// times.
pub fn rfc3339_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms.max(0))
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Checks a spec of `kind`: the resource with exactly one type, no id of its own.
fn check_spec(kind: Kind, spec: &Value) -> Result<(), String> {
    let (field, _) = kind.fields();
    let Some(obj) = spec.as_object() else {
        return Err(format!(
            "the job spec must be a JSON object ({{\"{field}\": ..., \"projectId\"?, \"region\"?}})"
        ));
    };
    if let Some(k) = obj
        .keys()
        .find(|k| ![field, "projectId", "region"].contains(&k.as_str()))
    {
        return Err(format!(
            "{k}: not a field of a {} spec ({field}, and optionally projectId and region)",
            kind.name()
        ));
    }
    if let Some(p) = obj.get("projectId") {
        let p = p.as_str().ok_or("projectId: must be a string")?;
        check_project(p).map_err(|e| format!("projectId: {e}"))?;
    }
    if let Some(r) = obj.get("region") {
        let r = r.as_str().ok_or("region: must be a string")?;
        check_location(r).map_err(|e| format!("region: {e}"))?;
    }
    let Some(resource) = obj.get(field).and_then(Value::as_object) else {
        return Err(format!("{field}: missing (an object)"));
    };
    let types: &[&str] = match kind {
        Kind::Job => &JOB_TYPES,
        Kind::Batch => &BATCH_TYPES,
    };
    let given: Vec<&str> = types
        .iter()
        .copied()
        .filter(|t| resource.contains_key(*t))
        .collect();
    if given.len() != 1 {
        return Err(format!(
            "{field}: must have exactly one of {} (it has {})",
            types.join(", "),
            if given.is_empty() {
                "none".into()
            } else {
                given.join(", ")
            }
        ));
    }
    match kind {
        Kind::Job => {
            if resource
                .get("reference")
                .and_then(|r| r.get("jobId"))
                .is_some()
            {
                return Err(
                    "job.reference.jobId: tether sets it (from the idempotency key)".into(),
                );
            }
            let placement = resource.get("placement").and_then(Value::as_object);
            let placed = placement.is_some_and(|p| {
                p.get("clusterName")
                    .and_then(Value::as_str)
                    .is_some_and(|c| !c.is_empty())
                    || p.get("clusterLabels").is_some_and(Value::is_object)
            });
            if !placed {
                return Err("job.placement: needs clusterName (or clusterLabels): the cluster the job runs on".into());
            }
        }
        Kind::Batch => {
            if resource.contains_key("name") {
                return Err("batch.name: Dataproc names the batch (tether sets its id from the idempotency key)".into());
            }
        }
    }
    Ok(())
}

#[async_trait]
impl Provider for Dataproc {
    fn kind(&self) -> &'static str {
        self.kind.name()
    }

    fn validate_spec(&self, spec: &Value) -> Result<(), ProviderError> {
        check_spec(self.kind, spec).map_err(|e| ProviderError::invalid_spec(self.kind.name(), e))
    }

    /// `jobs:submit` with `requestId` and `reference.jobId` from the key, or `batches` with
    /// `requestId` and `batchId` from the key: repeated as it is after a lost answer, and
    /// 409 `ALREADY_EXISTS` for the id is the job made before.
    async fn submit(&self, spec: &Value, key: &str, _gate: &dyn SendGate) -> Result<Handle> {
        self.validate_spec(spec)?;
        let (project, region) = self.place(spec);
        let request_id = request_id_for(key);
        let named = Named {
            project,
            region,
            id: match self.kind {
                Kind::Job => request_id.clone(),
                Kind::Batch => batch_id_for(key),
            },
        };
        let (p, r) = (segment(&named.project), segment(&named.region));
        let (path, body) = match self.kind {
            Kind::Job => {
                let mut job = spec["job"].clone();
                job["reference"] = json!({"projectId": named.project, "jobId": named.id});
                (
                    format!("/v1/projects/{p}/regions/{r}/jobs:submit"),
                    json!({"job": job, "requestId": request_id}),
                )
            }
            Kind::Batch => (
                format!(
                    "/v1/projects/{p}/locations/{r}/batches?batchId={}&requestId={}",
                    segment(&named.id),
                    segment(&request_id)
                ),
                spec["batch"].clone(),
            ),
        };
        let response = self
            .client
            .send(&path, Idempotency::Idempotent, |c, url| {
                c.post(url).json(&body)
            })
            .await?;
        if response.status.as_u16() == 409 {
            tracing::info!(
                provider = self.kind.name(),
                id = %named.id,
                "the id is taken (409 ALREADY_EXISTS): the job an earlier try made"
            );
            return Ok(self.handle(&named));
        }
        let _: Value = self.client.decode(&path, Call::Submit, &response)?;
        Ok(self.handle(&named))
    }

    fn submit_is_idempotent(&self) -> bool {
        true
    }

    async fn status(&self, handle: &Handle) -> Result<RemoteStatus, ProviderError> {
        let n = self.named(handle)?;
        let resource = self.get(&n).await?;
        Ok(self.status_of(&resource))
    }

    /// A job's `:cancel`; a batch's through its operation, which the batch names.
    async fn cancel(&self, handle: &Handle) -> Result<(), ProviderError> {
        let n = self.named(handle)?;
        let path = match self.kind {
            Kind::Job => format!("{}:cancel", self.path(&n)),
            Kind::Batch => {
                let batch = self.get(&n).await?;
                let operation = batch["operation"]
                    .as_str()
                    .filter(|o| o.starts_with("projects/") && !o.contains(".."))
                    .ok_or_else(|| {
                        ProviderError::permanent(
                            BATCH_KIND,
                            format!("batch {} names no operation to cancel", n.id),
                        )
                    })?;
                format!("/v1/{operation}:cancel")
            }
        };
        let _: Value = self
            .client
            .call(&path, Call::Other, Idempotency::Idempotent, |c, url| {
                c.post(url).json(&json!({}))
            })
            .await?;
        Ok(())
    }

    async fn find(&self, key: &str, spec: &Value, _intent_ms: i64) -> Result<Vec<Handle>> {
        let (project, region) = self.place(spec);
        let id = match self.kind {
            Kind::Job => request_id_for(key),
            Kind::Batch => batch_id_for(key),
        };
        let n = Named {
            project,
            region,
            id,
        };
        match self.get(&n).await {
            Ok(_) => Ok(vec![self.handle(&n)]),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    fn coalesces(&self) -> bool {
        self.config.common.coalesce
    }

    async fn status_many(&self, jobs: &[Tracked<'_>]) -> Result<Sweep, ProviderError> {
        let place = |h: &Handle| self.named(h).ok().map(|n| ((n.project, n.region), n.id));
        crate::sweep::sweep(
            jobs,
            place,
            |(project, region): (String, String), since| async move {
                self.active(&project, &region, since).await
            },
        )
        .await
    }

    /// The job's `projects/P/regions/R/jobs/ID`, or the batch's resource name: what the
    /// log entries of its `cloud_dataproc_job` / `cloud_dataproc_batch` resource name.
    fn handle_ref(&self, handle: &Handle) -> String {
        match (self.named(handle), self.kind) {
            (Ok(n), Kind::Job) => crate::events::dataproc_job_ref(&n.project, &n.region, &n.id),
            (Ok(n), Kind::Batch) => crate::events::dataproc_batch_ref(&n.project, &n.region, &n.id),
            (Err(_), _) => handle.as_json().to_string(),
        }
    }

    /// The job or batch in the Google Cloud console.
    fn job_url(&self, handle: &Handle) -> Option<String> {
        let n = self.named(handle).ok()?;
        let (what, id) = match self.kind {
            Kind::Job => ("jobs", segment(&n.id)),
            Kind::Batch => ("batches", segment(&n.id)),
        };
        Some(format!(
            "https://console.cloud.google.com/dataproc/{what}/{id}?region={}&project={}",
            segment(&n.region),
            segment(&n.project)
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
    fn ids_are_the_key_where_dataproc_takes_it() {
        let key = "tether-0123456789abcdef0123456789abcdef";
        assert_eq!(request_id_for(key), key);
        assert_eq!(batch_id_for(key), key);
        let odd = "tether-1-22-dataproc-batch-lost_answer";
        assert_eq!(request_id_for(odd), odd);
        let b = batch_id_for(odd);
        assert!(b.starts_with('t') && b.len() == 40, "{b}");
        assert_eq!(b, batch_id_for(odd), "the same key, the same id");
        let long = "x".repeat(41);
        assert_eq!(request_id_for(&long).len(), 40);
        assert_ne!(request_id_for(&long), request_id_for(&"x".repeat(42)));
    }

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339_of(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_of(1_796_673_178_334), "2026-12-07T19:52:58Z");
        assert_eq!(rfc3339_of(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn specs_are_checked_field_by_field() {
        let job = json!({"job": {"placement": {"clusterName": "c"}, "pysparkJob": {"mainPythonFileUri": "gs://b/m.py"}}});
        assert!(check_spec(Kind::Job, &job).is_ok());
        let batch = json!({"batch": {"pysparkBatch": {"mainPythonFileUri": "gs://b/m.py"}}, "region": "europe-west1"});
        assert!(check_spec(Kind::Batch, &batch).is_ok());
        for (kind, spec, needle) in [
            (
                Kind::Job,
                json!({"job": {"pysparkJob": {}}}),
                "job.placement: needs clusterName",
            ),
            (
                Kind::Job,
                json!({"job": {"placement": {"clusterName": "c"}}}),
                "exactly one of hadoopJob",
            ),
            (
                Kind::Job,
                json!({"job": {"placement": {"clusterName": "c"}, "sparkJob": {}, "reference": {"jobId": "x"}}}),
                "tether sets it",
            ),
            (
                Kind::Job,
                json!({"job": {}, "requestId": "x"}),
                "requestId: not a field",
            ),
            (
                Kind::Batch,
                json!({"batch": {"sparkBatch": {}, "pysparkBatch": {}}}),
                "(it has pysparkBatch, sparkBatch)",
            ),
            (
                Kind::Batch,
                json!({"batch": {"sparkBatch": {}}, "region": "Europe West"}),
                "region:",
            ),
            (
                Kind::Batch,
                json!({"batch": {"sparkBatch": {}, "name": "x"}}),
                "batch.name",
            ),
        ] {
            let err = check_spec(kind, &spec).unwrap_err();
            assert!(err.contains(needle), "{spec}: {err}");
        }
    }
}
