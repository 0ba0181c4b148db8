//! Job notifications (issue #35), end to end against the simulator: an account that names a
//! notification destination has its runs notify tether's endpoint (here a small receiver in
//! its place) when they start and end, with the destination's password, and what arrives
//! reads as a hint naming the job's `handle_ref`. A user's own destinations keep theirs; the
//! destinations API answers as Databricks' does; notifications can be lost or repeated.

mod common;

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Value};
use tether_databricks::sim::{NotificationFault, SimConfig, Simulator};
use tether_databricks::{Databricks, DatabricksConfig};
use tether_provider::events::Reading;
use tether_provider::settings::Setting;
use tether_provider::{Handle, Provider, Ungated};
use tokio::sync::mpsc;

/// The password the destination sends and the account expects.
const SECRET: &str = "n0tif1cation-s3cret";

/// One notification as the receiver got it.
#[derive(Debug)]
struct Received {
    authorization: Option<String>,
    body: Vec<u8>,
}

/// A stand-in for tether's `POST /v1/events/databricks/{account}` on a free loopback port:
/// its URL, and what it receives.
async fn receiver() -> (String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new()
        .route(
            "/v1/events/databricks/{account}",
            post(
                |State(tx): State<mpsc::UnboundedSender<Received>>,
                 headers: HeaderMap,
                 body: axum::body::Bytes| async move {
                    let authorization = headers
                        .get(header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let _ = tx.send(Received {
                        authorization,
                        body: body.to_vec(),
                    });
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/v1/events/databricks/dbx",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

/// The next `n` notifications, each within 10 s; then none for 300 ms.
async fn exactly(rx: &mut mpsc::UnboundedReceiver<Received>, n: usize) -> Vec<Received> {
    let mut got = Vec::new();
    for i in 0..n {
        let next = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        got.push(
            next.unwrap_or_else(|_| panic!("notification {} of {n} did not come", i + 1))
                .unwrap(),
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Ok(extra) = rx.try_recv() {
        panic!(
            "more than {n} notifications: also {}",
            String::from_utf8_lossy(&extra.body)
        );
    }
    got
}

/// A simulator whose runs take about 300 ms.
async fn quick_sim() -> Simulator {
    common::simulator(SimConfig {
        pending: Duration::from_millis(100),
        running: Duration::from_millis(200),
        terminating: Duration::ZERO,
        ..SimConfig::default()
    })
    .await
}

/// An adapter for `sim`'s workspace whose account names `destination` and [`SECRET`].
fn adapter(sim: &Simulator, destination: &str) -> Databricks {
    let table = common::table(
        sim,
        [
            ("notification_destination", Setting::from(destination)),
            ("notification_secret", Setting::from(SECRET)),
            ("on_retry", Setting::from("repair")),
        ],
    );
    Databricks::new(DatabricksConfig::build("providers.dbx", table, |_| None).unwrap()).unwrap()
}

fn spec(file: &str) -> Value {
    json!({"run_name": "nightly", "tasks": [{"task_key": "t",
        "spark_python_task": {"python_file": format!("dbfs:/sim/{file}.py")}}]})
}

fn basic(user: &str, password: &str) -> String {
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// The event types of `got`, each checked as tether's endpoint would: authentic, and a hint
/// naming `handle`'s reference.
fn read_all(adapter: &Databricks, handle: &Handle, got: &[Received]) -> Vec<String> {
    let webhook = adapter.webhook().expect("a destination is configured");
    let mut events: Vec<String> = got
        .iter()
        .map(|r| {
            assert!(
                webhook.authentic(r.authorization.as_deref()),
                "{:?}",
                r.authorization
            );
            match webhook.read(&r.body) {
                Ok(Reading::Hint(hint)) => {
                    assert_eq!(hint.kind, "databricks");
                    assert_eq!(hint.reference, adapter.handle_ref(handle));
                    hint.state.expect("a run's notification has a state")
                }
                other => panic!("{other:?}"),
            }
        })
        .collect();
    events.sort();
    events
}

#[tokio::test]
async fn a_run_notifies_its_start_and_success_to_tethers_endpoint() {
    let sim = quick_sim().await;
    let (url, mut rx) = receiver().await;
    let destination = sim.add_webhook_destination(&url, "databricks", SECRET);
    let adapter = adapter(&sim, &destination);
    let handle = adapter
        .submit(&spec("ok"), "tether-notify-0001", &Ungated)
        .await
        .unwrap();
    let got = exactly(&mut rx, 2).await;
    assert_eq!(
        read_all(&adapter, &handle, &got),
        ["jobs.on_start", "jobs.on_success"]
    );
    let run_id = handle.get_i64("run_id").unwrap();
    assert_eq!(adapter.handle_ref(&handle), run_id.to_string());
    // The payload as documented.
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["run"]["run_id"], json!(run_id.to_string()));
    assert_eq!(
        body["workspace_id"],
        json!(tether_databricks::sim::WORKSPACE_ID)
    );
    assert!(body["job"]["job_id"].is_string() && body["job"]["name"].is_string());
    // The destination's user name and password, as basic authentication.
    assert_eq!(
        got[0].authorization.as_deref(),
        Some(basic("databricks", SECRET).as_str())
    );
    // What was submitted: tether's destination for the start and both ends.
    let ours = json!([{"id": destination}]);
    assert_eq!(
        sim.run_webhook_notifications(run_id).unwrap(),
        json!({"on_start": ours, "on_success": ours, "on_failure": ours})
    );
    // Notifications are not requests: the submit was the only one.
    let stats = sim.stats();
    assert_eq!((stats.requests, stats.notifications_sent), (1, 2));
    assert_eq!(stats.notifications_failed, 0);
}

#[tokio::test]
async fn only_the_accounts_secret_is_authentic() {
    let sim = quick_sim().await;
    let destination = sim.add_webhook_destination("http://127.0.0.1:9/", "u", SECRET);
    let account = adapter(&sim, &destination);
    let webhook = account.webhook().unwrap();
    assert!(webhook.authentic(Some(&basic("anyone", SECRET))));
    for refused in [
        Some(basic("databricks", "wrong")),
        Some(basic("databricks", &SECRET[1..])),
        Some(format!("Bearer {SECRET}")),
        Some("dapi-sim-token".to_string()),
        None,
    ] {
        assert!(!webhook.authentic(refused.as_deref()), "{refused:?}");
    }
}

#[tokio::test]
async fn a_users_own_destinations_keep_their_notifications() {
    let sim = quick_sim().await;
    sim.configure(|c| c.outcome = "FAILED".into());
    let (ours_url, mut ours_rx) = receiver().await;
    let (theirs_url, mut theirs_rx) = receiver().await;
    let ours = sim.add_webhook_destination(&ours_url, "databricks", SECRET);
    let theirs = sim.add_webhook_destination(&theirs_url, "", "");
    let adapter = adapter(&sim, &ours);
    let mut spec = spec("ok");
    spec["webhook_notifications"] = json!({
        "on_start": [{"id": theirs}],
        "on_failure": [{"id": theirs}, {"id": ours}],
        "on_duration_warning_threshold_exceeded": [{"id": theirs}],
    });
    let handle = adapter
        .submit(&spec, "tether-notify-0002", &Ungated)
        .await
        .unwrap();
    assert_eq!(
        sim.run_webhook_notifications(handle.get_i64("run_id").unwrap())
            .unwrap(),
        json!({
            "on_start": [{"id": theirs}, {"id": ours}],
            "on_success": [{"id": ours}],
            "on_failure": [{"id": theirs}, {"id": ours}],
            "on_duration_warning_threshold_exceeded": [{"id": theirs}],
        }),
        "merged after the user's own, never twice"
    );
    let got = exactly(&mut ours_rx, 2).await;
    assert_eq!(
        read_all(&adapter, &handle, &got),
        ["jobs.on_failure", "jobs.on_start"]
    );
    let theirs_got = exactly(&mut theirs_rx, 2).await;
    assert!(
        theirs_got.iter().all(|r| r.authorization.is_none()),
        "a destination without credentials sends none"
    );
}

#[tokio::test]
async fn a_full_event_keeps_the_users_three_and_more_are_refused() {
    let sim = quick_sim().await;
    let (url, mut rx) = receiver().await;
    let ours = sim.add_webhook_destination(&url, "databricks", SECRET);
    let others: Vec<String> = (0..4)
        .map(|_| sim.add_webhook_destination("http://127.0.0.1:9/", "", ""))
        .collect();
    let adapter = adapter(&sim, &ours);
    let listed = |n: usize| -> Value { others[..n].iter().map(|id| json!({"id": id})).collect() };
    let mut spec = spec("ok");
    spec["webhook_notifications"] = json!({"on_success": listed(3)});
    let handle = adapter
        .submit(&spec, "tether-notify-0003", &Ungated)
        .await
        .unwrap();
    let asked = sim
        .run_webhook_notifications(handle.get_i64("run_id").unwrap())
        .unwrap();
    assert_eq!(asked["on_success"], listed(3));
    // Its start still reaches tether; its success is left to polling.
    let got = exactly(&mut rx, 1).await;
    assert_eq!(read_all(&adapter, &handle, &got), ["jobs.on_start"]);

    // "A maximum of 3 destinations can be specified": the simulator refuses four.
    spec["webhook_notifications"] = json!({"on_success": listed(4)});
    let err = adapter
        .submit(&spec, "tether-notify-0004", &Ungated)
        .await
        .unwrap_err();
    assert!(err.message.contains("maximum of 3"), "{err}");
}

#[tokio::test]
async fn a_repair_notifies_again_under_the_runs_id() {
    let sim = quick_sim().await;
    let (url, mut rx) = receiver().await;
    let destination = sim.add_webhook_destination(&url, "databricks", SECRET);
    let adapter = adapter(&sim, &destination);
    let handle = adapter
        .submit(&spec("fail-once"), "tether-notify-0005", &Ungated)
        .await
        .unwrap();
    let got = exactly(&mut rx, 2).await;
    assert_eq!(
        read_all(&adapter, &handle, &got),
        ["jobs.on_failure", "jobs.on_start"]
    );
    let repaired = adapter
        .repair(&handle, "tether-notify-0005-r", &Ungated)
        .await
        .unwrap();
    assert!(repaired.get_i64("repair_id").is_some());
    let got = exactly(&mut rx, 2).await;
    assert_eq!(
        read_all(&adapter, &repaired, &got),
        ["jobs.on_start", "jobs.on_success"]
    );
    assert_eq!(adapter.handle_ref(&repaired), adapter.handle_ref(&handle));
}

#[tokio::test]
async fn a_cancelled_run_notifies_its_failure_at_once() {
    let sim = quick_sim().await;
    sim.configure(|c| c.running = Duration::from_secs(60));
    let (url, mut rx) = receiver().await;
    let destination = sim.add_webhook_destination(&url, "databricks", SECRET);
    let adapter = adapter(&sim, &destination);
    let handle = adapter
        .submit(&spec("ok"), "tether-notify-0008", &Ungated)
        .await
        .unwrap();
    let got = exactly(&mut rx, 1).await;
    assert_eq!(read_all(&adapter, &handle, &got), ["jobs.on_start"]);
    adapter.cancel(&handle).await.unwrap();
    // Not when the run would have ended (a minute on): when it was cancelled.
    let got = exactly(&mut rx, 1).await;
    assert_eq!(read_all(&adapter, &handle, &got), ["jobs.on_failure"]);
}

#[tokio::test]
async fn notifications_can_be_dropped_or_repeated() {
    let sim = quick_sim().await;
    let (url, mut rx) = receiver().await;
    let destination = sim.add_webhook_destination(&url, "databricks", SECRET);
    let adapter = adapter(&sim, &destination);

    sim.inject_notification_fault(NotificationFault::Drop, 1);
    let handle = adapter
        .submit(&spec("ok"), "tether-notify-0006", &Ungated)
        .await
        .unwrap();
    let got = exactly(&mut rx, 1).await;
    assert_eq!(read_all(&adapter, &handle, &got), ["jobs.on_success"]);
    assert_eq!(sim.stats().notifications_dropped, 1);

    sim.inject_notification_fault(NotificationFault::Duplicate, 1);
    let handle = adapter
        .submit(&spec("ok"), "tether-notify-0007", &Ungated)
        .await
        .unwrap();
    let got = exactly(&mut rx, 3).await;
    assert_eq!(
        read_all(&adapter, &handle, &got),
        ["jobs.on_start", "jobs.on_start", "jobs.on_success"]
    );
}

#[tokio::test]
async fn the_destinations_api_answers_as_databricks_does() {
    let sim = quick_sim().await;
    let http = reqwest::Client::new();
    let api = format!("{}/api/2.0/notification-destinations", sim.url());
    let create = |body: Value| {
        http.post(&api)
            .bearer_auth("dapi-sim-token")
            .json(&body)
            .send()
    };
    let made: Value = create(
        json!({"display_name": "tether", "config": {"generic_webhook": {
        "url": "https://tether.example/v1/events/databricks/dbx",
        "username": "databricks", "password": SECRET}}}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let id = made["id"].as_str().unwrap().to_string();
    let expected = json!({"id": id, "display_name": "tether", "destination_type": "WEBHOOK",
        "config": {"generic_webhook": {"url_set": true, "username_set": true, "password_set": true}}});
    assert_eq!(made, expected);
    let read: Value = http
        .get(format!("{api}/{id}"))
        .bearer_auth("dapi-sim-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read, expected, "the password is never shown");
    // Its id is one an account may name.
    let table = common::table(
        &sim,
        [
            ("notification_destination", Setting::from(id.as_str())),
            ("notification_secret", Setting::from(SECRET)),
        ],
    );
    assert!(DatabricksConfig::build("p", table, |_| None).is_ok());

    let missing = http
        .get(format!("{api}/5e1f0de5-0000-4000-8000-0000000000ff"))
        .bearer_auth("dapi-sim-token")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error_code"], "RESOURCE_DOES_NOT_EXIST");
    let two = create(
        json!({"config": {"generic_webhook": {"url": "https://x"}, "slack": {"url": "https://y"}}}),
    )
    .await
    .unwrap();
    assert_eq!(two.status(), 400);
    let anonymous = http
        .post(&api)
        .json(&json!({"config": {"generic_webhook": {"url": "https://x"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

/// `POST /_sim/runs/end` (a benchmark's control): a run that would run for an hour ends now,
/// is told with its end time, reads TERMINATED with the result asked, and notifies its end at
/// once; a run ended already, or unknown, is left out.
#[tokio::test]
async fn a_run_ended_on_request_says_when_and_notifies() {
    let sim = common::simulator(SimConfig {
        pending: Duration::ZERO,
        running: Duration::from_secs(3600),
        ..SimConfig::default()
    })
    .await;
    let (url, mut rx) = receiver().await;
    let destination = sim.add_webhook_destination(&url, "databricks", SECRET);
    let adapter = adapter(&sim, &destination);
    let handle = adapter
        .submit(&spec("long"), "tether-notify-0009", &Ungated)
        .await
        .unwrap();
    let run_id = handle.get_i64("run_id").unwrap();
    exactly(&mut rx, 1).await; // on_start
    assert_eq!(sim.run_state(run_id).as_deref(), Some("RUNNING"));
    let http = reqwest::Client::new();
    let end = |ids: Value| {
        let http = http.clone();
        let url = format!("{}/_sim/runs/end", sim.url());
        async move {
            let r = http
                .post(url)
                .json(&json!({"run_ids": ids, "result_state": "FAILED"}));
            r.send().await.unwrap().json::<Value>().await.unwrap()
        }
    };
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let answer = end(json!([run_id, 999_999])).await;
    let ended = answer["ended"].as_array().unwrap();
    assert_eq!(ended.len(), 1, "{answer}");
    assert_eq!(ended[0]["run_id"], json!(run_id));
    let end_time = ended[0]["end_time"].as_i64().unwrap();
    assert!((before..before + 5_000).contains(&end_time), "{answer}");
    assert_eq!(sim.run_state(run_id).as_deref(), Some("TERMINATED/FAILED"));
    let got = exactly(&mut rx, 1).await;
    assert_eq!(read_all(&adapter, &handle, &got), ["jobs.on_failure"]);
    assert_eq!(end(json!([run_id])).await, json!({"ended": []}));
}
