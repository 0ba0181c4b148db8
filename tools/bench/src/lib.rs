//! `tether-bench`: what tracking many running jobs costs, measured on real processes.
//!
//! The `tracked` scenario starts the Databricks simulator (`tether sim databricks`) and
//! `tether serve` as child processes, seeds N running jobs through the engine, waits until the
//! supervisor has polled each once, then measures over a window: the supervisor's CPU-seconds
//! per second and peak RSS (from `/proc`), provider calls per minute (from the simulator's
//! counters), the share of jobs polled within twice their cadence, and the simulator's own CPU
//! (so that a saturated simulator is said, not mistaken for a slow supervisor). On PostgreSQL,
//! the CPU of the database backends serving the supervisor is reported too.
//!
//! Figures are printed, one per line; nothing is asserted (timings belong to reports, not
//! tests).
//!
//! `--compare-airflow` then runs Airflow's own `DatabricksExecutionTrigger` (N of them in one
//! asyncio loop, `tools/bench/airflow_triggers.py`) against a fresh simulator at the same cadence, and
//! prints the ratios.

mod airflow;
mod api;
mod latency;

pub use airflow::compare_airflow;
pub use api::{api, ApiBench};
pub use latency::{latency, EndRate, LatencyBench, Mode};

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::process::{Child, Command};

use tether::app::App;
use tether::config::Config;
use tether::engine::EnsureRequest;
use tether::model::JobRecord;
use tether::state::TaskInstanceId;
use tether::Error;

/// What the `tracked` scenario runs.
#[derive(Debug, Clone)]
pub struct TrackedBench {
    /// Running jobs to track.
    pub jobs: u32,
    /// How often each job is due.
    pub cadence: Duration,
    /// How long to measure, after every job was polled once.
    pub window: Duration,
    /// `None`: SQLite in a temp folder; else a PostgreSQL admin URL to create a database with.
    pub postgres_admin: Option<String>,
    /// `supervisor.claim_batch` for the supervisor.
    pub claim_batch: u32,
    /// The tether binary that serves the simulator (this one, normally).
    pub binary: PathBuf,
    /// The tether binary whose `serve` is measured.
    pub serve_binary: PathBuf,
    /// After the window: SIGKILL the supervisor, start another, and measure how long until
    /// it has claimed and polled every job (and how many submissions that added).
    pub recovery: bool,
    /// Coalesced polling (`runs/list`) on, or every job polled by its own `runs/get`.
    pub coalesce: bool,
    /// The provider kind whose simulator serves the jobs (any registry kind with one).
    pub provider: String,
}

/// CPU ticks and peak RSS of a process, from `/proc`.
fn proc_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    Some((utime + stime) / ticks)
}

/// `VmHWM` (the peak) or `VmRSS` (now) of a process, in MiB.
fn proc_rss_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// A free loopback port (the OS picks it; free again once the probe closes).
pub(crate) fn free_port() -> Result<u16, Error> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|source| Error::Io {
        context: "finding a free port".into(),
        source,
    })?;
    Ok(listener
        .local_addr()
        .map_err(|source| Error::Io {
            context: "finding a free port".into(),
            source,
        })?
        .port())
}

fn spawn(binary: &Path, args: &[&str], log: &Path) -> Result<Child, Error> {
    let io = |source| Error::Io {
        context: format!("starting {} {}", binary.display(), args.join(" ")),
        source,
    };
    let log = std::fs::File::create(log).map_err(io)?;
    Command::new(binary)
        .args(args)
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .map_err(io)
}

async fn sim_stats(client: &reqwest::Client, url: &str, fresh_within: Duration) -> Value {
    let url = format!(
        "{url}/_sim/stats?fresh_within={}",
        fresh_within.as_secs_f64()
    );
    match client.get(url).send().await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

fn count(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

/// A database for a benchmark: SQLite in `dir`, or with `postgres_admin` a new PostgreSQL
/// database; its URL, and the (admin URL, name) to drop it with afterwards.
async fn create_database(
    postgres_admin: Option<&str>,
    dir: &Path,
) -> Result<(String, Option<(String, String)>), Error> {
    let Some(admin) = postgres_admin else {
        return Ok((format!("sqlite://{}/tether.db", dir.display()), None));
    };
    let name = format!("tether_bench_{}", std::process::id());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(admin)
        .await
        .map_err(|e| Error::Usage(format!("--postgres {admin}: {e}")))?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut conn)
        .await
        .map_err(tether::db::DbError::from)?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .map_err(tether::db::DbError::from)?;
    let mut url = url::Url::parse(admin).map_err(|e| Error::Usage(e.to_string()))?;
    url.set_path(&name);
    Ok((url.to_string(), Some((admin.to_string(), name))))
}

/// Drops what [`create_database`] created on PostgreSQL.
async fn drop_database(pg: Option<(String, String)>) {
    if let Some((admin, name)) = pg {
        if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await;
        }
    }
}

/// Starts the simulator of `kind` with jobs that never end; its URL.
async fn start_sim(
    binary: &Path,
    dir: &Path,
    kind: &str,
    extra: &[String],
) -> Result<(Child, String), Error> {
    let port = free_port()?.to_string();
    let mut args = vec![
        "sim",
        kind,
        "--port",
        &port,
        "--pending",
        "0s",
        "--running",
        "1000000s",
    ];
    args.extend(extra.iter().map(String::as_str));
    let sim = spawn(binary, &args, &dir.join("sim.log"))?;
    // The Kubernetes simulator serves TLS, as an API server does.
    let scheme = if kind == "kubernetes" {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://127.0.0.1:{port}");
    wait_for(&format!("{url}/_sim/stats")).await;
    Ok((sim, url))
}

/// Waits (up to 10 s) until `url` answers.
async fn wait_for(url: &str) {
    // Any certificate: only whether it answers counts.
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap_or_default();
    for _ in 0..100 {
        if http.get(url).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The PostgreSQL backends serving `database`, by pid (for their CPU).
async fn pg_backends(app: &App, database: &str) -> Vec<u32> {
    let rows: Vec<(i32,)> = sqlx::query_as(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(database)
    .fetch_all(app.db.pool())
    .await
    .unwrap_or_default();
    rows.into_iter().map(|(p,)| p as u32).collect()
}

/// Submits `jobs` jobs of `kind` (the simulator's sample spec) through `app`'s engine, 32 at a
/// time, as task instances `bench/{run_id}/t{i}`; their records, in order.
pub(crate) async fn seed(
    app: &App,
    kind: &str,
    jobs: u32,
    run_id: &str,
) -> Result<Vec<JobRecord>, Error> {
    let Some(sims) = tether::registry::simulators(kind) else {
        return Err(Error::Usage(format!("{kind}: no simulator")));
    };
    let engine = app.engine.clone();
    let next = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (engine, next, kind, run_id) = (
            engine.clone(),
            next.clone(),
            kind.to_string(),
            run_id.to_string(),
        );
        workers.spawn(async move {
            let mut made = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= jobs {
                    return Ok::<_, Error>(made);
                }
                let req = EnsureRequest {
                    task_instance: TaskInstanceId::new("bench", &run_id, format!("t{i}"), -1),
                    try_number: 1,
                    name: "main".into(),
                    provider: kind.clone(),
                    spec: sims.sample_spec(&kind, &format!("bench-{i}")),
                };
                made.push((i, engine.ensure(&req).await?.job));
            }
        });
    }
    let mut all = Vec::with_capacity(jobs as usize);
    while let Some(done) = workers.join_next().await {
        all.extend(done.map_err(|e| Error::Usage(format!("seeding failed: {e}")))??);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, job)| job).collect())
}

/// The three figures compared with Airflow's triggers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Figures {
    /// CPU-seconds per second (the supervisor's own; PostgreSQL's backends not included).
    pub cpu: f64,
    /// Peak RSS, MiB.
    pub rss_mib: f64,
    /// Provider calls per minute.
    pub calls_per_minute: f64,
}

/// Runs the `tracked` scenario, prints its figures and returns the main three.
pub async fn tracked(bench: &TrackedBench) -> Result<Figures, Error> {
    let dir = tempfile::tempdir().map_err(|source| Error::Io {
        context: "making a temp folder".into(),
        source,
    })?;
    let cadence = bench.cadence;
    let kind = bench.provider.as_str();
    if tether::registry::simulators(kind).is_none() {
        return Err(Error::Usage(format!(
            "--provider {kind}: not a provider kind with a simulator (kinds: {})",
            tether::registry::kinds().join(", ")
        )));
    }
    let (mut sim, sim_url) = start_sim(&bench.binary, dir.path(), kind, &[]).await?;
    let (db_url, pg_name) = create_database(bench.postgres_admin.as_deref(), dir.path()).await?;
    let secs = cadence.as_secs_f64();
    let account = if kind.starts_with("databricks") {
        format!("kind = \"{kind}\"\nhost = \"{sim_url}\"\ntoken = \"dapi-sim-token\"")
    } else {
        // The AWS simulator's key pair, for this process (seeding) and `tether serve`.
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIATETHERSIMULATOR");
        std::env::set_var(
            "AWS_SECRET_ACCESS_KEY",
            "tether-simulator-secret-key-0123456789",
        );
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        format!("kind = \"{kind}\"\nregion = \"us-east-1\"\nendpoint_url = \"{sim_url}\"")
    };
    let config_text = format!(
        r#"
[database]
url = "{db_url}"

[supervisor]
lease = "30s"
claim_batch = {claim_batch}
max_concurrent_polls = 64

[api]
enabled = false

[providers.{kind}]
{account}
poll_initial = "{secs}s"
poll_max = "{secs}s"
poll_multiplier = 1.0
rate_limit_per_second = 1000000
rate_limit_burst = 100000
coalesce = {coalesce}
"#,
        claim_batch = bench.claim_batch,
        coalesce = bench.coalesce
    );
    let config_path = dir.path().join("tether.toml");
    std::fs::write(&config_path, &config_text).map_err(|source| Error::Io {
        context: "writing the bench config".into(),
        source,
    })?;
    let http = reqwest::Client::new();
    let backend = if pg_name.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    println!(
        "bench tracked: {} running {kind} jobs, due every {}s, {backend}, coalescing {}, window {}s, claim_batch {}",
        bench.jobs,
        secs,
        if bench.coalesce { "on" } else { "off" },
        bench.window.as_secs(),
        bench.claim_batch
    );

    // Seed the jobs through the engine.
    let app = App::open(Config::from_toml(&config_text, "bench")?).await?;
    let seeding = Instant::now();
    seed(&app, kind, bench.jobs, "r1").await?;
    println!(
        "seeded: {} jobs in {:.1}s",
        bench.jobs,
        seeding.elapsed().as_secs_f64()
    );

    // The supervisor, then a warm-up until every job was polled once.
    let config_arg = config_path.to_string_lossy().to_string();
    let mut serve = spawn(
        &bench.serve_binary,
        &["--config", &config_arg, "serve"],
        &dir.path().join("serve.log"),
    )?;
    let serve_pid = serve.id().unwrap_or(0);
    let warm = Instant::now();
    let fresh_window = cadence * 2;
    loop {
        let stats = sim_stats(&http, &sim_url, fresh_window).await;
        if count(&stats, "fresh_runs") >= u64::from(bench.jobs) {
            break;
        }
        if warm.elapsed() > cadence * 4 + Duration::from_secs(60) {
            println!(
                "warm-up: only {} of {} jobs polled after {:.0}s; measuring anyway",
                count(&stats, "fresh_runs"),
                bench.jobs,
                warm.elapsed().as_secs_f64()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "warm-up: every job polled once after {:.1}s",
        warm.elapsed().as_secs_f64()
    );

    // The window.
    let pg_pids = match &pg_name {
        Some((_, name)) => pg_backends(&app, name).await,
        None => Vec::new(),
    };
    let pg_cpu = |pids: &[u32]| {
        pids.iter()
            .filter_map(|p| proc_cpu_seconds(*p))
            .sum::<f64>()
    };
    let sim_pid = sim.id().unwrap_or(0);
    let before = sim_stats(&http, &sim_url, fresh_window).await;
    let (cpu0, sim_cpu0, pg0) = (
        proc_cpu_seconds(serve_pid).unwrap_or(0.0),
        proc_cpu_seconds(sim_pid).unwrap_or(0.0),
        pg_cpu(&pg_pids),
    );
    let started = Instant::now();
    tokio::time::sleep(bench.window).await;
    let elapsed = started.elapsed().as_secs_f64();
    let after = sim_stats(&http, &sim_url, fresh_window).await;
    let cpu = proc_cpu_seconds(serve_pid).unwrap_or(0.0) - cpu0;
    let sim_cpu = proc_cpu_seconds(sim_pid).unwrap_or(0.0) - sim_cpu0;
    let rss = proc_rss_mib(serve_pid, "VmHWM:").unwrap_or(0.0);
    let rss_now = proc_rss_mib(serve_pid, "VmRSS:").unwrap_or(0.0);
    let calls = count(&after, "requests") - count(&before, "requests");
    // Single status calls: Databricks counts `get_requests`, the AWS simulator
    // `status_requests`.
    let singles = |v: &Value| count(v, "get_requests") + count(v, "status_requests");
    let gets = singles(&after) - singles(&before);
    let lists = count(&after, "list_requests") - count(&before, "list_requests");
    let (active, fresh) = (count(&after, "active_runs"), count(&after, "fresh_runs"));
    let figures = Figures {
        cpu: cpu / elapsed,
        rss_mib: rss,
        calls_per_minute: calls as f64 * 60.0 / elapsed,
    };
    println!("supervisor CPU: {:.4} CPU-s/s", cpu / elapsed);
    println!("supervisor peak RSS: {rss:.1} MiB (now {rss_now:.1} MiB)");
    println!(
        "provider calls: {:.0} per minute ({:.0} single status calls, {:.0} list or batched reads, {:.0} other)",
        calls as f64 * 60.0 / elapsed,
        gets as f64 * 60.0 / elapsed,
        lists as f64 * 60.0 / elapsed,
        (calls - gets - lists) as f64 * 60.0 / elapsed
    );
    println!(
        "polled within 2x cadence: {fresh} of {active} running jobs ({:.1}%)",
        if active == 0 {
            0.0
        } else {
            100.0 * fresh as f64 / active as f64
        }
    );
    if !pg_pids.is_empty() {
        println!(
            "postgres backends CPU: {:.3} CPU-s/s ({} backends)",
            (pg_cpu(&pg_pids) - pg0) / elapsed,
            pg_pids.len()
        );
    }
    let sim_load = sim_cpu / elapsed;
    println!(
        "simulator CPU: {sim_load:.3} CPU-s/s ({})",
        if sim_load > 0.8 {
            "saturated: the figures above are bounded by the simulator"
        } else {
            "not the bottleneck"
        }
    );
    if bench.recovery {
        let before = sim_stats(&http, &sim_url, fresh_window).await;
        let _ = serve.start_kill(); // SIGKILL: its leases stay until they expire
        let _ = serve.wait().await;
        let killed = Instant::now();
        serve = spawn(
            &bench.serve_binary,
            &["--config", &config_arg, "serve"],
            &dir.path().join("serve-2.log"),
        )?;
        let lease = Duration::from_secs(30);
        let recovered = loop {
            let since = killed.elapsed();
            let stats = sim_stats(&http, &sim_url, since).await;
            if count(&stats, "fresh_runs") >= u64::from(bench.jobs) {
                break Some(since);
            }
            if since > lease * 4 {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let after = sim_stats(&http, &sim_url, fresh_window).await;
        let added = count(&after, "submissions") - count(&before, "submissions");
        match recovered {
            Some(t) => println!(
                "recovery: a new supervisor claimed and polled all {} jobs {:.1}s after the SIGKILL (lease {}s); submissions added: {added}",
                bench.jobs,
                t.as_secs_f64(),
                lease.as_secs()
            ),
            None => println!(
                "recovery: not every job was polled within {}s of the SIGKILL; submissions added: {added}",
                (lease * 4).as_secs()
            ),
        }
    }
    drop(serve);
    let _ = sim.start_kill();
    app.db.close().await;
    drop_database(pg_name).await;
    Ok(figures)
}
