//! The simulator's run repair: `POST /api/2.2/jobs/runs/repair`, the tasks of a run as
//! `runs/get` reports them, and its `repair_history` (`include_history=true`).
//!
//! A run is its original attempt and then one attempt per repair. A task whose definition
//! names `fail-once` (say `"python_file": "dbfs:/sim/fail-once.py"`) fails in the original
//! attempt, which fails the run, and succeeds when repaired. A repair is refused while the run
//! is active, when `latest_repair_id` is not the run's latest repair (Databricks keeps
//! repairs in sequence that way), and when nothing failed; it reruns the failed tasks only
//! (`rerun_all_failed_tasks`, and any named in `rerun_tasks`), counted per task key in the
//! stats.

use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::{error, gate, invalid, malformed, respond_after, run_not_found};
use super::{Answer, Endpoint, Shared, SimRun};
use crate::client::{RepairHistoryItem, RunState, RunTask};

/// One attempt of a run: the original, or a repair.
#[derive(Debug)]
pub(super) struct Attempt {
    /// The repair's id (`None`: the original run).
    repair_id: Option<i64>,
    /// When it started.
    pub(super) created: Instant,
    /// When it started, in ms since the Unix epoch.
    start_ms: i64,
    /// The tasks it runs.
    tasks: Vec<String>,
    /// How it ended, once a later attempt started (`result_state`).
    ended_as: Option<String>,
}

impl Attempt {
    /// The original run of `tasks`, started at `start_ms`.
    pub(super) fn original(tasks: &[String], start_ms: i64) -> Self {
        Self {
            repair_id: None,
            created: Instant::now(),
            start_ms,
            tasks: tasks.to_vec(),
            ended_as: None,
        }
    }
}

/// The task keys of a submission, and those that fail once.
pub(super) fn tasks_of(body: &Value) -> (Vec<String>, Vec<String>) {
    let Some(tasks) = body.get("tasks").and_then(Value::as_array) else {
        return (vec!["main".to_string()], Vec::new());
    };
    let mut keys = Vec::new();
    let mut fail_once = Vec::new();
    for (i, task) in tasks.iter().enumerate() {
        let key = task
            .get("task_key")
            .and_then(Value::as_str)
            .map_or_else(|| format!("task{i}"), str::to_string);
        if task.to_string().contains("fail-once") {
            fail_once.push(key.clone());
        }
        keys.push(key);
    }
    (keys, fail_once)
}

impl SimRun {
    /// The result attempt `k` ends with: the original fails if a task of it fails once.
    pub(super) fn attempt_outcome(&self, k: usize) -> String {
        if k == 0 && !self.fail_once.is_empty() && self.outcome == "SUCCESS" {
            "FAILED".to_string()
        } else {
            self.outcome.clone()
        }
    }

    /// (life_cycle_state, result_state) of attempt `k` at `now`.
    fn attempt_state(&self, k: usize, now: Instant) -> (String, Option<String>) {
        if k + 1 == self.attempts.len() {
            let (life, result, _) = self.state(now);
            return (life.to_string(), result);
        }
        ("TERMINATED".to_string(), self.attempts[k].ended_as.clone())
    }

    /// A task's (life_cycle_state, result_state) in attempt `k`.
    fn task_state(&self, task: &str, k: usize, now: Instant) -> (String, Option<String>) {
        let (life, result) = self.attempt_state(k, now);
        let result = result.map(|r| {
            if k == 0 && r == "FAILED" && !self.fail_once.is_empty() {
                if self.fail_once.iter().any(|t| t == task) {
                    "FAILED".to_string()
                } else {
                    "SUCCESS".to_string()
                }
            } else {
                r
            }
        });
        (life, result)
    }

    /// The task run id of `task` (the `i`th) in attempt `k`.
    fn task_run_id(&self, i: usize, k: usize) -> i64 {
        self.id * 1000 + (k as i64) * 100 + i as i64
    }

    /// `tasks[]` of `runs/get`: each task as its latest attempt stands.
    pub(super) fn api_tasks(&self, now: Instant) -> Vec<RunTask> {
        self.tasks
            .iter()
            .enumerate()
            .map(|(i, task)| {
                let k = self
                    .attempts
                    .iter()
                    .rposition(|a| a.tasks.contains(task))
                    .unwrap_or(0);
                let (life, result) = self.task_state(task, k, now);
                let message = match result.as_deref() {
                    Some("SUCCESS") | None => String::new(),
                    Some(r) => format!("simulated task {task} ended with {r}"),
                };
                let attempt = self.attempts[..=k]
                    .iter()
                    .filter(|a| a.tasks.contains(task))
                    .count() as i64
                    - 1;
                RunTask {
                    task_key: task.clone(),
                    run_id: Some(self.task_run_id(i, k)),
                    attempt_number: Some(attempt),
                    state: Some(RunState {
                        life_cycle_state: Some(life),
                        result_state: result,
                        state_message: Some(message),
                    }),
                }
            })
            .collect()
    }

    /// `repair_history`: the original run, then each repair, with its state and task runs.
    pub(super) fn api_history(&self, now: Instant) -> Vec<RepairHistoryItem> {
        self.attempts
            .iter()
            .enumerate()
            .map(|(k, a)| {
                let (life, result) = self.attempt_state(k, now);
                RepairHistoryItem {
                    id: a.repair_id,
                    kind: Some(if k == 0 { "ORIGINAL" } else { "REPAIR" }.into()),
                    start_time: Some(a.start_ms),
                    state: Some(RunState {
                        life_cycle_state: Some(life),
                        result_state: result,
                        state_message: None,
                    }),
                    status: None,
                    task_run_ids: self
                        .tasks
                        .iter()
                        .enumerate()
                        .filter(|(_, t)| a.tasks.contains(t))
                        .map(|(i, _)| self.task_run_id(i, k))
                        .collect(),
                }
            })
            .collect()
    }

    /// The tasks whose latest attempt did not succeed.
    fn failed_tasks(&self, now: Instant) -> Vec<String> {
        self.api_tasks(now)
            .into_iter()
            .filter(|t| {
                t.state
                    .as_ref()
                    .and_then(|s| s.result_state.as_deref())
                    .is_some_and(|r| r != "SUCCESS")
            })
            .map(|t| t.task_key)
            .collect()
    }
}

/// `POST /api/2.2/jobs/runs/repair`.
pub(super) async fn repair_run(
    State(inner): State<Shared>,
    headers: HeaderMap,
    body: String,
) -> Answer {
    let after = gate(&inner, &headers, Endpoint::Submit).await?;
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return Err(malformed());
    };
    let Some(run_id) = body.get("run_id").and_then(Value::as_i64) else {
        return Err(invalid("run_id is required"));
    };
    let latest_given = body.get("latest_repair_id").and_then(Value::as_i64);
    let mut named: Vec<String> = body
        .get("rerun_tasks")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let all_failed = body
        .get("rerun_all_failed_tasks")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let now = Instant::now();
    let next_repair_id = guard.last_repair_id + 1;
    let Some(run) = guard.runs.get_mut(&run_id) else {
        return Err(run_not_found(run_id));
    };
    let (life, result, _) = run.state(now);
    if life != "TERMINATED" {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "INVALID_STATE",
            format!("Run {run_id} is still active: a run is repaired once it has terminated"),
        )
        .into());
    }
    let latest = run.attempts.last().and_then(|a| a.repair_id);
    if latest_given != latest {
        return Err(invalid(match latest {
            Some(id) => format!("latest_repair_id must be {id}, the run's latest repair"),
            None => "latest_repair_id must not be set: the run was never repaired".into(),
        }));
    }
    if let Some(unknown) = named.iter().find(|t| !run.tasks.contains(t)) {
        return Err(invalid(format!(
            "Task {unknown} is not a task of run {run_id}"
        )));
    }
    if all_failed {
        for task in run.failed_tasks(now) {
            if !named.contains(&task) {
                named.push(task);
            }
        }
    }
    if named.is_empty() {
        return Err(invalid(format!(
            "Run {run_id} has no failed tasks to repair"
        )));
    }
    if let Some(last) = run.attempts.last_mut() {
        last.ended_as = result;
    }
    run.attempts.push(Attempt {
        repair_id: Some(next_repair_id),
        created: now,
        start_ms: crate::now_ms(),
        tasks: named.clone(),
        ended_as: None,
    });
    run.cancelled = false;
    run.forced = None;
    if run.webhooks.is_some() {
        guard.notices.watch(run_id);
    }
    guard.last_repair_id = next_repair_id;
    guard.stats.repairs += 1;
    for task in named {
        *guard.stats.task_runs.entry(task).or_default() += 1;
    }
    drop(guard);
    Ok(respond_after(
        after,
        Json(json!({ "repair_id": next_repair_id })).into_response(),
    ))
}
