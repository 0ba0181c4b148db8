//! The AWS adapters against moto (PyPI `moto[server]`), an independent implementation of the
//! AWS APIs: it catches what tether's own simulator gets wrong about the wire protocol.
//! Submit, status and list (`find`) for EMR, EMR Serverless, Glue, Batch and ECS, and cancel
//! where moto
//! implements it; then the conformance scenarios moto can answer (no fault injection, no
//! state control): `find` by key, a new job's state read as documented, a job moto never
//! made read as not found. `.ci/run` installs moto; without it this test says it
//! was skipped, except under CI, where it fails.

use std::io::Write as _;

use reqwest::Method;
use serde_json::json;
use tether_aws::client::Json;
use tether_aws::{
    Athena, AwsConfig, Batch, Ecs, Emr, EmrContainers, EmrServerless, Glue, RedshiftData, Service,
    StepFunctions,
};
use tether_provider::http::Idempotency;
use tether_provider::settings::{Setting, Table};
use tether_provider::{Handle, JobState, Provider, Tracked, Ungated};
use tether_testkit::moto::Moto;
use tether_testkit::Subject;

fn credentials() {
    std::env::set_var("AWS_ACCESS_KEY_ID", "AKIAMOTOTEST");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "moto-secret");
    std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/tether-test");
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/tether-test");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
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
        .json(Json::V1_1,"ElasticMapReduce", "RunJobFlow", &json!({
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
        .json(
            Json::V1_1,
            "AWSGlue",
            "CreateJob",
            &json!({"Name": name, "Role": "arn:aws:iam::123456789012:role/glue",
            "Command": {"Name": "glueetl", "ScriptLocation": "s3://jobs/load.py"}}),
            Idempotency::NotIdempotent(&Ungated),
        )
        .await
        .unwrap();
}

/// An IAM role in moto (IAM speaks the query protocol, which tether's client does not: a
/// plain form POST, since moto checks no signature); its ARN.
async fn iam_role(moto: &Moto, name: &str) -> String {
    let form = [
        ("Action", "CreateRole"),
        ("Version", "2010-05-08"),
        ("RoleName", name),
        ("AssumeRolePolicyDocument", "{}"),
    ];
    let answer = reqwest::Client::new()
        .post(format!("{}/", moto.url))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAMOTOTEST/20261202/us-east-1/iam/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "CreateRole: {answer:?}");
    format!("arn:aws:iam::123456789012:role/{name}")
}

/// moto's Batch queue `name` with a job definition of the same name, run without Docker
/// (`use_docker: false`: jobs succeed at once).
async fn batch_queue(moto: &Moto, batch: &Batch, name: &str) {
    let config = reqwest::Client::new()
        .post(format!("{}/moto-api/config", moto.url))
        .json(&json!({"batch": {"use_docker": false}}))
        .send()
        .await
        .unwrap();
    assert!(config.status().is_success(), "moto config: {config:?}");
    let role = iam_role(moto, &format!("{name}-batch")).await;
    let call = |op: &'static str, path: &'static str, body: serde_json::Value| async move {
        batch
            .client()
            .rest(op, Method::POST, path, Some(&body), Idempotency::Idempotent)
            .await
            .unwrap_or_else(|e| panic!("{op}: {e}"))
    };
    call("CreateComputeEnvironment", "/v1/createcomputeenvironment",
        json!({"computeEnvironmentName": name, "type": "UNMANAGED", "state": "ENABLED", "serviceRole": role})).await;
    call(
        "CreateJobQueue",
        "/v1/createjobqueue",
        json!({"jobQueueName": name, "state": "ENABLED", "priority": 1,
            "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": name}]}),
    )
    .await;
    call("RegisterJobDefinition", "/v1/registerjobdefinition",
        json!({"jobDefinitionName": name, "type": "container",
            "containerProperties": {"image": "busybox", "vcpus": 1, "memory": 128, "command": ["true"]}})).await;
}

/// moto's ECS cluster `name` with a task definition of the same family.
async fn ecs_cluster(ecs: &Ecs, name: &str) {
    for (op, body) in [
        ("CreateCluster", json!({"clusterName": name})),
        (
            "RegisterTaskDefinition",
            json!({"family": name, "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 128, "essential": true}]}),
        ),
    ] {
        ecs.client()
            .json(
                Json::V1_1,
                "AmazonEC2ContainerServiceV20141113",
                op,
                &body,
                Idempotency::Idempotent,
            )
            .await
            .unwrap_or_else(|e| panic!("{op}: {e}"));
    }
}

/// moto's STANDARD state machine `name`; its ARN.
async fn state_machine(moto: &Moto, sfn: &StepFunctions, name: &str) -> String {
    state_machine_of_type(moto, sfn, name, "STANDARD").await
}

/// moto's state machine `name` of `kind` (`STANDARD`, `EXPRESS`); its ARN.
async fn state_machine_of_type(moto: &Moto, sfn: &StepFunctions, name: &str, kind: &str) -> String {
    let role = iam_role(moto, &format!("{name}-sfn")).await;
    let definition = json!({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": true}}});
    sfn.client()
        .json(
            Json::V1_0,
            "AWSStepFunctions",
            "CreateStateMachine",
            &json!({"name": name, "definition": definition.to_string(), "roleArn": role,
                    "type": kind}),
            Idempotency::Idempotent,
        )
        .await
        .unwrap()["stateMachineArn"]
        .as_str()
        .unwrap()
        .to_string()
}

/// moto's EMR on EKS virtual cluster `name` (in namespace `name`); its id.
async fn virtual_cluster(eks: &EmrContainers, name: &str) -> String {
    eks.client()
        .rest(
            "CreateVirtualCluster",
            Method::POST,
            "/virtualclusters",
            Some(
                &json!({"name": name, "clientToken": format!("create-{name}"),
                "containerProvider": {"type": "EKS", "id": "eks-cluster",
                    "info": {"eksInfo": {"namespace": name}}}}),
            ),
            Idempotency::Idempotent,
        )
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapters_speak_the_wire_protocol_moto_implements() {
    credentials();
    let Some(moto) = tether_testkit::moto::start("moto").await else {
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
        emr.find(key, &spec, 0).await.unwrap(),
        vec![handle.clone()],
        "ListSteps finds the step by its name"
    );
    assert_eq!(
        emr.find("tether-ffffffffffffffffffffffffffffffff", &spec, 0)
            .await
            .unwrap(),
        vec![]
    );
    // A duplicate (the same key submitted twice) is found too, the first submission first:
    // moto lists steps newest first, as EMR does.
    let second = emr.submit(&spec, key, &Ungated).await.unwrap();
    assert_eq!(
        emr.find(key, &spec, 0).await.unwrap(),
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
        serverless.find(key, &spec, 0).await.unwrap(),
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
        glue.find(key, &spec, 0).await.unwrap(),
        vec![handle.clone()],
        "GetJobRuns finds the run by its argument"
    );
    let second = glue.submit(&spec, key, &Ungated).await.unwrap();
    assert_eq!(
        glue.find(key, &spec, 0).await.unwrap(),
        vec![handle.clone(), second.clone()],
        "both runs, oldest first"
    );
    agrees_with_single_calls(&glue, &[handle.clone(), second.clone()]).await;
    if let Err(e) = glue.cancel(&handle).await {
        assert!(!e.message.is_empty());
    }

    // Batch: a queue and a job definition; job names repeat, so a second submit with the key
    // is a second job, and find names both, the first first.
    let batch = Batch::new(config(Service::Batch, &moto.url)).unwrap();
    batch_queue(&moto, &batch, "tether-moto").await;
    let spec =
        json!({"jobQueue": "tether-moto", "jobDefinition": "tether-moto", "jobName": "load"});
    let handle = batch.submit(&spec, key, &Ungated).await.unwrap();
    let status = batch.status(&handle).await.unwrap();
    assert!(
        !matches!(status.state, JobState::Failed | JobState::Lost),
        "{status:?}"
    );
    assert_eq!(
        batch.find(key, &spec, 0).await.unwrap(),
        vec![handle.clone()],
        "ListJobs with the JOB_NAME filter finds the job"
    );
    let second = batch.submit(&spec, key, &Ungated).await.unwrap();
    let found = batch.find(key, &spec, 0).await.unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found.contains(&handle) && found.contains(&second),
        "{found:?}"
    );
    agrees_with_single_calls(&batch, &[handle.clone(), second.clone()]).await;
    batch.cancel(&handle).await.unwrap();

    // ECS: a cluster and a task definition; a Fargate task started by the key.
    let ecs = Ecs::new(config(Service::Ecs, &moto.url)).unwrap();
    ecs_cluster(&ecs, "tether-moto").await;
    let spec =
        json!({"cluster": "tether-moto", "taskDefinition": "tether-moto", "launchType": "FARGATE"});
    let handle = ecs.submit(&spec, key, &Ungated).await.unwrap();
    let status = ecs.status(&handle).await.unwrap();
    assert!(
        !matches!(status.state, JobState::Failed | JobState::Lost),
        "{status:?}"
    );
    assert_eq!(
        ecs.find(key, &spec, 0).await.unwrap(),
        vec![handle.clone()],
        "ListTasks by startedBy finds the task"
    );
    // moto moves an ECS task one state on at every DescribeTasks (its `ManagedState`), so a
    // sweep and a single call never read the same state: the sweep only has to be accepted
    // and to answer for the task.
    let tracked = [Tracked {
        handle: &handle,
        created_ms: 0,
    }];
    let sweep = ecs.status_many(&tracked).await.unwrap();
    assert_eq!(sweep.calls, 1);
    assert!(sweep.statuses[0].is_some(), "{sweep:?}");
    ecs.cancel(&handle).await.unwrap();
    let stopped = ecs.status(&handle).await.unwrap();
    assert_eq!(stopped.raw_state, "STOPPED", "{stopped:?}");
    assert_eq!(
        ecs.find(key, &spec, 0).await.unwrap(),
        vec![handle.clone()],
        "a stopped task is found too"
    );

    // Step Functions: moto keeps name idempotency, so a second start with the key names the
    // same execution (answered again while it runs, ExecutionAlreadyExists once it ended).
    let sfn = StepFunctions::new(config(Service::StepFunctions, &moto.url)).unwrap();
    let machine = state_machine(&moto, &sfn, "tether-moto").await;
    let spec =
        json!({"stateMachineArn": machine, "name": "publish", "input": {"day": "2026-12-01"}});
    let handle = sfn.submit(&spec, key, &Ungated).await.unwrap();
    let again = sfn.submit(&spec, key, &Ungated).await.unwrap();
    assert_eq!(again, handle, "the key's name names one execution");
    assert_eq!(sfn.find(key, &spec, 0).await.unwrap(), vec![handle.clone()]);
    agrees_with_single_calls(&sfn, std::slice::from_ref(&handle)).await;

    // An EXPRESS machine is refused before anything starts: StartExecution is not idempotent
    // for it (issue 32, finding 6). tether learns the type from DescribeStateMachine; moto
    // 5.2.5 answers "STANDARD" for a machine created with "type": "EXPRESS" (and deduplicates
    // its executions by name, as for STANDARD), where Step Functions answers EXPRESS. So
    // against moto this checks that the refusal follows the type the API reports: when moto
    // answers EXPRESS, the submit must be refused and nothing started.
    let express = state_machine_of_type(&moto, &sfn, "tether-moto-express", "EXPRESS").await;
    let described = sfn
        .client()
        .json(
            Json::V1_0,
            "AWSStepFunctions",
            "DescribeStateMachine",
            &json!({"stateMachineArn": express}),
            Idempotency::Idempotent,
        )
        .await
        .unwrap();
    let spec =
        json!({"stateMachineArn": express, "name": "publish", "input": {"day": "2026-12-01"}});
    let submitted = sfn.submit(&spec, key, &Ungated).await;
    match described["type"].as_str() {
        Some("EXPRESS") => {
            let refused = submitted.unwrap_err();
            assert!(
                refused.message.contains("EXPRESS state machine"),
                "{refused}"
            );
            let started = sfn
                .client()
                .json(
                    Json::V1_0,
                    "AWSStepFunctions",
                    "ListExecutions",
                    &json!({"stateMachineArn": express}),
                    Idempotency::Idempotent,
                )
                .await
                .unwrap();
            assert_eq!(started["executions"], json!([]), "{started}");
        }
        Some("STANDARD") => {
            submitted.unwrap_or_else(|e| panic!("moto's STANDARD answer refused: {e}"));
            let _ = writeln!(
                std::io::stderr(),
                "moto: DescribeStateMachine answers STANDARD for a machine created EXPRESS \
                 (Step Functions answers EXPRESS); the EXPRESS refusal is checked against the \
                 simulator only"
            );
        }
        other => panic!("DescribeStateMachine's type: {other:?} ({described})"),
    }

    // Redshift Data: moto runs ExecuteStatement, DescribeStatement and CancelStatement (a
    // statement reads STARTED until it is cancelled, then ABORTED); it ignores ClientToken and
    // StatementName and has no ListStatements, so find is checked against the simulator only.
    let redshift = RedshiftData::new(config(Service::RedshiftData, &moto.url)).unwrap();
    let spec = json!({"Sql": "CALL etl.load()", "ClusterIdentifier": "tether-moto",
        "Database": "dev", "DbUser": "etl", "StatementName": "load"});
    let handle = redshift.submit(&spec, key, &Ungated).await.unwrap();
    let status = redshift.status(&handle).await.unwrap();
    assert_eq!(status.state, JobState::Running, "{status:?}");
    redshift.cancel(&handle).await.unwrap();
    let stopped = redshift.status(&handle).await.unwrap();
    assert_eq!(
        (stopped.raw_state.as_str(), stopped.state),
        ("ABORTED", JobState::Cancelled)
    );
    // Cancelling it again: moto answers ValidationException, as for a statement that ended.
    let again = redshift.cancel(&handle).await.unwrap_err();
    assert!(!again.is_transient(), "{again}");

    // Athena: moto runs StartQueryExecution, GetQueryExecution and StopQueryExecution (a query
    // reads SUCCEEDED at once, and CANCELLED once stopped, even after it succeeded); it ignores
    // ClientRequestToken and has no BatchGetQueryExecution, so find and sweeps are checked
    // against the simulator only.
    let athena = Athena::new(config(Service::Athena, &moto.url)).unwrap();
    let spec = json!({"QueryString": "SELECT 1", "QueryExecutionContext": {"Database": "default"},
        "ResultConfiguration": {"OutputLocation": "s3://results/"}});
    let handle = athena.submit(&spec, key, &Ungated).await.unwrap();
    let status = athena.status(&handle).await.unwrap();
    assert!(
        matches!(
            status.state,
            JobState::Pending | JobState::Running | JobState::Succeeded
        ),
        "{status:?}"
    );
    athena.cancel(&handle).await.unwrap();
    let stopped = athena.status(&handle).await.unwrap();
    assert!(!stopped.raw_state.is_empty(), "{stopped:?}");
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
    let Some(moto) = tether_testkit::moto::start("moto").await else {
        return;
    };
    // moto's parents of jobs: a cluster, an application, a Glue job.
    let emr = Emr::new(config(Service::Emr, &moto.url)).unwrap();
    let cluster = cluster(&emr, "tether-conformance").await;
    let serverless = EmrServerless::new(config(Service::EmrServerless, &moto.url)).unwrap();
    let app = application(&serverless, "tether-conformance").await;
    let glue = Glue::new(config(Service::Glue, &moto.url)).unwrap();
    glue_job(&glue, "conformance").await;
    let batch = Batch::new(config(Service::Batch, &moto.url)).unwrap();
    batch_queue(&moto, &batch, "conformance").await;
    let ecs = Ecs::new(config(Service::Ecs, &moto.url)).unwrap();
    ecs_cluster(&ecs, "conformance").await;
    let sfn = StepFunctions::new(config(Service::StepFunctions, &moto.url)).unwrap();
    let machine = state_machine(&moto, &sfn, "conformance").await;
    let eks = EmrContainers::new(config(Service::EmrContainers, &moto.url)).unwrap();
    let vc = virtual_cluster(&eks, "conformance").await;
    let word = |name: &str| name.replace(|c: char| !c.is_ascii_alphanumeric(), "-");

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
            "batch" => (
                Box::new(|name: &str| {
                    json!({"jobQueue": "conformance", "jobDefinition": "conformance",
                        "jobName": name.replace(|c: char| !c.is_ascii_alphanumeric(), "-")})
                }),
                Some(
                    json!({"job_queue": "conformance", "job_id": "00000000-0000-4000-8000-000000000000"}),
                ),
            ),
            "ecs" => (
                Box::new(
                    |_: &str| json!({"cluster": "conformance", "taskDefinition": "conformance", "launchType": "FARGATE"}),
                ),
                // moto 5.2.5 leaves a task it never made out of DescribeTasks' answer, where
                // ECS lists it among the `failures` as MISSING (the simulator's not-found
                // scenario holds ECS to that); the adapter reads the silence as transient.
                None,
            ),
            "stepfunctions" => {
                let (machine, missing) = (machine.clone(), machine.clone());
                (
                    Box::new(
                        move |name: &str| json!({"stateMachineArn": machine, "name": word(name), "input": {"n": 1}}),
                    ),
                    Some(json!({"state_machine_arn": missing,
                        "execution_arn": missing.replace(":stateMachine:", ":execution:") + ":never-started"})),
                )
            }
            "sagemaker-training" => (
                Box::new(move |name: &str| {
                    json!({"TrainingJobName": word(name), "RoleArn": "arn:aws:iam::123456789012:role/sm",
                        "AlgorithmSpecification": {"TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1", "TrainingInputMode": "File"},
                        "OutputDataConfig": {"S3OutputPath": "s3://out"},
                        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 10},
                        "StoppingCondition": {"MaxRuntimeInSeconds": 3600}})
                }),
                Some(json!({"training_job_name": "never-made"})),
            ),
            "sagemaker-processing" => (
                Box::new(move |name: &str| {
                    json!({"ProcessingJobName": word(name), "RoleArn": "arn:aws:iam::123456789012:role/sm",
                        "AppSpecification": {"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"},
                        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 10}}})
                }),
                Some(json!({"processing_job_name": "never-made"})),
            ),
            "emr-containers" => {
                let (vc, missing) = (vc.clone(), vc.clone());
                (
                    Box::new(move |name: &str| {
                        json!({"virtualClusterId": vc, "name": word(name),
                            "executionRoleArn": "arn:aws:iam::123456789012:role/emr-eks",
                            "releaseLabel": "emr-7.2.0-latest",
                            "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "s3://jobs/load.py"}}})
                    }),
                    Some(
                        json!({"virtual_cluster_id": missing, "job_run_id": "aaaaaaaaaaaaaaaaaaa"}),
                    ),
                )
            }
            "redshift-data" => (
                Box::new(|name: &str| {
                    json!({"Sql": "SELECT 1", "ClusterIdentifier": "conformance",
                        "Database": "dev", "DbUser": "etl", "StatementName": name})
                }),
                Some(json!({"statement_id": "00000000-0000-4000-8000-000000000000"})),
            ),
            // moto 5.2.5 answers GetQueryExecution of a query it never made with HTTP 500 (a
            // KeyError), where Athena answers InvalidRequestException: nothing to check here.
            "athena" => (
                Box::new(|name: &str| {
                    json!({"QueryString": format!("SELECT 1 -- {name}"),
                        "QueryExecutionContext": {"Database": "default"},
                        "ResultConfiguration": {"OutputLocation": "s3://results/"}})
                }),
                None,
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
        // moto 5.2.5 has no ListStatements nor BatchGetQueryExecution (it answers 500):
        // Redshift Data's and Athena's find are checked against the simulator only.
        if !matches!(kind, "redshift-data" | "athena") {
            tether_testkit::find_names_the_job(&subject).await;
        }
        tether_testkit::new_job_reads_as_documented(&subject).await;
        if let Some(missing) = missing {
            tether_testkit::missing_job_is_not_found(&subject, &Handle::new(missing)).await;
        }
        covered.push(kind);
    }
    assert_eq!(
        covered,
        tether_aws::Service::KINDS,
        "every AWS kind: moto serves them all"
    );
}
