//! `tether sim databricks`: serve a provider simulator on a loopback port.

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
}

async fn run_aws(args: &AwsSimArgs) -> Result<(), Error> {
    let config = tether_aws::sim::SimConfig {
        access_key_id: args.access_key_id.clone(),
        secret_access_key: args.secret_access_key.clone(),
        pending: args.pending,
        running: args.running,
        succeed: !args.fail,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let sim = tether_aws::sim::Simulator::start(config, addr)
        .await
        .map_err(|source| Error::Io {
            context: format!("starting the AWS simulator on {addr}"),
            source,
        })?;
    println!(
        "AWS simulator (EMR, EMR Serverless, Glue) on {}; it checks SigV4 with key {}",
        sim.url(),
        args.access_key_id
    );
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
    println!(
        "Databricks simulator on {} (token {:?}); stats at {}/_sim/stats",
        sim.url(),
        args.token,
        sim.url()
    );
    println!(
        "Use it with: [providers.databricks] host = \"{}\", token = \"{}\"",
        sim.url(),
        args.token
    );
    super::shutdown_signal().await;
    Ok(())
}
