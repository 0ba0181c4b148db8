//! The AWS kinds' EventBridge events through a real SQS implementation (moto, PyPI
//! `moto[server]`): tether's AWS simulator runs Batch, EMR step and Step Functions jobs and
//! sends each state change's event to a moto queue; the `aws-sqs` event source (built by the
//! AWS factory from an `[events.NAME]` table) receives them, reads each to the job the
//! adapter's `handle_ref` names, and deletes what it acknowledges. A foreign message and a
//! malformed one come back as such, not lost. Without moto this test says it was skipped,
//! except under CI, where it fails.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tether_aws::sim::{EventFault, EventFaultKind, EventQueue, SimConfig, Simulator};
use tether_aws::{AwsConfig, Batch, Emr, Service, StepFunctions};
use tether_provider::events::{Delivery, EventSource, Reading};
use tether_provider::registry::{ProviderFactory, SimFactory};
use tether_provider::settings::{Setting, Table};
use tether_provider::{Provider, Ungated};
use tether_testkit::moto::{aws_env, create_queue, sqs, sqs_call};

/// An adapter of `service` on the simulator.
fn adapter(sim: &Simulator, service: Service) -> Arc<dyn Provider> {
    let table = Table::from([
        ("region".to_string(), "us-east-1".into()),
        ("endpoint_url".to_string(), Setting::String(sim.url())),
    ]);
    let config = AwsConfig::build("sim", service, table, |_| None).unwrap();
    match service {
        Service::Batch => Arc::new(Batch::new(config).unwrap()),
        Service::Emr => Arc::new(Emr::new(config).unwrap()),
        Service::StepFunctions => Arc::new(StepFunctions::new(config).unwrap()),
        other => panic!("{other:?} is not in this test"),
    }
}

/// Receives until `done` says enough was seen (or 60 s pass), acknowledging each batch when
/// `ack`; every delivery received.
async fn drain(
    source: &dyn EventSource,
    ack: bool,
    done: impl Fn(&[Delivery]) -> bool,
) -> Vec<Delivery> {
    let start = Instant::now();
    let mut seen = Vec::new();
    while !done(&seen) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not all events came: {seen:#?}"
        );
        let batch = source.receive().await.expect("receive");
        if ack && !batch.is_empty() {
            let receipts: Vec<String> = batch.iter().map(|d| d.receipt.clone()).collect();
            source.acknowledge(&receipts).await.expect("acknowledge");
        }
        seen.extend(batch);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulators_events_reach_the_sqs_source_and_name_the_jobs() {
    let Some(moto) = tether_testkit::moto::start("aws_events").await else {
        return;
    };
    // The adapters (the simulator checks SigV4) and the event source read the chain's
    // environment: the simulator's key pair, which moto accepts too.
    let key_pair = aws_env();

    let client = sqs(&moto);
    let queue_url = create_queue(&client, "tether-events").await;

    let sim = Simulator::start(
        SimConfig {
            pending: Duration::from_millis(300),
            running: Duration::from_millis(700),
            events: Some(EventQueue::new(&queue_url, (&key_pair.0, &key_pair.1))),
            ..SimConfig::default()
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .unwrap();
    // Step Functions' first event is sent twice (at-least-once delivery).
    sim.inject_event_fault(
        EventFault::new(EventFaultKind::Duplicate, 1).on(Service::StepFunctions),
    );

    // The source as tether's registry builds it from `[events.aws]`.
    let table = Table::from([
        ("kind".to_string(), "aws-sqs".into()),
        ("accounts".to_string(), Setting::List(vec!["batch".into()])),
        ("queue_url".to_string(), Setting::String(queue_url.clone())),
        ("region".to_string(), "us-east-1".into()),
        ("wait".to_string(), "1s".into()),
        ("visibility_timeout".to_string(), "2s".into()),
    ]);
    let source = tether_aws::FACTORY
        .event_source("aws-sqs", "events.aws", table, &|_| None)
        .expect("an aws-sqs source");

    let kinds = [
        (Service::Batch, "SUCCEEDED"),
        (Service::Emr, "COMPLETED"),
        (Service::StepFunctions, "SUCCEEDED"),
    ];
    let mut refs = HashMap::new();
    for (service, _) in kinds {
        let provider = adapter(&sim, service);
        let spec = tether_aws::sim::SIMULATORS.sample_spec(service.kind(), "events");
        let key = format!("tether-events-{}", service.kind());
        let handle = provider.submit(&spec, &key, &Ungated).await.unwrap();
        refs.insert(service.kind(), provider.handle_ref(&handle));
    }
    let requests = sim.stats().requests;

    let finished = |seen: &[Delivery]| {
        kinds.iter().all(|(service, last)| {
            seen.iter().any(|d| match &d.reading {
                Ok(Reading::Hint(h)) => {
                    h.kind == service.kind() && h.state.as_deref() == Some(*last)
                }
                _ => false,
            })
        })
    };
    let seen = drain(source.as_ref(), true, finished).await;
    for (service, last) in kinds {
        let hints: Vec<_> = seen
            .iter()
            .filter_map(|d| match &d.reading {
                Ok(Reading::Hint(h)) if h.kind == service.kind() => Some(h),
                _ => None,
            })
            .collect();
        let kind = service.kind();
        assert!(
            hints.iter().all(|h| h.reference == refs[kind]),
            "{kind}: every hint names the job's handle_ref {}: {hints:#?}",
            refs[kind]
        );
        assert!(
            hints
                .iter()
                .all(|h| h.region.as_deref() == Some("us-east-1") && h.at_ms.is_some()),
            "{kind}: {hints:#?}"
        );
        assert_eq!(hints.last().unwrap().state.as_deref(), Some(last), "{kind}");
    }
    // RUNNING (twice: the duplicate), then SUCCEEDED.
    let sfn: Vec<_> = seen
        .iter()
        .filter_map(|d| match &d.reading {
            Ok(Reading::Hint(h)) if h.kind == "stepfunctions" => h.state.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(sfn, ["RUNNING", "RUNNING", "SUCCEEDED"]);
    let (sent, failed) = sim.events_sent();
    assert_eq!(failed, 0);
    assert_eq!(
        sent as usize,
        seen.len(),
        "every event sent was received once"
    );
    assert_eq!(
        sim.stats().requests,
        requests,
        "the simulator counts no SQS call as its services' request"
    );

    // Acknowledged: nothing comes back once the visibility timeout is over.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let again = source.receive().await.unwrap();
    assert!(
        again.is_empty(),
        "acknowledged events came back: {again:#?}"
    );

    // A foreign event and a malformed message come back as such, and stay until
    // acknowledged.
    let s3 = json!({"version": "0", "id": "1", "detail-type": "Object Created", "source": "aws.s3",
        "account": "000000000000", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
        "resources": [], "detail": {}});
    for body in [s3.to_string(), "{not json".to_string()] {
        sqs_call(
            &client,
            "SendMessage",
            json!({"QueueUrl": queue_url, "MessageBody": body}),
        )
        .await;
    }
    let two = |seen: &[Delivery]| seen.len() >= 2;
    let odd = drain(source.as_ref(), false, two).await;
    assert!(
        odd.iter()
            .any(|d| matches!(&d.reading, Ok(Reading::Foreign(f)) if f.contains("aws.s3"))),
        "{odd:#?}"
    );
    assert!(
        odd.iter()
            .any(|d| matches!(&d.reading, Err(e) if e.contains("not JSON"))),
        "{odd:#?}"
    );
    // Not acknowledged: they are received again after the visibility timeout.
    let back = drain(source.as_ref(), true, two).await;
    assert_eq!(back.len(), 2, "{back:#?}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(source.receive().await.unwrap().is_empty());
}
