//! The `tether` command line: argument definitions (clap) and what each command does.
//!
//! - [`state`]: `tether state get|set|delete|list|clear|forget-run|on-success`.
//! - [`run`]: `tether run`, ensure a job and wait for it.
//! - [`jobs`]: `tether jobs list|show|events|cancel`.
//! - [`sim`]: `tether sim databricks`, the provider simulators.
//! - [`demo`]: `tether demo`, the eviction-and-retry story.
//! - `migrate`, `gc` and `serve` are small enough to live here.
//!
//! Every command returns `Result<(), Error>`; `main` prints the error on one line and exits
//! with [`Error::exit_code`].

mod demo;
mod jobs;
mod run;
mod sim;
mod state;
mod token;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::Config;
use crate::db::DatabaseUrl;
use crate::engine::Supervisor;
use crate::Error;

/// tether: keeps long-running remote jobs alive across worker crashes and retries, on a durable
/// task-state store.
///
/// Exit codes: 0 ok, 1 operational error, 2 usage error, 3 not found, 4 version conflict (or a
/// running job with another spec), 5 interrupted (`tether run`; the remote job keeps running),
/// 6 the job failed, was cancelled or lost (`tether run`).
#[derive(Debug, Parser)]
#[command(name = "tether", version, about, long_about)]
pub struct Cli {
    /// Configuration file (TOML). Without one, tether uses SQLite in
    /// $XDG_DATA_HOME/tether (or ~/.local/share/tether).
    #[arg(long, short = 'c', global = true, env = "TETHER_CONFIG")]
    pub config: Option<PathBuf>,

    /// Database URL (sqlite://PATH or postgres://USER@HOST/DB); overrides the config file.
    #[arg(
        long,
        global = true,
        env = "TETHER_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Log filter for stderr, e.g. `info` or `tether=debug` (RUST_LOG syntax).
    #[arg(long, global = true, env = "TETHER_LOG")]
    pub log: Option<String>,

    /// Print results as JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending database migrations (every command also does this on start), and print
    /// the namespace this deployment derives its idempotency keys in.
    Migrate,
    /// Read and write task state.
    #[command(subcommand)]
    State(state::StateCommand),
    /// Remove expired task state and finished jobs past `jobs.retention` once, and print what
    /// was removed.
    Gc {
        /// Keys deleted per statement (default: gc.batch_size from the config).
        #[arg(long)]
        batch_size: Option<u32>,
    },
    /// Ensure a remote job for a task instance (submit, or reattach to the one already
    /// running) and wait for it.
    ///
    /// Exit codes: 0 the job succeeded, 1 operational error (database or provider out of
    /// reach), 2 usage error (bad arguments, config or spec), 4 a job is running with another
    /// spec (`on_spec_change = "fail"`), 5 interrupted by SIGINT/SIGTERM (the remote job keeps
    /// running; run the command again to reattach), 6 the job failed, was cancelled or lost.
    Run(run::RunArgs),
    /// Inspect and cancel jobs.
    #[command(subcommand)]
    Jobs(jobs::JobsCommand),
    /// Run the long-lived process: the HTTP API, the supervisor (claims, polls and finishes
    /// jobs under leases) and the garbage-collection sweeper, until SIGINT or SIGTERM. Remote
    /// jobs are never cancelled on shutdown.
    Serve,
    /// Make API tokens: hash an admin token for the config, or sign a task token.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Serve a provider simulator on a loopback port.
    Sim(sim::SimArgs),
    /// Show tether's main job on this machine: a Databricks run (simulated) survives the
    /// eviction of its worker, and the retry reattaches instead of resubmitting.
    Demo,
}

impl Cli {
    /// The log filter to use when none is given: quiet for one-shot commands.
    pub fn default_log_filter(&self) -> &'static str {
        match self.command {
            Command::Serve | Command::Sim(_) => "info",
            _ => "warn",
        }
    }

    /// Reads the config file (or the defaults) and applies `--database-url`.
    pub fn load_config(&self) -> Result<Config, Error> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::defaults()?,
        };
        if let Some(url) = &self.database_url {
            config =
                config.with_database_url(DatabaseUrl::parse(url).map_err(|e| {
                    Error::Usage(format!("--database-url / TETHER_DATABASE_URL: {e}"))
                })?);
        }
        Ok(config)
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<(), Error> {
    match &cli.command {
        Command::Sim(cmd) => return sim::run(cmd).await,
        Command::Demo => return demo::run().await,
        Command::Token(token::TokenCommand::Hash) => return token::hash(),
        // `tether run` listens for signals before it touches the database.
        Command::Run(args) => return run::run(&cli, args).await,
        _ => {}
    }
    let config = cli.load_config()?;
    let app = App::open(config).await?;
    let result = match &cli.command {
        Command::Migrate => {
            if cli.json {
                print_json(&serde_json::json!({
                    "database": app.db.url().to_string(),
                    "key_namespace": app.engine.key_namespace(),
                }));
            } else {
                println!(
                    "database {} is migrated; idempotency keys are derived in the namespace {}",
                    app.db.url(),
                    app.engine.key_namespace()
                );
            }
            Ok(())
        }
        Command::State(cmd) => state::run(&app, cmd, cli.json).await,
        Command::Gc { batch_size } => {
            let report = app.sweeper(*batch_size).sweep().await?;
            if cli.json {
                print_json(&report);
            } else {
                println!("{report}");
            }
            Ok(())
        }
        Command::Jobs(cmd) => jobs::run(&app, cmd, cli.json).await,
        Command::Token(cmd) => token::run(&app, cmd, cli.json).await,
        Command::Serve => serve(&app).await,
        Command::Sim(_) | Command::Demo | Command::Run(_) => unreachable!("handled above"),
    };
    app.db.close().await;
    result
}

async fn serve(app: &App) -> Result<(), Error> {
    // The address first: a taken port ends the command before anything is claimed.
    let listen = app.config.api.listen;
    let listener = match app.config.api.enabled {
        true => Some(crate::api::bind(listen).map_err(|source| Error::Io {
            context: format!("cannot listen on {listen} (api.listen)"),
            source,
        })?),
        false => None,
    };
    // Never beside a supervisor of another lease protocol (an older tether not stopped
    // before the upgrade): refused before anything starts.
    let supervisor = Supervisor::new(app.engine.clone());
    supervisor.check_protocol().await?;
    let shutdown = CancellationToken::new();
    let sweeper = tokio::spawn(app.sweeper(None).run(shutdown.clone()));
    let mut supervisor = tokio::spawn(supervisor.supervise(shutdown.clone()));
    // Waiters in this process hear of other processes' job changes, and the supervisor of
    // pokes (a provider event named a job it holds): through PostgreSQL's NOTIFY, or
    // SQLite's change log.
    let relay = crate::engine::changes::spawn_relay(
        &app.db,
        app.engine.changes().clone(),
        shutdown.clone(),
    );
    let readers = read_events(app, &shutdown).await;
    let mut api =
        listener.map(|l| tokio::spawn(crate::api::serve(app.clone(), l, shutdown.clone())));
    tracing::info!(database = %app.db.url(), owner = app.engine.owner(), "tether serve started");
    let mut result = Ok(());
    let api_ended = async {
        match api.as_mut() {
            Some(task) => task.await,
            None => std::future::pending().await,
        }
    };
    let mut supervisor_ended = false;
    tokio::select! {
        _ = shutdown_signal() => {}
        ended = &mut supervisor => {
            // It ends by itself only when it refuses to run (another lease protocol is alive).
            supervisor_ended = true;
            result = match ended {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(Error::Engine(e)),
                Err(e) => Err(Error::Usage(format!("the supervisor task failed: {e}"))),
            };
        }
        ended = api_ended => {
            result = match ended {
                Ok(Ok(())) => Ok(()),
                Ok(Err(source)) => Err(Error::Io { context: format!("serving the HTTP API on {listen}"), source }),
                Err(e) => Err(Error::Usage(format!("the HTTP API task failed: {e}"))),
            };
            api = None;
        }
    }
    tracing::info!("shutting down: releasing leases, leaving remote jobs running");
    shutdown.cancel();
    // Bounded: requests and polls in flight get the grace, the leases' release a little more;
    // past that the process exits anyway (its leases then run out by themselves).
    let limit = app.config.supervisor.shutdown_grace + SHUTDOWN_SLACK;
    let drained = tokio::time::timeout(limit, async {
        if let Some(api) = api {
            let _ = api.await;
        }
        if !supervisor_ended {
            if let Ok(Err(e)) = supervisor.await {
                tracing::error!(error = %e, "the supervisor stopped with an error");
            }
        }
        let _ = sweeper.await;
        for reader in readers {
            let _ = reader.await;
        }
        let _ = relay.await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            limit_ms = limit.as_millis() as u64,
            "shutdown did not finish in time; exiting (leases run out by themselves, remote jobs keep running)"
        );
    }
    result
}

/// Starts a reader of each `[events.NAME]` source, after writing the references events are
/// matched by of jobs recorded before they were (an upgrade; nothing to do after that).
async fn read_events(app: &App, shutdown: &CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
    match app.engine.backfill_handle_refs().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            jobs = n,
            "references of jobs recorded before events were written"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "writing the references of older jobs failed; events will not find those until the next start")
        }
    }
    crate::engine::events::spawn_readers(&app.engine, &app.config.events, shutdown)
}

/// What shutdown may take beyond `supervisor.shutdown_grace`: handing the leases back.
const SHUTDOWN_SLACK: std::time::Duration = std::time::Duration::from_secs(3);

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    match Interrupt::install() {
        Ok(interrupt) => interrupt.wait().await,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGINT/SIGTERM");
            std::future::pending::<()>().await
        }
    }
}

/// SIGINT and SIGTERM, listened for from the moment it is installed: a signal that arrives
/// while the process is busy (migrating, submitting) is remembered, not fatal.
#[derive(Debug, Clone)]
pub struct Interrupt(CancellationToken);

impl Interrupt {
    /// Installs the handlers now.
    pub fn install() -> Result<Self, Error> {
        use tokio::signal::unix::{signal, SignalKind};
        let io = |source| Error::Io {
            context: "installing the SIGINT/SIGTERM handlers".into(),
            source,
        };
        let mut int = signal(SignalKind::interrupt()).map_err(io)?;
        let mut term = signal(SignalKind::terminate()).map_err(io)?;
        let token = CancellationToken::new();
        let set = token.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = int.recv() => tracing::info!("SIGINT received"),
                _ = term.recv() => tracing::info!("SIGTERM received"),
            }
            set.cancel();
        });
        Ok(Self(token))
    }

    /// Whether a signal has arrived.
    pub fn is_set(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Resolves once a signal has arrived.
    pub async fn wait(&self) {
        self.0.cancelled().await
    }
}

pub(crate) fn print_json<T: serde::Serialize>(value: &T) {
    println!(
        "{}",
        serde_json::to_string(value).expect("tether's own output types serialise")
    );
}
