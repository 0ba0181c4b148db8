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

pub(super) async fn run(cmd: &SimCommand) -> Result<(), Error> {
    let SimCommand::Databricks(args) = cmd;
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
