//! `kind = "aws-sqs"`: an event source ([`EventSource`]) reading the AWS kinds' EventBridge
//! events from an SQS queue (an EventBridge rule, or an SNS topic, delivering to it), over
//! SQS's AWS JSON 1.0 protocol (`X-Amz-Target: AmazonSQS.<Operation>`) signed with SigV4.
//!
//! `[events.NAME]` takes `queue_url` (required), `region` (default: read from the queue URL,
//! else `AWS_REGION` / `AWS_DEFAULT_REGION`), `profile` and `endpoint_url` (as the AWS
//! accounts do: the credentials come from the standard chain; the endpoint defaults to the
//! queue URL's host), `wait` (the long poll, `"20s"` by default, at most 20 s),
//! `max_messages` (1 to 10, default 10), `visibility_timeout` (how long a received message
//! stays hidden from other readers; the queue's own by default, at most 12 hours) and
//! `gather` (`"1s"` by default, at most `wait`; `"0s"` turns it off): after a receive that
//! brought some messages but fewer than `max_messages`, the next one starts `gather` after
//! it, so that the events of that time come in one receive and are deleted in one call. A long poll answers
//! as soon as one message is there, so without it a queue carrying a few events a second
//! costs a receive and a delete for nearly each of them; with it, at most one of each per
//! `gather`, for up to `gather` more latency. A full receive is followed at once. `kind`
//! and `accounts` are tether's and are left alone; any other key is refused.
//!
//! <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html>,
//! <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteMessageBatch.html>

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use tether_provider::events::{Delivery, EventSource};
use tether_provider::http::Idempotency;
use tether_provider::settings::Table;
use tether_provider::{CommonSettings, Problems, ProviderError};

use crate::client::{AwsClient, Json, Target};
use crate::credential::CredentialSource;

/// The event source kind.
pub const KIND: &str = "aws-sqs";
/// SQS's JSON protocol target prefix.
const TARGET: &str = "AmazonSQS";
/// The longest long poll SQS takes.
const WAIT_MAX: Duration = Duration::from_secs(20);
/// The most messages one `ReceiveMessage` returns, and entries one `DeleteMessageBatch`
/// takes.
const BATCH_MAX: u32 = 10;
/// How long after a receive that was not full the next one starts, by default.
const GATHER: Duration = Duration::from_secs(1);
/// The longest visibility timeout SQS takes.
const VISIBILITY_MAX: Duration = Duration::from_secs(12 * 3600);

/// Checked `[events.NAME]` settings of an SQS queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsConfig {
    /// The queue's URL (`https://sqs.us-east-1.amazonaws.com/123456789012/tether-events`).
    pub queue_url: String,
    /// The queue's region.
    pub region: String,
    /// Where the calls go, without a trailing slash.
    pub endpoint: String,
    /// A named profile of the shared config files, if not the default one.
    pub profile: Option<String>,
    /// How long a receive waits for messages (1 to 20 s).
    pub wait: Duration,
    /// The most messages a receive returns (1 to 10).
    pub max_messages: u32,
    /// How long a received message stays hidden from other readers (the queue's setting
    /// when not given).
    pub visibility_timeout: Option<Duration>,
    /// How long after a receive that brought some messages but not a full batch the next one
    /// starts (zero: at once).
    pub gather: Duration,
}

/// The region in an SQS queue URL's host (`sqs.<region>.amazonaws.com`, or the legacy
/// `<region>.queue.amazonaws.com`).
fn region_of(host: &str) -> Option<&str> {
    let labels: Vec<&str> = host.split('.').collect();
    match labels.as_slice() {
        ["sqs", region, "amazonaws", ..] => Some(region),
        [region, "queue", "amazonaws", ..] => Some(region),
        _ => None,
    }
}

impl SqsConfig {
    /// Reads an `[events.NAME]` table (`prefix` is `events.NAME`), reporting every bad or
    /// missing field.
    pub fn build(
        prefix: &str,
        mut table: Table,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Vec<String>> {
        let mut p = Problems::new(prefix);
        // tether's own keys: which kind, and which accounts' jobs the events may name.
        table.remove("kind");
        table.remove("accounts");
        let queue_url = p.required(&mut table, "queue_url", "the SQS queue's URL");
        let region = p.string(&mut table, "region");
        let endpoint = p.string(&mut table, "endpoint_url");
        let profile = p.string(&mut table, "profile");
        let wait = p.duration(&mut table, "wait").unwrap_or(WAIT_MAX);
        let max_messages = p.positive(&mut table, "max_messages").unwrap_or(BATCH_MAX);
        let visibility_timeout = p.duration(&mut table, "visibility_timeout");
        let gather = p.duration_or_zero(&mut table, "gather").unwrap_or(GATHER);
        p.unknown("", &table);
        if gather > wait {
            p.at(
                "gather",
                format!("{gather:?} is above the long poll's wait, {wait:?}"),
            );
        }
        if wait > WAIT_MAX {
            p.at(
                "wait",
                format!("{wait:?} is above SQS's longest long poll, 20s"),
            );
        }
        if max_messages > BATCH_MAX {
            p.at("max_messages", format!("{max_messages} is above SQS's 10"));
        }
        if visibility_timeout.is_some_and(|v| v > VISIBILITY_MAX) {
            p.at("visibility_timeout", "is above SQS's 12 hours");
        }
        let parsed = queue_url.as_deref().and_then(|u| match url::Url::parse(u) {
            Ok(url) if matches!(url.scheme(), "https" | "http") && url.host_str().is_some() => {
                Some(url)
            }
            _ => {
                p.at(
                    "queue_url",
                    format!("{u:?} is not a queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/events"),
                );
                None
            }
        });
        let host = parsed.as_ref().and_then(|u| u.host_str()).unwrap_or("");
        let region = region
            .or_else(|| region_of(host).map(str::to_string))
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .filter(|r| !r.trim().is_empty());
        if region.is_none() && parsed.is_some() {
            p.at(
                "region",
                "missing: the queue URL names no region (set it, or AWS_REGION)",
            );
        }
        let endpoint = match (endpoint, &parsed) {
            (Some(e), _) if e.starts_with("https://") || e.starts_with("http://") => {
                e.trim_end_matches('/').to_string()
            }
            (Some(e), _) => {
                p.at(
                    "endpoint_url",
                    format!("{e:?} must start with https:// (or http:// for a simulator)"),
                );
                String::new()
            }
            // The legacy host answers the query protocol only: the JSON calls go to the
            // region's endpoint.
            (None, Some(_)) if host.ends_with(".queue.amazonaws.com") => {
                format!(
                    "https://sqs.{}.amazonaws.com",
                    region.as_deref().unwrap_or("")
                )
            }
            (None, Some(url)) => url.origin().ascii_serialization(),
            (None, None) => String::new(),
        };
        p.into_result(())?;
        Ok(Self {
            queue_url: queue_url.unwrap_or_default(),
            region: region.unwrap_or_default(),
            endpoint,
            profile,
            wait,
            max_messages,
            visibility_timeout,
            gather,
        })
    }
}

/// The AWS kinds' events from an SQS queue.
#[derive(Debug)]
pub struct SqsSource {
    client: AwsClient,
    config: SqsConfig,
    /// When the next receive may start (after one that was not full; see `gather`).
    next: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl SqsSource {
    /// A source of the configured queue, with credentials from the standard chain.
    pub fn new(config: SqsConfig) -> Result<Self, ProviderError> {
        let credentials = CredentialSource::new(KIND, &config.region, config.profile.clone());
        Self::with_credentials(config, credentials)
    }

    /// A source of the configured queue, with `credentials`.
    pub fn with_credentials(
        config: SqsConfig,
        credentials: CredentialSource,
    ) -> Result<Self, ProviderError> {
        let common = CommonSettings {
            // A receive waits up to `wait` before SQS answers.
            request_timeout: config.wait + Duration::from_secs(10),
            ..CommonSettings::default()
        };
        let target = Target {
            provider: KIND,
            signing_name: "sqs",
            region: &config.region,
            endpoint: &config.endpoint,
        };
        Ok(Self {
            client: AwsClient::to(target, &common, credentials)?,
            config,
            next: std::sync::Mutex::new(None),
        })
    }

    /// The settings.
    pub fn config(&self) -> &SqsConfig {
        &self.config
    }

    /// One SQS call, safe to repeat (a receive repeated leaves the first answer's messages
    /// hidden until their visibility timeout, then they come back; a delete repeated deletes
    /// nothing more).
    async fn call(&self, op: &str, body: Value) -> Result<Value, ProviderError> {
        self.client
            .json(Json::V1_0, TARGET, op, &body, Idempotency::Idempotent)
            .await
    }
}

#[async_trait]
impl EventSource for SqsSource {
    /// `ReceiveMessage`: up to `max_messages`, waiting up to `wait`; each message's body read
    /// by [`crate::events::read`].
    async fn receive(&self) -> tether_provider::Result<Vec<Delivery>> {
        let next = self.next.lock().expect("the gather lock").take();
        if let Some(at) = next {
            tokio::time::sleep_until(at).await;
        }
        let mut body = json!({
            "QueueUrl": self.config.queue_url,
            "MaxNumberOfMessages": self.config.max_messages,
            "WaitTimeSeconds": self.config.wait.as_secs(),
        });
        if let Some(v) = self.config.visibility_timeout {
            body["VisibilityTimeout"] = json!(v.as_secs());
        }
        let answer = self.call("ReceiveMessage", body).await?;
        let messages = answer["Messages"].as_array().cloned().unwrap_or_default();
        // An empty answer waited its whole long poll: the next may start at once.
        let short = (1..self.config.max_messages as usize).contains(&messages.len());
        if short && !self.config.gather.is_zero() {
            *self.next.lock().expect("the gather lock") =
                Some(tokio::time::Instant::now() + self.config.gather);
        }
        Ok(messages
            .iter()
            .filter_map(|m| {
                let Some(receipt) = m["ReceiptHandle"].as_str() else {
                    tracing::warn!(message = %m, "an SQS message without a receipt handle");
                    return None;
                };
                let reading = match m["Body"].as_str() {
                    Some(body) => crate::events::read(body),
                    None => Err("the SQS message has no body".to_string()),
                };
                Some(Delivery {
                    receipt: receipt.to_string(),
                    reading,
                })
            })
            .collect())
    }

    /// `DeleteMessageBatch`, 10 receipts a call. A receipt SQS refuses is reported (a
    /// permanent error when the fault is the request's, such as a receipt no longer valid;
    /// transient otherwise), after every batch was sent.
    async fn acknowledge(&self, receipts: &[String]) -> tether_provider::Result<()> {
        let mut failed = Vec::new();
        let mut sender_fault = true;
        for chunk in receipts.chunks(BATCH_MAX as usize) {
            let entries: Vec<Value> = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| json!({"Id": i.to_string(), "ReceiptHandle": r}))
                .collect();
            let answer = self
                .call(
                    "DeleteMessageBatch",
                    json!({"QueueUrl": self.config.queue_url, "Entries": entries}),
                )
                .await?;
            for f in answer["Failed"].as_array().into_iter().flatten() {
                sender_fault &= f["SenderFault"].as_bool().unwrap_or(false);
                failed.push(format!(
                    "{}: {}",
                    f["Code"].as_str().unwrap_or("?"),
                    f["Message"].as_str().unwrap_or("")
                ));
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        let message = format!(
            "DeleteMessageBatch: {} of {} not deleted ({})",
            failed.len(),
            receipts.len(),
            failed.join("; ")
        );
        Err(if sender_fault {
            ProviderError::permanent(KIND, message)
        } else {
            ProviderError::transient(KIND, message)
        })
    }
}

#[cfg(test)]
mod tests {
    use tether_provider::settings::Setting;

    use super::*;

    fn table(pairs: &[(&str, Setting)]) -> Table {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    const QUEUE: &str = "https://sqs.eu-west-1.amazonaws.com/123456789012/tether-events";

    #[test]
    fn the_region_and_endpoint_follow_from_the_queue_url() {
        let t = table(&[
            ("kind", "aws-sqs".into()),
            ("accounts", Setting::List(vec!["emr".into()])),
            ("queue_url", QUEUE.into()),
        ]);
        let c = SqsConfig::build("events.aws", t, |_| None).unwrap();
        assert_eq!(c.region, "eu-west-1");
        assert_eq!(c.endpoint, "https://sqs.eu-west-1.amazonaws.com");
        assert_eq!((c.wait, c.max_messages), (WAIT_MAX, 10));
        assert_eq!((c.visibility_timeout, c.gather), (None, GATHER));
        let legacy = table(&[(
            "queue_url",
            "https://eu-west-1.queue.amazonaws.com/123456789012/q".into(),
        )]);
        let c = SqsConfig::build("events.aws", legacy, |_| None).unwrap();
        assert_eq!(
            (c.region.as_str(), c.endpoint.as_str()),
            ("eu-west-1", "https://sqs.eu-west-1.amazonaws.com")
        );
        // moto: a queue URL on a local host; the region from the table or the environment.
        let local = table(&[
            ("queue_url", "http://127.0.0.1:5000/123456789012/q".into()),
            ("wait", "1s".into()),
            ("max_messages", Setting::Integer(3)),
            ("visibility_timeout", "30s".into()),
        ]);
        let env = |v: &str| (v == "AWS_REGION").then(|| "us-east-1".to_string());
        let c = SqsConfig::build("events.aws", local, env).unwrap();
        assert_eq!(
            (c.region.as_str(), c.endpoint.as_str()),
            ("us-east-1", "http://127.0.0.1:5000")
        );
        assert_eq!(c.wait, Duration::from_secs(1));
        assert_eq!(c.max_messages, 3);
        assert_eq!(c.visibility_timeout, Some(Duration::from_secs(30)));
        // "0s" turns gathering off (it was once refused as not above 0).
        let off = table(&[
            ("queue_url", "http://127.0.0.1:5000/123456789012/q".into()),
            ("gather", "0s".into()),
        ]);
        let c = SqsConfig::build("events.aws", off, env).unwrap();
        assert_eq!(c.gather, Duration::ZERO);
    }

    #[test]
    fn reports_every_problem_naming_its_field() {
        let t = table(&[
            ("queue_url", "http://127.0.0.1:5000/123456789012/q".into()),
            ("wait", "30s".into()),
            ("max_messages", Setting::Integer(11)),
            ("visibility_timeout", "13h".into()),
            ("gather", "40s".into()),
            ("endpoint_url", "ftp://x".into()),
            ("secret_access_key", "x".into()),
        ]);
        let err = SqsConfig::build("events.aws", t, |_| None)
            .unwrap_err()
            .join("\n");
        for want in [
            "events.aws.wait:",
            "events.aws.max_messages:",
            "events.aws.visibility_timeout:",
            "events.aws.gather:",
            "events.aws.endpoint_url:",
            "events.aws.secret_access_key: unknown field",
            "events.aws.region: missing",
        ] {
            assert!(err.contains(want), "{want} in {err}");
        }
        let err = SqsConfig::build("events.aws", Table::new(), |_| None)
            .unwrap_err()
            .join("\n");
        assert!(err.contains("events.aws.queue_url: missing"), "{err}");
        let t = table(&[("queue_url", "not a url".into())]);
        let err = SqsConfig::build("events.aws", t, |_| None)
            .unwrap_err()
            .join("\n");
        assert!(err.contains("events.aws.queue_url:"), "{err}");
    }
}
