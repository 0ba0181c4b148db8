//! `tether sim KIND`: serve a provider simulator on a loopback port, with faults injected from
//! the command line (see [`FaultArgs`]). The kinds, and how each simulator starts, come from
//! the provider registry ([`crate::registry`]).

use std::time::Duration;

use clap::Args;
use tether_provider::registry::{SimCalls, SimFault, SimFaultKind, SimOptions, SimOutcome};
use tether_provider::settings::{Setting, Table};

use crate::Error;

/// Which simulator, and how it behaves.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// The provider kind, one of the registry's kinds with a simulator (the AWS simulator
    /// serves EMR, EMR Serverless and Glue on one port, whichever of the three is named).
    #[arg(value_name = "KIND", value_parser = simulated_kinds())]
    kind: String,
    /// Port on 127.0.0.1 (0 picks a free one) [default: 8089 for databricks, 8090 for the AWS
    /// kinds, 8092 for the Google kinds, 8093 for kubernetes].
    #[arg(long)]
    port: Option<u16>,
    /// How long a job stays pending.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pending: Duration,
    /// How long a job runs.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    running: Duration,
    /// databricks: the result_state runs end with (SUCCESS, FAILED, TIMEDOUT, ...).
    #[arg(long)]
    outcome: Option<String>,
    /// Make jobs fail instead of succeed.
    #[arg(long, conflicts_with = "outcome")]
    fail: bool,
    /// How long a new job answers "not found" and is left out of lists, as a service that
    /// is eventually consistent after create may (docs/src/providers/edges.md) [default: 0s].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    invisible_for: Option<Duration>,
    /// How long a job is kept once it ended, then forgotten, as a service with a retention
    /// does (docs/src/providers/edges.md) [default: kept for ever].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    forget_after: Option<Duration>,
    /// databricks and kubernetes: the bearer token it accepts [default: dapi-sim-token;
    /// kubernetes: a random one, written into the kubeconfig it prints].
    #[arg(long)]
    token: Option<String>,
    /// The AWS kinds (emr, glue, batch, ...): the access key id it accepts [default: AKIATETHERSIMULATOR].
    #[arg(long)]
    access_key_id: Option<String>,
    /// The AWS kinds: its secret (requests are checked with SigV4).
    #[arg(long)]
    secret_access_key: Option<String>,
    /// http: the API it speaks, `livy` (on 8998) or `dbt-cloud` (on 8097) [default: livy].
    #[arg(long)]
    api: Option<String>,
    /// The AWS kinds: send every job's EventBridge events (at each state change) to this SQS
    /// queue, as an EventBridge rule targeting it would (signed with the simulator's key pair).
    #[arg(long, value_name = "URL")]
    event_queue_url: Option<String>,
    /// The AWS kinds: the SQS endpoint of --event-queue-url [default: the queue URL's host].
    #[arg(long, value_name = "URL", requires = "event_queue_url")]
    event_endpoint_url: Option<String>,
    /// The Google kinds: publish every job's log entry (at each state change) to this topic
    /// (`projects/P/topics/T`) of the Pub/Sub emulator at --event-pubsub-endpoint, as a
    /// Cloud Logging sink would.
    #[arg(long, value_name = "TOPIC", requires = "event_pubsub_endpoint")]
    event_topic: Option<String>,
    /// The Google kinds: the Pub/Sub emulator's URL (`http://127.0.0.1:8085`).
    #[arg(long, value_name = "URL", requires = "event_topic")]
    event_pubsub_endpoint: Option<String>,
    #[command(flatten)]
    faults: FaultArgs,
}

/// Which requests injected faults hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FaultTarget {
    /// Submissions only (`runs/submit`, `run-now`, `AddJobFlowSteps`, `StartJobRun`).
    Submit,
    /// Every request.
    All,
}

/// Faults for the first requests, as a busy or failing provider answers them. They are
/// queued in the order of the options below, each for its count of requests.
#[derive(Debug, Args)]
pub struct FaultArgs {
    /// Throttle the first N requests (Databricks 429 REQUEST_LIMIT_EXCEEDED; EMR and Glue
    /// 400 ThrottlingException; EMR Serverless 429), with --retry-after.
    #[arg(long, value_name = "N", default_value_t = 0)]
    throttle_first: u32,
    /// Answer the next N requests 503 (temporarily unavailable), with --retry-after.
    #[arg(long, value_name = "N", default_value_t = 0)]
    unavailable_first: u32,
    /// Answer the next N requests 500 without processing them.
    #[arg(long, value_name = "N", default_value_t = 0)]
    error_first: u32,
    /// Answer the next N requests only after --slow-by.
    #[arg(long, value_name = "N", default_value_t = 0)]
    slow_first: u32,
    /// How late slow answers come.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    slow_by: Duration,
    /// Process the next N requests (a submit creates its job), then answer 500.
    #[arg(long, value_name = "N", default_value_t = 0)]
    fail_after_processing: u32,
    /// The Retry-After header of throttled and unavailable answers (whole seconds).
    #[arg(long, value_parser = humantime::parse_duration)]
    retry_after: Option<Duration>,
    /// Which requests the faults hit.
    #[arg(long, value_enum, default_value = "submit")]
    fault_on: FaultTarget,
}

impl FaultArgs {
    /// The faults, in the order they hit.
    fn faults(&self) -> Vec<SimFault> {
        [
            (
                self.throttle_first,
                SimFaultKind::Throttle(self.retry_after),
            ),
            (
                self.unavailable_first,
                SimFaultKind::Unavailable(self.retry_after),
            ),
            (self.error_first, SimFaultKind::ServerError),
            (self.slow_first, SimFaultKind::Delay(self.slow_by)),
            (
                self.fail_after_processing,
                SimFaultKind::FailAfterProcessing,
            ),
        ]
        .into_iter()
        .filter(|(times, _)| *times > 0)
        .map(|(times, kind)| SimFault {
            kind,
            times,
            calls: match self.fault_on {
                FaultTarget::Submit => SimCalls::Submits,
                FaultTarget::All => SimCalls::All,
            },
            lasting: None,
        })
        .collect()
    }

    fn describe(&self) -> String {
        let parts: Vec<String> = [
            (self.throttle_first, "throttled"),
            (self.unavailable_first, "answered 503"),
            (self.error_first, "answered 500"),
            (self.slow_first, "slow"),
            (self.fail_after_processing, "processed, then answered 500"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if parts.is_empty() {
            return String::new();
        }
        let target = match self.fault_on {
            FaultTarget::Submit => "submit requests",
            FaultTarget::All => "requests",
        };
        let retry_after = self.retry_after.map_or(String::new(), |d| {
            format!(" (Retry-After {})", humantime::format_duration(d))
        });
        format!(
            "faults for the first {target}: {}{retry_after}",
            parts.join(", then ")
        )
    }
}

/// The kinds `tether sim` serves: those of the registry whose crate has a simulator.
fn simulated_kinds() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        crate::registry::kinds()
            .into_iter()
            .filter(|kind| crate::registry::simulators(kind).is_some()),
    )
}

pub(super) async fn run(args: &SimArgs) -> Result<(), Error> {
    let bad = |message: String| Error::Usage(message);
    // Clap took only kinds with a simulator (`simulated_kinds`).
    let sims = crate::registry::simulators(&args.kind).expect("a kind with a simulator");
    let mut switches = Table::new();
    for (key, value) in [
        ("token", &args.token),
        ("access_key_id", &args.access_key_id),
        ("secret_access_key", &args.secret_access_key),
        ("api", &args.api),
        ("event_queue_url", &args.event_queue_url),
        ("event_endpoint_url", &args.event_endpoint_url),
        ("event_topic", &args.event_topic),
        ("event_pubsub_endpoint", &args.event_pubsub_endpoint),
    ] {
        if let Some(v) = value {
            switches.insert(key.to_string(), Setting::String(v.clone()));
        }
    }
    let options = SimOptions {
        port: args.port,
        pending: args.pending,
        running: args.running,
        outcome: match (&args.outcome, args.fail) {
            (Some(state), _) => SimOutcome::Named(state.clone()),
            (None, true) => SimOutcome::Fail,
            (None, false) => SimOutcome::Succeed,
        },
        invisible_for: args.invisible_for.unwrap_or_default(),
        forget_after: args.forget_after,
        switches,
    };
    let port = args.port.unwrap_or_else(|| sims.default_port(&args.kind));
    let sim = sims
        .start(&args.kind, options)
        .await
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::InvalidInput => bad(source.to_string()),
            _ => Error::Io {
                context: format!("starting the {} simulator on 127.0.0.1:{port}", args.kind),
                source,
            },
        })?;
    for fault in args.faults.faults() {
        sim.inject(fault);
    }
    let mut banner = sim.banner().into_iter();
    if let Some(first) = banner.next() {
        println!("{first}");
    }
    let faults = args.faults.describe();
    if !faults.is_empty() {
        println!("{faults}");
    }
    if let Some(edges) = describe_edges(args.invisible_for, args.forget_after) {
        println!("{edges}");
    }
    for line in banner {
        println!("{line}");
    }
    super::shutdown_signal().await;
    Ok(())
}

/// The edges switched on, as the banner says them; `None` when both are off.
fn describe_edges(
    invisible_for: Option<Duration>,
    forget_after: Option<Duration>,
) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(d) = invisible_for.filter(|d| !d.is_zero()) {
        parts.push(format!(
            "new jobs answer \"not found\" for {}",
            humantime::format_duration(d)
        ));
    }
    if let Some(d) = forget_after {
        parts.push(format!(
            "ended jobs are forgotten after {}",
            humantime::format_duration(d)
        ));
    }
    (!parts.is_empty()).then(|| format!("edges: {}", parts.join("; ")))
}
