//! `tether-soak`: the chaos soak (see the library's docs). Exit 7 if a promise broke.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tether_soak::Error;
use tracing_subscriber::EnvFilter;

/// A chaos soak: jobs through several `tether serve` processes on a throwaway PostgreSQL
/// server of its own, against the simulators of all four providers, while supervisors are
/// killed and stopped, the database crashes and the providers throttle, fail and lose
/// answers. Prints its figures; exit 7 if a job was submitted twice, lost, or cancelled
/// without a request.
#[derive(Debug, Parser)]
#[command(name = "tether-soak", version, about)]
struct Args {
    /// Jobs to ensure (over the first 60 % of --duration).
    #[arg(long, default_value_t = 200)]
    jobs: u32,
    /// How long the chaos lasts.
    #[arg(long, default_value = "3m", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// `tether serve` processes sharing the database.
    #[arg(long, default_value_t = 3)]
    supervisors: usize,
    /// The supervisors' lease (a stopped supervisor stays stopped for twice this).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    lease: Duration,
    /// How long each remote job runs. Two minutes: with ten provider kinds, an ensure answer
    /// under chaos took up to ~45 s, so a cancel asked a few seconds after it came near the end
    /// of a one-minute run, and refusals then outlasted the run (three 2026-12-02 soaks).
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    run_time: Duration,
    /// How long a new remote job reads "not found" (every simulator's not-visible-yet edge;
    /// the accounts' `not_found_grace` is 3 s longer).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    invisible_for: Duration,
    /// How long an ended remote job is kept before its simulator forgets it (the retention
    /// edge): longer than the soak's longest outage (a stopped supervisor's two leases, a
    /// throttle of 1.5 leases, stacked), so that no job may be left "outcome unknown".
    #[arg(long, default_value = "90s", value_parser = humantime::parse_duration)]
    forget_after: Duration,
    /// The share of jobs cancelled on purpose, a few seconds after they are submitted.
    #[arg(long, default_value_t = 0.05)]
    cancel_share: f64,
    /// Seeds the plan and the sequence of faults (default: random, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// After the chaos, how long the jobs may take to finish.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    settle: Duration,
    /// Keep the soak's folder (supervisor logs and configs, the database) here.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// The supervisors' log filter (RUST_LOG syntax).
    #[arg(long, default_value = "info", value_name = "FILTER")]
    supervisor_log: String,
    /// The `tether` binary whose `serve` runs; default: `tether` beside this program (build
    /// it first: `cargo build`).
    #[arg(long, value_name = "PATH")]
    tether: Option<PathBuf>,
    /// Without provider events (by default the AWS simulators' events go through moto's SQS
    /// to every supervisor, some of them dropped, duplicated or delayed).
    #[arg(long)]
    no_events: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
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
    if args.supervisors == 0 || args.jobs == 0 {
        return Err(Error::Usage(
            "--supervisors and --jobs must be at least 1".into(),
        ));
    }
    if !(0.0..=1.0).contains(&args.cancel_share) {
        return Err(Error::Usage(format!(
            "--cancel-share must be between 0 and 1, not {}",
            args.cancel_share
        )));
    }
    let binary = match &args.tether {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|source| Error::Io {
                context: "finding this program".into(),
                source,
            })?
            .with_file_name("tether"),
    };
    if !binary.is_file() {
        return Err(Error::Usage(format!(
            "no tether binary at {}: build it (cargo build --bins) or pass --tether PATH",
            binary.display()
        )));
    }
    let soak = tether_soak::Soak {
        jobs: args.jobs,
        duration: args.duration,
        supervisors: args.supervisors,
        lease: args.lease,
        run_time: args.run_time,
        invisible_for: args.invisible_for,
        forget_after: args.forget_after,
        cancel_share: args.cancel_share,
        seed: args.seed.unwrap_or_else(rand::random),
        settle: args.settle,
        keep: args.keep.clone(),
        supervisor_log: args.supervisor_log.clone(),
        events: !args.no_events,
        binary,
    };
    tether_soak::soak(&soak, tether::cli::shutdown_signal()).await
}
