//! `tether run`: ensure a job for a task instance and wait for it, printing its progress.
//!
//! Killing this process leaves the remote job running; running the same command again (any
//! try) reattaches. SIGINT/SIGTERM never cancel and exit 5: they are listened for before the
//! database is touched; one that arrives while the job is being submitted waits (up to
//! `supervisor.shutdown_grace`) for the submission's outcome to be recorded; one that arrives
//! while waiting releases the job's lease at once.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::Value;
use tether_provider::JobState;
use tokio_util::sync::CancellationToken;

use super::{Cli, Interrupt};
use crate::app::App;
use crate::engine::{EnsureRequest, Ensured, Supervisor};
use crate::jobs::{JobRecord, Phase};
use crate::state::TaskInstanceId;
use crate::Error;

/// Arguments of `tether run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configured provider to run the job on (`[providers.NAME]`).
    #[arg(long)]
    provider: String,
    /// The job spec: a JSON file with the provider's submit body, or `-` for stdin.
    #[arg(long)]
    spec: PathBuf,
    /// DAG id.
    #[arg(long)]
    dag: String,
    /// DAG run id.
    #[arg(long)]
    run: String,
    /// Task id.
    #[arg(long)]
    task: String,
    /// Map index; -1 (the default) for an unmapped task.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    map_index: i64,
    /// The task's try number (Airflow's `ti.try_number`); 1 for the first try.
    #[arg(long = "try", value_name = "N")]
    try_number: i64,
    /// The job's name, when a task runs several jobs.
    #[arg(long, default_value = "main")]
    name: String,
    /// Return after submitting (or reattaching) instead of waiting for the job.
    #[arg(long)]
    no_wait: bool,
}

fn read_spec(path: &PathBuf) -> Result<Value, Error> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|source| Error::Io {
            context: "reading the job spec from stdin".into(),
            source,
        })?
    } else {
        std::fs::read_to_string(path).map_err(|source| Error::Io {
            context: format!("reading the job spec {}", path.display()),
            source,
        })?
    };
    serde_json::from_str(&text)
        .map_err(|e| Error::Usage(format!("the job spec {} is not JSON: {e}", path.display())))
}

pub(super) async fn run(cli: &Cli, args: &RunArgs) -> Result<(), Error> {
    let interrupt = Interrupt::install()?;
    let spec = read_spec(&args.spec)?;
    let app = App::open(cli.load_config()?).await?;
    let result = ensure_and_wait(&app, args, spec, cli.json, &interrupt).await;
    app.db.close().await;
    result
}

async fn ensure_and_wait(
    app: &App,
    args: &RunArgs,
    spec: Value,
    json: bool,
    interrupt: &Interrupt,
) -> Result<(), Error> {
    if interrupt.is_set() {
        return Err(Error::Interrupted(
            "nothing was submitted; run the same command again".into(),
        ));
    }
    let request = EnsureRequest {
        task_instance: TaskInstanceId::new(&args.dag, &args.run, &args.task, args.map_index),
        try_number: args.try_number,
        name: args.name.clone(),
        provider: args.provider.clone(),
        spec,
    };
    let engine = app.engine.clone();
    let mut ensuring = tokio::spawn(async move { engine.ensure(&request).await });
    let joined = tokio::select! {
        joined = &mut ensuring => joined,
        _ = interrupt.wait() => {
            // Leaving now could abandon a submission between the provider and the database:
            // let its outcome be recorded first, within bounds.
            let grace = app.config.supervisor.shutdown_grace;
            eprintln!(
                "interrupted: waiting up to {} for the submission to be recorded (the remote job is never cancelled)",
                humantime::format_duration(grace)
            );
            match tokio::time::timeout(grace, &mut ensuring).await {
                Ok(Ok(Ok(ensured))) => {
                    report(&ensured, args.try_number, json);
                    return Err(Error::Interrupted(format!(
                        "job {} keeps running; run the same command again to reattach",
                        ensured.job.id
                    )));
                }
                Ok(joined) => joined,
                Err(_) => {
                    ensuring.abort();
                    return Err(Error::Interrupted(format!(
                        "the submission was not recorded within {}; run the same command again: tether reconciles it with the provider, so nothing is submitted twice",
                        humantime::format_duration(grace)
                    )));
                }
            }
        }
    };
    // The task is only aborted above, after which this is not reached: a join error is a panic.
    let ensured = joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
    report(&ensured, args.try_number, json);
    let job = ensured.job;
    if args.no_wait || job.phase == Phase::Terminal {
        return outcome(&job);
    }
    wait(app, &job, json, interrupt).await
}

/// Prints what `ensure` did, and a warning for each duplicate submission it knows of.
fn report(ensured: &Ensured, try_number: i64, json: bool) {
    let job = &ensured.job;
    if json {
        super::print_json(&serde_json::json!({ "action": ensured.action, "job": job }));
    } else {
        let handle = job
            .handle
            .as_ref()
            .map_or("-".to_string(), |h| h.to_string());
        println!(
            "job {} ({}, generation {}): {:?} on try {try_number}; handle {handle}",
            job.id, job.name, job.generation, ensured.action
        );
    }
    warn_duplicates(job, 0);
}

/// Warns on stderr of the duplicates of `job` beyond the first `already` ones.
fn warn_duplicates(job: &JobRecord, already: usize) {
    for dup in job.duplicates.iter().skip(already) {
        eprintln!(
            "warning: DUPLICATE SUBMISSION: the provider also has job {dup} with this job's key {}; tether tracks {} and leaves {dup} alone: cancel it by hand if it should not run",
            job.idempotency_key,
            job.handle.as_ref().map_or("-".to_string(), |h| h.to_string()),
        );
    }
}

/// Supervises the job (taking its lease when it is free) and prints progress until it ends.
async fn wait(app: &App, job: &JobRecord, json: bool, interrupt: &Interrupt) -> Result<(), Error> {
    let job_id = job.id;
    let stop = CancellationToken::new();
    let supervisor =
        tokio::spawn(Supervisor::for_job(app.engine.clone(), job_id).run(stop.clone()));
    let started = Instant::now();
    let mut last: Option<(JobState, Option<String>)> = None;
    let mut duplicates_seen = job.duplicates.len();
    let result = loop {
        let job = match app.engine.jobs().get(job_id).await {
            Ok(Some(job)) => job,
            Ok(None) => {
                break Err(Error::Engine(crate::engine::EngineError::JobNotFound(
                    job_id,
                )))
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the job failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let now = (job.state, job.raw_state.clone());
        if last.as_ref() != Some(&now) {
            progress(&job, started.elapsed(), json);
            last = Some(now);
        }
        if job.duplicates.len() > duplicates_seen {
            warn_duplicates(&job, duplicates_seen);
            duplicates_seen = job.duplicates.len();
        }
        if job.phase == Phase::Terminal {
            break outcome(&job);
        }
        tokio::select! {
            _ = interrupt.wait() => break Err(Error::Interrupted(format!(
                "job {job_id} keeps running; run the same command again to reattach"
            ))),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    };
    stop.cancel();
    let _ = supervisor.await;
    result
}

fn progress(job: &JobRecord, elapsed: Duration, json: bool) {
    if json {
        super::print_json(&serde_json::json!({
            "job_id": job.id, "state": job.state, "raw_state": job.raw_state,
            "elapsed_s": elapsed.as_secs(), "url": job.url,
        }));
        return;
    }
    let secs = elapsed.as_secs();
    println!(
        "[{:02}:{:02}:{:02}] job {} {} ({}){}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        job.id,
        job.state,
        job.raw_state.as_deref().unwrap_or("-"),
        job.url
            .as_deref()
            .map_or(String::new(), |u| format!(" {u}"))
    );
}

fn outcome(job: &JobRecord) -> Result<(), Error> {
    match job.state {
        JobState::Succeeded => Ok(()),
        state if state.is_terminal() => Err(Error::JobFailed {
            job_id: job.id,
            state: state.to_string(),
            message: job
                .message
                .clone()
                .filter(|m| !m.is_empty())
                .or_else(|| job.raw_state.clone())
                .unwrap_or_else(|| "no message from the provider".into()),
        }),
        _ => Ok(()),
    }
}
