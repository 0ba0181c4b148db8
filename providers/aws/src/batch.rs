//! AWS Batch jobs (REST JSON, SigV4 service `batch`), a kit description.
//!
//! A job spec is the `SubmitJob` body: `{"jobQueue": "...", "jobDefinition": "...",
//! "jobName": "...", "containerOverrides": {...}, ...}`. `SubmitJob` has no idempotency token
//! and job names are not unique, so tether puts its key into the name (`<jobName>-<key>`,
//! within Batch's 128 characters of `[A-Za-z0-9_-]`) and `find` lists the queue's jobs with
//! the `JOB_NAME` filter (every status): the EMR-steps rule of the decision table.
//!
//! A coalesced sweep reads up to 100 jobs per `DescribeJobs` call. A cancel is `TerminateJob`,
//! which cancels a job that has not started and stops one that has; either way the job then
//! reads `FAILED`, and the adapter reports it cancelled when tether's reason is on it (or
//! `isCancelled` is set).

use reqwest::Method;
use serde_json::{json, Value};
use tether_provider::{Handle, JobState, ProviderError, RemoteStatus};

use crate::kit::{
    answered, handle_field, statuses, text, About, Call, JobApi, Kit, Listing, Protocol, Start,
    SweepBy,
};

const PROVIDER: &str = "batch";
/// Jobs per `DescribeJobs` call (the API's limit).
const DESCRIBE_MAX: usize = 100;
/// The longest job name Batch takes.
const NAME_MAX: usize = 128;
/// The reason `TerminateJob` carries, by which a job tether cancelled reads as cancelled.
pub const CANCEL_REASON: &str = "Cancelled through tether";

/// The Batch adapter.
pub type Batch = Kit<BatchJobs>;

/// Batch jobs, as the kit runs them.
#[derive(Debug, Default)]
pub struct BatchJobs;

/// The job name carrying `key`: the spec's `jobName` (cut to fit), a dash, the key.
pub fn job_name(name: Option<&str>, key: &str) -> String {
    crate::keyed_name(name, key, NAME_MAX)
}

fn name_ok(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A job (from `DescribeJobs`) as tether sees it: its status, and the failure reason as the
/// message (the job's `statusReason`, its container's `reason` and exit code).
fn job_status(job: &Value) -> RemoteStatus {
    let raw = job["status"].as_str().unwrap_or("").to_string();
    let mut state = crate::state::batch_job(&raw);
    let reason = text(&job["statusReason"]);
    if state == JobState::Failed
        && (job["isCancelled"].as_bool() == Some(true) || reason == Some(CANCEL_REASON))
    {
        state = JobState::Cancelled;
    }
    let container = &job["container"];
    let mut parts: Vec<String> = reason.into_iter().map(str::to_string).collect();
    if let Some(r) = text(&container["reason"]) {
        parts.push(format!("container: {r}"));
    }
    if let Some(code) = container["exitCode"].as_i64().filter(|c| *c != 0) {
        parts.push(format!("exit code {code}"));
    }
    RemoteStatus::new(state, raw, (!parts.is_empty()).then(|| parts.join("; ")))
}

/// `DescribeJobs` for up to 100 ids: a job Batch does not know is left out of the answer.
fn describe_jobs(ids: Vec<String>) -> Call {
    Call::rest_with(
        "DescribeJobs",
        Method::POST,
        "/v1/describejobs".into(),
        json!({ "jobs": ids }),
    )
}

/// The statuses of a `DescribeJobs` answer, by job id.
fn jobs_of(answer: &Value) -> Vec<(String, RemoteStatus)> {
    statuses(answer, ("jobs", "jobId"), job_status)
}

impl JobApi for BatchJobs {
    fn about(&self) -> About {
        About::new(PROVIDER, Protocol::Rest, Start::Gated, "job_id")
    }

    fn check(&self, spec: &Value) -> Result<(), String> {
        let has = |k: &str| text(&spec[k]).is_some();
        if !spec.is_object() || !has("jobQueue") || !has("jobDefinition") {
            return Err(
                "the job spec must be a SubmitJob body holding jobQueue and jobDefinition".into(),
            );
        }
        match spec.get("jobName") {
            None => Ok(()),
            Some(Value::String(n)) if name_ok(n) => Ok(()),
            Some(other) => Err(format!(
                "jobName {other} must start with a letter or digit and hold only \
                 letters, digits, - and _ (tether appends its key to it)"
            )),
        }
    }

    /// <https://docs.aws.amazon.com/batch/latest/APIReference/API_SubmitJob.html>
    fn start(&self, spec: &Value, key: &str) -> Call {
        let mut body = spec.clone();
        body["jobName"] = json!(job_name(spec.get("jobName").and_then(Value::as_str), key));
        Call::rest_with("SubmitJob", Method::POST, "/v1/submitjob".into(), body)
    }

    fn started(&self, spec: &Value, _key: &str, answer: &Value) -> Result<Value, ProviderError> {
        let id = answered(PROVIDER, "SubmitJob", answer, "/jobId")?;
        Ok(json!({"job_queue": spec["jobQueue"], "job_id": id}))
    }

    /// <https://docs.aws.amazon.com/batch/latest/APIReference/API_DescribeJobs.html>
    fn describe(&self, handle: &Handle) -> Result<Call, ProviderError> {
        Ok(describe_jobs(vec![handle_field(
            handle, "job_id", PROVIDER,
        )?]))
    }

    fn status(&self, handle: &Handle, answer: &Value) -> Result<RemoteStatus, ProviderError> {
        let id = handle_field(handle, "job_id", PROVIDER)?;
        jobs_of(answer)
            .into_iter()
            .find_map(|(job, status)| (job == id).then_some(status))
            .ok_or_else(|| ProviderError::not_found(PROVIDER, format!("DescribeJobs: no job {id}")))
    }

    /// <https://docs.aws.amazon.com/batch/latest/APIReference/API_TerminateJob.html>
    fn stop(&self, handle: &Handle) -> Result<Call, ProviderError> {
        let id = handle_field(handle, "job_id", PROVIDER)?;
        Ok(Call::rest_with(
            "TerminateJob",
            Method::POST,
            "/v1/terminatejob".into(),
            json!({"jobId": id, "reason": CANCEL_REASON}),
        ))
    }

    /// The queue's jobs named with the key (`ListJobs` with the `JOB_NAME` filter, which
    /// covers every status; paged by `nextToken`).
    fn find(&self, spec: &Value, key: &str) -> Option<Listing> {
        let queue = spec.get("jobQueue").and_then(Value::as_str)?;
        let wanted = job_name(spec.get("jobName").and_then(Value::as_str), key);
        let body = json!({"jobQueue": queue, "maxResults": 100,
            "filters": [{"name": "JOB_NAME", "values": [wanted]}]});
        Some(Listing {
            call: Call::rest_with("ListJobs", Method::POST, "/v1/listjobs".into(), body),
            items: "jobSummaryList",
            next: "nextToken",
        })
    }

    fn found(&self, spec: &Value, key: &str, job: &Value) -> Option<(Value, Option<f64>)> {
        let wanted = job_name(spec.get("jobName").and_then(Value::as_str), key);
        // The filter matches names without regard to case: compare exactly.
        (job["jobName"].as_str() == Some(wanted.as_str())).then(|| {
            (
                json!({"job_queue": spec["jobQueue"], "job_id": job["jobId"]}),
                job["createdAt"].as_f64().map(|ms| ms / 1000.0),
            )
        })
    }

    /// `DescribeJobs` for up to 100 jobs a call.
    fn sweep_by(&self) -> Option<SweepBy> {
        Some(SweepBy::Ids {
            parent: None,
            id: "job_id",
            chunk: DESCRIBE_MAX,
        })
    }

    /// `DescribeJobs` of many ids answers each as it would alone: a job Batch does not know
    /// is left out either way.
    fn gathers(&self) -> bool {
        true
    }

    fn describe_ids(&self, _parent: &str, ids: Vec<String>) -> Option<Call> {
        Some(describe_jobs(ids))
    }

    fn described(&self, answer: &Value) -> Vec<(String, RemoteStatus)> {
        jobs_of(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_key_within_the_limit() {
        let key = "tether-0123456789abcdef0123456789abcdef";
        assert_eq!(job_name(None, key), key);
        assert_eq!(job_name(Some("nightly"), key), format!("nightly-{key}"));
        let long = "x".repeat(300);
        let name = job_name(Some(&long), key);
        assert_eq!(name.len(), NAME_MAX);
        assert!(name.ends_with(key) && name_ok(&name));
    }

    #[test]
    fn a_cancel_reads_cancelled_and_failures_carry_their_reason() {
        let cancelled = json!({"status": "FAILED", "statusReason": CANCEL_REASON});
        assert_eq!(job_status(&cancelled).state, JobState::Cancelled);
        let queued = json!({"status": "FAILED", "isCancelled": true});
        assert_eq!(job_status(&queued).state, JobState::Cancelled);
        let failed = json!({"status": "FAILED", "statusReason": "Essential container in task exited",
            "container": {"reason": "OutOfMemoryError: Container killed", "exitCode": 137}});
        let status = job_status(&failed);
        assert_eq!(status.state, JobState::Failed);
        assert_eq!(
            status.message.as_deref(),
            Some("Essential container in task exited; container: OutOfMemoryError: Container killed; exit code 137")
        );
        // Terminated by someone else (a timeout, the console): failed.
        let terminated = json!({"status": "FAILED", "isTerminated": true, "statusReason": "Job attempt duration exceeded timeout"});
        assert_eq!(job_status(&terminated).state, JobState::Failed);
    }
}
