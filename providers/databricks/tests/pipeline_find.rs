//! Issue 32, finding 8: a pipeline update whose start answer was lost is found by what its
//! record keeps of the request, within the window tether may have started it: another actor's
//! update of another selection is never adopted, and a supervisor whose clock is two minutes
//! off the workspace's still finds its own.

mod common;

use serde_json::json;
use tether_databricks::sim::{SimConfig, Simulator};
use tether_databricks::{DatabricksConfig, DatabricksPipeline};
use tether_provider::{Provider, Ungated};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn adapter() -> (Simulator, DatabricksPipeline) {
    let sim = common::simulator(SimConfig::default()).await;
    let table = common::table(&sim, []);
    let config =
        DatabricksConfig::build_kind(tether_databricks::pipelines::KIND, "p", table, |_| None)
            .unwrap();
    (sim, DatabricksPipeline::new(config).unwrap())
}

#[tokio::test]
async fn another_actors_update_of_another_selection_is_not_adopted() {
    let (_sim, pipelines) = adapter().await;
    let pipeline = "12345678-1234-4123-8123-123456789abc";
    let intent = now_ms();
    // tether's start never reached the workspace; someone else started a full refresh.
    pipelines
        .submit(
            &json!({"pipeline_id": pipeline, "full_refresh": true}),
            "tether-someone-else",
            &Ungated,
        )
        .await
        .unwrap();
    let ours = json!({"pipeline_id": pipeline, "refresh_selection": ["orders"]});
    assert_eq!(
        pipelines.find("tether-ours", &ours, intent).await.unwrap(),
        vec![],
        "another selection is someone else's update"
    );
}

#[tokio::test]
async fn a_supervisor_two_minutes_off_the_workspace_finds_its_update() {
    let (_sim, pipelines) = adapter().await;
    let spec = json!({"pipeline_id": "87654321-4321-4321-8321-cba987654321",
                      "refresh_selection": ["orders", "customers"]});
    let handle = pipelines
        .submit(&spec, "tether-ours", &Ungated)
        .await
        .unwrap();
    // tether's clock ran two minutes ahead of the workspace's when it recorded the intent.
    let intent = now_ms() + 120_000;
    assert_eq!(
        pipelines.find("tether-ours", &spec, intent).await.unwrap(),
        vec![handle]
    );
}
