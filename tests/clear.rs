//! What Airflow's clear, and a stopped try's `on_kill`, mean to the decision table, on both
//! backends: a finished job whose result its try consumed runs anew for a later try; a later
//! try that finds a job its earlier try asked to cancel runs it anew once the cancel is sent;
//! a try's cancel is refused once a later try owns the job; and an ensure goes on when its
//! client goes away.

mod common;

use std::time::Duration;

use serde_json::json;
use tether::app::App;
use tether::engine::{EngineError, EnsureAction, EnsureRequest};
use tether::jobs::{JobRecord, Phase};
use tether::state::{Scope, TaskInstanceId};
use tether_databricks::sim::{Endpoint, Fault, FaultKind, Simulator};
use tether_provider::JobState;

use common::{app_for, quick_sim, TestDb};

fn req(task: &str, try_number: i64) -> EnsureRequest {
    EnsureRequest {
        task_instance: TaskInstanceId::new("etl", "r1", task, -1),
        try_number,
        name: "main".into(),
        provider: "databricks".into(),
        spec: common::spec(task),
    }
}

async fn finished(app: &App, id: tether::model::JobId) -> JobRecord {
    common::until_all_done(app, &[id], Duration::from_secs(30))
        .await
        .remove(0)
}

/// The job's task-state key: what a task reads of its job.
async fn state_key(app: &App, task: &str) -> serde_json::Value {
    let scope = Scope::TaskInstance(TaskInstanceId::new("etl", "r1", task, -1));
    app.state
        .get(&scope, "tether.job.main")
        .await
        .unwrap()
        .expect("the job's key")
        .value
}

/// A success nobody consumed is reported to a later try (it ended while its try was gone); one
/// its try consumed (the task completed with it) runs anew for a later try (a clear), once.
async fn a_consumed_success_runs_again_for_a_later_try(db: TestDb) {
    let sim = quick_sim().await;
    let app = app_for(&db, &sim.url(), "2s", "").await;
    let first = app.engine.ensure(&req("load", 1)).await.unwrap();
    let job = finished(&app, first.job.id).await;
    assert_eq!(job.state, JobState::Succeeded);

    let evicted = app.engine.ensure(&req("load", 2)).await.unwrap();
    assert_eq!(
        evicted.action,
        EnsureAction::Finished,
        "not consumed: reported"
    );
    assert_eq!(sim.stats().submissions, 1);

    let refused = app.engine.consume(job.id, 0, "test").await.unwrap_err();
    assert!(matches!(refused, EngineError::Invalid(_)), "{refused}");
    let consumed = app.engine.consume(job.id, 2, "test").await.unwrap();
    assert_eq!(consumed.consumed_try, Some(2));
    let again = app.engine.ensure(&req("load", 2)).await.unwrap();
    assert_eq!(
        again.action,
        EnsureAction::Finished,
        "the same try is told its result"
    );

    let cleared = app.engine.ensure(&req("load", 3)).await.unwrap();
    assert_eq!(cleared.action, EnsureAction::Resubmitted);
    assert_eq!(cleared.job.generation, 2);
    assert_eq!(sim.stats().submissions, 2);
    let reasked = app.engine.ensure(&req("load", 3)).await.unwrap();
    assert_eq!(reasked.job.id, cleared.job.id, "once");
    assert_eq!(sim.stats().submissions, 2);
    let events = app.engine.jobs().events(job.id).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "consumed"), "{events:?}");
}

/// A running job cannot be consumed.
async fn a_running_job_cannot_be_consumed(db: TestDb) {
    let sim = quick_sim().await;
    sim.configure(|c| c.running = Duration::from_secs(30));
    let app = app_for(&db, &sim.url(), "2s", "").await;
    let job = app.engine.ensure(&req("load", 1)).await.unwrap().job;
    let refused = app.engine.consume(job.id, 1, "test").await.unwrap_err();
    assert!(matches!(refused, EngineError::NotFinished(_)), "{refused}");
    assert!(
        refused.to_string().contains("has not finished"),
        "{refused}"
    );
}

/// Clear of a running task: try 1's `on_kill` cancels, then try 2 asks. Try 2 never reattaches
/// to the job on its way out: it runs the job anew (generation 2) once the cancel was sent; the
/// old run ends cancelled, and the task-state key stays the new generation's.
async fn a_later_try_after_a_cancel_runs_anew(db: TestDb) {
    let sim = quick_sim().await;
    sim.configure(|c| c.running = Duration::from_secs(3));
    let app = app_for(&db, &sim.url(), "2s", "").await;
    let first = app.engine.ensure(&req("clear", 1)).await.unwrap().job;
    app.engine
        .cancel_for_try(
            first.id,
            "the Airflow task was stopped by a user",
            "test",
            Some(1),
        )
        .await
        .unwrap();
    let second = app.engine.ensure(&req("clear", 2)).await.unwrap();
    assert_eq!(second.action, EnsureAction::Resubmitted);
    assert_eq!(second.job.generation, 2);
    let old = finished(&app, first.id).await;
    let new = finished(&app, second.job.id).await;
    assert_eq!(old.state, JobState::Cancelled);
    assert_eq!(new.state, JobState::Succeeded);
    let stats = sim.stats();
    assert_eq!((stats.submissions, stats.cancels), (2, 1), "{stats:?}");
    let key = state_key(&app, "clear").await;
    assert_eq!(key["generation"], 2, "{key}");
    assert_eq!(key["state"], "succeeded", "{key}");
}

/// Clear of a deferred task, the other order: try 2 reattaches first, then try 1's `on_kill`
/// asks to cancel. Refused: the run is try 2's now and carries on. A person's cancel (no try)
/// still goes through.
async fn a_stopped_try_cannot_cancel_its_successors_job(db: TestDb) {
    let sim = quick_sim().await;
    sim.configure(|c| c.running = Duration::from_secs(30));
    let app = app_for(&db, &sim.url(), "2s", "").await;
    let first = app.engine.ensure(&req("defer", 1)).await.unwrap().job;
    let second = app.engine.ensure(&req("defer", 2)).await.unwrap();
    assert_eq!(second.action, EnsureAction::Reattached);
    assert_eq!(second.job.owner_try(), 2);
    let refused = app
        .engine
        .cancel_for_try(first.id, "stopped", "test", Some(1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            EngineError::CancelRefused {
                owner: 2,
                asked_by: 1,
                ..
            }
        ),
        "{refused}"
    );
    assert!(refused.to_string().contains("keeps running"), "{refused}");
    let job = app.engine.jobs().get(first.id).await.unwrap().unwrap();
    assert!(job.cancel_requested_at.is_none(), "{job:?}");
    assert_eq!(sim.stats().cancels, 0);
    // Try 2 may cancel it; so may a person.
    let by_owner = app
        .engine
        .cancel_for_try(first.id, "stopped", "test", Some(2))
        .await
        .unwrap();
    assert!(by_owner.cancel_requested_at.is_some());
    let by_person = app
        .engine
        .cancel(first.id, "by hand", "test")
        .await
        .unwrap();
    assert!(by_person.cancel_requested_at.is_some());
    assert_eq!(finished(&app, first.id).await.state, JobState::Cancelled);
}

/// Over HTTP: `POST /v1/jobs/{id}/cancel` with a stale try is 409 `cancel_refused`,
/// `POST /v1/jobs/{id}/consume` on a running job 409 `not_finished`; and an ensure whose client
/// went away mid-submit is finished by the server, so that the next try finds the handle at
/// once.
async fn over_http(db: TestDb) {
    let sim = quick_sim().await;
    sim.configure(|c| c.running = Duration::from_secs(30));
    const ADMIN: &str = "admin-token-for-clear-tests-0123456789";
    let extra = format!(
        "\n[api]\nadmin_token_sha256 = [\"{}\"]\n",
        tether::api::auth::hash_token(ADMIN)
    );
    let app = app_for(&db, &sim.url(), "2s", &extra).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let api = tether::api::router(tether::api::ApiState::new(app.clone()));
    tokio::spawn(async move { axum::serve(listener, api).await.unwrap() });
    let http = reqwest::Client::new();
    let body = |task: &str, try_number: i64| {
        json!({"dag_id": "etl", "run_id": "r1", "task_id": task, "try_number": try_number,
               "provider": "databricks", "spec": common::spec(task)})
    };

    // The client gives up 300 ms into a 2-s submit; the server carries on.
    sim.inject(Fault {
        endpoint: Some(Endpoint::Submit),
        kind: FaultKind::Delay(Duration::from_secs(2)),
        times: 1,
    });
    let gone = http
        .post(format!("{base}/v1/jobs"))
        .bearer_auth(ADMIN)
        .timeout(Duration::from_millis(300))
        .json(&body("dropped", 1))
        .send()
        .await;
    assert!(gone.is_err(), "the client gave up");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ti = TaskInstanceId::new("etl", "r1", "dropped", -1);
    let job = app
        .engine
        .jobs()
        .latest(&ti, "main")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.phase, Phase::Active, "the handle was recorded: {job:?}");
    let started = std::time::Instant::now();
    let retry: serde_json::Value = http
        .post(format!("{base}/v1/jobs"))
        .bearer_auth(ADMIN)
        .json(&body("dropped", 2))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(retry["action"], "reattached", "{retry}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(retry["job"]["owner_try"], 2, "{retry}");
    assert_eq!(sim.stats().submissions, 1);

    let id = job.id;
    let r = http
        .post(format!("{base}/v1/jobs/{id}/cancel"))
        .bearer_auth(ADMIN)
        .json(&json!({"reason": "stopped", "try_number": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CONFLICT);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"], "cancel_refused", "{v}");
    let r = http
        .post(format!("{base}/v1/jobs/{id}/consume"))
        .bearer_auth(ADMIN)
        .json(&json!({"try_number": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CONFLICT);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"], "not_finished", "{v}");
    let r = http
        .post(format!("{base}/v1/jobs/{id}/consume"))
        .bearer_auth(ADMIN)
        .json(&json!({"try_number": "two"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::BAD_REQUEST);
    let _: Simulator = sim;
}

on_both_backends!(
    a_consumed_success_runs_again_for_a_later_try,
    a_running_job_cannot_be_consumed,
    a_later_try_after_a_cancel_runs_anew,
    a_stopped_try_cannot_cancel_its_successors_job,
    over_http,
);
