//! The AWS adapters against moto (PyPI `moto[server]`), an independent implementation of the
//! AWS APIs: it catches what tether's own simulator gets wrong about the wire protocol.
//! Submit, status and list (`find`) for EMR, EMR Serverless and Glue, and cancel where moto
//! implements it; then the conformance scenarios moto can answer (no fault injection, no
//! state control): `find` by key, a new job's state read as documented, a job moto never
//! made read as not found. `.ci/run` installs moto; without it this test says it
//! was skipped, except under CI, where it fails.

use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use tether_aws::{AwsConfig, Emr, EmrServerless, Glue, Service};
use tether_provider::http::Idempotency;
use tether_provider::settings::{Setting, Table};
use tether_provider::{Handle, JobState, Provider, Tracked, Ungated};
use tether_testkit::Subject;

struct Moto {
    url: String,
    child: tokio::process::Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn credentials() {
    std::env::set_var("AWS_ACCESS_KEY_ID", "AKIAMOTOTEST");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "moto-secret");
    std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/tether-test");
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/tether-test");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
}

async fn start_moto() -> Option<Moto> {
    let available = std::process::Command::new("moto_server")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but moto_server is not installed (.ci/run installs moto[server])"
        );
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED moto: `pip install 'moto[server]'` to run it"
        );
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = tokio::process::Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start moto_server");
    let url = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while reqwest::get(format!("{url}/moto-api/")).await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "moto_server did not start"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Some(Moto { url, child })
}

fn config(service: Service, endpoint: &str) -> AwsConfig {
    let table = tether_provider::settings::Table::from([
        ("region".to_string(), "us-east-1".into()),
        ("endpoint_url".to_string(), endpoint.into()),
        ("max_retries".to_string(), Setting::Integer(1)),
        ("request_timeout".to_string(), "10s".into()),
    ]);
    AwsConfig::build("moto", service, table, |_| None).unwrap()
}

/// moto's EMR cluster named `name`, kept alive with no steps; its id.
async fn cluster(emr: &Emr, name: &str) -> String {
    emr.client()
        .json11("ElasticMapReduce", "RunJobFlow", &json!({
            "Name": name, "ReleaseLabel": "emr-7.0.0",
            "Instances": {"InstanceCount": 1, "MasterInstanceType": "m5.xlarge", "KeepJobFlowAliveWhenNoSteps": true},
            "JobFlowRole": "EMR_EC2_DefaultRole", "ServiceRole": "EMR_DefaultRole"}), Idempotency::NotIdempotent(&Ungated))
        .await
        .unwrap()["JobFlowId"]
        .as_str()
        .unwrap()
        .to_string()
}

/// moto's EMR Serverless application named `name`; its id.
async fn application(serverless: &EmrServerless, name: &str) -> String {
    serverless
        .client()
        .rest(
            "CreateApplication",
            Method::POST,
            "/applications",
            Some(&json!({
            "name": name, "releaseLabel": "emr-6.15.0", "type": "SPARK",
            "clientToken": format!("create-{name}")})),
            Idempotency::Idempotent,
        )
        .await
        .unwrap()["applicationId"]
        .as_str()
        .unwrap()
        .to_string()
}

/// moto's Glue job named `name`.
async fn glue_job(glue: &Glue, name: &str) {
    glue.client()
        .json11(
            "AWSGlue",
            "CreateJob",
            &json!({"Name": name, "Role": "arn:aws:iam::123456789012:role/glue",
            "Command": {"Name": "glueetl", "ScriptLocation": "s3://jobs/load.py"}}),
            Idempotency::NotIdempotent(&Ungated),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapters_speak_the_wire_protocol_moto_implements() {
    credentials();
    let Some(moto) = start_moto().await else {
        return;
    };

    // EMR: a cluster, a step; moto reports a new step RUNNING and does not advance it.
    let emr = Emr::new(config(Service::Emr, &moto.url)).unwrap();
    let cluster = cluster(&emr, "tether-moto").await;
    let spec = json!({"cluster_id": cluster, "step": {"Name": "load", "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["true"]}}});
    let key = "tether-0123456789abcdef0123456789abcdef";
    let handle = emr.submit(&spec, key, &Ungated).await.unwrap();
    let status = emr.status(&handle).await.unwrap();
    assert!(
        matches!(status.state, JobState::Pending | JobState::Running),
        "{status:?}"
    );
    assert_eq!(
        emr.find(key, &spec).await.unwrap(),
        vec![handle.clone()],
        "ListSteps finds the step by its name"
    );
    assert_eq!(
        emr.find("tether-ffffffffffffffffffffffffffffffff", &spec)
            .await
            .unwrap(),
        vec![]
    );
    // A duplicate (the same key submitted twice) is found too, the first submission first:
    // moto lists steps newest first, as EMR does.
    let second = emr.submit(&spec, key, &Ungated).await.unwrap();
    assert_eq!(
        emr.find(key, &spec).await.unwrap(),
        vec![handle.clone(), second.clone()],
        "both steps, oldest first"
    );
    agrees_with_single_calls(&emr, &[handle.clone(), second.clone()]).await;
    // moto 5.2 answers CancelSteps with HTTP 500: tether reports it as a transient error.
    if let Err(e) = emr.cancel(&handle).await {
        assert!(e.is_transient(), "{e}");
    }

    // EMR Serverless: an application, a job run (moto reports SUCCESS at once).
    let serverless = EmrServerless::new(config(Service::EmrServerless, &moto.url)).unwrap();
    let app = application(&serverless, "tether-moto").await;
    let spec = json!({"applicationId": app, "name": "load", "executionRoleArn": "arn:aws:iam::123456789012:role/emr",
        "jobDriver": {"sparkSubmit": {"entryPoint": "s3://jobs/load.py"}}});
    let handle = serverless.submit(&spec, key, &Ungated).await.unwrap();
    let status = serverless.status(&handle).await.unwrap();
    assert!(
        !matches!(status.state, JobState::Failed | JobState::Lost),
        "{status:?}"
    );
    assert_eq!(
        serverless.find(key, &spec).await.unwrap(),
        vec![handle.clone()],
        "ListJobRuns finds the run by its name"
    );
    agrees_with_single_calls(&serverless, std::slice::from_ref(&handle)).await;
    match serverless.cancel(&handle).await {
        Ok(()) => {}
        Err(e) => assert!(
            e.is_transient() || e.kind == tether_provider::ErrorKind::Permanent,
            "{e}"
        ),
    }

    // Glue: a job, a run carrying the key as a run argument.
    let glue = Glue::new(config(Service::Glue, &moto.url)).unwrap();
    glue_job(&glue, "load-orders").await;
    let spec = json!({"JobName": "load-orders", "Arguments": {"--day": "2026-11-24"}});
    let handle = glue.submit(&spec, key, &Ungated).await.unwrap();
    let status = glue.status(&handle).await.unwrap();
    assert!(
        !matches!(status.state, JobState::Failed | JobState::Lost),
        "{status:?}"
    );
    assert_eq!(
        glue.find(key, &spec).await.unwrap(),
        vec![handle.clone()],
        "GetJobRuns finds the run by its argument"
    );
    let second = glue.submit(&spec, key, &Ungated).await.unwrap();
    assert_eq!(
        glue.find(key, &spec).await.unwrap(),
        vec![handle.clone(), second.clone()],
        "both runs, oldest first"
    );
    agrees_with_single_calls(&glue, &[handle.clone(), second.clone()]).await;
    if let Err(e) = glue.cancel(&handle).await {
        assert!(!e.message.is_empty());
    }
}

/// Coalesced polling against moto: the sweep's list calls (`ListSteps` with `StepStates`,
/// `ListJobRuns` with `states` and `createdAtAfter`, `GetJobRuns`) are accepted, and whatever
/// they report for a job is what its single status call says.
async fn agrees_with_single_calls(provider: &dyn Provider, handles: &[Handle]) {
    let since = chrono::Utc::now().timestamp_millis() - 60_000;
    let tracked: Vec<Tracked<'_>> = handles
        .iter()
        .map(|handle| Tracked {
            handle,
            created_ms: since,
        })
        .collect();
    let sweep = provider
        .status_many(&tracked)
        .await
        .unwrap_or_else(|e| panic!("{}: the sweep failed against moto: {e}", provider.kind()));
    assert!(sweep.calls >= 1, "{}: no list call", provider.kind());
    for (handle, listed) in handles.iter().zip(&sweep.statuses) {
        if let Some(listed) = listed {
            let single = provider.status(handle).await.unwrap();
            assert_eq!(
                listed.raw_state,
                single.raw_state,
                "{}: the list and the single call disagree on {handle}",
                provider.kind()
            );
        }
    }
}

/// The conformance scenarios moto can answer, for each AWS kind of the registry, through
/// adapters built by the registry's factories: `find` by key, a new job's state, a job moto
/// never made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_scenarios_moto_answers() {
    credentials();
    let Some(moto) = start_moto().await else {
        return;
    };
    // moto's parents of jobs: a cluster, an application, a Glue job.
    let emr = Emr::new(config(Service::Emr, &moto.url)).unwrap();
    let cluster = cluster(&emr, "tether-conformance").await;
    let serverless = EmrServerless::new(config(Service::EmrServerless, &moto.url)).unwrap();
    let app = application(&serverless, "tether-conformance").await;
    let glue = Glue::new(config(Service::Glue, &moto.url)).unwrap();
    glue_job(&glue, "conformance").await;

    let mut covered = Vec::new();
    for kind in tether_testkit::kinds() {
        // What moto implements of each kind: its jobs' specs, and a handle of a job it never
        // made.
        let (specs, missing): (tether_testkit::Specs, Option<serde_json::Value>) = match kind {
            "emr" => {
                let cluster = cluster.clone();
                (
                    Box::new(move |name: &str| {
                        json!({"cluster_id": cluster, "step": {"Name": name,
                        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["true"]}}})
                    }),
                    // moto 5.2.5 answers DescribeStep of a step it never made with an empty
                    // step, where EMR answers InvalidRequestException (the simulator's
                    // not-found scenario holds EMR to that): nothing to check here.
                    None,
                )
            }
            "emr-serverless" => {
                let (app, missing) = (app.clone(), app.clone());
                (
                    Box::new(move |name: &str| {
                        json!({"applicationId": app, "name": name,
                        "executionRoleArn": "arn:aws:iam::123456789012:role/emr",
                        "jobDriver": {"sparkSubmit": {"entryPoint": "s3://jobs/load.py"}}})
                    }),
                    Some(json!({"application_id": missing, "job_run_id": "00nosuchjobrun00"})),
                )
            }
            "glue" => (
                Box::new(
                    |name: &str| json!({"JobName": "conformance", "Arguments": {"--task": name}}),
                ),
                Some(
                    json!({"job_name": "conformance", "job_run_id": "jr_0000000000000000000000000000000000000000000000000000000000000000"}),
                ),
            ),
            _ => continue,
        };
        let table = Table::from([
            ("region".to_string(), Setting::from("us-east-1")),
            (
                "endpoint_url".to_string(),
                Setting::String(moto.url.clone()),
            ),
        ]);
        let subject = Subject::on_endpoint(kind, table, Some(specs));
        tether_testkit::find_names_the_job(&subject).await;
        tether_testkit::new_job_reads_as_documented(&subject).await;
        if let Some(missing) = missing {
            tether_testkit::missing_job_is_not_found(&subject, &Handle::new(missing)).await;
        }
        covered.push(kind);
    }
    assert_eq!(
        covered,
        ["emr", "emr-serverless", "glue"],
        "the AWS kinds moto serves"
    );
}
