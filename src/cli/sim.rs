//! `tether sim databricks | emr | emr-serverless | glue`: serve a provider simulator on a
//! loopback port, with faults injected from the command line (see [`FaultArgs`]).

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Subcommand};
use tether_databricks::sim::{SimConfig, Simulator};

use crate::Error;

/// The simulators.
#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// A Databricks workspace (Jobs API 2.1).
    Databricks(DatabricksSimArgs),
    /// EMR on EC2 steps (the AWS simulator serves EMR, EMR Serverless and Glue on one port).
    Emr(AwsSimArgs),
    /// EMR Serverless job runs.
    EmrServerless(AwsSimArgs),
    /// Glue job runs.
    Glue(AwsSimArgs),
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
    fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after
            .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
    }

    fn databricks(&self) -> Vec<tether_databricks::sim::Fault> {
        use tether_databricks::sim::{Endpoint, Fault, FaultKind};
        let endpoint = (self.fault_on == FaultTarget::Submit).then_some(Endpoint::Submit);
        let status = |code, retry_after| FaultKind::Status { code, retry_after };
        [
            (self.throttle_first, status(429, self.retry_after_secs())),
            (self.unavailable_first, status(503, self.retry_after_secs())),
            (self.error_first, status(500, None)),
            (self.slow_first, FaultKind::Delay(self.slow_by)),
            (self.fail_after_processing, FaultKind::FailAfterProcessing),
        ]
        .into_iter()
        .filter(|(times, _)| *times > 0)
        .map(|(times, kind)| Fault {
            endpoint,
            kind,
            times,
        })
        .collect()
    }

    fn aws(&self) -> Vec<tether_aws::sim::Fault> {
        use tether_aws::sim::{Fault, FaultKind};
        [
            (self.throttle_first, FaultKind::Throttle),
            (self.unavailable_first, FaultKind::Unavailable),
            (self.error_first, FaultKind::ServerError),
            (self.slow_first, FaultKind::Delay(self.slow_by)),
            (self.fail_after_processing, FaultKind::FailAfterProcessing),
        ]
        .into_iter()
        .filter(|(times, _)| *times > 0)
        .map(|(times, kind)| {
            let fault = Fault::new(kind, times).retry_after(self.retry_after);
            match self.fault_on {
                FaultTarget::Submit => fault.submits_only(),
                FaultTarget::All => fault,
            }
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

/// Options of the AWS simulator.
#[derive(Debug, Args)]
pub struct AwsSimArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8090)]
    port: u16,
    /// The access key id it accepts.
    #[arg(long, default_value = "AKIATETHERSIMULATOR")]
    access_key_id: String,
    /// Its secret (requests are checked with SigV4).
    #[arg(long, default_value = "tether-simulator-secret-key-0123456789")]
    secret_access_key: String,
    /// How long a job stays pending.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pending: Duration,
    /// How long a job runs.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    running: Duration,
    /// Make jobs fail instead of succeed.
    #[arg(long)]
    fail: bool,
    #[command(flatten)]
    faults: FaultArgs,
}

/// Options of the Databricks simulator.
#[derive(Debug, Args)]
pub struct DatabricksSimArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8089)]
    port: u16,
    /// The bearer token it accepts.
    #[arg(long, default_value = "dapi-sim-token")]
    token: String,
    /// How long a run stays PENDING.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pending: Duration,
    /// How long a run stays RUNNING.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    running: Duration,
    /// The result_state runs end with (SUCCESS, FAILED, TIMEDOUT, ...).
    #[arg(long, default_value = "SUCCESS")]
    outcome: String,
    #[command(flatten)]
    faults: FaultArgs,
}

async fn run_aws(args: &AwsSimArgs) -> Result<(), Error> {
    let config = tether_aws::sim::SimConfig {
        access_key_id: args.access_key_id.clone(),
        secret_access_key: args.secret_access_key.clone(),
        pending: args.pending,
        running: args.running,
        succeed: !args.fail,
        ..Default::default()
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let sim = tether_aws::sim::Simulator::start(config, addr)
        .await
        .map_err(|source| Error::Io {
            context: format!("starting the AWS simulator on {addr}"),
            source,
        })?;
    for fault in args.faults.aws() {
        sim.inject(fault);
    }
    println!(
        "AWS simulator (EMR, EMR Serverless, Glue) on {}; it checks SigV4 with key {}; stats at {}/_sim/stats",
        sim.url(),
        args.access_key_id,
        sim.url()
    );
    let faults = args.faults.describe();
    if !faults.is_empty() {
        println!("{faults}");
    }
    println!("Use it with: endpoint_url = \"{}\" and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY set to that key pair", sim.url());
    super::shutdown_signal().await;
    Ok(())
}

pub(super) async fn run(cmd: &SimCommand) -> Result<(), Error> {
    let args = match cmd {
        SimCommand::Databricks(args) => args,
        SimCommand::Emr(a) | SimCommand::EmrServerless(a) | SimCommand::Glue(a) => {
            return run_aws(a).await
        }
    };
    let config = SimConfig {
        token: args.token.clone(),
        pending: args.pending,
        running: args.running,
        outcome: args.outcome.clone(),
        ..SimConfig::default()
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let sim = Simulator::start(config, addr)
        .await
        .map_err(|source| Error::Io {
            context: format!("starting the simulator on {addr}"),
            source,
        })?;
    for fault in args.faults.databricks() {
        sim.inject(fault);
    }
    println!(
        "Databricks simulator on {} (token {:?}); stats at {}/_sim/stats",
        sim.url(),
        args.token,
        sim.url()
    );
    let faults = args.faults.describe();
    if !faults.is_empty() {
        println!("{faults}");
    }
    println!(
        "Use it with: [providers.databricks] host = \"{}\", token = \"{}\"",
        sim.url(),
        args.token
    );
    super::shutdown_signal().await;
    Ok(())
}
