//! The simulator's log entries, published to Pub/Sub as a Cloud Logging sink would: switched
//! on by an [`EventTopic`], it publishes, at every state change of every BigQuery job,
//! Dataproc job and batch, the `LogEntry` its service writes (BigQuery's audit log
//! `jobChange`; for Dataproc an entry naming the job or batch in its resource labels, see
//! `dataproc.rs`) as the `data` of a message with the sink's
//! `logging.googleapis.com/timestamp` attribute. Tests drop, repeat or delay entries with
//! [`EventFault`]s, as a sink's routing and Pub/Sub's at-least-once delivery may.
//!
//! The topic is the Pub/Sub emulator's (the Google Cloud CLI's `cloud-pubsub-emulator`), which
//! takes unauthenticated calls; the simulator never publishes to the real Pub/Sub. As with the
//! AWS simulator's events, a task looks at every job every [`TICK`] (a state shorter than a
//! tick may be passed over); the entries of one tick go out in one `publish` call of up to
//! 1,000 messages, Pub/Sub's limit. No counter of the service counts those calls.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tether_provider::sim::{Emitter, Outgoing};

use super::Inner;

/// How often the jobs' states are looked at.
pub const TICK: Duration = Duration::from_millis(50);
/// Pub/Sub's most messages in one `publish` request.
const MAX_PER_PUBLISH: usize = 1_000;

/// Where the simulator publishes its log entries: a topic of the Pub/Sub emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTopic {
    /// The emulator's endpoint, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The topic, `projects/P/topics/T`.
    pub topic: String,
    /// Every this many entries, one is dropped, duplicated or delayed by
    /// [`tether_provider::sim::CHAOS_DELAY`], in turn (the soak's events; switch
    /// `event_chaos_every`).
    pub chaos_every: Option<u64>,
}

impl EventTopic {
    /// `topic` (`projects/P/topics/T`) of the emulator at `endpoint`; an error names what is
    /// wrong with either.
    pub fn new(endpoint: &str, topic: &str) -> Result<Self, String> {
        let parts: Vec<&str> = topic.split('/').collect();
        if !matches!(parts.as_slice(), ["projects", p, "topics", t] if !p.is_empty() && !t.is_empty())
        {
            return Err(format!(
                "the event topic must be projects/PROJECT/topics/TOPIC, not {topic:?}"
            ));
        }
        let endpoint = url::Url::parse(endpoint)
            .map_err(|e| format!("the Pub/Sub endpoint {endpoint:?} is not a URL ({e})"))?;
        Ok(Self {
            endpoint: endpoint.as_str().trim_end_matches('/').to_string(),
            topic: topic.to_string(),
            chaos_every: None,
        })
    }
}

/// A fault of the next entries of one kind's jobs (`"bigquery"`, `"dataproc-job"`,
/// `"dataproc-batch"`), or any's.
pub type EventFault = tether_provider::sim::EventFault<&'static str>;
/// The faults and counts of the entries published, in [`Inner`].
pub(super) type Emitted = tether_provider::sim::EventFaults<&'static str>;

/// The message a sink publishes for `entry`, numbered `n`.
fn message(mut entry: Value, n: u64) -> Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    entry["insertId"] = json!(format!("sim{n:012x}"));
    entry["timestamp"] = json!(now);
    entry["receiveTimestamp"] = json!(now);
    let data = base64::engine::general_purpose::STANDARD.encode(entry.to_string());
    json!({"data": data, "attributes": {"logging.googleapis.com/timestamp": now}})
}

/// The messages of the jobs whose state changed since their last entry, with the faults
/// applied.
fn changes(inner: &mut Inner) -> Vec<Outgoing<Value>> {
    let now = Instant::now();
    let mut entries: Vec<(&'static str, Value)> = inner
        .jobs
        .log_entries(&inner.config, now)
        .into_iter()
        .map(|e| (crate::bigquery::KIND, e))
        .collect();
    entries.extend(inner.runs.log_entries(&inner.config, now));
    let mut out = Vec::new();
    for (kind, entry) in entries {
        let n = inner.emitted.next_number();
        out.extend(inner.emitted.apply(kind, n, message(entry, n)));
    }
    out
}

/// Publishes `messages` to `topic`; counts them sent or failed.
async fn publish(
    http: &reqwest::Client,
    topic: &EventTopic,
    shared: &Mutex<Inner>,
    messages: Vec<Value>,
) {
    let url = format!("{}/v1/{}:publish", topic.endpoint, topic.topic);
    for chunk in messages.chunks(MAX_PER_PUBLISH) {
        let answer = http
            .post(&url)
            .json(&json!({"messages": chunk}))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        let mut inner = shared.lock().expect("simulator mutex poisoned");
        match answer {
            Ok(_) => inner.emitted.sent += chunk.len() as u64,
            Err(e) => {
                inner.emitted.failed += chunk.len() as u64;
                tracing::warn!(error = %e, "the simulator could not publish its log entries");
            }
        }
    }
}

/// Starts publishing the entries of `shared`'s jobs to `topic`.
pub(super) fn spawn(shared: Arc<Mutex<Inner>>, topic: EventTopic) -> Emitter {
    shared
        .lock()
        .expect("simulator mutex poisoned")
        .emitted
        .chaos(topic.chaos_every);
    let http = reqwest::Client::new();
    let topic = Arc::new(topic);
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let outgoing = changes(&mut shared.lock().expect("simulator mutex poisoned"));
            let mut now = Vec::new();
            for m in outgoing {
                match m.after {
                    None => now.push(m.body),
                    Some(wait) => {
                        let (http, topic, shared) = (http.clone(), topic.clone(), shared.clone());
                        tokio::spawn(async move {
                            tokio::time::sleep(wait).await;
                            publish(&http, &topic, &shared, vec![m.body]).await;
                        });
                    }
                }
            }
            if !now.is_empty() {
                publish(&http, &topic, &shared, now).await;
            }
        }
    });
    Emitter(task)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_provider::events::Reading;

    #[test]
    fn topics_are_checked() {
        assert!(EventTopic::new("http://127.0.0.1:8085", "projects/p/topics/t").is_ok());
        assert!(EventTopic::new("http://127.0.0.1:8085", "topics/t")
            .unwrap_err()
            .contains("projects/PROJECT/topics/TOPIC"));
        assert!(EventTopic::new("nowhere", "projects/p/topics/t")
            .unwrap_err()
            .contains("not a URL"));
    }

    /// What the simulator publishes reads back, through `crate::events::read_message`, to
    /// the job it is about.
    #[test]
    fn a_published_entry_reads_back_to_its_job() {
        let entry = json!({"resource": {"type": "cloud_dataproc_batch",
            "labels": {"project_id": "tether-sim", "location": "us-central1", "batch_id": "b-1"}}});
        let Ok(Reading::Hint(h)) = crate::events::read_message(&message(entry, 7)) else {
            panic!("not a hint");
        };
        assert_eq!(
            h.reference,
            "projects/tether-sim/locations/us-central1/batches/b-1"
        );
        assert!(h.at_ms.is_some(), "the entry's timestamp is read");
    }
}
