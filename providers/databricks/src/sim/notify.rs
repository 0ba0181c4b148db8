//! The simulator's notification destinations and the job notifications it sends.
//!
//! - `POST /api/2.0/notification-destinations` makes a generic webhook destination
//!   (`config.generic_webhook`: `url`, `username`, `password`); `GET .../{id}` reads it back
//!   as Databricks does, saying which fields are set (`url_set`, ...) but never their values
//!   (databricks-sdk-py `service/settings.py`: `NotificationDestinationsAPI`,
//!   `GenericWebhookConfig`). Other destination types are not simulated.
//! - A run submitted (`runs/submit`) with `webhook_notifications` naming destinations has the
//!   documented payload POSTed to each, with HTTP basic authentication when the destination
//!   has a user name or password: `jobs.on_start` once it runs, then `jobs.on_success` or
//!   `jobs.on_failure` once it ends (a cancelled run's `on_failure` unless
//!   `notification_settings.no_alert_for_canceled_runs`); a repair's attempt notifies again.
//!   Notifications follow the run's own life (its schedule, a cancel, `finish_run`), not a
//!   state forced for tests.
//! - A sender task sleeps until the next start or end of a run that has notifications to send
//!   (or until a submit, repair, cancel or `finish_run` changes that), finds what is due under
//!   the lock, lets go of it, then sends each notification on a task of its own:
//!   asynchronous and best effort (no retry), as Databricks documents no delivery guarantee. They are counted apart (`notifications_sent`, `_dropped`,
//!   `_failed`), never as requests.
//! - [`NotificationFault`]s drop, repeat or delay the next notifications.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use base64::Engine as _;
use serde_json::{json, Value};
use tether_provider::sim::FaultQueue;

use super::{error, invalid, malformed, Answer, Inner, Refusal, Shared, SimRun};
use crate::notifications::{EVENTS, MAX_DESTINATIONS};

/// The `workspace_id` the simulator's notifications carry.
pub const WORKSPACE_ID: &str = "1234567890123456";

/// How long one notification may take before it is given up.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// What goes wrong with the next notifications the simulator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationFault {
    /// It is not sent.
    Drop,
    /// It is sent twice.
    Duplicate,
    /// It is sent this much later.
    Delay(Duration),
}

/// A generic webhook destination.
#[derive(Debug, Clone)]
struct Destination {
    id: String,
    display_name: Option<String>,
    url: String,
    username: Option<String>,
    password: Option<String>,
}

impl Destination {
    /// As `GET /api/2.0/notification-destinations/{id}` shows it: which fields are set, not
    /// their values ("[Input-Only]").
    fn to_api(&self) -> Value {
        json!({
            "id": self.id,
            "display_name": self.display_name,
            "destination_type": "WEBHOOK",
            "config": {"generic_webhook": {
                "url_set": true,
                "username_set": self.username.is_some(),
                "password_set": self.password.is_some(),
            }},
        })
    }

    /// The `Authorization` header its notifications carry, if it has credentials.
    fn authorization(&self) -> Option<String> {
        if self.username.is_none() && self.password.is_none() {
            return None;
        }
        let pair = format!(
            "{}:{}",
            self.username.as_deref().unwrap_or(""),
            self.password.as_deref().unwrap_or("")
        );
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        ))
    }
}

/// What a run's `webhook_notifications` ask for, and what was sent of its current attempt.
#[derive(Debug, Clone)]
pub(super) struct RunWebhooks {
    /// The submission's `webhook_notifications`, as given.
    asked: Value,
    /// Destination ids per event: `on_start`, `on_success`, `on_failure`.
    ids: [Vec<String>; 3],
    /// `notification_settings.no_alert_for_canceled_runs`.
    quiet_on_cancel: bool,
    /// The attempt (0: the original run, then each repair) `started` and `ended` are about.
    attempt: usize,
    started: bool,
    ended: bool,
}

impl RunWebhooks {
    /// What a `runs/submit` body asks for; `None` if it names no destination for a start or
    /// an end. A list of more than [`MAX_DESTINATIONS`] is refused, as documented.
    pub(super) fn of_submission(body: &Value) -> Result<Option<Self>, Refusal> {
        let Some(asked) = body.get("webhook_notifications").filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let Some(events) = asked.as_object() else {
            return Err(invalid("webhook_notifications must be an object"));
        };
        for (event, list) in events {
            let Some(list) = list.as_array() else {
                return Err(invalid(format!(
                    "webhook_notifications.{event} must be a list"
                )));
            };
            if list.len() > MAX_DESTINATIONS {
                return Err(invalid(format!(
                    "A maximum of {MAX_DESTINATIONS} destinations can be specified for the {event} property"
                )));
            }
            if !list
                .iter()
                .all(|w| w.get("id").is_some_and(Value::is_string))
            {
                return Err(invalid(format!(
                    "webhook_notifications.{event}: each destination is {{\"id\": string}}"
                )));
            }
        }
        let ids = EVENTS.map(|event| {
            events
                .get(event)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|w| w.get("id").and_then(Value::as_str).map(str::to_string))
                .collect::<Vec<String>>()
        });
        if ids.iter().all(Vec::is_empty) {
            return Ok(None);
        }
        let quiet_on_cancel = body
            .pointer("/notification_settings/no_alert_for_canceled_runs")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(Some(Self {
            asked: asked.clone(),
            ids,
            quiet_on_cancel,
            attempt: 0,
            started: false,
            ended: false,
        }))
    }
}

/// The destinations, the runs that still have notifications to send, and the faults queued
/// for those.
#[derive(Debug, Default)]
pub(super) struct Notices {
    destinations: BTreeMap<String, Destination>,
    /// Runs with `webhook_notifications` whose current attempt has not sent all it will.
    watched: BTreeSet<i64>,
    faults: FaultQueue<NotificationFault>,
    /// Wakes the sender when what is due may have changed, and when the simulator is gone.
    wake: Arc<tokio::sync::Notify>,
}

impl Notices {
    /// Looks for `run`'s notifications from now on (a new run, or a repaired one).
    pub(super) fn watch(&mut self, run: i64) {
        self.watched.insert(run);
        self.changed();
    }

    /// A run's schedule changed (a cancel, `finish_run`): the sender looks again.
    pub(super) fn changed(&self) {
        self.wake.notify_one();
    }
}

impl Drop for Notices {
    /// The simulator is gone: its sender wakes to find that out and stops.
    fn drop(&mut self) {
        self.wake.notify_one();
    }
}

/// One POST to make.
#[derive(Debug)]
struct Notice {
    url: String,
    authorization: Option<String>,
    body: Value,
    delay: Duration,
}

impl SimRun {
    /// Whether its current attempt reached RUNNING by `now` (a run cancelled while pending
    /// never started).
    fn started_by(&self, now: Instant) -> bool {
        let started = self.attempts.last().map_or(self.created, |a| a.created);
        let running_from = started + self.pending;
        match self.cancelled_at.filter(|_| self.cancelled) {
            Some(cancelled) => cancelled >= running_from && now >= running_from,
            None => now >= running_from,
        }
    }

    /// The payload of `event_type` about this run: the documented fields
    /// (<https://docs.databricks.com/aws/en/jobs/notifications>), ids as strings as the
    /// documentation's examples show them.
    fn payload(&self, event_type: &str) -> Value {
        json!({
            "event_type": event_type,
            "workspace_id": WORKSPACE_ID,
            "run": {"run_id": self.id.to_string()},
            "job": {"job_id": self.job_id.to_string(), "name": self.name},
        })
    }
}

impl Inner {
    /// When the next notification of a watched run falls due, if any is still to come: its
    /// current attempt's start (PENDING ends), or its end.
    fn next_notice_at(&self, now: Instant) -> Option<Instant> {
        let next = self.notices.watched.iter().filter_map(|id| {
            let run = self.runs.get(id)?;
            let hooks = run.webhooks.as_ref()?;
            let started = run.attempts.last().map_or(run.created, |a| a.created);
            let start = (!hooks.started && !run.cancelled).then_some(started + run.pending);
            let end = (!hooks.ended).then(|| run.end()).flatten();
            start.into_iter().chain(end).min()
        });
        next.min().map(|at| at.max(now + Duration::from_millis(1)))
    }

    /// The notifications due at `now`, marked sent (or dropped, or repeated, as the queued
    /// faults say); the runs that have nothing left to send are no longer watched.
    fn due_notices(&mut self, now: Instant) -> Vec<Notice> {
        let mut due: Vec<(String, Value)> = Vec::new();
        let watched: Vec<i64> = self.notices.watched.iter().copied().collect();
        for id in watched {
            let Some(run) = self.runs.get_mut(&id) else {
                self.notices.watched.remove(&id);
                continue;
            };
            let started = run.started_by(now);
            let (life, result, _) = run.state(now);
            let attempt = run.attempts.len().saturating_sub(1);
            let Some(hooks) = run.webhooks.as_mut() else {
                self.notices.watched.remove(&id);
                continue;
            };
            if hooks.attempt != attempt {
                (hooks.attempt, hooks.started, hooks.ended) = (attempt, false, false);
            }
            // The events due (0 on_start, 1 on_success, 2 on_failure); their payloads are
            // made only for those (most watched runs have none due).
            let mut events = Vec::new();
            if started && !hooks.started {
                hooks.started = true;
                events.push(0);
            }
            if life == "TERMINATED" && !hooks.ended {
                hooks.ended = true;
                // "Succeeded with failures" counts as a success; a cancelled run notifies
                // on_failure unless told not to (JobNotificationSettings).
                match result.as_deref().unwrap_or_default() {
                    "SUCCESS" | "SUCCESS_WITH_FAILURES" => events.push(1),
                    "CANCELED" if hooks.quiet_on_cancel => {}
                    _ => events.push(2),
                }
            }
            let ended = hooks.ended;
            for k in events {
                let hooks = run.webhooks.as_ref().expect("checked above");
                let payload =
                    run.payload(["jobs.on_start", "jobs.on_success", "jobs.on_failure"][k]);
                due.extend(hooks.ids[k].iter().map(|d| (d.clone(), payload.clone())));
            }
            if ended {
                self.notices.watched.remove(&id);
            }
        }
        let mut notices = Vec::new();
        for (destination, body) in due {
            // An id that names no destination sends nothing (what Databricks does with one
            // is not documented).
            let Some(d) = self.notices.destinations.get(&destination) else {
                continue;
            };
            let notice = |delay| Notice {
                url: d.url.clone(),
                authorization: d.authorization(),
                body: body.clone(),
                delay,
            };
            match self.notices.faults.take(|_| true) {
                Some(NotificationFault::Drop) => self.stats.notifications_dropped += 1,
                Some(NotificationFault::Duplicate) => {
                    notices.push(notice(Duration::ZERO));
                    notices.push(notice(Duration::ZERO));
                }
                Some(NotificationFault::Delay(by)) => notices.push(notice(by)),
                None => notices.push(notice(Duration::ZERO)),
            }
        }
        self.stats.notifications_sent += notices.len() as u64;
        notices
    }
}

/// Starts the task that sends the notifications of the simulator whose state is `shared`.
/// It holds the state weakly, and stops once the simulator is gone.
pub(super) fn start(shared: &Arc<Mutex<Inner>>) {
    let wake = shared
        .lock()
        .expect("simulator mutex poisoned")
        .notices
        .wake
        .clone();
    let state = Arc::downgrade(shared);
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .build()
            .expect("an HTTP client");
        loop {
            let Some(shared) = state.upgrade() else {
                return;
            };
            let (due, next) = {
                let mut guard = shared.lock().expect("simulator mutex poisoned");
                let now = Instant::now();
                (guard.due_notices(now), guard.next_notice_at(now))
            };
            drop(shared);
            for notice in due {
                tokio::spawn(send(client.clone(), state.clone(), notice));
            }
            match next {
                Some(at) => {
                    let at = tokio::time::Instant::from_std(at);
                    tokio::select! {
                        () = wake.notified() => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
                None => wake.notified().await,
            }
        }
    });
}

/// POSTs one notification; a failure is counted, not retried.
async fn send(client: reqwest::Client, state: Weak<Mutex<Inner>>, notice: Notice) {
    if !notice.delay.is_zero() {
        tokio::time::sleep(notice.delay).await;
    }
    let mut request = client.post(&notice.url).json(&notice.body);
    if let Some(auth) = &notice.authorization {
        request = request.header(reqwest::header::AUTHORIZATION, auth);
    }
    let delivered = matches!(request.send().await, Ok(r) if r.status().is_success());
    if !delivered {
        tracing::debug!(url = %notice.url, "simulated notification not delivered");
        if let Some(shared) = state.upgrade() {
            shared
                .lock()
                .expect("simulator mutex poisoned")
                .stats
                .notifications_failed += 1;
        }
    }
}

/// The destination types `config` may wrap, exactly one of them.
const CONFIG_TYPES: [&str; 5] = [
    "email",
    "generic_webhook",
    "microsoft_teams",
    "pagerduty",
    "slack",
];

/// `POST /api/2.0/notification-destinations`: a generic webhook destination.
pub(super) async fn create_destination(
    State(inner): State<Shared>,
    headers: HeaderMap,
    body: String,
) -> Answer {
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    if !guard.bearer_ok(&headers) {
        return Err(super::unauthenticated().into());
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return Err(malformed());
    };
    let wrapped: Vec<&str> = CONFIG_TYPES
        .into_iter()
        .filter(|t| body.pointer(&format!("/config/{t}")).is_some())
        .collect();
    if wrapped.len() != 1 {
        return Err(invalid(
            "config must wrap exactly one of email, generic_webhook, microsoft_teams, pagerduty, slack",
        ));
    }
    let Some(webhook) = body.pointer("/config/generic_webhook") else {
        return Err(invalid(format!(
            "the simulator makes generic_webhook destinations only, not {}",
            wrapped[0]
        )));
    };
    let text = |field: &str| {
        webhook
            .get(field)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let Some(url) = text("url").filter(|u| reqwest::Url::parse(u).is_ok()) else {
        return Err(invalid("config.generic_webhook.url must be a URL"));
    };
    let destination = guard.add_destination(
        body.get("display_name")
            .and_then(Value::as_str)
            .map(str::to_string),
        url,
        text("username"),
        text("password"),
    );
    Ok(Json(destination).into_response())
}

/// `GET /api/2.0/notification-destinations/{id}`.
pub(super) async fn get_destination(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let guard = inner.lock().expect("simulator mutex poisoned");
    if !guard.bearer_ok(&headers) {
        return Err(super::unauthenticated().into());
    }
    match guard.notices.destinations.get(&id) {
        Some(d) => Ok(Json(d.to_api()).into_response()),
        None => Err(error(
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            format!("Notification destination {id} does not exist."),
        )
        .into()),
    }
}

impl Inner {
    /// Makes a generic webhook destination; its API view.
    fn add_destination(
        &mut self,
        display_name: Option<String>,
        url: String,
        username: Option<String>,
        password: Option<String>,
    ) -> Value {
        let n = self.notices.destinations.len() as u64 + 1;
        let id = format!("5e1f0de5-0000-4000-8000-{n:012x}");
        let destination = Destination {
            id: id.clone(),
            display_name,
            url,
            username,
            password,
        };
        let view = destination.to_api();
        self.notices.destinations.insert(id, destination);
        view
    }
}

impl super::Simulator {
    /// Makes a generic webhook destination sending to `url` with HTTP basic authentication
    /// as `username` and `password` (none if both are empty), as
    /// `POST /api/2.0/notification-destinations` does; its id.
    pub fn add_webhook_destination(&self, url: &str, username: &str, password: &str) -> String {
        let given = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let view =
            self.lock()
                .add_destination(None, url.to_string(), given(username), given(password));
        view["id"].as_str().expect("an id").to_string()
    }

    /// Queues `fault` for the next `times` notifications the simulator sends.
    pub fn inject_notification_fault(&self, fault: NotificationFault, times: u32) {
        self.lock().notices.faults.push(fault, times);
    }

    /// The `webhook_notifications` the run `run_id` was submitted with, as the simulator
    /// received them.
    pub fn run_webhook_notifications(&self, run_id: i64) -> Option<Value> {
        let inner = self.lock();
        Some(inner.runs.get(&run_id)?.webhooks.as_ref()?.asked.clone())
    }
}
