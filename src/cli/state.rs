//! `tether state ...`: task state from the command line.

use std::io::Read;

use clap::{Args, Subcommand};
use serde_json::json;

use super::print_json;
use crate::app::App;
use crate::state::value::parse_value;
use crate::state::{ClearTarget, Entry, Retention, Scope, SetOptions, TaskInstanceId};
use crate::Error;

/// The `state` subcommands.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Print a key's value (exit 3 if absent or expired).
    Get {
        /// The key.
        key: String,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Write a key.
    Set {
        /// The key.
        key: String,
        /// The value as JSON (`'"text"'`, `42`, `'{"a": 1}'`), or `-` to read it from stdin.
        value: String,
        #[command(flatten)]
        scope: ScopeArgs,
        /// Write only if the key has this version now; 0 means it must not exist (exit 4 if
        /// not).
        #[arg(long)]
        if_version: Option<i64>,
        /// How long the value lives: a duration (30d, 12h, 90s) or `never`. Default: the
        /// config's state.default_retention for task instances, never for tasks and assets.
        #[arg(long)]
        retention: Option<Retention>,
    },
    /// Delete a key (exit 3 if absent).
    Delete {
        /// The key.
        key: String,
        #[command(flatten)]
        scope: ScopeArgs,
        /// Delete only if the key has this version now (exit 4 if not).
        #[arg(long)]
        if_version: Option<i64>,
    },
    /// List the live keys of a scope.
    List {
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Delete every key of a scope.
    Clear {
        #[command(flatten)]
        scope: ScopeArgs,
        /// With a task instance: clear every map index of the task in that run.
        #[arg(long)]
        all_map_indices: bool,
    },
    /// Delete all task-instance state of a DAG run (as when Airflow deletes the run).
    ForgetRun {
        /// The DAG id.
        #[arg(long)]
        dag: String,
        /// The run id.
        #[arg(long)]
        run: String,
    },
    /// Report that a task instance succeeded: clears its state if state.clear_on_success is
    /// set in the config.
    OnSuccess {
        #[command(flatten)]
        scope: ScopeArgs,
    },
}

/// Which scope a command works on: a task instance (`--dag --run --task [--map-index]`), a
/// task across runs (`--dag --task --task-scope`), or an asset (`--asset`).
#[derive(Debug, Args)]
pub struct ScopeArgs {
    /// DAG id.
    #[arg(long)]
    dag: Option<String>,
    /// DAG run id (task-instance scope).
    #[arg(long)]
    run: Option<String>,
    /// Task id.
    #[arg(long)]
    task: Option<String>,
    /// Map index of a mapped task instance; -1 (the default) for an unmapped one.
    #[arg(long, allow_negative_numbers = true)]
    map_index: Option<i64>,
    /// Use the task's state across all runs (needs --dag and --task, no --run).
    #[arg(long)]
    task_scope: bool,
    /// Use an asset's state, by name or URI.
    #[arg(long, conflicts_with_all = ["dag", "run", "task", "map_index", "task_scope"])]
    asset: Option<String>,
}

impl ScopeArgs {
    fn scope(&self) -> Result<Scope, Error> {
        if let Some(asset) = &self.asset {
            return Ok(Scope::asset(asset));
        }
        let usage = |m: &str| Err(Error::Usage(m.to_string()));
        let (Some(dag), Some(task)) = (&self.dag, &self.task) else {
            return usage("give a scope: --dag D --run R --task T [--map-index I] for a task instance, --dag D --task T --task-scope for a task, or --asset NAME");
        };
        if self.task_scope {
            if self.run.is_some() || self.map_index.is_some() {
                return usage(
                    "--task-scope is the task across all runs: drop --run and --map-index",
                );
            }
            return Ok(Scope::task(dag, task));
        }
        let Some(run) = &self.run else {
            return usage(
                "a task instance needs --run (or use --task-scope for the task across runs)",
            );
        };
        Ok(Scope::TaskInstance(TaskInstanceId::new(
            dag,
            run,
            task,
            self.map_index.unwrap_or(-1),
        )))
    }

    fn task_instance(&self) -> Result<TaskInstanceId, Error> {
        match self.scope()? {
            Scope::TaskInstance(ti) => Ok(ti),
            _ => Err(Error::Usage(
                "this command takes a task instance: --dag D --run R --task T [--map-index I]"
                    .into(),
            )),
        }
    }
}

pub(super) async fn run(app: &App, cmd: &StateCommand, json: bool) -> Result<(), Error> {
    let state = &app.state;
    match cmd {
        StateCommand::Get { key, scope } => {
            let scope = scope.scope()?;
            let entry = state.get(&scope, key).await?.ok_or_else(|| {
                crate::state::StateError::NotFound {
                    scope: scope.to_string(),
                    key: key.clone(),
                }
            })?;
            if json {
                print_json(&entry);
            } else {
                println!("{}", entry.value);
            }
        }
        StateCommand::Set {
            key,
            value,
            scope,
            if_version,
            retention,
        } => {
            let scope = scope.scope()?;
            let text = if value == "-" {
                let mut buf = String::new();
                std::io::stdin()
                    .read_to_string(&mut buf)
                    .map_err(|source| Error::Io {
                        context: "reading the value from stdin".into(),
                        source,
                    })?;
                buf
            } else {
                value.clone()
            };
            let value = parse_value(&text).map_err(crate::state::StateError::from)?;
            let options = SetOptions {
                if_version: *if_version,
                retention: *retention,
            };
            let written = state.set(&scope, key, value, options).await?;
            if json {
                print_json(&json!({
                    "key": key,
                    "version": written.version,
                    "expires_at": written.expires_at,
                }));
            } else {
                let expiry = written.expires_at.map_or("never expires".to_string(), |t| {
                    format!(
                        "expires {}",
                        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    )
                });
                println!("{key}: version {}, {expiry}", written.version);
            }
        }
        StateCommand::Delete {
            key,
            scope,
            if_version,
        } => {
            let scope = scope.scope()?;
            state.delete(&scope, key, *if_version).await?;
            if json {
                print_json(&json!({ "key": key, "deleted": true }));
            } else {
                println!("{key}: deleted");
            }
        }
        StateCommand::List { scope } => {
            let scope = scope.scope()?;
            let entries = state.list(&scope).await?;
            if json {
                print_json(&entries);
            } else {
                print_table(&entries);
            }
        }
        StateCommand::Clear {
            scope,
            all_map_indices,
        } => {
            let target = if *all_map_indices {
                let ti = scope.task_instance()?;
                ClearTarget::AllMapIndices {
                    dag_id: ti.dag_id,
                    run_id: ti.run_id,
                    task_id: ti.task_id,
                }
            } else {
                ClearTarget::Scope(scope.scope()?)
            };
            let removed = state.clear(&target).await?;
            print_removed(removed, json);
        }
        StateCommand::ForgetRun { dag, run } => {
            let removed = state.forget_run(dag, run).await?;
            print_removed(removed, json);
        }
        StateCommand::OnSuccess { scope } => {
            let ti = scope.task_instance()?;
            let removed = state.task_instance_succeeded(&ti).await?;
            print_removed(removed, json);
        }
    }
    Ok(())
}

fn print_removed(removed: u64, json: bool) {
    if json {
        print_json(&json!({ "removed": removed }));
    } else {
        println!("removed {removed} keys");
    }
}

fn print_table(entries: &[Entry]) {
    let width = entries
        .iter()
        .map(|e| e.key.len())
        .max()
        .unwrap_or(3)
        .max(3);
    println!(
        "{:width$}  {:>7}  {:25}  VALUE",
        "KEY", "VERSION", "EXPIRES"
    );
    for e in entries {
        let expires = e.expires_at.map_or("never".to_string(), |t| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        });
        println!(
            "{:width$}  {:>7}  {:25}  {}",
            e.key, e.version, expires, e.value
        );
    }
}
