//! How tether finds this crate: [`FACTORY`], its kinds (`emr`, `emr-serverless`, `glue`,
//! `batch`, `ecs`, `stepfunctions`, `sagemaker-training`, `sagemaker-processing`,
//! `emr-containers`, `redshift-data`, `athena`),
//! their settings check, their adapters and (feature `sim`) their simulator.

use std::sync::Arc;

use tether_provider::registry::{Checked, Env, ProviderFactory, ProviderSettings};
use tether_provider::settings::Table;
use tether_provider::{CommonSettings, Provider, ProviderError};

use crate::{
    Athena, AwsConfig, Batch, Ecs, Emr, EmrContainers, EmrServerless, Glue, RedshiftData,
    SageMaker, Service, StepFunctions,
};

/// The AWS providers, as tether's registry lists them.
pub static FACTORY: Factory = Factory;

/// See [`FACTORY`].
#[derive(Debug)]
pub struct Factory;

impl ProviderFactory for Factory {
    fn kinds(&self) -> &'static [&'static str] {
        &Service::KINDS
    }

    fn edges(&self, kind: &str) -> &'static tether_provider::Edges {
        crate::edges::of(Service::from_kind(kind).expect("one of the factory's kinds"))
    }

    fn check(&self, kind: &str, prefix: &str, table: Table, env: Env<'_>) -> Checked {
        let service = Service::from_kind(kind)
            .ok_or_else(|| vec![format!("{prefix}.kind: {kind:?} is not an AWS kind")])?;
        Ok(Arc::new(AwsConfig::build(prefix, service, table, env)?))
    }

    fn event_kinds(&self) -> &'static [&'static str] {
        &[crate::sqs::KIND]
    }

    /// `aws-sqs`: the AWS kinds' EventBridge events from an SQS queue (see `sqs.rs`).
    fn event_source(
        &self,
        kind: &str,
        prefix: &str,
        table: Table,
        env: Env<'_>,
    ) -> Result<Arc<dyn tether_provider::events::EventSource>, Vec<String>> {
        if kind != crate::sqs::KIND {
            return Err(vec![format!(
                "{prefix}.kind: {kind:?} is not an AWS event source kind (aws-sqs)"
            )]);
        }
        let config = crate::sqs::SqsConfig::build(prefix, table, env)?;
        let source =
            crate::sqs::SqsSource::new(config).map_err(|e| vec![format!("{prefix}: {e}")])?;
        Ok(Arc::new(source))
    }

    #[cfg(feature = "sim")]
    fn simulators(&self) -> Option<&dyn tether_provider::registry::SimFactory> {
        Some(&crate::sim::SIMULATORS)
    }
}

impl ProviderSettings for AwsConfig {
    fn kind(&self) -> &'static str {
        self.service.kind()
    }

    fn common(&self) -> &CommonSettings {
        &self.common
    }

    fn adapter(&self) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(match self.service {
            Service::Emr => Arc::new(Emr::new(self.clone())?),
            Service::EmrServerless => Arc::new(EmrServerless::new(self.clone())?),
            Service::Glue => Arc::new(Glue::new(self.clone())?),
            Service::Batch => Arc::new(Batch::new(self.clone())?),
            Service::Ecs => Arc::new(Ecs::new(self.clone())?),
            Service::StepFunctions => Arc::new(StepFunctions::new(self.clone())?),
            Service::SageMakerTraining | Service::SageMakerProcessing => {
                Arc::new(SageMaker::new(self.clone())?)
            }
            Service::EmrContainers => Arc::new(EmrContainers::new(self.clone())?),
            Service::RedshiftData => Arc::new(RedshiftData::new(self.clone())?),
            Service::Athena => Arc::new(Athena::new(self.clone())?),
        })
    }
}
