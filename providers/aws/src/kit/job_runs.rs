//! The REST job-run shape that EMR Serverless and EMR on EKS share: `StartJobRun` on a parent
//! (an application, a virtual cluster) with `clientToken`, the run read by id under its parent,
//! `CancelJobRun` as a `DELETE`, and `ListJobRuns` with `states` and a creation-time bound for
//! sweeps. [`JobRuns`] holds what differs between the two (paths, field names, the name rule,
//! the states); each service's module is one constant of it.

use reqwest::Method;
use serde_json::{json, Value};
use tether_provider::{Handle, JobState, ProviderError, RemoteStatus};

use super::{answered, handle_field, About, Call, JobApi, Listing, Protocol, Start, SweepBy};
use crate::{path_segment, timestamp};

/// A job run's parent: where the spec, the handle and the path name it.
#[derive(Debug, Clone, Copy)]
pub struct Parent {
    /// The spec's field naming the parent (`applicationId`), removed from the start's body.
    pub spec: &'static str,
    /// The handle's field naming it (`application_id`).
    pub handle: &'static str,
    /// The path's collection (`applications`: `/applications/{id}/jobruns`).
    pub path: &'static str,
}

/// A REST job-run service.
#[derive(Debug, Clone)]
pub struct JobRuns {
    /// tether's kind.
    pub kind: &'static str,
    /// The runs' parent.
    pub parent: Parent,
    /// The start answer's field holding the run's id (`jobRunId`, `id`).
    pub started_id: &'static str,
    /// The operation reading one run (`GetJobRun`, `DescribeJobRun`; the answer's `jobRun`).
    pub describe_op: &'static str,
    /// The run's name carrying tether's key, from the spec's `name`.
    pub name: fn(Option<&str>, &str) -> String,
    /// Whether `ListJobRuns` takes a `name` filter, so that `find` lists only that name.
    pub name_filter: bool,
    /// `ListJobRuns`' query parameter bounding a sweep by creation time.
    pub created_after: &'static str,
    /// The states a sweep lists: the ones that still change.
    pub active: &'static [&'static str],
    /// The run's state as tether's.
    pub state: fn(&str) -> JobState,
    /// The status message of a run.
    pub message: fn(&Value) -> Option<String>,
    /// Why a spec cannot be started, if it cannot.
    pub check: fn(&Value) -> Result<(), String>,
}

/// The most runs one `ListJobRuns` page holds.
const PAGE: u32 = 50;

impl JobRuns {
    fn runs_path(&self, parent: &str) -> String {
        format!("/{}/{}/jobruns", self.parent.path, path_segment(parent))
    }

    fn run_path(&self, handle: &Handle) -> Result<String, ProviderError> {
        let parent = handle_field(handle, self.parent.handle, self.kind)?;
        let run = handle_field(handle, "job_run_id", self.kind)?;
        Ok(format!(
            "{}/{}",
            self.runs_path(&parent),
            path_segment(&run)
        ))
    }

    fn run_status(&self, run: &Value) -> RemoteStatus {
        let raw = run["state"].as_str().unwrap_or("").to_string();
        RemoteStatus::new((self.state)(&raw), raw, (self.message)(run))
    }

    fn wanted_name(&self, spec: &Value, key: &str) -> String {
        (self.name)(spec.get("name").and_then(Value::as_str), key)
    }

    fn list(&self, path: String) -> Listing {
        Listing {
            call: Call::rest("ListJobRuns", Method::GET, path),
            items: "jobRuns",
            next: "nextToken",
        }
    }
}

impl JobApi for JobRuns {
    fn about(&self) -> About {
        // `clientToken` is tether's key: AWS deduplicates a repeated start.
        About::new(self.kind, Protocol::Rest, Start::Deduplicated, "job_run_id")
    }

    fn check(&self, spec: &Value) -> Result<(), String> {
        (self.check)(spec)
    }

    fn start(&self, spec: &Value, key: &str) -> Call {
        let parent = spec[self.parent.spec].as_str().unwrap_or_default();
        let mut body = spec.clone();
        if let Some(fields) = body.as_object_mut() {
            fields.remove(self.parent.spec);
            fields.insert("clientToken".into(), json!(key));
            fields.insert("name".into(), json!(self.wanted_name(spec, key)));
        }
        Call::rest_with("StartJobRun", Method::POST, self.runs_path(parent), body)
    }

    fn started(&self, spec: &Value, _key: &str, answer: &Value) -> Result<Value, ProviderError> {
        let run = answered(
            self.kind,
            "StartJobRun",
            answer,
            &format!("/{}", self.started_id),
        )?;
        Ok(json!({self.parent.handle: spec[self.parent.spec], "job_run_id": run}))
    }

    fn describe(&self, handle: &Handle) -> Result<Call, ProviderError> {
        Ok(Call::rest(
            self.describe_op,
            Method::GET,
            self.run_path(handle)?,
        ))
    }

    fn status(&self, _handle: &Handle, answer: &Value) -> Result<RemoteStatus, ProviderError> {
        Ok(self.run_status(&answer["jobRun"]))
    }

    fn stop(&self, handle: &Handle) -> Result<Call, ProviderError> {
        Ok(Call::rest(
            "CancelJobRun",
            Method::DELETE,
            self.run_path(handle)?,
        ))
    }

    /// The parent's runs (with the key's name, where the service filters by name).
    fn find(&self, spec: &Value, key: &str) -> Option<Listing> {
        let parent = spec.get(self.parent.spec).and_then(Value::as_str)?;
        let mut path = format!("{}?maxResults={PAGE}", self.runs_path(parent));
        if self.name_filter {
            path.push_str(&format!(
                "&name={}",
                path_segment(&self.wanted_name(spec, key))
            ));
        }
        Some(self.list(path))
    }

    fn found(&self, spec: &Value, key: &str, run: &Value) -> Option<(Value, Option<f64>)> {
        (run["name"].as_str() == Some(self.wanted_name(spec, key).as_str())).then(|| {
            let handle =
                json!({self.parent.handle: spec[self.parent.spec], "job_run_id": run["id"]});
            (handle, timestamp(&run["createdAt"]))
        })
    }

    fn sweep_by(&self) -> Option<SweepBy> {
        Some(SweepBy::List {
            parent: Some(self.parent.handle),
            id: "job_run_id",
        })
    }

    /// `ListJobRuns` with every active state and the creation-time bound.
    fn sweep_list(&self, parent: &str, since: f64) -> Option<Listing> {
        let since = chrono::DateTime::from_timestamp_millis((since * 1000.0) as i64)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut path = format!(
            "{}?maxResults={PAGE}&{}={}",
            self.runs_path(parent),
            self.created_after,
            path_segment(&since)
        );
        for state in self.active {
            path.push_str(&format!("&states={state}"));
        }
        Some(self.list(path))
    }

    fn listed(&self, run: &Value) -> Option<(String, RemoteStatus)> {
        let id = run["id"].as_str().or(run["jobRunId"].as_str())?;
        Some((id.to_string(), self.run_status(run)))
    }
}

impl super::Kit<JobRuns> {
    /// An adapter for the configured account and region, of the job-run service the settings
    /// name (EMR Serverless or EMR on EKS).
    pub fn new(config: crate::config::AwsConfig) -> Result<Self, ProviderError> {
        let api = match config.service {
            crate::Service::EmrContainers => crate::emr_containers::API,
            _ => crate::emr_serverless::API,
        };
        Self::with(api, config)
    }
}
