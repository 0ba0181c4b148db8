//! The Amazon SageMaker part of the simulator: `Create`, `Describe`, `List` and `Stop` of
//! training and processing jobs (JSON 1.1, `SageMaker.<Operation>`), as botocore's
//! `sagemaker` model and the API reference describe them: a job name is unique per account
//! and region (a second create is `ResourceInUse`), and a job SageMaker does not have is a
//! `ValidationException` ("Requested resource not found").

use serde_json::{json, Value};

use super::service::{Request, ServiceSim};
use super::{bad, new_job, page_answer, page_size, sample_name, Inner, OpResult, SimJob};
use crate::config::Service;

/// The JSON 1.1 target prefix.
pub(super) const TARGET: &str = "SageMaker";

/// The SageMaker part of the simulator, for one flavor of job.
#[derive(Debug)]
pub(super) struct Jobs(Service);

/// Training jobs.
pub(super) static TRAINING: Jobs = Jobs(Service::SageMakerTraining);

/// Processing jobs.
pub(super) static PROCESSING: Jobs = Jobs(Service::SageMakerProcessing);

impl ServiceSim for Jobs {
    /// "SageMaker Training / Processing Job State Change": the job as `Describe*Job`
    /// answers it, its times in milliseconds (as the event carries them).
    fn event_detail(&self, j: &SimJob) -> Option<Value> {
        let mut job = job_json(j);
        for field in ["CreationTime", "LastModifiedTime"] {
            if let Some(seconds) = job[field].as_f64() {
                job[field] = json!(super::events::ms(seconds));
            }
        }
        Some(job)
    }

    fn sample_spec(&self, name: &str) -> Value {
        sample_spec(self.0, name)
    }

    fn lie_success(&self, entry: &mut Value) {
        lie_success(self.0, entry);
    }

    fn call(&self, inner: &mut Inner, request: &Request, input: &Value) -> OpResult {
        route(inner, request.target, input)
    }
}

/// The service a SageMaker operation is about.
pub(super) fn service_of(target: &str) -> Service {
    if target.contains("Processing") {
        Service::SageMakerProcessing
    } else {
        Service::SageMakerTraining
    }
}

/// The simulator's id of a job: names are unique per flavor.
pub(super) fn job_key(service: Service, name: &str) -> String {
    format!("{}:{name}", service.kind())
}

/// A job spec the simulator runs.
fn sample_spec(service: Service, name: &str) -> Value {
    let name = sample_name(name, |c| c.is_ascii_alphanumeric())
        .trim_matches('-')
        .to_string();
    let name = if name.is_empty() {
        "job".to_string()
    } else {
        name
    };
    match service {
        Service::SageMakerProcessing => json!({"ProcessingJobName": name,
            "RoleArn": "arn:aws:iam::000000000000:role/sagemaker",
            "AppSpecification": {"ImageUri": "000000000000.dkr.ecr.us-east-1.amazonaws.com/sim:latest"},
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30}}}),
        _ => json!({"TrainingJobName": name,
            "RoleArn": "arn:aws:iam::000000000000:role/sagemaker",
            "AlgorithmSpecification": {"TrainingImage": "000000000000.dkr.ecr.us-east-1.amazonaws.com/sim:latest", "TrainingInputMode": "File"},
            "OutputDataConfig": {"S3OutputPath": "s3://sim/output"},
            "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30},
            "StoppingCondition": {"MaxRuntimeInSeconds": 86400}}),
    }
}

fn noun(service: Service) -> &'static str {
    match service {
        Service::SageMakerProcessing => "Processing",
        _ => "Training",
    }
}

/// What a lying list says: completed.
fn lie_success(service: Service, entry: &mut Value) {
    entry[format!("{}JobStatus", noun(service))] = json!("Completed");
    if let Some(o) = entry.as_object_mut() {
        o.remove("FailureReason");
    }
}

/// A job as `Describe*Job` answers it (the list's summaries carry its name, ARN, times and
/// status).
fn job_json(j: &SimJob) -> Value {
    let n = noun(j.service);
    let state = j.state();
    let mut job = json!({
        format!("{n}JobName"): j.name,
        format!("{n}JobArn"): format!("arn:aws:sagemaker:us-east-1:000000000000:{}-job/{}", n.to_lowercase(), j.name),
        format!("{n}JobStatus"): state,
        "CreationTime": j.created_at,
        "LastModifiedTime": j.created_at,
    });
    if state == "Failed" {
        job["FailureReason"] = json!("AlgorithmError: simulated job failure");
    }
    if j.service == Service::SageMakerTraining {
        job["SecondaryStatus"] = json!(match state {
            "InProgress" => "Training",
            other => other,
        });
    }
    job
}

/// One SageMaker request: the operation `target` with the JSON `input`.
fn route(inner: &mut Inner, target: &str, input: &Value) -> OpResult {
    let service = service_of(target);
    let n = noun(service);
    let name = input[format!("{n}JobName")]
        .as_str()
        .unwrap_or("")
        .to_string();
    let missing = || {
        bad(
            "ValidationException",
            "Requested resource not found.".to_string(),
        )
    };
    let op = target.strip_prefix(TARGET).unwrap_or("");
    match op.trim_start_matches('.') {
        o if o == format!("Create{n}Job") => {
            let valid = !name.is_empty()
                && name.len() <= 63
                && name.starts_with(|c: char| c.is_ascii_alphanumeric())
                && name.ends_with(|c: char| c.is_ascii_alphanumeric())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !valid {
                return Err(bad(
                    "ValidationException",
                    format!("1 validation error detected: Value '{name}' at '{}JobName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){{0,62}}", n.to_lowercase()),
                ));
            }
            if input["RoleArn"].as_str().is_none_or(str::is_empty) {
                return Err(bad("ValidationException", "RoleArn is required".into()));
            }
            let id = job_key(service, &name);
            if inner.by_id.contains_key(&id) {
                return Err(bad(
                    "ResourceInUse",
                    format!("{n} job names must be unique within an AWS account and region, and a {} job with this name already exists (arn:aws:sagemaker:us-east-1:000000000000:{}-job/{name})", n.to_lowercase(), n.to_lowercase()),
                ));
            }
            new_job(inner, service, id, "", &name, Value::Null, "");
            Ok(
                json!({ format!("{n}JobArn"): format!("arn:aws:sagemaker:us-east-1:000000000000:{}-job/{name}", n.to_lowercase()) }),
            )
        }
        o if o == format!("Describe{n}Job") => {
            inner.stats.status_requests += 1;
            let Some(i) = inner.lookup(&job_key(service, &name)) else {
                return Err(missing());
            };
            inner.jobs[i].last_seen = Some(std::time::Instant::now());
            Ok(job_json(&inner.jobs[i]))
        }
        o if o == format!("List{n}Jobs") => {
            let status = input["StatusEquals"].as_str().map(str::to_string);
            let after = input["CreationTimeAfter"]
                .as_f64()
                .or_else(|| crate::timestamp(&input["CreationTimeAfter"]));
            let size = page_size(&input["MaxResults"], 10, 100, "MaxResults")?;
            // SageMaker reads MaxResults jobs, then filters them by StatusEquals: a page may
            // be short or empty while NextToken goes on (the catalog's list-filter edge).
            let (jobs, next) = super::list_page_then(
                inner,
                (service, ""),
                (input["NextToken"].as_str(), size),
                (
                    |j: &SimJob| after.is_none_or(|a| j.created_at > a),
                    |j: &SimJob| status.as_deref().is_none_or(|s| j.state() == s),
                ),
                job_json,
            )?;
            page_answer(format!("{n}JobSummaries"), jobs, "NextToken", next)
        }
        o if o == format!("Stop{n}Job") => {
            let Some(i) = inner.lookup(&job_key(service, &name)) else {
                return Err(missing());
            };
            let j = &mut inner.jobs[i];
            if j.finished() {
                return Err(bad(
                    "ValidationException",
                    format!(
                        "The request was rejected because the {} job is in status {}.",
                        n.to_lowercase(),
                        j.state()
                    ),
                ));
            }
            j.cancel();
            inner.harness.counters.cancelled();
            Ok(json!({}))
        }
        other => Err(bad(
            "UnknownOperationException",
            format!("unknown operation {TARGET}.{other}"),
        )),
    }
}
