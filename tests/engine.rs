//! The resumption engine against the Databricks simulator over real HTTP, on both backends:
//! every row of the decision table, polling to completion, cancel, lost jobs, and faults.

mod common;

use std::time::{Duration, Instant};

use serde_json::json;
use tether::app::App;
use tether::engine::{EngineError, EnsureAction, EnsureRequest, Supervisor};
use tether::jobs::{JobRecord, Phase};
use tether::model::Millis;
use tether::state::{Scope, TaskInstanceId};
use tether_databricks::sim::{Endpoint, Fault, FaultKind, Simulator};
use tether_provider::JobState;
use tokio_util::sync::CancellationToken;

use common::{app_for, quick_sim, spec, TestDb};

fn ti() -> TaskInstanceId {
    TaskInstanceId::new("etl", "scheduled__2026-11-24T00:00:00+00:00", "load", -1)
}

fn request(try_number: i64) -> EnsureRequest {
    EnsureRequest {
        task_instance: ti(),
        try_number,
        name: "main".into(),
        provider: "databricks".into(),
        spec: spec("load"),
    }
}

/// Runs a supervisor until the job ends (or `limit` passes) and returns its record.
async fn supervise_until_done(
    app: &App,
    job_id: tether::model::JobId,
    limit: Duration,
) -> JobRecord {
    let stop = CancellationToken::new();
    let sup = tokio::spawn(Supervisor::new(app.engine.clone()).run(stop.clone()));
    let job = until_terminal(app, job_id, limit).await;
    stop.cancel();
    sup.await.unwrap();
    job
}

async fn event_kinds(app: &App, job_id: tether::model::JobId) -> Vec<String> {
    app.engine
        .jobs()
        .events(job_id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

async fn setup(db: &TestDb, extra: &str) -> (Simulator, App) {
    let sim = quick_sim().await;
    let app = app_for(db, &sim.url(), "2s", extra).await;
    (sim, app)
}

/// No record: submit. The handle lands in the job record and in task state.
async fn first_ensure_submits_and_polls_to_success(db: TestDb) {
    let (sim, app) = setup(&db, "").await;
    let ensured = app.engine.ensure(&request(1)).await.unwrap();
    assert_eq!(ensured.action, EnsureAction::Submitted);
    assert_eq!(ensured.job.generation, 1);
    assert_eq!(sim.stats().submissions, 1);
    let handle = ensured.job.handle.clone().expect("handle recorded");
    let recorded = app
        .state
        .get(&Scope::TaskInstance(ti()), "tether.job.main")
        .await
        .unwrap()
        .expect("handle in task state");
    assert_eq!(recorded.value["handle"], handle.value());
    assert_eq!(recorded.value["phase"], "active");

    let job = supervise_until_done(&app, ensured.job.id, Duration::from_secs(20)).await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.raw_state.as_deref(), Some("TERMINATED/SUCCESS"));
    let kinds = event_kinds(&app, job.id).await;
    assert_eq!(&kinds[..2], ["intent", "submitted"]);
    assert_eq!(kinds.last().map(String::as_str), Some("finished"));
    assert!(
        kinds.iter().filter(|k| *k == "state_changed").count() >= 2,
        "{kinds:?}"
    );
    let recorded = app
        .state
        .get(&Scope::TaskInstance(ti()), "tether.job.main")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recorded.value["state"], "succeeded");
}

/// A running job: reattach, whatever the try number; no second submission.
async fn running_job_is_reattached_by_any_try(db: TestDb) {
    let (sim, app) = setup(&db, "").await;
    let first = app.engine.ensure(&request(1)).await.unwrap();
    for try_number in [1, 2, 5] {
        let again = app.engine.ensure(&request(try_number)).await.unwrap();
        assert_eq!(again.action, EnsureAction::Reattached, "try {try_number}");
        assert_eq!(again.job.id, first.job.id);
    }
    assert_eq!(sim.stats().submissions, 1);
    let kinds = event_kinds(&app, first.job.id).await;
    assert_eq!(kinds.iter().filter(|k| *k == "reattached").count(), 3);
}

/// A succeeded job: report success, never submit again, even for a later try.
async fn succeeded_job_is_reported_not_resubmitted(db: TestDb) {
    let (sim, app) = setup(&db, "").await;
    let first = app.engine.ensure(&request(1)).await.unwrap();
    supervise_until_done(&app, first.job.id, Duration::from_secs(20)).await;
    for try_number in [1, 2, 3] {
        let again = app.engine.ensure(&request(try_number)).await.unwrap();
        assert_eq!(again.action, EnsureAction::Finished);
        assert_eq!(again.job.state, JobState::Succeeded);
    }
    assert_eq!(sim.stats().submissions, 1);
}

/// A failed job: the same try gets the failure; a later try submits generation 2.
async fn failed_job_is_resubmitted_only_by_a_later_try(db: TestDb) {
    let (sim, app) = setup(&db, "").await;
    sim.configure(|c| c.outcome = "FAILED".into());
    let first = app.engine.ensure(&request(1)).await.unwrap();
    let job = supervise_until_done(&app, first.job.id, Duration::from_secs(20)).await;
    assert_eq!(job.state, JobState::Failed);
    assert!(
        job.message.as_deref().unwrap_or("").contains("FAILED"),
        "{job:?}"
    );

    let same = app.engine.ensure(&request(1)).await.unwrap();
    assert_eq!(same.action, EnsureAction::Finished);
    assert_eq!(same.job.state, JobState::Failed);
    assert_eq!(sim.stats().submissions, 1);

    sim.configure(|c| c.outcome = "SUCCESS".into());
    let retry = app.engine.ensure(&request(2)).await.unwrap();
    assert_eq!(retry.action, EnsureAction::Resubmitted);
    assert_eq!(retry.job.generation, 2);
    assert_ne!(retry.job.idempotency_key, first.job.idempotency_key);
    assert_eq!(sim.stats().submissions, 2);
    let job = supervise_until_done(&app, retry.job.id, Duration::from_secs(20)).await;
    assert_eq!(job.state, JobState::Succeeded);
    // The retry of the retry sees the success of generation 2.
    let again = app.engine.ensure(&request(3)).await.unwrap();
    assert_eq!(
        (again.action, again.job.generation),
        (EnsureAction::Finished, 2)
    );
    assert_eq!(sim.stats().submissions, 2);
}

/// An explicit cancel cancels the remote run; a later try submits anew.
async fn explicit_cancel_cancels(db: TestDb) {
    let (sim, app) = setup(&db, "").await;
    sim.configure(|c| c.running = Duration::from_secs(60));
    let first = app.engine.ensure(&request(1)).await.unwrap();
    let job = app
        .engine
        .cancel(first.job.id, "operator asked", "test")
        .await
        .unwrap();
    assert!(job.cancel_sent_at.is_some());
    assert_eq!(sim.stats().cancels, 1);
    let job = supervise_until_done(&app, first.job.id, Duration::from_secs(20)).await;
    assert_eq!(job.state, JobState::Cancelled);
    assert_eq!(job.cancel_reason.as_deref(), Some("operator asked"));
    let kinds = event_kinds(&app, job.id).await;
    assert!(
        kinds.contains(&"cancel_requested".to_string())
            && kinds.contains(&"cancel_sent".to_string()),
        "{kinds:?}"
    );
    let retry = app.engine.ensure(&request(2)).await.unwrap();
    assert_eq!(retry.action, EnsureAction::Resubmitted);
}

/// A spec change while the job runs: reattach and warn, or refuse with on_spec_change = fail.
async fn spec_change_reattaches_or_fails(db: TestDb) {
    let (sim, app) = setup(&db, "").await;
    sim.configure(|c| c.running = Duration::from_secs(60));
    let first = app.engine.ensure(&request(1)).await.unwrap();
    let mut changed = request(2);
    changed.spec = spec("load-v2");
    let again = app.engine.ensure(&changed).await.unwrap();
    assert_eq!(again.action, EnsureAction::Reattached);
    assert!(event_kinds(&app, first.job.id)
        .await
        .contains(&"spec_changed".to_string()));

    let strict = app_for(&db, &sim.url(), "2s", "").await;
    let strict_config = {
        let mut c = strict.config.clone();
        c.supervisor.on_spec_change = tether::config::OnSpecChange::Fail;
        c
    };
    let strict = App::open(strict_config).await.unwrap();
    match strict.engine.ensure(&changed).await {
        Err(EngineError::SpecChanged { job_id, .. }) => assert_eq!(job_id, first.job.id),
        other => panic!("expected SpecChanged, got {other:?}"),
    }
    assert_eq!(sim.stats().submissions, 1);
    assert_eq!(sim.stats().cancels, 0, "the running job is left alone");
}

/// An intent without a handle (the submitter died): the next ensure finds the run the
/// submitter created, or submits it if it never arrived. Either way: one submission.
async fn orphaned_intent_is_reconciled(db: TestDb) {
    let (sim, app) = setup(&db, "").await;
    // A submitter that recorded its intent, submitted, and died before recording the handle.
    let dead = app_for(&db, &sim.url(), "1s", "").await;
    let job = insert_orphan(&dead, 1).await;
    let provider = dead.engine.providers().get("databricks").unwrap();
    provider
        .submit(&job.spec, &job.idempotency_key, &tether_provider::Ungated)
        .await
        .unwrap();
    assert_eq!(sim.stats().submissions, 1);
    tokio::time::sleep(Duration::from_millis(1100)).await; // its lease runs out
    let ensured = app.engine.ensure(&request(2)).await.unwrap();
    assert_eq!(ensured.action, EnsureAction::Recovered);
    assert_eq!(ensured.job.id, job.id);
    assert!(ensured.job.handle.is_some());
    assert_eq!(sim.stats().submissions, 1, "found, not submitted again");

    // Same, but the submission never reached the provider: it is submitted once, now.
    let mut other = request(1);
    other.name = "second".into();
    let job = insert_orphan_named(&dead, &other).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let ensured = app.engine.ensure(&other).await.unwrap();
    assert_eq!(ensured.action, EnsureAction::Recovered);
    assert_eq!(ensured.job.id, job.id);
    assert_eq!(sim.stats().submissions, 2);
    assert_eq!(sim.stats().submit_requests, 2);
}

async fn insert_orphan(app: &App, try_number: i64) -> JobRecord {
    insert_orphan_named(app, &request(try_number)).await
}

async fn insert_orphan_named(app: &App, req: &EnsureRequest) -> JobRecord {
    common::orphan_intent(app, req, 1000).await
}

/// Ten tries asking at once for the same job: one submission, everyone gets the same job.
async fn concurrent_ensures_submit_once(db: TestDb) {
    let (sim, app) = setup(&db, "").await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..10 {
        let engine = app.engine.clone();
        set.spawn(async move { engine.ensure(&request(1 + i % 3)).await.unwrap() });
    }
    let mut ids = std::collections::BTreeSet::new();
    let mut submitted = 0;
    while let Some(r) = set.join_next().await {
        let e = r.unwrap();
        ids.insert(e.job.id);
        submitted += usize::from(e.action.submitted());
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(submitted, 1);
    assert_eq!(sim.stats().submissions, 1);
}

/// A run the workspace no longer knows becomes `lost`, not a crash and not a success.
async fn vanished_run_is_lost(db: TestDb) {
    let (sim, app) = setup(&db, "").await;
    sim.configure(|c| c.running = Duration::from_secs(60));
    let first = app.engine.ensure(&request(1)).await.unwrap();
    let run_id = first
        .job
        .handle
        .as_ref()
        .unwrap()
        .get_i64("run_id")
        .unwrap();
    sim.delete_run(run_id);
    let job = supervise_until_done(&app, first.job.id, Duration::from_secs(20)).await;
    assert_eq!(job.state, JobState::Lost);
    assert!(
        job.message.as_deref().unwrap().contains("does not exist"),
        "{job:?}"
    );
}

/// 429 with Retry-After on submit: the call waits as asked and succeeds; one submission.
async fn throttled_submit_honours_retry_after(db: TestDb) {
    let (sim, app) = setup(&db, "").await;
    sim.inject(Fault {
        endpoint: Some(Endpoint::Submit),
        kind: FaultKind::Status {
            code: 429,
            retry_after: Some(2),
        },
        times: 1,
    });
    let start = Instant::now();
    let ensured = app.engine.ensure(&request(1)).await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(ensured.action, EnsureAction::Submitted);
    assert_eq!(sim.stats().submissions, 1);
}

/// A submit that the workspace processed but answered with 500: retried with the same
/// idempotency token, deduplicated; one run.
async fn lost_submit_answer_is_deduplicated(db: TestDb) {
    let (sim, app) = setup(&db, "").await;
    sim.inject(Fault {
        endpoint: Some(Endpoint::Submit),
        kind: FaultKind::FailAfterProcessing,
        times: 1,
    });
    let ensured = app.engine.ensure(&request(1)).await.unwrap();
    assert_eq!(ensured.action, EnsureAction::Submitted);
    assert_eq!(sim.stats().submit_requests, 2);
    assert_eq!(sim.stats().submissions, 1);
}

/// 5xx, slow answers (timeouts), dropped connections, malformed JSON and unknown states while
/// polling: none of them fails the job; it ends in the run's real result.
async fn poll_faults_never_fail_the_job(db: TestDb) {
    let (sim, app) = setup(&db, "").await;
    sim.configure(|c| c.running = Duration::from_secs(3));
    let first = app.engine.ensure(&request(1)).await.unwrap();
    let get = Some(Endpoint::Get);
    for kind in [
        FaultKind::Status {
            code: 500,
            retry_after: None,
        },
        FaultKind::Status {
            code: 503,
            retry_after: Some(1),
        },
        FaultKind::Delay(Duration::from_secs(3)),
        FaultKind::Drop,
        FaultKind::MalformedJson,
        FaultKind::UnknownState("FROBNICATING".into()),
    ] {
        sim.inject(Fault {
            endpoint: get,
            kind,
            times: 2,
        });
    }
    let job = supervise_until_done(&app, first.job.id, Duration::from_secs(60)).await;
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    let events = app.engine.jobs().events(job.id).await.unwrap();
    assert!(
        events.iter().all(|e| e.state.as_deref() != Some("failed")),
        "{events:?}"
    );
    assert_eq!(sim.stats().submissions, 1);
}

/// An unknown state is reported as running (with its raw name), never as success.
async fn unknown_state_is_running_not_success(db: TestDb) {
    let (sim, app) = setup(&db, "").await;
    sim.configure(|c| c.running = Duration::from_secs(60));
    let first = app.engine.ensure(&request(1)).await.unwrap();
    sim.inject(Fault {
        endpoint: Some(Endpoint::Get),
        kind: FaultKind::UnknownState("FROBNICATING".into()),
        times: 100,
    });
    let stop = CancellationToken::new();
    let sup = tokio::spawn(Supervisor::new(app.engine.clone()).run(stop.clone()));
    let start = Instant::now();
    loop {
        let job = app.engine.jobs().get(first.job.id).await.unwrap().unwrap();
        if job.raw_state.as_deref() == Some("FROBNICATING") {
            assert_eq!(job.state, JobState::Running);
            assert_eq!(job.phase, Phase::Active);
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{job:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    sup.await.unwrap();
}

/// The provider unreachable for longer than the budget: `unknown`, still polled, and the
/// job ends in its real result once the provider answers again.
async fn unreachable_provider_marks_unknown_then_recovers(db: TestDb) {
    let (sim, app) = setup(&db, "").await;
    sim.configure(|c| c.running = Duration::from_secs(2));
    let first = app.engine.ensure(&request(1)).await.unwrap();
    // Each poll makes up to 4 attempts (max_retries = 3); 4 failing polls cross unknown_after = 3.
    sim.inject(Fault {
        endpoint: Some(Endpoint::Get),
        kind: FaultKind::Status {
            code: 500,
            retry_after: None,
        },
        times: 16,
    });
    let job = supervise_until_done(&app, first.job.id, Duration::from_secs(60)).await;
    assert_eq!(job.state, JobState::Succeeded);
    let kinds = event_kinds(&app, job.id).await;
    assert!(kinds.contains(&"unknown".to_string()), "{kinds:?}");
}

/// A bad spec is refused before anything is recorded or submitted; a provider's refusal
/// ends the job as failed with the provider's message.
async fn bad_specs_are_refused(db: TestDb) {
    let (sim, app) = setup(&db, "").await;
    let mut bad = request(1);
    bad.spec = json!({"run_name": "no tasks"});
    let err = app.engine.ensure(&bad).await.unwrap_err();
    assert!(err.to_string().contains("tasks"), "{err}");
    assert!(app
        .engine
        .jobs()
        .latest(&ti(), "main")
        .await
        .unwrap()
        .is_none());
    let mut unknown = request(1);
    unknown.provider = "emr".into();
    let err = app.engine.ensure(&unknown).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "no provider named \"emr\" is configured (configured: databricks)"
    );
    let mut run_now = request(1);
    run_now.spec = json!({"job_id": -5});
    let err = app.engine.ensure(&run_now).await.unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    let job = app
        .engine
        .jobs()
        .latest(&ti(), "main")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((job.phase, job.state), (Phase::Terminal, JobState::Failed));
    assert_eq!(sim.stats().submissions, 0);
}

/// Fencing: a supervisor whose lease was taken over cannot write.
async fn stale_lease_holder_cannot_write(db: TestDb) {
    let (sim, app) = setup(&db, "").await;
    sim.configure(|c| c.running = Duration::from_secs(60));
    let first = app.engine.ensure(&request(1)).await.unwrap();
    let jobs = app.engine.jobs();
    let now = Millis::from(chrono::Utc::now());
    let a = jobs
        .claim(first.job.id, "A", now, now.plus(100))
        .await
        .unwrap()
        .unwrap();
    let lease_a = a.lease_of("A").unwrap();
    assert!(
        jobs.claim(first.job.id, "B", now, now.plus(1000))
            .await
            .unwrap()
            .is_none(),
        "A's lease is live"
    );
    let later = now.plus(200);
    let b = jobs
        .claim(first.job.id, "B", later, later.plus(10_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.lease_epoch, a.lease_epoch.next());
    let update = tether::jobs::PollUpdate {
        state: JobState::Succeeded,
        raw_state: Some("TERMINATED/SUCCESS".into()),
        message: None,
        url: None,
        next_poll_at: later,
        poll_interval_ms: 100,
        poll_failures: 0,
        now: later,
        event: Some(("finished", json!({}))),
        state_key: None,
    };
    assert!(
        !jobs.apply_poll(&lease_a, &update).await.unwrap(),
        "A's write is fenced off"
    );
    assert!(!jobs.release(&lease_a).await.unwrap());
    let job = jobs.get(first.job.id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Pending);
    assert_eq!(job.lease_owner.as_deref(), Some("B"));
    assert!(!event_kinds(&app, job.id)
        .await
        .contains(&"finished".to_string()));
    assert_eq!(jobs.renew("A", later, later.plus(1000)).await.unwrap(), 0);
    assert!(jobs.leases_of("A", later).await.unwrap().is_empty());
}

/// OAuth machine-to-machine: the token is fetched once and cached for the following calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_m2m_tokens_are_fetched_and_cached() {
    let db = TestDb::sqlite().await;
    let sim = quick_sim().await;
    sim.configure(|c| c.oauth_client = Some(("sp-tether".into(), "oauth-secret".into())));
    let config = common::config_toml(&db, &sim.url(), "2s", "").replace(
        "token = \"dapi-sim-token\"",
        "client_id = \"sp-tether\"\nclient_secret = \"oauth-secret\"",
    );
    let app = App::open(tether::config::Config::from_toml(&config, "test").unwrap())
        .await
        .unwrap();
    let first = app.engine.ensure(&request(1)).await.unwrap();
    let job = supervise_until_done(&app, first.job.id, Duration::from_secs(20)).await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(sim.stats().tokens_issued, 1);
    assert!(sim.stats().get_requests >= 2);

    let wrong = config.replace("oauth-secret", "wrong");
    let app = App::open(tether::config::Config::from_toml(&wrong, "test").unwrap())
        .await
        .unwrap();
    let mut other = request(1);
    other.name = "other".into();
    let err = app.engine.ensure(&other).await.unwrap_err().to_string();
    assert!(
        err.contains("OAuth token request for client sp-tether failed: HTTP 401"),
        "{err}"
    );
    assert!(!err.contains("wrong"), "{err}");
}

/// Coalesced polling: six runs are polled through `runs/list?active_only=true`. A finished run
/// is no longer listed, so only the single-call fallback (`runs/get`) can finish it: the jobs
/// would never end without it. Then the simulator's list lies, reporting every run as
/// succeeded while the runs really fail: no job may be recorded as succeeded, because a
/// terminal state is only ever recorded after `runs/get` confirms it.
async fn coalesced_polling_with_runs_list(db: TestDb) {
    for lie in [false, true] {
        let sim = Simulator::start(
            tether_databricks::sim::SimConfig {
                pending: Duration::from_millis(300),
                running: Duration::from_millis(2500),
                terminating: Duration::from_millis(100),
                outcome: if lie { "FAILED" } else { "SUCCESS" }.into(),
                lists_report_success: lie,
                ..Default::default()
            },
            ([127, 0, 0, 1], 0).into(),
        )
        .await
        .unwrap();
        let app = app_for(&db, &sim.url(), "2s", "").await;
        let mut ids = Vec::new();
        for n in 0..6 {
            let mut req = request(1);
            req.task_instance = TaskInstanceId::new("etl", "r1", format!("sweep-{lie}-{n}"), -1);
            ids.push(app.engine.ensure(&req).await.unwrap().job.id);
        }
        let jobs = common::until_all_done(&app, &ids, Duration::from_secs(30)).await;
        let want = if lie {
            JobState::Failed
        } else {
            JobState::Succeeded
        };
        for job in &jobs {
            assert_eq!(job.state, want, "list lies: {lie}: {job:?}");
        }
        let stats = sim.stats();
        assert!(stats.list_requests > 0, "no coalesced polling: {stats:?}");
        if !lie {
            // Singly, six runs polled every 100-300 ms for about 3 s take well over 60 calls.
            assert!(
                stats.get_requests < 6 * 5,
                "polls were not coalesced: {stats:?}"
            );
        }
    }
}

/// A cancel recorded by another process that could not reach the provider (the API of
/// another supervisor, say) reaches the provider through the supervisor holding the job, even
/// when every poll of the job is slow, so that a poll or a sweep of it is in flight at nearly
/// every lease renewal: the renewal records the request on the job in flight, and the poll or
/// sweep coming back keeps it and sends the cancel at once.
async fn cancel_reaches_the_provider_while_polls_are_in_flight(db: TestDb) {
    // Slow single polls (one job), then slow sweeps (three jobs, runs/list).
    for (endpoint, jobs) in [(Endpoint::Get, 1), (Endpoint::List, 3)] {
        let sim = quick_sim().await;
        sim.configure(|c| c.running = Duration::from_secs(60));
        // Polls back-to-back: a job is idle for 10 ms between polls that take 1.5 s, while
        // the lease (1 s) is renewed every third of a second.
        let toml = common::config_toml(&db, &sim.url(), "1s", "")
            .replace("poll_initial = \"100ms\"", "poll_initial = \"10ms\"")
            .replace("poll_max = \"300ms\"", "poll_max = \"10ms\"");
        let app = App::open(tether::config::Config::from_toml(&toml, "test").unwrap())
            .await
            .unwrap();
        let mut ids = Vec::new();
        for n in 0..jobs {
            let mut req = request(1);
            req.task_instance =
                TaskInstanceId::new("etl", "r1", format!("slow-{endpoint:?}-{n}"), -1);
            ids.push(app.engine.ensure(&req).await.unwrap().job.id);
        }
        let stop = CancellationToken::new();
        let sup = tokio::spawn(Supervisor::new(app.engine.clone()).run(stop.clone()));
        sim.inject(Fault {
            endpoint: Some(endpoint),
            kind: FaultKind::Delay(Duration::from_millis(1500)),
            times: u32::MAX,
        });
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = Millis::from(chrono::Utc::now());
        app.engine
            .jobs()
            .request_cancel(ids[0], "asked elsewhere", "another-api", now, None)
            .await
            .unwrap();
        let asked = Instant::now();
        while sim.stats().cancels == 0 {
            // A renewal (a third of a second), the poll in flight (1.5 s), the cancel.
            assert!(
                asked.elapsed() < Duration::from_secs(4),
                "slow {endpoint:?}: the cancel did not reach the provider"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sim.clear_faults();
        let job = until_terminal(&app, ids[0], Duration::from_secs(20)).await;
        stop.cancel();
        sup.await.unwrap();
        assert_eq!(job.state, JobState::Cancelled, "slow {endpoint:?}");
        assert!(job.cancel_sent_at.is_some(), "slow {endpoint:?}");
        assert_eq!(sim.stats().cancels, 1, "slow {endpoint:?}");
    }
}

/// Sets a job's lease in the database, behind the supervisor's back.
async fn set_lease(app: &App, job_id: tether::model::JobId, sql_set: &str) {
    sqlx::query(&format!("UPDATE jobs SET {sql_set} WHERE id = $1"))
        .bind(job_id.0)
        .execute(app.db.pool())
        .await
        .unwrap();
}

/// Waits until the job ends (or `limit` passes; a supervisor must be running) and returns its
/// record.
async fn until_terminal(app: &App, job_id: tether::model::JobId, limit: Duration) -> JobRecord {
    let start = Instant::now();
    loop {
        let job = app.engine.jobs().get(job_id).await.unwrap().unwrap();
        if job.phase == Phase::Terminal {
            return job;
        }
        assert!(
            start.elapsed() < limit,
            "job {job_id} did not finish: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A supervisor whose lease on a job ran out while a poll of it was in flight (its renewals
/// failed for a lease time) claims the job again: what that poll brings back belongs to the
/// earlier lease and must not replace the new one, else the job is polled under a stale
/// epoch, dropped at its first fenced write, and its new lease renewed, unpolled, forever.
async fn job_claimed_again_during_its_poll_is_still_polled(db: TestDb) {
    let sim = quick_sim().await;
    sim.configure(|c| c.running = Duration::from_secs(4));
    // A lease of 3 s: long enough that a loaded machine's late renewal does not let it run
    // out by itself (a second claim the assertion below would count), short enough that the
    // claim loop (every half second) claims the job again while the delayed poll is out.
    let app = app_for(&db, &sim.url(), "3s", "").await;
    let id = app.engine.ensure(&request(1)).await.unwrap().job.id;
    let stop = CancellationToken::new();
    let sup = tokio::spawn(Supervisor::new(app.engine.clone()).run(stop.clone()));
    let claimed = Instant::now();
    while app.engine.jobs().get(id).await.unwrap().unwrap().state != JobState::Running {
        assert!(claimed.elapsed() < Duration::from_secs(5), "never polled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let epoch = app
        .engine
        .jobs()
        .get(id)
        .await
        .unwrap()
        .unwrap()
        .lease_epoch;
    // The next poll takes 1.5 s; meanwhile the lease runs out and the supervisor claims the
    // job again.
    sim.inject(Fault {
        endpoint: Some(Endpoint::Get),
        kind: FaultKind::Delay(Duration::from_millis(1500)),
        times: 1,
    });
    // (`requests` counts a request when it arrives, before its fault.)
    let requests = sim.stats().requests;
    while sim.stats().requests == requests {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    set_lease(&app, id, "lease_expires_at = 0, next_poll_at = 0").await;
    // A second job leaves the supervisor below its fair share, so it claims; the first job,
    // due the longest, first.
    let mut other = request(1);
    other.task_instance = TaskInstanceId::new("etl", "r1", "other", -1);
    let other = app.engine.ensure(&other).await.unwrap().job.id;
    let job = until_terminal(&app, id, Duration::from_secs(15)).await;
    until_terminal(&app, other, Duration::from_secs(15)).await;
    stop.cancel();
    sup.await.unwrap();
    assert_eq!(job.state, JobState::Succeeded);
    // Claimed once more, and not handed back and claimed again after that.
    assert_eq!(job.lease_epoch, epoch.next(), "{job:?}");
}

/// A lease the database says a supervisor holds but the supervisor does not know of (a
/// claim whose answer was lost with the connection) is handed back at its next renewal, and
/// the job claimed and polled, rather than renewed unpolled forever.
async fn lease_held_unknowingly_is_handed_back(db: TestDb) {
    let sim = quick_sim().await;
    let app = app_for(&db, &sim.url(), "1s", "").await;
    let id = app.engine.ensure(&request(1)).await.unwrap().job.id;
    let until = chrono::Utc::now().timestamp_millis() + 60_000;
    set_lease(
        &app,
        id,
        &format!(
            "lease_owner = '{}', lease_epoch = lease_epoch + 1, lease_expires_at = {until}",
            app.engine.owner()
        ),
    )
    .await;
    let stop = CancellationToken::new();
    let sup = tokio::spawn(Supervisor::new(app.engine.clone()).run(stop.clone()));
    let job = until_terminal(&app, id, Duration::from_secs(15)).await;
    stop.cancel();
    sup.await.unwrap();
    assert_eq!(job.state, JobState::Succeeded);
}

/// The same when the number of leases agrees by chance: one of the supervisor's jobs has
/// gone to another supervisor while the supervisor holds another lease unknowingly. Its
/// renewal compares which leases it holds (a digest), not only how many.
async fn lease_held_unknowingly_is_handed_back_when_the_count_agrees(db: TestDb) {
    let sim = quick_sim().await;
    sim.configure(|c| c.running = Duration::from_secs(60));
    let app = app_for(&db, &sim.url(), "1s", "").await;
    let a = app.engine.ensure(&request(1)).await.unwrap().job.id;
    let mut other = request(1);
    other.task_instance = TaskInstanceId::new("etl", "r1", "other", -1);
    let b = app.engine.ensure(&other).await.unwrap().job;
    // B is someone else's until the swap below, so the supervisor does not claim it.
    let far = chrono::Utc::now().timestamp_millis() + 60_000;
    set_lease(
        &app,
        b.id,
        &format!("lease_owner = 'someone-else', lease_expires_at = {far}"),
    )
    .await;
    let stop = CancellationToken::new();
    let sup = tokio::spawn(Supervisor::new(app.engine.clone()).run(stop.clone()));
    let start = Instant::now();
    // Claimed and running: its polls write nothing more (a write would be fenced after the
    // swap and give the game away).
    while app.engine.jobs().get(a).await.unwrap().unwrap().state != JobState::Running {
        assert!(start.elapsed() < Duration::from_secs(5), "A never polled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // One statement: A goes to someone else, B to this supervisor behind its back. It holds
    // one job in memory and one lease in the database, but not the same.
    sqlx::query(&format!(
        "UPDATE jobs SET lease_epoch = lease_epoch + 1, lease_expires_at = {far}, \
         lease_owner = CASE WHEN id = $1 THEN 'someone-else' ELSE '{}' END \
         WHERE id = $1 OR id = $2",
        app.engine.owner()
    ))
    .bind(a.0)
    .bind(b.id.0)
    .execute(app.db.pool())
    .await
    .unwrap();
    let run_id = b.handle.as_ref().unwrap().get_i64("run_id").unwrap();
    sim.finish_run(run_id, "SUCCESS");
    let job = until_terminal(&app, b.id, Duration::from_secs(10)).await;
    stop.cancel();
    sup.await.unwrap();
    assert_eq!(job.state, JobState::Succeeded);
}

on_both_backends!(
    coalesced_polling_with_runs_list,
    lease_held_unknowingly_is_handed_back_when_the_count_agrees,
    job_claimed_again_during_its_poll_is_still_polled,
    lease_held_unknowingly_is_handed_back,
    cancel_reaches_the_provider_while_polls_are_in_flight,
    first_ensure_submits_and_polls_to_success,
    running_job_is_reattached_by_any_try,
    succeeded_job_is_reported_not_resubmitted,
    failed_job_is_resubmitted_only_by_a_later_try,
    explicit_cancel_cancels,
    spec_change_reattaches_or_fails,
    orphaned_intent_is_reconciled,
    concurrent_ensures_submit_once,
    vanished_run_is_lost,
    throttled_submit_honours_retry_after,
    lost_submit_answer_is_deduplicated,
    poll_faults_never_fail_the_job,
    unknown_state_is_running_not_success,
    unreachable_provider_marks_unknown_then_recovers,
    bad_specs_are_refused,
    stale_lease_holder_cannot_write,
);

/// Airflow's Databricks hooks send the parameters of GET endpoints as a JSON body, which real
/// Databricks accepts: so does the simulator (and a query string still works).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_accepts_get_parameters_in_a_json_body() {
    let sim = quick_sim().await;
    let client = reqwest::Client::new();
    let auth = ("Authorization", "Bearer dapi-sim-token");
    let submitted: serde_json::Value = client
        .post(format!("{}/api/2.2/jobs/runs/submit", sim.url()))
        .header(auth.0, auth.1)
        .json(&spec("body"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run_id = submitted["run_id"].as_i64().unwrap();
    for request in [
        client
            .get(format!("{}/api/2.2/jobs/runs/get", sim.url()))
            .json(&json!({ "run_id": run_id })),
        client.get(format!(
            "{}/api/2.2/jobs/runs/get?run_id={run_id}",
            sim.url()
        )),
    ] {
        let answer = request.header(auth.0, auth.1).send().await.unwrap();
        assert_eq!(answer.status(), 200);
        let run: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(run["run_id"], run_id);
    }
    let listed: serde_json::Value = client
        .get(format!("{}/api/2.2/jobs/runs/list", sim.url()))
        .header(auth.0, auth.1)
        .json(&json!({ "active_only": true, "limit": 5 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["runs"][0]["run_id"], run_id, "{listed}");
}

/// A supervisor that joins later gets its share: the first one, holding every job, hands the
/// excess back once the newcomer is seen alive, and the jobs spread over both (PostgreSQL,
/// where several supervisors share a database).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_supervisor_gets_its_share() {
    let Some(db) = TestDb::postgres("a_joining_supervisor_gets_its_share").await else {
        return;
    };
    let sim = quick_sim().await;
    sim.configure(|c| c.running = Duration::from_secs(120));
    let first = app_for(&db, &sim.url(), "2s", "").await;
    let second = app_for(&db, &sim.url(), "2s", "").await;
    for n in 0..40 {
        let mut req = request(1);
        req.task_instance = TaskInstanceId::new("etl", "r1", format!("share-{n}"), -1);
        first.engine.ensure(&req).await.unwrap();
    }
    let held_by = |app: &App| {
        let (jobs, owner) = (app.engine.jobs().clone(), app.engine.owner().to_string());
        async move {
            let filter = tether::jobs::JobFilter {
                limit: 1000,
                ..Default::default()
            };
            jobs.list(&filter)
                .await
                .unwrap()
                .into_iter()
                .filter(|j| j.lease_owner.as_deref() == Some(owner.as_str()))
                .count()
        }
    };
    let stop = CancellationToken::new();
    let a = tokio::spawn(Supervisor::new(first.engine.clone()).run(stop.clone()));
    let start = Instant::now();
    while held_by(&first).await < 40 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the first never held all 40"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let b = tokio::spawn(Supervisor::new(second.engine.clone()).run(stop.clone()));
    let start = Instant::now();
    loop {
        let (x, y) = (held_by(&first).await, held_by(&second).await);
        if (18..=22).contains(&x) && (18..=22).contains(&y) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "jobs did not spread: {x} and {y}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.cancel();
    let _ = tokio::join!(a, b);
    assert_eq!(sim.stats().submissions, 40, "rebalancing submitted nothing");
}
