//! Durability under the faults a platform has, with real `tether serve` processes and real
//! faults: the disk under SQLite fills up and empties again, PostgreSQL refuses connections,
//! the API's port is taken. In each: no acknowledged write lost, no remote job without a
//! record, every failure a 503 that names its cause, recovery by itself, a bounded shutdown.
//!
//! Clock skew has its own file (`tests/skew.rs`).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{json, Value};
use tether::app::App;
use tether::config::Config;
use tether::db::DatabaseUrl;
use tether::state::{Scope, TaskInstanceId};

use common::procs::{spec, tether, Sim};
use common::{exit_within, free_port, signal, TestDb};

const ADMIN: &str = "faults-admin-token-0123456789abcdef";

/// A `tether serve` config: this database, the API on `port`, one AWS account of `kind` at the
/// simulator, and `extra` (more TOML) at the end.
fn serve_config(url: &DatabaseUrl, port: u16, kind: &str, sim: &Sim, extra: &str) -> String {
    format!(
        r#"
[database]
url = "{url}"
connect_timeout = "2s"
{extra}

[supervisor]
lease = "3s"
shutdown_grace = "5s"

[api]
listen = "127.0.0.1:{port}"
admin_token_sha256 = ["{admin}"]

[providers.{kind}]
kind = "{kind}"
region = "us-east-1"
endpoint_url = "{sim}"
poll_initial = "200ms"
poll_max = "500ms"
request_timeout = "2s"
max_retries = 2
not_found_grace = "2s"
"#,
        url = url.expose(),
        admin = tether::api::auth::hash_token(ADMIN),
        sim = sim.url,
    )
}

async fn start_serve(dir: &Path, config: &str, log: &str) -> tokio::process::Child {
    let path = dir.join(format!("{log}.toml"));
    std::fs::write(&path, config).unwrap();
    tether()
        .arg("--config")
        .arg(&path)
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{log}.err"))).unwrap())
        .spawn()
        .unwrap()
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("tether serve did not become ready at {base}");
}

/// What the clients saw: each status code, and each 5xx body.
#[derive(Debug, Default)]
struct Seen {
    statuses: HashMap<u16, u64>,
    /// The 5xx answers (status, body), the first few.
    errors: Vec<(u16, String)>,
    /// The 503s' `Retry-After`, all present?
    retry_after_missing: u64,
}

impl Seen {
    fn note(&mut self, status: u16, retry_after: Option<&str>, body: &str) {
        *self.statuses.entry(status).or_default() += 1;
        if status >= 500 && self.errors.len() < 2000 {
            self.errors.push((status, body.to_string()));
        }
        if status == 503 && retry_after.is_none() {
            self.retry_after_missing += 1;
        }
    }

    /// 5xx answers other than 503.
    fn other_5xx(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| **s >= 500 && **s != 503)
            .map(|(_, n)| n)
            .sum()
    }

    fn of(&self, status: u16) -> u64 {
        self.statuses.get(&status).copied().unwrap_or(0)
    }
}

/// Reads an answer whole and notes it in `seen`: its status and body.
async fn read_answer(r: reqwest::Response, seen: &Mutex<Seen>) -> (u16, String) {
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or("").to_string());
    let text = r.text().await.unwrap_or_default();
    seen.lock().unwrap().note(status, retry.as_deref(), &text);
    (status, text)
}

/// The load: `writers` clients each writing its own keys over and over (the value counts up),
/// and one client ensuring a new job every 100 ms, retrying a 503 as the Airflow hook does.
/// Runs until `stop`; returns the last acknowledged value of each key and the ensures that were
/// answered 200 (task id, job id).
struct Load {
    acked: Arc<Mutex<HashMap<String, i64>>>,
    ensured: Arc<Mutex<Vec<(String, i64)>>>,
    seen: Arc<Mutex<Seen>>,
    stop: tokio_util::sync::CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(base: &str, writers: usize, keys: usize, ensure_kind: &str) -> Self {
        let acked = Arc::new(Mutex::new(HashMap::new()));
        let ensured = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = tokio_util::sync::CancellationToken::new();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let mut tasks = Vec::new();
        for w in 0..writers {
            let (client, base, acked, seen, stop) = (
                client.clone(),
                base.to_string(),
                acked.clone(),
                seen.clone(),
                stop.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let pad = "p".repeat(1500);
                let mut n = 0i64;
                while !stop.is_cancelled() {
                    n += 1;
                    let key = format!("k{}", n as usize % keys);
                    let url = format!("{base}/v1/state/task-instances/load/r1/w{w}/-1/keys/{key}");
                    let sent = client
                        .put(url)
                        .bearer_auth(ADMIN)
                        .json(&json!({"value": {"n": n, "pad": pad}}))
                        .send()
                        .await;
                    if let Ok(r) = sent {
                        let (status, _) = read_answer(r, &seen).await;
                        if status == 200 {
                            acked.lock().unwrap().insert(format!("w{w}/{key}"), n);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }));
        }
        let (client, base, ensured_by, seen_by, stop_by, kind) = (
            client.clone(),
            base.to_string(),
            ensured.clone(),
            seen.clone(),
            stop.clone(),
            ensure_kind.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            let (ensured, seen, stop) = (ensured_by, seen_by, stop_by);
            let mut i = 0;
            while !stop.is_cancelled() {
                let task = format!("t{i:04}");
                i += 1;
                let body = json!({"dag_id": "load", "run_id": "r1", "task_id": task,
                                  "try_number": 1, "provider": kind, "spec": spec(&kind, &task)});
                // As the Airflow hook: a 503 is asked again (the same request), until answered.
                while !stop.is_cancelled() {
                    let Ok(r) = client
                        .post(format!("{base}/v1/jobs"))
                        .bearer_auth(ADMIN)
                        .json(&body)
                        .send()
                        .await
                    else {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    };
                    let (status, text) = read_answer(r, &seen).await;
                    if status == 200 {
                        let v: Value = serde_json::from_str(&text).unwrap();
                        let id = v["job"]["id"].as_i64().unwrap();
                        ensured.lock().unwrap().push((task.clone(), id));
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
        Self {
            acked,
            ensured,
            seen,
            stop,
            tasks,
        }
    }

    async fn finish(self) -> (HashMap<String, i64>, Vec<(String, i64)>, Seen) {
        self.stop.cancel();
        for t in self.tasks {
            t.await.unwrap();
        }
        let take = |m: Arc<Mutex<Seen>>| std::mem::take(&mut *m.lock().unwrap());
        (
            std::mem::take(&mut *self.acked.lock().unwrap()),
            std::mem::take(&mut *self.ensured.lock().unwrap()),
            take(self.seen),
        )
    }

    /// Waits until an answer `pred` accepts arrives (counted from now), up to `within`.
    async fn until(&self, within: Duration, what: &str, pred: impl Fn(&Seen) -> bool) {
        let start = Instant::now();
        while start.elapsed() < within {
            if pred(&self.seen.lock().unwrap()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{what}: not within {within:?}: {:?}",
            self.seen.lock().unwrap().statuses
        );
    }

    fn count(&self, status: u16) -> u64 {
        self.seen.lock().unwrap().of(status)
    }
}

/// Every acknowledged value is in the database (a later value of the same key may be too: a
/// write whose answer never arrived). Returns how many keys were checked.
async fn check_acknowledged(app: &App, acked: &HashMap<String, i64>) -> usize {
    let mut lost = Vec::new();
    for (path, n) in acked {
        let (writer, key) = path.split_once('/').unwrap();
        let scope = Scope::TaskInstance(TaskInstanceId::new("load", "r1", writer, -1));
        let found = app
            .state
            .get(&scope, key)
            .await
            .unwrap()
            .map(|e| e.value["n"].as_i64().unwrap());
        if found.is_none_or(|f| f < *n) {
            lost.push(format!(
                "{path}: acknowledged n={n}, the database holds {found:?}"
            ));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(10)]
    );
    acked.len()
}

/// Every remote job the simulator made has a record with its key and handle, and no key has
/// two remote jobs. Returns how many remote jobs there were.
async fn check_remote_jobs(app: &App, sim: &Sim) -> u64 {
    let stats = sim.stats().await;
    let by_key = stats["by_key"].as_object().cloned().unwrap_or_default();
    let jobs = app
        .engine
        .jobs()
        .list(&tether::db::jobs::JobFilter {
            limit: 100_000,
            ..Default::default()
        })
        .await
        .unwrap();
    let recorded: HashMap<&str, &tether::jobs::JobRecord> = jobs
        .iter()
        .map(|j| (j.idempotency_key.as_str(), j))
        .collect();
    let mut total = 0;
    for (key, n) in &by_key {
        let n = n.as_u64().unwrap();
        total += n;
        assert_eq!(n, 1, "key {key}: {n} remote jobs");
        let job = recorded
            .get(key.as_str())
            .unwrap_or_else(|| panic!("a remote job for key {key} has no record"));
        assert!(
            job.handle.is_some() || job.phase == tether::jobs::Phase::Submitting,
            "{job:?}"
        );
    }
    total
}

/// A tmpfs of `size` mounted on a new folder (root only), unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Self, String> {
        if !nix::unistd::Uid::effective().is_root() {
            return Err("needs root to mount a tmpfs".into());
        }
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !status.success() {
            return Err(format!("mount -t tmpfs failed ({status})"));
        }
        Ok(Self {
            dir,
            _parent: parent,
        })
    }

    /// Writes a file until the file system is full; returns its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.dir.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let small = vec![0u8; 512];
        while f.write_all(&small).is_ok() {}
        let _ = f.flush();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

/// How many connections `role` has open now.
async fn connections(conn: &mut sqlx::PgConnection, role: &str) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM pg_stat_activity WHERE usename = $1")
        .bind(role)
        .fetch_one(conn)
        .await
        .unwrap()
}

fn skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// SQLite on a small file system that fills up while writes and ensures run, and empties 8 s
/// later: every write the API acknowledged is in the file afterwards, every remote job has a
/// record, the full disk is answered 503 naming the disk (with `Retry-After`) and never 500, the
/// server recovers by itself once space is back, and SIGTERM ends it in bounded time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_loses_no_acknowledged_write() {
    let fs = match Tmpfs::mount("8m") {
        Ok(fs) => fs,
        Err(why) if std::env::var_os("CI").is_none() => {
            return skipped("a_full_disk_loses_no_acknowledged_write", &why);
        }
        Err(why) => panic!("CI runs as root and must run this test: {why}"),
    };
    let sim = Sim::start_with("emr", "2s", &[]).await;
    let url = DatabaseUrl::sqlite_file(&fs.dir.join("tether.db"));
    let logs = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = serve_config(&url, port, "emr", &sim, "");
    let mut serve = start_serve(logs.path(), &config, "serve").await;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;

    let load = Load::start(&base, 8, 50, "emr");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let filler = fs.fill();
    // The fault shows: 503s that say the disk is full, never a 500.
    load.until(Duration::from_secs(20), "a 503 during the full disk", |s| {
        s.errors
            .iter()
            .any(|(st, body)| *st == 503 && body.contains("disk is full"))
    })
    .await;
    // The command line names the cause too: a write of 50 KB (new pages) fails "disk full".
    let big = format!("\"{}\"", "d".repeat(50_000));
    let mut cli_error = None;
    for _ in 0..10 {
        let out = tether()
            .arg("--database-url")
            .arg(url.expose())
            .args([
                "state", "set", "big", &big, "--dag", "load", "--run", "r1", "--task", "cli",
            ])
            .output()
            .await
            .unwrap();
        if !out.status.success() {
            cli_error = Some((
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).to_string(),
            ));
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    std::fs::remove_file(&filler).unwrap();
    let ok_at_free = load.count(200);
    // Recovery by itself: writes are acknowledged again.
    load.until(
        Duration::from_secs(30),
        "writes acknowledged after space is back",
        |s| s.of(200) > ok_at_free + 50,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (acked, ensured, seen) = load.finish().await;

    // Bounded shutdown (the grace is 5 s).
    let stopping = Instant::now();
    signal(&serve, Signal::SIGTERM);
    exit_within(&mut serve, Duration::from_secs(15)).await;
    let stopped_in = stopping.elapsed();
    let log = std::fs::read_to_string(logs.path().join("serve.err")).unwrap();

    let app = App::open(Config::defaults().unwrap().with_database_url(url.clone()))
        .await
        .unwrap();
    let keys = check_acknowledged(&app, &acked).await;
    let remote = check_remote_jobs(&app, &sim).await;
    println!(
        "full disk: {keys} keys acknowledged, all present; {} ensures answered, {remote} remote \
         jobs, each recorded; answers {:?}; SIGTERM took {stopped_in:?}",
        ensured.len(),
        seen.statuses
    );
    assert_eq!(
        seen.other_5xx(),
        0,
        "only 503s: {:?}\n{log}",
        &seen.errors[..seen.errors.len().min(5)]
    );
    assert_eq!(seen.retry_after_missing, 0, "every 503 says when to retry");
    assert!(seen.of(503) > 0, "the disk filled up: {:?}", seen.statuses);
    assert!(!ensured.is_empty());
    let (code, stderr) = cli_error.expect("a 50 KB write on a full disk fails");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("disk full") && !stderr.contains("locked"),
        "the CLI names the full disk: {stderr}"
    );
    assert!(!log.contains("panicked"), "tether serve panicked:\n{log}");
}

/// `tether serve` with its API port taken: one line naming the address, exit 1, before any
/// job is claimed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_named_before_anything_is_claimed() {
    let db = TestDb::sqlite().await;
    let sim = Sim::start("emr", &[]).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let app = db.app().await;
    // A job whose submitter died: any supervisor that starts would claim it at once.
    let req = tether::engine::EnsureRequest {
        task_instance: TaskInstanceId::new("etl", "r1", "orphan", -1),
        try_number: 1,
        name: "main".into(),
        provider: "emr".into(),
        spec: spec("emr", "orphan"),
    };
    let orphan = common::orphan_intent(&app, &req, -1000).await;
    let logs = tempfile::tempdir().unwrap();
    let mut serve = start_serve(
        logs.path(),
        &serve_config(&db.url, port, "emr", &sim, ""),
        "serve",
    )
    .await;
    let status = exit_within(&mut serve, Duration::from_secs(20)).await;
    let err = std::fs::read_to_string(logs.path().join("serve.err")).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("an error line: {err}"));
    assert!(
        line.contains(&format!("127.0.0.1:{port}")) && line.contains("in use"),
        "{line}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let job = app.engine.jobs().get(orphan.id).await.unwrap().unwrap();
    assert_eq!(
        job.lease_owner.as_deref(),
        Some("dead-worker"),
        "not claimed"
    );
    assert_eq!(job.lease_epoch, orphan.lease_epoch);
    drop(taken);
}

/// PostgreSQL refuses tether's connections for 10 s (its role's `CONNECTION LIMIT` is set to 0
/// and its connections are ended), while writes and ensures run through one `tether serve`:
/// only 503s with `Retry-After`, never a 500; everything acknowledged is kept; requests succeed
/// again once connections are allowed; and the pool never holds more than its size, and
/// shrinks back when idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_503_and_lose_nothing() {
    refused_connections(
        "refused_connections_are_503_and_lose_nothing",
        Refusal::RoleLimit,
    )
    .await;
}

/// The same, with the database set not to accept connections at all (`ALTER DATABASE ...
/// ALLOW_CONNECTIONS false`, as an operator does before maintenance): PostgreSQL answers a new
/// connection with SQLSTATE 55000, which no list of "unavailable" codes named (issue 32,
/// finding 10): any failure to obtain a connection is "unavailable".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_not_accepting_connections_is_503_and_loses_nothing() {
    refused_connections(
        "a_database_not_accepting_connections_is_503",
        Refusal::DatabaseClosed,
    )
    .await;
}

/// How PostgreSQL is made to refuse tether's new connections.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// The role's `CONNECTION LIMIT` set to 0 (SQLSTATE 53300, too many connections).
    RoleLimit,
    /// The database's `ALLOW_CONNECTIONS` set to false (SQLSTATE 55000).
    DatabaseClosed,
}

impl Refusal {
    fn refuse(self, role: &str, db: &str) -> String {
        match self {
            Refusal::RoleLimit => format!("ALTER ROLE {role} CONNECTION LIMIT 0"),
            Refusal::DatabaseClosed => format!("ALTER DATABASE {db} ALLOW_CONNECTIONS false"),
        }
    }

    fn allow(self, role: &str, db: &str) -> String {
        match self {
            Refusal::RoleLimit => format!("ALTER ROLE {role} CONNECTION LIMIT 20"),
            Refusal::DatabaseClosed => format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true"),
        }
    }
}

async fn refused_connections(test: &str, refusal: Refusal) {
    let Some(db) = TestDb::postgres(test).await else {
        return;
    };
    let admin = std::env::var("TETHER_TEST_POSTGRES_URL").unwrap();
    let mut admin_conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap();
    let name = db.url.expose().rsplit('/').next().unwrap().to_string();
    let role = format!("{name}_role");
    // Roles left by an earlier run that stopped halfway (they own no database any more).
    let stale: Vec<String> = sqlx::query_scalar(
        "SELECT rolname FROM pg_roles r WHERE rolname LIKE 'tether_test_%_role' \
         AND NOT EXISTS (SELECT 1 FROM pg_database d WHERE d.datdba = r.oid)",
    )
    .fetch_all(&mut admin_conn)
    .await
    .unwrap();
    for old in stale {
        let _ = sqlx::Executor::execute(&mut admin_conn, format!("DROP ROLE {old}").as_str()).await;
    }
    for sql in [
        format!("CREATE ROLE {role} LOGIN CONNECTION LIMIT 20"),
        format!("ALTER DATABASE {name} OWNER TO {role}"),
    ] {
        sqlx::Executor::execute(&mut admin_conn, sql.as_str())
            .await
            .unwrap();
    }
    let mut url = url::Url::parse(db.url.expose()).unwrap();
    url.set_username(&role).unwrap();
    let as_role = DatabaseUrl::parse(url.as_str()).unwrap();
    let sim = Sim::start_with("emr", "2s", &[]).await;
    let logs = tempfile::tempdir().unwrap();
    let port = free_port();
    let pool = 4;
    let config = serve_config(
        &as_role,
        port,
        "emr",
        &sim,
        &format!("max_connections = {pool}\nidle_timeout = \"2s\""),
    );
    let mut serve = start_serve(logs.path(), &config, "serve").await;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;

    let load = Load::start(&base, 12, 20, "emr");
    let mut most = 0;
    for _ in 0..20 {
        most = most.max(connections(&mut admin_conn, &role).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The fault: no new connection for the role, and its open ones ended.
    for sql in [
        refusal.refuse(&role, &name),
        format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"),
    ] {
        sqlx::Executor::execute(&mut admin_conn, sql.as_str())
            .await
            .unwrap();
    }
    load.until(Duration::from_secs(20), "a 503 while refused", |s| {
        s.of(503) > 0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    sqlx::Executor::execute(&mut admin_conn, refusal.allow(&role, &name).as_str())
        .await
        .unwrap();
    let ok_at_restore = load.count(200);
    load.until(Duration::from_secs(30), "requests answered again", |s| {
        s.of(200) > ok_at_restore + 50
    })
    .await;
    for _ in 0..20 {
        most = most.max(connections(&mut admin_conn, &role).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (acked, ensured, seen) = load.finish().await;
    // Idle again: the pool hands its connections back (idle_timeout 2 s), but for the
    // job-change listener and what the supervisor uses.
    let start = Instant::now();
    let mut idle = connections(&mut admin_conn, &role).await;
    while idle > 3 && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        idle = connections(&mut admin_conn, &role).await;
    }
    signal(&serve, Signal::SIGTERM);
    exit_within(&mut serve, Duration::from_secs(15)).await;
    let log = std::fs::read_to_string(logs.path().join("serve.err")).unwrap();

    let app = App::open(
        Config::defaults()
            .unwrap()
            .with_database_url(db.url.clone()),
    )
    .await
    .unwrap();
    let keys = check_acknowledged(&app, &acked).await;
    let remote = check_remote_jobs(&app, &sim).await;
    println!(
        "refused connections ({refusal:?}): answers {:?}; {keys} keys acknowledged, all present; {} ensures, \
         {remote} remote jobs, each recorded; at most {most} connections (pool {pool} + \
         listener), {idle} when idle",
        seen.statuses,
        ensured.len()
    );
    assert_eq!(
        seen.other_5xx(),
        0,
        "only 503s: {:?}\n{log}",
        &seen.errors[..seen.errors.len().min(5)]
    );
    assert_eq!(seen.retry_after_missing, 0, "every 503 says when to retry");
    assert!(
        most <= pool + 1,
        "at most the pool and the listener: {most}"
    );
    assert!(idle <= 3, "idle connections are handed back: {idle} left");
    drop(app);
    drop(admin_conn);
    // The role goes once its database is dropped (by TestDb), from a fresh connection then.
    let role_drop = role.clone();
    drop(db);
    if let Ok(mut c) = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await {
        let sql = format!("DROP ROLE IF EXISTS {role_drop}");
        if let Err(e) = sqlx::Executor::execute(&mut c, sql.as_str()).await {
            eprintln!("could not drop role {role_drop}: {e}");
        }
    }
}
