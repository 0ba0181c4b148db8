//! The Pub/Sub event source against the Pub/Sub emulator the Google Cloud CLI carries (a real
//! implementation of the API): log entries published as a log sink publishes them are pulled,
//! read (an end, a progress, a duplicate, a foreign and a broken one) and acknowledged, and
//! nothing acknowledged comes back. Outside CI a missing emulator is skipped with a printed
//! reason; under CI it fails.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tether_google::pubsub::{PubSubConfig, PubSubSource};
use tether_provider::events::{EventSource, Reading};
use tether_provider::settings::{Setting, Table};

/// The emulator of the Google Cloud CLI on the PATH, if it has it.
fn emulator() -> Option<PathBuf> {
    let out = std::process::Command::new("sh")
        .args(["-c", "readlink -f \"$(command -v gcloud)\""])
        .output()
        .ok()?;
    let gcloud = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let bin = gcloud
        .parent()?
        .parent()?
        .join("platform/pubsub-emulator/bin/cloud-pubsub-emulator");
    bin.is_file().then_some(bin)
}

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
    let Some(bin) = emulator() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "no Pub/Sub emulator (the Google Cloud CLI's platform/pubsub-emulator)"
        );
        eprintln!("SKIPPED log_entries_come_through_the_pubsub_emulator: no Pub/Sub emulator");
        return;
    };
    let (_emulator, url) = start(bin).await;
    let http = reqwest::Client::new();
    let project = format!("{url}/v1/projects/tether-sim");
    let ok = |r: reqwest::Response| {
        assert!(r.status().is_success(), "{r:?}");
    };
    ok(http
        .put(format!("{project}/topics/jobs"))
        .send()
        .await
        .unwrap());
    ok(http
        .put(format!("{project}/subscriptions/tether"))
        .json(&json!({"topic": "projects/tether-sim/topics/jobs", "ackDeadlineSeconds": 10}))
        .send()
        .await
        .unwrap());
    let foreign = json!({"resource": {"type": "gce_instance"}});
    let messages = json!({"messages": [
        job_change("tether-1", "DONE"),
        job_change("tether-1", "DONE"),
        job_change("tether-2", "RUNNING"),
        {"data": base64::engine::general_purpose::STANDARD.encode(foreign.to_string())},
        {"data": base64::engine::general_purpose::STANDARD.encode("not a log entry")},
    ]});
    ok(http
        .post(format!("{project}/topics/jobs:publish"))
        .json(&messages)
        .send()
        .await
        .unwrap());

    let table: Table = [
        (
            "subscription",
            Setting::from("projects/tether-sim/subscriptions/tether"),
        ),
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

/// Starts the emulator on a free port; its URL once it answers.
async fn start(bin: PathBuf) -> (tokio::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = tokio::process::Command::new(bin)
        .args(["--host=127.0.0.1", &format!("--port={port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while reqwest::get(&url).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the emulator starts"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (child, url)
}
