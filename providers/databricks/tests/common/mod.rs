//! What the crate's integration tests share: a simulator on a free loopback port, and the
//! provider table that points an adapter at its workspace.

use tether_databricks::sim::{SimConfig, Simulator};
use tether_provider::settings::{Setting, Table};

/// A simulator that behaves as `config` says, on a free loopback port.
pub async fn simulator(config: SimConfig) -> Simulator {
    Simulator::start(config, ([127, 0, 0, 1], 0).into())
        .await
        .unwrap()
}

/// The provider table of `sim`'s workspace (its URL and the default token), with `more`
/// settings.
pub fn table<const N: usize>(sim: &Simulator, more: [(&str, Setting); N]) -> Table {
    let mut table = Table::from([
        ("host".to_string(), Setting::from(sim.url())),
        ("token".to_string(), Setting::from("dapi-sim-token")),
    ]);
    table.extend(more.map(|(key, value)| (key.to_string(), value)));
    table
}
