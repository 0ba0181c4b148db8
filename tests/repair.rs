//! Repair instead of rerun (`on_retry = "repair"` on a Databricks account), on both backends:
//! a two-task run whose second task fails is asked for again by try 2, which repairs it in
//! place (one run, one repair, only the failed task runs again); a `tether run` SIGKILLed
//! right after the repair call answered, then run again, still makes one repair; without
//! `on_retry`, try 2 submits a new run.

mod common;

use std::time::Duration;

use serde_json::json;
use tether::app::App;
use tether::engine::{EnsureAction, EnsureRequest};
use tether::jobs::{JobRecord, Phase};
use tether::state::TaskInstanceId;
use tether_databricks::sim::Simulator;
use tether_provider::JobState;
use tokio::process::Command;

use common::procs::tether;
use common::{app_for, exit_within, quick_sim, TestDb};

/// Two tasks; `load` fails in the original run and succeeds when repaired.
fn two_tasks(name: &str) -> serde_json::Value {
    json!({
        "run_name": name,
        "tasks": [
            {"task_key": "extract", "spark_python_task": {"python_file": "dbfs:/etl/extract.py"}},
            {"task_key": "load", "depends_on": [{"task_key": "extract"}],
             "spark_python_task": {"python_file": "dbfs:/sim/fail-once.py"}}
        ]
    })
}

fn req(task: &str, try_number: i64) -> EnsureRequest {
    EnsureRequest {
        task_instance: TaskInstanceId::new("etl", "r1", task, -1),
        try_number,
        name: "main".into(),
        provider: "databricks".into(),
        spec: two_tasks(task),
    }
}

async fn finished(app: &App, id: tether::model::JobId) -> JobRecord {
    common::until_all_done(app, &[id], Duration::from_secs(30))
        .await
        .remove(0)
}

/// Task runs per task key, repairs and runs made, as the simulator counts them.
fn counts(sim: &Simulator) -> (u64, u64, u64, u64) {
    let stats = sim.stats();
    let task = |k: &str| stats.task_runs.get(k).copied().unwrap_or(0);
    (
        stats.submissions,
        stats.repairs,
        task("extract"),
        task("load"),
    )
}

async fn try_two_repairs_the_failed_task_only(db: TestDb) {
    let sim = quick_sim().await;
    let app = app_for(&db, &sim.url(), "2s", "on_retry = \"repair\"").await;
    let first = app.engine.ensure(&req("load", 1)).await.unwrap();
    let failed = finished(&app, first.job.id).await;
    assert_eq!(failed.state, JobState::Failed, "{failed:?}");
    assert_eq!(
        failed.message.as_deref(),
        Some("task load failed: simulated task load ended with FAILED"),
        "the message names the failed task"
    );
    let run_id = failed.handle.as_ref().unwrap().get_i64("run_id").unwrap();

    let second = app.engine.ensure(&req("load", 2)).await.unwrap();
    assert_eq!(second.action, EnsureAction::Resubmitted);
    assert_eq!(second.job.generation, 2);
    let handle = second.job.handle.clone().expect("recorded");
    assert_eq!(handle.get_i64("run_id"), Some(run_id), "the same run");
    assert!(handle.get_i64("repair_id").is_some(), "{handle}");
    assert_eq!(second.job.repair_of.as_ref(), failed.handle.as_ref());
    let repaired = finished(&app, second.job.id).await;
    assert_eq!(repaired.state, JobState::Succeeded, "{repaired:?}");
    assert_eq!(
        counts(&sim),
        (1, 1, 1, 2),
        "one run, one repair; extract ran once, load twice"
    );
    // The try that repaired it asks again: the result, nothing more.
    let again = app.engine.ensure(&req("load", 2)).await.unwrap();
    assert_eq!(again.action, EnsureAction::Finished);
    assert_eq!(counts(&sim), (1, 1, 1, 2));
    let events = app.engine.jobs().events(second.job.id).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "repaired"), "{events:?}");
}

async fn without_on_retry_a_new_run_is_submitted(db: TestDb) {
    let sim = quick_sim().await;
    let app = app_for(&db, &sim.url(), "2s", "").await;
    let first = app.engine.ensure(&req("load", 1)).await.unwrap();
    assert_eq!(finished(&app, first.job.id).await.state, JobState::Failed);
    let second = app.engine.ensure(&req("load", 2)).await.unwrap();
    assert_eq!(second.action, EnsureAction::Resubmitted);
    assert!(second.job.repair_of.is_none());
    let run = |j: &JobRecord| j.handle.as_ref().and_then(|h| h.get_i64("run_id"));
    assert_ne!(run(&second.job), run(&first.job), "a new run");
    finished(&app, second.job.id).await;
    let (runs, repairs, extract, _) = counts(&sim);
    assert_eq!(
        (runs, repairs, extract),
        (2, 0, 2),
        "a new run: every task again"
    );
}

/// `tether run` for try `try_number` of etl/r1/load, with the crash point `point` on if any.
fn run(
    config: &std::path::Path,
    spec: &std::path::Path,
    try_number: u32,
    point: Option<&str>,
) -> Command {
    let mut cmd = tether();
    cmd.arg("--config")
        .arg(config)
        .args(["run", "--provider", "databricks", "--spec"])
        .arg(spec)
        .args(["--dag", "etl", "--run", "r1", "--task", "load", "--try"])
        .arg(try_number.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(point) = point {
        cmd.env("FAILPOINTS", format!("{point}=return"));
    }
    cmd
}

async fn sigkill_after_the_repair_call_still_one_repair(db: TestDb) {
    let sim = quick_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tether.toml");
    std::fs::write(
        &config,
        common::config_toml(&db, &sim.url(), "1s", "on_retry = \"repair\""),
    )
    .unwrap();
    let spec = dir.path().join("job.json");
    std::fs::write(&spec, two_tasks("load").to_string()).unwrap();

    let mut first = run(&config, &spec, 1, None).spawn().unwrap();
    let status = exit_within(&mut first, Duration::from_secs(60)).await;
    assert_ne!(status.code(), Some(0), "try 1 fails: {status}");

    // Try 2 repairs, and dies the moment the repair call has answered, before recording it.
    let mut killed = run(&config, &spec, 2, Some("after_submit"))
        .spawn()
        .unwrap();
    let status = exit_within(&mut killed, Duration::from_secs(60)).await;
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "SIGKILLed after the repair call: {status}"
    );
    assert_eq!(counts(&sim).1, 1, "the repair was made");

    // The same try again (the worker's retry): it finds the repair and waits for it.
    let mut again = run(&config, &spec, 2, None).spawn().unwrap();
    let status = exit_within(&mut again, Duration::from_secs(60)).await;
    assert_eq!(
        status.code(),
        Some(0),
        "the repaired run succeeds: {status}"
    );
    assert_eq!(
        counts(&sim),
        (1, 1, 1, 2),
        "still one run and one repair; load ran twice"
    );
    let app = App::open(tether::config::Config::load(&config).unwrap())
        .await
        .unwrap();
    let job = app
        .engine
        .jobs()
        .latest(&TaskInstanceId::new("etl", "r1", "load", -1), "main")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (job.generation, job.phase, job.state),
        (2, Phase::Terminal, JobState::Succeeded)
    );
    assert!(
        job.repair_of.is_some() && job.duplicates.is_empty(),
        "{job:?}"
    );
}

on_both_backends!(
    try_two_repairs_the_failed_task_only,
    without_on_retry_a_new_run_is_submitted,
    sigkill_after_the_repair_call_still_one_repair,
);
