//! How Databricks run, pipeline update and SQL statement states map to tether's.
//!
//! A run carries the classic `state` (`life_cycle_state` + `result_state`) and, in newer
//! workspaces, `status` (`state` + `termination_details`). `status` wins when it says the run
//! terminated with details; otherwise the classic fields decide. A state this table does not
//! know is reported as running with a warning: never as success.
//!
//! Reference: <https://docs.databricks.com/api/workspace/jobs/getrun>

use tether_provider::{JobState, RemoteStatus};

use crate::client::Run;

/// Maps a `runs/get` answer to tether's status.
pub fn run_status(run: &Run) -> RemoteStatus {
    let classic = run.state.as_ref();
    let life = classic.and_then(|s| s.life_cycle_state.as_deref());
    let result = classic.and_then(|s| s.result_state.as_deref());
    let mut message = classic
        .and_then(|s| s.state_message.clone())
        .filter(|m| !m.is_empty());

    let newer = run.status.as_ref();
    let status_state = newer.and_then(|s| s.state.as_deref());
    let details = newer.and_then(|s| s.termination_details.as_ref());

    let (state, raw) = match (status_state, details) {
        (Some("TERMINATED"), Some(d)) if d.code.is_some() => {
            let code = d.code.as_deref().unwrap_or_default();
            if let Some(m) = d.message.clone().filter(|m| !m.is_empty()) {
                message = Some(m);
            }
            (termination_code(code), format!("TERMINATED/{code}"))
        }
        (Some(s), _) if life.is_none() => (status_only(s), s.to_string()),
        _ => {
            let life_name = life.unwrap_or("");
            let raw = match result {
                Some(r) => format!("{life_name}/{r}"),
                None => life_name.to_string(),
            };
            (classic_state(life_name, result), raw)
        }
    };
    let state = state.unwrap_or_else(|| {
        tracing::warn!(
            provider = "databricks",
            run_id = run.run_id,
            raw_state = %raw,
            "unknown Databricks run state; treating it as running"
        );
        JobState::Running
    });
    if state == JobState::Failed {
        if let Some(named) = failed_tasks(run, message.as_deref()) {
            message = Some(named);
        }
    }
    RemoteStatus {
        state,
        raw_state: raw,
        message,
        url: run.run_page_url.clone(),
        next_poll_hint: None,
    }
}

/// A failed multi-task run's message: which tasks failed, and why the first did.
fn failed_tasks(run: &Run, run_message: Option<&str>) -> Option<String> {
    let failed: Vec<&crate::client::RunTask> = run
        .tasks
        .iter()
        .filter(|t| {
            t.state
                .as_ref()
                .and_then(|s| s.result_state.as_deref())
                .and_then(result_state)
                == Some(JobState::Failed)
        })
        .collect();
    let first = failed.first()?;
    let keys: Vec<&str> = failed.iter().map(|t| t.task_key.as_str()).collect();
    let why = first
        .state
        .as_ref()
        .and_then(|s| s.state_message.as_deref())
        .filter(|m| !m.is_empty())
        .or(run_message)
        .unwrap_or("no message");
    let noun = if keys.len() == 1 { "task" } else { "tasks" };
    Some(format!("{noun} {} failed: {why}", keys.join(", ")))
}

/// The status of the repair `repair_id` of a run read with its `repair_history`: the repair's
/// own item (its state, and the tasks it ran), or pending while the history does not show it
/// yet. The run's overall state before the repair is the failure being repaired, never this
/// attempt's.
pub fn repair_status(run: &Run, repair_id: i64) -> RemoteStatus {
    let Some(item) = run.repair_history.iter().find(|i| i.id == Some(repair_id)) else {
        return RemoteStatus {
            state: JobState::Pending,
            raw_state: "REPAIR_REQUESTED".into(),
            message: Some(format!(
                "repair {repair_id} is not in the run's history yet"
            )),
            url: run.run_page_url.clone(),
            next_poll_hint: None,
        };
    };
    let attempt = Run {
        run_id: run.run_id,
        job_id: run.job_id,
        run_name: run.run_name.clone(),
        state: item.state.clone(),
        status: item.status.clone(),
        run_page_url: run.run_page_url.clone(),
        start_time: item.start_time,
        tasks: run
            .tasks
            .iter()
            .filter(|t| t.run_id.is_some_and(|id| item.task_run_ids.contains(&id)))
            .cloned()
            .collect(),
        repair_history: Vec::new(),
        next_page_token: None,
    };
    run_status(&attempt)
}

fn classic_state(life: &str, result: Option<&str>) -> Option<JobState> {
    Some(match life {
        "QUEUED" | "PENDING" | "BLOCKED" | "WAITING_FOR_RETRY" => JobState::Pending,
        "RUNNING" | "TERMINATING" => JobState::Running,
        "SKIPPED" => JobState::Cancelled,
        "INTERNAL_ERROR" => JobState::Failed,
        // Terminated: the result decides. Without one the run is not finished for us.
        "TERMINATED" => return result.and_then(result_state),
        _ => return None,
    })
}

fn result_state(result: &str) -> Option<JobState> {
    Some(match result {
        "SUCCESS" | "SUCCESS_WITH_FAILURES" => JobState::Succeeded,
        "FAILED" | "TIMEDOUT" | "MAXIMUM_CONCURRENT_RUNS_REACHED" | "UPSTREAM_FAILED" => {
            JobState::Failed
        }
        // EXCLUDED: "skipped because the necessary conditions were not met" (databricks-sdk's
        // RunResultState): nothing ran, as with the newer termination code SKIPPED.
        "CANCELED" | "UPSTREAM_CANCELED" | "DISABLED" | "EXCLUDED" => JobState::Cancelled,
        _ => return None,
    })
}

fn status_only(state: &str) -> Option<JobState> {
    Some(match state {
        "QUEUED" | "PENDING" | "BLOCKED" | "WAITING" => JobState::Pending,
        "RUNNING" | "TERMINATING" => JobState::Running,
        _ => return None,
    })
}

fn termination_code(code: &str) -> Option<JobState> {
    Some(match code {
        "SUCCESS" | "SUCCESS_WITH_FAILURES" => JobState::Succeeded,
        "USER_CANCELED" | "CANCELED" | "SKIPPED" | "DISABLED" => JobState::Cancelled,
        "" => return None,
        // Every other code names a failure (RUN_EXECUTION_ERROR, DRIVER_ERROR, ...).
        _ => JobState::Failed,
    })
}

/// A pipeline update's `state`s (databricks-sdk's `UpdateInfoState`), in the SDK's order, and
/// what each is for tether: waiting for its cluster, pending; setting up and running, running;
/// then `COMPLETED`, `FAILED` or `CANCELED`.
///
/// Reference: <https://docs.databricks.com/api/workspace/pipelines/getupdate>
pub const UPDATE_STATES: &[(&str, JobState)] = &[
    ("QUEUED", JobState::Pending),
    ("CREATED", JobState::Pending),
    ("WAITING_FOR_RESOURCES", JobState::Pending),
    ("INITIALIZING", JobState::Running),
    ("RESETTING", JobState::Running),
    ("SETTING_UP_TABLES", JobState::Running),
    ("RUNNING", JobState::Running),
    ("STOPPING", JobState::Running),
    ("COMPLETED", JobState::Succeeded),
    ("FAILED", JobState::Failed),
    ("CANCELED", JobState::Cancelled),
];

/// A SQL statement's `status.state`s (databricks-sdk's `StatementState`), in the SDK's order,
/// and what each is for tether. `CLOSED` is a statement that succeeded and whose result was
/// released ("execution successful, and statement closed; result no longer available for
/// fetch"): a success.
///
/// Reference: <https://docs.databricks.com/api/workspace/statementexecution/getstatement>
pub const STATEMENT_STATES: &[(&str, JobState)] = &[
    ("PENDING", JobState::Pending),
    ("RUNNING", JobState::Running),
    ("SUCCEEDED", JobState::Succeeded),
    ("FAILED", JobState::Failed),
    ("CANCELED", JobState::Cancelled),
    ("CLOSED", JobState::Succeeded),
];

/// What a pipeline update's `state` is for tether ([`UPDATE_STATES`]; `None`: unknown).
pub fn update_state(raw: &str) -> Option<JobState> {
    lookup(UPDATE_STATES, raw)
}

/// What a SQL statement's `status.state` is for tether ([`STATEMENT_STATES`]; `None`:
/// unknown).
pub fn statement_state(raw: &str) -> Option<JobState> {
    lookup(STATEMENT_STATES, raw)
}

/// What `table` says `raw` is.
fn lookup(table: &[(&str, JobState)], raw: &str) -> Option<JobState> {
    table
        .iter()
        .find(|(name, _)| *name == raw)
        .map(|&(_, state)| state)
}

/// A status from a raw state and the table that reads it; a state the table does not know
/// (or none at all) is logged and read as running, never as an end.
pub fn read_state(
    kind: &'static str,
    id: &str,
    raw: Option<&str>,
    table: fn(&str) -> Option<JobState>,
) -> RemoteStatus {
    let raw = raw.unwrap_or_default();
    let state = table(raw).unwrap_or_else(|| {
        tracing::warn!(
            provider = kind,
            id,
            raw_state = raw,
            "unknown {kind} state; treating it as running"
        );
        JobState::Running
    });
    RemoteStatus {
        state,
        raw_state: raw.to_string(),
        message: None,
        url: None,
        next_poll_hint: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status(v: serde_json::Value) -> RemoteStatus {
        run_status(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn classic_states() {
        let cases = [
            ("QUEUED", None, JobState::Pending),
            ("PENDING", None, JobState::Pending),
            ("BLOCKED", None, JobState::Pending),
            ("WAITING_FOR_RETRY", None, JobState::Pending),
            ("RUNNING", None, JobState::Running),
            ("TERMINATING", None, JobState::Running),
            ("TERMINATED", Some("SUCCESS"), JobState::Succeeded),
            (
                "TERMINATED",
                Some("SUCCESS_WITH_FAILURES"),
                JobState::Succeeded,
            ),
            ("TERMINATED", Some("EXCLUDED"), JobState::Cancelled),
            ("TERMINATED", Some("FAILED"), JobState::Failed),
            ("TERMINATED", Some("TIMEDOUT"), JobState::Failed),
            (
                "TERMINATED",
                Some("MAXIMUM_CONCURRENT_RUNS_REACHED"),
                JobState::Failed,
            ),
            ("TERMINATED", Some("UPSTREAM_FAILED"), JobState::Failed),
            ("TERMINATED", Some("CANCELED"), JobState::Cancelled),
            ("TERMINATED", Some("UPSTREAM_CANCELED"), JobState::Cancelled),
            ("TERMINATED", Some("DISABLED"), JobState::Cancelled),
            ("SKIPPED", None, JobState::Cancelled),
            ("INTERNAL_ERROR", Some("FAILED"), JobState::Failed),
        ];
        for (life, result, want) in cases {
            let s = status(
                json!({"run_id": 1, "state": {"life_cycle_state": life, "result_state": result}}),
            );
            assert_eq!(s.state, want, "{life}/{result:?}");
        }
    }

    #[test]
    fn unknown_states_are_running_never_success() {
        for v in [
            json!({"run_id": 1, "state": {"life_cycle_state": "FROBNICATING"}}),
            json!({"run_id": 1, "state": {"life_cycle_state": "TERMINATED", "result_state": "MAYBE"}}),
            json!({"run_id": 1, "state": {"life_cycle_state": "TERMINATED"}}),
            json!({"run_id": 1}),
        ] {
            assert_eq!(status(v.clone()).state, JobState::Running, "{v}");
        }
        let s = status(json!({"run_id": 1, "state": {"life_cycle_state": "FROBNICATING"}}));
        assert_eq!(s.raw_state, "FROBNICATING");
    }

    #[test]
    fn newer_status_field() {
        let s = status(json!({"run_id": 1,
            "state": {"life_cycle_state": "TERMINATED", "result_state": "FAILED"},
            "status": {"state": "TERMINATED", "termination_details":
                {"code": "DRIVER_ERROR", "type": "CLOUD_FAILURE", "message": "driver lost"}}}));
        assert_eq!(s.state, JobState::Failed);
        assert_eq!(s.raw_state, "TERMINATED/DRIVER_ERROR");
        assert_eq!(s.message.as_deref(), Some("driver lost"));
        let s = status(json!({"run_id": 1, "status": {"state": "TERMINATED",
            "termination_details": {"code": "USER_CANCELED", "type": "SUCCESS"}}}));
        assert_eq!(s.state, JobState::Cancelled);
        let s = status(json!({"run_id": 1, "status": {"state": "WAITING"}}));
        assert_eq!(s.state, JobState::Pending);
    }

    #[test]
    fn pipeline_updates_and_statements() {
        use JobState::*;
        for (raw, want) in [
            ("QUEUED", Pending),
            ("CREATED", Pending),
            ("WAITING_FOR_RESOURCES", Pending),
            ("INITIALIZING", Running),
            ("RESETTING", Running),
            ("SETTING_UP_TABLES", Running),
            ("RUNNING", Running),
            ("STOPPING", Running),
            ("COMPLETED", Succeeded),
            ("FAILED", Failed),
            ("CANCELED", Cancelled),
        ] {
            assert_eq!(update_state(raw), Some(want), "{raw}");
        }
        for (raw, want) in [
            ("PENDING", Pending),
            ("RUNNING", Running),
            ("SUCCEEDED", Succeeded),
            ("CLOSED", Succeeded),
            ("FAILED", Failed),
            ("CANCELED", Cancelled),
        ] {
            assert_eq!(statement_state(raw), Some(want), "{raw}");
        }
        for raw in ["", "SUCCESS", "DONE", "completed"] {
            let s = read_state("databricks-sql", "x", Some(raw), statement_state);
            assert_eq!(s.state, Running, "{raw}");
            let s = read_state("databricks-pipeline", "x", Some(raw), update_state);
            assert_eq!(s.state, Running, "{raw}");
        }
        assert_eq!(read_state("k", "x", None, update_state).state, Running);
    }

    #[test]
    fn a_failed_task_is_named() {
        let s = status(json!({"run_id": 1,
        "state": {"life_cycle_state": "TERMINATED", "result_state": "FAILED", "state_message": "1 of 2 tasks failed"},
        "tasks": [
            {"task_key": "extract", "run_id": 11, "state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"}},
            {"task_key": "load", "run_id": 12, "state": {"life_cycle_state": "TERMINATED", "result_state": "FAILED", "state_message": "NameError: x"}}
        ]}));
        assert_eq!(s.state, JobState::Failed);
        assert_eq!(s.message.as_deref(), Some("task load failed: NameError: x"));
    }

    #[test]
    fn a_repair_reads_its_own_history_item() {
        let run: Run = serde_json::from_value(json!({"run_id": 1,
            "state": {"life_cycle_state": "TERMINATED", "result_state": "FAILED"},
            "tasks": [{"task_key": "load", "run_id": 13, "state": {"life_cycle_state": "RUNNING"}}],
            "repair_history": [
                {"type": "ORIGINAL", "state": {"life_cycle_state": "TERMINATED", "result_state": "FAILED"}, "task_run_ids": [11, 12]},
                {"type": "REPAIR", "id": 77, "state": {"life_cycle_state": "RUNNING"}, "task_run_ids": [13]}
            ]})).unwrap();
        assert_eq!(repair_status(&run, 77).state, JobState::Running);
        // Not in the history yet: pending, never the failure being repaired.
        let s = repair_status(&run, 78);
        assert_eq!(s.state, JobState::Pending);
        assert_eq!(s.raw_state, "REPAIR_REQUESTED");
    }
}
