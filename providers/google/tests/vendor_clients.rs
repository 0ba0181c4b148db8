//! Google's own clients drive the Google simulator: the Python libraries
//! `google-cloud-bigquery` (`tests/clients/bigquery_client.py`, signing in with google-auth's
//! service account credentials, so through the simulator's OAuth token endpoint) and
//! `google-cloud-dataproc` (`tests/clients/dataproc_client.py`, its REST transport, with the
//! self-signed tokens of Google's generated clients), and the Google Cloud CLI's `bq` and
//! `gcloud dataproc` (with a token from the simulator's metadata server). Each submits, reads,
//! lists and cancels a job (and a Serverless batch) and sends its request id and id again: the
//! simulator speaks what Google's clients speak, not only what tether's adapter expects.
//!
//! The Python client comes from `TETHER_VENDOR_VENV` (which `.ci/run` builds from
//! `testkit/vendors/requirements.txt`), `bq` from the PATH. Outside CI a missing one is skipped
//! with a printed reason; under CI (`CI` set) it fails.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use tether_google::sim::{SimConfig, Simulator};

/// What a test needs, or `None` after printing why it is skipped (outside CI only).
fn needed<T>(what: Option<T>, test: &str, why: &str) -> Option<T> {
    if what.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: {why} (.ci/run provides it)"
        );
        eprintln!("SKIPPED {test}: {why}");
    }
    what
}

/// A simulator whose jobs run at once and for ten minutes.
async fn sim() -> Simulator {
    let config = SimConfig {
        pending: Duration::ZERO,
        running: Duration::from_secs(600),
        ..SimConfig::default()
    };
    Simulator::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap()
}

/// The vendors' venv's Python, where it imports `module`.
fn python(module: &str) -> Option<PathBuf> {
    let venv = std::env::var_os("TETHER_VENDOR_VENV")?;
    let python = PathBuf::from(venv).join("bin/python");
    let works = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    works.then_some(python)
}

/// Runs `script` (under `tests/clients/`) with the simulator's URL and key file, and reads
/// the JSON object it prints.
async fn run_script(python: PathBuf, script: &str, sim: &Simulator) -> Value {
    let script = format!("{}/tests/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    let (url, key) = (sim.url(), sim.key_file().to_path_buf());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python).arg(script).arg(url).arg(key).output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap()
}

/// A token from the simulator's metadata server, for the command-line tools.
async fn token(sim: &Simulator) -> String {
    let token: Value = reqwest::Client::new()
        .get(format!(
            "{}/computeMetadata/v1/instance/service-accounts/default/token",
            sim.url()
        ))
        .header("Metadata-Flavor", "Google")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    token["access_token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn googles_python_client_drives_the_simulator() {
    let test = "googles_python_client_drives_the_simulator";
    let Some(python) = needed(
        python("google.cloud.bigquery"),
        test,
        "no TETHER_VENDOR_VENV with google-cloud-bigquery",
    ) else {
        return;
    };
    let sim = sim().await;
    let seen = run_script(python, "bigquery_client.py", &sim).await;
    let expect = |k: &str, v: Value| assert_eq!(seen[k], v, "{k} in {seen}");
    expect(
        "inserted",
        serde_json::json!(["vendor-query-1", "US", "RUNNING"]),
    );
    expect(
        "got",
        serde_json::json!(["QueryJob", "vendor-query-1", "RUNNING", true]),
    );
    expect("listed", serde_json::json!(["vendor-query-1"]));
    expect("after_cancel", serde_json::json!(["DONE", "stopped"]));
    expect("again", serde_json::json!(["Conflict", "duplicate"]));
    expect("elsewhere", serde_json::json!("NotFound"));
    expect("copy", serde_json::json!(["CopyJob", "RUNNING"]));
    let stats = sim.stats();
    assert!(stats.tokens_issued >= 1, "signed in at /token: {stats:?}");
    assert_eq!(stats.common.submissions, 2, "{stats:?}");
    assert_eq!(stats.common.cancels, 1, "{stats:?}");
}

/// `bq` of the Google Cloud CLI, with the discovery document it carries.
fn bq() -> Option<(PathBuf, PathBuf)> {
    let out = Command::new("sh")
        .args(["-c", "readlink -f \"$(command -v bq)\""])
        .output()
        .ok()?;
    let bq = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    // <sdk>/bin/bq; the document is <sdk>/platform/bq/discovery_next/bigquery.json.
    let discovery = bq
        .parent()?
        .parent()?
        .join("platform/bq/discovery_next/bigquery.json");
    (bq.is_file() && discovery.is_file()).then_some((bq, discovery))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bq_command_line_tool_drives_the_simulator() {
    let test = "the_bq_command_line_tool_drives_the_simulator";
    let Some((bq, discovery)) = needed(bq(), test, "no bq (the Google Cloud CLI) on the PATH")
    else {
        return;
    };
    let sim = sim().await;
    let token = token(&sim).await;
    let home = std::env::temp_dir().join(format!("tether-bq-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let url = sim.url();
    let run = move |args: &[&str]| {
        let out = Command::new(&bq)
            .arg(format!("--api={url}"))
            .arg(format!("--oauth_access_token={token}"))
            .arg("--project_id=tether-sim")
            .arg(format!("--discovery_file={}", discovery.display()))
            .args(args)
            .env("HOME", &home)
            .env("CLOUDSDK_CONFIG", home.join("gcloud"))
            .env("CLOUDSDK_CORE_DISABLE_USAGE_REPORTING", "true")
            .env("CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK", "true")
            .output()
            .unwrap();
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let query = [
        "query",
        "--nosync",
        "--job_id=bq-job-1",
        "--use_legacy_sql=false",
        "SELECT 1",
    ];
    let outcome = tokio::task::spawn_blocking(move || {
        let made = run(&query);
        let again = run(&query);
        let shown = run(&["--format=json", "show", "-j", "bq-job-1"]);
        let listed = run(&["--format=json", "ls", "-j"]);
        let cancel = run(&["--nosync", "cancel", "bq-job-1"]);
        std::thread::sleep(Duration::from_millis(500));
        let after = run(&["--format=json", "show", "-j", "bq-job-1"]);
        [made, again, shown, listed, cancel, after]
    })
    .await
    .unwrap();
    let [made, again, shown, listed, cancel, after] = outcome;
    assert_eq!(made.0, Some(0), "{}", made.1);
    assert!(made.1.contains("tether-sim:bq-job-1"), "{}", made.1);
    assert_ne!(again.0, Some(0), "{}", again.1);
    assert!(
        again
            .1
            .contains("Already Exists: Job tether-sim:US.bq-job-1"),
        "{}",
        again.1
    );
    let shown: Value = serde_json::from_str(shown.1.trim()).expect(&shown.1);
    assert_eq!(shown["status"]["state"], "RUNNING", "{shown}");
    assert!(listed.1.contains("\"jobId\":\"bq-job-1\""), "{}", listed.1);
    assert_eq!(cancel.0, Some(0), "{}", cancel.1);
    let after: Value = serde_json::from_str(after.1.trim()).expect(&after.1);
    assert_eq!(
        after["status"]["errorResult"]["reason"], "stopped",
        "{after}"
    );
    assert_eq!(sim.stats().common.submissions, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn googles_dataproc_client_drives_the_simulator() {
    let test = "googles_dataproc_client_drives_the_simulator";
    let Some(python) = needed(
        python("google.cloud.dataproc_v1"),
        test,
        "no TETHER_VENDOR_VENV with google-cloud-dataproc",
    ) else {
        return;
    };
    let sim = sim().await;
    let seen = run_script(python, "dataproc_client.py", &sim).await;
    let expect = |k: &str, v: Value| assert_eq!(seen[k], v, "{k} in {seen}");
    expect("same_request", json!("vendor-job-1"));
    expect("same_id", json!("AlreadyExists"));
    expect("got", json!(["vendor-job-1", "RUNNING", false]));
    expect("listed", json!(["vendor-job-1"]));
    expect("cancel_answer", json!("CANCEL_PENDING"));
    expect("after_cancel", json!(["CANCELLED", true]));
    expect(
        "operation",
        json!("projects/tether-sim/locations/us-central1/batches/vendor-batch-1"),
    );
    expect("batch_same_id", json!("AlreadyExists"));
    expect("batches_listed", json!(["vendor-batch-1"]));
    expect("batch_after_cancel", json!("CANCELLED"));
    let stats = sim.stats();
    assert_eq!(stats.common.submissions, 2, "one job, one batch: {stats:?}");
    assert!(stats.signed_tokens_verified >= 1, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcloud_dataproc_drives_the_simulator() {
    let test = "gcloud_dataproc_drives_the_simulator";
    let gcloud = Command::new("sh")
        .args(["-c", "command -v gcloud"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let Some(gcloud) = needed(gcloud, test, "no gcloud (the Google Cloud CLI) on the PATH") else {
        return;
    };
    let sim = sim().await;
    let home = std::env::temp_dir().join(format!("tether-gcloud-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let token_file = home.join("token");
    std::fs::write(&token_file, token(&sim).await).unwrap();
    let run = gcloud_runner(gcloud, home, token_file, sim.url());
    let outcome = tokio::task::spawn_blocking(move || {
        let submit = [
            "dataproc",
            "jobs",
            "submit",
            "pyspark",
            "gs://tether-sim/m.py",
            "--cluster-labels=env=sim",
            "--async",
            "--id=gc-job-1",
        ];
        let batch = [
            "dataproc",
            "batches",
            "submit",
            "pyspark",
            "gs://tether-sim/m.py",
            "--batch=gc-batch-1",
            "--async",
        ];
        let state = ["--format=value(status.state)"];
        vec![
            run(&submit),
            run(&[&["dataproc", "jobs", "describe", "gc-job-1"][..], &state].concat()),
            run(&[
                "dataproc",
                "jobs",
                "list",
                "--format=value(reference.jobId,status.state)",
            ]),
            run(&[
                "dataproc",
                "jobs",
                "kill",
                "gc-job-1",
                "--format=value(status.state)",
            ]),
            run(&batch),
            run(&batch),
            run(&["dataproc", "batches", "list", "--format=value(name,state)"]),
            run(&["dataproc", "batches", "cancel", "gc-batch-1"]),
            run(&[
                "dataproc",
                "batches",
                "describe",
                "gc-batch-1",
                "--format=value(state)",
            ]),
        ]
    })
    .await
    .unwrap();
    let ok = |i: usize, needle: &str| {
        let (code, text) = &outcome[i];
        assert_eq!(*code, Some(0), "step {i}: {text}");
        assert!(text.contains(needle), "step {i}: {needle:?} not in {text}");
    };
    ok(0, "gc-job-1");
    ok(1, "RUNNING");
    ok(2, "gc-job-1\tRUNNING");
    ok(3, "CANCELLED");
    ok(
        4,
        "projects/tether-sim/locations/us-central1/batches/gc-batch-1",
    );
    let (code, text) = &outcome[5];
    assert_ne!(*code, Some(0), "{text}");
    assert!(text.contains("ALREADY_EXISTS"), "{text}");
    ok(6, "gc-batch-1\tRUNNING");
    ok(7, "gc-batch-1");
    ok(8, "CANCELLED");
    assert_eq!(sim.stats().common.submissions, 2);
}

/// Runs `gcloud` with these arguments against the simulator at `url` (its Dataproc endpoint
/// override, the token in `token_file`, a configuration of its own under `home`): the exit
/// code and everything it printed.
fn gcloud_runner(
    gcloud: PathBuf,
    home: PathBuf,
    token_file: PathBuf,
    url: String,
) -> impl Fn(&[&str]) -> (Option<i32>, String) {
    move |args: &[&str]| {
        let out = Command::new(&gcloud)
            .args(args)
            .env("CLOUDSDK_CONFIG", home.join("config"))
            .env(
                "CLOUDSDK_API_ENDPOINT_OVERRIDES_DATAPROC",
                format!("{url}/"),
            )
            .env("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE", &token_file)
            .env("CLOUDSDK_CORE_PROJECT", "tether-sim")
            .env("CLOUDSDK_DATAPROC_REGION", "us-central1")
            .env("CLOUDSDK_CORE_DISABLE_USAGE_REPORTING", "true")
            .env("CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK", "true")
            .env("CLOUDSDK_CORE_DISABLE_PROMPTS", "true")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    }
}
