//! `tether-bench --api`: what a client of the HTTP API waits for, measured against a real
//! `tether serve` (child process) and the Databricks simulator.
//!
//! - ensure latency, p50 and p99, for the submit path (a new task instance: intent recorded,
//!   run submitted, handle recorded) and the reattach path (the same task instances, next try),
//!   with 1 and 16 concurrent clients;
//! - task-state operations per second, `GET` and compare-and-set `PUT` (`if_version`), with 1
//!   and 16 concurrent clients, each on its own key;
//! - first, on the fresh server: what idle long polls cost, as the CPU `tether serve` uses per
//!   second with N running jobs and no waiter, then with one idle `/v1/jobs/{id}/wait` open
//!   on each, then with none again (`--serve-binary` measures another build's server, to
//!   compare).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{create_database, drop_database, free_port, spawn, start_sim, wait_for};
use tether::Error;

/// The admin token the benchmark's server accepts.
const TOKEN: &str = "tether-bench-admin-token-0123456789";

/// What the `api` scenario runs.
#[derive(Debug, Clone)]
pub struct ApiBench {
    /// Ensure calls per path and client count.
    pub calls: u32,
    /// Idle long polls to measure (one per running job); 0 to skip.
    pub waiters: u32,
    /// How long each task-state measurement lasts.
    pub window: Duration,
    /// `None`: SQLite in a temp folder; else a PostgreSQL admin URL.
    pub postgres_admin: Option<String>,
    /// The tether binary (serves the simulator).
    pub binary: PathBuf,
    /// The tether binary whose `serve` is measured.
    pub serve_binary: PathBuf,
}

/// Runs the `api` scenario and prints its figures.
pub async fn api(bench: &ApiBench) -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(|source| Error::Io {
        context: "making a temp folder".into(),
        source,
    })?;
    let (db_url, pg) = create_database(bench.postgres_admin.as_deref(), dir.path()).await?;
    let (_sim, sim_url) = start_sim(&bench.binary, dir.path(), "databricks", &[]).await?;
    let port = free_port()?;
    let config = format!(
        r#"
[database]
url = "{db_url}"

[api]
enabled = true
listen = "127.0.0.1:{port}"
admin_token_sha256 = ["{hash}"]
max_wait = "3600s"

[providers.databricks]
host = "{sim_url}"
token = "dapi-sim-token"
poll_initial = "30s"
poll_max = "30s"
rate_limit_per_second = 1000000
rate_limit_burst = 100000
"#,
        hash = tether::api::auth::hash_token(TOKEN)
    );
    let config_path = dir.path().join("tether.toml");
    std::fs::write(&config_path, &config).map_err(|source| Error::Io {
        context: "writing the bench config".into(),
        source,
    })?;
    let config_arg = config_path.to_string_lossy().to_string();
    let serve = spawn(
        &bench.serve_binary,
        &["--config", &config_arg, "serve"],
        &dir.path().join("serve.log"),
    )?;
    let base = format!("http://127.0.0.1:{port}");
    wait_for(&format!("{base}/readyz")).await;
    let kind = if pg.is_some() { "postgres" } else { "sqlite" };
    println!(
        "bench api: {kind}, {} ensure calls per path and client count, task state {}s per figure",
        bench.calls,
        bench.window.as_secs()
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(32)
        .build()
        .map_err(|e| Error::Usage(format!("HTTP client: {e}")))?;
    if bench.waiters > 0 {
        let pid = serve
            .id()
            .ok_or_else(|| Error::Usage("tether serve exited".into()))?;
        idle_waiters(&http, &base, pid, bench.waiters, bench.window).await?;
    }
    for clients in [1u32, 16] {
        for (path, try_number) in [("submit", 1), ("reattach", 2)] {
            let latencies = ensure_calls(&http, &base, bench.calls, clients, try_number).await?;
            println!(
                "ensure ({path}), {clients} client{}: p50 {:.1} ms, p99 {:.1} ms over {} calls",
                if clients == 1 { "" } else { "s" },
                percentile(&latencies, 0.50),
                percentile(&latencies, 0.99),
                latencies.len()
            );
        }
    }
    for clients in [1u32, 16] {
        for cas in [false, true] {
            let ops = state_ops(&http, &base, clients, cas, bench.window).await?;
            println!(
                "task state {}, {clients} client{}: {ops:.0} ops/s",
                if cas { "CAS set" } else { "get" },
                if clients == 1 { "" } else { "s" },
            );
        }
    }
    drop_database(pg).await;
    Ok(())
}

/// Prints the CPU `tether serve` (process `pid`) uses per second over `window` with `n` running
/// jobs and no waiter, then with one idle long poll on each job, then with none again, and
/// the difference between the middle window and the mean of the other two.
async fn idle_waiters(
    http: &reqwest::Client,
    base: &str,
    pid: u32,
    n: u32,
    window: Duration,
) -> Result<(), Error> {
    let mut ids = Vec::with_capacity(n as usize);
    for i in 0..n {
        let body = json!({"dag_id": "bench", "run_id": "r1", "task_id": format!("wait-{i}"),
            "try_number": 1, "provider": "databricks",
            "spec": {"run_name": format!("wait-{i}"),
                     "tasks": [{"task_key": "t", "notebook_task": {"notebook_path": "/b"}}]}});
        let answer: Value = http
            .post(format!("{base}/v1/jobs"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| Error::Usage(format!("ensure failed: {e}")))?
            .json()
            .await
            .map_err(|e| Error::Usage(format!("ensure answer: {e}")))?;
        ids.push(answer["job"]["id"].as_i64().unwrap_or_default());
    }
    // Every job submitted and polled once (running), so that the windows see steady polling.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu_per_second = |window: Duration| async move {
        let before = super::proc_cpu_seconds(pid).unwrap_or(0.0);
        tokio::time::sleep(window).await;
        (super::proc_cpu_seconds(pid).unwrap_or(0.0) - before) / window.as_secs_f64()
    };
    let idle_before = cpu_per_second(window).await;
    // Each waiter knows the job is running and waits up to an hour for a change.
    let waiting = Arc::new(AtomicU64::new(0));
    let mut waiters = tokio::task::JoinSet::new();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| Error::Usage(format!("HTTP client: {e}")))?;
    for id in &ids {
        let url = format!("{base}/v1/jobs/{id}/wait?state=running&timeout=3600");
        let (client, waiting) = (client.clone(), waiting.clone());
        waiters.spawn(async move {
            let answer = client.get(&url).bearer_auth(TOKEN).send();
            waiting.fetch_add(1, Ordering::Relaxed);
            match answer.await {
                Ok(r) => format!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
                Err(e) => e.to_string(),
            }
        });
    }
    while waiting.load(Ordering::Relaxed) < u64::from(n) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the requests arrive and settle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let with_waiters = cpu_per_second(window).await;
    let mut answered = Vec::new();
    while let Some(done) = waiters.try_join_next() {
        answered.push(done.unwrap_or_else(|e| e.to_string()));
    }
    waiters.abort_all();
    // The windows without waiters bracket the one with them, so that what the server does
    // anyway in the meantime (its first polls of the jobs, say) weighs on both sides alike.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_after = cpu_per_second(window).await;
    let idle = (idle_before + idle_after) / 2.0;
    println!(
        "idle waiters: {n} running jobs, no waiter: {:.2} % of a core (before {:.2}, after \
         {:.2}); with {n} idle waits open: {:.2} % of a core; the waiters' cost: {:.2} % of a \
         core ({} answered early{})",
        idle * 100.0,
        idle_before * 100.0,
        idle_after * 100.0,
        with_waiters * 100.0,
        (with_waiters - idle) * 100.0,
        answered.len(),
        answered
            .first()
            .map(|a| format!(", the first: {a}"))
            .unwrap_or_default(),
    );
    Ok(())
}

/// `calls` ensures split over `clients` concurrent clients (task `c{clients}-t{i}`, try
/// `try_number`); their latencies in ms.
async fn ensure_calls(
    http: &reqwest::Client,
    base: &str,
    calls: u32,
    clients: u32,
    try_number: i64,
) -> Result<Vec<f64>, Error> {
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (http, url, next) = (http.clone(), format!("{base}/v1/jobs"), next.clone());
        workers.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= u64::from(calls) {
                    return Ok::<_, Error>(latencies);
                }
                let body = json!({"dag_id": "bench", "run_id": "r1",
                    "task_id": format!("c{clients}-t{i}"), "try_number": try_number,
                    "provider": "databricks",
                    "spec": {"run_name": format!("bench-{i}"),
                             "tasks": [{"task_key": "t", "notebook_task": {"notebook_path": "/b"}}]}});
                let started = Instant::now();
                let answer = http.post(&url).bearer_auth(TOKEN).json(&body).send().await;
                let ok = matches!(&answer, Ok(r) if r.status().is_success());
                if !ok {
                    let detail = match answer {
                        Ok(r) => format!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
                        Err(e) => e.to_string(),
                    };
                    return Err(Error::Usage(format!("ensure failed: {detail}")));
                }
                latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            }
        });
    }
    let mut all = Vec::new();
    while let Some(done) = workers.join_next().await {
        all.extend(done.map_err(|e| Error::Usage(format!("client failed: {e}")))??);
    }
    Ok(all)
}

/// Task-state operations per second over `window` with `clients` clients, each on its own
/// key: `GET`s, or compare-and-set `PUT`s (each with the version the previous one returned).
async fn state_ops(
    http: &reqwest::Client,
    base: &str,
    clients: u32,
    cas: bool,
    window: Duration,
) -> Result<f64, Error> {
    let done = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    let started = Instant::now();
    for c in 0..clients {
        let (http, done) = (http.clone(), done.clone());
        let url = format!(
            "{base}/v1/state/task-instances/bench/r1/state-{clients}-{cas}/{c}/keys/cursor"
        );
        workers.spawn(async move {
            // The key exists first, so that gets find it and sets compare with its version.
            let mut version = put(&http, &url, 0, 0).await?;
            while started.elapsed() < window {
                if cas {
                    version = put(&http, &url, version, version).await?;
                } else {
                    let r = http.get(&url).bearer_auth(TOKEN).send().await;
                    if !matches!(&r, Ok(r) if r.status().is_success()) {
                        return Err(Error::Usage(format!("state get failed: {r:?}")));
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, Error>(())
        });
    }
    while let Some(finished) = workers.join_next().await {
        finished.map_err(|e| Error::Usage(format!("client failed: {e}")))??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// A compare-and-set `PUT` of `value` expecting `if_version`; the new version.
async fn put(http: &reqwest::Client, url: &str, if_version: i64, value: i64) -> Result<i64, Error> {
    let answer = http
        .put(url)
        .bearer_auth(TOKEN)
        .json(&json!({"value": {"offset": value}, "if_version": if_version}))
        .send()
        .await
        .map_err(|e| Error::Usage(format!("state put failed: {e}")))?;
    let status = answer.status();
    let body: Value = answer.json().await.unwrap_or(Value::Null);
    body["version"]
        .as_i64()
        .filter(|_| status.is_success())
        .ok_or_else(|| Error::Usage(format!("state put failed: {status}: {body}")))
}

/// The `q` quantile of `values` (nearest rank); 0 for none.
fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.50), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
