//! Amazon SageMaker training jobs and processing jobs (JSON 1.1, `SageMaker.<Operation>`,
//! SigV4 service `sagemaker`): two kinds, `sagemaker-training` and `sagemaker-processing`,
//! one adapter told apart by its [`Flavor`].
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

use async_trait::async_trait;
use serde_json::{json, Value};
use tether_provider::http::Idempotency;
use tether_provider::{
    ErrorKind, Handle, Provider, ProviderError, RemoteStatus, SendGate, Sweep, Tracked,
};

use crate::client::AwsClient;
use crate::config::{AwsConfig, Service};
use crate::{each_page, field, keyed_name, sweep, Group};

const TARGET: &str = "SageMaker";
/// The longest job name.
const NAME_MAX: usize = 63;

/// Which SageMaker jobs: the operations and field names of each.
#[derive(Debug, Clone, Copy)]
pub struct Flavor {
    /// The provider kind.
    pub kind: &'static str,
    /// `Training` or `Processing`: the operations are `Create<it>Job`, `Describe<it>Job`, ...
    pub noun: &'static str,
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
    noun: "Training",
    name_field: "TrainingJobName",
    status_field: "TrainingJobStatus",
    summaries: "TrainingJobSummaries",
    handle_field: "training_job_name",
};

/// Processing jobs.
pub const PROCESSING: Flavor = Flavor {
    kind: "sagemaker-processing",
    noun: "Processing",
    name_field: "ProcessingJobName",
    status_field: "ProcessingJobStatus",
    summaries: "ProcessingJobSummaries",
    handle_field: "processing_job_name",
};

/// The SageMaker adapter, for one flavor of job.
#[derive(Debug)]
pub struct SageMaker {
    client: AwsClient,
    config: AwsConfig,
    flavor: Flavor,
}

impl SageMaker {
    /// An adapter for the configured account and region; the flavor follows from the
    /// config's service.
    pub fn new(config: AwsConfig) -> Result<Self, ProviderError> {
        let flavor = match config.service {
            Service::SageMakerProcessing => PROCESSING,
            _ => TRAINING,
        };
        Ok(Self {
            client: AwsClient::new(&config)?,
            config,
            flavor,
        })
    }

    /// The client, for calls tether does not wrap.
    pub fn client(&self) -> &AwsClient {
        &self.client
    }

    fn op(&self, verb: &str) -> String {
        format!("{verb}{}Job", self.flavor.noun)
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

impl SageMaker {
    /// A job (from `Describe*Job` or `List*Jobs`) as tether sees it, with `FailureReason` as
    /// the message.
    fn job_status(&self, job: &Value) -> RemoteStatus {
        let raw = job[self.flavor.status_field]
            .as_str()
            .unwrap_or("")
            .to_string();
        let mut message = job["FailureReason"]
            .as_str()
            .filter(|m| !m.is_empty())
            .map(str::to_string);
        if let Some(exit) = job["ExitMessage"].as_str().filter(|m| !m.is_empty()) {
            message = Some(match message {
                Some(m) => format!("{m} ({exit})"),
                None => exit.to_string(),
            });
        }
        RemoteStatus {
            state: crate::state::sagemaker_job(&raw),
            raw_state: raw,
            message,
            url: None,
            next_poll_hint: None,
        }
    }

    fn handle(&self, name: &str) -> Handle {
        Handle::new(json!({ self.flavor.handle_field: name }))
    }

    /// The jobs `InProgress` created since the oldest asked about.
    async fn list_in_progress(
        &self,
        group: Group,
    ) -> Result<(Vec<(usize, RemoteStatus)>, u64), ProviderError> {
        let mut found = Vec::new();
        let op = format!("List{}Jobs", self.flavor.noun);
        let list = |token: Option<String>| {
            let mut body = json!({"StatusEquals": "InProgress", "CreationTimeAfter": group.since,
                "MaxResults": 100});
            if let Some(t) = token {
                body["NextToken"] = json!(t);
            }
            let op = op.clone();
            async move {
                self.client
                    .json11(TARGET, &op, &body, Idempotency::Idempotent)
                    .await
            }
        };
        let calls = each_page(self.flavor.summaries, "NextToken", list, |job| {
            let name = job[self.flavor.name_field].as_str();
            if let Some(&i) = name.and_then(|n| group.wanted.get(n)) {
                found.push((i, self.job_status(job)));
            }
            true
        })
        .await?;
        Ok((found, calls))
    }
}

#[async_trait]
impl Provider for SageMaker {
    fn kind(&self) -> &'static str {
        self.flavor.kind
    }

    fn validate_spec(&self, spec: &Value) -> Result<(), ProviderError> {
        let kind = self.flavor.kind;
        let name_field = self.flavor.name_field;
        let ok = spec.is_object()
            && spec
                .get("RoleArn")
                .and_then(Value::as_str)
                .is_some_and(|r| !r.is_empty());
        if !ok {
            return Err(ProviderError::invalid_spec(
                kind,
                format!(
                    "the job spec must be a {} body holding RoleArn",
                    self.op("Create")
                ),
            ));
        }
        match spec.get(name_field) {
            None => Ok(()),
            Some(Value::String(n)) if name_ok(n) => Ok(()),
            Some(other) => Err(ProviderError::invalid_spec(
                kind,
                format!(
                    "{name_field} {other} must be letters, digits and dashes, starting and \
                     ending with a letter or digit (tether appends its key)"
                ),
            )),
        }
    }

    /// <https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTrainingJob.html>
    /// (and `CreateProcessingJob`).
    async fn submit(
        &self,
        spec: &Value,
        key: &str,
        // The unique name makes the submit idempotent: it may be repeated without a gate.
        _gate: &dyn SendGate,
    ) -> Result<Handle, ProviderError> {
        self.validate_spec(spec)?;
        let name_field = self.flavor.name_field;
        let name = job_name(spec.get(name_field).and_then(Value::as_str), key);
        let mut body = spec.clone();
        body[name_field] = json!(name);
        match self
            .client
            .json11(TARGET, &self.op("Create"), &body, Idempotency::Idempotent)
            .await
        {
            Ok(_) => Ok(self.handle(&name)),
            // The name is the key's: the job was made before (by this key).
            Err(e) if e.message.contains("ResourceInUse") => {
                tracing::info!(
                    provider = self.flavor.kind,
                    key,
                    "the job exists already: reattaching"
                );
                Ok(self.handle(&name))
            }
            Err(e) => Err(e),
        }
    }

    fn submit_is_idempotent(&self) -> bool {
        true
    }

    /// `DescribeTrainingJob` / `DescribeProcessingJob`.
    async fn status(&self, handle: &Handle) -> Result<RemoteStatus, ProviderError> {
        let name = field(handle, self.flavor.handle_field, self.flavor.kind)?;
        let out = self
            .client
            .json11(
                TARGET,
                &self.op("Describe"),
                &json!({ self.flavor.name_field: name }),
                Idempotency::Idempotent,
            )
            .await?;
        Ok(self.job_status(&out))
    }

    /// `StopTrainingJob` / `StopProcessingJob`.
    async fn cancel(&self, handle: &Handle) -> Result<(), ProviderError> {
        let name = field(handle, self.flavor.handle_field, self.flavor.kind)?;
        self.client
            .json11(
                TARGET,
                &self.op("Stop"),
                &json!({ self.flavor.name_field: name }),
                Idempotency::Idempotent,
            )
            .await?;
        Ok(())
    }

    /// The job the key names: `Describe*Job` by its name.
    async fn find(
        &self,
        key: &str,
        spec: &Value,
        _intent_ms: i64,
    ) -> Result<Vec<Handle>, ProviderError> {
        let name = job_name(
            spec.get(self.flavor.name_field).and_then(Value::as_str),
            key,
        );
        let handle = self.handle(&name);
        match self.status(&handle).await {
            Ok(_) => Ok(vec![handle]),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// `List*Jobs` with `StatusEquals = InProgress` and `CreationTimeAfter`.
    async fn status_many(&self, jobs: &[Tracked<'_>]) -> Result<Sweep, ProviderError> {
        sweep(jobs, (None, self.flavor.handle_field), |g| {
            self.list_in_progress(g)
        })
        .await
    }

    adapter_settings!();
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
