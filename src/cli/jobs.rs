//! `tether jobs ...`: list, inspect, cancel, settle and prune jobs.

use clap::Subcommand;
use tether_provider::JobState;

use super::print_json;
use crate::app::App;
use crate::engine::Resolution;
use crate::jobs::{JobFilter, JobRecord};
use crate::model::JobId;
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
        /// Only this state (pending, running, succeeded, failed, cancelled, lost,
        /// outcome_unknown, unknown).
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
        id: JobId,
    },
    /// Show a job's event log.
    Events {
        /// The job id.
        id: JobId,
    },
    /// Remove finished jobs (and their events) that finished longer ago than --older-than,
    /// once; unfinished jobs, and a task instance's newest generation while its
    /// `tether.job.<name>` task-state key is there, are kept. `tether serve` does this on the
    /// GC schedule for `jobs.retention`.
    Prune {
        /// How long ago a job must have finished, e.g. `7d`, `12h`.
        #[arg(long, value_parser = humantime::parse_duration)]
        older_than: std::time::Duration,
        /// Only count what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Jobs removed per transaction (default: gc.batch_size from the config).
        #[arg(long)]
        batch_size: Option<u32>,
    },
    /// Settle a job whose outcome is unknown (the provider forgot it after reporting it, before
    /// tether read its end): say what became of it. Recorded in its event log with who and
    /// why. Exactly one of --succeeded, --failed, --resubmit.
    Resolve {
        /// The job id.
        id: JobId,
        /// It succeeded (you checked the provider's records or its output).
        #[arg(long, conflicts_with_all = ["failed", "resubmit"], required_unless_present_any = ["failed", "resubmit"])]
        succeeded: bool,
        /// It failed: the next try of its task runs it again.
        #[arg(long, conflicts_with = "resubmit")]
        failed: bool,
        /// Run it again: recorded `lost`, so that the next try of its task submits it anew.
        #[arg(long)]
        resubmit: bool,
        /// Why; recorded in the event log.
        #[arg(long)]
        reason: String,
        /// Who settles it; recorded in the event log (default: $USER).
        #[arg(long, env = "USER", default_value = "unknown")]
        by: String,
    },
    /// Cancel a job at the provider (the only way tether ever cancels one).
    Cancel {
        /// The job id.
        id: JobId,
        /// Why; recorded in the event log.
        #[arg(long, default_value = "cancelled from the command line")]
        reason: String,
    },
}

fn parse_state(s: &str) -> Result<JobState, String> {
    JobState::parse(s).ok_or_else(|| format!("{s:?} is not a job state ({})", JobState::NAMES))
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
                ..JobFilter::default()
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
        JobsCommand::Prune {
            older_than,
            dry_run,
            batch_size,
        } => {
            let now = app.clock.now();
            let before = crate::jobs::retention::cutoff(now, *older_than)
                .ok_or_else(|| Error::Usage(format!("--older-than {older_than:?} is too long")))?;
            let batch = batch_size.unwrap_or(app.config.gc.batch_size);
            let pruned = crate::jobs::retention::prune(jobs, before, now, batch, *dry_run).await?;
            if json {
                print_json(&pruned);
            } else if *dry_run {
                println!(
                    "would remove {} finished jobs that finished before {}",
                    pruned.jobs,
                    before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
            } else {
                println!(
                    "removed {} finished jobs ({} events) that finished before {}",
                    pruned.jobs,
                    pruned.events,
                    before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
            }
        }
        JobsCommand::Resolve {
            id,
            succeeded,
            failed,
            resubmit: _,
            reason,
            by,
        } => {
            let resolution = match (succeeded, failed) {
                (true, _) => Resolution::Succeeded,
                (_, true) => Resolution::Failed,
                _ => Resolution::Resubmit,
            };
            let actor = format!("cli:{by}");
            let job = app.engine.resolve(*id, resolution, &actor, reason).await?;
            if json {
                print_json(&job);
            } else {
                println!(
                    "job {id} settled as {} by {by}: recorded {}{}",
                    resolution.as_str(),
                    job.state,
                    match resolution {
                        Resolution::Succeeded => "",
                        _ => "; the next try of its task submits it anew",
                    }
                );
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

async fn find(app: &App, id: JobId) -> Result<JobRecord, Error> {
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
