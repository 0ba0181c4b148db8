//! What one service's part of the simulator gives the shared server ([`ServiceSim`]), and
//! which part serves each service ([`of`]): the one place a new service joins the simulator.
//! A part that leaves out a method does not compile, where a missed `match` arm used to
//! fall through to another service's answer.

use axum::http::Method;
use serde_json::Value;
use tether_provider::JobState;

use super::{athena, batch, ecs, emr, emr_containers, emr_serverless, glue};
use super::{redshift_data, sagemaker, stepfunctions, Call, Inner, OpResult};
use crate::config::Service;

/// A request's route (its JSON body goes beside it).
#[derive(Debug, Clone, Copy)]
pub(super) struct Request<'a> {
    /// The HTTP method.
    pub method: &'a Method,
    /// The path, without the query.
    pub path: &'a str,
    /// The query ("" without one).
    pub query: &'a str,
    /// The JSON protocols' `X-Amz-Target` (`AWSGlue.StartJobRun`); "" for REST.
    pub target: &'a str,
}

impl Request<'_> {
    /// The JSON protocols' operation: the target after its prefix (`StartJobRun`).
    pub fn op(&self) -> &str {
        self.target.split_once('.').map_or("", |(_, op)| op)
    }
}

/// Where a new job carries tether's idempotency key, as [`super::SimStats::by_key`] counts
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyIn {
    /// The request's client token.
    ClientToken,
    /// The end of the name, `... [<key>]` (EMR step names).
    NameTag,
    /// The end of the name, from `tether-` on.
    NameEnd,
    /// Glue's job argument `--tether-key`.
    GlueArgument,
}

impl KeyIn {
    /// The key of a job named `name` with `arguments`, started with `client_token`.
    pub fn of(self, name: &str, arguments: &Value, client_token: &str) -> String {
        match self {
            KeyIn::ClientToken => client_token.to_string(),
            KeyIn::NameTag => name
                .rsplit_once(" [")
                .and_then(|(_, tag)| tag.strip_suffix(']'))
                .unwrap_or(name)
                .to_string(),
            KeyIn::NameEnd => name
                .rfind("tether-")
                .map_or(name, |i| &name[i..])
                .to_string(),
            KeyIn::GlueArgument => arguments["--tether-key"].as_str().unwrap_or("").to_string(),
        }
    }
}

/// One service's part of the simulator.
pub(super) trait ServiceSim: Sync {
    /// The states of botocore's model for the service, and what each reads as (the
    /// conformance suite holds the adapter to them).
    fn documented_states(&self) -> &'static [(&'static str, JobState)];

    /// The states a simulated job's schedule passes through: pending, running, succeeded,
    /// cancelled and failed.
    fn lifecycle(&self) -> [&'static str; 5];

    /// A job spec the simulator runs, for a job called after `name`.
    fn sample_spec(&self, name: &str) -> Value;

    /// Makes a listed or read entry say the job succeeded (the lying-list fault).
    fn lie_success(&self, entry: &mut Value);

    /// Where a new job carries the key.
    fn key_in(&self) -> KeyIn;

    /// Whether `request` submits, cancels or does neither (what faults tell apart).
    fn call_of(&self, request: &Request) -> Call;

    /// Answers `request` with the JSON body `input` (`{}` without one).
    fn call(&self, inner: &mut Inner, request: &Request, input: &Value) -> OpResult;

    /// Whether the service speaks REST JSON, whose throttling answers 429
    /// `TooManyRequestsException` (the JSON protocols answer 400 `ThrottlingException`).
    fn rest(&self) -> bool {
        false
    }
}

impl Call {
    /// The call of a JSON protocol's operation `op`, given the service's submit and cancel.
    pub(super) fn by_op(op: &str, submit: &str, cancel: &str) -> Call {
        if op == submit {
            Call::Submit
        } else if op == cancel {
            Call::Cancel
        } else {
            Call::Other
        }
    }

    /// The call of a REST job-run API (EMR Serverless, EMR on EKS): `POST .../jobruns`
    /// starts, `DELETE .../jobruns/{id}` cancels.
    pub(super) fn of_job_runs(request: &Request) -> Call {
        match *request.method {
            Method::POST if request.path.ends_with("/jobruns") => Call::Submit,
            Method::DELETE if request.path.contains("/jobruns/") => Call::Cancel,
            _ => Call::Other,
        }
    }
}

/// The part of the simulator that serves `service`.
pub(super) fn of(service: Service) -> &'static dyn ServiceSim {
    match service {
        Service::Emr => &emr::Steps,
        Service::EmrServerless => &emr_serverless::JobRuns,
        Service::Glue => &glue::Runs,
        Service::Batch => &batch::Jobs,
        Service::Ecs => &ecs::Tasks,
        Service::StepFunctions => &stepfunctions::Executions,
        Service::SageMakerTraining => &sagemaker::TRAINING,
        Service::SageMakerProcessing => &sagemaker::PROCESSING,
        Service::EmrContainers => &emr_containers::JobRuns,
        Service::RedshiftData => &redshift_data::Statements,
        Service::Athena => &athena::Queries,
    }
}
