//! Submission safety with real processes: one remote job per key when a submission outlives
//! its lease while another tether process shares the database, signals during a slow
//! submission, concurrent first runs on a new SQLite file, and a duplicate reported loudly.
//!
//! The simulators run as `tether sim ...` child processes with their faults set on the command
//! line, and are counted through `GET /_sim/stats`, as a person reproducing this by hand would.

mod common;

use std::time::Duration;

use nix::sys::signal::Signal;
use tether::jobs::Phase;
use tether::state::TaskInstanceId;

use common::procs::{key_of, spec, tether, wait_job, Setup, Sim, SIM_KEY_ID, SIM_SECRET};
use common::{exit_within, signal, TestDb};

/// The simulator's switch that answers requests 503 (with `Retry-After`). Only for providers
/// whose 503 says "not processed" or whose submit carries a token: for a submit without a
/// token on AWS (EMR, Glue, Batch) a 503 may come after the request ran, so the first
/// `tether run` ends "outcome unknown" (tests/aws.rs `a_submit_answered_503_after_it_ran`).
const UNAVAILABLE: &str = "--unavailable-first";
/// The simulator's switch that throttles requests (with `Retry-After`).
const THROTTLED: &str = "--throttle-first";

/// Who else shares the database while the first `tether run` submits.
#[derive(Debug, Clone, Copy)]
enum Other {
    /// `tether serve`, started first.
    Serve,
    /// `tether run --try 2`, started half a second later.
    SecondRun,
}

/// The first three requests are refused (`refusal`: `--unavailable-first`, 503, or
/// `--throttle-first`, the service's throttling answer) with `Retry-After: 1`, so the
/// submission takes about 3 s, longer than the 2 s lease; another process shares the
/// database. Exactly one remote job per key, the first `tether run` succeeds, and so does the
/// second one.
async fn a_submission_outliving_its_lease_makes_one_job(
    db: TestDb,
    provider: &'static str,
    other: Other,
    refusal: &str,
) {
    let sim = Sim::start(provider, &[refusal, "3", "--retry-after", "1s"]).await;
    let setup = Setup::new(&db, provider, &sim, "2s");
    let task = format!("slow-{provider}-{other:?}").to_lowercase();
    let app = setup.app().await;
    let mut serve = match other {
        Other::Serve => {
            let serve = setup.serve().spawn().unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
            Some(serve)
        }
        Other::SecondRun => None,
    };
    let mut first = setup.run(&task, 1, "first").spawn().unwrap();
    let second = match other {
        Other::SecondRun => {
            tokio::time::sleep(Duration::from_millis(500)).await;
            Some(setup.run(&task, 2, "second").spawn().unwrap())
        }
        Other::Serve => None,
    };
    let status = exit_within(&mut first, Duration::from_secs(60)).await;
    let first_out = setup.read("first.out");
    let first_err = setup.read("first.err");
    assert!(
        status.success(),
        "{provider}/{other:?}: {first_out}\n{first_err}"
    );
    if let Some(mut second) = second {
        let status = exit_within(&mut second, Duration::from_secs(60)).await;
        assert!(
            status.success(),
            "{provider}/{other:?}: {}\n{}",
            setup.read("second.out"),
            setup.read("second.err")
        );
    }
    let job = wait_job(&app, &task, |j| j.phase == Phase::Terminal).await;
    if let Some(serve) = serve.as_mut() {
        signal(serve, Signal::SIGTERM);
        exit_within(serve, Duration::from_secs(20)).await;
    }
    let key = key_of(&task);
    let jobs = sim.jobs_for(&key).await;
    println!("{provider} with {other:?}: {jobs} remote job(s) for key {key}");
    assert_eq!(
        jobs,
        1,
        "{provider}/{other:?}: one remote job per key\nfirst: {first_out}\n{first_err}\nserve: {}",
        setup.read("serve.err")
    );
    assert!(job.duplicates.is_empty(), "{job:?}");
}

macro_rules! outliving_lease {
    ($($name:ident: $provider:expr, $other:expr, $refusal:expr;)*) => {
        async fn outliving_lease_tests(db: TestDb, which: &str) {
            $(
                if which == stringify!($name) {
                    a_submission_outliving_its_lease_makes_one_job(db, $provider, $other, $refusal)
                        .await;
                    return;
                }
            )*
            unreachable!("{which}");
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::outliving_lease_tests(
                        super::common::TestDb::sqlite().await, stringify!($name)).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = super::common::TestDb::postgres(stringify!($name)).await {
                        super::outliving_lease_tests(db, stringify!($name)).await;
                    }
                }
            )*
        }
    };
}

outliving_lease! {
    emr_throttled_with_serve: "emr", Other::Serve, THROTTLED;
    emr_throttled_with_second_run: "emr", Other::SecondRun, THROTTLED;
    glue_throttled_with_serve: "glue", Other::Serve, THROTTLED;
    glue_throttled_with_second_run: "glue", Other::SecondRun, THROTTLED;
    databricks_with_serve: "databricks", Other::Serve, UNAVAILABLE;
    databricks_with_second_run: "databricks", Other::SecondRun, UNAVAILABLE;
    emr_serverless_with_serve: "emr-serverless", Other::Serve, UNAVAILABLE;
    emr_serverless_with_second_run: "emr-serverless", Other::SecondRun, UNAVAILABLE;
    batch_throttled_with_serve: "batch", Other::Serve, THROTTLED;
    batch_throttled_with_second_run: "batch", Other::SecondRun, THROTTLED;
    ecs_throttled_with_serve: "ecs", Other::Serve, THROTTLED;
    ecs_with_second_run: "ecs", Other::SecondRun, UNAVAILABLE;
    stepfunctions_throttled_with_serve: "stepfunctions", Other::Serve, THROTTLED;
    sagemaker_training_with_second_run: "sagemaker-training", Other::SecondRun, UNAVAILABLE;
    sagemaker_processing_throttled_with_serve: "sagemaker-processing", Other::Serve, THROTTLED;
    emr_containers_with_second_run: "emr-containers", Other::SecondRun, UNAVAILABLE;
    redshift_data_throttled_with_serve: "redshift-data", Other::Serve, THROTTLED;
    athena_with_second_run: "athena", Other::SecondRun, UNAVAILABLE;
}

/// SIGTERM or SIGINT while the provider takes 3 s to answer the submit: `tether run` waits for
/// the answer, records the handle, exits 5; one remote job; the same command reattaches.
async fn signal_during_a_slow_submit(provider: &'static str, sig: Signal) {
    let db = TestDb::sqlite().await;
    let sim = Sim::start(provider, &["--slow-first", "1", "--slow-by", "3s"]).await;
    let setup = Setup::with_timeout(&db, provider, &sim, "2s", "10s");
    let app = setup.app().await;
    let task = format!("signal-{provider}-{sig:?}").to_lowercase();
    let mut run = setup.run(&task, 1, "first").spawn().unwrap();
    wait_job(&app, &task, |j| j.phase == Phase::Submitting).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&run, sig);
    let status = exit_within(&mut run, Duration::from_secs(20)).await;
    let (out, err) = (setup.read("first.out"), setup.read("first.err"));
    assert_eq!(
        status.code(),
        Some(5),
        "{provider} {sig:?}: {status:?}\n{out}\n{err}"
    );
    assert!(out.contains("Submitted on try 1"), "{out}\n{err}");
    assert!(err.contains("interrupted"), "{err}");
    let job = wait_job(&app, &task, |_| true).await;
    assert_eq!(
        job.phase,
        Phase::Active,
        "the handle was recorded before exiting: {job:?}"
    );
    let again = setup.run(&task, 1, "again").status().await.unwrap();
    let again_out = setup.read("again.out");
    assert!(again.success(), "{again_out}\n{}", setup.read("again.err"));
    assert!(again_out.contains("Reattached on try 1"), "{again_out}");
    let key = key_of(&task);
    let jobs = sim.jobs_for(&key).await;
    println!("{provider} with {sig:?} during submit: {jobs} remote job(s) for key {key}");
    assert_eq!(jobs, 1);
    assert_eq!(sim.stats().await["cancels"].as_u64(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_slow_emr_submit() {
    signal_during_a_slow_submit("emr", Signal::SIGTERM).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_a_slow_glue_submit() {
    signal_during_a_slow_submit("glue", Signal::SIGINT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_slow_databricks_submit() {
    signal_during_a_slow_submit("databricks", Signal::SIGTERM).await;
}

/// Ten `tether run` started at once on a SQLite file that does not exist yet all succeed (the
/// first migration is serialised by a lock file), three times over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_runs_on_a_new_sqlite_file() {
    let sim = Sim::start("databricks", &[]).await;
    for round in 0..3 {
        let db = TestDb::sqlite().await;
        let setup = Setup::new(&db, "databricks", &sim, "10s");
        let mut children = Vec::new();
        for i in 0..10 {
            let mut cmd = setup.run(&format!("first-{round}-{i}"), 1, &format!("run{i}"));
            cmd.arg("--no-wait");
            children.push(cmd.spawn().unwrap());
        }
        for (i, child) in children.iter_mut().enumerate() {
            let status = exit_within(child, Duration::from_secs(60)).await;
            assert!(
                status.success(),
                "round {round}, run {i}: {status:?}\n{}",
                setup.read(&format!("run{i}.err"))
            );
        }
    }
}

/// Two EMR steps carry one key (as if a duplicate had slipped through): reconciliation tracks
/// the first, records the second as a duplicate with an event and a metric, and `tether run`
/// and `tether jobs show` warn about it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_is_reported_loudly() {
    let db = TestDb::sqlite().await;
    let sim = Sim::start("emr", &[]).await;
    let setup = Setup::new(&db, "emr", &sim, "2s");
    let app = setup.app().await;
    let task = "dup";
    let ti = TaskInstanceId::new("etl", "r1", task, -1);
    let key = key_of(task);
    let job_spec = spec("emr", "load");
    let request = tether::engine::EnsureRequest {
        task_instance: ti.clone(),
        try_number: 1,
        name: "main".into(),
        provider: "emr".into(),
        spec: job_spec.clone(),
    };
    common::orphan_intent(&app, &request, 0).await;
    std::env::set_var("AWS_ACCESS_KEY_ID", SIM_KEY_ID);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", SIM_SECRET);
    std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/tether-test");
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/tether-test");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let provider = app.engine.providers().get("emr").unwrap();
    let one = provider
        .submit(&job_spec, &key, &tether_provider::Ungated)
        .await
        .unwrap();
    let two = provider
        .submit(&job_spec, &key, &tether_provider::Ungated)
        .await
        .unwrap();
    assert_eq!(sim.jobs_for(&key).await, 2);

    // Reconciliation (in this process, to read its metric) tracks the oldest step.
    let ensured = app.engine.ensure(&request).await.unwrap();
    assert_eq!(ensured.action, tether::engine::EnsureAction::Recovered);
    assert_eq!(ensured.job.handle.as_ref(), Some(&one));
    assert_eq!(ensured.job.duplicates, vec![two.clone()]);
    let metrics = tether::metrics::render();
    assert!(
        metrics.contains("tether_duplicate_submissions_total{provider=\"emr\"} 1"),
        "{metrics}"
    );
    let view = tether::api::jobs::JobView::from(ensured.job.clone());
    assert_eq!(view.duplicates, vec![two.value()]);
    assert!(
        view.warnings[0].contains("duplicate submission"),
        "{:?}",
        view.warnings
    );

    // `tether run` reattaches to the tracked step, and warns.
    let status = setup.run(task, 1, "run").status().await.unwrap();
    let (text, err) = (setup.read("run.out"), setup.read("run.err"));
    assert!(status.success(), "{text}\n{err}");
    assert_eq!(
        err.matches("DUPLICATE SUBMISSION").count(),
        1,
        "warned once: {err}"
    );
    assert!(text.contains("Reattached on try 1"), "{text}");
    assert!(text.contains(&one.to_string()), "tracks the first: {text}");
    assert!(
        err.contains("DUPLICATE SUBMISSION") && err.contains(&two.to_string()),
        "{err}"
    );
    let job = wait_job(&app, task, |j| j.phase == Phase::Terminal).await;
    assert_eq!(job.handle.as_ref(), Some(&one));
    assert_eq!(job.duplicates, vec![two.clone()]);
    let events = app.engine.jobs().events(job.id).await.unwrap();
    assert!(
        events.iter().any(|e| e.kind == "duplicate_detected"),
        "{events:?}"
    );
    let show = tether()
        .arg("--config")
        .arg(&setup.config)
        .args(["jobs", "show", &job.id.to_string()])
        .output()
        .await
        .unwrap();
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(
        shown.contains("DUPLICATE") && shown.contains(&two.to_string()),
        "{shown}"
    );
    println!(
        "emr duplicate: {} remote jobs for key {key}, tracked {one}, reported {two}",
        sim.jobs_for(&key).await
    );
}
