//! What one service's part of the simulator gives the shared server ([`ServiceSim`]), and
//! which part serves each service ([`of`]): the one place a new service joins the simulator.
//! A part that leaves out a method does not compile, where a missed `match` arm used to
//! fall through to another service's answer.

use axum::http::Method;
use serde_json::Value;

use super::{athena, batch, ecs, emr, emr_containers, emr_serverless, glue};
use super::{redshift_data, sagemaker, stepfunctions, Call, Inner, OpResult, SimJob};
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
    /// The query text's last comment, `-- tether:<key>` (Athena: the client token is the key
    /// padded to 32 characters, so it is not the key when the key is shorter).
    QueryComment,
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
            KeyIn::QueryComment => arguments["QueryString"]
                .as_str()
                .and_then(|q| q.rsplit_once("-- tether:"))
                .map_or("", |(_, key)| key.trim())
                .to_string(),
        }
    }
}

/// Which requests start and stop jobs, as faults tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Writes {
    /// A JSON protocol's operations: the start and the stop.
    Ops(&'static str, &'static str),
    /// REST paths (all `POST`): the start, and the stops.
    Paths(&'static str, &'static [&'static str]),
    /// A REST job-run API (EMR Serverless, EMR on EKS): `POST .../jobruns` starts,
    /// `DELETE .../jobruns/{id}` cancels.
    JobRuns,
}

/// What a service's part is, apart from its answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct About {
    /// Where a new job carries the key.
    pub key_in: KeyIn,
    /// Which requests start and stop jobs.
    pub writes: Writes,
}

impl About {
    /// A part whose jobs carry the key `key_in` and which `writes` start and stop.
    pub const fn new(key_in: KeyIn, writes: Writes) -> Self {
        Self { key_in, writes }
    }

    /// Whether `request` submits, cancels or does neither.
    pub fn call_of(&self, request: &Request) -> Call {
        match self.writes {
            Writes::Ops(start, stop) => match request.op() {
                op if op == start => Call::Submit,
                op if op == stop => Call::Cancel,
                _ => Call::Other,
            },
            Writes::Paths(start, _) if request.path == start => Call::Submit,
            Writes::Paths(_, stops) if stops.contains(&request.path) => Call::Cancel,
            Writes::Paths(..) => Call::Other,
            Writes::JobRuns => match *request.method {
                Method::POST if request.path.ends_with("/jobruns") => Call::Submit,
                Method::DELETE if request.path.contains("/jobruns/") => Call::Cancel,
                _ => Call::Other,
            },
        }
    }

    /// Whether the service speaks REST JSON, whose throttling answers 429
    /// `TooManyRequestsException` (the JSON protocols answer 400 `ThrottlingException`).
    pub fn rest(&self) -> bool {
        !matches!(self.writes, Writes::Ops(..))
    }
}

/// One service's part of the simulator: its answers (its states are `states.rs`', the rest
/// of what it is [`about`]'s).
pub(super) trait ServiceSim: Sync {
    /// A job spec the simulator runs, for a job called after `name`.
    fn sample_spec(&self, name: &str) -> Value;

    /// Makes a listed or read entry say the job succeeded (the lying-list fault).
    fn lie_success(&self, entry: &mut Value);

    /// Answers `request` with the JSON body `input` (`{}` without one).
    fn call(&self, inner: &mut Inner, request: &Request, input: &Value) -> OpResult;

    /// The `detail` of the EventBridge event the service sends for `job` in its state now
    /// (`crate::events`' shape), or none where the service documents no event for that
    /// state.
    fn event_detail(&self, job: &SimJob) -> Option<Value>;
}

/// What `service`'s part is, apart from its answers: where a job carries the key, and which
/// requests start and stop jobs.
pub(super) fn about(service: Service) -> About {
    use KeyIn::{ClientToken, GlueArgument, NameEnd, NameTag, QueryComment};
    use Writes::{JobRuns, Ops, Paths};
    let (key_in, writes) = match service {
        Service::Emr => (NameTag, Ops("AddJobFlowSteps", "CancelSteps")),
        Service::EmrServerless | Service::EmrContainers => (ClientToken, JobRuns),
        Service::Glue => (GlueArgument, Ops("StartJobRun", "BatchStopJobRun")),
        Service::Batch => (NameEnd, Paths("/v1/submitjob", &BATCH_STOPS)),
        Service::Ecs => (ClientToken, Ops("RunTask", "StopTask")),
        Service::StepFunctions => (NameEnd, Ops("StartExecution", "StopExecution")),
        Service::SageMakerTraining => (NameEnd, Ops("CreateTrainingJob", "StopTrainingJob")),
        Service::SageMakerProcessing => (NameEnd, Ops("CreateProcessingJob", "StopProcessingJob")),
        Service::RedshiftData => (ClientToken, Ops("ExecuteStatement", "CancelStatement")),
        Service::Athena => (
            QueryComment,
            Ops("StartQueryExecution", "StopQueryExecution"),
        ),
    };
    About::new(key_in, writes)
}

/// Batch's stops: `TerminateJob` and `CancelJob`.
const BATCH_STOPS: [&str; 2] = ["/v1/terminatejob", "/v1/canceljob"];

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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::KeyIn;

    #[test]
    fn a_query_counts_under_its_key_however_short() {
        // The conformance suite's keys are 25 to 33 characters; Athena's token pads a short
        // one, so the key is read from the query's comment (the suite failed one run in ten).
        let query = json!({"QueryString": "SELECT 1\n-- tether:tether-athena-d-1-42"});
        let token = format!("{:-<32}", "tether-athena-d-1-42");
        assert_eq!(
            KeyIn::QueryComment.of("", &query, &token),
            "tether-athena-d-1-42"
        );
        assert_eq!(KeyIn::ClientToken.of("", &query, &token), token);
    }
}
