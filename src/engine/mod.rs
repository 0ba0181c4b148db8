//! The resumption engine: ensure a job (submit once, reattach on retry), poll it to completion
//! under leases, cancel only when asked.
//!
//! - [`key`]: deterministic idempotency keys and spec hashes.
//! - [`decide`]: the decision table as a pure function of the latest record and the request.
//! - [`ensure`]: carries that decision out on every request for a job.
//! - [`poll`]: one poll of one job: backoff, unknown states, lost jobs, cancel requests.
//! - [`supervisor`]: the loop that claims jobs under leases, renews them, and polls.
//! - [`changes`]: announcements of job changes to waiters, relayed from PostgreSQL's
//!   `LISTEN/NOTIFY` for changes made by other processes.
//! - `coalesce`: when the supervisor polls many jobs of one account through its list calls
//!   (a sweep) instead of one call each.
//! - [`providers`]: the configured provider accounts, by name (built through
//!   [`crate::registry`]).
//! - `window`: the submitter's lease, renewed while it submits, and the gate that sends a
//!   non-idempotent request only while that lease covers it.
//!
//! The job records, leases and events themselves live in [`crate::jobs`].

pub mod changes;
mod coalesce;
pub mod decide;
pub mod ensure;
pub mod events;
pub mod key;
pub mod poll;
pub mod providers;
pub mod supervisor;
mod window;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use tether_provider::{Handle, JobState, ProviderError};

use crate::clock::{Clock, DbClock};
use crate::config::SupervisorConfig;
use crate::db::jobs::StateKeyWrite;
use crate::db::members::Members;
use crate::db::DbError;
use crate::jobs::{CancelRequest, HeldJob, JobRecord, JobStore, Phase};
use crate::model::{JobId, Millis};
use crate::state::{StateError, TaskState, ValidationError};

pub use changes::Changes;
pub use ensure::{EnsureAction, EnsureRequest, Ensured};
pub use key::{KeyNamespace, NamespaceSource};
pub use providers::Providers;
pub use supervisor::Supervisor;

/// The task-state key under which a job's handle is recorded: `tether.job.<name>`.
pub fn state_key(name: &str) -> String {
    format!("tether.job.{name}")
}

/// Why an engine operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// An identifier or argument breaks a rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// No provider of that name is configured.
    #[error("no provider named {name:?} is configured (configured: {})", if known.is_empty() { "none".to_string() } else { known.join(", ") })]
    UnknownProvider {
        /// The name asked for.
        name: String,
        /// The configured names.
        known: Vec<String>,
    },
    /// The provider refused or failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// A job is running with another spec and `on_spec_change = "fail"`.
    #[error("job {job_id} ({name}) is running with a different spec (on_spec_change = \"fail\"); it was left running")]
    SpecChanged {
        /// The running job.
        job_id: JobId,
        /// Its name.
        name: String,
    },
    /// No such job.
    #[error("job {0} not found")]
    JobNotFound(JobId),
    /// A try asked to cancel a job that a later try of its task instance owns now.
    #[error(
        "job {job_id} belongs to try {owner} now (a later try reattached to it): the cancel \
         asked by try {asked_by} is refused, and the job keeps running"
    )]
    CancelRefused {
        /// The job.
        job_id: JobId,
        /// The try that asked.
        asked_by: i64,
        /// The try that owns it.
        owner: i64,
    },
    /// `resolve` asked for a job whose outcome is not unknown.
    #[error(
        "job {job_id} is {state}, not outcome_unknown: only a job whose outcome is unknown can \
         be settled by hand"
    )]
    OutcomeKnown {
        /// The job.
        job_id: JobId,
        /// Its state.
        state: JobState,
    },
    /// The job has not finished: its result cannot be consumed yet.
    #[error("job {0} has not finished: only a finished job's result can be consumed")]
    NotFinished(JobId),
    /// A submission's outcome is not known yet (the provider did not answer); the next
    /// request reconciles it. Nothing was submitted twice.
    #[error(
        "job {job_id}: the submission's outcome is unknown ({message}); run again to reconcile"
    )]
    SubmissionUncertain {
        /// The job.
        job_id: JobId,
        /// What the provider said.
        message: String,
    },
    /// The provider refused the submission (a bad token, a spec it rejects): it made no job,
    /// and the job stays retryable, with the same key.
    #[error(
        "job {job_id}: the provider refused the submission, so nothing was submitted ({source}); \
         asking again (the same command, with the config or spec fixed) submits it again"
    )]
    SubmissionRefused {
        /// The job.
        job_id: JobId,
        /// What the provider answered.
        source: ProviderError,
    },
    /// Another process is submitting this job right now and did not finish in time.
    #[error("job {job_id} is being submitted by {owner}; try again shortly")]
    Busy {
        /// The job.
        job_id: JobId,
        /// The submitter.
        owner: String,
    },
    /// This process's clock is further from the database's than `supervisor.max_clock_skew`:
    /// it submits nothing (and its supervisor claims nothing) until that is fixed.
    #[error(
        "this process's clock is {skew} the database's (supervisor.max_clock_skew is {bound}): \
         it neither submits nor claims jobs until the host's clock is fixed; nothing was submitted"
    )]
    ClockSkew {
        /// How far off, for people: "12.3 s ahead of".
        skew: String,
        /// The bound, for people.
        bound: String,
    },
    /// A live supervisor on the same database speaks another lease protocol (an older tether,
    /// whose leases are per job, beside one of group leases, or the other way round): both
    /// could believe they own a job, so this one does not run.
    #[error(
        "supervisor {owner} on this database speaks lease protocol {theirs}, this one {ours}: \
         they must not run side by side (both could own one job). Stop all supervisors, \
         migrate, start (the book: Leases and fencing, Upgrading)"
    )]
    LeaseProtocol {
        /// The other supervisor's owner id.
        owner: String,
        /// Its protocol, for people: "1 (a lease per job: a tether from before group leases)".
        theirs: String,
        /// This one's.
        ours: i64,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A task-state operation failed.
    #[error(transparent)]
    State(#[from] StateError),
}

impl From<crate::db::members::OtherProtocol> for EngineError {
    fn from(other: crate::db::members::OtherProtocol) -> Self {
        EngineError::LeaseProtocol {
            owner: other.owner,
            theirs: match other.protocol {
                Some(p) => p.to_string(),
                None => "1 (a lease per job: a tether from before group leases)".into(),
            },
            ours: crate::db::members::PROTOCOL,
        }
    }
}

/// What a person says became of a job whose outcome is unknown ([`Engine::resolve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// It succeeded (checked in the provider's own records, its output, ...).
    Succeeded,
    /// It failed: a later try runs it again.
    Failed,
    /// Run it again: recorded `lost`, so that the next try submits it anew.
    Resubmit,
}

impl Resolution {
    /// The state it is recorded as.
    pub fn state(self) -> JobState {
        match self {
            Resolution::Succeeded => JobState::Succeeded,
            Resolution::Failed => JobState::Failed,
            Resolution::Resubmit => JobState::Lost,
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Succeeded => "succeeded",
            Resolution::Failed => "failed",
            Resolution::Resubmit => "resubmit",
        }
    }
}

/// The engine's shared parts.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    jobs: JobStore,
    /// The supervisors' heartbeats, in the jobs' database.
    members: Members,
    state: TaskState,
    providers: Providers,
    settings: SupervisorConfig,
    /// This process's lease owner id: host, pid and a random part, unique per process.
    owner: String,
    /// The owner id of submission leases: see [`Engine::submitter`].
    submitter: String,
    /// The database's clock: every lease time is on it (see [`DbClock`]).
    clock: Arc<DbClock>,
    /// Announces job changes to long-poll waiters (see [`changes`]).
    changes: Arc<Changes>,
    /// The namespace new idempotency keys are derived in (see [`key::idempotency_key`]).
    key_namespace: KeyNamespace,
}

impl Engine {
    /// An engine over the given stores and providers.
    pub fn new(
        jobs: JobStore,
        state: TaskState,
        providers: Providers,
        settings: SupervisorConfig,
        clock: Arc<dyn Clock>,
        key_namespace: KeyNamespace,
    ) -> Self {
        let owner = owner_id();
        let submitter = format!("{owner}/submit");
        Self {
            inner: Arc::new(Inner {
                members: Members::new(jobs.db().clone()),
                jobs,
                state,
                providers,
                settings,
                owner,
                submitter,
                clock: Arc::new(DbClock::new(clock)),
                changes: Arc::new(Changes::default()),
                key_namespace,
            }),
        }
    }

    /// The namespace this deployment derives new idempotency keys in.
    pub fn key_namespace(&self) -> &KeyNamespace {
        &self.inner.key_namespace
    }

    /// The job store.
    pub fn jobs(&self) -> &JobStore {
        &self.inner.jobs
    }

    /// The supervisors' membership.
    pub fn members(&self) -> &Members {
        &self.inner.members
    }

    /// The providers.
    pub fn providers(&self) -> &Providers {
        &self.inner.providers
    }

    /// This process's lease owner id: the supervisor's leases carry it.
    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    /// The owner id of the leases `ensure` takes to submit (the owner id with `/submit`):
    /// kept apart from the supervisor's, so that the supervisor's renewal of its own leases
    /// never extends a submission's (which must run out by itself when its outcome is
    /// uncertain, for another process to reconcile), and its shutdown never releases one that
    /// may still have a request on the way.
    pub fn submitter(&self) -> &str {
        &self.inner.submitter
    }

    /// The announcements of job changes (this process's, and on PostgreSQL everyone's).
    pub fn changes(&self) -> &Arc<Changes> {
        &self.inner.changes
    }

    pub(crate) fn notify_changed(&self, job_id: JobId) {
        self.inner.changes.announce(job_id);
    }

    /// The supervisor settings.
    pub fn settings(&self) -> &SupervisorConfig {
        &self.inner.settings
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// Reads the database's clock again (see [`DbClock`]) and returns the skew (ms); says so
    /// in the log when it is beyond `supervisor.max_clock_skew`.
    pub async fn sync_clock(&self) -> Result<i64, EngineError> {
        let before = self.inner.clock.skew_ms();
        let skew = self.inner.clock.sync(self.inner.jobs.db()).await?;
        let moved = before.is_none_or(|b| (b - skew).abs() >= 1000);
        if self.skew_beyond_bound(skew) {
            tracing::warn!(
                skew_ms = skew,
                bound_ms = self.inner.settings.max_clock_skew.as_millis() as u64,
                "this process's clock is off the database's by more than supervisor.max_clock_skew: \
                 no claims and no submissions until it is fixed"
            );
        } else if moved {
            // Said at the first measurement and whenever it moved by a second or more.
            tracing::info!(skew_ms = skew, "clock measured against the database");
        } else {
            tracing::debug!(skew_ms = skew, "clock measured against the database");
        }
        Ok(skew)
    }

    fn skew_beyond_bound(&self, skew_ms: i64) -> bool {
        skew_ms.unsigned_abs() > self.inner.settings.max_clock_skew.as_millis() as u64
    }

    /// Refuses when the last measured skew is beyond `supervisor.max_clock_skew`: what every
    /// submission and every claim asks first.
    pub(crate) fn clock_trusted(&self) -> Result<(), EngineError> {
        match self.inner.clock.skew_ms() {
            Some(skew) if self.skew_beyond_bound(skew) => Err(EngineError::ClockSkew {
                skew: format!(
                    "{:.1} s {} of",
                    skew.unsigned_abs() as f64 / 1000.0,
                    if skew > 0 { "ahead" } else { "behind" }
                ),
                bound: humantime::format_duration(self.inner.settings.max_clock_skew).to_string(),
            }),
            _ => Ok(()),
        }
    }

    fn lease_until(&self, now: DateTime<Utc>) -> Millis {
        Millis::from(now).plus(self.inner.settings.lease.as_millis() as i64)
    }

    /// The task-state record of a job: what a task (or Airflow) reads at `tether.job.<name>`.
    fn state_key_write<'a>(
        &self,
        job: impl Into<KeyedJob<'a>>,
        phase: Phase,
        handle: Option<&Handle>,
        state: JobState,
        now: DateTime<Utc>,
    ) -> StateKeyWrite {
        let job = job.into();
        let value = json!({
            "job_id": job.id,
            "provider": job.provider,
            "generation": job.generation,
            "idempotency_key": job.idempotency_key,
            "try_number": job.try_number,
            "phase": phase.as_str(),
            "handle": handle.map(Handle::value),
            "state": state.as_str(),
        });
        StateKeyWrite {
            key: state_key(job.name),
            json: value.to_string(),
            expires_at: self
                .inner
                .state
                .settings()
                .default_retention
                .expires_at(now)
                .map(Millis::from),
        }
    }

    /// Settles a job whose outcome is unknown (the provider forgot it after reporting it): a
    /// person says what became of it, and it is recorded with who and why.
    /// [`Resolution::Resubmit`] records it `lost`, so that the next try submits it anew.
    pub async fn resolve(
        &self,
        job_id: JobId,
        resolution: Resolution,
        actor: &str,
        reason: &str,
    ) -> Result<JobRecord, EngineError> {
        let state = resolution.state();
        let message = format!("settled by {actor} as {}: {reason}", resolution.as_str());
        let now = self.now();
        let key = |job: &JobRecord| {
            self.state_key_write(job, Phase::Terminal, job.handle.as_ref(), state, now)
        };
        let resolved = self
            .inner
            .jobs
            .resolve(
                job_id,
                state,
                &message,
                &key,
                (actor, reason),
                Millis::from(now),
            )
            .await?;
        match resolved {
            Some(job) => {
                tracing::warn!(
                    job_id = job_id.0,
                    resolution = resolution.as_str(),
                    actor,
                    reason,
                    "a job whose outcome was unknown was settled by hand"
                );
                self.notify_changed(job_id);
                Ok(job)
            }
            None => match self.inner.jobs.get(job_id).await? {
                None => Err(EngineError::JobNotFound(job_id)),
                Some(job) => Err(EngineError::OutcomeKnown {
                    job_id,
                    state: job.state,
                }),
            },
        }
    }

    /// Asks for an explicit cancel: records the request, then asks the provider at once. The
    /// supervisor polling the job retries the provider call if this one fails.
    pub async fn cancel(
        &self,
        job_id: JobId,
        reason: &str,
        actor: &str,
    ) -> Result<JobRecord, EngineError> {
        self.cancel_for_try(job_id, reason, actor, None).await
    }

    /// As [`Engine::cancel`], asked by try `by_try` of the job's task instance (an Airflow
    /// task's `on_kill`): refused with [`EngineError::CancelRefused`] once a later try owns
    /// the job (it reattached after a clear), so that a stopped try never cancels the run its
    /// successor carries on.
    pub async fn cancel_for_try(
        &self,
        job_id: JobId,
        reason: &str,
        actor: &str,
        by_try: Option<i64>,
    ) -> Result<JobRecord, EngineError> {
        let now = Millis::from(self.now());
        let job = match self
            .inner
            .jobs
            .request_cancel(job_id, reason, actor, now, by_try)
            .await?
        {
            CancelRequest::Recorded(job) => job,
            CancelRequest::Finished(job) => return Ok(job),
            CancelRequest::Missing => return Err(EngineError::JobNotFound(job_id)),
            CancelRequest::TakenOver(job) => {
                return Err(EngineError::CancelRefused {
                    job_id,
                    asked_by: by_try.unwrap_or_default(),
                    owner: job.owner_try(),
                })
            }
        };
        crate::crash::crash_point("after_cancel_recorded");
        if job.phase != Phase::Active || job.cancel_sent_at.is_some() {
            // Still submitting: once the handle is recorded, the supervisor polling the job
            // sees the request and sends the cancel. Or sent already: once is enough.
            return Ok(job);
        }
        if let Some(handle) = &job.handle {
            let provider = self.inner.providers.get(&job.provider)?;
            match provider.cancel(handle).await {
                Ok(()) => {
                    self.inner
                        .jobs
                        .mark_cancel_sent(job_id, actor, Millis::from(self.now()))
                        .await?
                }
                Err(e) => {
                    tracing::warn!(job_id = job_id.0, error = %e, "cancel not sent yet; the supervisor retries")
                }
            }
        }
        self.notify_changed(job_id);
        Ok(self.inner.jobs.get(job_id).await?.unwrap_or(job))
    }

    /// Records that try `try_number` took the finished job's result: a later try (Airflow's
    /// clear of a finished task) runs the job anew instead of reporting it. Refused with
    /// [`EngineError::NotFinished`] while the job runs.
    pub async fn consume(
        &self,
        job_id: JobId,
        try_number: i64,
        actor: &str,
    ) -> Result<JobRecord, EngineError> {
        if try_number < 1 {
            return Err(EngineError::Invalid(ValidationError::new(
                "try_number",
                format!("{try_number} is below 1 (the first try is 1)"),
            )));
        }
        let now = Millis::from(self.now());
        match self
            .inner
            .jobs
            .consume(job_id, try_number, actor, now)
            .await?
        {
            Some(job) => Ok(job),
            None => match self.inner.jobs.get(job_id).await? {
                Some(_) => Err(EngineError::NotFinished(job_id)),
                None => Err(EngineError::JobNotFound(job_id)),
            },
        }
    }
}

fn owner_id() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "host".into());
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// What a job's task-state key is made from: the same fields of a whole record or of a held
/// job.
struct KeyedJob<'a> {
    id: JobId,
    name: &'a str,
    provider: &'a str,
    generation: i64,
    idempotency_key: &'a str,
    try_number: i64,
}

impl<'a> From<&'a JobRecord> for KeyedJob<'a> {
    fn from(j: &'a JobRecord) -> Self {
        Self {
            id: j.id,
            name: &j.name,
            provider: &j.provider,
            generation: j.generation,
            idempotency_key: &j.idempotency_key,
            try_number: j.try_number,
        }
    }
}

impl<'a> From<&'a HeldJob> for KeyedJob<'a> {
    fn from(j: &'a HeldJob) -> Self {
        Self {
            id: j.id,
            name: &j.name,
            provider: &j.provider,
            generation: j.generation,
            idempotency_key: &j.idempotency_key,
            try_number: j.try_number,
        }
    }
}
