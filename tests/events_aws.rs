//! AWS events end to end, on both backends: the AWS simulator sends each state change as the
//! EventBridge event the service documents to an SQS queue served by moto (an independent
//! implementation of SQS); `[events.aws]` (kind `aws-sqs`) reads the queue. A Batch job whose
//! next poll is ten minutes away is recorded within seconds of its end, by a supervisor in
//! another process than the one that read the event; a dropped event is caught by polling; a
//! malformed, foreign or lying message changes nothing, and every message is deleted once
//! handled. Without moto these tests say they were skipped, except under CI.

mod common;

use std::time::{Duration, Instant};

use serde_json::json;
use tether::app::App;
use tether::config::Config;
use tether::engine::EnsureRequest;
use tether::jobs::Phase;
use tether::state::TaskInstanceId;
use tether_aws::sim::{EventFault, EventFaultKind, EventQueue, SimConfig, Simulator};
use tether_aws::Service;
use tether_provider::JobState;
use tether_testkit::moto::{aws_env, create_queue, sqs, sqs_call, Moto};

use common::{config_toml, serve_parts, until, Served, TestDb};

/// Everything one test needs: moto's queue, the simulator sending its events there.
struct Setup {
    moto: Moto,
    queue_url: String,
    sim: Simulator,
}

async fn setup(running: Duration) -> Option<Setup> {
    let moto = tether_testkit::moto::start("events_aws").await?;
    // The adapters and the event source read the simulator's key pair, which moto takes too.
    let (key, secret) = aws_env();
    let queue_url = create_queue(&sqs(&moto), "tether-events").await;
    let sim = Simulator::start(
        SimConfig {
            pending: Duration::from_millis(300),
            running,
            events: Some(EventQueue::new(&queue_url, (&key, &secret))),
            ..SimConfig::default()
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .unwrap();
    Some(Setup {
        moto,
        queue_url,
        sim,
    })
}

/// An app with a Batch account on the simulator, polled every `poll` at most, and the queue
/// as `[events.aws]`.
async fn app(db: &TestDb, s: &Setup, poll: &str) -> App {
    let text = format!(
        "{}\n[providers.batch]\nkind = \"batch\"\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n\
         poll_initial = \"{poll}\"\npoll_max = \"{poll}\"\npoll_max_with_events = \"{poll}\"\nrequest_timeout = \"2s\"\n\
         not_found_grace = \"1s\"\n\n[events.aws]\nkind = \"aws-sqs\"\nqueue_url = \"{}\"\n\
         accounts = [\"batch\"]\nregion = \"us-east-1\"\nwait = \"1s\"\nvisibility_timeout = \"5s\"\n",
        config_toml(db, "http://127.0.0.1:9", "3s", ""),
        s.sim.url(),
        s.queue_url
    );
    App::open(Config::from_toml(&text, "test").expect("config"))
        .await
        .expect("open app")
}

fn request(task: &str) -> EnsureRequest {
    EnsureRequest {
        task_instance: TaskInstanceId::new("etl", "manual__1", task, -1),
        try_number: 1,
        name: "main".into(),
        provider: "batch".into(),
        spec: tether::registry::simulators("batch")
            .unwrap()
            .sample_spec("batch", task),
    }
}

/// Messages left in the queue, visible or in flight.
async fn left_in_queue(s: &Setup) -> u64 {
    let attrs = sqs_call(
        &sqs(&s.moto),
        "GetQueueAttributes",
        json!({"QueueUrl": s.queue_url, "AttributeNames": ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]}),
    )
    .await;
    [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
    ]
    .iter()
    .map(|k| {
        attrs["Attributes"][*k]
            .as_str()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    })
    .sum()
}

/// A Batch job's end reaches tether through EventBridge's message in SQS: the process that
/// reads the queue holds no job; the one that holds the job hears of it through the database
/// and polls it (its next poll was ten minutes away). The queue is empty afterwards.
async fn a_batch_end_is_recorded_from_its_event(db: TestDb) {
    let Some(s) = setup(Duration::from_millis(1500)).await else {
        return;
    };
    let holder = app(&db, &s, "10m").await;
    let reader = app(&db, &s, "10m").await;
    let served = Served::start(&holder, |stop| {
        let mut tasks = serve_parts(&holder, stop, false);
        tasks.extend(serve_parts(&reader, stop, true));
        tasks
    });
    let id = holder
        .engine
        .ensure(&request("evented"))
        .await
        .unwrap()
        .job
        .id;
    let (record, took) = until(&holder, id, Duration::from_secs(20), |j| {
        j.phase == Phase::Terminal
    })
    .await;
    assert_eq!(
        record.state,
        JobState::Succeeded,
        "{record:?} after {took:?}"
    );
    assert!(
        took < Duration::from_secs(10),
        "recorded {took:?} after submission (the run takes about 2 s)"
    );
    let (sent, _) = s.sim.events_sent();
    assert!(sent >= 2, "the simulator sent its events: {sent}");
    let started = Instant::now();
    while left_in_queue(&s).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "every event is deleted once handled"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    served.stop().await;
}

/// A lost event costs latency, not the job: with every Batch event dropped, polling records
/// the end.
async fn a_dropped_event_is_caught_by_polling(db: TestDb) {
    let Some(s) = setup(Duration::from_millis(800)).await else {
        return;
    };
    s.sim
        .inject_event_fault(EventFault::new(EventFaultKind::Drop, 100).on(Service::Batch));
    let app = app(&db, &s, "1s").await;
    let served = Served::start(&app, |stop| serve_parts(&app, stop, true));
    let id = app.engine.ensure(&request("dropped")).await.unwrap().job.id;
    let (record, took) = until(&app, id, Duration::from_secs(20), |j| {
        j.phase == Phase::Terminal
    })
    .await;
    assert_eq!(
        record.state,
        JobState::Succeeded,
        "{record:?} after {took:?}"
    );
    assert_eq!(s.sim.events_sent().0, 0, "every event was dropped");
    served.stop().await;
}

/// A malformed message, a foreign one, and a forged "SUCCEEDED" about a running job, sent
/// to the queue twice: the job is polled and recorded running, nothing else changes, and
/// every message is deleted.
async fn wrong_messages_change_nothing(db: TestDb) {
    let Some(s) = setup(Duration::from_secs(120)).await else {
        return;
    };
    let app = app(&db, &s, "10m").await;
    let served = Served::start(&app, |stop| serve_parts(&app, stop, true));
    let id = app.engine.ensure(&request("running")).await.unwrap().job.id;
    let (record, _) = until(&app, id, Duration::from_secs(10), |j| {
        j.state == JobState::Running
    })
    .await;
    let job_id = record.handle.as_ref().unwrap().get_str("job_id").unwrap();
    let forged = json!({
        "version": "0", "id": "forged-1", "detail-type": "Batch Job State Change",
        "source": "aws.batch", "account": "000000000000", "time": "2026-12-06T00:00:00Z",
        "region": "us-east-1", "resources": [],
        "detail": {"jobId": job_id, "jobName": "x", "jobQueue": "q", "status": "SUCCEEDED"}
    });
    let foreign = json!({
        "version": "0", "id": "s3-1", "detail-type": "Object Created", "source": "aws.s3",
        "account": "000000000000", "time": "2026-12-06T00:00:00Z", "region": "us-east-1",
        "resources": [], "detail": {"bucket": {"name": "b"}}
    });
    let client = sqs(&s.moto);
    for body in [
        "not json at all".to_string(),
        foreign.to_string(),
        forged.to_string(),
        forged.to_string(),
    ] {
        sqs_call(
            &client,
            "SendMessage",
            json!({"QueueUrl": s.queue_url, "MessageBody": body}),
        )
        .await;
    }
    let started = Instant::now();
    while left_in_queue(&s).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "messages were not all handled"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let record = app.engine.jobs().get(id).await.unwrap().unwrap();
    assert_eq!(record.phase, Phase::Active, "{record:?}");
    assert_eq!(record.state, JobState::Running, "{record:?}");
    served.stop().await;
}

on_both_backends!(
    a_batch_end_is_recorded_from_its_event,
    a_dropped_event_is_caught_by_polling,
    wrong_messages_change_nothing,
);
