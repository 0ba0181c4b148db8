//! The edge catalog of each Databricks kind (see [`tether_provider::edges`]), from the
//! workspace API's own reference (the databricks-sdk's generated `service/jobs.py`,
//! `pipelines.py` and `sql.py`, the same text as docs.databricks.com/api).

use std::time::Duration;

use tether_provider::edges::{Edge, Edges, Topic, UNDOCUMENTED_GRACE};

/// The catalog of `kind` (one of [`crate::factory::KINDS`]).
pub fn of(kind: &str) -> &'static Edges {
    match kind {
        crate::pipelines::KIND => &PIPELINE,
        crate::statements::KIND => &SQL,
        _ => &RUNS,
    }
}

const THROTTLING: Edge = Edge {
    topic: Topic::Throttling,
    says: "429 (RESOURCE_EXHAUSTED, REQUEST_LIMIT_EXCEEDED) and 503 TEMPORARILY_UNAVAILABLE, with Retry-After; REQUEST_LIMIT_EXCEEDED may also mean a resource quota",
    tether: "not processed: waits for Retry-After and sends again",
    source: "databricks-sdk-py databricks/sdk/errors/platform.py",
};

/// Each kind's consistency edge: what its API says (`says`, in `source`) of a job just made,
/// and what tether does about it (the same for every kind).
const fn consistency(says: &'static str, source: &'static str) -> Edge {
    Edge {
        topic: Topic::Consistency,
        says,
        tether: "a \"not found\" within not_found_grace of the handle is not an end",
        source,
    }
}

/// Job runs (`runs/submit`).
pub static RUNS: Edges = Edges {
    kind: "databricks",
    visible_after_create: UNDOCUMENTED_GRACE,
    forgotten_after: Some(Duration::from_secs(60 * 86_400)),
    entries: &[
        consistency(
            "not documented whether runs/get answers at once for a run runs/submit just returned",
            "databricks-sdk-py service/jobs.py submit",
        ),
        Edge {
            topic: Topic::Retention,
            says: "\"Runs are automatically removed after 60 days\"; runs/get of a removed run answers 400 INVALID_PARAMETER_VALUE",
            tether: "forgotten_after defaults to 60 days; a run seen and then gone is outcome_unknown",
            source: "databricks-sdk-py service/jobs.py get_run_output, get_run",
        },
        Edge {
            topic: Topic::Idempotency,
            says: "idempotency_token (at most 64 characters): \"Databricks guarantees that exactly one run is launched with that idempotency token\"; \"If a run with the provided token is deleted, an error is returned\"; its scope is not documented",
            tether: "the key is the token: a lost answer is repeated with it; the key namespace keeps deployments' tokens apart",
            source: "databricks-sdk-py service/jobs.py submit, run_now",
        },
        Edge {
            topic: Topic::Limits,
            says: "runs/list limit \"must be greater than 0 and less than 25\"; runs/get shows the first 100 elements of each array (tasks, repair_history) and a next_page_token",
            tether: "sweeps and find page 24 runs a call; runs/get is followed through next_page_token, so that a task or repair past the 100th is read",
            source: "databricks-sdk-py service/jobs.py list_runs, get_run",
        },
        Edge {
            topic: Topic::Filters,
            says: "runs/list active_only: \"only active runs\" (QUEUED, PENDING, RUNNING, TERMINATING); start_time_from / start_time_to: \"Show runs that started at or after / at or before this value\" (both inclusive, ms); runs are listed newest first (2.2: by end time, an unfinished run by its start time)",
            tether: "a sweep lists active runs by contiguous, inclusive start_time windows of 240 tracked runs, from the oldest tracked run's creation less 5 minutes of clock skew; a rolling sweep's part stops before the next part's first job, and a run that started after it is asked about with runs/get; a run started before tether's record by more than the skew is not listed and is asked about singly",
            source: "https://docs.databricks.com/api/jobs/v2/list-runs; databricks-sdk-py service/jobs.py list_runs (start_time_from, start_time_to, active_only)",
        },
        Edge {
            topic: Topic::Limits,
            says: "webhook_notifications: \"A maximum of 3 destinations can be specified\" for each event (on_start, on_success, on_failure, ...); run-now takes none (a job's runs notify as the job's settings say)",
            tether: "an account's notification_destination is added to a one-time run's on_start, on_success and on_failure after the spec's own, never twice; an event the spec already fills with 3 is left as it is (polling alone tells its end); run-now is left as it is",
            source: "databricks-sdk-py service/jobs.py WebhookNotifications, JobsAPI.submit, JobsAPI.run_now",
        },
        Edge {
            topic: Topic::Other,
            says: "job notifications to a webhook destination: a POST of {event_type (jobs.on_start, jobs.on_success, jobs.on_failure, ...), workspace_id, run {run_id}, job {job_id, name}} with the destination's user name and password as HTTP basic authentication, to an HTTPS endpoint with a CA-signed certificate that admits the control plane's addresses; \"Succeeded with failures\" counts as success; job-level notifications are not sent when failed tasks are retried; a cancelled run notifies on_failure unless notification_settings.no_alert_for_canceled_runs; retries, ordering, repeats and time limits of delivery are not documented",
            tether: "a notification is a hint, never a record: it marks the run due and a runs/get confirms any end, so one lost, late, repeated or out of order costs at most a poll interval; the password is checked in constant time; the simulator sends each once, best effort, and its faults drop, repeat or delay them",
            source: "https://docs.databricks.com/aws/en/jobs/notifications; https://docs.databricks.com/aws/en/admin/workspace-settings/notification-destinations; databricks-sdk-py service/jobs.py JobNotificationSettings",
        },
        Edge {
            topic: Topic::Other,
            says: "runs/repair has no idempotency token; \"The run must not be in progress\"",
            tether: "a lost repair answer is reconciled from the run's repair_history before any resend",
            source: "databricks-sdk-py service/jobs.py repair_run",
        },
        THROTTLING,
    ],
};

/// Pipeline updates.
pub static PIPELINE: Edges = Edges {
    kind: "databricks-pipeline",
    visible_after_create: UNDOCUMENTED_GRACE,
    forgotten_after: None,
    entries: &[
        consistency(
            "not documented whether a new update is listed or read at once",
            "databricks-sdk-py service/pipelines.py start_update",
        ),
        Edge {
            topic: Topic::Retention,
            says: "not documented for update records",
            tether: "an update seen and then gone is outcome_unknown",
            source: "databricks-sdk-py service/pipelines.py",
        },
        Edge {
            topic: Topic::Idempotency,
            says: "start_update has no idempotency token; \"If there is already an active update for the pipeline, the request will fail\"",
            tether: "find takes the API-started update with the spec's selection (full_refresh, refresh_selection, full_refresh_selection, validate_only: the record keeps them) created between the intent and the look, give or take 5 minutes of clock skew, nearest the intent; another actor's API update of the same selection in that window cannot be told apart",
            source: "databricks-sdk-py service/pipelines.py start_update, UpdateInfo",
        },
        Edge {
            topic: Topic::Other,
            says: "stop is pipeline-wide: \"Stops the pipeline by canceling the active update\"",
            tether: "a cancel stops whichever update is active",
            source: "databricks-sdk-py service/pipelines.py stop",
        },
        THROTTLING,
    ],
};

/// SQL statements.
pub static SQL: Edges = Edges {
    kind: "databricks-sql",
    visible_after_create: UNDOCUMENTED_GRACE,
    forgotten_after: Some(Duration::from_secs(12 * 3600)),
    entries: &[
        consistency(
            "not documented whether a statement is readable at once; the query history lags by an undocumented time",
            "databricks-sdk-py service/sql.py execute_statement, QueryHistoryAPI",
        ),
        Edge {
            topic: Topic::Retention,
            says: "a finished statement is answered 404 after at least 12 hours; results last an hour; \"poll for its status at least once every 15 minutes\" to keep a statement alive",
            tether: "forgotten_after defaults to 12 hours",
            source: "databricks-sdk-py service/sql.py StatementExecutionAPI",
        },
        Edge {
            topic: Topic::Idempotency,
            says: "execute_statement has no idempotency key",
            tether: "the statement carries the key as a comment; a lost answer is reconciled through the query history",
            source: "databricks-sdk-py service/sql.py execute_statement",
        },
        Edge {
            topic: Topic::Filters,
            says: "query history: max_results under 1000 a page, a time range of at most 30 days; how long the history lags is not documented",
            tether: "find reads every page of the history from the intent until the look (5 minutes of skew either side), in 30-day ranges; more than a million queries in a range is an outcome tether cannot tell; a statement the lagging history shows only after the second look is submitted again",
            source: "databricks-sdk-py service/sql.py QueryHistoryAPI.list",
        },
        THROTTLING,
    ],
};
