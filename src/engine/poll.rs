//! One poll of one job, by the supervisor holding its lease.
//!
//! - The delay grows from the provider's `poll_initial` to `poll_max` (times `poll_multiplier`,
//!   with ±20% jitter) while nothing changes, and starts again from `poll_initial` on a change.
//!   A provider's own hint or a Retry-After wins when longer.
//! - Transient failures never fail a job: after `unknown_after` failed polls in a row the job
//!   is marked `unknown` (with a warning and an event) and polling goes on.
//! - A job the provider does not know is "not visible yet" within the account's
//!   `not_found_grace` of its handle (an eventually consistent read after create), `lost` after
//!   that if the provider never reported it, and `outcome_unknown` if it had: the service
//!   forgot it before tether read its end (see [`Engine::not_found`]).
//! - An explicit cancel request that has not reached the provider is sent first.
//! - A supervisor polls the record it holds in memory (no read before the poll), and a poll
//!   that changed nothing worth keeping (same state, provider state and message; failures
//!   below the `unknown` budget) writes nothing: the next-poll bookkeeping stays in memory.
//!   Every change is committed (fenced) before anyone is told about it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tether_provider::edges::human;
use tether_provider::{
    ErrorKind, JobState, OnForgotten, PollSettings, ProviderError, RemoteStatus,
};

use super::{Engine, EngineError};
use crate::db::jobs::PollUpdate;
use crate::jobs::{HeldJob, Lease, Phase};
use crate::model::Millis;

/// What became of a job after a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollOutcome {
    /// Still going: poll again at this time.
    Again(DateTime<Utc>),
    /// Finished: nothing more to do.
    Finished,
    /// Another supervisor holds the lease now (or this one released it).
    LeaseLost,
}

/// The next polling delay: back to `initial` after a change, else grown up to `max`.
pub fn next_interval(current: Duration, changed: bool, poll: &PollSettings) -> Duration {
    if changed || current.is_zero() {
        return poll.initial;
    }
    current
        .mul_f64(poll.multiplier)
        .clamp(poll.initial, poll.max)
}

fn jitter(d: Duration) -> Duration {
    d.mul_f64(rand::random_range(0.8..1.2))
}

impl Engine {
    /// Polls the job whose record this supervisor holds under `lease`, and updates `job` to
    /// what it learned. Writes only what changed, fenced by the lease.
    ///
    /// `listed` is what a coalesced sweep reported for the job, if anything: a non-terminal
    /// state is taken as the poll's answer; a terminal one is confirmed by a single status
    /// call first (so no terminal state is ever recorded from a list call alone).
    #[tracing::instrument(skip(self, job, lease, listed), fields(job_id = lease.job_id.0))]
    pub(crate) async fn poll_record(
        &self,
        job: &mut HeldJob,
        lease: &Lease,
        listed: Option<RemoteStatus>,
    ) -> Result<PollOutcome, EngineError> {
        if job.phase == Phase::Terminal {
            return Ok(PollOutcome::Finished);
        }
        let provider = self.inner.providers.get(&job.provider)?;
        if job.phase == Phase::Submitting {
            // A submitter died between submit and record: finish its work, from the whole
            // record (the spec, the task instance), which a supervisor does not hold.
            // Either way the lease is released afterwards: whoever claims the job next polls it.
            let Some(record) = self.inner.jobs.get(job.id).await? else {
                return Ok(PollOutcome::Finished);
            };
            if let Err(e) = self.reconcile(record, lease.clone(), &*provider).await {
                tracing::warn!(error = %e, "reconciling an orphaned submission failed; retrying later");
            }
            return Ok(PollOutcome::LeaseLost);
        }
        let Some(handle) = job.handle.clone() else {
            return Ok(PollOutcome::Finished);
        };
        let mut listed = listed.filter(|s| !s.state.is_terminal());
        if job.cancel_unsent() {
            // What a sweep listed before the cancel is stale now.
            listed = None;
            // Whoever recorded the request (the API) asks the provider at once, and may have
            // by now: once is enough.
            job.cancel_sent_at = self.inner.jobs.cancel_sent_at(job.id).await?;
        }
        if job.cancel_unsent() {
            match provider.cancel(&handle).await {
                Ok(()) => {
                    let now = self.now();
                    self.inner
                        .jobs
                        .mark_cancel_sent(job.id, &lease.owner, Millis::from(now))
                        .await?;
                    job.cancel_sent_at = Some(now);
                }
                Err(e) => tracing::warn!(error = %e, "cancel request not accepted yet"),
            }
        }
        let settings = provider.settings();
        // Jobs answered by a sweep are not jittered: polled together, they stay together, so
        // that the next sweep covers them all again.
        let jittered = listed.is_none();
        let result = match listed {
            Some(status) => {
                crate::metrics::POLLS
                    .with_label_values(&[job.provider.as_str(), "listed"])
                    .inc();
                Ok(status)
            }
            None => {
                let result = provider.status(&handle).await;
                count_poll(&job.provider, &result);
                result
            }
        };
        // A provider that forgets what it cancels (Livy deletes a killed batch): a job gone
        // once its cancel was asked for is gone because of that cancel, also when tether never
        // heard the cancel's answer (lost on the way back, or the process that sent it killed,
        // or its database down, before it recorded the sending). The record is read again: the
        // request may be newer than what this supervisor holds.
        // But a new job tether never saw, within `not_found_grace` of its handle, is not
        // visible yet rather than gone: its cancel (answered "not found" too) is sent again
        // once the provider shows it.
        let now = self.now();
        let not_visible_yet = !job.seen()
            && (now - job.handle_time()).to_std().unwrap_or_default() < settings.not_found_grace;
        let gone_after_cancel = match &result {
            Err(e) if e.kind == ErrorKind::NotFound && !not_visible_yet => {
                job.cancel_requested_at.is_some()
                    || self
                        .inner
                        .jobs
                        .get(job.id)
                        .await?
                        .is_some_and(|r| r.cancel_requested_at.is_some())
            }
            _ => false,
        };
        let update = match result {
            Ok(status) => self.update_from_status(
                job,
                status,
                self.inner.providers.poll(&job.provider, settings),
                now,
                jittered,
            ),
            Err(e) if gone_after_cancel => {
                let sent = if job.cancel_sent_at.is_some() {
                    "after tether's cancel"
                } else {
                    "after its cancel was asked for (no answer to the cancel reached tether)"
                };
                let status = RemoteStatus {
                    state: JobState::Cancelled,
                    raw_state: job.raw_state.clone().unwrap_or_default(),
                    message: Some(format!(
                        "cancelled: the provider no longer has the job {sent} ({})",
                        e.message
                    )),
                    url: job.url.clone(),
                    next_poll_hint: None,
                };
                let poll = self.inner.providers.poll(&job.provider, settings);
                self.update_from_status(job, status, poll, now, jittered)
            }
            Err(e) if e.kind == ErrorKind::NotFound => self.not_found(job, &e, settings, now),
            Err(e) => self.update_from_failure(job, &e, settings, now),
        };
        let terminal = update.state.is_terminal();
        if terminal {
            crate::crash::crash_point("before_terminal_record");
        }
        let next = update.next_poll_at;
        if worth_writing(job, &update) {
            if !self.inner.jobs.apply_poll(lease, &update).await? {
                tracing::warn!("lease lost: another supervisor polls this job now");
                return Ok(PollOutcome::LeaseLost);
            }
            if update.state == JobState::OutcomeUnknown {
                crate::metrics::OUTCOME_UNKNOWN
                    .with_label_values(&[job.provider.as_str()])
                    .inc();
            }
            self.notify_changed(job.id);
        }
        absorb(job, update);
        Ok(if terminal {
            PollOutcome::Finished
        } else {
            PollOutcome::Again(next.into())
        })
    }

    /// Settles the poll of a job that a sweep reported unchanged, without a task of its own:
    /// updates `job`'s polling bookkeeping and returns the next poll time. `None` when the
    /// poll has something to do or write (a change, a final state, a cancel to send), which
    /// [`Engine::poll_record`] then does. `poll` is the account's polling settings and `now`
    /// the sweep's return, both read once per sweep part by the caller, which also counts the
    /// settled polls (`listed`).
    pub(crate) fn settle_listed(
        job: &mut HeldJob,
        status: &RemoteStatus,
        poll: &PollSettings,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if status.state.is_terminal() || job.phase != Phase::Active || job.cancel_unsent() {
            return None;
        }
        // Most of a sweep's jobs, and the reason this is here: nothing new. What
        // `update_from_status` and `worth_writing` would find, without copying the status.
        let unchanged = status.state == job.state
            && job.raw_state.as_deref() == Some(status.raw_state.as_str())
            && status.message == job.message
            && (status.url.is_none() || status.url == job.url);
        if !unchanged {
            return None;
        }
        let current = Duration::from_millis(job.poll_interval_ms.max(0) as u64);
        let interval = next_interval(current, false, poll);
        let delay = status.next_poll_hint.map_or(interval, |h| h.max(interval));
        let next = Millis::from(now).plus(delay.as_millis() as i64);
        job.poll_interval_ms = interval.as_millis() as i64;
        job.poll_failures = 0;
        job.next_poll_at = next.into();
        Some(next.into())
    }

    fn update_from_status(
        &self,
        job: &HeldJob,
        status: RemoteStatus,
        poll: &PollSettings,
        now: DateTime<Utc>,
        jittered: bool,
    ) -> PollUpdate {
        let changed =
            status.state != job.state || job.raw_state.as_deref() != Some(&status.raw_state);
        let current = Duration::from_millis(job.poll_interval_ms.max(0) as u64);
        let interval = next_interval(current, changed, poll);
        let delay = status.next_poll_hint.map_or(interval, |h| h.max(interval));
        let delay = if jittered { jitter(delay) } else { delay };
        let terminal = status.state.is_terminal();
        let event = changed.then(|| {
            let kind = if terminal {
                "finished"
            } else {
                "state_changed"
            };
            (
                kind,
                json!({ "from": job.state, "to": status.state, "raw_state": status.raw_state,
                        "message": status.message }),
            )
        });
        if changed {
            tracing::info!(from = %job.state, to = %status.state, raw = %status.raw_state, "job state changed");
        }
        PollUpdate {
            state: status.state,
            raw_state: Some(status.raw_state),
            message: status.message,
            url: status.url,
            next_poll_at: Millis::from(now).plus(delay.as_millis() as i64),
            poll_interval_ms: interval.as_millis() as i64,
            poll_failures: 0,
            now: Millis::from(now),
            event,
            state_key: terminal.then(|| {
                self.state_key_write(
                    job,
                    Phase::Terminal,
                    job.handle.as_deref(),
                    status.state,
                    now,
                )
            }),
        }
    }

    /// The provider does not know the job (not after a cancel: see [`Engine::poll_record`]).
    ///
    /// - Never reported by the provider, within `not_found_grace` of its handle: not visible
    ///   yet (an eventually consistent read after create). Polling goes on.
    /// - Never reported, after that: it was never made. `lost`; a later try submits it again.
    /// - Reported before: the service forgot it (its retention ran out, or it was deleted)
    ///   before tether read its end. `outcome_unknown`, which no retry submits again, unless
    ///   the account says `on_forgotten = "resubmit"` (then `lost`).
    fn not_found(
        &self,
        job: &HeldJob,
        e: &ProviderError,
        settings: &tether_provider::CommonSettings,
        now: DateTime<Utc>,
    ) -> PollUpdate {
        let grace = settings.not_found_grace;
        let proven = self
            .inner
            .providers
            .get(&job.provider)
            .is_ok_and(|p| p.handle_proves_existence());
        if !job.seen() {
            let since = (now - job.handle_time()).to_std().unwrap_or_default();
            if since < grace {
                return self.not_visible_yet(job, e, settings, since, now);
            }
        }
        if !job.seen() && !proven {
            let since = (now - job.handle_time()).to_std().unwrap_or_default();
            let message = format!(
                "the provider never reported this job and does not know it {} after its handle \
                 was recorded (not_found_grace is {}): it was not made, so a later try submits \
                 it again ({})",
                human(since),
                human(grace),
                e.message
            );
            return self.ended_gone(job, JobState::Lost, "lost", message, e, now);
        }
        // A job whose handle proves it was made, never read: "made" is what tether knew.
        let seen = job
            .raw_state
            .as_deref()
            .unwrap_or("made (its handle proves it)");
        let kept = settings.forgotten_after.map_or_else(
            || "the service documents no bound on how long it keeps ended jobs".to_string(),
            |d| {
                format!(
                    "the service keeps ended jobs about {} (forgotten_after)",
                    human(d)
                )
            },
        );
        match settings.on_forgotten {
            OnForgotten::Resubmit => {
                let message = format!(
                    "the provider no longer knows this job, which it had reported as {seen:?}; \
                     {kept}. on_forgotten = \"resubmit\": a later try submits it again ({})",
                    e.message
                );
                self.ended_gone(job, JobState::Lost, "lost", message, e, now)
            }
            OnForgotten::OutcomeUnknown => {
                let message = format!(
                    "outcome unknown: the provider no longer knows this job, which it had \
                     reported as {seen:?}; {kept}, and it was forgotten (or deleted) before \
                     tether read its end. No retry submits it again: settle it with `tether \
                     jobs resolve {} --succeeded | --failed | --resubmit` ({})",
                    job.id, e.message
                );
                self.ended_gone(
                    job,
                    JobState::OutcomeUnknown,
                    "outcome_unknown",
                    message,
                    e,
                    now,
                )
            }
        }
    }

    /// A job not visible yet: nothing recorded but the message, polled again as usual.
    fn not_visible_yet(
        &self,
        job: &HeldJob,
        e: &ProviderError,
        settings: &tether_provider::CommonSettings,
        since: Duration,
        now: DateTime<Utc>,
    ) -> PollUpdate {
        tracing::info!(error = %e, since_ms = since.as_millis() as u64, "a new job is not visible yet; polling on");
        let current = Duration::from_millis(job.poll_interval_ms.max(0) as u64);
        let interval = next_interval(current, false, &settings.poll);
        PollUpdate {
            state: job.state,
            raw_state: job.raw_state.clone(),
            message: Some(format!(
                "not visible at the provider yet, {} after its handle was recorded (a new job \
                 may read \"not found\" for up to {}: not_found_grace)",
                human(since),
                human(settings.not_found_grace)
            )),
            url: None,
            next_poll_at: Millis::from(now).plus(jitter(interval).as_millis() as i64),
            poll_interval_ms: interval.as_millis() as i64,
            poll_failures: job.poll_failures,
            now: Millis::from(now),
            event: None,
            state_key: None,
        }
    }

    /// A final state for a job the provider does not know (`lost` or `outcome_unknown`).
    fn ended_gone(
        &self,
        job: &HeldJob,
        state: JobState,
        event: &'static str,
        message: String,
        e: &ProviderError,
        now: DateTime<Utc>,
    ) -> PollUpdate {
        tracing::warn!(error = %e, state = %state, "the provider has no such job");
        PollUpdate {
            state,
            raw_state: job.raw_state.clone(),
            message: Some(message.clone()),
            url: None,
            next_poll_at: Millis::from(now),
            poll_interval_ms: job.poll_interval_ms,
            poll_failures: job.poll_failures,
            now: Millis::from(now),
            event: Some((event, json!({ "message": message, "provider": e.message }))),
            state_key: Some(self.state_key_write(
                job,
                Phase::Terminal,
                job.handle.as_deref(),
                state,
                now,
            )),
        }
    }

    fn update_from_failure(
        &self,
        job: &HeldJob,
        e: &ProviderError,
        settings: &tether_provider::CommonSettings,
        now: DateTime<Utc>,
    ) -> PollUpdate {
        let failures = job.poll_failures + 1;
        let budget_spent = failures >= i64::from(settings.unknown_after);
        let state = if budget_spent {
            JobState::Unknown
        } else {
            job.state
        };
        let event = (budget_spent && job.state != JobState::Unknown).then(|| {
            tracing::warn!(failures, error = %e, "provider unreachable for too long: job state unknown, still polling");
            ("unknown", json!({ "failures": failures, "error": e.message }))
        });
        if e.kind != ErrorKind::Transient {
            tracing::warn!(error = %e, "status call refused; polling goes on");
        } else {
            tracing::debug!(error = %e, failures, "status call failed; polling goes on");
        }
        let current = Duration::from_millis(job.poll_interval_ms.max(0) as u64);
        let interval = next_interval(current, false, &settings.poll);
        let delay = e.retry_after.map_or(interval, |r| r.max(interval));
        PollUpdate {
            state,
            raw_state: job.raw_state.clone(),
            message: Some(e.message.clone()),
            url: None,
            next_poll_at: Millis::from(now).plus(jitter(delay).as_millis() as i64),
            poll_interval_ms: interval.as_millis() as i64,
            poll_failures: failures,
            now: Millis::from(now),
            event,
            state_key: None,
        }
    }
}

/// Whether a poll's update holds anything worth a write: an event, a new state, provider state
/// or message, a new link. Failures below the `unknown` budget are kept in memory only.
fn worth_writing(job: &HeldJob, update: &PollUpdate) -> bool {
    update.event.is_some()
        || update.state != job.state
        || update.raw_state != job.raw_state
        || (update.poll_failures == 0 && update.message != job.message)
        || (update.url.is_some() && update.url != job.url)
}

/// Takes what a poll learnt into the held record.
fn absorb(job: &mut HeldJob, update: PollUpdate) {
    job.state = update.state;
    job.raw_state = update.raw_state;
    job.message = update.message;
    if update.url.is_some() {
        job.url = update.url;
    }
    job.poll_interval_ms = update.poll_interval_ms;
    job.poll_failures = update.poll_failures;
    job.next_poll_at = update.next_poll_at.into();
}

fn count_poll<T>(provider: &str, result: &Result<T, ProviderError>) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(e) => {
            let kind = error_kind_label(e);
            crate::metrics::PROVIDER_ERRORS
                .with_label_values(&[provider, "status", kind])
                .inc();
            kind
        }
    };
    crate::metrics::POLLS
        .with_label_values(&[provider, outcome])
        .inc();
}

/// The metric label of an error kind.
pub(crate) fn error_kind_label(e: &ProviderError) -> &'static str {
    match e.kind {
        ErrorKind::Transient => "transient",
        ErrorKind::NotFound => "not_found",
        ErrorKind::InvalidSpec => "invalid_spec",
        _ => "permanent",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_grows_to_max_and_resets_on_change() {
        let poll = PollSettings {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(60),
            multiplier: 2.0,
        };
        let mut d = Duration::ZERO;
        let mut seen = vec![];
        for _ in 0..6 {
            d = next_interval(d, false, &poll);
            seen.push(d.as_secs());
        }
        assert_eq!(seen, [5, 10, 20, 40, 60, 60]);
        assert_eq!(next_interval(d, true, &poll), Duration::from_secs(5));
    }
}
