//! `tether-soak`: a chaos soak across supervisors, Jepsen-style. N jobs go through several
//! `tether serve` processes sharing one PostgreSQL (a throwaway cluster of its own), against
//! the simulators of all four providers, while the chaos loop kills, stops and restarts
//! everything it can; then it waits for every job to finish and prints what it tried and what
//! broke, one figure per line. It fails (exit 7) when a promise broke: a duplicate submission,
//! a lost job, a cancel nobody asked for, an asked cancel that never reached the provider, a
//! new generation, or an API answer 5xx other than 503 (or 4xx to a valid request).
//!
//! - [`postgres`]: the throwaway PostgreSQL cluster;
//! - [`fleet`]: the supervisor processes;
//! - [`workload`]: the API clients (ensure, ensure again, cancel);
//! - [`chaos`]: the faults;
//! - [`events`]: the AWS simulators' EventBridge events, through moto's SQS, with their own
//!   faults;
//! - [`verdict`]: the records against the simulators;
//! - [`error`]: its errors and exit codes.

mod chaos;
pub mod error;
mod events;
mod fleet;
mod postgres;
mod verdict;
mod workload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::time::Instant;

use tether_provider::registry::{RunningSim, SimOptions};

pub use crate::error::Error;
use tether::db::{DatabaseUrl, Db};
use tether::jobs::{JobRecord, JobStore, Phase};
use workload::{Answers, Planned, Workload};

/// The simulators the soak's jobs go to, in turn: one per provider kind of the registry that
/// has one, each the account `[providers.KIND]`.
pub type Sims = Vec<(&'static str, Arc<dyn RunningSim>)>;

/// What the soak runs.
#[derive(Debug, Clone)]
pub struct Soak {
    /// Jobs to ensure.
    pub jobs: u32,
    /// How long the chaos lasts (new jobs are ensured over its first 60 %).
    pub duration: Duration,
    /// `tether serve` processes.
    pub supervisors: usize,
    /// Their lease.
    pub lease: Duration,
    /// How long each remote job runs.
    pub run_time: Duration,
    /// How long a new remote job reads "not found" and is left out of lists (the services'
    /// consistency-after-create edge, switched on in every simulator).
    pub invisible_for: Duration,
    /// How long an ended remote job is kept, then forgotten (the services' retention edge):
    /// longer than the soak's longest outage, so that no job may be left "outcome unknown".
    pub forget_after: Duration,
    /// The share of jobs cancelled on purpose.
    pub cancel_share: f64,
    /// Seeds the plan and the chaos (processes and timing still vary between runs).
    pub seed: u64,
    /// After the chaos, how long the jobs may take to finish.
    pub settle: Duration,
    /// Keep the folder (logs, database) here instead of a temp folder.
    pub keep: Option<PathBuf>,
    /// The supervisors' log filter.
    pub supervisor_log: String,
    /// Provider events on: the AWS simulators' events through moto's SQS (needs
    /// `moto_server`; said and skipped without it, except under CI).
    pub events: bool,
    /// The tether binary whose `serve` runs.
    pub binary: PathBuf,
}

/// The admin token of the soak's supervisors: random per run.
fn admin_token() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// One supervisor's config: the shared database, its own API port, an account per simulator.
fn config_text(
    db_url: &str,
    port: u16,
    token_hash: &str,
    lease: Duration,
    sims: &Sims,
    supervisor: &str,
    not_found_grace: Duration,
) -> String {
    let mut text = format!(
        r#"[database]
url = "{db_url}"
max_connections = 8
connect_timeout = "5s"

[supervisor]
lease = "{lease}"
shutdown_grace = "2s"
{supervisor}

[api]
listen = "127.0.0.1:{port}"
admin_token_sha256 = ["{token_hash}"]
"#,
        lease = humantime::format_duration(lease),
    );
    for (kind, sim) in sims {
        let account: String = sim
            .settings(kind)
            .iter()
            .map(|(key, value)| format!("{key} = {value}\n"))
            .collect();
        text.push_str(&format!(
            "\n[providers.{kind}]\nkind = \"{kind}\"\n{account}\
             poll_initial = \"1s\"\npoll_max = \"3s\"\npoll_max_with_events = \"3s\"\n\
             request_timeout = \"2s\"\nnot_found_grace = \"{grace}\"\n",
            grace = humantime::format_duration(not_found_grace),
        ));
    }
    text
}

/// Runs the soak and prints its figures; `Err` if a promise broke. When `interrupted`
/// resolves first (SIGINT, SIGTERM), the supervisors are killed and the database stopped
/// before it returns, so that nothing of the soak keeps running.
pub async fn soak(
    s: &Soak,
    interrupted: impl std::future::Future<Output = ()>,
) -> Result<(), Error> {
    let temp = tempfile::tempdir().map_err(|source| Error::Io {
        context: "making the soak's folder".into(),
        source,
    })?;
    let folder = match &s.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                context: format!("making {}", dir.display()),
                source,
            })?;
            dir.clone()
        }
        None => temp.path().to_path_buf(),
    };
    println!(
        "soak: {} jobs, {} supervisors, {} of chaos, seed {}, folder {}",
        s.jobs,
        s.supervisors,
        humantime::format_duration(s.duration),
        s.seed,
        folder.display()
    );

    let cluster = Arc::new(postgres::Cluster::create(&folder, free_port()?).await?);
    cluster.start().await?;
    let outcome = tokio::select! {
        outcome = run(s, &folder, cluster.clone()) => outcome,
        () = interrupted => Err(Error::Interrupted(
            "the soak's supervisors were killed and its database stopped".into(),
        )),
    };
    if let Err(e) = cluster.stop().await {
        eprintln!("stopping the soak's PostgreSQL: {e}");
    }
    outcome
}

async fn run(
    s: &Soak,
    folder: &std::path::Path,
    cluster: Arc<postgres::Cluster>,
) -> Result<(), Error> {
    let io = |context: &str| {
        let context = context.to_string();
        move |source| Error::Io { context, source }
    };
    let mut sims: Sims = Vec::new();
    let mut env = vec![
        ("TETHER_LOG".to_string(), s.supervisor_log.clone()),
        (
            "AWS_CONFIG_FILE".to_string(),
            "/nonexistent/tether-soak".to_string(),
        ),
        (
            "AWS_SHARED_CREDENTIALS_FILE".to_string(),
            "/nonexistent/tether-soak".to_string(),
        ),
        ("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string()),
    ];
    let queue = match s.events {
        true => events::queue().await?,
        false => None,
    };
    match &queue {
        Some(q) => println!(
            "events: the AWS simulators' EventBridge events through moto's SQS ({}), one in {} dropped, duplicated or delayed in turn",
            q.url,
            events::CHAOS_EVERY
        ),
        None => println!("events: off"),
    }
    for kind in tether::registry::kinds() {
        let Some(factory) = tether::registry::simulators(kind) else {
            continue;
        };
        let options = SimOptions {
            pending: Duration::from_secs(1),
            running: s.run_time,
            invisible_for: s.invisible_for,
            forget_after: Some(s.forget_after),
            switches: match &queue {
                Some(q) if events::sends_to_sqs(kind) => events::switches(q),
                _ => Default::default(),
            },
            ..SimOptions::default()
        };
        let sim = factory
            .start(kind, options)
            .await
            .map_err(io(&format!("starting the {kind} simulator")))?;
        for pair in sim.env() {
            if !env.contains(&pair) {
                env.push(pair);
            }
        }
        sims.push((kind, Arc::from(sim)));
    }

    // The database, of a role of its own, migrated by that role before any supervisor starts;
    // the soak reads the records as the admin (whose connections are not refused).
    cluster.create_role().await?;
    let db_url = cluster.tether_url();
    let parse = |url: &str| DatabaseUrl::parse(url).map_err(|e| Error::Usage(e.to_string()));
    let owner = Db::connect(&parse(&db_url)?, &Default::default()).await?;
    owner.migrate().await?;
    owner.close().await;
    let db = Db::connect(&parse(&cluster.admin_tether_url())?, &Default::default()).await?;
    let jobs = JobStore::new(db.clone());
    // Supervisor 0's clock runs 90 s ahead (libfaketime), within its max_clock_skew: it works
    // on the database's clock like the others.
    let skewed = std::path::Path::new(fleet::LIBFAKETIME).exists();

    let token = admin_token();
    let token_hash = tether::api::auth::hash_token(&token);
    let (mut configs, mut urls) = (Vec::new(), Vec::new());
    for i in 0..s.supervisors {
        let port = free_port()?;
        let path = folder.join(format!("supervisor-{i}.toml"));
        let text = config_text(
            &db_url,
            port,
            &token_hash,
            s.lease,
            &sims,
            if skewed && i == 0 {
                "max_clock_skew = \"5m\""
            } else {
                ""
            },
            s.invisible_for + Duration::from_secs(3),
        );
        let text = match &queue {
            Some(queue) => text + &events::table(queue, &sims),
            None => text,
        };
        std::fs::write(&path, text).map_err(io("writing a supervisor's config"))?;
        configs.push(path);
        urls.push(format!("http://127.0.0.1:{port}"));
    }
    let mut fleet = fleet::Fleet::new(s.binary.clone(), env, folder, configs);
    if skewed {
        fleet.set_env(0, "LD_PRELOAD", fleet::LIBFAKETIME);
        fleet.set_env(0, "FAKETIME", "+90s");
    }
    for i in 0..fleet.len() {
        fleet.start(i)?;
    }
    wait_ready(&urls).await?;
    let fleet = Arc::new(tokio::sync::Mutex::new(fleet));

    // The plan: jobs in turn over the simulators, a few cancelled on purpose.
    let mut rng = StdRng::seed_from_u64(s.seed);
    let plan: Vec<Planned> = (0..s.jobs as usize)
        .map(|i| {
            let (provider, _) = &sims[i % sims.len()];
            let task = format!("t{i:05}");
            Planned {
                spec: tether::registry::simulators(provider)
                    .expect("a kind with a simulator")
                    .sample_spec(provider, &task),
                task,
                provider,
                cancel: rng.random_bool(s.cancel_share),
            }
        })
        .collect();

    let started = Instant::now();
    let chaos_end = started + s.duration;
    let deadline = chaos_end + s.settle;
    let workload = Arc::new(Workload::new(urls, token));
    let clients = tokio::spawn(drive(workload.clone(), plan, s.duration, deadline));
    let chaos = chaos::Chaos {
        fleet: fleet.clone(),
        cluster,
        sims: sims.iter().map(|(_, sim)| sim.clone()).collect(),
        lease: s.lease,
    };
    let (tally, last_fault) = chaos.run(chaos_end, &mut rng).await;
    let _ = clients.await;

    // All quiet: wait until every job is held by a running supervisor (reattached), then
    // until every job has finished.
    let ids: Vec<i64> = workload
        .ensured
        .lock()
        .expect("not poisoned")
        .values()
        .map(|e| e.job_id)
        .collect();
    let mut reattached_after = None;
    let records = loop {
        let records = read_all(&jobs, &ids).await;
        let pids = fleet.lock().await.running_pids();
        if reattached_after.is_none() && all_held(&records, &pids) {
            reattached_after = Some(last_fault.elapsed());
        }
        let finished = records.iter().all(|r| r.phase == Phase::Terminal);
        if finished || Instant::now() >= deadline {
            break records;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let fleet_guard = fleet.lock().await;
    let fenced = fleet_guard.fenced_writes();
    let duplicate_logs = fleet_guard.log_lines("DUPLICATE SUBMISSION");
    let not_visible_yet = fleet_guard.log_lines("a new job is not visible yet").len();
    drop(fleet_guard);
    fleet.lock().await.shutdown(Duration::from_secs(10)).await;
    // The jobs an event reached (marked due: `poked_at` set), whoever read it.
    let poked: Option<i64> =
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE poked_at IS NOT NULL")
            .fetch_one(db.pool())
            .await
            .ok();
    db.close().await;

    let v = verdict::judge(&records, &sims);
    let a = &workload.answers;
    let never_named = s.jobs as u64 - ids.len() as u64;
    let lost = v.lost + never_named;
    let server_errors = Answers::get(&a.server_errors);
    let refused = Answers::get(&a.refused);
    let resubmitted = Answers::get(&a.resubmitted);
    let figure = |name: &str, value: String| println!("{name}: {value}");
    figure(
        "jobs",
        format!("{} ({} named by the API)", s.jobs, ids.len()),
    );
    figure("submissions at the providers", v.submissions.to_string());
    figure("duplicates (must be 0)", v.duplicates.to_string());
    figure("lost (must be 0)", lost.to_string());
    figure(
        "left outcome unknown (must be 0)",
        v.outcome_unknown.to_string(),
    );
    figure(
        "edges switched on",
        format!(
            "new jobs not visible for {}, ended jobs forgotten after {}",
            humantime::format_duration(s.invisible_for),
            humantime::format_duration(s.forget_after)
        ),
    );
    figure(
        "polls that met a new job not visible yet (in the supervisors' logs)",
        not_visible_yet.to_string(),
    );
    figure(
        "cancelled without a request (must be 0)",
        v.unasked_cancels.to_string(),
    );
    figure(
        "requested cancels that never reached the provider (must be 0)",
        v.unsent_cancels.to_string(),
    );
    figure(
        "new generations or re-ensures that submitted (must be 0)",
        (v.new_generations + resubmitted).to_string(),
    );
    figure("cancels requested", v.asked_cancels.to_string());
    figure(
        "cancels sent after the run had ended by itself (must be 0)",
        v.late_cancels.to_string(),
    );
    figure(
        "longest time from a cancel's request to its sending (s)",
        format!("{:.2}", v.slowest_cancel),
    );
    figure("stale writes refused by fencing", fenced.to_string());
    if s.events {
        figure(
            "jobs an AWS event reached (marked due now by one)",
            poked.map_or("unknown".into(), |n| n.to_string()),
        );
    }
    figure("supervisor kills", tally.kills.to_string());
    figure(
        "supervisor stops (longer than the lease)",
        tally.stops.to_string(),
    );
    figure("database restarts", tally.db_restarts.to_string());
    figure(
        "database connection refusals (1.5 leases each)",
        tally.db_refusals.to_string(),
    );
    figure(
        "supervisor 0's clock",
        if skewed {
            "90 s ahead (libfaketime)".into()
        } else {
            format!("not set off: {} is missing", fleet::LIBFAKETIME)
        },
    );
    figure(
        "provider faults (throttles, 500/503 bursts, slow, dropped, lost answers, refused cancels)",
        format!(
            "{} {} {} {} {} {}",
            tally.throttles,
            tally.errors,
            tally.slow,
            tally.drops,
            tally.lost_answers,
            tally.refused_cancels
        ),
    );
    figure(
        "API answers (2xx, 503, no answer)",
        format!(
            "{} {} {}",
            Answers::get(&a.ok),
            Answers::get(&a.unavailable),
            Answers::get(&a.unanswered)
        ),
    );
    figure(
        "API 5xx other than 503 (must be 0)",
        server_errors.to_string(),
    );
    figure("API 4xx to valid requests (must be 0)", refused.to_string());
    figure(
        "seconds from the last fault to all jobs reattached",
        reattached_after.map_or("never".into(), |d| format!("{:.1}", d.as_secs_f64())),
    );
    for line in v
        .problems
        .iter()
        .chain(a.examples.lock().expect("not poisoned").iter())
        .chain(&duplicate_logs)
        .chain(&tally.failures)
        .take(40)
    {
        println!("  {line}");
    }
    let broken = v.duplicates
        + lost
        + v.outcome_unknown
        + v.unasked_cancels
        + v.unsent_cancels
        + v.late_cancels
        + v.new_generations
        + resubmitted
        + server_errors
        + refused
        + tally.failures.len() as u64;
    if broken > 0 {
        return Err(Error::CheckFailed(format!(
            "the soak broke {broken} promise(s); the logs are in {}",
            if s.keep.is_some() {
                folder.display().to_string()
            } else {
                "a temp folder (run with --keep DIR to keep them)".into()
            }
        )));
    }
    println!("soak passed");
    Ok(())
}

/// Ensures the plan's jobs evenly over the first 60 % of `duration`, and ensures running
/// ones again (about five a second) until `duration` has passed.
async fn drive(workload: Arc<Workload>, plan: Vec<Planned>, duration: Duration, deadline: Instant) {
    let started = Instant::now();
    let spread = duration.mul_f64(0.6);
    let gap = spread / plan.len().max(1) as u32;
    let mut tasks = Vec::new();
    let again = {
        let workload = workload.clone();
        tokio::spawn(async move {
            while started.elapsed() < duration {
                tokio::time::sleep(Duration::from_millis(200)).await;
                workload.ensure_again(deadline).await;
            }
        })
    };
    for (i, planned) in plan.into_iter().enumerate() {
        tasks.push(tokio::spawn(
            workload.clone().ensure_new(i, planned, deadline),
        ));
        tokio::time::sleep(gap).await;
    }
    for task in tasks {
        let _ = task.await;
    }
    let _ = again.await;
}

async fn wait_ready(urls: &[String]) -> Result<(), Error> {
    let client = reqwest::Client::new();
    for url in urls {
        let start = Instant::now();
        loop {
            let ready = client.get(format!("{url}/readyz")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            if start.elapsed() > Duration::from_secs(60) {
                return Err(Error::CheckFailed(format!(
                    "the supervisor at {url} never became ready"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// The records of `ids`, read again until the database answers.
async fn read_all(jobs: &JobStore, ids: &[i64]) -> Vec<JobRecord> {
    let mut records = Vec::with_capacity(ids.len());
    for &id in ids {
        loop {
            match jobs.get(tether::model::JobId(id)).await {
                Ok(Some(record)) => {
                    records.push(record);
                    break;
                }
                Ok(None) => break,
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }
    records
}

/// Whether every unfinished job is held by a supervisor that runs now (its owner id holds the
/// process id).
fn all_held(records: &[JobRecord], pids: &[u32]) -> bool {
    records
        .iter()
        .filter(|r| r.phase != Phase::Terminal)
        .all(|r| {
            r.lease_owner
                .as_deref()
                .and_then(|o| o.split(':').nth(1))
                .and_then(|p| p.parse::<u32>().ok())
                .is_some_and(|pid| pids.contains(&pid))
        })
}

/// A free loopback port (the OS picks it; free again once the probe closes).
fn free_port() -> Result<u16, Error> {
    let io = |source| Error::Io {
        context: "finding a free port".into(),
        source,
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(io)?;
    Ok(listener.local_addr().map_err(io)?.port())
}
