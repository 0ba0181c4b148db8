//! Job notifications (issue #35): what tether adds to the runs it submits so that the
//! workspace tells it when a run starts and ends, and how it reads what the workspace sends.
//!
//! An account that names a notification destination (`notification_destination`, a generic
//! webhook destination whose URL is tether's `POST /v1/events/databricks/{account}`) has its
//! one-time runs submitted with `webhook_notifications` naming that destination for
//! `on_start`, `on_success` and `on_failure`, beside whatever destinations the spec names
//! itself. The workspace then POSTs its job notification payload there with HTTP basic
//! authentication: the destination's user name and password. [`DatabricksWebhook`] checks the
//! password against the account's `notification_secret` and reads the payload into a
//! [`Hint`] whose reference is the run id ([`crate::Databricks`]'s `handle_ref`).
//!
//! The shapes, as Databricks documents them:
//! - `webhook_notifications` of `runs/submit`: databricks-sdk-py `service/jobs.py`
//!   `WebhookNotifications` (lists of `Webhook {id}`, "A maximum of 3 destinations can be
//!   specified" for each event) and `JobsAPI.submit`; `run-now` takes none (a job's runs
//!   notify as the job's own settings say);
//! - the payload: <https://docs.databricks.com/aws/en/jobs/notifications> ("event_type",
//!   "workspace_id", "run": {"run_id", and "parent_run_id" for a task's run}, "job":
//!   {"job_id", "name"}, "task": {"task_key"} for a task's run).

use base64::Engine as _;
use serde_json::{json, Map, Value};
use tether_provider::events::{Hint, Reading, Webhook};
use tether_provider::Secret;

use crate::PROVIDER;

/// The `webhook_notifications` events tether names its destination for.
pub const EVENTS: [&str; 3] = ["on_start", "on_success", "on_failure"];

/// "A maximum of 3 destinations can be specified" for each event of `webhook_notifications`.
pub const MAX_DESTINATIONS: usize = 3;

/// The `event_type`s of the notifications tether acts on: a run started, succeeded, failed.
pub const EVENT_TYPES: [&str; 3] = ["jobs.on_start", "jobs.on_success", "jobs.on_failure"];

/// Checks the `webhook_notifications` a spec gives, if any: an object whose every event is a
/// list of `{"id": "<destination id>"}`.
pub(crate) fn check_spec(spec: &Value) -> Result<(), String> {
    let Some(given) = spec.get("webhook_notifications") else {
        return Ok(());
    };
    let Some(events) = given.as_object() else {
        return Err(format!(
            "webhook_notifications must be an object (events to lists of {{\"id\": destination}}), not {given}"
        ));
    };
    for (event, list) in events {
        let ok = list.as_array().is_some_and(|list| {
            list.iter()
                .all(|w| w.get("id").is_some_and(Value::is_string))
        });
        if !ok {
            return Err(format!(
                "webhook_notifications.{event} must be a list of {{\"id\": \"<destination id>\"}}, not {list}"
            ));
        }
    }
    Ok(())
}

/// Adds `destination` to the `on_start`, `on_success` and `on_failure` lists of the
/// submission `body`'s `webhook_notifications` (made if the spec has none), after the
/// destinations the spec names itself and only where it is not named already. An event whose
/// list already holds [`MAX_DESTINATIONS`] others is left as it is (more would be refused):
/// those events are returned, and tether learns of them by polling alone.
///
/// `body` has passed [`check_spec`].
pub fn add_destination(body: &mut Map<String, Value>, destination: &str) -> Vec<&'static str> {
    let notifications = body
        .entry("webhook_notifications")
        .or_insert_with(|| json!({}));
    let Some(events) = notifications.as_object_mut() else {
        return EVENTS.to_vec();
    };
    let mut full = Vec::new();
    for event in EVENTS {
        let list = events.entry(event).or_insert_with(|| json!([]));
        let Some(list) = list.as_array_mut() else {
            full.push(event);
            continue;
        };
        if list
            .iter()
            .any(|w| w.get("id").and_then(Value::as_str) == Some(destination))
        {
            continue;
        }
        if list.len() >= MAX_DESTINATIONS {
            full.push(event);
            continue;
        }
        list.push(json!({ "id": destination }));
    }
    full
}

/// The job notifications of one `databricks` account: authenticated by the destination's
/// password, read into hints about runs.
#[derive(Debug, Clone)]
pub struct DatabricksWebhook {
    /// The password the account's notification destination sends.
    secret: Secret,
}

impl DatabricksWebhook {
    /// Notifications whose basic-auth password is `secret`.
    pub fn new(secret: Secret) -> Self {
        Self { secret }
    }
}

impl Webhook for DatabricksWebhook {
    /// `Authorization: Basic base64(user:password)` with the account's secret as the password
    /// (any user name), compared in constant time; anything else is refused.
    fn authentic(&self, authorization: Option<&str>) -> bool {
        let Some(password) = authorization.and_then(basic_password) else {
            return false;
        };
        same_secret(&password, self.secret.expose().as_bytes())
    }

    /// A run's `jobs.on_start`, `jobs.on_success` or `jobs.on_failure` is a hint about the
    /// run (`run.run_id`; for a task's run, the job run it belongs to, `run.parent_run_id`,
    /// with no state: a task's end is not the run's); another `event_type` is foreign.
    fn read(&self, body: &[u8]) -> Result<Reading, String> {
        let payload: Value = serde_json::from_slice(body)
            .map_err(|e| format!("a Databricks notification must be JSON: {e}"))?;
        let Some(fields) = payload.as_object() else {
            return Err(format!(
                "a Databricks notification is a JSON object, not {}",
                kind_of(&payload)
            ));
        };
        let Some(event_type) = fields.get("event_type").and_then(Value::as_str) else {
            return Err(
                "the notification has no event_type (a string such as \"jobs.on_success\")".into(),
            );
        };
        if !EVENT_TYPES.contains(&event_type) {
            return Ok(Reading::Foreign(format!(
                "Databricks notification {event_type}: not a run's start or end"
            )));
        }
        let run = fields.get("run");
        let parent = run.and_then(|r| r.get("parent_run_id"));
        let (field, id) = match parent {
            Some(id) => ("run.parent_run_id", id),
            None => match run.and_then(|r| r.get("run_id")) {
                Some(id) => ("run.run_id", id),
                None => return Err(format!("the {event_type} notification has no run.run_id")),
            },
        };
        let reference = run_id_text(id).ok_or_else(|| {
            format!("{field} of the {event_type} notification is not a run id: {id}")
        })?;
        let of_task = parent.is_some() || fields.contains_key("task");
        Ok(Reading::Hint(Hint {
            kind: PROVIDER,
            reference,
            region: None,
            at_ms: None,
            state: (!of_task).then(|| event_type.to_string()),
            // A start: the run is not over, and polling reads that it runs.
            progress: event_type == "jobs.on_start",
        }))
    }
}

/// A run id as a decimal string: a positive whole number, given as a number or as a string
/// of digits (Databricks' documentation shows the payload's ids without saying which).
fn run_id_text(id: &Value) -> Option<String> {
    let n = match id {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()?
        }
        _ => return None,
    };
    (n > 0).then(|| n.to_string())
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The password of an `Authorization: Basic ...` header (RFC 7617: the scheme in any case,
/// the user id up to the first colon, the password after it).
fn basic_password(header: &str) -> Option<Vec<u8>> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some(decoded[colon + 1..].to_vec())
}

/// Whether `given` is `secret`, in a time that depends on the secret's length only (not on
/// where the first difference is).
fn same_secret(given: &[u8], secret: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != secret.len());
    for (i, s) in secret.iter().enumerate() {
        diff |= s ^ given.get(i).copied().unwrap_or(!s);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    fn webhook() -> DatabricksWebhook {
        DatabricksWebhook::new(Secret::new("s3cret:with-colon"))
    }

    #[test]
    fn authentic_only_with_the_secret_as_password() {
        let w = webhook();
        assert!(w.authentic(Some(&basic("databricks", "s3cret:with-colon"))));
        assert!(w.authentic(Some(&basic("", "s3cret:with-colon"))));
        assert!(w.authentic(Some(
            &basic("any", "s3cret:with-colon").replace("Basic", "basic")
        )));
        for refused in [
            basic("databricks", "s3cret"),
            basic("databricks", "s3cret:with-colon!"),
            basic("databricks", "S3cret:with-colon"),
            basic("s3cret:with-colon", ""),
            "Bearer s3cret:with-colon".to_string(),
            "Basic !!!not-base64".to_string(),
            "Basic".to_string(),
            String::new(),
        ] {
            assert!(!w.authentic(Some(&refused)), "{refused:?}");
        }
        assert!(!w.authentic(None));
        assert!(!format!("{w:?}").contains("s3cret"));
    }

    #[test]
    fn same_secret_compares_whole_values() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"ab", b"abc"));
        assert!(!same_secret(b"abcd", b"abc"));
        assert!(!same_secret(b"", b"abc"));
        assert!(!same_secret(b"abd", b"abc"));
        // A prefix padded with what the secret's next byte is not: still refused.
        assert!(!same_secret(b"ab\0", b"ab\xff"));
    }

    fn hint(body: Value) -> Result<Reading, String> {
        webhook().read(body.to_string().as_bytes())
    }

    #[test]
    fn reads_the_documented_payloads() {
        // The documentation's job-run payload, with ids as strings and as numbers.
        for run_id in [json!("1042"), json!(1042)] {
            let reading = hint(json!({
                "event_type": "jobs.on_success",
                "workspace_id": "1234567890123456",
                "run": {"run_id": run_id},
                "job": {"job_id": "900001042", "name": "nightly"},
            }))
            .unwrap();
            assert_eq!(
                reading,
                Reading::Hint(Hint {
                    kind: "databricks",
                    reference: "1042".into(),
                    region: None,
                    at_ms: None,
                    state: Some("jobs.on_success".into()),
                    progress: false,
                })
            );
        }
        // A task's run: the hint names the job run it belongs to, with no state.
        let Reading::Hint(h) = hint(json!({
            "event_type": "jobs.on_failure",
            "workspace_id": "1",
            "task": {"task_key": "etl"},
            "run": {"run_id": "7001", "parent_run_id": "1042"},
            "job": {"job_id": "9", "name": "nightly"},
        }))
        .unwrap() else {
            panic!("not a hint")
        };
        assert_eq!((h.reference.as_str(), h.state), ("1042", None));
    }

    #[test]
    fn other_events_are_foreign_and_bad_ones_are_errors() {
        let foreign = hint(json!({
            "event_type": "jobs.on_duration_warning_threshold_exceeded",
            "run": {"run_id": "1"},
        }))
        .unwrap();
        assert!(
            matches!(&foreign, Reading::Foreign(why) if why.contains("on_duration_warning")),
            "{foreign:?}"
        );
        let err = webhook().read(b"{not json").unwrap_err();
        assert!(err.contains("JSON"), "{err}");
        let err = hint(json!(["jobs.on_start"])).unwrap_err();
        assert!(err.contains("an array"), "{err}");
        let err = hint(json!({"run": {"run_id": 1}})).unwrap_err();
        assert!(err.contains("event_type"), "{err}");
        let err = hint(json!({"event_type": "jobs.on_start", "job": {"job_id": 1}})).unwrap_err();
        assert!(err.contains("run.run_id"), "{err}");
        for bad in [
            json!("abc"),
            json!(-3),
            json!(0),
            json!(1.5),
            json!(null),
            json!(""),
        ] {
            let err =
                hint(json!({"event_type": "jobs.on_start", "run": {"run_id": bad}})).unwrap_err();
            assert!(
                err.contains("run.run_id") && err.contains("not a run id"),
                "{err}"
            );
        }
    }

    #[test]
    fn add_destination_merges_without_duplicates() {
        let mut body = json!({
            "tasks": [],
            "webhook_notifications": {
                "on_start": [{"id": "mine"}],
                "on_failure": [{"id": "ours"}],
                "on_duration_warning_threshold_exceeded": [{"id": "mine"}],
            },
        });
        let obj = body.as_object_mut().unwrap();
        assert!(add_destination(obj, "ours").is_empty());
        assert!(
            add_destination(obj, "ours").is_empty(),
            "a second time changes nothing"
        );
        assert_eq!(
            body["webhook_notifications"],
            json!({
                "on_start": [{"id": "mine"}, {"id": "ours"}],
                "on_success": [{"id": "ours"}],
                "on_failure": [{"id": "ours"}],
                "on_duration_warning_threshold_exceeded": [{"id": "mine"}],
            })
        );
        let mut bare = json!({"tasks": []});
        add_destination(bare.as_object_mut().unwrap(), "ours");
        assert_eq!(
            bare["webhook_notifications"],
            json!({"on_start": [{"id": "ours"}], "on_success": [{"id": "ours"}], "on_failure": [{"id": "ours"}]})
        );
    }

    #[test]
    fn a_full_event_is_left_as_it_is() {
        let three = json!([{"id": "a"}, {"id": "b"}, {"id": "c"}]);
        let mut body = json!({"webhook_notifications": {"on_failure": three}});
        let full = add_destination(body.as_object_mut().unwrap(), "ours");
        assert_eq!(full, ["on_failure"]);
        assert_eq!(body["webhook_notifications"]["on_failure"], three);
        assert_eq!(
            body["webhook_notifications"]["on_start"],
            json!([{"id": "ours"}])
        );
    }

    #[test]
    fn check_spec_names_the_bad_field() {
        assert!(check_spec(&json!({"tasks": []})).is_ok());
        assert!(check_spec(&json!({"webhook_notifications": {"on_start": [{"id": "x"}]}})).is_ok());
        let err = check_spec(&json!({"webhook_notifications": ["x"]})).unwrap_err();
        assert!(
            err.starts_with("webhook_notifications must be an object"),
            "{err}"
        );
        let err = check_spec(&json!({"webhook_notifications": {"on_success": "x"}})).unwrap_err();
        assert!(err.starts_with("webhook_notifications.on_success"), "{err}");
        let err =
            check_spec(&json!({"webhook_notifications": {"on_start": [{"id": 3}]}})).unwrap_err();
        assert!(err.starts_with("webhook_notifications.on_start"), "{err}");
    }
}
