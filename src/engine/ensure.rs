//! `ensure`: the decision table run whenever a task asks for its job.
//!
//! | what is recorded for (task instance, job name)          | what `ensure` does                          |
//! |---------------------------------------------------------|---------------------------------------------|
//! | nothing                                                 | submit generation 1                         |
//! | an intent without a handle (a crash between submit and record) | reconcile: `find(key)`, else submit again with the same key (deduplicated by the provider) |
//! | a job that is not finished (pending, running, unknown)  | reattach, whatever the try number; no submit; the job belongs to the latest try that asked |
//! | a job not finished whose cancel its try asked for, asked by a later try (a clear) | once the cancel reached the provider, submit anew: generation + 1 |
//! | a job that succeeded, its result not consumed            | report success; no submit (it ended while its try was gone) |
//! | a job that succeeded, consumed by try N, asked by a later try (a clear) | submit anew: generation + 1 |
//! | a refused submission (no handle), asked by the same or a later try | submit again on the same record, with the next attempt's key (the provider made nothing; a token it remembers with its refusal, as ECS does for 24 hours, would be refused again) |
//! | a failed / cancelled / lost job, asked by a later try than the one it belongs to | submit anew: generation + 1 (a real retry) |
//! | a job whose outcome is unknown (the provider forgot it after reporting it), asked by any try | report `outcome_unknown`; no submit until a person settles it (`tether jobs resolve`) |
//! | the same, failed, with the same spec, on a provider that repairs (`on_retry = "repair"`) | repair it in place: generation + 1 names the same remote job, only its failed parts run again |
//! | a terminal job, asked by the same (or an earlier) try   | report that result                          |
//! | a running job whose spec differs from the one asked for | reattach and warn (`on_spec_change = "reattach"`), or refuse (`"fail"`) |
//!
//! The table is decided by a pure function, [`super::decide::decide`], tested row by row
//! against this table; this module carries the decision out.
//!
//! Submission is write-ahead: the intent (key, spec hash, provider, try) is committed before
//! the provider is called, and the handle is committed with the task-state key
//! `tether.job.<name>` right after, in one transaction fenced by the submitter's lease. A
//! submitter that lost its lease while the provider answered records its handle all the same
//! if the intent has none yet (the first handle recorded is the job's), and otherwise reports
//! it as a duplicate. Nothing is submitted while this process's clock is beyond
//! `supervisor.max_clock_skew` from the database's.
//!
//! A repair is a submission like any other: its intent (with `repair_of`, the failed
//! generation's handle) is committed first, the provider's repair call is gated like a
//! submission that does not deduplicate, and a lost answer is reconciled with the provider's
//! `find_repair` before anything is sent again.

use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use tether_provider::{ErrorKind, Handle, JobState, Provider, ProviderError};

use super::decide::{decide, Asked, Decision, Facts};
use super::key::{attempt_key, idempotency_key, spec_hash};
use super::{Engine, EngineError};
use crate::config::OnSpecChange;
use crate::crash::crash_point;
use crate::db::jobs::NewJob;
use crate::jobs::{JobRecord, Lease, Phase};
use crate::model::scope::validate_id;
use crate::model::{JobId, Millis};
use crate::state::{TaskInstanceId, ValidationError};

/// How long `ensure` waits for the cancel of an earlier try's job to reach the provider before
/// it runs the job anew (else it answers "busy": ask again).
const CANCEL_SEND_WAIT: Duration = Duration::from_secs(10);

/// A task's request for its job.
#[derive(Debug, Clone)]
pub struct EnsureRequest {
    /// The task instance.
    pub task_instance: TaskInstanceId,
    /// Its try number (1 for the first try).
    pub try_number: i64,
    /// The job's name within the task instance.
    pub name: String,
    /// The configured provider name.
    pub provider: String,
    /// The job spec (the provider's submit body).
    pub spec: Value,
}

/// What `ensure` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnsureAction {
    /// Submitted the first generation.
    Submitted,
    /// Found the job running and reattached to it.
    Reattached,
    /// Submitted a new generation after a failed one (a real retry).
    Resubmitted,
    /// Found a submission whose handle was never recorded, and recorded it.
    Recovered,
    /// The job had finished; reported its result.
    Finished,
}

impl EnsureAction {
    /// Whether this call submitted a job to the provider.
    pub fn submitted(self) -> bool {
        matches!(self, EnsureAction::Submitted | EnsureAction::Resubmitted)
    }
}

/// The result of `ensure`.
#[derive(Debug, Clone, Serialize)]
pub struct Ensured {
    /// The job as recorded now.
    pub job: JobRecord,
    /// What was done.
    pub action: EnsureAction,
}

impl EnsureRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        self.task_instance.validate()?;
        validate_id("job name", &self.name, "")?;
        if self.try_number < 1 {
            return Err(ValidationError::new(
                "try_number",
                format!("{} is below 1 (the first try is 1)", self.try_number),
            ));
        }
        Ok(())
    }
}

impl Engine {
    /// Submits the job, or reattaches to it, per the decision table in this module's docs.
    #[tracing::instrument(skip(self, req), fields(ti = %req.task_instance, job = %req.name, try_number = req.try_number, provider = %req.provider))]
    pub async fn ensure(&self, req: &EnsureRequest) -> Result<Ensured, EngineError> {
        req.validate()?;
        let provider = self.inner.providers.get(&req.provider)?;
        provider.validate_spec(&req.spec)?;
        let hash = spec_hash(&req.spec);
        // Each pass either decides or sees that another process changed the record (a
        // concurrent submit, a lease taken): then it reads again.
        for _ in 0..10 {
            let latest = self
                .inner
                .jobs
                .latest(&req.task_instance, &req.name)
                .await?;
            let asked = Asked {
                try_number: req.try_number,
                spec_hash: &hash,
                provider: &req.provider,
                repairs: provider.repairs(),
            };
            let decision = decide(latest.as_ref().map(Facts::of).as_ref(), &asked);
            let done = match (decision, latest) {
                (Decision::SubmitFirst, _) | (_, None) => {
                    let action = EnsureAction::Submitted;
                    self.submit_new(req, &*provider, 1, &hash, action, None)
                        .await?
                }
                (Decision::ResolveSubmitting, Some(job)) => {
                    self.resolve_submitting(job, &*provider).await?
                }
                (Decision::Reattach { spec_changed }, Some(job)) => {
                    self.reattach(job, req, &hash, spec_changed).await?
                }
                // Nothing was made: submit again, same generation and key.
                (Decision::RetryRefused, Some(job)) => {
                    self.retry_refused(req, job, &*provider, &hash).await?
                }
                (Decision::RerunAfterCancel | Decision::Rerun { .. }, Some(job)) => {
                    if decision == Decision::RerunAfterCancel {
                        // Never reattach to a job on its way out: run it anew once the
                        // cancel its earlier try asked for has reached the provider.
                        self.until_cancel_sent(&job).await?;
                    }
                    let repair = match decision {
                        Decision::Rerun { repair: true } => job.handle.as_ref(),
                        _ => None,
                    };
                    let generation = job.generation + 1;
                    let action = EnsureAction::Resubmitted;
                    self.submit_new(req, &*provider, generation, &hash, action, repair)
                        .await?
                }
                (Decision::Report, Some(job)) => Some(Ensured {
                    job,
                    action: EnsureAction::Finished,
                }),
            };
            // `None`: another process changed the record meanwhile; decide again.
            if let Some(done) = done {
                return Ok(done);
            }
        }
        let job = self
            .inner
            .jobs
            .latest(&req.task_instance, &req.name)
            .await?;
        Err(EngineError::Busy {
            job_id: job.as_ref().map_or(JobId(0), |j| j.id),
            owner: job.and_then(|j| j.lease_owner).unwrap_or_default(),
        })
    }

    /// Reattaches `req`'s try to the running `job` (after `on_spec_change` allowed a
    /// `spec_changed` one); `None` if a cancel was asked, or it finished, meanwhile.
    async fn reattach(
        &self,
        job: JobRecord,
        req: &EnsureRequest,
        hash: &str,
        spec_changed: bool,
    ) -> Result<Option<Ensured>, EngineError> {
        if spec_changed {
            self.spec_changed(&job, req, hash).await?;
        }
        let now = Millis::from(self.now());
        let attached = self
            .inner
            .jobs
            .attach(job.id, req.try_number, self.owner(), now)
            .await?;
        Ok(attached.map(|job| {
            tracing::info!(job_id = job.id.0, state = %job.state, "reattached to a running job");
            Ensured {
                job,
                action: EnsureAction::Reattached,
            }
        }))
    }

    /// Waits (up to [`CANCEL_SEND_WAIT`]) until the cancel asked for `job` reached the
    /// provider, or the job ended; [`EngineError::Busy`] (503: ask again) if it did not yet.
    async fn until_cancel_sent(&self, job: &JobRecord) -> Result<(), EngineError> {
        let started = std::time::Instant::now();
        let mut now = job.clone();
        loop {
            if now.cancel_sent_at.is_some() || now.phase == Phase::Terminal {
                return Ok(());
            }
            if started.elapsed() >= CANCEL_SEND_WAIT {
                return Err(EngineError::Busy {
                    job_id: job.id,
                    owner: now
                        .lease_owner
                        .unwrap_or_else(|| "the supervisor sending its cancel".into()),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            match self.inner.jobs.get(job.id).await? {
                Some(j) => now = j,
                None => return Ok(()),
            }
        }
    }

    /// `on_spec_change` for a running job asked for with another spec or provider: refuse,
    /// or record the difference and go on to reattach.
    async fn spec_changed(
        &self,
        job: &JobRecord,
        req: &EnsureRequest,
        hash: &str,
    ) -> Result<(), EngineError> {
        match self.inner.settings.on_spec_change {
            OnSpecChange::Fail => Err(EngineError::SpecChanged {
                job_id: job.id,
                name: job.name.clone(),
            }),
            OnSpecChange::Reattach => {
                tracing::warn!(
                    job_id = job.id.0,
                    "the job is running with a different spec (or provider); reattaching to it"
                );
                self.inner
                    .jobs
                    .append_event(
                        job.id,
                        "spec_changed",
                        Some(job.state),
                        &json!({ "running_spec_hash": job.spec_hash, "requested_spec_hash": hash,
                                 "requested_provider": req.provider }),
                        self.owner(),
                        Millis::from(self.now()),
                    )
                    .await?;
                Ok(())
            }
        }
    }

    /// Records the intent for `generation` and submits it (or, with `repair`, the failed
    /// generation's handle, repairs that job). `None` if another process recorded that
    /// generation first.
    async fn submit_new(
        &self,
        req: &EnsureRequest,
        provider: &dyn Provider,
        generation: i64,
        hash: &str,
        action: EnsureAction,
        repair: Option<&Handle>,
    ) -> Result<Option<Ensured>, EngineError> {
        self.clock_trusted()?;
        let key = idempotency_key(
            &self.inner.key_namespace.value,
            &req.task_instance,
            &req.name,
            generation,
        );
        let now = self.now();
        let spec_json = req.spec.to_string();
        let mut new = self.intent_of(req, provider, generation, &key, &spec_json, hash);
        new.repair_of = repair.map(Handle::as_json);
        // The task-state key is written in the insert's transaction, from the new record.
        let intent = |job: &JobRecord| {
            self.state_key_write(job, Phase::Submitting, None, JobState::Pending, now)
        };
        crash_point("before_intent");
        let Some(job) = self.inner.jobs.insert_intent(&new, &intent).await? else {
            return Ok(None);
        };
        crash_point("after_intent");
        tracing::info!(job_id = job.id.0, generation, key = %key, "intent recorded; submitting");
        let lease = Lease {
            job_id: job.id,
            owner: self.submitter().to_string(),
            epoch: job.lease_epoch,
        };
        self.submit_recorded(job, lease, provider, action).await
    }

    /// The intent `req` makes for `generation`, held by this process' submitter from now.
    fn intent_of<'a>(
        &'a self,
        req: &'a EnsureRequest,
        provider: &dyn Provider,
        generation: i64,
        key: &'a str,
        spec_json: &'a str,
        hash: &'a str,
    ) -> NewJob<'a> {
        let now = Millis::from(self.now());
        NewJob {
            task_instance: &req.task_instance,
            name: &req.name,
            generation,
            idempotency_key: key,
            provider: &req.provider,
            spec_json,
            spec_hash: hash,
            try_number: req.try_number,
            owner: self.submitter(),
            now,
            lease_until: now.plus(self.submit_lease_len(provider).as_millis() as i64),
            poll_interval_ms: provider.settings().poll.initial.as_millis() as i64,
            repair_of: None,
        }
    }

    /// Submits a refused submission again, on its own record (same generation, the next
    /// attempt's key), with the provider and spec asked for now. `None` if another caller took it up first.
    async fn retry_refused(
        &self,
        req: &EnsureRequest,
        job: JobRecord,
        provider: &dyn Provider,
        hash: &str,
    ) -> Result<Option<Ensured>, EngineError> {
        self.clock_trusted()?;
        let now = self.now();
        let spec_json = req.spec.to_string();
        // A key of its own: the provider may remember the refused one with its refusal.
        let key = attempt_key(
            &self.inner.key_namespace.value,
            &req.task_instance,
            &req.name,
            job.generation,
            job.attempt + 1,
        );
        let again = self.intent_of(req, provider, job.generation, &key, &spec_json, hash);
        let intent = |job: &JobRecord| {
            self.state_key_write(job, Phase::Submitting, None, JobState::Pending, now)
        };
        let Some(job) = self
            .inner
            .jobs
            .retry_refused(job.id, &again, intent)
            .await?
        else {
            return Ok(None);
        };
        tracing::info!(job_id = job.id.0, key = %job.idempotency_key, "a refused submission is submitted again");
        let lease = Lease {
            job_id: job.id,
            owner: self.submitter().to_string(),
            epoch: job.lease_epoch,
        };
        self.submit_recorded(job, lease, provider, EnsureAction::Submitted)
            .await
    }

    /// Calls the provider for a recorded intent whose lease this process holds, and records
    /// the handle. The lease is kept renewed while the submission is in progress, and its
    /// requests are sent only while it covers them (see [`super::window`]). `None` if the
    /// lease was lost meanwhile.
    pub(crate) async fn submit_recorded(
        &self,
        job: JobRecord,
        lease: Lease,
        provider: &dyn Provider,
        action: EnsureAction,
    ) -> Result<Option<Ensured>, EngineError> {
        // On a refusal the intent stays, without a request: its lease runs out and another
        // process (or this one, its clock fixed) reconciles it.
        self.clock_trusted()?;
        let held_until = job.lease_expires_at.map(crate::clock::to_millis);
        let Some(held) = self
            .hold_for_submission(&lease, held_until, provider)
            .await?
        else {
            return Ok(None);
        };
        let submitted = match &job.repair_of {
            Some(failed) => {
                provider
                    .repair(failed, &job.idempotency_key, held.gate())
                    .await
            }
            None => {
                provider
                    .submit(&job.spec, &job.idempotency_key, held.gate())
                    .await
            }
        };
        if let Err(e) = &submitted {
            crate::metrics::PROVIDER_ERRORS
                .with_label_values(&[
                    job.provider.as_str(),
                    "submit",
                    super::poll::error_kind_label(e),
                ])
                .inc();
        }
        match submitted {
            Ok(handle) => {
                crash_point("after_submit");
                // Keep the lease renewed until the handle is recorded.
                let event = if job.repair_of.is_some() {
                    "repaired"
                } else {
                    "submitted"
                };
                let recorded = self.record(job, lease, handle, event, action).await;
                drop(held);
                recorded
            }
            Err(e) if e.kind == ErrorKind::Transient => {
                // The request may or may not have reached the provider: look before anything
                // else is decided.
                tracing::warn!(job_id = job.id.0, error = %e, "submission outcome unknown; reconciling");
                if let Ok(found) = find(provider, &job).await {
                    if !found.is_empty() {
                        return self.adopt(job, lease, found).await;
                    }
                }
                drop(held);
                if repeat_is_safe(provider, &job) {
                    // Repeating is safe: let whoever asks next submit again at once.
                    self.inner.jobs.release(&lease).await?;
                }
                // Otherwise the lease runs out by itself: an answer lost on the way may still
                // mean a job, and whoever takes the intent over looks again after that.
                Err(EngineError::SubmissionUncertain {
                    job_id: job.id,
                    message: e.to_string(),
                })
            }
            Err(e) => {
                let now = self.now();
                let key = self.state_key_write(&job, Phase::Terminal, None, JobState::Failed, now);
                self.inner
                    .jobs
                    .fail_submission(&lease, &e.to_string(), &key, Millis::from(now))
                    .await?;
                Err(EngineError::SubmissionRefused {
                    job_id: job.id,
                    source: e,
                })
            }
        }
    }

    /// Records the handle of a job this process submitted or found. If the lease was lost
    /// meanwhile and the record now tracks another remote job, the one in hand is a
    /// duplicate: it is reported, never tracked.
    async fn record(
        &self,
        job: JobRecord,
        lease: Lease,
        handle: Handle,
        event: &str,
        action: EnsureAction,
    ) -> Result<Option<Ensured>, EngineError> {
        let now = self.now();
        let key = self.state_key_write(&job, Phase::Active, Some(&handle), JobState::Pending, now);
        let handle_ref = self.handle_ref(&job.provider, &handle);
        let recorded = self
            .inner
            .jobs
            .record_handle(&lease, &handle, &handle_ref, event, &key, Millis::from(now))
            .await?;
        let Some(mut recorded) = recorded else {
            // The lease was lost while the provider answered (it ran out, or the record moved
            // on). The first handle recorded for the intent is the job's, whoever brings it;
            // any other is a duplicate, reported whichever answer arrives first.
            let stray = self
                .inner
                .jobs
                .record_stray_handle(
                    job.id,
                    &handle,
                    &handle_ref,
                    &key,
                    &lease.owner,
                    Millis::from(now),
                )
                .await?;
            if let Some(recorded) = stray {
                tracing::warn!(job_id = job.id.0, handle = %handle, "the submission's lease was lost before its answer came; its handle is recorded");
                self.notify_changed(recorded.id);
                return Ok(Some(Ensured {
                    job: recorded,
                    action,
                }));
            }
            let now_recorded = self.inner.jobs.get(job.id).await?;
            if let Some(tracked) = now_recorded.and_then(|j| j.handle) {
                if tracked != handle {
                    self.report_duplicates(&job, &[handle]).await?;
                }
            }
            // If the lease is still ours (another process recorded the handle), polling is
            // for whichever supervisor claims the job now, not after the lease runs out.
            self.inner.jobs.release(&lease).await?;
            return Ok(None);
        };
        // The submitter's lease only covered the submission: leave polling to whichever
        // supervisor claims the job (the `tether run` that asked, or `tether serve`).
        self.inner.jobs.release(&lease).await?;
        self.notify_changed(recorded.id);
        recorded.lease_owner = None;
        tracing::info!(job_id = recorded.id.0, handle = %handle, "{event}");
        Ok(Some(Ensured {
            job: recorded,
            action,
        }))
    }

    /// Records the oldest of the remote jobs found with an intent's key, and reports the
    /// others as duplicates.
    async fn adopt(
        &self,
        job: JobRecord,
        lease: Lease,
        mut found: Vec<Handle>,
    ) -> Result<Option<Ensured>, EngineError> {
        let extra = found.split_off(1);
        let first = found
            .pop()
            .expect("adopt is called with at least one handle");
        let recorded = self
            .record(job, lease, first, "recovered", EnsureAction::Recovered)
            .await?;
        match recorded {
            Some(mut ensured) if !extra.is_empty() => {
                self.report_duplicates(&ensured.job, &extra).await?;
                if let Some(job) = self.inner.jobs.get(ensured.job.id).await? {
                    ensured.job.duplicates = job.duplicates;
                }
                Ok(Some(ensured))
            }
            recorded => Ok(recorded),
        }
    }

    /// Says loudly that the provider holds more than one job for `job`'s key: an event, an
    /// error in the log, a metric, and the handles on the job record (which the CLI and the
    /// API show).
    async fn report_duplicates(
        &self,
        job: &JobRecord,
        extra: &[Handle],
    ) -> Result<(), EngineError> {
        let added = self
            .inner
            .jobs
            .note_duplicates(job.id, extra, self.owner(), Millis::from(self.now()))
            .await?;
        if added > 0 {
            let shown = serde_json::to_string(extra).expect("handles serialise");
            crate::metrics::DUPLICATES
                .with_label_values(&[job.provider.as_str()])
                .inc_by(added);
            tracing::error!(
                job_id = job.id.0,
                key = %job.idempotency_key,
                duplicates = %shown,
                "DUPLICATE SUBMISSION: the provider holds more than one job for this key; tether keeps tracking the first and leaves the others to a person"
            );
        }
        Ok(())
    }

    /// An intent without a handle: wait for its submitter if it is alive, else take it over
    /// and reconcile. `None`: read the record again.
    async fn resolve_submitting(
        &self,
        job: JobRecord,
        provider: &dyn Provider,
    ) -> Result<Option<Ensured>, EngineError> {
        // Held under a lease of its own (a submitter's), or through a supervisor's group lease.
        let held_until = match (&job.lease_owner, job.lease_expires_at) {
            (Some(_), Some(until)) => Some(until),
            (Some(owner), None) => self
                .inner
                .members
                .lease_expiry(owner)
                .await?
                .map(chrono::DateTime::<chrono::Utc>::from),
            (None, _) => None,
        };
        let submitter_alive = held_until.is_some_and(|t| t > self.now());
        if submitter_alive {
            // Its submitter (maybe another task of this very process) is alive, or its lease
            // has not run out yet: wait for it rather than race it.
            let deadline = held_until.unwrap_or_else(|| self.now());
            while self.now() < deadline {
                tokio::time::sleep(Duration::from_millis(200)).await;
                match self.inner.jobs.get(job.id).await? {
                    Some(j) if j.phase == Phase::Submitting && j.lease_epoch == job.lease_epoch => {
                    }
                    _ => return Ok(None),
                }
            }
            return Ok(None);
        }
        self.clock_trusted()?;
        let now = self.now();
        let Some(claimed) = self
            .inner
            .jobs
            .claim(
                job.id,
                self.submitter(),
                Millis::from(now),
                self.lease_until(now),
            )
            .await?
        else {
            return Ok(None);
        };
        if claimed.phase != Phase::Submitting {
            if let Some(lease) = claimed.lease_of(self.submitter()) {
                self.inner.jobs.release(&lease).await?;
            }
            return Ok(None);
        }
        let lease = claimed.lease_of(self.submitter()).expect("just claimed");
        self.reconcile(claimed, lease, provider).await
    }

    /// Finds the job of a recorded intent, or submits it with the same key.
    ///
    /// Called with the intent's lease taken over, i.e. after the earlier submitter's lease ran
    /// out: each of its attempts has been answered or abandoned by then (see
    /// [`super::window`]). For a provider that does not deduplicate, "not found" still only
    /// counts after one more request timeout (an abandoned request may be processed late) or
    /// the account's `not_found_grace` (a new job may not be listed at once), whichever is
    /// longer, and a second look right before the new submit.
    pub(crate) async fn reconcile(
        &self,
        job: JobRecord,
        lease: Lease,
        provider: &dyn Provider,
    ) -> Result<Option<Ensured>, EngineError> {
        tracing::warn!(job_id = job.id.0, key = %job.idempotency_key, "an intent has no handle; reconciling with the provider");
        let mut looks = 0;
        loop {
            looks += 1;
            let found = match find(provider, &job).await {
                Ok(found) => found,
                Err(e) => {
                    self.inner.jobs.release(&lease).await?;
                    return Err(EngineError::SubmissionUncertain {
                        job_id: job.id,
                        message: e.to_string(),
                    });
                }
            };
            if !found.is_empty() {
                return self.adopt(job, lease, found).await;
            }
            if repeat_is_safe(provider, &job) || looks == 2 {
                break;
            }
            // An abandoned request may still be processed (one request timeout), and a job the
            // earlier attempt made may not be visible yet (the account's `not_found_grace`: an
            // eventually consistent list right after create): look again after the longer.
            let settings = provider.settings();
            let settle = settings.request_timeout.max(settings.not_found_grace);
            tracing::info!(
                job_id = job.id.0,
                wait_ms = settle.as_millis() as u64,
                "not found; looking again before submitting"
            );
            let Some(_held) = self.hold_for_submission(&lease, None, provider).await? else {
                return Ok(None);
            };
            tokio::time::sleep(settle).await;
        }
        // Not there: the earlier submission never created a job (or the provider deduplicates
        // on the key, which makes a repeat safe either way).
        self.submit_recorded(job, lease, provider, EnsureAction::Recovered)
            .await
    }
}

/// The remote jobs a recorded intent may have made: those `find` names for its key, or for a
/// repair, the repair `find_repair` names.
async fn find(provider: &dyn Provider, job: &JobRecord) -> Result<Vec<Handle>, ProviderError> {
    let intent_ms = crate::clock::to_millis(job.created_at);
    match &job.repair_of {
        Some(failed) => Ok(provider
            .find_repair(failed, intent_ms)
            .await?
            .into_iter()
            .collect()),
        None => {
            provider
                .find(&job.idempotency_key, &job.spec, intent_ms)
                .await
        }
    }
}

/// Whether sending the intent's request again is safe whatever became of the last one: a
/// submission the provider deduplicates on its key. A repair never is.
fn repeat_is_safe(provider: &dyn Provider, job: &JobRecord) -> bool {
    job.repair_of.is_none() && provider.submit_is_idempotent()
}
