//! Provider events in the soak: the AWS simulators send their jobs' EventBridge events to an
//! SQS queue served by moto (an independent implementation of SQS), every fifth one dropped,
//! duplicated or delayed by 3 s in turn (the simulator's `event_chaos_every`), and every
//! supervisor reads the queue as `[events.aws]`. Supervisors killed and stopped by the chaos
//! loop die with messages in hand (SQS delivers them again once their visibility timeout
//! passes, to whoever asks), so events are also lost to a dead reader, late and repeated.
//! The verdict's must-be-0 figures hold the same with them.

use tether_testkit::moto::Moto;

use crate::Error;

/// Every this many events, one is dropped, duplicated or delayed, in turn.
pub const CHAOS_EVERY: i64 = 5;

/// The events' queue: moto, and the queue's URL.
#[derive(Debug)]
pub struct Queue {
    /// moto, stopped when dropped.
    pub moto: Moto,
    /// The queue's URL.
    pub url: String,
}

/// Starts moto and makes the queue; `None` without moto (a failure under CI).
pub async fn queue() -> Result<Option<Queue>, Error> {
    let Some(moto) = tether_testkit::moto::start("the soak's provider events").await else {
        return Ok(None);
    };
    // SQS's JSON protocol. moto checks no signature, but routes a request to its service by
    // the credential scope of its Authorization header.
    let answer = reqwest::Client::new()
        .post(&moto.url)
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIATETHERSOAK/20260101/us-east-1/sqs/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .header("X-Amz-Target", "AmazonSQS.CreateQueue")
        .header("Content-Type", "application/x-amz-json-1.0")
        .body(r#"{"QueueName": "tether-soak-events"}"#)
        .send()
        .await
        .map_err(|e| Error::Usage(format!("creating the events' queue in moto: {e}")))?;
    let body: serde_json::Value = answer
        .json()
        .await
        .map_err(|e| Error::Usage(format!("moto's answer to CreateQueue: {e}")))?;
    let url = body["QueueUrl"]
        .as_str()
        .ok_or_else(|| {
            Error::Usage(format!(
                "moto's answer to CreateQueue has no QueueUrl: {body}"
            ))
        })?
        .to_string();
    Ok(Some(Queue { moto, url }))
}

/// Whether the simulators of `kind` send EventBridge events (its factory reads `aws-sqs`
/// sources).
pub fn sends_to_sqs(kind: &str) -> bool {
    tether::registry::factory(kind).is_some_and(|f| f.event_kinds().contains(&"aws-sqs"))
}

/// The simulator switches that send `kind`'s events to `queue`.
pub fn switches(queue: &Queue) -> tether_provider::settings::Table {
    use tether_provider::settings::Setting;
    tether_provider::settings::Table::from([
        (
            "event_queue_url".to_string(),
            Setting::String(queue.url.clone()),
        ),
        (
            "event_endpoint_url".to_string(),
            Setting::String(queue.moto.url.clone()),
        ),
        (
            "event_chaos_every".to_string(),
            Setting::Integer(CHAOS_EVERY),
        ),
    ])
}

/// The `[events.aws]` table of a supervisor's config, for the accounts of `sims` whose
/// simulators send events.
pub fn table(queue: &Queue, sims: &crate::Sims) -> String {
    let accounts: Vec<String> = sims
        .iter()
        .filter(|(kind, _)| sends_to_sqs(kind))
        .map(|(kind, _)| format!("{kind:?}"))
        .collect();
    format!(
        "\n[events.aws]\nkind = \"aws-sqs\"\nqueue_url = \"{url}\"\nendpoint_url = \"{endpoint}\"\n\
         region = \"us-east-1\"\naccounts = [{accounts}]\nwait = \"2s\"\nvisibility_timeout = \"10s\"\n",
        url = queue.url,
        endpoint = queue.moto.url,
        accounts = accounts.join(", "),
    )
}
