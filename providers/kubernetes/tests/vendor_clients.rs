//! Real clients drive the Kubernetes simulator: `kubectl` (the copy the machine carries with
//! the Google Cloud CLI) and the official Python client (`kubernetes` on PyPI,
//! `tests/clients/k8s_client.py`), each through the kubeconfig the simulator writes (its
//! server over TLS, its CA, a bearer token). They create, list, watch and delete a Job and a
//! custom resource: the simulator speaks what real clients speak, not only what tether's
//! adapter (kube-rs) expects.
//!
//! `kubectl apply` validates a manifest against the server's OpenAPI document, which the
//! simulator does not serve: the test applies with `--validate=false`, as the manual says.
//! The Python client comes from `TETHER_VENDOR_VENV` (which `.ci/run` builds from
//! `testkit/vendors/requirements.txt`), `kubectl` from the PATH. Outside CI a missing one is
//! skipped with a printed reason; under CI (`CI` set) it fails.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tether_kubernetes::sim::{SimConfig, Simulator};

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

/// A simulator whose Jobs run for two seconds.
async fn sim() -> Simulator {
    let config = SimConfig {
        pending: Duration::from_millis(300),
        running: Duration::from_secs(2),
        bookmark_every: Duration::from_millis(500),
        ..SimConfig::default()
    };
    Simulator::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap()
}

/// `kubectl` with the simulator's kubeconfig: its standard output, or a panic with both.
async fn kubectl(sim: &Simulator, args: &[&str], stdin: Option<&str>) -> String {
    let kubeconfig = sim.kubeconfig().to_path_buf();
    let args: Vec<String> = args.iter().map(|a| (*a).to_string()).collect();
    let stdin = stdin.map(str::to_string);
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig").arg(&kubeconfig).args(&args);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(text) = stdin {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        (args, child.wait_with_output().unwrap())
    })
    .await
    .unwrap();
    let (args, out) = out;
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const JOB: &str = "apiVersion: batch/v1
kind: Job
metadata:
  name: pi
  labels: {app: demo}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: pi
        image: perl:5.34
        command: [perl, -Mbignum=bpi, -wle, print bpi(200)]
";

#[tokio::test]
async fn kubectl_applies_gets_watches_and_deletes() {
    let has = Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok_and(|o| o.status.success());
    if needed(
        has.then_some(()),
        "kubectl_applies_gets_watches_and_deletes",
        "no kubectl on the PATH",
    )
    .is_none()
    {
        return;
    }
    let sim = sim().await;
    let applied = kubectl(&sim, &["apply", "--validate=false", "-f", "-"], Some(JOB)).await;
    assert!(applied.contains("job.batch/pi created"), "{applied}");
    let again = kubectl(
        &sim,
        &["apply", "--validate=false", "-f", "-"],
        Some(&JOB.replace("app: demo", "app: demo2")),
    )
    .await;
    assert!(again.contains("job.batch/pi configured"), "{again}");
    let got: Value =
        serde_json::from_str(&kubectl(&sim, &["get", "job", "pi", "-o", "json"], None).await)
            .unwrap();
    assert_eq!(got["metadata"]["labels"]["app"], "demo2");
    assert_eq!(got["spec"]["backoffLimit"], 6, "the server's defaults");
    // `get --watch` until the Job completes (its watch ends at --request-timeout).
    let watched = kubectl(
        &sim,
        &[
            "get",
            "jobs",
            "-l",
            "app=demo2",
            "--watch",
            "--output-watch-events",
            "-o",
            "json",
            "--request-timeout=6s",
        ],
        None,
    )
    .await;
    let events: Vec<Value> = serde_json::Deserializer::from_str(&watched)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(events.iter().any(|e| e["type"] == "ADDED"), "{watched}");
    assert!(
        events.iter().any(|e| e["object"]["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Complete"))),
        "the watch saw the Job complete: {watched}"
    );
    let listed = kubectl(&sim, &["get", "jobs", "-o", "name"], None).await;
    assert_eq!(listed.trim(), "job.batch/pi");
    let deleted = kubectl(&sim, &["delete", "job", "pi"], None).await;
    assert!(deleted.contains("deleted"), "{deleted}");
    let none = kubectl(&sim, &["get", "jobs", "-o", "name"], None).await;
    assert!(none.trim().is_empty(), "{none}");
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

#[tokio::test]
async fn the_python_client_creates_lists_watches_and_deletes() {
    let test = "the_python_client_creates_lists_watches_and_deletes";
    let Some(python) = needed(
        python("kubernetes"),
        test,
        "no TETHER_VENDOR_VENV with the kubernetes client",
    ) else {
        return;
    };
    let sim = sim().await;
    let script = format!("{}/tests/clients/k8s_client.py", env!("CARGO_MANIFEST_DIR"));
    let kubeconfig = sim.kubeconfig().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python).arg(script).arg(kubeconfig).output()
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
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["backoff_limit"], 6, "{seen}");
    assert_eq!(
        seen["again"],
        serde_json::json!([409, "AlreadyExists"]),
        "{seen}"
    );
    assert_eq!(seen["listed"], serde_json::json!(["py-job"]), "{seen}");
    assert_eq!(
        seen["conditions"],
        serde_json::json!(["SuccessCriteriaMet", "Complete"]),
        "{seen}"
    );
    assert_eq!(
        seen["wrong_uid"],
        serde_json::json!([409, "Conflict"]),
        "{seen}"
    );
    assert_eq!(seen["deleted"], "Success", "{seen}");
    assert_eq!(seen["after"], 404, "{seen}");
    assert_eq!(seen["train"], serde_json::json!(["Done", 1]), "{seen}");
    assert_eq!(seen["trains"], serde_json::json!(["bert"]), "{seen}");
}
