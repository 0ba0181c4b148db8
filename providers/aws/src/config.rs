//! AWS provider settings: which service, region, endpoint and profile, and the common
//! provider settings.
//!
//! Read from `[providers.NAME]` with `kind = "emr" | "emr-serverless" | "glue" | "batch" |
//! "ecs" | "stepfunctions" | "sagemaker-training" | "sagemaker-processing" | "emr-containers" |
//! "redshift-data" | "athena"`. The region
//! falls back to `AWS_REGION` / `AWS_DEFAULT_REGION`. Credentials are never configured here:
//! they come from the standard AWS chain (see `credential.rs`).

use std::time::Duration;

use tether_provider::settings::Table;
use tether_provider::CommonSettings;
use tether_provider::Problems;

/// The default `status_gather` of the kinds that gather status reads.
const DEFAULT_STATUS_GATHER: Duration = Duration::from_secs(1);
/// The longest `status_gather`.
const MAX_STATUS_GATHER: Duration = Duration::from_secs(10);

/// The AWS services tether runs jobs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// EMR on EC2: steps on a running cluster.
    Emr,
    /// EMR Serverless: job runs on an application.
    EmrServerless,
    /// Glue: job runs of a Glue job.
    Glue,
    /// AWS Batch: jobs on a job queue.
    Batch,
    /// Amazon ECS: tasks on a cluster.
    Ecs,
    /// AWS Step Functions: executions of a STANDARD state machine.
    StepFunctions,
    /// Amazon SageMaker training jobs.
    SageMakerTraining,
    /// Amazon SageMaker processing jobs.
    SageMakerProcessing,
    /// Amazon EMR on EKS: job runs on a virtual cluster.
    EmrContainers,
    /// Amazon Redshift Data API: SQL statements on a cluster or a serverless workgroup.
    RedshiftData,
    /// Amazon Athena: SQL queries in a workgroup.
    Athena,
}

impl Service {
    /// The provider kind in tether's config.
    pub const fn kind(self) -> &'static str {
        match self {
            Service::Emr => "emr",
            Service::EmrServerless => "emr-serverless",
            Service::Glue => "glue",
            Service::Batch => "batch",
            Service::Ecs => "ecs",
            Service::StepFunctions => "stepfunctions",
            Service::SageMakerTraining => "sagemaker-training",
            Service::SageMakerProcessing => "sagemaker-processing",
            Service::EmrContainers => "emr-containers",
            Service::RedshiftData => "redshift-data",
            Service::Athena => "athena",
        }
    }

    /// Every service, in the order tether lists its kinds.
    pub const ALL: [Service; 11] = [
        Service::Emr,
        Service::EmrServerless,
        Service::Glue,
        Service::Batch,
        Service::Ecs,
        Service::StepFunctions,
        Service::SageMakerTraining,
        Service::SageMakerProcessing,
        Service::EmrContainers,
        Service::RedshiftData,
        Service::Athena,
    ];

    /// The kinds of [`Service::ALL`], in that order.
    pub const KINDS: [&'static str; Service::ALL.len()] = {
        let mut kinds = [""; Service::ALL.len()];
        let mut i = 0;
        while i < kinds.len() {
            kinds[i] = Service::ALL[i].kind();
            i += 1;
        }
        kinds
    };

    /// The SigV4 signing name.
    pub fn signing_name(self) -> &'static str {
        match self {
            Service::Emr => "elasticmapreduce",
            Service::EmrServerless => "emr-serverless",
            Service::Glue => "glue",
            Service::Batch => "batch",
            Service::Ecs => "ecs",
            Service::StepFunctions => "states",
            Service::SageMakerTraining | Service::SageMakerProcessing => "sagemaker",
            Service::EmrContainers => "emr-containers",
            Service::RedshiftData => "redshift-data",
            Service::Athena => "athena",
        }
    }

    /// The first label of the service's public endpoint (`https://<host>.<region>.amazonaws.com`).
    pub fn endpoint_prefix(self) -> &'static str {
        match self {
            Service::Emr => "elasticmapreduce",
            Service::SageMakerTraining | Service::SageMakerProcessing => "api.sagemaker",
            other => other.signing_name(),
        }
    }

    /// The service's kind from tether's config.
    pub fn from_kind(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.kind() == kind)
    }
}

/// Checked AWS provider settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsConfig {
    /// Which service.
    pub service: Service,
    /// The region (`us-east-1`, ...).
    pub region: String,
    /// The endpoint, without a trailing slash: the public one by default, or an override (a
    /// VPC endpoint, a simulator).
    pub endpoint: String,
    /// A named profile of the shared config files, if not the default one.
    pub profile: Option<String>,
    /// Polling, rate limit, retries, timeouts.
    pub common: CommonSettings,
    /// How many pages `find` lists at most.
    pub find_max_pages: u32,
    /// The window within which single status reads are gathered into one call (Batch and
    /// ECS, whose describe calls take many ids; `None`: each read is its own call).
    pub status_gather: Option<Duration>,
}

impl AwsConfig {
    /// Builds the config from a provider table and the environment, reporting every bad or
    /// missing field (prefixed with `prefix`).
    pub fn build(
        prefix: &str,
        service: Service,
        mut table: Table,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Vec<String>> {
        let mut p = Problems::new(prefix);
        table.remove("kind");
        let common = CommonSettings::take_from(&mut table, &mut p, crate::edges::of(service));
        let region = p
            .string(&mut table, "region")
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .filter(|r| !r.trim().is_empty());
        let endpoint = p.string(&mut table, "endpoint_url");
        let profile = p.string(&mut table, "profile");
        let find_max_pages = p.positive(&mut table, "find_max_pages").unwrap_or(20);
        let gathers = matches!(service, Service::Batch | Service::Ecs);
        let status_gather = match p.duration_or_zero(&mut table, "status_gather") {
            Some(_) if !gathers => {
                p.at(
                    "status_gather",
                    format!(
                        "{} reads one job a status call: only batch and ecs gather reads",
                        service.kind()
                    ),
                );
                None
            }
            Some(w) if w > MAX_STATUS_GATHER => {
                p.at("status_gather", "at most 10s (it delays every status read)");
                None
            }
            Some(w) => Some(w).filter(|w| !w.is_zero()),
            None => gathers.then_some(DEFAULT_STATUS_GATHER),
        };
        p.unknown("", &table);
        let Some(region) = region else {
            p.at("region", "missing (set it, or AWS_REGION)");
            return Err(p.into_lines());
        };
        if !region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            p.at(
                "region",
                format!("{region:?} is not a region name such as us-east-1"),
            );
        }
        let endpoint = match endpoint {
            Some(e) if e.starts_with("https://") || e.starts_with("http://") => {
                e.trim_end_matches('/').to_string()
            }
            Some(e) => {
                p.at(
                    "endpoint_url",
                    format!("{e:?} must start with https:// (or http:// for a simulator)"),
                );
                String::new()
            }
            None => format!(
                "https://{}.{region}.amazonaws.com",
                service.endpoint_prefix()
            ),
        };
        p.into_result(())?;
        Ok(Self {
            service,
            region,
            endpoint,
            profile,
            common,
            find_max_pages,
            status_gather,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_from_env_and_default_endpoint() {
        let env = |v: &str| (v == "AWS_REGION").then(|| "eu-west-1".to_string());
        let c = AwsConfig::build("p", Service::Glue, Table::new(), env).unwrap();
        assert_eq!(c.endpoint, "https://glue.eu-west-1.amazonaws.com");
        let t: Table = [
            ("region".to_string(), "us-east-1".into()),
            ("endpoint_url".to_string(), "http://127.0.0.1:5000/".into()),
        ]
        .into();
        let c = AwsConfig::build("p", Service::Emr, t, |_| None).unwrap();
        assert_eq!(c.endpoint, "http://127.0.0.1:5000");
    }

    #[test]
    fn reports_every_problem() {
        let t: Table = [
            ("endpoint_url".to_string(), "ftp://x".into()),
            ("secret_access_key".to_string(), "x".into()),
        ]
        .into();
        let err = AwsConfig::build("providers.emr", Service::Emr, t, |_| None)
            .unwrap_err()
            .join("\n");
        assert!(err.contains("providers.emr.region: missing"), "{err}");
        assert!(err.contains("secret_access_key: unknown field"), "{err}");
    }

    #[test]
    fn status_reads_gather_for_batch_and_ecs_only() {
        let with = |gather: &str| -> Table {
            [
                ("region".to_string(), "us-east-1".into()),
                ("status_gather".to_string(), gather.into()),
            ]
            .into()
        };
        let region: Table = [("region".to_string(), "us-east-1".into())].into();
        let batch = AwsConfig::build("p", Service::Batch, region.clone(), |_| None).unwrap();
        assert_eq!(batch.status_gather, Some(DEFAULT_STATUS_GATHER));
        let emr = AwsConfig::build("p", Service::Emr, region, |_| None).unwrap();
        assert_eq!(emr.status_gather, None);
        let off = AwsConfig::build("p", Service::Ecs, with("0s"), |_| None).unwrap();
        assert_eq!(off.status_gather, None);
        let err = AwsConfig::build("providers.glue", Service::Glue, with("1s"), |_| None)
            .unwrap_err()
            .join("\n");
        assert!(
            err.contains("providers.glue.status_gather: glue reads one job"),
            "{err}"
        );
        let err = AwsConfig::build("providers.b", Service::Batch, with("11s"), |_| None)
            .unwrap_err()
            .join("\n");
        assert!(
            err.contains("providers.b.status_gather: at most 10s"),
            "{err}"
        );
    }
}
