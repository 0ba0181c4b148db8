//! Test databases: a temp SQLite file, or a fresh PostgreSQL database that is dropped again.
//!
//! PostgreSQL tests use the server named by `TETHER_TEST_POSTGRES_URL` (an admin URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`). Without it they print that they were
//! skipped, except under CI (`CI` set), where a missing URL fails the test.
//!
//! [`procs`] runs real `tether` processes against `tether sim` child processes.

#![allow(dead_code)]

pub mod procs;

use std::sync::Arc;

use tether::app::App;
use tether::clock::{Clock, SystemClock};
use tether::config::Config;
use tether::db::DatabaseUrl;
use tether::state::StateSettings;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A database that exists for one test.
pub struct TestDb {
    /// Its URL.
    pub url: DatabaseUrl,
    /// Which backend, for messages.
    pub backend: &'static str,
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL database, dropped with this.
    _pg: Option<tether_testkit::Database>,
}

impl TestDb {
    /// A new SQLite file in a temp folder.
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = DatabaseUrl::sqlite_file(&dir.path().join("tether.db"));
        Self {
            url,
            backend: "sqlite",
            _dir: Some(dir),
            _pg: None,
        }
    }

    /// A new PostgreSQL database, or `None` (with a message) when PostgreSQL tests are off
    /// (`TETHER_TEST_POSTGRES_URL` not set, which fails under CI).
    pub async fn postgres(test: &str) -> Option<Self> {
        let db = tether_testkit::Database::postgres(&format!("postgres::{test}")).await?;
        Some(Self {
            url: DatabaseUrl::parse(db.url()).unwrap(),
            backend: "postgres",
            _dir: None,
            _pg: Some(db),
        })
    }

    /// Another URL for the same database (through a proxy, say); dropping it drops nothing.
    pub fn alias(&self, url: DatabaseUrl) -> Self {
        Self {
            url,
            backend: self.backend,
            _dir: None,
            _pg: None,
        }
    }

    /// The default configuration pointed at this database.
    pub fn config(&self) -> Config {
        Config::defaults()
            .expect("default config")
            .with_database_url(self.url.clone())
    }

    /// An opened, migrated app with these state settings and clock.
    pub async fn app_with(&self, settings: StateSettings, clock: Arc<dyn Clock>) -> App {
        let mut config = self.config();
        config.state = settings;
        App::open_with_clock(config, clock).await.expect("open app")
    }

    /// An opened, migrated app with default settings on the system clock.
    pub async fn app(&self) -> App {
        self.app_with(StateSettings::default(), Arc::new(SystemClock))
            .await
    }
}

/// Runs each listed `async fn(TestDb)` as two tests, `sqlite::NAME` and `postgres::NAME`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::TestDb::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = $crate::common::TestDb::postgres(stringify!($name)).await {
                        super::$name(db).await;
                    }
                }
            )*
        }
    };
}

/// A tether config (TOML) for this database with a Databricks provider at `host`: short
/// leases and polling intervals so that tests run in seconds. `extra` is appended.
pub fn config_toml(db: &TestDb, host: &str, lease: &str, extra: &str) -> String {
    format!(
        r#"
[database]
url = "{url}"

[supervisor]
lease = "{lease}"
shutdown_grace = "2s"

[providers.databricks]
host = "{host}"
token = "dapi-sim-token"
poll_initial = "100ms"
poll_max = "300ms"
request_timeout = "2s"
max_retries = 3
unknown_after = 3
not_found_grace = "1s"
{extra}
"#,
        url = db.url.expose(),
    )
}

/// Opens an app on `config_toml`.
pub async fn app_for(db: &TestDb, host: &str, lease: &str, extra: &str) -> App {
    let config = Config::from_toml(&config_toml(db, host, lease, extra), "test").expect("config");
    App::open(config).await.expect("open app")
}

/// As [`app_for`], on `clock` as this process's own clock; `supervisor` is added to the
/// `[supervisor]` section.
pub async fn app_with_clock(
    db: &TestDb,
    host: &str,
    lease: &str,
    supervisor: &str,
    clock: Arc<dyn Clock>,
) -> App {
    let text = config_toml(db, host, lease, "").replace(
        "shutdown_grace = \"2s\"",
        &format!("shutdown_grace = \"2s\"\n{supervisor}"),
    );
    let config = Config::from_toml(&text, "test").expect("config");
    App::open_with_clock(config, clock).await.expect("open app")
}

/// A Databricks simulator with runs that take about a second.
pub async fn quick_sim() -> tether_databricks::sim::Simulator {
    tether_databricks::sim::Simulator::start(
        tether_databricks::sim::SimConfig {
            pending: std::time::Duration::from_millis(200),
            running: std::time::Duration::from_millis(800),
            terminating: std::time::Duration::from_millis(100),
            ..Default::default()
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .expect("start simulator")
}

/// A one-time run spec.
pub fn spec(name: &str) -> serde_json::Value {
    serde_json::json!({
        "run_name": name,
        "tasks": [{"task_key": "t", "spark_python_task": {"python_file": "dbfs:/x.py"}}]
    })
}

/// Records an intent the way `ensure` does, then stops, as a worker that died between the
/// write-ahead record and the provider's answer: owned by `dead-worker`, its lease running out
/// `lease_ms` from now.
pub async fn orphan_intent(
    app: &App,
    req: &tether::engine::EnsureRequest,
    lease_ms: i64,
) -> tether::jobs::JobRecord {
    use tether::db::jobs::{NewJob, StateKeyWrite};
    let key = tether::engine::key::idempotency_key(
        &app.engine.key_namespace().value,
        &req.task_instance,
        &req.name,
        1,
    );
    let now = tether::model::Millis::from(chrono::Utc::now());
    let spec_json = req.spec.to_string();
    let hash = tether::engine::key::spec_hash(&req.spec);
    app.engine
        .jobs()
        .insert_intent(
            &NewJob {
                task_instance: &req.task_instance,
                name: &req.name,
                generation: 1,
                idempotency_key: &key,
                provider: &req.provider,
                spec_json: &spec_json,
                spec_hash: &hash,
                try_number: req.try_number,
                owner: "dead-worker",
                now,
                lease_until: now.plus(lease_ms),
                poll_interval_ms: 100,
                repair_of: None,
            },
            |_: &tether::jobs::JobRecord| StateKeyWrite {
                key: format!("tether.job.{}", req.name),
                json: serde_json::json!({"phase": "submitting"}).to_string(),
                expires_at: None,
            },
        )
        .await
        .unwrap()
        .unwrap()
}

/// Waits for a child process to exit, failing the test after `limit`.
pub async fn exit_within(
    child: &mut tokio::process::Child,
    limit: std::time::Duration,
) -> std::process::ExitStatus {
    tokio::time::timeout(limit, child.wait())
        .await
        .expect("the process exits in time")
        .unwrap()
}

/// Sends `sig` to a child process.
pub fn signal(child: &tokio::process::Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id().unwrap() as i32), sig).unwrap();
}

/// Waits (a supervisor running) until every job in `ids` has finished; their records.
pub async fn until_all_done(
    app: &App,
    ids: &[tether::model::JobId],
    limit: std::time::Duration,
) -> Vec<tether::jobs::JobRecord> {
    let stop = tokio_util::sync::CancellationToken::new();
    let sup = tokio::spawn(tether::engine::Supervisor::new(app.engine.clone()).run(stop.clone()));
    let start = std::time::Instant::now();
    let jobs = loop {
        let mut jobs = Vec::new();
        for id in ids {
            jobs.push(app.engine.jobs().get(*id).await.unwrap().unwrap());
        }
        if jobs
            .iter()
            .all(|j| j.phase == tether::jobs::Phase::Terminal)
        {
            break jobs;
        }
        assert!(start.elapsed() < limit, "jobs did not finish: {jobs:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    stop.cancel();
    sup.await.unwrap();
    jobs
}

/// A test's supervisor and the tasks `tether serve` runs beside it, stopped together.
pub struct Served {
    stop: CancellationToken,
    supervisor: JoinHandle<()>,
    tasks: Vec<JoinHandle<()>>,
}

impl Served {
    /// Spawns the tasks `beside` makes with the shared stop token, then `holder`'s supervisor.
    pub fn start(
        holder: &App,
        beside: impl FnOnce(&CancellationToken) -> Vec<JoinHandle<()>>,
    ) -> Self {
        let stop = CancellationToken::new();
        let tasks = beside(&stop);
        let supervisor =
            tokio::spawn(tether::engine::Supervisor::new(holder.engine.clone()).run(stop.clone()));
        Self {
            stop,
            supervisor,
            tasks,
        }
    }

    /// Stops everything and waits until the supervisor and the tasks beside it have returned.
    pub async fn stop(self) {
        self.stop.cancel();
        self.supervisor.await.unwrap();
        for task in self.tasks {
            task.await.unwrap();
        }
    }
}

/// What `tether serve` runs beside its supervisor: the relay of job changes, and
/// (`read_events`) a reader of each of `app`'s event sources.
pub fn serve_parts(app: &App, stop: &CancellationToken, read_events: bool) -> Vec<JoinHandle<()>> {
    let mut tasks = vec![tether::engine::changes::spawn_relay(
        &app.db,
        app.engine.changes().clone(),
        stop.clone(),
    )];
    if read_events {
        tasks.extend(tether::engine::events::spawn_readers(
            &app.engine,
            &app.config.events,
            stop,
        ));
    }
    tasks
}

/// Waits until `done` holds for the job, or `limit` passes; returns the record and when.
pub async fn until(
    app: &App,
    id: tether::model::JobId,
    limit: std::time::Duration,
    done: impl Fn(&tether::jobs::JobRecord) -> bool,
) -> (tether::jobs::JobRecord, std::time::Duration) {
    let started = std::time::Instant::now();
    loop {
        let record = app.engine.jobs().get(id).await.unwrap().expect("job");
        if done(&record) || started.elapsed() > limit {
            return (record, started.elapsed());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
