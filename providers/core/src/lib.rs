//! The provider trait every tether adapter implements, and the plumbing adapters share.
//!
//! - [`Provider`]: submit, status, cancel and find a remote job; optionally `status_many`, the
//!   coalesced polling of many jobs through list calls.
//! - [`status`]: the normalised job states ([`JobState`], [`RemoteStatus`]).
//! - [`edges`]: each kind's catalog of its service's documented hard edges ([`Edges`]).
//! - [`error`]: [`ProviderError`], classified transient / permanent / not found.
//! - [`events`]: what a provider's own events say of its jobs ([`events::Hint`]).
//! - [`handle`]: [`Handle`], a provider's handle on a remote job, as compact JSON text.
//! - [`http`]: the retrying HTTP client (5xx, 429, 408, Retry-After, jittered backoff); no
//!   adapter writes its own retry loop.
//! - [`ratelimit`]: the per-account token bucket that 429s slow down.
//! - [`problems`]: the one reader of every configuration table: every bad field named with its
//!   path, and one duration grammar (humantime's).
//! - [`paging`]: one pager for token-paged lists.
//! - [`jwt`]: the one RS256 JWT signer (Google service accounts, Snowflake key pairs).
//! - [`token`]: OAuth client-credentials tokens, cached and renewed, and the one resend after
//!   a 401.
//! - [`settings`]: settings every provider has (polling, rate limit, retries, timeouts), and
//!   the neutral [`settings::Table`] a provider's configuration reaches it in.
//! - [`registry`]: [`ProviderFactory`], what a provider crate exports to join tether (its
//!   kinds, its settings check, its adapters and simulators).
//! - [`secret`]: [`Secret`], a string that prints as `******`.
//! - `sim` (feature `sim`): the harness every provider's simulator is built on (faults,
//!   counters, the not-visible-yet and forgotten edges, the server).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod edges;
pub mod error;
pub mod events;
pub mod handle;
pub mod http;
pub mod jwt;
pub mod paging;
pub mod problems;
pub mod ratelimit;
pub mod registry;
pub mod secret;
pub mod settings;
#[cfg(feature = "sim")]
pub mod sim;
pub mod status;
pub mod token;

use std::fmt::Debug;

use async_trait::async_trait;

use serde_json::Value;

pub use edges::{Edge, Edges, Topic};
pub use error::{ErrorKind, ProviderError, Result};
pub use handle::Handle;
pub use http::{SendGate, Ungated};
pub use problems::{parse_duration, Problems};
pub use ratelimit::RateLimiter;
pub use registry::{ProviderFactory, ProviderSettings};
pub use secret::Secret;
pub use settings::{CommonSettings, OnForgotten, PollSettings};
pub use status::{JobState, RemoteStatus};

/// A job that a coalesced status call ([`Provider::status_many`]) is asked about.
#[derive(Debug, Clone, Copy)]
pub struct Tracked<'a> {
    /// Its handle.
    pub handle: &'a Handle,
    /// When tether recorded the intent to submit it, in ms since the Unix epoch: the remote
    /// job was created at or after this (give or take the two clocks' skew).
    pub created_ms: i64,
}

/// Where one part of a rolling sweep sits among the others (see [`Provider::sweep_part`]);
/// the default is a whole sweep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepPart {
    /// An earlier part covers the jobs created before this part's first one, so this part
    /// lists from its first job's creation on; else it lists from there less the clocks'
    /// skew, as a whole sweep does.
    pub after_earlier: bool,
    /// The next part's first job's creation time (ms since the Unix epoch): this part's
    /// list calls stop before it. `None`: the last part, listing to now.
    pub before_ms: Option<i64>,
}

/// What one coalesced status sweep learned.
#[derive(Debug, Clone, Default)]
pub struct Sweep {
    /// For each job asked about, in the same order: its status, if a list call reported it.
    pub statuses: Vec<Option<RemoteStatus>>,
    /// The provider calls the sweep made.
    pub calls: u64,
}

/// A remote job service: Databricks, EMR, ...
///
/// Implementations classify every failure ([`ProviderError::kind`]) so that the engine decides
/// from that alone: transient errors are retried, permanent ones reported, not-found means the
/// job is lost. A provider state the adapter does not know maps to [`JobState::Running`] with a
/// warning, never to success.
#[async_trait]
pub trait Provider: Send + Sync + Debug + 'static {
    /// The adapter's kind (`databricks`, ...).
    fn kind(&self) -> &'static str;

    /// Checks a job spec before anything is recorded or submitted.
    fn validate_spec(&self, spec: &Value) -> Result<(), ProviderError>;

    /// Submits a job. `key` (the idempotency key) is deterministic per task instance, job
    /// name and generation; providers that can deduplicate on it must. A provider that
    /// cannot sends its non-idempotent request through `gate` (see [`http::SendGate`]).
    async fn submit(&self, spec: &Value, key: &str, gate: &dyn SendGate) -> Result<Handle>;

    /// Whether submitting twice with the same key yields one job (so a submission whose
    /// outcome is unknown may simply be repeated).
    fn submit_is_idempotent(&self) -> bool;

    /// The job's current state.
    async fn status(&self, handle: &Handle) -> Result<RemoteStatus, ProviderError>;

    /// Whether a handle this provider gave (from a submit's answer, or from `find`) proves the
    /// remote job was made: a status read that then finds it gone (past `not_found_grace`)
    /// means it was deleted, and ends `outcome_unknown` (as a job seen and then forgotten),
    /// never `lost` and submitted again. Kubernetes: the create's answer is the stored object,
    /// with its uid. The default, false: a handle is the service's word that it accepted the
    /// job, and a job it never shows may not have been made (a wrong workspace).
    fn handle_proves_existence(&self) -> bool {
        false
    }

    /// Asks the provider to cancel the job. Only ever called on an explicit cancel.
    async fn cancel(&self, handle: &Handle) -> Result<(), ProviderError>;

    /// Finds the jobs submitted with the idempotency key `key` (for one whose handle was
    /// never recorded), oldest first. More than one is a duplicate submission, which the engine
    /// reports.
    ///
    /// `intent_ms` is when tether recorded the intent to submit (ms since the Unix epoch): a
    /// job made for the key was created at or after it, give or take the clocks' skew. Most
    /// providers recognise their job by the key and need not look before it; one whose jobs
    /// cannot carry the key (a Databricks pipeline update) recognises it by that time alone.
    async fn find(&self, key: &str, spec: &Value, intent_ms: i64) -> Result<Vec<Handle>>;

    /// Whether a job that failed is repaired in place when a later try asks for it again
    /// (its failed parts run again in the same remote job: Databricks' run repair, switched
    /// on with `on_retry = "repair"`), rather than submitted anew.
    fn repairs(&self) -> bool {
        false
    }

    /// Repairs the failed job `failed` (the handle of the generation that failed): its failed
    /// parts run again. The handle returned names the repaired job's new attempt. Like a
    /// submission that does not deduplicate, it is sent through `gate`.
    async fn repair(
        &self,
        failed: &Handle,
        _idempotency_key: &str,
        _gate: &dyn SendGate,
    ) -> Result<Handle, ProviderError> {
        Err(ProviderError::permanent(
            self.kind(),
            format!("{failed}: this provider does not repair jobs"),
        ))
    }

    /// Finds the repair of `failed` made since its intent (`intent_ms`, as for
    /// [`Provider::find`]), for a repair whose answer was lost: the handle it would have
    /// returned, if there is one.
    async fn find_repair(
        &self,
        _failed: &Handle,
        _intent_ms: i64,
    ) -> Result<Option<Handle>, ProviderError> {
        Ok(None)
    }

    /// Whether [`Provider::status_many`] can report many jobs in one call (and is switched on:
    /// `coalesce = true` in the provider's settings).
    fn coalesces(&self) -> bool {
        false
    }

    /// Asks for the state of many jobs through the provider's list calls (Databricks
    /// `runs/list`, EMR `ListSteps`, ...), a few calls for many jobs.
    ///
    /// The answer is a hint the engine checks: a job the sweep does not report (finished
    /// since, outside the pages fetched) is asked about singly with [`Provider::status`], and
    /// a terminal state from a list is always confirmed with [`Provider::status`] before it
    /// is recorded. An error means the sweep learned nothing usable. The default reports
    /// nothing, so every job is asked about singly.
    async fn status_many(&self, jobs: &[Tracked<'_>]) -> Result<Sweep, ProviderError> {
        Ok(Sweep {
            statuses: vec![None; jobs.len()],
            calls: 0,
        })
    }

    /// How many jobs one part of a *rolling* sweep covers, where this provider's list calls
    /// can be split by job at about no extra cost (Databricks lists `start_time` windows of
    /// a fixed number of jobs; Batch reads ids 100 a call). The engine then cuts a sweep into
    /// parts of this many jobs, oldest first, asks [`Provider::status_part`] about each in
    /// turn and settles each part's jobs as soon as it is back, rather than when the whole
    /// sweep is. `None` (the default): a sweep is one piece, as for services whose list
    /// calls read a whole group whichever of its jobs are asked about.
    fn sweep_part(&self) -> Option<usize> {
        None
    }

    /// [`Provider::status_many`] of one part of a rolling sweep: `jobs` sorted by
    /// `created_ms`, `part` where it sits among the other parts (so that list calls by
    /// creation time list each stretch of time once). The default asks
    /// [`Provider::status_many`].
    async fn status_part(
        &self,
        jobs: &[Tracked<'_>],
        _part: SweepPart,
    ) -> Result<Sweep, ProviderError> {
        self.status_many(jobs).await
    }

    /// The job's reference: the remote job's own id, as the service's events name it (a
    /// Batch job id, a Databricks run id, ...), matched against [`events::Hint::reference`]
    /// and by `POST /v1/events/poke`. Stored beside the handle. The default is the handle's
    /// whole JSON text, for a provider without events of its own.
    fn handle_ref(&self, handle: &Handle) -> String {
        handle.as_json().to_string()
    }

    /// The notifications this account's service sends to tether, if it is configured to
    /// (see [`events::Webhook`]).
    fn webhook(&self) -> Option<&dyn events::Webhook> {
        None
    }

    /// A link to the job in the provider's UI, if known without a call.
    fn job_url(&self, _handle: &Handle) -> Option<String> {
        None
    }

    /// The settings every provider has.
    fn settings(&self) -> &CommonSettings;

    /// This account's rate limiter, if the adapter has one.
    fn rate_limiter(&self) -> Option<&RateLimiter> {
        None
    }

    /// Shares this account's rate limit among `sharers` processes (this one included), each
    /// taking an equal part: the supervisors sharing a database call it with their number.
    fn share_rate_limit(&self, sharers: u32) {
        if self.rate_limiter().is_some_and(|l| l.share(sharers)) {
            tracing::info!(
                provider = self.kind(),
                sharers,
                "rate limit shared with the other supervisors"
            );
        }
    }

    /// How many calls have waited for this account's rate limiter (for the metrics).
    fn rate_limit_waits(&self) -> u64 {
        self.rate_limiter().map_or(0, RateLimiter::waits)
    }
}
