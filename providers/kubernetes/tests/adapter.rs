//! The adapter against the simulator: one resource per key, uid fencing, the API's refusals
//! read as they mean, custom resources judged by their own conditions.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use tether_kubernetes::sim::{Fault, SimConfig, Simulator};
use tether_kubernetes::{KubeConfig, Kubernetes};
use tether_provider::registry::RunningSim;
use tether_provider::settings::{Setting, Table};
use tether_provider::{ErrorKind, Handle, JobState, Provider, Ungated};

async fn sim(pending: u64, running: u64) -> Simulator {
    let config = SimConfig {
        pending: Duration::from_millis(pending),
        running: Duration::from_millis(running),
        ..SimConfig::default()
    };
    Simulator::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap()
}

fn adapter(sim: &Simulator, extra: &[(&str, &str)]) -> Kubernetes {
    let mut table: Table = sim.settings("kubernetes");
    for (k, v) in extra {
        table.insert((*k).to_string(), Setting::String((*v).to_string()));
    }
    Kubernetes::new(KubeConfig::build("providers.k8s", table).unwrap())
}

/// An HTTP client that trusts the simulator's CA.
fn http(sim: &Simulator) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(sim.ca_pem().as_bytes()).unwrap())
        .build()
        .unwrap()
}

fn job(name: &str) -> Value {
    json!({"manifest": {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox"}]}}}}})
}

async fn until(adapter: &Kubernetes, handle: &Handle, want: JobState) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = adapter.status(handle).await.unwrap();
        if got.state == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {got:?}, waiting for {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_job_runs_to_its_end_and_a_second_submit_is_the_same_job() {
    let sim = sim(200, 300).await;
    let k = adapter(&sim, &[]);
    let handle = k
        .submit(&job("Nightly ETL"), "tether-key-1", &Ungated)
        .await
        .unwrap();
    let again = k
        .submit(&job("Nightly ETL"), "tether-key-1", &Ungated)
        .await
        .unwrap();
    assert_eq!(
        handle, again,
        "the 409 is the resource the first submit made"
    );
    assert_eq!(sim.jobs_for_key("tether-key-1"), 1);
    let name = handle.get_str("name").unwrap();
    assert!(name.starts_with("nightly-etl-"), "{name}");
    let first = k.status(&handle).await.unwrap();
    assert_eq!(first.state, JobState::Pending, "{first:?}");
    until(&k, &handle, JobState::Succeeded).await;
    assert_eq!(
        k.find("tether-key-1", &job("Nightly ETL"), 0)
            .await
            .unwrap(),
        vec![handle]
    );
    assert!(k
        .find("tether-key-2", &job("Nightly ETL"), 0)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_resource_recreated_under_our_name_is_never_ours() {
    let sim = sim(60_000, 1000).await;
    let k = adapter(&sim, &[]);
    let handle = k
        .submit(&job("etl"), "tether-key-r", &Ungated)
        .await
        .unwrap();
    let (ns, name) = (
        handle.get_str("ns").unwrap(),
        handle.get_str("name").unwrap(),
    );
    // Someone deletes it and creates their own under the same name, our annotation copied.
    let mut theirs = sim.object("batch", "jobs", &ns, &name).unwrap();
    assert!(sim.delete("batch", "jobs", &ns, &name));
    theirs["metadata"] =
        json!({"name": name, "annotations": theirs["metadata"]["annotations"].clone()});
    theirs.as_object_mut().unwrap().remove("status");
    let client = http(&sim);
    let made = client
        .post(format!("{}/apis/batch/v1/namespaces/{ns}/jobs", sim.url()))
        .bearer_auth(sim.token())
        .json(&theirs)
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let err = k.status(&handle).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert!(err.message.contains("replaced it"), "{err}");
    let err = k.cancel(&handle).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert!(
        sim.object("batch", "jobs", &ns, &name).is_some(),
        "the newcomer was not deleted"
    );
    // A resource under our name that another key made is refused, naming it.
    let foreign = json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": tether_kubernetes::name::resource_name("etl", "tether-key-f")},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}});
    client
        .post(format!(
            "{}/apis/batch/v1/namespaces/default/jobs",
            sim.url()
        ))
        .bearer_auth(sim.token())
        .json(&foreign)
        .send()
        .await
        .unwrap();
    let err = k
        .submit(&job("etl"), "tether-key-f", &Ungated)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Permanent, "{err}");
    assert!(err.message.contains("not this job's"), "{err}");
}

#[tokio::test]
async fn refusals_read_as_they_mean() {
    let sim = sim(60_000, 1000).await;
    let k = adapter(&sim, &[]);
    tether_provider::sim::Hosted::inject(
        &sim,
        Fault::webhook_denies("policy.example.com", "images must come from our registry"),
    );
    let err = k
        .submit(&job("a"), "k-webhook", &Ungated)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidSpec, "{err}");
    assert!(
        err.message.contains("images must come from our registry"),
        "{err}"
    );
    tether_provider::sim::Hosted::inject(&sim, Fault::quota_exceeded("batch-quota"));
    let err = k.submit(&job("a"), "k-quota", &Ungated).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient, "{err}");
    let bad = json!({"manifest": {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}}});
    let err = k.submit(&bad, "k-invalid", &Ungated).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidSpec, "{err}");
    assert!(err.message.contains("restartPolicy"), "{err}");
    let mut elsewhere = job("a");
    elsewhere["namespace"] = json!("nowhere");
    let err = k.submit(&elsewhere, "k-ns", &Ungated).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidSpec, "{err}");
    assert!(
        err.message.contains("namespaces \"nowhere\" not found"),
        "{err}"
    );
    let unknown = json!({"manifest": {"apiVersion": "example.com/v1", "kind": "Train", "metadata": {}},
        "success": "status.phase == Done", "failure": "status.phase == Failed"});
    let err = k.submit(&unknown, "k-crd", &Ungated).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidSpec, "{err}");
    assert!(err.message.contains("serves no Train"), "{err}");
}

#[tokio::test]
async fn a_custom_resource_is_judged_by_its_own_conditions() {
    let sim = sim(60_000, 1000).await;
    let client = http(&sim);
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "trains.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "trains", "singular": "train", "kind": "Train", "listKind": "TrainList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}});
    let made = client
        .post(format!(
            "{}/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            sim.url()
        ))
        .bearer_auth(sim.token())
        .json(&crd)
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201, "{}", made.text().await.unwrap());
    let k = adapter(&sim, &[("namespace", "kube-public")]);
    let spec = json!({"manifest": {"apiVersion": "example.com/v1", "kind": "Train", "metadata": {"name": "bert"},
        "spec": {"epochs": 3}},
        "success": "status.phase == Done", "failure": ["status.phase == Failed", "status.retries > 3"],
        "message": "status.reason"});
    let handle = k.submit(&spec, "k-train", &Ungated).await.unwrap();
    assert_eq!(handle.get_str("ns").as_deref(), Some("kube-public"));
    assert_eq!(k.status(&handle).await.unwrap().state, JobState::Pending);
    assert!(sim.set_state(&handle, r#"{"phase": "Training", "retries": 1}"#));
    assert_eq!(k.status(&handle).await.unwrap().state, JobState::Running);
    assert!(sim.set_state(
        &handle,
        r#"{"phase": "Training", "retries": 4, "reason": "OOM"}"#
    ));
    let failed = k.status(&handle).await.unwrap();
    assert_eq!(
        (failed.state, failed.message.as_deref()),
        (JobState::Failed, Some("OOM"))
    );
    assert!(sim.set_state(&handle, r#"{"phase": "Done"}"#));
    assert_eq!(k.status(&handle).await.unwrap().state, JobState::Succeeded);
}

#[tokio::test]
async fn a_cancel_deletes_with_the_uid_as_precondition() {
    let sim = sim(60_000, 1000).await;
    let k = adapter(&sim, &[("propagation_policy", "Foreground")]);
    let handle = k.submit(&job("c"), "k-cancel", &Ungated).await.unwrap();
    k.cancel(&handle).await.unwrap();
    let (ns, name) = (
        handle.get_str("ns").unwrap(),
        handle.get_str("name").unwrap(),
    );
    let deleting = sim
        .object("batch", "jobs", &ns, &name)
        .expect("foreground: still there a moment");
    assert_eq!(
        deleting["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sim.object("batch", "jobs", &ns, &name).is_none());
    assert_eq!(
        k.status(&handle).await.unwrap_err().kind,
        ErrorKind::NotFound
    );
    assert_eq!(
        sim.job_state(&handle),
        Some(tether_provider::registry::SimJobState::Cancelled)
    );
}
