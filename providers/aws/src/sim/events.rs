//! The simulator's EventBridge events: switched on by an [`EventQueue`] in its
//! configuration, it sends, at every state change of every job, the event the job's service
//! documents (the envelope's `version`, `id`, `detail-type`, `source`, `account`, `time`,
//! `region`, `resources`, and the `detail` of its part, [`super::service::ServiceSim::
//! event_detail`]) to an SQS queue with `SendMessage`, as an EventBridge rule targeting the
//! queue would. Tests drop, repeat or delay events with [`EventFault`]s, as EventBridge's best
//! effort and SQS's at-least-once delivery may.
//!
//! A job's states move with time, so a task looks at every job every [`TICK`] and sends the
//! changes it finds (a state shorter than a tick may be passed over, as a real service's
//! event may be missed). The SQS calls are not the service's calls: no counter of the
//! simulator counts them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_credential_types::Credentials;
use serde_json::{json, Value};
use tether_provider::http::Idempotency;
use tether_provider::sim::{Emitter, Outgoing};
use tether_provider::CommonSettings;

use super::{service, Inner, SimJob};
use crate::client::{AwsClient, Json, Target};
use crate::config::Service;
use crate::credential::CredentialSource;

/// How often the jobs' states are looked at.
pub const TICK: Duration = Duration::from_millis(50);
/// The account and region of the simulator's ARNs, and so of its events.
const ACCOUNT: &str = "000000000000";
const REGION: &str = "us-east-1";

/// Where the simulator sends its events: an SQS queue and what reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQueue {
    /// The queue's URL.
    pub queue_url: String,
    /// The SQS endpoint (default: the queue URL's host).
    pub endpoint: String,
    /// The queue's region, for the signature.
    pub region: String,
    /// The key pair the calls are signed with.
    pub access_key_id: String,
    /// Its secret.
    pub secret_access_key: String,
    /// Every this many events, one is dropped, duplicated or delayed by
    /// [`tether_provider::sim::CHAOS_DELAY`], in turn (the soak's events; switch
    /// `event_chaos_every`).
    pub chaos_every: Option<u64>,
}

impl EventQueue {
    /// The queue at `queue_url`, reached at its host, in `us-east-1`, signed with `key_pair`.
    pub fn new(queue_url: &str, (access_key_id, secret_access_key): (&str, &str)) -> Self {
        let endpoint = url::Url::parse(queue_url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        Self {
            queue_url: queue_url.to_string(),
            endpoint,
            region: REGION.into(),
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            chaos_every: None,
        }
    }
}

/// A fault of the next events of one AWS service's jobs, or any's.
pub type EventFault = tether_provider::sim::EventFault<Service>;
/// The faults and counts of the events sent, in [`Inner`].
pub(super) type Emitted = tether_provider::sim::EventFaults<Service>;

/// An AWS timestamp (seconds since the epoch) as ISO 8601 text.
pub(super) fn iso(seconds: f64) -> String {
    chrono::DateTime::from_timestamp_millis(ms(seconds))
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// An AWS timestamp (seconds since the epoch) in milliseconds.
pub(super) fn ms(seconds: f64) -> i64 {
    (seconds * 1000.0) as i64
}

/// The ARN an event's `resources` names, from its detail.
fn resources(detail: &Value) -> Value {
    let arn = [
        "jobArn",
        "taskArn",
        "executionArn",
        "TrainingJobArn",
        "ProcessingJobArn",
        "arn",
    ]
    .iter()
    .find_map(|f| detail[*f].as_str());
    json!(arn.into_iter().collect::<Vec<_>>())
}

/// The envelope of the event `job`'s service sends for its state now, if it sends one.
fn envelope(job: &SimJob, n: u64) -> Option<Value> {
    let detail = service::of(job.service).event_detail(job)?;
    let shape = crate::events::shape_of(job.service);
    Some(json!({
        "version": "0",
        "id": format!("{n:08x}-5e7e-4e0b-8a1c-{n:012x}"),
        "detail-type": shape.detail_type(),
        "source": shape.source,
        "account": ACCOUNT,
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": REGION,
        "resources": resources(&detail),
        "detail": detail,
    }))
}

/// The events of the jobs whose state changed since they were last looked at, with the
/// faults applied.
fn changes(inner: &mut Inner) -> Vec<Outgoing<String>> {
    let mut out = Vec::new();
    for i in 0..inner.jobs.len() {
        let state = inner.jobs[i].state().to_string();
        if inner.jobs[i].emitted.as_deref() == Some(state.as_str()) {
            continue;
        }
        inner.jobs[i].emitted = Some(state);
        let n = inner.emitted.next_number();
        let Some(event) = envelope(&inner.jobs[i], n) else {
            continue;
        };
        let service = inner.jobs[i].service;
        out.extend(inner.emitted.apply(service, n, event.to_string()));
    }
    out
}

/// Starts sending the events of `shared`'s jobs to `queue`.
pub(super) fn spawn(shared: Arc<Mutex<Inner>>, queue: EventQueue) -> std::io::Result<Emitter> {
    shared
        .lock()
        .expect("simulator mutex poisoned")
        .emitted
        .chaos(queue.chaos_every);
    let target = Target {
        provider: "aws-sim-events",
        signing_name: "sqs",
        region: &queue.region,
        endpoint: queue.endpoint.trim_end_matches('/'),
    };
    let credentials = CredentialSource::fixed(
        "aws-sim-events",
        &queue.region,
        Credentials::new(
            &queue.access_key_id,
            &queue.secret_access_key,
            None,
            None,
            "tether-sim",
        ),
    );
    // EventBridge delivers to its targets at the rate events come, not at an account's
    // call budget: the default rate limit (10 calls/s) held 1,000 new jobs' first events for
    // 100 s, and the ends behind them (tether-bench --latency batch-events).
    let unlimited = CommonSettings {
        rate_per_second: 1_000_000.0,
        rate_burst: 1_000_000,
        ..CommonSettings::default()
    };
    let client = AwsClient::to(target, &unlimited, credentials)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let client = Arc::new(client);
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let outgoing = changes(&mut shared.lock().expect("simulator mutex poisoned"));
            for message in outgoing {
                let (client, shared, url) =
                    (client.clone(), shared.clone(), queue.queue_url.clone());
                let send = async move {
                    if let Some(wait) = message.after {
                        tokio::time::sleep(wait).await;
                    }
                    let body = json!({"QueueUrl": url, "MessageBody": message.body});
                    let sent = client
                        .json(
                            Json::V1_0,
                            "AmazonSQS",
                            "SendMessage",
                            &body,
                            Idempotency::Idempotent,
                        )
                        .await;
                    let mut inner = shared.lock().expect("simulator mutex poisoned");
                    match sent {
                        Ok(_) => inner.emitted.sent += 1,
                        Err(e) => {
                            inner.emitted.failed += 1;
                            tracing::warn!(error = %e, "the simulator could not send an event");
                        }
                    }
                };
                if message.after.is_some() {
                    tokio::spawn(send);
                } else {
                    send.await;
                }
            }
        }
    });
    Ok(Emitter(task))
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tether_provider::events::Reading;

    use super::*;

    fn job(service: Service) -> SimJob {
        SimJob {
            service,
            id: format!("id-of-{}", service.kind()),
            parent: "parent".into(),
            name: format!("name-of-{}", service.kind()),
            arguments: json!({"WithEvent": true, "ClusterIdentifier": "c1"}),
            created: Instant::now(),
            created_at: 1_700_000_000.0,
            pending: Duration::ZERO,
            running: Duration::ZERO,
            succeed: true,
            cancelled: false,
            // The success state: every service sends an event for it.
            forced: Some(super::super::states::lifecycle(service)[2].to_string()),
            hidden: false,
            last_seen: None,
            cancelled_at: None,
            evicted: false,
            emitted: None,
        }
    }

    /// What the simulator sends for every kind reads back, through `crate::events::read`,
    /// to the job its adapter names (SageMaker's by name, the others by id).
    #[test]
    fn every_kinds_event_reads_back_to_its_job() {
        for service in Service::ALL {
            let j = job(service);
            let body = envelope(&j, 1).expect("an event for the success state");
            let Ok(Reading::Hint(hint)) = crate::events::read(&body.to_string()) else {
                panic!("{service:?}: {body}");
            };
            let want = match service {
                Service::SageMakerTraining | Service::SageMakerProcessing => &j.name,
                _ => &j.id,
            };
            assert_eq!(hint.kind, service.kind());
            assert_eq!(&hint.reference, want, "{service:?}");
            assert_eq!(hint.state.as_deref(), j.forced.as_deref(), "{service:?}");
            assert_eq!(hint.region.as_deref(), Some(REGION));
        }
    }

    #[test]
    fn no_event_where_the_service_sends_none() {
        let mut glue = job(Service::Glue);
        glue.forced = Some("RUNNING".into());
        assert!(envelope(&glue, 1).is_none());
        let mut statement = job(Service::RedshiftData);
        statement.arguments = json!({"ClusterIdentifier": "c1"});
        assert!(envelope(&statement, 1).is_none());
    }
}
