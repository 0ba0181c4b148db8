//! `tether-bench`: measures what tether costs on real processes (the `tether` binary's
//! `serve` and `sim`, as child processes) and prints the figures. See the library's docs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tether::Error;
use tracing_subscriber::EnvFilter;

/// Measure what tracking many running jobs costs (CPU, memory, provider calls), with the
/// simulator and `tether serve` as child processes; or, with --api, the HTTP API.
#[derive(Debug, Parser)]
#[command(name = "tether-bench", version, about)]
struct Args {
    /// Running jobs to track; with --latency, a list of scales (10000,100000).
    #[arg(long, default_value = "1000", value_delimiter = ',')]
    jobs: Vec<u32>,
    /// How often each job is due.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    cadence: Duration,
    /// How long to measure, after every job was polled once.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    window: Duration,
    /// Use PostgreSQL: an admin URL to create (and drop) a database with. Default: SQLite.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// `supervisor.claim_batch` of the measured supervisor.
    #[arg(long, default_value_t = 1000)]
    claim_batch: u32,
    /// The `tether` binary that serves the simulators (and, unless --serve-binary, is
    /// measured); default: `tether` beside this program (build it first: `cargo build`).
    #[arg(long, value_name = "PATH")]
    tether: Option<PathBuf>,
    /// The tether binary whose `serve` is measured (another build, to compare).
    #[arg(long, value_name = "PATH")]
    serve_binary: Option<PathBuf>,
    /// Then SIGKILL the supervisor, start another, and measure the recovery.
    #[arg(long)]
    recovery: bool,
    /// Poll every job with its own `runs/get` (`coalesce = false`), to compare.
    #[arg(long)]
    no_coalesce: bool,
    /// The provider kind whose simulator serves the jobs: databricks, or another kind of the
    /// registry with a simulator (batch, ecs, emr, ...).
    #[arg(long, default_value = "databricks")]
    provider: String,
    /// Then run as many of Airflow's own `DatabricksExecutionTrigger` in one asyncio loop
    /// against the same simulator and cadence, and print the ratios.
    #[arg(long, requires = "airflow_venv")]
    compare_airflow: bool,
    /// Measure the HTTP API instead: idle long polls, ensure latency (submit and reattach
    /// paths) and task-state operations per second, with 1 and 16 clients.
    #[arg(long)]
    api: bool,
    /// With --api: ensure calls per path and client count.
    #[arg(long, default_value_t = 10_000)]
    calls: u32,
    /// With --api: idle long polls (`/v1/jobs/{id}/wait`, one per running job) whose cost is
    /// measured first; 0 to skip.
    #[arg(long, default_value_t = 500)]
    waiters: u32,
    /// Measure how soon tether records a run's end and a long-poll waiter hears of it
    /// (detection and end-to-end latency), with runs ending at --end-rate, in each of
    /// --modes at each --jobs scale; one table.
    #[arg(long, conflicts_with = "api")]
    latency: bool,
    /// With --latency: the modes, of polling (the account's settings), sweep (with
    /// --sweep-every) and notifications (Databricks job notifications to tether's API) on
    /// Databricks runs, batch-polling and batch-events (EventBridge events through an SQS
    /// queue served by moto) on AWS Batch jobs, bigquery-polling and bigquery-events
    /// (audit log entries through the Pub/Sub emulator) on BigQuery jobs, and
    /// kubernetes-polling and kubernetes-watch (a watch of tether's label) on Kubernetes Jobs.
    #[arg(long, default_value = "polling,sweep,notifications", value_delimiter = ',', value_parser = tether_bench::Mode::parse)]
    modes: Vec<tether_bench::Mode>,
    /// With --latency: how fast runs end during the window (each replaced by a new job):
    /// 10/s, 600/min, or a share of the tracked jobs, 1%/min.
    #[arg(long, default_value = "2/s", value_parser = tether_bench::EndRate::parse)]
    end_rate: tether_bench::EndRate,
    /// With --latency: the account's `sweep_every` in the sweep mode.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    sweep_every: Duration,
    /// With --latency: the account's `rate_limit_per_second` (and `rate_limit_burst`, the
    /// same number at least 1) [default: the account's defaults].
    #[arg(long, value_name = "CALLS_PER_SECOND")]
    rate_limit: Option<f64>,
    /// With --latency --compare-airflow: the largest scale Airflow's triggers run at.
    #[arg(long, default_value_t = 10_000)]
    airflow_max_jobs: u32,
    /// With --latency: keep each line's folder (`tether serve`'s log and config, the SQLite
    /// database) and say where; `RUST_LOG` reaches `tether serve`.
    #[arg(long)]
    keep: bool,
    /// With --latency: hold no long polls, so that CPU and RSS are the supervisor's own (end
    /// to end is then not measured; detection is read from tether's records after the window).
    #[arg(long)]
    no_waiters: bool,
    /// With --compare-airflow: the virtual environment with apache-airflow and its
    /// Databricks provider (built from PyPI when it lacks them).
    #[arg(long, value_name = "PATH", env = "TETHER_AIRFLOW_VENV")]
    airflow_venv: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // The seeding's own slow-statement warnings would drown the figures.
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into());
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("error")))
        .with_writer(std::io::stderr)
        .init();
    let result = tokio::runtime::Runtime::new()
        .map_err(|source| Error::Io {
            context: "starting the async runtime".into(),
            source,
        })
        .and_then(|rt| rt.block_on(run(&args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            e.to_exit_code()
        }
    }
}

async fn run(args: &Args) -> Result<(), Error> {
    let binary = tether_binary(args.tether.as_ref())?;
    let serve_binary = args.serve_binary.clone().unwrap_or_else(|| binary.clone());
    if args.latency {
        if args.compare_airflow && args.airflow_venv.is_none() {
            return Err(Error::Usage(
                "--compare-airflow needs --airflow-venv".into(),
            ));
        }
        return tether_bench::latency(&tether_bench::LatencyBench {
            jobs: args.jobs.clone(),
            modes: args.modes.clone(),
            cadence: args.cadence,
            window: args.window,
            end_rate: args.end_rate,
            rate_limit: args.rate_limit.map(|r| (r, (r.ceil() as u32).max(1))),
            sweep_every: args.sweep_every,
            postgres_admin: args.postgres.clone(),
            claim_batch: args.claim_batch,
            binary,
            serve_binary,
            airflow_venv: args.airflow_venv.clone().filter(|_| args.compare_airflow),
            airflow_max_jobs: args.airflow_max_jobs,
            keep: args.keep,
            waiters: !args.no_waiters,
        })
        .await;
    }
    let [jobs] = args.jobs[..] else {
        return Err(Error::Usage(
            "--jobs takes several scales with --latency only".into(),
        ));
    };
    if args.api {
        return tether_bench::api(&tether_bench::ApiBench {
            calls: args.calls,
            waiters: args.waiters,
            window: args.window,
            postgres_admin: args.postgres.clone(),
            serve_binary,
            binary,
        })
        .await;
    }
    let bench = tether_bench::TrackedBench {
        jobs,
        cadence: args.cadence,
        window: args.window,
        postgres_admin: args.postgres.clone(),
        claim_batch: args.claim_batch,
        serve_binary,
        recovery: args.recovery,
        coalesce: !args.no_coalesce,
        provider: args.provider.clone(),
        binary,
    };
    if args.compare_airflow && args.provider != "databricks" {
        return Err(Error::Usage(
            "--compare-airflow runs Airflow's Databricks triggers: it takes --provider databricks"
                .into(),
        ));
    }
    match (&args.airflow_venv, args.compare_airflow) {
        (Some(venv), true) => tether_bench::compare_airflow(&bench, venv).await,
        _ => tether_bench::tracked(&bench).await.map(|_| ()),
    }
}

/// `--tether`, or `tether` beside this program.
fn tether_binary(given: Option<&PathBuf>) -> Result<PathBuf, Error> {
    let path = match given {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|source| Error::Io {
                context: "finding this program".into(),
                source,
            })?
            .with_file_name("tether"),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Usage(format!(
            "no tether binary at {}: build it (cargo build --bins) or pass --tether PATH",
            path.display()
        )))
    }
}
