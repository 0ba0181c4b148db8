//! Provider events, on both backends: a poke (an event naming a job) makes the job's holder
//! poll it at once, in this process or another one sharing the database; an event that names
//! nothing tether tracks, or that cannot be read, changes nothing; and what is recorded is
//! what the poll found, never what the event said.

mod common;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tether::api::{router, ApiState};
use tether::app::App;
use tether::config::Config;
use tether::engine::events::Outcome;
use tether::engine::EnsureRequest;
use tether::jobs::{JobRecord, Phase};
use tether::model::JobId;
use tether::state::TaskInstanceId;
use tether_provider::events::{Hint, Reading};
use tether_provider::JobState;
use tokio_util::sync::CancellationToken;

use common::{config_toml, quick_sim, spec, until, Served, TestDb};

const ADMIN: &str = "admin-token-for-tests-0123456789";

/// An app whose account is polled every ten minutes: only an event can make a job's end
/// known within the test.
async fn slow_polling_app(db: &TestDb, host: &str) -> App {
    slow_polling_app_with(db, host, "").await
}

/// As [`slow_polling_app`], with `extra` settings of the account.
async fn slow_polling_app_with(db: &TestDb, host: &str, extra: &str) -> App {
    let text = config_toml(db, host, "3s", extra)
        .replace("poll_initial = \"100ms\"", "poll_initial = \"10m\"")
        .replace("poll_max = \"300ms\"", "poll_max = \"10m\"");
    let text = format!(
        "{text}\n[api]\nadmin_token_sha256 = [\"{}\"]\nsigning_key = \"test-signing-key-0123456789abcdef!\"\n",
        tether::api::auth::hash_token(ADMIN)
    );
    let config = Config::from_toml(&text, "test").expect("config");
    App::open(config).await.expect("open app")
}

/// What `tether serve` runs beside its supervisor: the relay of changes and pokes.
fn relay(app: &App, stop: &CancellationToken) -> tokio::task::JoinHandle<()> {
    tether::engine::changes::spawn_relay(&app.db, app.engine.changes().clone(), stop.clone())
}

fn request(task: &str) -> EnsureRequest {
    EnsureRequest {
        task_instance: TaskInstanceId::new("etl", "manual__1", task, -1),
        try_number: 1,
        name: "main".into(),
        provider: "databricks".into(),
        spec: spec(task),
    }
}

async fn job(app: &App, id: JobId) -> JobRecord {
    app.engine.jobs().get(id).await.unwrap().expect("job")
}

/// Submits a job, lets the supervisor poll it once (it is running then), and waits until the
/// simulator has ended it: the supervisor would not poll it again for ten minutes.
async fn ended_unseen(app: &App, task: &str) -> (JobId, Value) {
    let ensured = app.engine.ensure(&request(task)).await.unwrap();
    let id = ensured.job.id;
    let (record, _) = until(app, id, Duration::from_secs(10), |j| {
        j.poll_count_hint() >= 1
    })
    .await;
    let handle = record.handle.clone().expect("a handle").value();
    // The quick simulator ends a run about a second after it starts.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let record = job(app, id).await;
    assert_eq!(
        record.phase,
        Phase::Active,
        "nothing polled the job since it ended"
    );
    (id, handle)
}

trait PollCount {
    fn poll_count_hint(&self) -> i64;
}

impl PollCount for JobRecord {
    /// Whether the supervisor has polled the job: a raw state is recorded by a poll only.
    fn poll_count_hint(&self) -> i64 {
        i64::from(self.raw_state.is_some())
    }
}

/// A poke makes the job's holder poll it now: its end is recorded within seconds, though its
/// next poll was ten minutes away. The state recorded is the poll's (the poke says none).
async fn a_poke_makes_the_holder_poll_now(db: TestDb) {
    let sim = quick_sim().await;
    let app = slow_polling_app(&db, &sim.url()).await;
    let served = Served::start(&app, |stop| vec![relay(&app, stop)]);
    let (id, handle) = ended_unseen(&app, "poked").await;
    let reference = app
        .engine
        .handle_ref("databricks", &tether_provider::Handle::new(handle));
    assert_eq!(reference, sim_run_id(&app, id).await, "the run id");
    let took = poke_until_succeeded(&app, &app, id, &reference, Duration::from_secs(10)).await;
    assert!(
        took < Duration::from_secs(5),
        "recorded {took:?} after the poke"
    );
    // Poked again once it ended: nothing is active with that reference.
    let again = app
        .engine
        .poke(&["databricks".to_string()], &reference)
        .await
        .unwrap();
    assert!(again.is_empty());
    served.stop().await;
}

/// Pokes the Databricks run `reference` through `poker` (it must name job `id` only), waits
/// up to `limit` until `holder` records the job ended, checks it succeeded, and says how long
/// that took after the poke.
async fn poke_until_succeeded(
    poker: &App,
    holder: &App,
    id: JobId,
    reference: &str,
    limit: Duration,
) -> Duration {
    let poked = poker
        .engine
        .poke(&["databricks".to_string()], reference)
        .await
        .unwrap();
    assert_eq!(poked, vec![id]);
    let (record, took) = until(holder, id, limit, |j| j.phase == Phase::Terminal).await;
    assert_eq!(record.state, JobState::Succeeded, "{record:?}");
    took
}

async fn sim_run_id(app: &App, id: JobId) -> String {
    let record = job(app, id).await;
    record
        .handle
        .expect("handle")
        .get_i64("run_id")
        .expect("run id")
        .to_string()
}

/// An event heard by one process for a job another process's supervisor holds reaches that
/// supervisor through the database.
async fn a_poke_reaches_the_holder_in_another_process(db: TestDb) {
    let sim = quick_sim().await;
    let holder = slow_polling_app(&db, &sim.url()).await;
    let hearer = slow_polling_app(&db, &sim.url()).await;
    let served = Served::start(&holder, |stop| {
        vec![relay(&holder, stop), relay(&hearer, stop)]
    });
    let (id, _) = ended_unseen(&holder, "elsewhere").await;
    let reference = sim_run_id(&holder, id).await;
    let took =
        poke_until_succeeded(&hearer, &holder, id, &reference, Duration::from_secs(10)).await;
    assert!(
        took < Duration::from_secs(5),
        "recorded {took:?} after the poke"
    );
    served.stop().await;
}

/// Events that name nothing tether tracks, foreign ones and unreadable ones change nothing;
/// one that says a running job ended is only a hint: the poll finds it running, and running
/// is what is recorded.
async fn wrong_events_change_nothing(db: TestDb) {
    let sim = quick_sim().await;
    // Running from the start: its first poll finds it running, and the next is ten minutes on.
    sim.configure(|c| {
        c.pending = Duration::ZERO;
        c.running = Duration::from_secs(60);
    });
    let app = slow_polling_app(&db, &sim.url()).await;
    let served = Served::start(&app, |stop| vec![relay(&app, stop)]);
    let ensured = app.engine.ensure(&request("running")).await.unwrap();
    let id = ensured.job.id;
    let (record, _) = until(&app, id, Duration::from_secs(10), |j| {
        j.state == JobState::Running
    })
    .await;
    assert_eq!(record.state, JobState::Running, "{record:?}");
    let accounts = ["databricks".to_string()];
    let hint = |reference: &str| {
        Ok(Reading::Hint(Hint {
            kind: "databricks",
            reference: reference.to_string(),
            region: None,
            at_ms: None,
            state: Some("jobs.on_success".into()),
            progress: false,
        }))
    };
    let engine = &app.engine;
    let cases = [
        (hint("999999"), Outcome::Unmatched),
        (
            Ok(Reading::Foreign("an S3 event".into())),
            Outcome::Foreign("an S3 event".into()),
        ),
        (
            Err("not JSON".to_string()),
            Outcome::Unreadable("not JSON".into()),
        ),
    ];
    for (reading, expected) in cases {
        let outcome = engine
            .handle_event("test", &accounts, reading)
            .await
            .unwrap();
        assert_eq!(outcome, expected);
    }
    // Of another kind than the account's: foreign to it.
    let other = Ok(Reading::Hint(Hint {
        kind: "aws-batch",
        reference: sim_run_id(&app, id).await,
        region: None,
        at_ms: None,
        state: None,
        progress: false,
    }));
    let outcome = engine.handle_event("test", &accounts, other).await.unwrap();
    assert!(matches!(outcome, Outcome::Foreign(_)), "{outcome:?}");
    // A forged "it succeeded" about the running job: polled (a `runs/get` after it), found
    // running.
    let gets = sim.stats().get_requests;
    let forged = hint(&sim_run_id(&app, id).await);
    let outcome = engine
        .handle_event("test", &accounts, forged)
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Matched(vec![id]));
    let started = Instant::now();
    while sim.stats().get_requests == gets && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sim.stats().get_requests > gets, "the poke brought no poll");
    let record = job(&app, id).await;
    assert_eq!(record.phase, Phase::Active, "{record:?}");
    assert_eq!(record.state, JobState::Running, "{record:?}");
    // An event reporting the state the record says already: known, not poked (no poll).
    let same = Ok(Reading::Hint(Hint {
        kind: "databricks",
        reference: sim_run_id(&app, id).await,
        region: None,
        at_ms: None,
        state: record.raw_state.clone(),
        progress: false,
    }));
    let outcome = engine.handle_event("test", &accounts, same).await.unwrap();
    assert_eq!(outcome, Outcome::Known(vec![id]));
    // Progress (a run's start): matched, left to polling, no poll.
    let gets = sim.stats().get_requests;
    let started = Ok(Reading::Hint(Hint {
        kind: "databricks",
        reference: sim_run_id(&app, id).await,
        region: None,
        at_ms: None,
        state: Some("jobs.on_start".into()),
        progress: true,
    }));
    let outcome = engine
        .handle_event("test", &accounts, started)
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Progress(vec![id]));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sim.stats().get_requests, gets, "progress brought a poll");
    served.stop().await;
}

/// `POST /v1/events/poke`: an admin's poke marks the job due; a task token not bound to the
/// account is refused (403); an unknown account is 404; a body naming the job twice or not at
/// all is 400, each saying what is wrong.
async fn the_poke_endpoint_checks_who_and_what(db: TestDb) {
    let sim = quick_sim().await;
    let app = slow_polling_app(&db, &sim.url()).await;
    let served = Served::start(&app, |stop| vec![relay(&app, stop)]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let api = router(ApiState::new(app.clone()));
    tokio::spawn(async move { axum::serve(listener, api).await.unwrap() });
    let http = reqwest::Client::new();
    let post = |token: String, body: Value| {
        let req = http
            .post(format!("{url}/v1/events/poke"))
            .bearer_auth(token)
            .json(&body);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (id, handle) = ended_unseen(&app, "api").await;
    let token = |providers: Value| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let body = json!({"dag_id": "etl", "ttl_seconds": 600, "providers": providers});
            let resp = http
                .post(format!("{url}/v1/tokens"))
                .bearer_auth(ADMIN)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            resp.json::<Value>().await.unwrap()["token"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let unbound = token(Value::Null).await;
    let (status, body) = post(
        unbound,
        json!({"provider": "databricks", "handle": handle.clone()}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.to_string().contains("not bound"), "{body}");
    let (status, body) = post(
        ADMIN.into(),
        json!({"provider": "nowhere", "handle": handle.clone()}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.to_string().contains("nowhere"), "{body}");
    let (status, body) = post(
        ADMIN.into(),
        json!({"provider": "databricks", "handle": handle.clone(), "ref": "1"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = post(ADMIN.into(), json!({"provider": "databricks"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        job(&app, id).await.phase,
        Phase::Active,
        "nothing polled yet"
    );
    let bound = token(json!(["databricks"])).await;
    let (status, body) = post(bound, json!({"provider": "databricks", "handle": handle})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "matched", "{body}");
    assert_eq!(body["jobs"], json!([id.0]), "{body}");
    let (record, _) = until(&app, id, Duration::from_secs(10), |j| {
        j.phase == Phase::Terminal
    })
    .await;
    assert_eq!(record.state, JobState::Succeeded, "{record:?}");
    served.stop().await;
}

/// Databricks job notifications through `POST /v1/events/databricks/{account}`: the
/// simulator sends the documented payload with the destination's basic auth when a run
/// starts and ends; tether records the end within seconds though its next poll is ten minutes
/// away. A notification without the account's secret is refused (401) and changes nothing.
async fn databricks_notifications_end_jobs_within_seconds(db: TestDb) {
    const SECRET: &str = "notification-secret-0123456789";
    let sim = quick_sim().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let destination = sim.add_webhook_destination(
        &format!("{url}/v1/events/databricks/databricks"),
        "databricks",
        SECRET,
    );
    let text = config_toml(&db, &sim.url(), "3s", "")
        .replace("poll_initial = \"100ms\"", "poll_initial = \"10m\"")
        .replace("poll_max = \"300ms\"", "poll_max = \"10m\"");
    let text = format!(
        "{text}\nnotification_destination = \"{destination}\"\nnotification_secret = \"{SECRET}\"\n"
    );
    let config = Config::from_toml(&text, "test").expect("config");
    let app = App::open(config).await.expect("open app");
    let served = Served::start(&app, |stop| vec![relay(&app, stop)]);
    let api = router(ApiState::new(app.clone()));
    tokio::spawn(async move { axum::serve(listener, api).await.unwrap() });
    // A forged notification: refused, and the job it names is not polled.
    sim.configure(|c| c.running = Duration::from_secs(3));
    let ensured = app.engine.ensure(&request("notified")).await.unwrap();
    let id = ensured.job.id;
    until(&app, id, Duration::from_secs(10), |j| {
        j.poll_count_hint() >= 1
    })
    .await;
    let run_id = sim_run_id(&app, id).await;
    let forged = json!({"event_type": "jobs.on_success", "workspace_id": "1",
        "run": {"run_id": run_id}, "job": {"job_id": "1", "name": "x"}});
    let http = reqwest::Client::new();
    for auth in [None, Some(("databricks", "wrong"))] {
        let mut req = http
            .post(format!("{url}/v1/events/databricks/databricks"))
            .json(&forged);
        if let Some((user, password)) = auth {
            req = req.basic_auth(user, Some(password));
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    // The run ends at the simulator about three seconds after it started; the
    // notification brings its end.
    let (record, took) = until(&app, id, Duration::from_secs(15), |j| {
        j.phase == Phase::Terminal
    })
    .await;
    assert_eq!(
        record.state,
        JobState::Succeeded,
        "{record:?} after {took:?}"
    );
    let stats = sim.stats();
    assert!(stats.notifications_sent >= 2, "{stats:?}");
    served.stop().await;
}

/// A poke does not wait for the sweep that covers its job: the job leaves the sweep and is
/// polled singly at once, though the sweep (every list call slowed past the request timeout)
/// takes many seconds.
async fn a_poke_does_not_wait_for_a_sweep(db: TestDb) {
    use tether_databricks::sim::{Endpoint, Fault, FaultKind};
    let sim = quick_sim().await;
    sim.configure(|c| {
        c.pending = Duration::ZERO;
        c.running = Duration::from_secs(600);
    });
    let app = slow_polling_app_with(&db, &sim.url(), "sweep_every = \"1s\"").await;
    let served = Served::start(&app, |stop| vec![relay(&app, stop)]);
    let mut ids = Vec::new();
    for task in ["swept-a", "swept-b", "swept-c"] {
        ids.push(app.engine.ensure(&request(task)).await.unwrap().job.id);
    }
    for &id in &ids {
        let (record, _) = until(&app, id, Duration::from_secs(10), |j| {
            j.state == JobState::Running
        })
        .await;
        assert_eq!(record.state, JobState::Running, "{record:?}");
    }
    // Every list call from now on answers after 10 s (the request timeout is 2 s): a sweep
    // now lasts its retries, about 8 s, and fails.
    sim.inject(Fault {
        endpoint: Some(Endpoint::List),
        kind: FaultKind::Delay(Duration::from_secs(10)),
        times: 1_000,
    });
    // Sweeps start every second: one is in flight after 2.5 s (the simulator counts a list
    // call when it answers).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let id = ids[0];
    let run_id: i64 = sim_run_id(&app, id).await.parse().unwrap();
    sim.finish_run(run_id, "SUCCESS");
    let took =
        poke_until_succeeded(&app, &app, id, &run_id.to_string(), Duration::from_secs(20)).await;
    assert!(
        took < Duration::from_secs(4),
        "recorded {took:?} after the poke: it waited for the sweep"
    );
    served.stop().await;
}

on_both_backends!(
    a_poke_does_not_wait_for_a_sweep,
    databricks_notifications_end_jobs_within_seconds,
    a_poke_makes_the_holder_poll_now,
    a_poke_reaches_the_holder_in_another_process,
    wrong_events_change_nothing,
    the_poke_endpoint_checks_who_and_what,
);
