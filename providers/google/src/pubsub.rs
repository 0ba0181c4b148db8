//! `kind = "gcp-pubsub"`: an event source ([`EventSource`]) reading the Google kinds' job
//! events ([`crate::events`]) from a Pub/Sub subscription that a Cloud Logging sink feeds.
//!
//! `[events.NAME]` takes `subscription` (required, `projects/P/subscriptions/S`), `endpoint`
//! (`https://pubsub.googleapis.com` by default; the emulator's `http://127.0.0.1:8085`),
//! the credentials as a Google account takes them (`credentials_file`, `metadata_server`, else
//! Application Default Credentials; `unauthenticated = true` for the emulator only),
//! `max_messages` (1 to 1,000, default 100), `wait` and `gather`:
//!
//! - `wait` (default `"90s"`): how long a pull may be held by the service before it answers
//!   empty; the request's timeout is longer. A pull is never cut short by tether: a message
//!   published as a pull is abandoned is leased to the abandoned request, and reaches the next
//!   pull only after the subscription's ack deadline (seen on the emulator: 10 s). `"0s"`
//!   asks with `returnImmediately`, each empty answer followed by `gather`.
//! - `gather` (default `"1s"`; `"0s"`: at once): after a pull that brought some messages but
//!   fewer than `max_messages`, the next starts this much later, so that the events of that
//!   time come in one pull and are acknowledged in one call.
//!
//! `kind` and `accounts` are tether's and left alone; any other key is refused.
//!
//! <https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions/pull>,
//! <https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions/acknowledge>

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use tether_provider::events::{Delivery, EventSource};
use tether_provider::http::Idempotency;
use tether_provider::settings::Table;
use tether_provider::{CommonSettings, Problems, ProviderError};

use crate::client::{Call, Client};
use crate::Credentials;

/// The event source kind.
pub const KIND: &str = "gcp-pubsub";
/// The most messages one pull asks for by default, and at most.
const MAX_MESSAGES: u32 = 100;
const MAX_MESSAGES_LIMIT: u32 = 1000;
/// How long a pull may be held, by default.
const WAIT: Duration = Duration::from_secs(90);
/// How long after a pull that was not full the next one starts, by default.
const GATHER: Duration = Duration::from_secs(1);
/// Ack ids acknowledged a call.
const ACK_CHUNK: usize = 1000;

/// Checked `[events.NAME]` settings of a Pub/Sub subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubSubConfig {
    /// `projects/P/subscriptions/S`.
    pub subscription: String,
    /// The API's base URL, without a trailing slash.
    pub endpoint: String,
    /// Where the credentials come from.
    pub credentials: Credentials,
    /// The most messages a pull returns.
    pub max_messages: u32,
    /// How long a pull may be held (zero: `returnImmediately`).
    pub wait: Duration,
    /// How long after a pull that was not full the next one starts.
    pub gather: Duration,
}

impl PubSubConfig {
    /// Reads an `[events.NAME]` table (`prefix` is `events.NAME`), reporting every bad or
    /// missing field.
    pub fn build(prefix: &str, mut table: Table) -> Result<Self, Vec<String>> {
        let mut p = Problems::new(prefix);
        table.remove("kind");
        table.remove("accounts");
        let subscription = p.required(
            &mut table,
            "subscription",
            "the subscription, projects/P/subscriptions/S",
        );
        let endpoint = p.string(&mut table, "endpoint");
        let file = p.string(&mut table, "credentials_file");
        let metadata = p.string(&mut table, "metadata_server");
        let unauthenticated = p.boolean(&mut table, "unauthenticated").unwrap_or(false);
        let max_messages = p
            .positive(&mut table, "max_messages")
            .unwrap_or(MAX_MESSAGES);
        let wait = p.duration_or_zero(&mut table, "wait").unwrap_or(WAIT);
        let gather = p.duration_or_zero(&mut table, "gather").unwrap_or(GATHER);
        p.unknown("", &table);
        if let Some(s) = &subscription {
            let parts: Vec<&str> = s.split('/').collect();
            let ok = parts.len() == 4
                && parts[0] == "projects"
                && parts[2] == "subscriptions"
                && !parts[1].is_empty()
                && !parts[3].is_empty();
            if !ok {
                p.at(
                    "subscription",
                    format!("{s:?} is not projects/PROJECT/subscriptions/NAME"),
                );
            }
        }
        if max_messages > MAX_MESSAGES_LIMIT {
            p.at(
                "max_messages",
                format!("{max_messages} is above Pub/Sub's 1,000"),
            );
        }
        let endpoint = match endpoint {
            None => "https://pubsub.googleapis.com".to_string(),
            Some(e) if e.starts_with("https://") || e.starts_with("http://") => {
                e.trim_end_matches('/').to_string()
            }
            Some(e) => {
                p.at(
                    "endpoint",
                    format!("{e:?} must start with https:// (or http:// for the emulator)"),
                );
                String::new()
            }
        };
        let credentials = match (file, metadata, unauthenticated) {
            (None, None, true) if endpoint.starts_with("http://") => Credentials::None,
            (None, None, true) => {
                p.at(
                    "unauthenticated",
                    "only for the emulator, at an http:// endpoint",
                );
                Credentials::None
            }
            (Some(_), _, true) | (_, Some(_), true) => {
                p.at(
                    "unauthenticated",
                    "give credentials or unauthenticated, not both",
                );
                Credentials::None
            }
            (Some(_), Some(_), false) => {
                p.at(
                    "credentials_file",
                    "give credentials_file or metadata_server, not both",
                );
                Credentials::Default
            }
            (Some(f), None, false) => Credentials::File(f),
            (None, Some(m), false) => Credentials::Metadata(m.trim_end_matches('/').to_string()),
            (None, None, false) => Credentials::Default,
        };
        p.into_result(())?;
        Ok(Self {
            subscription: subscription.unwrap_or_default(),
            endpoint,
            credentials,
            max_messages,
            wait,
            gather,
        })
    }
}

/// The Google kinds' events from a Pub/Sub subscription.
#[derive(Debug)]
pub struct PubSubSource {
    client: Client,
    config: PubSubConfig,
    /// When the next pull may start (after one that was not full, or an empty immediate one).
    next: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl PubSubSource {
    /// A source of the configured subscription.
    pub fn new(config: PubSubConfig) -> Result<Self, ProviderError> {
        let common = CommonSettings {
            // A pull may be held up to `wait` before the service answers: never cut short.
            request_timeout: config.wait + Duration::from_secs(30),
            ..CommonSettings::default()
        };
        Ok(Self {
            client: Client::new(KIND, &config.endpoint, &common, config.credentials.clone())?,
            config,
            next: std::sync::Mutex::new(None),
        })
    }

    async fn call(&self, method: &str, body: Value) -> Result<Value, ProviderError> {
        let path = format!("/v1/{}:{method}", self.config.subscription);
        self.client
            .call(&path, Call::Other, Idempotency::Idempotent, |c, url| {
                c.post(url).json(&body)
            })
            .await
    }
}

#[async_trait]
impl EventSource for PubSubSource {
    /// `pull`: up to `max_messages`, held up to `wait`; each message read by
    /// [`crate::events::read_message`].
    async fn receive(&self) -> tether_provider::Result<Vec<Delivery>> {
        let next = self.next.lock().expect("the gather lock").take();
        if let Some(at) = next {
            tokio::time::sleep_until(at).await;
        }
        let mut body = json!({"maxMessages": self.config.max_messages});
        if self.config.wait.is_zero() {
            body["returnImmediately"] = json!(true);
        }
        let answer = self.call("pull", body).await?;
        let received = answer["receivedMessages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let short = (received.len() as u32) < self.config.max_messages;
        let idle = received.is_empty() && self.config.wait.is_zero();
        if (short && !received.is_empty() || idle) && !self.config.gather.is_zero() {
            *self.next.lock().expect("the gather lock") =
                Some(tokio::time::Instant::now() + self.config.gather);
        }
        Ok(received
            .iter()
            .filter_map(|m| {
                let Some(ack_id) = m["ackId"].as_str() else {
                    tracing::warn!(message = %m, "a Pub/Sub message without an ack id");
                    return None;
                };
                Some(Delivery {
                    receipt: ack_id.to_string(),
                    reading: crate::events::read_message(&m["message"]),
                })
            })
            .collect())
    }

    /// `acknowledge`, 1,000 ack ids a call.
    async fn acknowledge(&self, receipts: &[String]) -> tether_provider::Result<()> {
        for chunk in receipts.chunks(ACK_CHUNK) {
            self.call("acknowledge", json!({"ackIds": chunk})).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tether_provider::settings::Setting;

    use super::*;

    fn build(pairs: &[(&str, Setting)]) -> Result<PubSubConfig, Vec<String>> {
        let table = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        PubSubConfig::build("events.google", table)
    }

    #[test]
    fn a_subscription_is_enough() {
        let c = build(&[("subscription", "projects/p/subscriptions/s".into())]).unwrap();
        assert_eq!(c.endpoint, "https://pubsub.googleapis.com");
        assert_eq!(c.credentials, Credentials::Default);
        assert_eq!((c.max_messages, c.wait, c.gather), (100, WAIT, GATHER));
    }

    #[test]
    fn every_bad_field_is_named() {
        let errors = build(&[
            ("subscription", "my-sub".into()),
            ("max_messages", Setting::Integer(5000)),
            ("unauthenticated", Setting::Boolean(true)),
            ("colour", "blue".into()),
        ])
        .unwrap_err()
        .join("\n");
        for needle in [
            "events.google.subscription: \"my-sub\" is not projects/PROJECT/subscriptions/NAME",
            "events.google.max_messages: 5000 is above Pub/Sub's 1,000",
            "events.google.unauthenticated: only for the emulator",
            "events.google.colour: unknown field",
        ] {
            assert!(errors.contains(needle), "{needle} not in:\n{errors}");
        }
        let emulator = build(&[
            ("subscription", "projects/p/subscriptions/s".into()),
            ("endpoint", "http://127.0.0.1:8085".into()),
            ("unauthenticated", Setting::Boolean(true)),
        ])
        .unwrap();
        assert_eq!(emulator.credentials, Credentials::None);
    }
}
