//! Clock skew: leases are judged by the database's clock, so a supervisor whose host clock runs
//! ahead neither takes live leases nor submits twice; beyond `supervisor.max_clock_skew` it
//! claims nothing and submits nothing, and says so.
//!
//! The process scenarios run a `tether serve` under libfaketime (Debian's `faketime`, which
//! `.ci/run` installs), its clock 90 s ahead, beside `tether run`s whose submissions are
//! throttled past their lease, on one PostgreSQL database. The in-process ones give the
//! supervisor a clock of the test's.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use nix::sys::signal::Signal;
use tether::clock::Clock;
use tether::engine::{EngineError, EnsureRequest, Supervisor};
use tether::jobs::Phase;
use tether::state::TaskInstanceId;

use common::procs::{key_of, wait_job, Setup, Sim};
use common::{exit_within, signal, TestDb};

/// Where Debian's libfaketime lives.
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// A clock `ahead` of the system's (negative: behind).
#[derive(Debug)]
struct Skewed(chrono::Duration);

impl Clock for Skewed {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.0
    }
}

fn skewed(seconds: i64) -> Arc<dyn Clock> {
    Arc::new(Skewed(chrono::Duration::seconds(seconds)))
}

fn faketime_or_skip(test: &str) -> bool {
    if std::path::Path::new(LIBFAKETIME).exists() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("CI installs faketime (Debian's package), and {LIBFAKETIME} is missing");
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: install Debian's faketime to run it"
    );
    false
}

/// Six `tether run`s of `provider` whose submits are throttled (Retry-After 1 s) past their 2-s
/// lease, beside a `tether serve` whose clock is 90 s ahead, on one PostgreSQL database. With
/// `bound` the skewed supervisor's `max_clock_skew`: beyond it, it claims nothing; within it,
/// it claims on the database's clock. Either way: one remote job per key, every run succeeds.
async fn skewed_supervisor_beside_throttled_submissions(
    test: &str,
    provider: &'static str,
    bound: Option<&str>,
) {
    if !faketime_or_skip(test) {
        return;
    }
    let Some(db) = TestDb::postgres(test).await else {
        return;
    };
    let sim = Sim::start(provider, &["--throttle-first", "18", "--retry-after", "1s"]).await;
    let setup = Setup::new(&db, provider, &sim, "2s");
    let skewed_config = setup.dir.path().join("skewed.toml");
    let mut text = std::fs::read_to_string(&setup.config).unwrap();
    if let Some(bound) = bound {
        text = text.replace(
            "shutdown_grace = \"5s\"",
            &format!("shutdown_grace = \"5s\"\nmax_clock_skew = \"{bound}\""),
        );
    }
    std::fs::write(&skewed_config, text).unwrap();
    let mut serve = common::procs::tether()
        .arg("--config")
        .arg(&skewed_config)
        .arg("serve")
        .env("LD_PRELOAD", LIBFAKETIME)
        .env("FAKETIME", "+90s")
        .env("TETHER_LOG", "info,tether::engine=debug")
        .stdout(setup.log("serve.out"))
        .stderr(setup.log("serve.err"))
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let tasks: Vec<String> = (0..6).map(|i| format!("skew-{provider}-{i}")).collect();
    let mut runs = Vec::new();
    for task in &tasks {
        runs.push(setup.run(task, 1, task).spawn().unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (run, task) in runs.iter_mut().zip(&tasks) {
        let status = exit_within(run, Duration::from_secs(90)).await;
        assert!(
            status.success(),
            "{task}: {}\n{}\nserve: {}",
            setup.read(&format!("{task}.out")),
            setup.read(&format!("{task}.err")),
            setup.read("serve.err")
        );
    }
    let app = setup.app().await;
    for task in &tasks {
        wait_job(&app, task, |j| j.phase == Phase::Terminal).await;
    }
    signal(&serve, Signal::SIGTERM);
    exit_within(&mut serve, Duration::from_secs(20)).await;
    let log = setup.read("serve.err");
    let mut duplicates = Vec::new();
    for task in &tasks {
        let key = key_of(task);
        let jobs = sim.jobs_for(&key).await;
        let job = wait_job(&app, task, |j| j.phase == Phase::Terminal).await;
        if jobs != 1 || !job.duplicates.is_empty() {
            duplicates.push(format!("{task}: {jobs} remote jobs, {:?}", job.duplicates));
        }
    }
    println!(
        "{provider}, skewed +90s, bound {bound:?}: {} keys, one remote job each: {}; the skewed \
         supervisor claimed {} times",
        tasks.len(),
        duplicates.is_empty(),
        log.matches(" claimed").count()
    );
    assert!(duplicates.is_empty(), "{duplicates:?}\nserve: {log}");
    let measured: Vec<i64> = log
        .split("skew_ms=")
        .skip(1)
        .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit() && c != '-').next())
        .filter_map(|n| n.parse().ok())
        .collect();
    assert!(
        !measured.is_empty() && measured.iter().all(|ms| (85_000..95_000).contains(ms)),
        "the skewed supervisor measured its skew (about 90 s): {measured:?}\n{log}"
    );
    if bound.is_none() {
        assert!(
            log.contains("more than supervisor.max_clock_skew"),
            "beyond the bound it says so: {log}"
        );
        assert!(!log.contains(" claimed"), "and claims nothing: {log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emr_beside_a_supervisor_beyond_the_skew_bound() {
    skewed_supervisor_beside_throttled_submissions(
        "emr_beside_a_supervisor_beyond_the_skew_bound",
        "emr",
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glue_beside_a_supervisor_beyond_the_skew_bound() {
    skewed_supervisor_beside_throttled_submissions(
        "glue_beside_a_supervisor_beyond_the_skew_bound",
        "glue",
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emr_beside_a_skewed_supervisor_on_the_database_clock() {
    skewed_supervisor_beside_throttled_submissions(
        "emr_beside_a_skewed_supervisor_on_the_database_clock",
        "emr",
        Some("5m"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glue_beside_a_skewed_supervisor_on_the_database_clock() {
    skewed_supervisor_beside_throttled_submissions(
        "glue_beside_a_skewed_supervisor_on_the_database_clock",
        "glue",
        Some("5m"),
    )
    .await;
}

/// A supervisor whose clock is 60 s ahead, beyond the default bound of 10 s: it claims no job
/// (orphaned intents stay with their dead submitter), `ensure` refuses to submit with a message
/// naming the skew, and the skew is measured. A supervisor within the bound, running beside it,
/// claims and finishes every one of them: the refusing one is not counted in the fair share.
async fn beyond_the_bound_nothing_is_claimed_or_submitted(db: TestDb) {
    let sim = common::quick_sim().await;
    let ahead = common::app_with_clock(&db, &sim.url(), "2s", "", skewed(60)).await;
    let mut orphans = Vec::new();
    let mut req = None;
    for i in 0..4 {
        let r = EnsureRequest {
            task_instance: TaskInstanceId::new("etl", "r1", format!("orphan{i}"), -1),
            try_number: 1,
            name: "main".into(),
            provider: "databricks".into(),
            spec: common::spec(&format!("orphan{i}")),
        };
        orphans.push(common::orphan_intent(&ahead, &r, -1000).await);
        req = Some(r);
    }
    let req = req.unwrap();
    let skew = ahead.engine.sync_clock().await.unwrap();
    assert!((59_000..61_000).contains(&skew), "measured {skew} ms");

    let shutdown = tokio_util::sync::CancellationToken::new();
    let supervisor = tokio::spawn(Supervisor::new(ahead.engine.clone()).run(shutdown.clone()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    for orphan in &orphans {
        let job = ahead.engine.jobs().get(orphan.id).await.unwrap().unwrap();
        assert_eq!(job.lease_owner.as_deref(), Some("dead-worker"), "{job:?}");
        assert_eq!(job.phase, Phase::Submitting);
    }

    let fresh = EnsureRequest {
        task_instance: TaskInstanceId::new("etl", "r1", "fresh", -1),
        spec: common::spec("fresh"),
        ..req.clone()
    };
    let refused = ahead.engine.ensure(&fresh).await.unwrap_err();
    assert!(
        matches!(refused, EngineError::ClockSkew { .. }),
        "{refused}"
    );
    let message = refused.to_string();
    assert!(
        message.contains("60.0 s ahead of") && message.contains("max_clock_skew"),
        "{message}"
    );
    assert_eq!(sim.stats().submissions, 0, "nothing was submitted");

    // Within the bound (one second behind), beside it: every orphan is claimed and reconciled.
    let behind = common::app_with_clock(&db, &sim.url(), "2s", "", skewed(-1)).await;
    let ids: Vec<tether::model::JobId> = orphans.iter().map(|o| o.id).collect();
    let done = common::until_all_done(&behind, &ids, Duration::from_secs(30)).await;
    shutdown.cancel();
    supervisor.await.unwrap();
    for job in &done {
        assert_eq!(job.state, tether_provider::JobState::Succeeded, "{job:?}");
    }
    assert_eq!(sim.stats().submissions, 4);
}

/// A supervisor 20 s ahead with a bound of 5 m: it takes no live lease. An intent whose
/// submitter is alive (lease 8 s more, by the database's clock) stays that submitter's,
/// although by the supervisor's own clock it ran out 12 s ago.
async fn a_live_lease_is_live_on_the_database_clock(db: TestDb) {
    let sim = common::quick_sim().await;
    let ahead =
        common::app_with_clock(&db, &sim.url(), "2s", "max_clock_skew = \"5m\"", skewed(20)).await;
    let req = EnsureRequest {
        task_instance: TaskInstanceId::new("etl", "r1", "live", -1),
        try_number: 1,
        name: "main".into(),
        provider: "databricks".into(),
        spec: common::spec("live"),
    };
    let intent = common::orphan_intent(&ahead, &req, 8_000).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let supervisor = tokio::spawn(Supervisor::new(ahead.engine.clone()).run(shutdown.clone()));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let job = ahead.engine.jobs().get(intent.id).await.unwrap().unwrap();
    shutdown.cancel();
    supervisor.await.unwrap();
    assert_eq!(job.lease_owner.as_deref(), Some("dead-worker"), "{job:?}");
    assert_eq!(job.lease_epoch, intent.lease_epoch);
    // Once it has run out on the database's clock, the skewed supervisor takes it over.
    let done = common::until_all_done(&ahead, &[intent.id], Duration::from_secs(30)).await;
    assert_eq!(done[0].state, tether_provider::JobState::Succeeded);
    assert_eq!(sim.stats().submissions, 1);
}

/// Takes the submission lease of job `id` away, as a process that judged it run out would:
/// the epoch moves on, another owner holds it. With `handle`, that process has also recorded
/// the remote job it found or made.
async fn take_over(app: &tether::app::App, id: tether::model::JobId, handle: Option<&str>) {
    let sql = match handle {
        Some(_) => {
            "UPDATE jobs SET lease_owner = 'other/submit', lease_epoch = lease_epoch + 1, \
             phase = 'active', handle = $2 WHERE id = $1"
        }
        None => {
            "UPDATE jobs SET lease_owner = 'other/submit', lease_epoch = lease_epoch + 1 \
             WHERE id = $1"
        }
    };
    sqlx::query(sql)
        .bind(id.0)
        .bind(handle.unwrap_or(""))
        .execute(app.db.pool())
        .await
        .unwrap();
}

/// Starts an ensure whose submit the simulator answers 1.5 s late, and returns it once its
/// intent is recorded (with the job's id).
async fn slow_submission(
    app: &tether::app::App,
    sim: &tether_databricks::sim::Simulator,
    task: &str,
) -> (
    tether::model::JobId,
    tokio::task::JoinHandle<Result<tether::engine::Ensured, EngineError>>,
) {
    use tether_databricks::sim::{Endpoint, Fault, FaultKind};
    sim.inject(Fault {
        endpoint: Some(Endpoint::Submit),
        kind: FaultKind::Delay(Duration::from_millis(1500)),
        times: 1,
    });
    let req = EnsureRequest {
        task_instance: TaskInstanceId::new("etl", "r1", task, -1),
        try_number: 1,
        name: "main".into(),
        provider: "databricks".into(),
        spec: common::spec(task),
    };
    let engine = app.engine.clone();
    let ensure = tokio::spawn(async move { engine.ensure(&req).await });
    let ti = TaskInstanceId::new("etl", "r1", task, -1);
    loop {
        if let Some(job) = app.engine.jobs().latest(&ti, "main").await.unwrap() {
            tokio::time::sleep(Duration::from_millis(300)).await;
            return (job.id, ensure);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A submitter loses its lease while the provider takes its time to answer (another process
/// judged it run out). Its answer comes first, before the new holder recorded anything: the
/// handle is recorded all the same (the first handle for an intent is the job's), so a second
/// remote job the new holder might make is a duplicate to report, not a job forgotten.
async fn a_late_answer_after_the_lease_was_lost_is_recorded(db: TestDb) {
    let sim = common::quick_sim().await;
    let app = common::app_for(&db, &sim.url(), "2s", "").await;
    let (id, ensure) = slow_submission(&app, &sim, "late-first").await;
    take_over(&app, id, None).await;
    let ensured = ensure.await.unwrap().unwrap();
    assert_eq!(ensured.job.id, id);
    let job = app.engine.jobs().get(id).await.unwrap().unwrap();
    assert!(
        job.handle.is_some(),
        "the late answer's handle is recorded: {job:?}"
    );
    assert_eq!(job.phase, Phase::Active);
    let events = app.engine.jobs().events(id).await.unwrap();
    assert!(
        events.iter().any(|e| e.kind == "submitted"
            && e.detail
                .as_ref()
                .is_some_and(|d| d["after_lease_lost"] == true)),
        "{events:?}"
    );
}

/// As above, but the new holder recorded a remote job of its own before the late answer came:
/// the late one is a duplicate, reported on the record (and never tracked).
async fn a_late_answer_after_another_handle_is_a_reported_duplicate(db: TestDb) {
    let sim = common::quick_sim().await;
    let app = common::app_for(&db, &sim.url(), "2s", "").await;
    let (id, ensure) = slow_submission(&app, &sim, "late-second").await;
    take_over(&app, id, Some(r#"{"run_id":987654}"#)).await;
    let answered = ensure.await.unwrap();
    let job = app.engine.jobs().get(id).await.unwrap().unwrap();
    assert_eq!(
        job.handle.as_ref().map(|h| h.as_json().to_string()),
        Some(r#"{"run_id":987654}"#.to_string()),
        "the first handle stays the job's: {answered:?}"
    );
    assert_eq!(job.duplicates.len(), 1, "the late one is reported: {job:?}");
}

on_both_backends!(
    beyond_the_bound_nothing_is_claimed_or_submitted,
    a_live_lease_is_live_on_the_database_clock,
    a_late_answer_after_the_lease_was_lost_is_recorded,
    a_late_answer_after_another_handle_is_a_reported_duplicate,
);
