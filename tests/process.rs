//! Crash safety with real processes: `tether run` and `tether serve` are started as child
//! processes against the Databricks simulator and killed with real signals (SIGKILL,
//! SIGTERM, SIGSTOP/SIGCONT).

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tether::app::App;
use tether::jobs::{JobRecord, Phase};
use tether::state::TaskInstanceId;
use tether_databricks::sim::{Endpoint, Fault, FaultKind, Simulator};
use tether_provider::JobState;
use tokio::process::{Child, Command};

use common::{app_for, config_toml, exit_within, free_port, quick_sim, signal, TestDb};

/// A config file and a spec file in a temp folder, and the tether binary.
struct Harness {
    dir: tempfile::TempDir,
    config: PathBuf,
    spec: PathBuf,
}

impl Harness {
    fn new(db: &TestDb, sim: &Simulator, lease: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("tether.toml");
        // Several `tether serve` may run at once: each takes a free port for its API.
        let api = "\n[api]\nlisten = \"127.0.0.1:0\"\n";
        std::fs::write(&config, config_toml(db, &sim.url(), lease, api)).unwrap();
        let spec = dir.path().join("job.json");
        std::fs::write(&spec, common::spec("nightly").to_string()).unwrap();
        Self { dir, config, spec }
    }

    fn tether(&self, args: &[&str], log: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tether"));
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .env("TETHER_LOG", "info")
            .env_remove("FAILPOINTS")
            .stdout(Stdio::from(
                std::fs::File::create(self.dir.path().join(format!("{log}.out"))).unwrap(),
            ))
            .stderr(Stdio::from(
                std::fs::File::create(self.dir.path().join(format!("{log}.err"))).unwrap(),
            ))
            .kill_on_drop(true);
        cmd
    }

    fn run(&self, task: &str, try_number: u32, log: &str) -> Command {
        let spec = self.spec.to_str().unwrap().to_string();
        let t = try_number.to_string();
        self.tether(
            &[
                "run",
                "--provider",
                "databricks",
                "--spec",
                &spec,
                "--dag",
                "etl",
                "--run",
                "r1",
                "--task",
                task,
                "--try",
                &t,
            ],
            log,
        )
    }

    fn output(&self, log: &str) -> (String, String) {
        let read = |ext: &str| {
            std::fs::read_to_string(self.dir.path().join(format!("{log}.{ext}")))
                .unwrap_or_default()
        };
        (read("out"), read("err"))
    }
}

fn ti(task: &str) -> TaskInstanceId {
    TaskInstanceId::new("etl", "r1", task, -1)
}

async fn wait_job(
    app: &App,
    task: &str,
    limit: Duration,
    what: &str,
    done: impl Fn(&JobRecord) -> bool,
) -> JobRecord {
    let start = Instant::now();
    loop {
        if let Some(job) = app.engine.jobs().latest(&ti(task), "main").await.unwrap() {
            if done(&job) {
                return job;
            }
            assert!(
                start.elapsed() < limit,
                "timed out waiting for {what}: {job:?}"
            );
        } else {
            assert!(
                start.elapsed() < limit,
                "timed out waiting for {what}: no job"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A worker eviction: `tether run` is SIGKILLed while the run is RUNNING; the retry
/// reattaches and completes with exactly one submission, and nothing was cancelled.
async fn sigkilled_run_is_reattached_by_the_retry(db: TestDb) {
    let sim = quick_sim().await;
    sim.configure(|c| c.running = Duration::from_secs(3));
    let h = Harness::new(&db, &sim, "2s");
    let app = app_for(&db, &sim.url(), "2s", "").await;
    let mut try1 = h.run("load", 1, "try1").spawn().unwrap();
    wait_job(&app, "load", Duration::from_secs(20), "RUNNING", |j| {
        j.state == JobState::Running
    })
    .await;
    signal(&try1, Signal::SIGKILL);
    let status = exit_within(&mut try1, Duration::from_secs(5)).await;
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    let job = app
        .engine
        .jobs()
        .latest(&ti("load"), "main")
        .await
        .unwrap()
        .unwrap();
    let run_id = job.handle.unwrap().get_i64("run_id").unwrap();
    assert_eq!(
        sim.run_state(run_id).as_deref(),
        Some("RUNNING"),
        "the eviction cancelled nothing"
    );

    let mut try2 = h.run("load", 2, "try2").spawn().unwrap();
    let status = exit_within(&mut try2, Duration::from_secs(30)).await;
    let (out, err) = h.output("try2");
    assert!(status.success(), "try 2: {status}\n{out}\n{err}");
    assert!(out.contains("Reattached on try 2"), "{out}");
    assert!(out.contains("succeeded (TERMINATED/SUCCESS)"), "{out}");
    assert_eq!(sim.stats().submissions, 1);
    assert_eq!(sim.stats().cancels, 0);
}

/// A crash between the provider accepting the submission and tether recording the handle:
/// the rerun reconciles (finds the run) and the workspace saw one submission.
async fn crash_between_submit_and_record_ends_with_one_submission(db: TestDb) {
    let sim = quick_sim().await;
    let h = Harness::new(&db, &sim, "1s");
    let app = app_for(&db, &sim.url(), "1s", "").await;
    let mut crashing = h.run("load", 1, "crash");
    crashing.env("FAILPOINTS", "after_submit=return");
    let mut try1 = crashing.spawn().unwrap();
    let status = exit_within(&mut try1, Duration::from_secs(20)).await;
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "{:?}",
        h.output("crash")
    );
    let job = app
        .engine
        .jobs()
        .latest(&ti("load"), "main")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        job.phase,
        Phase::Submitting,
        "the handle was never recorded"
    );
    assert!(job.handle.is_none());
    assert_eq!(sim.stats().submissions, 1);

    // The same try restarts (or Airflow retries): the intent is reconciled, not resubmitted.
    let mut again = h.run("load", 1, "again").spawn().unwrap();
    let status = exit_within(&mut again, Duration::from_secs(30)).await;
    let (out, err) = h.output("again");
    assert!(status.success(), "{status}\n{out}\n{err}");
    assert!(out.contains("Recovered"), "{out}");
    assert_eq!(sim.stats().submissions, 1);
    let events = app.engine.jobs().events(job.id).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "recovered"), "{events:?}");
}

/// SIGTERM (a deploy, a drained node) stops `tether run` with exit 5, releases the lease, and
/// leaves the remote run running.
async fn sigterm_leaves_the_job_running(db: TestDb) {
    let sim = quick_sim().await;
    sim.configure(|c| c.running = Duration::from_secs(60));
    let h = Harness::new(&db, &sim, "5s");
    let app = app_for(&db, &sim.url(), "5s", "").await;
    let mut try1 = h.run("load", 1, "term").spawn().unwrap();
    let job = wait_job(
        &app,
        "load",
        Duration::from_secs(20),
        "RUNNING under a lease",
        |j| j.state == JobState::Running && j.lease_owner.is_some(),
    )
    .await;
    signal(&try1, Signal::SIGTERM);
    let status = exit_within(&mut try1, Duration::from_secs(10)).await;
    let (_, err) = h.output("term");
    assert_eq!(status.code(), Some(5), "{err}");
    assert!(err.contains("keeps running"), "{err}");
    let run_id = job.handle.unwrap().get_i64("run_id").unwrap();
    assert_eq!(sim.run_state(run_id).as_deref(), Some("RUNNING"));
    assert_eq!(sim.stats().cancels, 0);
    let job = app.engine.jobs().get(job.id).await.unwrap().unwrap();
    assert_eq!(job.lease_owner, None, "the lease was released on SIGTERM");
    assert_eq!(job.phase, Phase::Active);
}

/// `tether jobs cancel` is the explicit cancel: the run is cancelled and the waiting
/// `tether run` exits 6 with the cancelled state.
async fn explicit_cancel_from_the_cli(db: TestDb) {
    let sim = quick_sim().await;
    sim.configure(|c| c.running = Duration::from_secs(60));
    let h = Harness::new(&db, &sim, "5s");
    let app = app_for(&db, &sim.url(), "5s", "").await;
    let mut waiting = h.run("load", 1, "waiting").spawn().unwrap();
    let job = wait_job(&app, "load", Duration::from_secs(20), "RUNNING", |j| {
        j.state == JobState::Running
    })
    .await;
    let id = job.id.to_string();
    let mut cancel = h
        .tether(
            &["jobs", "cancel", &id, "--reason", "bad input data"],
            "cancel",
        )
        .spawn()
        .unwrap();
    let status = exit_within(&mut cancel, Duration::from_secs(10)).await;
    assert!(status.success(), "{:?}", h.output("cancel"));
    assert!(
        h.output("cancel").0.contains("cancel sent"),
        "{:?}",
        h.output("cancel")
    );
    let status = exit_within(&mut waiting, Duration::from_secs(20)).await;
    let (out, err) = h.output("waiting");
    assert_eq!(status.code(), Some(6), "{out}\n{err}");
    assert!(err.contains("cancelled"), "{err}");
    // The CLI sends the cancel; the supervisor of the waiting `tether run` may send it too if
    // it polls between the request and the CLI recording that it was sent (a cancel is
    // idempotent at the provider).
    assert!((1..=2).contains(&sim.stats().cancels), "{:?}", sim.stats());
}

/// Credentials never reach the logs, even at trace level.
async fn secrets_stay_out_of_trace_logs(db: TestDb) {
    let secret = "dapi-TOPSECRET-0123456789";
    let sim = quick_sim().await;
    sim.configure(|c| c.token = secret.into());
    let h = Harness::new(&db, &sim, "2s");
    let config = std::fs::read_to_string(&h.config)
        .unwrap()
        .replace("dapi-sim-token", secret);
    std::fs::write(&h.config, config).unwrap();
    let mut run = h.run("load", 1, "trace");
    run.env("TETHER_LOG", "trace");
    let status = exit_within(&mut run.spawn().unwrap(), Duration::from_secs(30)).await;
    let (out, err) = h.output("trace");
    assert!(status.success(), "{out}\n{err}");
    assert!(err.len() > 1000, "trace logging produced output");
    assert!(
        !err.contains(secret) && !out.contains(secret),
        "the token leaked into the logs"
    );
    assert!(!err.contains("TOPSECRET"));
}

on_both_backends!(
    serves_https_when_configured,
    graceful_shutdown_answers_waits_and_leaves_jobs_running,
    secrets_stay_out_of_trace_logs,
    sigkilled_run_is_reattached_by_the_retry,
    crash_between_submit_and_record_ends_with_one_submission,
    sigterm_leaves_the_job_running,
    explicit_cancel_from_the_cli,
);

/// Starts `tether serve` with extra config and waits until `/readyz` answers on `base`.
async fn start_serve(h: &Harness, db: &TestDb, sim: &Simulator, api: &str, log: &str) -> Child {
    std::fs::write(&h.config, config_toml(db, &sim.url(), "2s", api)).unwrap();
    h.tether(&["serve"], log).spawn().unwrap()
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    let start = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{base} never became ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `POST /v1/jobs` for etl/r1/load as the admin.
async fn ensure_over_http(client: &reqwest::Client, base: &str) -> serde_json::Value {
    client
        .post(format!("{base}/v1/jobs"))
        .bearer_auth(ADMIN)
        .json(
            &serde_json::json!({"dag_id": "etl", "run_id": "r1", "task_id": "load", "try_number": 1,
                                  "provider": "databricks", "spec": common::spec("load")}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

const ADMIN: &str = "process-admin-token-0123456789abcdef";

fn api_config(port: u16, extra: &str) -> String {
    format!(
        "\n[api]\nlisten = \"127.0.0.1:{port}\"\nadmin_token_sha256 = [\"{}\"]\n{extra}",
        tether::api::auth::hash_token(ADMIN)
    )
}

/// HTTPS from `api.tls_cert` / `api.tls_key`.
async fn serves_https_when_configured(db: TestDb) {
    let sim = quick_sim().await;
    let h = Harness::new(&db, &sim, "2s");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (h.dir.path().join("cert.pem"), h.dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let port = free_port();
    let tls = format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert_path.display(),
        key_path.display()
    );
    let mut serve = start_serve(&h, &db, &sim, &api_config(port, &tls), "tls").await;
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let base = format!("https://localhost:{port}");
    wait_ready(&client, &base).await;
    let r = client
        .get(format!("{base}/v1/jobs"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let plain = reqwest::get(format!("http://localhost:{port}/healthz")).await;
    assert!(
        plain.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP must not be served"
    );
    signal(&serve, Signal::SIGTERM);
    assert!(
        exit_within(&mut serve, Duration::from_secs(15))
            .await
            .success(),
        "{:?}",
        h.output("tls")
    );
}

/// SIGTERM: the server stops accepting, a long poll in flight is answered, the leases are
/// released, and the remote job keeps running.
async fn graceful_shutdown_answers_waits_and_leaves_jobs_running(db: TestDb) {
    let sim = quick_sim().await;
    sim.configure(|c| c.running = Duration::from_secs(60));
    let h = Harness::new(&db, &sim, "2s");
    let port = free_port();
    let mut serve = start_serve(&h, &db, &sim, &api_config(port, ""), "graceful").await;
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&client, &base).await;
    let ensured = ensure_over_http(&client, &base).await;
    let id = ensured["job"]["id"].as_i64().unwrap();
    let app = app_for(&db, &sim.url(), "2s", "").await;
    wait_job(
        &app,
        "load",
        Duration::from_secs(20),
        "RUNNING under serve's lease",
        |j| j.state == JobState::Running && j.lease_owner.is_some(),
    )
    .await;
    let waiter = tokio::spawn({
        let client = client.clone();
        let url = format!("{base}/v1/jobs/{id}/wait?state=running&timeout=50");
        async move { client.get(url).bearer_auth(ADMIN).send().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = Instant::now();
    signal(&serve, Signal::SIGTERM);
    let answer = waiter
        .await
        .unwrap()
        .expect("the long poll is answered, not cut");
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["changed"], false);
    let status = exit_within(&mut serve, Duration::from_secs(15)).await;
    assert!(status.success(), "{:?}", h.output("graceful"));
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        asked.elapsed()
    );
    let job = app
        .engine
        .jobs()
        .get(tether::model::JobId(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.lease_owner, None, "leases released");
    let run_id = job.handle.unwrap().get_i64("run_id").unwrap();
    assert_eq!(sim.run_state(run_id).as_deref(), Some("RUNNING"));
    assert_eq!(sim.stats().cancels, 0);
    assert!(
        reqwest::get(format!("{base}/healthz")).await.is_err(),
        "no longer accepting"
    );
}

/// Several supervisors share PostgreSQL. These tests need it; without
/// TETHER_TEST_POSTGRES_URL they are skipped (and fail under CI).
mod postgres_supervisors {
    use super::*;

    async fn owners(app: &App, tasks: &[&str]) -> Vec<Option<String>> {
        let mut out = vec![];
        for t in tasks {
            out.push(
                app.engine
                    .jobs()
                    .latest(&ti(t), "main")
                    .await
                    .unwrap()
                    .and_then(|j| j.lease_owner),
            );
        }
        out
    }

    /// A TCP proxy to PostgreSQL that can be cut (every connection dropped, new ones refused)
    /// and restored: a database outage without stopping the shared server.
    struct Proxy {
        port: u16,
        up: std::sync::Arc<std::sync::atomic::AtomicBool>,
        conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    }

    impl Proxy {
        async fn start(target: String) -> Self {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
            let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let (up2, conns2) = (up.clone(), conns.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        return;
                    };
                    if !up2.load(std::sync::atomic::Ordering::SeqCst) {
                        continue; // dropped: the client sees the connection closed
                    }
                    let target = target.clone();
                    let task = tokio::spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    conns2.lock().unwrap().push(task.abort_handle());
                }
            });
            Self { port, up, conns }
        }

        fn cut(&self) {
            self.up.store(false, std::sync::atomic::Ordering::SeqCst);
            for c in self.conns.lock().unwrap().drain(..) {
                c.abort();
            }
        }

        fn restore(&self) {
            self.up.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// The database unreachable: the API answers 503 with a clear body, the supervisor keeps
    /// retrying, and when the database is back the job finishes and nothing was lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn database_outage_is_503_and_nothing_is_lost() {
        let Some(db) = TestDb::postgres("database_outage_is_503_and_nothing_is_lost").await else {
            return;
        };
        let sim = quick_sim().await;
        sim.configure(|c| c.running = Duration::from_secs(6));
        let host_port = db
            .url
            .expose()
            .split('@')
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let proxy = Proxy::start(host_port.clone()).await;
        let proxied = db.alias(
            tether::db::DatabaseUrl::parse(
                &db.url
                    .expose()
                    .replace(&host_port, &format!("127.0.0.1:{}", proxy.port)),
            )
            .unwrap(),
        );
        let h = Harness::new(&db, &sim, "2s");
        let port = free_port();
        let mut serve = start_serve(&h, &proxied, &sim, &api_config(port, ""), "outage").await;
        let client = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        wait_ready(&client, &base).await;
        let ensured = ensure_over_http(&client, &base).await;
        let id = ensured["job"]["id"].as_i64().expect("ensured");
        let app = app_for(&db, &sim.url(), "2s", "").await;
        wait_job(&app, "load", Duration::from_secs(20), "RUNNING", |j| {
            j.state == JobState::Running
        })
        .await;

        proxy.cut();
        let r = client
            .get(format!("{base}/v1/jobs/{id}"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            reqwest::StatusCode::SERVICE_UNAVAILABLE,
            "{:?}",
            h.output("outage").1
        );
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "unavailable");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("database is unreachable"),
            "{body}"
        );
        let r = client.get(format!("{base}/readyz")).send().await.unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
        let r = client.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(
            r.status(),
            reqwest::StatusCode::OK,
            "the process itself is up"
        );
        tokio::time::sleep(Duration::from_secs(3)).await; // longer than the lease

        proxy.restore();
        let job = wait_job(
            &app,
            "load",
            Duration::from_secs(40),
            "the job to finish after the outage",
            |j| j.phase == Phase::Terminal,
        )
        .await;
        assert_eq!(job.state, JobState::Succeeded);
        let r = client
            .get(format!("{base}/v1/jobs/{id}"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::OK);
        assert_eq!(sim.stats().submissions, 1);
        assert_eq!(sim.stats().cancels, 0);
        signal(&serve, Signal::SIGTERM);
        assert!(
            exit_within(&mut serve, Duration::from_secs(15))
                .await
                .success(),
            "{:?}",
            h.output("outage")
        );
    }

    /// Kill one `tether serve`; the other finishes its jobs once the leases expire.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_killed_supervisors_jobs_are_finished_by_another() {
        let Some(db) = TestDb::postgres("a_killed_supervisors_jobs_are_finished_by_another").await
        else {
            return;
        };
        let sim = quick_sim().await;
        sim.configure(|c| c.running = Duration::from_secs(4));
        let h = Harness::new(&db, &sim, "2s");
        let app = app_for(&db, &sim.url(), "2s", "").await;
        let tasks = ["a", "b", "c"];
        for t in tasks {
            let req = tether::engine::EnsureRequest {
                task_instance: ti(t),
                try_number: 1,
                name: "main".into(),
                provider: "databricks".into(),
                spec: common::spec(t),
            };
            app.engine.ensure(&req).await.unwrap();
        }
        let mut a = h.tether(&["serve"], "serve-a").spawn().unwrap();
        let start = Instant::now();
        let owner_a = loop {
            let o = owners(&app, &tasks).await;
            if o.iter().all(Option::is_some) && o.iter().all(|x| x == &o[0]) {
                break o[0].clone().unwrap();
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "A never claimed all jobs: {o:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut b = h.tether(&["serve"], "serve-b").spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        signal(&a, Signal::SIGKILL);
        exit_within(&mut a, Duration::from_secs(5)).await;
        for t in tasks {
            let job = wait_job(
                &app,
                t,
                Duration::from_secs(40),
                "B to finish A's job",
                |j| j.phase == Phase::Terminal,
            )
            .await;
            assert_eq!(job.state, JobState::Succeeded);
            let events = app.engine.jobs().events(job.id).await.unwrap();
            let finished = events.iter().find(|e| e.kind == "finished").unwrap();
            assert_ne!(
                finished.actor, owner_a,
                "finished by the surviving supervisor"
            );
        }
        signal(&b, Signal::SIGTERM);
        let status = exit_within(&mut b, Duration::from_secs(10)).await;
        assert!(status.success(), "{:?}", h.output("serve-b"));
        assert_eq!(sim.stats().submissions, 3);
        assert_eq!(sim.stats().cancels, 0);
    }

    /// Fencing: a supervisor paused (SIGSTOP) in the middle of a poll loses its lease to
    /// another; when it resumes, its write is refused and it says so.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_paused_supervisor_cannot_overwrite_after_losing_its_lease() {
        let Some(db) =
            TestDb::postgres("a_paused_supervisor_cannot_overwrite_after_losing_its_lease").await
        else {
            return;
        };
        let sim = quick_sim().await;
        sim.configure(|c| c.running = Duration::from_secs(8));
        let h = Harness::new(&db, &sim, "2s");
        let app = app_for(&db, &sim.url(), "2s", "").await;
        let req = tether::engine::EnsureRequest {
            task_instance: ti("paused"),
            try_number: 1,
            name: "main".into(),
            provider: "databricks".into(),
            spec: common::spec("paused"),
        };
        app.engine.ensure(&req).await.unwrap();
        let mut a = h.tether(&["serve"], "serve-a").spawn().unwrap();
        let held = wait_job(
            &app,
            "paused",
            Duration::from_secs(20),
            "A to poll under its lease",
            |j| j.lease_owner.is_some() && j.state == JobState::Running,
        )
        .await;
        let owner_a = held.lease_owner.clone().unwrap();
        // Hold A's next status call in the simulator, and freeze A while it waits.
        let before = sim.stats().requests;
        sim.inject(Fault {
            endpoint: Some(Endpoint::Get),
            kind: FaultKind::Delay(Duration::from_millis(1500)),
            times: 1,
        });
        let start = Instant::now();
        while sim.stats().requests == before {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "A never polled again"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        signal(&a, Signal::SIGSTOP);
        let stopped_at = chrono::Utc::now();
        // The held answer will report a change (the run ends meanwhile), so A, resumed, tries
        // to write it: a poll that changed nothing writes nothing.
        let run_id = held.handle.as_ref().unwrap().get_i64("run_id").unwrap();
        sim.finish_run(run_id, "SUCCESS");
        tokio::time::sleep(Duration::from_secs(3)).await; // A's lease runs out
        let mut b = h.tether(&["serve"], "serve-b").spawn().unwrap();
        let taken = wait_job(
            &app,
            "paused",
            Duration::from_secs(20),
            "B to take the lease",
            // B claims (a new epoch), and may finish the job at once: the run has ended.
            |j| j.lease_epoch > held.lease_epoch,
        )
        .await;
        assert!(taken.lease_epoch > held.lease_epoch);
        signal(&a, Signal::SIGCONT);
        let job = wait_job(
            &app,
            "paused",
            Duration::from_secs(40),
            "the job to finish",
            |j| j.phase == Phase::Terminal,
        )
        .await;
        assert_eq!(job.state, JobState::Succeeded);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let events = app.engine.jobs().events(job.id).await.unwrap();
        let late: Vec<_> = events
            .iter()
            .filter(|e| e.actor == owner_a && e.at > stopped_at)
            .collect();
        assert!(late.is_empty(), "A wrote after losing its lease: {late:?}");
        let (_, err_a) = h.output("serve-a");
        assert!(
            err_a.contains("lease lost: another supervisor polls this job now"),
            "A's fenced write must be refused:\n{err_a}"
        );
        for child in [&a, &b] {
            signal(child, Signal::SIGTERM);
        }
        exit_within(&mut a, Duration::from_secs(10)).await;
        exit_within(&mut b, Duration::from_secs(10)).await;
        assert_eq!(sim.stats().submissions, 1);
    }
}
