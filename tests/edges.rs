//! The services' edges as the engine meets them (issue 32, findings 2 and 4), against the
//! Databricks simulator on both backends: a new run that reads "not found" for a while ends
//! with its true state; a run the workspace forgets after reporting it ends `outcome_unknown`,
//! which no retry submits again until a person settles it (or the account says so).

mod common;

use std::time::{Duration, Instant};

use tether::app::App;
use tether::config::Config;
use tether::engine::{EngineError, EnsureAction, EnsureRequest, Resolution, Supervisor};
use tether::jobs::JobRecord;
use tether::state::TaskInstanceId;
use tether_databricks::sim::Simulator;
use tether_provider::sim::Lifetimes;
use tether_provider::JobState;
use tokio_util::sync::CancellationToken;

use common::{config_toml, quick_sim, spec, TestDb};

fn request(try_number: i64) -> EnsureRequest {
    EnsureRequest {
        task_instance: TaskInstanceId::new("etl", "r1", "load", -1),
        try_number,
        name: "main".into(),
        provider: "databricks".into(),
        spec: spec("load"),
    }
}

/// An app on `sim` whose account reads "not found" as not visible yet for `grace`, with
/// `extra` in its provider table.
async fn app(db: &TestDb, sim: &Simulator, grace: &str, extra: &str) -> App {
    let text = config_toml(db, &sim.url(), "2s", extra).replace(
        "not_found_grace = \"1s\"",
        &format!("not_found_grace = \"{grace}\""),
    );
    App::open(Config::from_toml(&text, "test").unwrap())
        .await
        .unwrap()
}

/// Runs a supervisor until `done` holds for the job (or 30 s pass).
async fn supervise_until(
    app: &App,
    id: tether::model::JobId,
    done: impl Fn(&JobRecord) -> bool,
) -> JobRecord {
    let stop = CancellationToken::new();
    let sup = tokio::spawn(Supervisor::new(app.engine.clone()).run(stop.clone()));
    let start = Instant::now();
    let job = loop {
        let job = app.engine.jobs().get(id).await.unwrap().unwrap();
        if done(&job) {
            break job;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{job:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop.cancel();
    sup.await.unwrap();
    job
}

async fn event_kinds(app: &App, id: tether::model::JobId) -> Vec<String> {
    let events = app.engine.jobs().events(id).await.unwrap();
    events.into_iter().map(|e| e.kind).collect()
}

/// Finding 2: the workspace answers "does not exist" for a new run for 1.5 s (and leaves it
/// out of lists); within the account's grace that is not an end: the run is polled on and
/// ends with its true state, one run made.
async fn a_run_not_visible_at_first_ends_with_its_true_state(db: TestDb) {
    let sim = quick_sim().await;
    sim.set_lifetimes(Lifetimes {
        invisible_for: Duration::from_millis(1500),
        forget_after: None,
    });
    let app = app(&db, &sim, "5s", "").await;
    let job = app.engine.ensure(&request(1)).await.unwrap().job;
    let done = supervise_until(&app, job.id, |j| j.state.is_terminal()).await;
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    assert_eq!(sim.stats().submissions, 1);
    assert!(!event_kinds(&app, job.id)
        .await
        .contains(&"lost".to_string()));
}

/// Past the grace, a run the workspace never reported is `lost` (it was never made there),
/// and the next try submits it again.
async fn a_run_never_seen_past_the_grace_is_lost(db: TestDb) {
    let sim = quick_sim().await;
    let app = app(&db, &sim, "1s", "").await;
    let job = app.engine.ensure(&request(1)).await.unwrap().job;
    sim.delete_run(job.handle.as_ref().unwrap().get_i64("run_id").unwrap());
    let done = supervise_until(&app, job.id, |j| j.state.is_terminal()).await;
    assert_eq!(done.state, JobState::Lost, "{done:?}");
    assert!(
        done.message.as_deref().unwrap().contains("never reported"),
        "{done:?}"
    );
    let again = app.engine.ensure(&request(2)).await.unwrap();
    assert_eq!(again.action, EnsureAction::Resubmitted);
    assert_eq!(sim.stats().submissions, 2);
}

/// Finding 4: a run the workspace reported running and then forgot (its 60 days ran out while
/// tether could not poll, or it was deleted) ends `outcome_unknown`; a later try reports that
/// and submits nothing; a person settles it with who and why, and only then does a try run it
/// again.
async fn a_run_forgotten_after_it_was_seen_is_outcome_unknown(db: TestDb) {
    let sim = quick_sim().await;
    sim.configure(|c| c.running = Duration::from_secs(60));
    let app = app(&db, &sim, "1s", "").await;
    let job = app.engine.ensure(&request(1)).await.unwrap().job;
    let run_id = job.handle.as_ref().unwrap().get_i64("run_id").unwrap();
    supervise_until(&app, job.id, |j| j.state == JobState::Running).await;
    sim.delete_run(run_id);
    let done = supervise_until(&app, job.id, |j| j.state.is_terminal()).await;
    assert_eq!(done.state, JobState::OutcomeUnknown, "{done:?}");
    let message = done.message.clone().unwrap();
    for part in ["60 days", "tether jobs resolve", "RUNNING"] {
        assert!(message.contains(part), "{part:?} missing: {message}");
    }
    assert!(event_kinds(&app, job.id)
        .await
        .contains(&"outcome_unknown".to_string()));
    let key = app
        .state
        .get(
            &tether::state::Scope::TaskInstance(request(1).task_instance),
            "tether.job.main",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(key.value["state"], "outcome_unknown");

    // A later try is told, and nothing is submitted.
    let retry = app.engine.ensure(&request(2)).await.unwrap();
    assert_eq!(retry.action, EnsureAction::Finished);
    assert_eq!(retry.job.state, JobState::OutcomeUnknown);
    assert_eq!(sim.stats().submissions, 1, "no second run");

    // A person settles it: recorded with who and why; the next try runs it again.
    let settled = app
        .engine
        .resolve(
            job.id,
            Resolution::Resubmit,
            "cli:alice",
            "no output in the lake",
        )
        .await
        .unwrap();
    assert_eq!(settled.state, JobState::Lost);
    let events = app.engine.jobs().events(job.id).await.unwrap();
    let resolved = events.iter().find(|e| e.kind == "resolved").unwrap();
    assert_eq!(resolved.actor, "cli:alice");
    let detail = resolved.detail.as_ref().unwrap();
    assert_eq!(detail["reason"], "no output in the lake");
    assert_eq!(detail["to"], "lost");
    // Settled once: a second settling is refused.
    match app
        .engine
        .resolve(job.id, Resolution::Succeeded, "cli:bob", "late")
        .await
    {
        Err(EngineError::OutcomeKnown { state, .. }) => assert_eq!(state, JobState::Lost),
        other => panic!("{other:?}"),
    }
    let again = app.engine.ensure(&request(3)).await.unwrap();
    assert_eq!(again.action, EnsureAction::Resubmitted);
    assert_eq!(sim.stats().submissions, 2);
}

/// An account that says re-running a job whose outcome is unknown is safe
/// (`on_forgotten = "resubmit"`): the forgotten run is `lost`, and the next try submits it.
async fn an_account_may_choose_to_resubmit_forgotten_runs(db: TestDb) {
    let sim = quick_sim().await;
    sim.configure(|c| c.running = Duration::from_secs(60));
    let app = app(&db, &sim, "1s", "on_forgotten = \"resubmit\"").await;
    let job = app.engine.ensure(&request(1)).await.unwrap().job;
    let run_id = job.handle.as_ref().unwrap().get_i64("run_id").unwrap();
    supervise_until(&app, job.id, |j| j.state == JobState::Running).await;
    sim.delete_run(run_id);
    let done = supervise_until(&app, job.id, |j| j.state.is_terminal()).await;
    assert_eq!(done.state, JobState::Lost, "{done:?}");
    assert!(done.message.as_deref().unwrap().contains("on_forgotten"));
    let again = app.engine.ensure(&request(2)).await.unwrap();
    assert_eq!(again.action, EnsureAction::Resubmitted);
    assert_eq!(sim.stats().submissions, 2);
}

/// A cancel asked for while the new run is not visible yet (the workspace answers "does not
/// exist" to the cancel and to the polls): the run is not taken for gone, the cancel is sent
/// once the run shows, and the run is cancelled at the provider, as recorded. (The soak with
/// the edges on found a record "cancelled" whose run went on to succeed.)
async fn a_cancel_asked_before_the_run_is_visible_reaches_it(db: TestDb) {
    let sim = quick_sim().await;
    sim.configure(|c| c.running = Duration::from_secs(60));
    sim.set_lifetimes(Lifetimes {
        invisible_for: Duration::from_millis(1500),
        forget_after: None,
    });
    let app = app(&db, &sim, "10s", "").await;
    let job = app.engine.ensure(&request(1)).await.unwrap().job;
    let asked = app
        .engine
        .cancel(job.id, "a person stops it", "cli:alice")
        .await
        .unwrap();
    assert_eq!(
        asked.cancel_sent_at, None,
        "not visible: the cancel is not taken yet"
    );
    let done = supervise_until(&app, job.id, |j| j.state.is_terminal()).await;
    assert_eq!(done.state, JobState::Cancelled, "{done:?}");
    assert!(done.cancel_sent_at.is_some(), "{done:?}");
    let run_id = job.handle.as_ref().unwrap().get_i64("run_id").unwrap();
    assert_eq!(
        sim.run_state(run_id).as_deref(),
        Some("TERMINATED/CANCELED"),
        "the run itself was cancelled"
    );
}

on_both_backends!(
    a_cancel_asked_before_the_run_is_visible_reaches_it,
    a_run_not_visible_at_first_ends_with_its_true_state,
    a_run_never_seen_past_the_grace_is_lost,
    a_run_forgotten_after_it_was_seen_is_outcome_unknown,
    an_account_may_choose_to_resubmit_forgotten_runs,
);

/// `tether sim` switches the two edges on for a person reproducing a case by hand: with
/// `--invisible-for 2s --forget-after 2s`, a new run answers "does not exist" for two seconds,
/// then is read, then is forgotten two seconds after it ended.
#[tokio::test]
async fn tether_sim_switches_the_edges_on() {
    let sim = common::procs::Sim::start_with(
        "databricks",
        "1s",
        &["--invisible-for", "2s", "--forget-after", "2s"],
    )
    .await;
    let client = reqwest::Client::new();
    let submitted: serde_json::Value = client
        .post(format!("{}/api/2.1/jobs/runs/submit", sim.url))
        .bearer_auth("dapi-sim-token")
        .json(&spec("by-hand"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run_id = submitted["run_id"].as_i64().unwrap();
    let made = Instant::now();
    let get = || {
        client
            .get(format!("{}/api/2.1/jobs/runs/get?run_id={run_id}", sim.url))
            .bearer_auth("dapi-sim-token")
            .send()
    };
    assert_eq!(get().await.unwrap().status(), 400, "not visible at first");
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(made.elapsed())).await;
    let mut seen = false;
    let mut forgotten = false;
    while made.elapsed() < Duration::from_secs(15) {
        let answer = get().await.unwrap();
        if answer.status() == 200 {
            seen = true;
        } else if seen {
            forgotten = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(seen && forgotten, "seen {seen}, forgotten {forgotten}");
    // Ended after 200 ms + 1 s + 1 s (terminating), forgotten 2 s later.
    assert!(
        made.elapsed() >= Duration::from_millis(4200),
        "{:?}",
        made.elapsed()
    );
}
