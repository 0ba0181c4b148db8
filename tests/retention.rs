//! Job history retention on both backends: finished jobs and their events are removed once
//! `jobs.retention` has passed, by the GC sweep (the one `tether serve` runs on its schedule,
//! and `tether gc`), in batches; running jobs are kept, and so is a task instance's newest
//! generation while its `tether.job.main` task-state key is there.

mod common;

use std::time::{Duration, Instant};

use tether::app::App;
use tether::engine::{EnsureAction, EnsureRequest, Supervisor};
use tether::jobs::{JobRecord, Phase};
use tether::state::{Scope, TaskInstanceId};
use tokio_util::sync::CancellationToken;

use common::{app_for, quick_sim, spec, TestDb};

fn request(task: &str, try_number: i64) -> EnsureRequest {
    EnsureRequest {
        task_instance: TaskInstanceId::new("etl", "r1", task, -1),
        try_number,
        name: "main".into(),
        provider: "databricks".into(),
        spec: spec(task),
    }
}

/// Runs a supervisor until every job in `ids` has finished.
async fn until_finished(app: &App, ids: &[tether::model::JobId]) -> Vec<JobRecord> {
    let stop = CancellationToken::new();
    let sup = tokio::spawn(Supervisor::new(app.engine.clone()).run(stop.clone()));
    let start = Instant::now();
    let done = loop {
        let mut records = Vec::new();
        for id in ids {
            records.push(app.engine.jobs().get(*id).await.unwrap().unwrap());
        }
        if records.iter().all(|r| r.phase == Phase::Terminal) {
            break records;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{records:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop.cancel();
    sup.await.unwrap();
    done
}

async fn finished_jobs_are_removed_after_their_retention(db: TestDb) {
    let sim = quick_sim().await;
    let app = app_for(&db, &sim.url(), "2s", "\n[jobs]\nretention = \"1s\"\n").await;
    let jobs = app.engine.jobs();

    // kept: succeeded, its state key points at it.
    let kept = app.engine.ensure(&request("kept", 1)).await.unwrap().job.id;
    // retried: generation 1 fails, generation 2 succeeds; only generation 2 is kept.
    sim.configure(|c| c.outcome = "FAILED".into());
    let failed = app
        .engine
        .ensure(&request("retried", 1))
        .await
        .unwrap()
        .job
        .id;
    until_finished(&app, &[kept, failed]).await;
    sim.configure(|c| c.outcome = "SUCCESS".into());
    let again = app.engine.ensure(&request("retried", 2)).await.unwrap();
    assert_eq!(again.action, EnsureAction::Resubmitted);
    let second = again.job.id;
    // forgotten: succeeded, then its task instance's state was cleared.
    let forgotten = app
        .engine
        .ensure(&request("forgotten", 1))
        .await
        .unwrap()
        .job
        .id;
    until_finished(&app, &[second, forgotten]).await;
    app.state
        .delete(
            &Scope::TaskInstance(TaskInstanceId::new("etl", "r1", "forgotten", -1)),
            "tether.job.main",
            None,
        )
        .await
        .unwrap();
    // running: still running when the sweep comes.
    sim.configure(|c| c.running = Duration::from_secs(120));
    let running = app
        .engine
        .ensure(&request("running", 1))
        .await
        .unwrap()
        .job
        .id;
    assert!(!jobs.events(failed).await.unwrap().is_empty());

    tokio::time::sleep(Duration::from_millis(1200)).await;
    let dry = tether::jobs::retention::prune(
        jobs,
        chrono::Utc::now() - chrono::Duration::seconds(1),
        chrono::Utc::now(),
        100,
        true,
    )
    .await
    .unwrap();
    assert_eq!(
        dry.jobs, 2,
        "a dry run counts generation 1 of retried, and forgotten"
    );
    assert!(
        jobs.get(failed).await.unwrap().is_some(),
        "a dry run removes nothing"
    );

    // One job per transaction, to go through the batching.
    let report = app.sweeper(Some(1)).sweep().await.unwrap();
    assert_eq!(report.jobs, 2, "{report}");
    assert!(report.job_events >= 4, "{report}");
    for id in [failed, forgotten] {
        assert!(jobs.get(id).await.unwrap().is_none(), "job {id} removed");
        assert!(
            jobs.events(id).await.unwrap().is_empty(),
            "job {id}'s events removed"
        );
    }
    for id in [kept, second, running] {
        assert!(jobs.get(id).await.unwrap().is_some(), "job {id} kept");
        assert!(
            !jobs.events(id).await.unwrap().is_empty(),
            "job {id}'s events kept"
        );
    }
    // A retry still reads the kept generation: no submission.
    let reported = app.engine.ensure(&request("retried", 3)).await.unwrap();
    assert_eq!(
        (reported.action, reported.job.id),
        (EnsureAction::Finished, second)
    );
    assert_eq!(app.sweeper(None).sweep().await.unwrap().jobs, 0);
}

/// `never` keeps every finished job.
async fn never_keeps_everything(db: TestDb) {
    let sim = quick_sim().await;
    let app = app_for(&db, &sim.url(), "2s", "\n[jobs]\nretention = \"never\"\n").await;
    let id = app
        .engine
        .ensure(&request("forever", 1))
        .await
        .unwrap()
        .job
        .id;
    until_finished(&app, &[id]).await;
    app.state
        .delete(
            &Scope::TaskInstance(TaskInstanceId::new("etl", "r1", "forever", -1)),
            "tether.job.main",
            None,
        )
        .await
        .unwrap();
    assert_eq!(app.sweeper(None).sweep().await.unwrap().jobs, 0);
    assert!(app.engine.jobs().get(id).await.unwrap().is_some());
}

on_both_backends!(
    finished_jobs_are_removed_after_their_retention,
    never_keeps_everything
);
