//! Amazon SageMaker training jobs and processing jobs (JSON 1.1, `SageMaker.<Operation>`,
//! SigV4 service `sagemaker`): two kinds, `sagemaker-training` and `sagemaker-processing`,
//! one kit description told apart by its [`Flavor`].
//!
//! A job spec is the `CreateTrainingJob` / `CreateProcessingJob` body. A job's name is unique
//! per account and region, and a second create with a name in use is refused with
//! `ResourceInUse`: tether names the job `<name>-<key>` (within 63 characters of
//! `[a-zA-Z0-9-]`), so a repeated submit either makes the job or learns it exists, and `find`
//! is one `Describe*Job` by that name (retries reattach instead of failing on "name already in
//! use", apache/airflow#7598).
//!
//! A coalesced sweep lists the jobs `InProgress` created since the oldest asked about
//! (`List*Jobs` with `StatusEquals` and `CreationTimeAfter`, 100 a page; SageMaker filters
//! after paging, so pages may be short): a job not listed has left `InProgress`, and its own
//! call says how.

use serde_json::{json, Value};
use tether_provider::{Handle, ProviderError, RemoteStatus};

use crate::config::{AwsConfig, Service};
use crate::keyed_name;
use crate::kit::{handle_field, text, About, Call, JobApi, Kit, Listing, Protocol, Start, SweepBy};

const TARGET: &str = "SageMaker";
/// The longest job name.
const NAME_MAX: usize = 63;

/// Which SageMaker jobs: the operations and field names of each.
#[derive(Debug, Clone, Copy)]
pub struct Flavor {
    /// The provider kind.
    pub kind: &'static str,
    /// The operations: create, describe, stop, list (`CreateTrainingJob`, ...).
    pub ops: [&'static str; 4],
    /// The name field of the create body and the answers (`TrainingJobName`).
    pub name_field: &'static str,
    /// The status field (`TrainingJobStatus`).
    pub status_field: &'static str,
    /// The list answer's items (`TrainingJobSummaries`).
    pub summaries: &'static str,
    /// The handle's field (`training_job_name`).
    pub handle_field: &'static str,
}

/// Training jobs.
pub const TRAINING: Flavor = Flavor {
    kind: "sagemaker-training",
    ops: [
        "CreateTrainingJob",
        "DescribeTrainingJob",
        "StopTrainingJob",
        "ListTrainingJobs",
    ],
    name_field: "TrainingJobName",
    status_field: "TrainingJobStatus",
    summaries: "TrainingJobSummaries",
    handle_field: "training_job_name",
};

/// Processing jobs.
pub const PROCESSING: Flavor = Flavor {
    kind: "sagemaker-processing",
    ops: [
        "CreateProcessingJob",
        "DescribeProcessingJob",
        "StopProcessingJob",
        "ListProcessingJobs",
    ],
    name_field: "ProcessingJobName",
    status_field: "ProcessingJobStatus",
    summaries: "ProcessingJobSummaries",
    handle_field: "processing_job_name",
};

/// The SageMaker adapter, for one flavor of job.
pub type SageMaker = Kit<Flavor>;

impl Kit<Flavor> {
    /// An adapter for the configured account and region; the flavor follows from the
    /// config's service.
    pub fn new(config: AwsConfig) -> Result<Self, ProviderError> {
        let flavor = match config.service {
            Service::SageMakerProcessing => PROCESSING,
            _ => TRAINING,
        };
        Self::with(flavor, config)
    }
}

/// The job name carrying `key`.
pub fn job_name(name: Option<&str>, key: &str) -> String {
    keyed_name(name, key, NAME_MAX)
}

/// `[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`, as the model says.
fn name_ok(name: &str) -> bool {
    name.len() <= NAME_MAX
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

impl Flavor {
    /// A job (from `Describe*Job` or `List*Jobs`) as tether sees it, with `FailureReason` as
    /// the message.
    fn job_status(&self, job: &Value) -> RemoteStatus {
        let raw = job[self.status_field].as_str().unwrap_or("").to_string();
        let mut message = text(&job["FailureReason"]).map(str::to_string);
        if let Some(exit) = text(&job["ExitMessage"]) {
            message = Some(match message {
                Some(m) => format!("{m} ({exit})"),
                None => exit.to_string(),
            });
        }
        RemoteStatus::new(crate::state::sagemaker_job(&raw), raw, message)
    }

    /// The handle of the key's job.
    fn keyed(&self, spec: &Value, key: &str) -> Value {
        let name = job_name(spec.get(self.name_field).and_then(Value::as_str), key);
        json!({ self.handle_field: name })
    }

    /// A call on the handle's job by its name.
    fn by_name(&self, op: &'static str, handle: &Handle) -> Result<Call, ProviderError> {
        let name = handle_field(handle, self.handle_field, self.kind)?;
        Ok(Call::rpc(op, json!({ self.name_field: name })))
    }
}

impl JobApi for Flavor {
    fn about(&self) -> About {
        // The unique name makes the submit idempotent: it may be repeated without a gate.
        About::new(
            self.kind,
            Protocol::Json11(TARGET),
            Start::Deduplicated,
            self.handle_field,
        )
    }

    fn check(&self, spec: &Value) -> Result<(), String> {
        let name_field = self.name_field;
        if !spec.is_object() || text(&spec["RoleArn"]).is_none() {
            return Err(format!(
                "the job spec must be a {} body holding RoleArn",
                self.ops[0]
            ));
        }
        match spec.get(name_field) {
            None => Ok(()),
            Some(Value::String(n)) if name_ok(n) => Ok(()),
            Some(other) => Err(format!(
                "{name_field} {other} must be letters, digits and dashes, starting and \
                 ending with a letter or digit (tether appends its key)"
            )),
        }
    }

    /// <https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTrainingJob.html>
    /// (and `CreateProcessingJob`).
    fn start(&self, spec: &Value, key: &str) -> Call {
        let mut body = spec.clone();
        body[self.name_field] = self.keyed(spec, key)[self.handle_field].clone();
        Call::rpc(self.ops[0], body)
    }

    fn started(&self, spec: &Value, key: &str, _answer: &Value) -> Result<Value, ProviderError> {
        Ok(self.keyed(spec, key))
    }

    /// `ResourceInUse`: the name is the key's, so the job was made before (by this key).
    fn adopt(&self, spec: &Value, key: &str, refusal: &ProviderError) -> Option<Value> {
        refusal
            .message
            .contains("ResourceInUse")
            .then(|| self.keyed(spec, key))
    }

    /// `DescribeTrainingJob` / `DescribeProcessingJob`.
    fn describe(&self, handle: &Handle) -> Result<Call, ProviderError> {
        self.by_name(self.ops[1], handle)
    }

    fn status(&self, _handle: &Handle, answer: &Value) -> Result<RemoteStatus, ProviderError> {
        Ok(self.job_status(answer))
    }

    /// `StopTrainingJob` / `StopProcessingJob`.
    fn stop(&self, handle: &Handle) -> Result<Call, ProviderError> {
        self.by_name(self.ops[2], handle)
    }

    /// The job the key names: `Describe*Job` by its name.
    fn named(&self, spec: &Value, key: &str) -> Option<Value> {
        Some(self.keyed(spec, key))
    }

    fn find(&self, _spec: &Value, _key: &str) -> Option<Listing> {
        None
    }

    fn found(&self, _spec: &Value, _key: &str, _entry: &Value) -> Option<(Value, Option<f64>)> {
        None
    }

    /// `List*Jobs` with `StatusEquals = InProgress` and `CreationTimeAfter` (100 a page).
    fn sweep_by(&self) -> Option<SweepBy> {
        Some(SweepBy::List {
            parent: None,
            id: self.handle_field,
        })
    }

    fn sweep_list(&self, _parent: &str, since: f64) -> Option<Listing> {
        Some(Listing {
            call: Call::rpc(
                self.ops[3],
                json!({"StatusEquals": "InProgress", "CreationTimeAfter": since, "MaxResults": 100}),
            ),
            items: self.summaries,
            next: "NextToken",
        })
    }

    fn listed(&self, job: &Value) -> Option<(String, RemoteStatus)> {
        let name = job[self.name_field].as_str()?;
        Some((name.to_string(), self.job_status(job)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_the_model() {
        let key = "tether-0123456789abcdef0123456789abcdef";
        let name = job_name(Some(&"a".repeat(100)), key);
        assert_eq!(name.len(), NAME_MAX);
        assert!(name_ok(&name), "{name}");
        assert!(name_ok(&job_name(None, key)));
        assert!(!name_ok("with_underscore") && !name_ok("-lead") && !name_ok("trail-"));
    }
}
