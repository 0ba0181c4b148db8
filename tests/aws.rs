//! The AWS adapters (EMR steps, EMR Serverless job runs, Glue job runs, Batch jobs, ECS tasks)
//! against tether's AWS
//! simulator, which checks every request's SigV4 signature: the decision table, reconciliation
//! by `find`, explicit cancel, throttling, SIGKILL of `tether run`, and a wrong secret. Every
//! test runs each service on both backends.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tether::app::App;
use tether::config::Config;
use tether::engine::{EngineError, EnsureAction, EnsureRequest, Supervisor};
use tether::jobs::{JobRecord, Phase};
use tether::state::TaskInstanceId;
use tether_aws::client::Json;
use tether_aws::sim::{Fault, FaultKind, SimConfig, Simulator};
use tether_aws::Service;
use tether_provider::{JobState, Ungated};
// The credential chain reads the environment: every test sets the simulator's key pair, and
// nothing else (no shared files, no instance metadata).
use tether_testkit::moto::aws_env;
use tokio_util::sync::CancellationToken;

use common::{config_toml, until_all_done, TestDb};

const SERVICES: [Service; Service::ALL.len()] = Service::ALL;

fn spec(service: Service, name: &str) -> Value {
    match service {
        Service::Emr => {
            json!({"cluster_id": "j-SIMCLUSTER1", "step": {"Name": name, "ActionOnFailure": "CONTINUE",
            "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["spark-submit", "s3://jobs/load.py"]}}})
        }
        Service::EmrServerless => json!({"applicationId": "00simapp", "name": name,
            "executionRoleArn": "arn:aws:iam::000000000000:role/emr", "jobDriver": {"sparkSubmit": {"entryPoint": "s3://jobs/load.py"}}}),
        Service::Glue => {
            json!({"JobName": format!("glue-{name}"), "Arguments": {"--day": "2026-11-24"}})
        }
        other => tether::registry::simulators(other.kind())
            .unwrap()
            .sample_spec(other.kind(), name),
    }
}

fn aws_providers(endpoint: &str) -> String {
    SERVICES
        .iter()
        .map(|s| {
            format!(
                "\n[providers.{k}]\nkind = \"{k}\"\nregion = \"us-east-1\"\nendpoint_url = \"{endpoint}\"\npoll_initial = \"100ms\"\npoll_max = \"300ms\"\nrequest_timeout = \"2s\"\nmax_retries = 3\nunknown_after = 3\nnot_found_grace = \"1s\"\n",
                k = s.kind()
            )
        })
        .collect()
}

async fn quick_aws_sim() -> Simulator {
    aws_sim(Duration::from_millis(200), Duration::from_millis(800)).await
}

/// The AWS simulator on a free port, its jobs pending then running this long.
async fn aws_sim(pending: Duration, running: Duration) -> Simulator {
    let config = SimConfig {
        pending,
        running,
        ..SimConfig::default()
    };
    Simulator::start(config, ([127, 0, 0, 1], 0).into())
        .await
        .unwrap()
}

/// tether on `db`, every AWS kind an account at `sim`.
async fn app_at(db: &TestDb, sim: &Simulator) -> App {
    let text = config_toml(db, "http://127.0.0.1:9", "2s", &aws_providers(&sim.url()));
    App::open(Config::from_toml(&text, "test").unwrap())
        .await
        .unwrap()
}

async fn setup(db: &TestDb) -> (Simulator, App) {
    aws_env();
    let sim = quick_aws_sim().await;
    let app = app_at(db, &sim).await;
    (sim, app)
}

fn request(service: Service, task: &str, try_number: i64) -> EnsureRequest {
    EnsureRequest {
        task_instance: TaskInstanceId::new("etl", "r1", task, -1),
        try_number,
        name: "main".into(),
        provider: service.kind().into(),
        spec: spec(service, task),
    }
}

/// The services a test that starts processes for each runs at once.
const AT_ONCE: usize = 4;

/// `tether run` of `service`'s job for task instance etl/r1/`task`, output captured.
fn tether_run(
    config: &std::path::Path,
    service: Service,
    spec_path: &std::path::Path,
    task: &str,
    try_number: u32,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tether"));
    cmd.arg("--config")
        .arg(config)
        .args(["run", "--provider", service.kind(), "--spec"])
        .arg(spec_path)
        .args([
            "--dag",
            "etl",
            "--run",
            "r1",
            "--task",
            task,
            "--try",
            &try_number.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

async fn until_done(app: &App, id: tether::model::JobId) -> JobRecord {
    let stop = CancellationToken::new();
    let sup = tokio::spawn(Supervisor::new(app.engine.clone()).run(stop.clone()));
    let start = Instant::now();
    let job = loop {
        let job = app.engine.jobs().get(id).await.unwrap().unwrap();
        if job.phase == Phase::Terminal {
            break job;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "job did not finish: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop.cancel();
    sup.await.unwrap();
    job
}

/// Submit, reattach (no second submission), poll to success, report success; a failed job is
/// reported to its own try and resubmitted for a later one.
async fn decision_table_on_each_service(db: TestDb) {
    let (sim, app) = setup(&db).await;
    let mut ids = Vec::new();
    for service in SERVICES {
        let task = format!("ok-{}", service.kind());
        let first = app
            .engine
            .ensure(&request(service, &task, 1))
            .await
            .unwrap();
        assert_eq!(first.action, EnsureAction::Submitted, "{service:?}");
        let again = app
            .engine
            .ensure(&request(service, &task, 2))
            .await
            .unwrap();
        assert_eq!(
            (again.action, again.job.id),
            (EnsureAction::Reattached, first.job.id),
            "{service:?}"
        );
        ids.push(first.job.id);
    }
    // Every service's job at once: one supervisor polls them all to their ends.
    for (service, job) in SERVICES
        .iter()
        .zip(until_all_done(&app, &ids, Duration::from_secs(40)).await)
    {
        assert_eq!(job.state, JobState::Succeeded, "{service:?}: {job:?}");
        let task = format!("ok-{}", service.kind());
        let done = app
            .engine
            .ensure(&request(*service, &task, 3))
            .await
            .unwrap();
        assert_eq!(done.action, EnsureAction::Finished);
        assert_eq!(sim.submissions(*service), 1, "{service:?}");
    }
    sim.configure(|c| c.succeed = false);
    let mut ids = Vec::new();
    for service in SERVICES {
        let task = format!("bad-{}", service.kind());
        let first = app
            .engine
            .ensure(&request(service, &task, 1))
            .await
            .unwrap();
        ids.push(first.job.id);
    }
    for (service, job) in SERVICES
        .iter()
        .zip(until_all_done(&app, &ids, Duration::from_secs(40)).await)
    {
        let service = *service;
        let task = format!("bad-{}", service.kind());
        assert_eq!(job.state, JobState::Failed, "{service:?}");
        assert!(
            job.message
                .as_deref()
                .is_some_and(|m| m.contains("simulated")),
            "{service:?}: {job:?}"
        );
        let same = app
            .engine
            .ensure(&request(service, &task, 1))
            .await
            .unwrap();
        assert_eq!(same.action, EnsureAction::Finished);
        let retry = app
            .engine
            .ensure(&request(service, &task, 2))
            .await
            .unwrap();
        assert_eq!(
            (retry.action, retry.job.generation),
            (EnsureAction::Resubmitted, 2),
            "{service:?}"
        );
        assert_eq!(sim.submissions(service), 3, "{service:?}");
    }
}

/// A crash between the provider accepting a submission and tether recording it: the next
/// ensure finds the job (by step name, run name or run argument) instead of submitting again.
async fn crash_after_submit_is_reconciled_by_find(db: TestDb) {
    let (sim, app) = setup(&db).await;
    for service in SERVICES {
        let req = request(service, &format!("orphan-{}", service.kind()), 1);
        let key = tether::engine::key::idempotency_key(
            &app.engine.key_namespace().value,
            &req.task_instance,
            &req.name,
            1,
        );
        common::orphan_intent(&app, &req, 500).await;
        let provider = app.engine.providers().get(service.kind()).unwrap();
        provider.submit(&req.spec, &key, &Ungated).await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        let ensured = app.engine.ensure(&req).await.unwrap();
        assert_eq!(ensured.action, EnsureAction::Recovered, "{service:?}");
        assert_eq!(
            sim.submissions(service),
            1,
            "{service:?}: found, not submitted again"
        );
    }
}

/// A submission answered 500 after the job was made, whose look for the job fails too: its
/// lease is left to run out, even while a supervisor of the same process renews its own
/// leases (found by the chaos soak: the supervisor's renewal kept the submission's lease
/// alive for as long as the process lived, so the intent was never reconciled and every
/// ensure of the task waited). The supervisor then reconciles it, and finds the one remote job.
async fn uncertain_submission_is_reconciled_beside_a_running_supervisor(db: TestDb) {
    let (sim, app) = setup(&db).await;
    let stop = CancellationToken::new();
    let sup = tokio::spawn(Supervisor::new(app.engine.clone()).run(stop.clone()));
    // The services whose submit does not deduplicate (EMR Serverless' does, and its
    // submitter hands the intent back at once).
    for service in [Service::Emr, Service::Glue, Service::Batch] {
        sim.inject(
            Fault::new(FaultKind::FailAfterProcessing, 1)
                .on(service)
                .submits_only(),
        );
        // Every attempt of the look that follows (max_retries = 3).
        sim.inject(Fault::new(FaultKind::ServerError, 4).on(service));
        let req = request(service, &format!("uncertain-{}", service.kind()), 1);
        let err = app.engine.ensure(&req).await.unwrap_err();
        assert!(
            matches!(err, EngineError::SubmissionUncertain { .. }),
            "{service:?}: {err}"
        );
        let start = Instant::now();
        let job = loop {
            let job = app
                .engine
                .jobs()
                .latest(&req.task_instance, "main")
                .await
                .unwrap()
                .unwrap();
            if job.handle.is_some() {
                break job;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{service:?}: never reconciled: {job:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(job.generation, 1, "{service:?}");
        assert_eq!(
            sim.submissions(service),
            1,
            "{service:?}: found, not made again"
        );
        let ensured = app.engine.ensure(&req).await.unwrap();
        assert_eq!(ensured.job.id, job.id, "{service:?}");
    }
    stop.cancel();
    sup.await.unwrap();
}

/// Explicit cancel reaches the provider and ends the job as cancelled.
async fn explicit_cancel_on_each_service(db: TestDb) {
    let (sim, app) = setup(&db).await;
    sim.configure(|c| c.running = Duration::from_secs(60));
    for service in SERVICES {
        let first = app
            .engine
            .ensure(&request(service, &format!("cancel-{}", service.kind()), 1))
            .await
            .unwrap();
        let job = app
            .engine
            .cancel(first.job.id, "stop", "test")
            .await
            .unwrap();
        assert!(job.cancel_sent_at.is_some(), "{service:?}: {job:?}");
        let job = until_done(&app, first.job.id).await;
        assert_eq!(job.state, JobState::Cancelled, "{service:?}");
    }
    assert_eq!(sim.stats().cancels, SERVICES.len() as u64);
}

/// A cancel the API could not send (every attempt answered 500) is sent by the supervisor
/// that polls the job; the faults touch the cancel calls only (`CancelSteps`,
/// `BatchStopJobRun`, EMR Serverless' `DELETE .../jobruns/{id}`), not the status calls.
async fn cancel_refused_at_first_is_sent_by_the_supervisor(db: TestDb) {
    let (sim, app) = setup(&db).await;
    sim.configure(|c| c.running = Duration::from_secs(60));
    for service in SERVICES {
        let first = app
            .engine
            .ensure(&request(
                service,
                &format!("refused-cancel-{}", service.kind()),
                1,
            ))
            .await
            .unwrap();
        // Every attempt of one cancel call (max_retries = 3).
        sim.inject(
            Fault::new(FaultKind::ServerError, 4)
                .on(service)
                .cancels_only(),
        );
        let job = app
            .engine
            .cancel(first.job.id, "stop", "test")
            .await
            .unwrap();
        assert!(job.cancel_sent_at.is_none(), "{service:?}: {job:?}");
        let job = until_done(&app, first.job.id).await;
        assert_eq!(job.state, JobState::Cancelled, "{service:?}");
        assert!(job.cancel_sent_at.is_some(), "{service:?}: {job:?}");
    }
    assert_eq!(sim.stats().cancels, SERVICES.len() as u64);
}

/// Throttling (400 ThrottlingException for JSON 1.1, 429 for REST) slows the account down;
/// jobs are neither failed nor submitted twice.
async fn throttling_slows_down_and_fails_nothing(db: TestDb) {
    let (sim, app) = setup(&db).await;
    // The services four at a time (each fault is aimed at one service's calls).
    let ids: Vec<_> = futures_util::stream::iter(SERVICES)
        .map(|service| {
            let (sim, app) = (&sim, &app);
            async move {
                sim.inject(Fault::new(FaultKind::Throttle, 2).on(service));
                let first = app
                    .engine
                    .ensure(&request(
                        service,
                        &format!("throttled-{}", service.kind()),
                        1,
                    ))
                    .await
                    .unwrap();
                assert_eq!(first.action, EnsureAction::Submitted, "{service:?}");
                sim.inject(Fault::new(FaultKind::Throttle, 3).on(service));
                first.job.id
            }
        })
        .buffered(AT_ONCE)
        .collect()
        .await;
    let jobs = until_all_done(&app, &ids, Duration::from_secs(60)).await;
    for (service, job) in SERVICES.iter().zip(jobs) {
        assert_eq!(job.state, JobState::Succeeded, "{service:?}");
        assert_eq!(sim.submissions(*service), 1, "{service:?}");
        assert!(
            app.engine
                .providers()
                .get(service.kind())
                .unwrap()
                .rate_limit_waits()
                > 0,
            "{service:?}: the account was slowed down"
        );
    }
}

/// `tether run` killed with SIGKILL; the rerun reattaches; one submission per service.
async fn sigkilled_run_reattaches_on_each_service(db: TestDb) {
    aws_env();
    let sim = quick_aws_sim().await;
    sim.configure(|c| c.running = Duration::from_secs(3));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tether.toml");
    std::fs::write(
        &config,
        config_toml(&db, "http://127.0.0.1:9", "2s", &aws_providers(&sim.url())),
    )
    .unwrap();
    let app = App::open(Config::load(&config).unwrap()).await.unwrap();
    // The services four at a time: each its own `tether run` processes and task.
    futures_util::stream::iter(SERVICES)
        .for_each_concurrent(AT_ONCE, |service| {
            let (dir, config, app, sim) = (&dir, &config, &app, &sim);
            async move {
                let spec_path = dir.path().join(format!("{}.json", service.kind()));
                std::fs::write(&spec_path, spec(service, "kill").to_string()).unwrap();
                let task = format!("kill-{}", service.kind());
                let run =
                    |try_number: u32| tether_run(config, service, &spec_path, &task, try_number);
                let mut first = run(1).spawn().unwrap();
                let ti = TaskInstanceId::new("etl", "r1", &task, -1);
                let start = Instant::now();
                loop {
                    let job = app.engine.jobs().latest(&ti, "main").await.unwrap();
                    if job.is_some_and(|j| j.state == JobState::Running) {
                        break;
                    }
                    assert!(
                        start.elapsed() < Duration::from_secs(20),
                        "{service:?} never ran"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                first.start_kill().unwrap();
                first.wait().await.unwrap();
                let out = tokio::time::timeout(Duration::from_secs(30), run(2).output())
                    .await
                    .unwrap()
                    .unwrap();
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success(),
                    "{service:?}: {text}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(text.contains("Reattached on try 2"), "{service:?}: {text}");
                assert_eq!(sim.submissions(service), 1, "{service:?}");
            }
        })
        .await;
    assert_eq!(sim.stats().cancels, 0);
}

/// A real crash (SIGKILL at the crash point `after_submit`) between the provider accepting the
/// job and tether recording its handle: the rerun reconciles it; one submission per service.
/// The run is logged at trace level, and no credential appears in that log.
async fn crash_after_submit_process_reconciles_on_each_service(db: TestDb) {
    aws_env();
    let sim = quick_aws_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tether.toml");
    std::fs::write(
        &config,
        config_toml(&db, "http://127.0.0.1:9", "1s", &aws_providers(&sim.url())),
    )
    .unwrap();
    let secret = SimConfig::default().secret_access_key;
    futures_util::stream::iter(SERVICES)
        .for_each_concurrent(AT_ONCE, |service| {
            let (dir, config, sim, secret) = (&dir, &config, &sim, &secret);
            async move {
                let spec_path = dir.path().join(format!("{}.json", service.kind()));
                std::fs::write(&spec_path, spec(service, "crash").to_string()).unwrap();
                let task = format!("crash-{}", service.kind());
                let run = |crash: bool| {
                    let mut cmd = tether_run(config, service, &spec_path, &task, 1);
                    cmd.env("TETHER_LOG", "trace");
                    if crash {
                        cmd.env("FAILPOINTS", "after_submit=return");
                    } else {
                        cmd.env_remove("FAILPOINTS");
                    }
                    cmd
                };
                let crashed = tokio::time::timeout(Duration::from_secs(30), run(true).output())
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(
                    std::os::unix::process::ExitStatusExt::signal(&crashed.status),
                    Some(9),
                    "{service:?}"
                );
                assert_eq!(sim.submissions(service), 1, "{service:?}");
                let out = tokio::time::timeout(Duration::from_secs(30), run(false).output())
                    .await
                    .unwrap()
                    .unwrap();
                let text = String::from_utf8_lossy(&out.stdout);
                let log = String::from_utf8_lossy(&out.stderr);
                assert!(out.status.success(), "{service:?}: {text}\n{log}");
                assert!(text.contains("Recovered"), "{service:?}: {text}");
                assert_eq!(
                    sim.submissions(service),
                    1,
                    "{service:?}: reconciled, not submitted again"
                );
                for l in [&log, &String::from_utf8_lossy(&crashed.stderr)] {
                    assert!(l.len() > 1000, "trace logging produced output");
                    assert!(
                        !l.contains(secret.as_str()),
                        "{service:?}: the secret key leaked into the trace log"
                    );
                }
            }
        })
        .await;
}

/// Coalesced polling on each service: five jobs of one cluster / application / Glue job are
/// polled through `ListSteps` / `ListJobRuns` / `GetJobRuns`. A finished job is no longer in
/// the active lists, so only the single-call fallback can finish it (the jobs would never
/// end without it). Then the simulator's lists lie, reporting every job as succeeded while
/// the jobs really fail: no job may be recorded as succeeded, because a terminal state is
/// only ever recorded after a single status call confirms it.
async fn coalesced_polling_on_each_service(db: TestDb) {
    aws_env();
    for lie in [false, true] {
        let sim = Simulator::start(
            SimConfig {
                pending: Duration::from_millis(300),
                running: Duration::from_millis(2500),
                succeed: !lie,
                lists_report_success: lie,
                ..SimConfig::default()
            },
            ([127, 0, 0, 1], 0).into(),
        )
        .await
        .unwrap();
        let mut providers = aws_providers(&sim.url());
        if lie {
            // The simulator's lie is told to reads of many ids: Batch's and ECS' gathered
            // status reads are such reads, so that the confirmations are single ones here.
            for kind in ["batch", "ecs"] {
                providers = providers.replace(
                    &format!("kind = \"{kind}\"\n"),
                    &format!("kind = \"{kind}\"\nstatus_gather = \"0s\"\n"),
                );
            }
        }
        let text = config_toml(&db, "http://127.0.0.1:9", "2s", &providers);
        let app = App::open(Config::from_toml(&text, "test").unwrap())
            .await
            .unwrap();
        let mut ids = Vec::new();
        for service in SERVICES {
            for n in 0..5 {
                let task = format!("sweep-{lie}-{}-{n}", service.kind());
                let mut req = request(service, &task, 1);
                if service == Service::Glue {
                    // One Glue job, many runs: what GetJobRuns lists together.
                    req.spec["JobName"] = json!("glue-batch");
                }
                ids.push(app.engine.ensure(&req).await.unwrap().job.id);
            }
        }
        let jobs = until_all_done(&app, &ids, Duration::from_secs(40)).await;
        let want = if lie {
            JobState::Failed
        } else {
            JobState::Succeeded
        };
        for job in &jobs {
            assert_eq!(job.state, want, "lists lie: {lie}: {job:?}");
        }
        let stats = sim.stats();
        assert!(stats.list_requests > 0, "no coalesced polling: {stats:?}");
        if !lie {
            // Without coalescing, 15 jobs polled every 100-300 ms for about 3 s make well over
            // 150 single calls; with it, about one to confirm each end, and a few more.
            assert!(
                stats.status_requests < 15 * 5,
                "single calls were not coalesced: {stats:?}"
            );
        }
    }
}

/// Issue 32, finding 5 (a): a `RunTask` that placed no task (no capacity) is a refusal of that
/// attempt; ECS answers the same `clientToken` with the same failure for 24 hours, so asking
/// again sends the next attempt with a key of its own, which runs once capacity is back: one
/// task in all.
async fn ecs_placement_failure_is_retried_with_a_new_token(db: TestDb) {
    let (sim, app) = setup(&db).await;
    let mut req = request(Service::Ecs, "no-capacity", 1);
    req.spec["taskDefinition"] = json!("sim-no-capacity-once:1");
    let refused = match app.engine.ensure(&req).await {
        Err(EngineError::SubmissionRefused { job_id, source }) => {
            assert!(source.message.contains("RESOURCE:MEMORY"), "{source}");
            app.engine.jobs().get(job_id).await.unwrap().unwrap()
        }
        other => panic!("the placement failure is a refusal: {other:?}"),
    };
    assert_eq!(refused.attempt, 1);
    let again = app.engine.ensure(&req).await.unwrap();
    assert_eq!(again.job.id, refused.id, "the same record");
    assert_eq!(again.job.attempt, 2);
    assert_ne!(again.job.idempotency_key, refused.idempotency_key);
    assert!(again.job.handle.is_some());
    assert_eq!(sim.submissions(Service::Ecs), 1, "one task");
    let done = until_done(&app, again.job.id).await;
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
}

/// Issue 32, finding 7: a Glue `StartJobRun` that started its run but was answered
/// `OperationTimeoutException` (a 400 in Glue's model) leaves the outcome open: tether finds
/// the run by its key rather than recording a refusal, and asking again makes no second run.
async fn a_timed_out_submit_that_ran_is_found_not_refused(db: TestDb) {
    let (sim, app) = setup(&db).await;
    sim.inject(
        Fault::new(FaultKind::TimedOutAfterProcessing, 1)
            .on(Service::Glue)
            .submits_only(),
    );
    let req = request(Service::Glue, "timed-out", 1);
    let first = app.engine.ensure(&req).await;
    let job = match first {
        Ok(ensured) => ensured.job,
        Err(EngineError::SubmissionUncertain { job_id, .. }) => {
            app.engine.jobs().get(job_id).await.unwrap().unwrap()
        }
        Err(e) => panic!("a timed-out submit is not a refusal: {e}"),
    };
    assert!(!job.refused(), "{job:?}");
    let again = app
        .engine
        .ensure(&request(Service::Glue, "timed-out", 2))
        .await;
    let again = again.unwrap_or_else(|e| panic!("{e}")).job;
    assert!(again.handle.is_some(), "{again:?}");
    assert_eq!(sim.submissions(Service::Glue), 1, "one run");
}

/// A submit of a service without an idempotency token (EMR, Glue, Batch) processed but
/// answered `503 ServiceUnavailableException` ("you might see an exception because of ...
/// server issues occurring after the resources are mutated"): the client does not send it
/// again as if it had not run; the engine looks for the job first, and the task ends with one
/// job on each service.
async fn a_submit_answered_503_after_it_ran_makes_one_job(db: TestDb) {
    let (sim, app) = setup(&db).await;
    for service in [Service::Emr, Service::Glue, Service::Batch] {
        sim.inject(
            Fault::new(FaultKind::UnavailableAfterProcessing, 1)
                .on(service)
                .submits_only(),
        );
        let task = format!("unavailable-{}", service.kind());
        let job = match app.engine.ensure(&request(service, &task, 1)).await {
            Ok(ensured) if ensured.job.handle.is_some() => ensured.job,
            _ => {
                app.engine
                    .ensure(&request(service, &task, 2))
                    .await
                    .unwrap_or_else(|e| panic!("{service:?}: the retry: {e}"))
                    .job
            }
        };
        assert!(job.handle.is_some(), "{service:?}: {job:?}");
        assert_eq!(
            sim.jobs_for_key(&job.idempotency_key),
            1,
            "{service:?}: one job for a submit answered 503 after it ran"
        );
    }
}

/// Issue 32, finding 6: an EXPRESS state machine is refused before anything is submitted
/// (its `StartExecution` is not idempotent and its executions cannot be described), naming the
/// machine's type; asking again submits nothing either.
async fn express_state_machines_are_refused(db: TestDb) {
    let (sim, app) = setup(&db).await;
    let mut req = request(Service::StepFunctions, "express", 1);
    req.spec["stateMachineArn"] =
        json!("arn:aws:states:us-east-1:000000000000:stateMachine:orders-express");
    for try_number in [1, 2] {
        req.try_number = try_number;
        match app.engine.ensure(&req).await {
            Err(EngineError::SubmissionRefused { source, .. }) => {
                assert!(source.message.contains("EXPRESS state machine"), "{source}");
            }
            other => panic!("an EXPRESS machine is refused: {other:?}"),
        }
    }
    assert_eq!(sim.submissions(Service::StepFunctions), 0, "no execution");
    // A STANDARD one runs as before.
    let standard = app
        .engine
        .ensure(&request(Service::StepFunctions, "standard", 1))
        .await
        .unwrap();
    assert!(standard.job.handle.is_some());
}

on_both_backends!(
    a_submit_answered_503_after_it_ran_makes_one_job,
    an_emr_step_evicted_by_newer_steps_is_outcome_unknown,
    express_state_machines_are_refused,
    a_timed_out_submit_that_ran_is_found_not_refused,
    ecs_placement_failure_is_retried_with_a_new_token,
    coalesced_polling_on_each_service,
    crash_after_submit_process_reconciles_on_each_service,
    decision_table_on_each_service,
    crash_after_submit_is_reconciled_by_find,
    uncertain_submission_is_reconciled_beside_a_running_supervisor,
    explicit_cancel_on_each_service,
    cancel_refused_at_first_is_sent_by_the_supervisor,
    throttling_slows_down_and_fails_nothing,
    sigkilled_run_reattaches_on_each_service,
);

/// A wrong secret is refused by the simulator's signature check, and the user is told why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_rejected_by_the_signature_check() {
    let db = TestDb::sqlite().await;
    let sim = quick_aws_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tether.toml");
    std::fs::write(
        &config,
        config_toml(&db, "http://127.0.0.1:9", "2s", &aws_providers(&sim.url())),
    )
    .unwrap();
    for service in SERVICES {
        let spec_path = dir.path().join("spec.json");
        std::fs::write(&spec_path, spec(service, "wrong").to_string()).unwrap();
        let out = tether_run(
            &config,
            service,
            &spec_path,
            &format!("wrong-{}", service.kind()),
            1,
        )
        .env("AWS_ACCESS_KEY_ID", SimConfig::default().access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret-0123456789")
        .env("AWS_CONFIG_FILE", "/nonexistent/x")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/x")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .await
        .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{service:?}");
        assert!(
            err.contains("InvalidSignatureException (403)"),
            "{service:?}: {err}"
        );
        assert!(
            err.contains("does not match the signature you provided"),
            "{service:?}: {err}"
        );
        assert!(
            !err.contains("not-the-secret"),
            "{service:?}: the secret leaked: {err}"
        );
    }
    assert_eq!(sim.stats().rejected_signatures, SERVICES.len() as u64);
    assert_eq!(sim.stats().submissions.values().sum::<u64>(), 0);
}

/// Issue 35: Batch's and ECS' single status reads asked within `status_gather` of one another
/// go out as one `DescribeJobs` / `DescribeTasks` (per ECS cluster), and each job is read from
/// it as from an answer of its own: one the service does not know is not found, alone.
#[tokio::test]
async fn status_reads_are_gathered_into_one_call() {
    use futures_util::future::join_all;
    use tether_provider::{ErrorKind, Handle, Provider};
    aws_env();
    let sim = aws_sim(Duration::from_millis(1), Duration::from_secs(600)).await;
    for (service, gather) in [
        (Service::Batch, "1s"),
        (Service::Ecs, "1s"),
        (Service::Batch, "0s"),
    ] {
        let table = tether_provider::settings::Table::from([
            ("region".to_string(), "us-east-1".into()),
            ("endpoint_url".to_string(), sim.url().as_str().into()),
            ("status_gather".to_string(), gather.into()),
        ]);
        let config =
            tether_aws::AwsConfig::build(service.kind(), service, table, |_| None).unwrap();
        let provider: Box<dyn Provider> = match service {
            Service::Batch => Box::new(tether_aws::Batch::new(config).unwrap()),
            _ => Box::new(tether_aws::Ecs::new(config).unwrap()),
        };
        let mut handles = Vec::new();
        for i in 0..6 {
            let key = format!("tether-{:032x}", 5000 + i);
            let mut spec = spec(service, &format!("gather-{gather}-{i}"));
            if service == Service::Ecs && i >= 4 {
                spec["cluster"] = json!("other");
            }
            handles.push(provider.submit(&spec, &key, &Ungated).await.unwrap());
        }
        let mut unknown: Value = serde_json::from_str(handles[0].as_json()).unwrap();
        match service {
            Service::Batch => unknown["job_id"] = json!("00000000-0000-0000-0000-000000000000"),
            _ => {
                let arn = unknown["task_arn"].as_str().unwrap();
                let cut = arn.rfind('/').unwrap();
                unknown["task_arn"] = json!(format!("{}/0000000000000000", &arn[..cut]));
            }
        }
        handles.push(Handle::new(unknown));
        let before = sim.stats();
        let answers = join_all(handles.iter().map(|h| provider.status(h))).await;
        let after = sim.stats();
        for answer in &answers[..6] {
            let state = answer.as_ref().map(|s| s.state);
            assert!(
                matches!(state, Ok(JobState::Running | JobState::Pending)),
                "{service:?} {gather}: {answer:?}"
            );
        }
        let lost = answers[6].as_ref().unwrap_err();
        assert_eq!(lost.kind, ErrorKind::NotFound, "{lost:?}");
        let calls = after.status_requests + after.list_requests
            - before.status_requests
            - before.list_requests;
        let want = match (service, gather) {
            (_, "0s") => 7,
            (Service::Batch, _) => 1,
            _ => 2,
        };
        assert_eq!(calls, want, "{service:?} {gather}: {before:?} {after:?}");
    }
}

/// SageMaker reads `MaxResults` jobs first and filters them by `StatusEquals` after (the
/// catalog's list-filter edge, modelled by the simulator): a sweep's first page of
/// `InProgress` jobs can be empty while 100 newer jobs have completed, and the sweep must
/// follow `NextToken` to the jobs behind them.
#[tokio::test]
async fn a_sagemaker_sweep_reads_past_short_pages() {
    use tether_provider::registry::RunningSim;
    use tether_provider::{Provider, Tracked};
    aws_env();
    let sim = Simulator::start(
        SimConfig {
            running: Duration::from_secs(600),
            ..SimConfig::default()
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .unwrap();
    let table = tether_provider::settings::Table::from([
        ("region".to_string(), "us-east-1".into()),
        ("endpoint_url".to_string(), sim.url().as_str().into()),
    ]);
    let config = tether_aws::AwsConfig::build(
        "sagemaker-training",
        Service::SageMakerTraining,
        table,
        |_| None,
    )
    .unwrap();
    let sagemaker = tether_aws::SageMaker::new(config).unwrap();
    let mut running = Vec::new();
    for i in 0..3 {
        let key = format!("tether-{i:032x}");
        let spec = spec(Service::SageMakerTraining, &format!("old-{i}"));
        running.push(sagemaker.submit(&spec, &key, &Ungated).await.unwrap());
    }
    for i in 0..101 {
        let key = format!("tether-{:032x}", 1000 + i);
        let spec = spec(Service::SageMakerTraining, &format!("new-{i}"));
        let handle = sagemaker.submit(&spec, &key, &Ungated).await.unwrap();
        assert!(RunningSim::set_state(&sim, &handle, "Completed"));
    }
    let tracked: Vec<Tracked<'_>> = running
        .iter()
        .map(|handle| Tracked {
            handle,
            created_ms: 0,
        })
        .collect();
    let sweep = sagemaker.status_many(&tracked).await.unwrap();
    assert!(
        sweep.calls >= 2,
        "the empty first page was followed: {sweep:?}"
    );
    for status in &sweep.statuses {
        let status = status.as_ref().expect("every running job reported");
        assert_eq!(status.state, JobState::Running, "{status:?}");
    }
}

/// EMR keeps the records of a cluster's last 1,000 steps ("the submission of additional steps
/// causes the removal of older, user-submitted step records"), modelled by the simulator: a
/// step tether saw running whose record a busy cluster then removed is `outcome_unknown`,
/// and no retry adds it again.
async fn an_emr_step_evicted_by_newer_steps_is_outcome_unknown(db: TestDb) {
    aws_env();
    let sim = aws_sim(Duration::from_millis(100), Duration::from_secs(600)).await;
    let app = app_at(&db, &sim).await;
    let job = app
        .engine
        .ensure(&request(Service::Emr, "evicted", 1))
        .await
        .unwrap()
        .job;
    let stop = CancellationToken::new();
    let supervisor = tokio::spawn(Supervisor::new(app.engine.clone()).run(stop.clone()));
    let start = Instant::now();
    while app.engine.jobs().get(job.id).await.unwrap().unwrap().state != JobState::Running {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never seen running"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    supervisor.await.unwrap();
    // A thousand newer steps on the same cluster, added by someone else.
    let cluster = spec(Service::Emr, "x")["cluster_id"].clone();
    let steps: Vec<Value> = (0..1000)
        .map(|i| json!({"Name": format!("other-{i}"), "HadoopJarStep": {"Jar": "command-runner.jar"}}))
        .collect();
    let emr = tether_aws::Emr::new(
        tether_aws::AwsConfig::build(
            "emr",
            Service::Emr,
            tether_provider::settings::Table::from([
                ("region".to_string(), "us-east-1".into()),
                ("endpoint_url".to_string(), sim.url().as_str().into()),
            ]),
            |_| None,
        )
        .unwrap(),
    )
    .unwrap();
    emr.client()
        .json(
            Json::V1_1,
            "ElasticMapReduce",
            "AddJobFlowSteps",
            &json!({"JobFlowId": cluster, "Steps": steps}),
            tether_provider::http::Idempotency::NotIdempotent(&Ungated),
        )
        .await
        .unwrap();
    let done = until_done(&app, job.id).await;
    assert_eq!(done.state, JobState::OutcomeUnknown, "{done:?}");
    let retry = app
        .engine
        .ensure(&request(Service::Emr, "evicted", 2))
        .await
        .unwrap();
    assert_eq!(retry.action, EnsureAction::Finished);
    assert_eq!(
        sim.submissions(Service::Emr),
        1001,
        "the step was not added again"
    );
}

/// The simulator's `POST /_sim/jobs/end` (what `tether-bench --latency` ends AWS jobs with):
/// a running job ends now, and is recorded succeeded; the answer says when it ended; a job
/// already ended, or unknown, is not in the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_ends_a_running_job_when_asked() {
    aws_env();
    let db = TestDb::sqlite().await;
    let sim = aws_sim(Duration::ZERO, Duration::from_secs(3600)).await;
    let app = app_at(&db, &sim).await;
    let job = app
        .engine
        .ensure(&request(Service::Batch, "ended-by-hand", 1))
        .await
        .unwrap()
        .job;
    let id = job.handle.as_ref().unwrap().get_str("job_id").unwrap();
    let end = |ids: Value| {
        let url = format!("{}/_sim/jobs/end", sim.url());
        async move {
            reqwest::Client::new()
                .post(url)
                .json(&json!({ "ids": ids }))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let before = chrono::Utc::now().timestamp_millis() as f64;
    let answer = end(json!([id, "no-such-job"])).await;
    let ended = answer["ended"].as_array().unwrap();
    assert_eq!(ended.len(), 1, "{answer}");
    assert_eq!(ended[0]["id"], json!(id));
    let at = ended[0]["end_time"].as_f64().unwrap();
    assert!(
        at >= before - 1.0 && at <= before + 5_000.0,
        "{at} vs {before}"
    );
    let done = until_done(&app, job.id).await;
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    let again = end(json!([id])).await;
    assert_eq!(again["ended"], json!([]), "an ended job ends once");
}
