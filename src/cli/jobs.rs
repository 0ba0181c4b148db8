//! `tether jobs ...`: list, inspect and cancel jobs.

use clap::Subcommand;
use tether_provider::JobState;

use super::print_json;
use crate::app::App;
use crate::jobs::{JobFilter, JobRecord};
use crate::Error;

/// The `jobs` subcommands.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first.
    List {
        /// Only this DAG.
        #[arg(long)]
        dag: Option<String>,
        /// Only this run.
        #[arg(long)]
        run: Option<String>,
        /// Only this state (pending, running, succeeded, failed, cancelled, lost, unknown).
        #[arg(long, value_parser = parse_state)]
        state: Option<JobState>,
        /// Only this provider.
        #[arg(long)]
        provider: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Show one job.
    Show {
        /// The job id.
        id: i64,
    },
    /// Show a job's event log.
    Events {
        /// The job id.
        id: i64,
    },
    /// Cancel a job at the provider (the only way tether ever cancels one).
    Cancel {
        /// The job id.
        id: i64,
        /// Why; recorded in the event log.
        #[arg(long, default_value = "cancelled from the command line")]
        reason: String,
    },
}

fn parse_state(s: &str) -> Result<JobState, String> {
    JobState::parse(s).ok_or_else(|| {
        format!("{s:?} is not a job state (pending, running, succeeded, failed, cancelled, lost, unknown)")
    })
}

pub(super) async fn run(app: &App, cmd: &JobsCommand, json: bool) -> Result<(), Error> {
    let jobs = app.engine.jobs();
    match cmd {
        JobsCommand::List {
            dag,
            run,
            state,
            provider,
            limit,
        } => {
            let filter = JobFilter {
                dag_id: dag.clone(),
                run_id: run.clone(),
                state: *state,
                provider: provider.clone(),
                limit: *limit,
                before_id: None,
            };
            let list = jobs.list(&filter).await?;
            if json {
                print_json(&list);
            } else {
                println!(
                    "{:>6}  {:10}  {:24}  {:12}  {:4}  TASK INSTANCE",
                    "ID", "STATE", "RAW STATE", "PROVIDER", "GEN"
                );
                for j in &list {
                    println!(
                        "{:>6}  {:10}  {:24}  {:12}  {:4}  {} {}",
                        j.id,
                        j.state.as_str(),
                        j.raw_state.as_deref().unwrap_or("-"),
                        j.provider,
                        j.generation,
                        j.task_instance,
                        j.name
                    );
                }
            }
        }
        JobsCommand::Show { id } => {
            let job = find(app, *id).await?;
            if json {
                print_json(&job);
            } else {
                print_job(&job);
            }
        }
        JobsCommand::Events { id } => {
            find(app, *id).await?;
            let events = jobs.events(*id).await?;
            if json {
                print_json(&events);
            } else {
                for e in events {
                    println!(
                        "{}  {:16}  {:10}  {}  {}",
                        e.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        e.kind,
                        e.state.as_deref().unwrap_or("-"),
                        e.detail.map_or(String::new(), |d| d.to_string()),
                        e.actor
                    );
                }
            }
        }
        JobsCommand::Cancel { id, reason } => {
            let job = app.engine.cancel(*id, reason, "cli").await?;
            if json {
                print_json(&job);
            } else if ended_before_the_request(&job) {
                println!("job {id} had already ended: {}", job.state);
            } else if job.cancel_sent_at.is_some() {
                // The supervisor polling the job may already have seen it end.
                let now = if job.state.is_terminal() {
                    format!("; it has ended: {}", job.state)
                } else {
                    String::new()
                };
                println!("job {id}: cancel sent to {}{now}", job.provider);
            } else {
                println!(
                    "job {id}: cancel requested; the supervisor sends it to {}",
                    job.provider
                );
            }
        }
    }
    Ok(())
}

/// Whether the job had finished before this cancel was asked for (rather than because of it).
fn ended_before_the_request(job: &JobRecord) -> bool {
    job.finished_at
        .is_some_and(|ended| job.cancel_requested_at.is_none_or(|asked| ended < asked))
}

async fn find(app: &App, id: i64) -> Result<JobRecord, Error> {
    app.engine
        .jobs()
        .get(id)
        .await?
        .ok_or(Error::Engine(crate::engine::EngineError::JobNotFound(id)))
}

fn print_job(j: &JobRecord) {
    let t = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map_or("-".to_string(), |t| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
    };
    println!("job {} ({})", j.id, j.name);
    println!("  task instance   {}", j.task_instance);
    println!("  provider        {}", j.provider);
    println!(
        "  state           {} ({})",
        j.state,
        j.raw_state.as_deref().unwrap_or("-")
    );
    println!("  message         {}", j.message.as_deref().unwrap_or("-"));
    println!("  phase           {}", j.phase.as_str());
    println!(
        "  handle          {}",
        j.handle.as_ref().map_or("-".into(), |h| h.to_string())
    );
    println!("  url             {}", j.url.as_deref().unwrap_or("-"));
    println!(
        "  generation      {} (submitted by try {})",
        j.generation, j.try_number
    );
    println!("  idempotency key {}", j.idempotency_key);
    println!(
        "  lease           {} epoch {} until {}",
        j.lease_owner.as_deref().unwrap_or("-"),
        j.lease_epoch,
        t(j.lease_expires_at)
    );
    println!(
        "  cancel          requested {} sent {} {}",
        t(j.cancel_requested_at),
        t(j.cancel_sent_at),
        j.cancel_reason.as_deref().unwrap_or("")
    );
    println!("  created         {}", t(Some(j.created_at)));
    println!("  finished        {}", t(j.finished_at));
    for dup in &j.duplicates {
        println!("  DUPLICATE       {dup} carries this job's key too; tether does not track it (cancel it by hand if it should not run)");
    }
}
