//! The `tether` binary: parse arguments, set up logging, run the command.

use std::process::ExitCode;

use clap::Parser;
use tether::cli::Cli;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // Crash points for the crash tests (test builds only: nothing in a release build).
    let _crash_points = tether::crash::setup();
    let cli = Cli::parse();
    let filter = cli
        .log
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| cli.default_log_filter().to_string());
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_writer(std::io::stderr)
        // Colours only for a terminal: a log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(tether::error::exit::OPERATIONAL);
        }
    };
    let result = runtime.block_on(tether::cli::run(cli));
    // Bounded: a blocking task still waiting on the database (a full disk, a lock) must not
    // hold the exit; whatever it was doing is either committed or not, never acknowledged.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            e.to_exit_code()
        }
    }
}
