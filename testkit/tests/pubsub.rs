//! The Pub/Sub event source against the Pub/Sub emulator the Google Cloud CLI carries (a real
//! implementation of the API): log entries published as a log sink publishes them are pulled,
//! read (an end, a progress, a duplicate, a foreign and a broken one) and acknowledged, and
//! nothing acknowledged comes back; and the Google simulator's own entries, published to the
//! emulator, reach the source naming their jobs. Outside CI a missing emulator is skipped with a printed
//! reason; under CI it fails.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tether_google::pubsub::{PubSubConfig, PubSubSource};
use tether_google::sim::{EventFault, EventFaultKind, EventTopic, SimConfig, Simulator};
use tether_provider::events::{Delivery, EventSource, Reading};
use tether_provider::registry::{ProviderFactory, RunningSim, SimFactory};
use tether_provider::settings::{Setting, Table};
use tether_provider::{Provider, Ungated};

/// A log entry of BigQuery's audit log for job `id` reaching `state`, as a sink publishes it.
fn job_change(id: &str, state: &str) -> Value {
    let entry = json!({
        "protoPayload": {"metadata": {
            "@type": "type.googleapis.com/google.cloud.audit.BigQueryAuditMetadata",
            "jobChange": {"after": state, "job": {"jobName": format!("projects/tether-sim/jobs/{id}")}},
        }},
        "resource": {"type": "bigquery_project", "labels": {"project_id": "tether-sim", "location": "US"}},
        "timestamp": "2026-12-07T19:00:03.901Z",
    });
    json!({"data": base64::engine::general_purpose::STANDARD.encode(entry.to_string())})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_entries_come_through_the_pubsub_emulator() {
    let Some(emulator) =
        tether_testkit::pubsub::start("log_entries_come_through_the_pubsub_emulator").await
    else {
        return;
    };
    let url = emulator.url.clone();
    let (topic, subscription) = emulator
        .topic_and_subscription("tether-sim", "jobs", "tether", 10)
        .await;
    let http = reqwest::Client::new();
    let ok = |r: reqwest::Response| {
        assert!(r.status().is_success(), "{r:?}");
    };
    let foreign = json!({"resource": {"type": "gce_instance"}});
    let messages = json!({"messages": [
        job_change("tether-1", "DONE"),
        job_change("tether-1", "DONE"),
        job_change("tether-2", "RUNNING"),
        {"data": base64::engine::general_purpose::STANDARD.encode(foreign.to_string())},
        {"data": base64::engine::general_purpose::STANDARD.encode("not a log entry")},
    ]});
    ok(http
        .post(format!("{url}/v1/{topic}:publish"))
        .json(&messages)
        .send()
        .await
        .unwrap());

    let table: Table = [
        ("subscription", Setting::String(subscription)),
        ("endpoint", Setting::String(url.clone())),
        ("unauthenticated", Setting::Boolean(true)),
        ("wait", Setting::from("0s")),
        ("gather", Setting::from("200ms")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let source = PubSubSource::new(PubSubConfig::build("events.google", table).unwrap()).unwrap();
    let mut deliveries = Vec::new();
    let started = Instant::now();
    while deliveries.len() < 5 && started.elapsed() < Duration::from_secs(20) {
        deliveries.extend(source.receive().await.unwrap());
    }
    assert_eq!(deliveries.len(), 5, "{deliveries:?}");
    let (mut ends, mut progress, mut foreign, mut broken) = (0, 0, 0, 0);
    for d in &deliveries {
        match &d.reading {
            Ok(Reading::Hint(h)) if h.progress => {
                assert_eq!(h.reference, "projects/tether-sim/jobs/tether-2");
                progress += 1;
            }
            Ok(Reading::Hint(h)) => {
                assert_eq!(h.reference, "projects/tether-sim/jobs/tether-1");
                assert_eq!(h.state.as_deref(), Some("DONE"));
                ends += 1;
            }
            Ok(Reading::Foreign(_)) => foreign += 1,
            Err(e) => {
                assert!(e.contains("not JSON"), "{e}");
                broken += 1;
            }
        }
    }
    assert_eq!((ends, progress, foreign, broken), (2, 1, 1, 1));
    let receipts: Vec<String> = deliveries.iter().map(|d| d.receipt.clone()).collect();
    source.acknowledge(&receipts).await.unwrap();
    // Acknowledged messages do not come back once their ack deadline (10 s) has passed.
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert!(source.receive().await.unwrap().is_empty());
}

/// An adapter of the Google `kind` on the simulator, as tether's registry builds it.
fn adapter(sim: &Simulator, kind: &str) -> Arc<dyn Provider> {
    tether_google::FACTORY
        .check(kind, "providers.sim", sim.settings(kind), &|_| None)
        .expect("the simulator's settings")
        .adapter()
        .expect("an adapter")
}

/// Receives until `done` says enough was seen (or 60 s pass), acknowledging each batch; every
/// delivery received.
async fn drain(source: &dyn EventSource, done: impl Fn(&[Delivery]) -> bool) -> Vec<Delivery> {
    let start = Instant::now();
    let mut seen = Vec::new();
    while !done(&seen) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not all entries came: {seen:#?}"
        );
        let batch = source.receive().await.expect("receive");
        if !batch.is_empty() {
            let receipts: Vec<String> = batch.iter().map(|d| d.receipt.clone()).collect();
            source.acknowledge(&receipts).await.expect("acknowledge");
        }
        seen.extend(batch);
    }
    seen
}

/// The Google simulator publishes each state change of a BigQuery job, a Dataproc job and a
/// batch to the emulator's topic as a log sink would; the `gcp-pubsub` source, built by the
/// Google factory from an `[events.NAME]` table, reads each to the job the adapter's
/// `handle_ref` names. A duplicated entry arrives twice; everything published is received
/// once acknowledged, and no publish counts as a request of the simulated services.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulators_entries_reach_the_pubsub_source_and_name_the_jobs() {
    let Some(emulator) = tether_testkit::pubsub::start(
        "the_simulators_entries_reach_the_pubsub_source_and_name_the_jobs",
    )
    .await
    else {
        return;
    };
    let (topic, subscription) = emulator
        .topic_and_subscription("tether-sim", "job-logs", "tether", 10)
        .await;
    let sim = Simulator::start(
        SimConfig {
            pending: Duration::from_millis(300),
            running: Duration::from_millis(700),
            events: Some(EventTopic::new(&emulator.url, &topic).unwrap()),
            ..SimConfig::default()
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .unwrap();
    // BigQuery's first entry is published twice (at-least-once delivery).
    sim.inject_event_fault(EventFault::new(EventFaultKind::Duplicate, 1).on("bigquery"));
    let table = Table::from([
        ("kind".to_string(), "gcp-pubsub".into()),
        ("accounts".to_string(), Setting::List(vec!["bq".into()])),
        ("subscription".to_string(), Setting::String(subscription)),
        (
            "endpoint".to_string(),
            Setting::String(emulator.url.clone()),
        ),
        ("unauthenticated".to_string(), Setting::Boolean(true)),
        ("wait".to_string(), "1s".into()),
        ("gather".to_string(), "100ms".into()),
    ]);
    let source = tether_google::FACTORY
        .event_source("gcp-pubsub", "events.google", table, &|_| None)
        .expect("a gcp-pubsub source");

    let kinds = ["bigquery", "dataproc-job", "dataproc-batch"];
    let mut refs = HashMap::new();
    for kind in kinds {
        let provider = adapter(&sim, kind);
        let spec = tether_google::sim::SIMULATORS.sample_spec(kind, "events");
        let handle = provider
            .submit(&spec, &format!("tether-events-{kind}"), &Ungated)
            .await
            .unwrap();
        refs.insert(kind, provider.handle_ref(&handle));
    }
    let requests = sim.stats().common.requests;
    // Three states each (PENDING, RUNNING, the end), and BigQuery's first twice.
    let seen = drain(source.as_ref(), |seen| seen.len() >= 10).await;
    for kind in kinds {
        let hints: Vec<_> = seen
            .iter()
            .filter_map(|d| match &d.reading {
                Ok(Reading::Hint(h)) if h.kind == kind => Some(h),
                _ => None,
            })
            .collect();
        assert!(
            hints.iter().all(|h| h.reference == refs[kind]),
            "{kind}: every hint names the job's handle_ref {}: {hints:#?}",
            refs[kind]
        );
        assert!(hints.iter().all(|h| h.at_ms.is_some()), "{hints:#?}");
    }
    let bigquery: Vec<_> = seen
        .iter()
        .filter_map(|d| match &d.reading {
            Ok(Reading::Hint(h)) if h.kind == "bigquery" => h.state.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(bigquery, ["PENDING", "PENDING", "RUNNING", "DONE"]);
    let (sent, failed) = sim.events_sent();
    assert_eq!((sent as usize, failed), (seen.len(), 0), "{seen:#?}");
    assert_eq!(
        sim.stats().common.requests,
        requests,
        "no publish counts as a request of the simulated services"
    );
}
