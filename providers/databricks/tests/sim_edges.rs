//! The Databricks simulator's idempotency edge (issue 32, the catalog's `databricks` table):
//! "If a run with the provided token is deleted, an error is returned". A token keeps naming
//! its run while the workspace holds it (also before the run is visible), and a deleted run
//! does not free it: the same token is refused, never a second run.

mod common;

use std::time::Duration;

use tether_databricks::sim::SimConfig;
use tether_databricks::{Databricks, DatabricksConfig};
use tether_provider::settings::Setting;
use tether_provider::sim::Lifetimes;
use tether_provider::{ErrorKind, Provider, Ungated};

#[tokio::test]
async fn a_deleted_runs_token_is_refused_not_reused() {
    let sim = common::simulator(SimConfig::default()).await;
    sim.set_lifetimes(Lifetimes {
        invisible_for: Duration::from_secs(60),
        forget_after: None,
    });
    let table = common::table(&sim, [("max_retries", Setting::Integer(0))]);
    let adapter = Databricks::new(DatabricksConfig::build("d", table, |_| None).unwrap()).unwrap();
    let spec = serde_json::json!({"run_name": "t", "tasks": [{"task_key": "t",
        "spark_python_task": {"python_file": "dbfs:/sim.py"}}]});
    let key = "tether-00000000000000000000000000000001";
    let first = adapter.submit(&spec, key, &Ungated).await.unwrap();
    // Not visible yet: the token still names it.
    assert_eq!(adapter.submit(&spec, key, &Ungated).await.unwrap(), first);
    sim.delete_run(first.get_i64("run_id").unwrap());
    let refused = adapter.submit(&spec, key, &Ungated).await.unwrap_err();
    // A refusal (the engine's next attempt takes a key of its own), never a reading of the run.
    assert!(
        matches!(refused.kind, ErrorKind::InvalidSpec | ErrorKind::Permanent),
        "{refused}"
    );
    assert!(refused.message.contains("deleted"), "{refused}");
    assert_eq!(sim.stats().submissions, 1, "never a second run");
}

/// `runs/get` shows the first 100 elements of each array property and a `next_page_token`
/// (the catalog's page edge, modelled by the simulator): a run of 150 tasks whose 150th
/// failed is read whole, and the failure names that task.
#[tokio::test]
async fn a_run_of_more_than_100_tasks_is_read_whole() {
    let sim = common::simulator(SimConfig {
        pending: Duration::ZERO,
        running: Duration::from_millis(100),
        terminating: Duration::ZERO,
        ..SimConfig::default()
    })
    .await;
    let table = common::table(&sim, []);
    let adapter = Databricks::new(DatabricksConfig::build("d", table, |_| None).unwrap()).unwrap();
    let tasks: Vec<serde_json::Value> = (0..150)
        .map(|i| {
            let file = if i == 149 { "fail-once" } else { "ok" };
            serde_json::json!({"task_key": format!("t{i}"),
                "spark_python_task": {"python_file": format!("dbfs:/sim/{file}.py")}})
        })
        .collect();
    let spec = serde_json::json!({"run_name": "wide", "tasks": tasks});
    let handle = adapter
        .submit(&spec, "tether-00000000000000000000000000000002", &Ungated)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = adapter.status(&handle).await.unwrap();
    assert_eq!(
        status.state,
        tether_provider::JobState::Failed,
        "{status:?}"
    );
    let message = status.message.unwrap_or_default();
    assert!(message.contains("task t149 failed"), "{message}");
}
