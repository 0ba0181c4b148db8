//! Hostile provider responses (proptest): each adapter's status call answered by a local HTTP
//! server with random and hostile bodies (truncated JSON, wrong types, missing fields,
//! unknown states, huge bodies, bytes that are not JSON, odd HTTP statuses, and success
//! states next to failure results). The whole path runs: the retrying HTTP client, decoding,
//! the state mapping. Never a panic, never `succeeded` unless the body said so, and an AWS
//! state that tether does not know is never terminal.

mod common;

use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::Response;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use tether::app::App;
use tether::config::Config;
use tether_provider::{Handle, JobState};

use common::TestDb;

/// What the server answers next: an HTTP status and a body.
type Answer = Arc<Mutex<(u16, Vec<u8>)>>;

/// One runtime, one answering server and one app (SQLite) with the providers pointed
/// at it, shared by every case.
struct World {
    rt: tokio::runtime::Runtime,
    answer: Answer,
    app: App,
    _db: TestDb,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", "AKIATETHERHOSTILE"),
            ("AWS_SECRET_ACCESS_KEY", "tether-hostile-secret-key-0123456789"),
            ("AWS_CONFIG_FILE", "/nonexistent/tether-test"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/tether-test"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ] {
            std::env::set_var(k, v);
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let answer: Answer = Arc::new(Mutex::new((200, b"{}".to_vec())));
        let (app, db) = rt.block_on(async {
            let served = answer.clone();
            let router = axum::Router::new().fallback(move || {
                let (status, body) = served.lock().unwrap().clone();
                async move {
                    Response::builder()
                        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Body::from(body))
                        .unwrap()
                }
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, router).await });
            let db = TestDb::sqlite().await;
            let mut providers = format!(
                "[providers.databricks]\nhost = \"{url}\"\ntoken = \"dapi-hostile\"\n{COMMON}"
            );
            for kind in tether_aws::Service::KINDS {
                // One status read at a time: a read gathered with others (Batch, ECS) would
                // wait out the gathering window alone, a second a case.
                let alone = if matches!(kind, "batch" | "ecs") {
                    "status_gather = \"0s\"\n"
                } else {
                    ""
                };
                providers.push_str(&format!(
                    "\n[providers.{kind}]\nkind = \"{kind}\"\nregion = \"us-east-1\"\nendpoint_url = \"{url}\"\n{alone}{COMMON}"
                ));
            }
            // A service account's key: its tokens are signed here, so no request but the
            // status call reaches the answering server.
            let key = std::env::temp_dir()
                .join(format!("tether-hostile-key-{}.json", std::process::id()));
            common::procs::google_key_file(&key, &url);
            for (kind, location) in [
                ("bigquery", "EU"),
                ("dataproc-job", "europe-west1"),
                ("dataproc-batch", "europe-west1"),
            ] {
                providers.push_str(&format!(
                    "\n[providers.{kind}]\nproject = \"hostile-project\"\nlocation = \"{location}\"\nendpoint = \"{url}\"\ncredentials_file = \"{}\"\n{COMMON}",
                    key.display()
                ));
            }
            let text = format!("[database]\nurl = \"{}\"\n{providers}", db.url.expose());
            let app = App::open(Config::from_toml(&text, "hostile").unwrap())
                .await
                .unwrap();
            (app, db)
        });
        World {
            rt,
            answer,
            app,
            _db: db,
        }
    })
}

/// No retries and short waits: every case is one request.
const COMMON: &str = "request_timeout = \"2s\"\nmax_retries = 0\nrate_limit_per_second = 100000\nrate_limit_burst = 100000\n";

/// A provider, its handle, where its state sits in a status answer, the states it knows, and
/// the one that means success.
struct Shape {
    provider: &'static str,
    handle: Value,
    /// The path of the state field in the answer, outermost first.
    state_path: &'static [&'static str],
    known: &'static [&'static str],
    success: &'static str,
}

/// The ECS task the hostile answers are about.
const TASK_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:task/etl/0123456789abcdef";

fn shapes() -> [Shape; 15] {
    [
        Shape {
            provider: "databricks",
            handle: json!({"run_id": 7}),
            state_path: &["state", "result_state"],
            known: &[
                "QUEUED",
                "PENDING",
                "RUNNING",
                "TERMINATING",
                "TERMINATED",
                "SKIPPED",
                "INTERNAL_ERROR",
                "BLOCKED",
                "WAITING",
                "SUCCESS",
                "FAILED",
                "TIMEDOUT",
                "CANCELED",
                "MAXIMUM_CONCURRENT_RUNS_REACHED",
                "EXCLUDED",
                "UPSTREAM_FAILED",
                "USER_CANCELED",
                "RUN_EXECUTION_ERROR",
                "DRIVER_ERROR",
            ],
            success: "SUCCESS",
        },
        Shape {
            provider: "emr",
            handle: json!({"cluster_id": "j-1", "step_id": "s-1"}),
            state_path: &["Step", "Status", "State"],
            known: &[
                "PENDING",
                "CANCEL_PENDING",
                "RUNNING",
                "COMPLETED",
                "CANCELLED",
                "FAILED",
                "INTERRUPTED",
            ],
            success: "COMPLETED",
        },
        Shape {
            provider: "emr-serverless",
            handle: json!({"application_id": "00app", "job_run_id": "00run"}),
            state_path: &["jobRun", "state"],
            known: &[
                "SUBMITTED",
                "PENDING",
                "SCHEDULED",
                "QUEUED",
                "RUNNING",
                "CANCELLING",
                "SUCCESS",
                "FAILED",
                "CANCELLED",
            ],
            success: "SUCCESS",
        },
        Shape {
            provider: "glue",
            handle: json!({"job_name": "load", "job_run_id": "jr_1"}),
            state_path: &["JobRun", "JobRunState"],
            known: &[
                "STARTING",
                "RUNNING",
                "STOPPING",
                "STOPPED",
                "SUCCEEDED",
                "FAILED",
                "ERROR",
                "TIMEOUT",
                "WAITING",
                "EXPIRED",
            ],
            success: "SUCCEEDED",
        },
        Shape {
            provider: "batch",
            handle: json!({"job_queue": "nightly", "job_id": "job-1"}),
            state_path: &["jobs", "0", "status"],
            known: &[
                "SUBMITTED",
                "PENDING",
                "RUNNABLE",
                "STARTING",
                "RUNNING",
                "SUCCEEDED",
                "FAILED",
            ],
            success: "SUCCEEDED",
        },
        Shape {
            provider: "ecs",
            handle: json!({"cluster": "etl", "task_arn": TASK_ARN}),
            state_path: &["tasks", "0", "lastStatus"],
            known: &[
                "PROVISIONING",
                "PENDING",
                "ACTIVATING",
                "RUNNING",
                "DEACTIVATING",
                "STOPPING",
                "DEPROVISIONING",
                "STOPPED",
                "DELETED",
                "EssentialContainerExited",
                "UserInitiated",
                "TaskFailedToStart",
                "SpotInterruption",
            ],
            success: "STOPPED",
        },
        Shape {
            provider: "stepfunctions",
            handle: json!({"state_machine_arn": "arn:aws:states:us-east-1:123456789012:stateMachine:m",
                "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:m:e"}),
            state_path: &["status"],
            known: &[
                "RUNNING",
                "SUCCEEDED",
                "FAILED",
                "TIMED_OUT",
                "ABORTED",
                "PENDING_REDRIVE",
            ],
            success: "SUCCEEDED",
        },
        Shape {
            provider: "sagemaker-training",
            handle: json!({"training_job_name": "train-1"}),
            state_path: &["TrainingJobStatus"],
            known: SAGEMAKER_STATES,
            success: "Completed",
        },
        Shape {
            provider: "sagemaker-processing",
            handle: json!({"processing_job_name": "process-1"}),
            state_path: &["ProcessingJobStatus"],
            known: SAGEMAKER_STATES,
            success: "Completed",
        },
        Shape {
            provider: "emr-containers",
            handle: json!({"virtual_cluster_id": "vc1", "job_run_id": "0000000000000000001"}),
            state_path: &["jobRun", "state"],
            known: &[
                "PENDING",
                "SUBMITTED",
                "RUNNING",
                "FAILED",
                "CANCELLED",
                "CANCEL_PENDING",
                "COMPLETED",
            ],
            success: "COMPLETED",
        },
        Shape {
            provider: "redshift-data",
            handle: json!({"statement_id": "00000001-5130-4d5a-9c1e-000000000001"}),
            state_path: &["Status"],
            known: &[
                "SUBMITTED",
                "PICKED",
                "STARTED",
                "FINISHED",
                "ABORTED",
                "FAILED",
            ],
            success: "FINISHED",
        },
        Shape {
            provider: "athena",
            handle: json!({"query_execution_id": "00000001-a7e1-4a5b-8c2d-000000000001"}),
            state_path: &["QueryExecution", "Status", "State"],
            known: &["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"],
            success: "SUCCEEDED",
        },
        Shape {
            provider: "bigquery",
            handle: json!({"job_id": "tether-1", "location": "EU", "project": "hostile-project"}),
            state_path: &["status", "state"],
            known: &["PENDING", "RUNNING", "DONE"],
            success: "DONE",
        },
        Shape {
            provider: "dataproc-job",
            handle: json!({"job_id": "tether-1", "project": "hostile-project", "region": "europe-west1"}),
            state_path: &["status", "state"],
            known: &[
                "PENDING",
                "SETUP_DONE",
                "RUNNING",
                "ATTEMPT_FAILURE",
                "CANCEL_PENDING",
                "CANCEL_STARTED",
                "CANCELLED",
                "DONE",
                "ERROR",
                "STATE_UNSPECIFIED",
            ],
            success: "DONE",
        },
        Shape {
            provider: "dataproc-batch",
            handle: json!({"batch_id": "tether-1", "project": "hostile-project", "region": "europe-west1"}),
            state_path: &["state"],
            known: &[
                "PENDING",
                "RUNNING",
                "CANCELLING",
                "CANCELLED",
                "SUCCEEDED",
                "FAILED",
                "STATE_UNSPECIFIED",
            ],
            success: "SUCCEEDED",
        },
    ]
}

const SAGEMAKER_STATES: &[&str] = &[
    "InProgress",
    "Completed",
    "Failed",
    "Stopping",
    "Stopped",
    "Deleting",
];

/// A state name: mostly the provider's own names (all of them, success included), else any
/// string.
fn state_name(known: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(known).prop_map(str::to_string),
        1 => "[A-Z_]{0,14}",
        1 => any::<String>(),
    ]
}

/// Any JSON value, nested a little.
fn junk() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        ".{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("[a-zA-Z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A field: the right kind of value most of the time, else anything, else missing.
fn field(good: impl Strategy<Value = Value>) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![6 => good.prop_map(Some), 2 => junk().prop_map(Some), 1 => Just(None)]
}

fn put(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        map.insert(key.to_string(), v);
    }
}

/// A status answer of the provider's shape, every field of which may be wrong or missing.
fn answer(shape: &Shape) -> BoxedStrategy<Value> {
    let known = shape.known;
    let name = move || field(state_name(known).prop_map(Value::from));
    let text = || field(".{0,40}".prop_map(Value::from));
    match shape.provider {
        "databricks" => (name(), name(), text(), name(), name(), text(), text())
            .prop_map(|(life, result, msg, status, code, details_msg, url)| {
                let mut state = Map::new();
                put(&mut state, "life_cycle_state", life);
                put(&mut state, "result_state", result);
                put(&mut state, "state_message", msg);
                let mut details = Map::new();
                put(&mut details, "code", code);
                put(&mut details, "message", details_msg);
                let mut st = Map::new();
                put(&mut st, "state", status);
                st.insert("termination_details".into(), Value::Object(details));
                let mut run = Map::new();
                run.insert("run_id".into(), json!(7));
                run.insert("state".into(), Value::Object(state));
                run.insert("status".into(), Value::Object(st));
                put(&mut run, "run_page_url", url);
                Value::Object(run)
            })
            .boxed(),
        "bigquery" => (name(), field(junk()), text(), field(junk()))
            .prop_map(|(state, error_result, message, errors)| {
                let mut status = Map::new();
                put(&mut status, "state", state);
                if let Some(Value::Object(mut e)) = error_result {
                    put(&mut e, "message", message);
                    status.insert("errorResult".into(), Value::Object(e));
                }
                put(&mut status, "errors", errors);
                json!({"kind": "bigquery#job", "jobReference": {"jobId": "tether-1"},
                       "status": Value::Object(status)})
            })
            .boxed(),
        "dataproc-job" => (name(), text(), field(any::<bool>().prop_map(Value::from)))
            .prop_map(|(state, details, done)| {
                let mut status = Map::new();
                put(&mut status, "state", state);
                put(&mut status, "details", details);
                let mut job = Map::new();
                job.insert("reference".into(), json!({"jobId": "tether-1"}));
                job.insert("status".into(), Value::Object(status));
                put(&mut job, "done", done);
                Value::Object(job)
            })
            .boxed(),
        "dataproc-batch" => (name(), text(), field(junk()))
            .prop_map(|(state, message, operation)| {
                let mut batch = Map::new();
                batch.insert(
                    "name".into(),
                    json!("projects/hostile-project/locations/europe-west1/batches/tether-1"),
                );
                put(&mut batch, "state", state);
                put(&mut batch, "stateMessage", message);
                put(&mut batch, "operation", operation);
                Value::Object(batch)
            })
            .boxed(),
        "emr" => (name(), text(), text())
            .prop_map(|(state, reason, message)| {
                let mut failure = Map::new();
                put(&mut failure, "Reason", reason);
                put(&mut failure, "Message", message);
                let mut status = Map::new();
                put(&mut status, "State", state);
                status.insert("FailureDetails".into(), Value::Object(failure));
                json!({"Step": {"Id": "s-1", "Status": Value::Object(status)}})
            })
            .boxed(),
        "emr-serverless" => (name(), text())
            .prop_map(|(state, details)| {
                let mut run = Map::new();
                put(&mut run, "state", state);
                put(&mut run, "stateDetails", details);
                json!({ "jobRun": Value::Object(run) })
            })
            .boxed(),
        "batch" => (
            name(),
            text(),
            field(Just(json!("job-1"))),
            field(any::<bool>().prop_map(Value::from)),
            field((-2i64..300).prop_map(Value::from)),
            text(),
        )
            .prop_map(|(state, reason, id, cancelled, exit, container_reason)| {
                let mut job = Map::new();
                put(&mut job, "jobId", id);
                put(&mut job, "status", state);
                put(&mut job, "statusReason", reason);
                put(&mut job, "isCancelled", cancelled);
                let mut container = Map::new();
                put(&mut container, "exitCode", exit);
                put(&mut container, "reason", container_reason);
                job.insert("container".into(), Value::Object(container));
                json!({ "jobs": [Value::Object(job)] })
            })
            .boxed(),
        "ecs" => (
            name(),
            name(),
            field(Just(json!(TASK_ARN))),
            proptest::collection::vec(field((-2i64..3).prop_map(Value::from)), 0..3),
            text(),
            field(junk()),
        )
            .prop_map(|(last, code, arn, exits, reason, failures)| {
                let mut task = Map::new();
                put(&mut task, "taskArn", arn);
                put(&mut task, "lastStatus", last);
                put(&mut task, "stopCode", code);
                put(&mut task, "stoppedReason", reason);
                let containers = exits
                    .into_iter()
                    .map(|exit| {
                        let mut c = Map::new();
                        c.insert("name".into(), json!("app"));
                        put(&mut c, "exitCode", exit);
                        Value::Object(c)
                    })
                    .collect();
                task.insert("containers".into(), Value::Array(containers));
                let mut answer = Map::new();
                answer.insert("tasks".into(), json!([Value::Object(task)]));
                put(&mut answer, "failures", failures);
                Value::Object(answer)
            })
            .boxed(),
        "stepfunctions" => (name(), text(), text())
            .prop_map(|(state, error, cause)| {
                let mut e = Map::new();
                put(&mut e, "status", state);
                put(&mut e, "error", error);
                put(&mut e, "cause", cause);
                Value::Object(e)
            })
            .boxed(),
        "sagemaker-training" | "sagemaker-processing" => {
            let status = shape.state_path[0];
            (name(), text(), text())
                .prop_map(move |(state, reason, exit)| {
                    let mut job = Map::new();
                    put(&mut job, status, state);
                    put(&mut job, "FailureReason", reason);
                    put(&mut job, "ExitMessage", exit);
                    Value::Object(job)
                })
                .boxed()
        }
        "athena" => (name(), text(), text())
            .prop_map(|(state, reason, error)| {
                let mut status = Map::new();
                put(&mut status, "State", state);
                put(&mut status, "StateChangeReason", reason);
                put(
                    &mut status,
                    "AthenaError",
                    error.map(|e| json!({ "ErrorMessage": e })),
                );
                json!({ "QueryExecution": { "Status": Value::Object(status) } })
            })
            .boxed(),
        "redshift-data" => (name(), text())
            .prop_map(|(state, error)| {
                let mut statement = Map::new();
                put(&mut statement, "Status", state);
                put(&mut statement, "Error", error);
                Value::Object(statement)
            })
            .boxed(),
        "emr-containers" => (name(), text(), text())
            .prop_map(|(state, reason, details)| {
                let mut run = Map::new();
                put(&mut run, "state", state);
                put(&mut run, "failureReason", reason);
                put(&mut run, "stateDetails", details);
                json!({ "jobRun": Value::Object(run) })
            })
            .boxed(),
        _ => (name(), text())
            .prop_map(|(state, error)| {
                let mut run = Map::new();
                put(&mut run, "JobRunState", state);
                put(&mut run, "ErrorMessage", error);
                json!({ "JobRun": Value::Object(run) })
            })
            .boxed(),
    }
}

/// How the answer reaches the client: whole, truncated, padded to megabytes, or replaced by
/// bytes that are not JSON; under an HTTP status that is mostly 200.
#[derive(Debug, Clone)]
enum Mangle {
    Whole,
    Truncated(prop::sample::Index),
    Huge(usize),
    Bytes(Vec<u8>),
}

fn mangle() -> impl Strategy<Value = Mangle> {
    prop_oneof![
        6 => Just(Mangle::Whole),
        2 => any::<prop::sample::Index>().prop_map(Mangle::Truncated),
        1 => (1usize..4).prop_map(Mangle::Huge),
        1 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Mangle::Bytes),
    ]
}

fn http_status() -> impl Strategy<Value = u16> {
    prop_oneof![8 => Just(200u16), 1 => 100u16..600]
}

/// The value at `path` (object keys, or array positions written as numbers).
fn at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter()
        .try_fold(value, |v, k| match (v, k.parse::<usize>()) {
            (Value::Array(items), Ok(i)) => items.get(i),
            _ => v.get(*k),
        })
}

/// Whether the body the client received says the job succeeded.
fn says_success(shape: &Shape, body: Option<&Value>) -> bool {
    let Some(body) = body else { return false };
    let is = |path: &[&str]| at(body, path).and_then(Value::as_str) == Some(shape.success);
    match shape.provider {
        // Databricks also calls a run whose leaf tasks succeeded a success (with failures).
        "databricks" => [
            &["state", "result_state"][..],
            &["status", "termination_details", "code"],
        ]
        .iter()
        .any(|path| {
            is(path) || at(body, path).and_then(Value::as_str) == Some("SUCCESS_WITH_FAILURES")
        }),
        // A stopped task whose essential container exited and every container exited 0.
        "ecs" => {
            let task = &["tasks", "0"];
            let text = |k: &str| at(body, &[task[0], task[1], k]).and_then(Value::as_str);
            let containers = at(body, &["tasks", "0", "containers"]).and_then(Value::as_array);
            matches!(text("lastStatus"), Some("STOPPED" | "DELETED"))
                && text("stopCode") == Some("EssentialContainerExited")
                && containers.is_some_and(|cs| {
                    !cs.is_empty() && cs.iter().all(|c| c["exitCode"].as_i64() == Some(0))
                })
        }
        // DONE without an errorResult.
        "bigquery" => is(shape.state_path) && at(body, &["status", "errorResult"]).is_none(),
        _ => is(shape.state_path),
    }
}

fn check(shape: &Shape, value: Value, how: Mangle, status: u16) -> Result<(), TestCaseError> {
    let w = world();
    // One case at a time: the tests run on parallel threads and share the answering server,
    // so a case must not read the answer another case has just set.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut text = value.to_string().into_bytes();
    match &how {
        Mangle::Whole => {}
        Mangle::Truncated(i) => text.truncate(i.index(text.len().max(1))),
        Mangle::Huge(mib) => {
            let mut padded = value.clone();
            if let Value::Object(m) = &mut padded {
                m.insert("padding".into(), Value::from("x".repeat(mib << 20)));
            }
            text = padded.to_string().into_bytes();
        }
        Mangle::Bytes(b) => text = b.clone(),
    }
    let received: Option<Value> = serde_json::from_slice(&text).ok();
    *w.answer.lock().unwrap() = (status, text);
    let provider = w.app.engine.providers().get(shape.provider).unwrap();
    let handle = Handle::new(shape.handle.clone());
    let result = w.rt.block_on(provider.status(&handle));
    if let Ok(s) = &result {
        prop_assert!(
            s.state != JobState::Succeeded || says_success(shape, received.as_ref()),
            "{}: succeeded from an answer that does not say so: {status} {:?} -> {s:?}",
            shape.provider,
            received
        );
        if shape.provider != "databricks" {
            let raw = received
                .as_ref()
                .and_then(|b| at(b, shape.state_path))
                .and_then(Value::as_str);
            if !raw.is_some_and(|r| shape.known.contains(&r)) {
                prop_assert!(
                    !s.state.is_terminal(),
                    "{}: unknown state {raw:?} taken as final: {s:?}",
                    shape.provider
                );
            }
        }
    }
    Ok(())
}

macro_rules! hostile {
    ($($name:ident: $index:expr;)*) => {
        $(
            proptest! {
                // 256 cases each (proptest's default; `PROPTEST_CASES` sets another count).
                #[test]
                fn $name(value in answer(&shapes()[$index]), how in mangle(), status in http_status()) {
                    check(&shapes()[$index], value, how, status)?;
                }
            }
        )*
    };
}

hostile! {
    databricks_status_survives_hostile_answers: 0;
    emr_status_survives_hostile_answers: 1;
    emr_serverless_status_survives_hostile_answers: 2;
    glue_status_survives_hostile_answers: 3;
    batch_status_survives_hostile_answers: 4;
    ecs_status_survives_hostile_answers: 5;
    stepfunctions_status_survives_hostile_answers: 6;
    sagemaker_training_status_survives_hostile_answers: 7;
    sagemaker_processing_status_survives_hostile_answers: 8;
    emr_containers_status_survives_hostile_answers: 9;
    redshift_data_status_survives_hostile_answers: 10;
    athena_status_survives_hostile_answers: 11;
    bigquery_status_survives_hostile_answers: 12;
    dataproc_job_status_survives_hostile_answers: 13;
    dataproc_batch_status_survives_hostile_answers: 14;
}
