//! Issue 32, finding 9: a SQL statement whose submit answer was lost is found in the query
//! history by time, not within a row count: 2,500 statements started after it on the same
//! warehouse (the history lists newest first) no longer hide it, as the 2,000 rows the search
//! used to read did.

mod common;

use std::time::Duration;

use serde_json::json;
use tether_databricks::sim::SimConfig;
use tether_databricks::{DatabricksConfig, DatabricksSql};
use tether_provider::settings::Setting;
use tether_provider::{Provider, Ungated};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_behind_thousands_of_newer_ones_is_found() {
    let sim = common::simulator(SimConfig {
        running: Duration::from_secs(600),
        ..SimConfig::default()
    })
    .await;
    let table = common::table(
        &sim,
        [
            ("rate_limit_per_second", Setting::Integer(100_000)),
            ("rate_limit_burst", Setting::Integer(100_000)),
        ],
    );
    let config =
        DatabricksConfig::build_kind(tether_databricks::statements::KIND, "p", table, |_| None)
            .unwrap();
    let sql = DatabricksSql::new(config).unwrap();
    let spec =
        |n: usize| json!({"warehouse_id": "0123456789abcdef", "statement": format!("SELECT {n}")});
    let intent = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let ours = sql.submit(&spec(0), "tether-ours", &Ungated).await.unwrap();
    for n in 1..=2_500 {
        sql.submit(&spec(n), &format!("tether-other-{n}"), &Ungated)
            .await
            .unwrap();
    }
    let found = sql.find("tether-ours", &spec(0), intent).await.unwrap();
    assert_eq!(found, vec![ours]);
}
