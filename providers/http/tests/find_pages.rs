//! `find.pages`: a declared `find` reads a list longer than one answer page after page, by
//! the one pager of `tether_provider::paging`, against the dbt Cloud simulator (which lists a
//! job's runs newest first, `limit` a page from `offset`); `find.max_pages` bounds it; and a
//! description that pages wrongly is refused, naming the field.

use std::time::Duration;

use serde_json::json;
use tether_http::sim::SIMULATORS;
use tether_http::{Declared, HttpApiConfig};
use tether_provider::registry::{SimFactory, SimOptions};
use tether_provider::settings::{Setting, Table};
use tether_provider::{Provider, Ungated};

mod common;

/// The dbt Cloud example pointed at `url`, its `find` reading `size` runs a page and at most
/// `max_pages` pages.
fn dbt(url: &str, size: i64, max_pages: i64) -> Declared {
    let mut table = common::example("dbt-cloud.toml");
    table.insert("base_url".into(), Setting::from(url));
    let Some(Setting::Table(find)) = table.get_mut("find") else {
        panic!("the example has a find table")
    };
    let pages: Table = [
        ("offset".to_string(), Setting::from("offset")),
        ("limit".to_string(), Setting::from("limit")),
        ("size".to_string(), Setting::Integer(size)),
    ]
    .into_iter()
    .collect();
    find.insert("pages".into(), Setting::Table(pages));
    find.insert("max_pages".into(), Setting::Integer(max_pages));
    let env = |name: &str| (name == "DBT_CLOUD_API_TOKEN").then(|| "dbt-sim-token".to_string());
    Declared::new(HttpApiConfig::build("providers.dbt", table, &env).unwrap()).unwrap()
}

#[tokio::test]
async fn find_reads_on_to_a_run_pages_away_and_no_further_than_max_pages() {
    let mut options = SimOptions {
        running: Duration::from_secs(600),
        ..SimOptions::default()
    };
    options
        .switches
        .insert("api".into(), Setting::from("dbt-cloud"));
    let sim = SIMULATORS.start("http", options).await.unwrap();
    let spec = json!({"job_id": 4242});
    let paged = dbt(&sim.url(), 1, 20);
    let keys = ["tether-pages-1", "tether-pages-2", "tether-pages-3"];
    let mut handles = Vec::new();
    for key in keys {
        handles.push(paged.submit(&spec, key, &Ungated).await.unwrap());
    }
    // Newest first, one run a page: the first run is on the third page.
    let found = paged.find(keys[0], &spec, 0).await.unwrap();
    assert_eq!(found, [handles[0].clone()]);
    assert_eq!(
        paged.find(keys[2], &spec, 0).await.unwrap(),
        [handles[2].clone()]
    );
    // Two pages at most: the first run is beyond them.
    let short = dbt(&sim.url(), 1, 2);
    assert!(short.find(keys[0], &spec, 0).await.unwrap().is_empty());
    assert_eq!(
        short.find(keys[1], &spec, 0).await.unwrap(),
        [handles[1].clone()]
    );
}

#[test]
fn pages_described_wrongly_are_refused_by_name() {
    let build = |pages: Table, query: Option<(&str, &str)>| {
        let mut table = common::example("dbt-cloud.toml");
        let Some(Setting::Table(find)) = table.get_mut("find") else {
            panic!("the example has a find table")
        };
        find.insert("pages".into(), Setting::Table(pages));
        if let (Some((k, v)), Some(Setting::Table(q))) = (query, find.get_mut("query")) {
            q.insert(k.into(), Setting::from(v));
        }
        let env = |_: &str| Some("t".to_string());
        HttpApiConfig::build("providers.dbt", table, &env).unwrap_err()
    };
    let table = |pairs: &[(&str, Setting)]| -> Table {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    };
    let half = build(table(&[("offset", Setting::from("offset"))]), None);
    assert!(
        half.iter()
            .any(|l| l.starts_with("providers.dbt.find.pages: must be either")),
        "{half:#?}"
    );
    let offset = table(&[
        ("offset", Setting::from("offset")),
        ("limit", Setting::from("limit")),
        ("size", Setting::Integer(100)),
    ]);
    let twice = build(offset, Some(("limit", "100")));
    assert!(
        twice
            .iter()
            .any(|l| l.starts_with("providers.dbt.find.query.limit: is set by tether")),
        "{twice:#?}"
    );
    let odd = build(
        table(&[
            ("next", Setting::from("/next")),
            ("param", Setting::from("page")),
            ("depth", Setting::Integer(2)),
        ]),
        None,
    );
    assert!(
        odd.iter()
            .any(|l| l == "providers.dbt.find.pages.depth: unknown field"),
        "{odd:#?}"
    );
}
