//! Google events end to end, on both backends: the Google simulator publishes each state
//! change of its jobs as the log entry a Cloud Logging sink routes to Pub/Sub, to a topic of
//! the Pub/Sub emulator the Google Cloud CLI carries (a real implementation of Pub/Sub);
//! `[events.google]` (kind `gcp-pubsub`) pulls its subscription. A BigQuery job whose next
//! poll is ten minutes away is recorded within seconds of its end, by a supervisor in another
//! process than the one that read the entry; a lost entry is caught by polling; a malformed,
//! foreign or lying message changes nothing, and every message is acknowledged once handled.
//! Without the emulator these tests say they were skipped, except under CI.

mod common;

use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use tether::app::App;
use tether::config::Config;
use tether::engine::EnsureRequest;
use tether::jobs::Phase;
use tether::state::TaskInstanceId;
use tether_google::sim::{EventFault, EventFaultKind, EventTopic, SimConfig, Simulator};
use tether_provider::JobState;
use tether_testkit::pubsub::Emulator;

use common::{config_toml, serve_parts, until, Served, TestDb};

/// Everything one test needs: the emulator's topic and subscription, the simulator
/// publishing there.
struct Setup {
    emulator: Emulator,
    topic: String,
    subscription: String,
    sim: Simulator,
}

async fn setup(test: &str, running: Duration) -> Option<Setup> {
    let emulator = tether_testkit::pubsub::start(test).await?;
    let (topic, subscription) = emulator
        .topic_and_subscription("tether-sim", "job-logs", "tether", 10)
        .await;
    let sim = Simulator::start(
        SimConfig {
            pending: Duration::from_millis(300),
            running,
            events: Some(EventTopic::new(&emulator.url, &topic).unwrap()),
            ..SimConfig::default()
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .unwrap();
    Some(Setup {
        emulator,
        topic,
        subscription,
        sim,
    })
}

/// An app with a BigQuery account on the simulator, polled every `poll` at most, and the
/// subscription as `[events.google]`.
async fn app(db: &TestDb, s: &Setup, poll: &str) -> App {
    let text = format!(
        "{}\n[providers.bigquery]\nkind = \"bigquery\"\nproject = \"tether-sim\"\nlocation = \"US\"\n\
         endpoint = \"{}\"\ncredentials_file = \"{}\"\npoll_initial = \"{poll}\"\npoll_max = \"{poll}\"\n\
         poll_max_with_events = \"{poll}\"\nrequest_timeout = \"2s\"\nnot_found_grace = \"1s\"\n\n\
         [events.google]\nkind = \"gcp-pubsub\"\nsubscription = \"{}\"\nendpoint = \"{}\"\n\
         unauthenticated = true\naccounts = [\"bigquery\"]\nwait = \"1s\"\ngather = \"100ms\"\n",
        config_toml(db, "http://127.0.0.1:9", "3s", ""),
        s.sim.url(),
        s.sim.key_file().display(),
        s.subscription,
        s.emulator.url,
    );
    App::open(Config::from_toml(&text, "test").expect("config"))
        .await
        .expect("open app")
}

fn request(task: &str) -> EnsureRequest {
    EnsureRequest {
        task_instance: TaskInstanceId::new("etl", "manual__1", task, -1),
        try_number: 1,
        name: "main".into(),
        provider: "bigquery".into(),
        spec: tether::registry::simulators("bigquery")
            .unwrap()
            .sample_spec("bigquery", task),
    }
}

/// Messages the subscription still holds once their ack deadline (10 s) has passed: pulled
/// at once, never acknowledged.
async fn left_unacknowledged(s: &Setup) -> Vec<Value> {
    tokio::time::sleep(Duration::from_secs(11)).await;
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/v1/{}:pull", s.emulator.url, s.subscription))
        .json(&json!({"maxMessages": 100, "returnImmediately": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["receivedMessages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A BigQuery job's end reaches tether through the log entry a sink published: the process
/// that pulls the subscription holds no job; the one that holds the job hears of it through
/// the database and polls it (its next poll was ten minutes away). Nothing is left
/// unacknowledged.
async fn a_bigquery_end_is_recorded_from_its_log_entry(db: TestDb) {
    let Some(s) = setup(
        "a_bigquery_end_is_recorded_from_its_log_entry",
        Duration::from_millis(1500),
    )
    .await
    else {
        return;
    };
    let holder = app(&db, &s, "10m").await;
    let reader = app(&db, &s, "10m").await;
    let served = Served::start(&holder, |stop| {
        let mut tasks = serve_parts(&holder, stop, false);
        tasks.extend(serve_parts(&reader, stop, true));
        tasks
    });
    let id = holder
        .engine
        .ensure(&request("evented"))
        .await
        .unwrap()
        .job
        .id;
    let (record, took) = until(&holder, id, Duration::from_secs(20), |j| {
        j.phase == Phase::Terminal
    })
    .await;
    assert_eq!(
        record.state,
        JobState::Succeeded,
        "{record:?} after {took:?}"
    );
    assert!(
        took < Duration::from_secs(10),
        "recorded {took:?} after submission (the run takes about 2 s)"
    );
    let (sent, failed) = s.sim.events_sent();
    assert!(
        sent >= 3 && failed == 0,
        "the simulator published its entries: {sent}, {failed} failed"
    );
    // Give the reader a moment to acknowledge the last entry, then stop pulling.
    tokio::time::sleep(Duration::from_secs(2)).await;
    served.stop().await;
    let left = left_unacknowledged(&s).await;
    assert!(
        left.is_empty(),
        "every entry is acknowledged once handled: {left:#?}"
    );
}

/// A lost entry costs latency, not the job: with every BigQuery entry dropped, polling
/// records the end.
async fn a_dropped_entry_is_caught_by_polling(db: TestDb) {
    let Some(s) = setup(
        "a_dropped_entry_is_caught_by_polling",
        Duration::from_millis(800),
    )
    .await
    else {
        return;
    };
    s.sim
        .inject_event_fault(EventFault::new(EventFaultKind::Drop, 100).on("bigquery"));
    let app = app(&db, &s, "1s").await;
    let served = Served::start(&app, |stop| serve_parts(&app, stop, true));
    let id = app.engine.ensure(&request("dropped")).await.unwrap().job.id;
    let (record, took) = until(&app, id, Duration::from_secs(20), |j| {
        j.phase == Phase::Terminal
    })
    .await;
    assert_eq!(
        record.state,
        JobState::Succeeded,
        "{record:?} after {took:?}"
    );
    assert_eq!(s.sim.events_sent().0, 0, "every entry was dropped");
    served.stop().await;
}

/// A message that is not a log entry, a foreign entry, and a forged `DONE` about a running
/// job, each published twice: the job is polled and recorded running, nothing else changes,
/// and every message is acknowledged.
async fn wrong_messages_change_nothing(db: TestDb) {
    let Some(s) = setup("wrong_messages_change_nothing", Duration::from_secs(120)).await else {
        return;
    };
    let app = app(&db, &s, "10m").await;
    let served = Served::start(&app, |stop| serve_parts(&app, stop, true));
    let id = app.engine.ensure(&request("running")).await.unwrap().job.id;
    let (record, _) = until(&app, id, Duration::from_secs(10), |j| {
        j.state == JobState::Running
    })
    .await;
    let job_id = record.handle.as_ref().unwrap().get_str("job_id").unwrap();
    let forged = json!({
        "protoPayload": {"metadata": {"jobChange": {"after": "DONE",
            "job": {"jobName": format!("projects/tether-sim/jobs/{job_id}"), "jobStatus": {"jobState": "DONE"}}}}},
        "resource": {"type": "bigquery_project", "labels": {"project_id": "tether-sim", "location": "US"}},
    });
    let foreign = json!({"resource": {"type": "gce_instance"},
        "protoPayload": {"methodName": "v1.compute.instances.insert"}});
    let data =
        |text: String| json!({"data": base64::engine::general_purpose::STANDARD.encode(text)});
    let messages: Vec<Value> = [
        "not a log entry".to_string(),
        foreign.to_string(),
        forged.to_string(),
    ]
    .into_iter()
    .flat_map(|t| [data(t.clone()), data(t)])
    .collect();
    let published = reqwest::Client::new()
        .post(format!("{}/v1/{}:publish", s.emulator.url, s.topic))
        .json(&json!({ "messages": messages }))
        .send()
        .await
        .unwrap();
    assert!(published.status().is_success(), "{published:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let record = app.engine.jobs().get(id).await.unwrap().unwrap();
    assert_eq!(record.phase, Phase::Active, "{record:?}");
    assert_eq!(record.state, JobState::Running, "{record:?}");
    served.stop().await;
    let left = left_unacknowledged(&s).await;
    assert!(
        left.is_empty(),
        "every message is acknowledged once handled: {left:#?}"
    );
}

on_both_backends!(
    a_bigquery_end_is_recorded_from_its_log_entry,
    a_dropped_entry_is_caught_by_polling,
    wrong_messages_change_nothing,
);
