//! The boundary a provider crosses to join tether: one [`ProviderFactory`] per crate.
//!
//! A factory names the kinds it serves (`databricks`; `emr`, `emr-serverless`, `glue`), checks
//! a `[providers.NAME]` table of one of them (in the neutral [`Table`] form, every bad field
//! reported with its path), and turns the checked settings into an adapter. Where the crate
//! has a simulator (its `sim` feature), the factory starts it too, through [`SimFactory`].
//!
//! tether lists the factories in one place (`src/engine/registry.rs`, one line each); nothing
//! else in tether names a provider kind.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::settings::Table;
use crate::{CommonSettings, Handle, JobState, Provider, ProviderError};

/// Reads an environment variable (or, in tests, a stand-in for the environment).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// What [`ProviderFactory::check`] gives: the checked settings, or every problem found, each
/// naming its field.
pub type Checked = Result<Arc<dyn ProviderSettings>, Vec<String>>;

/// A provider crate's entry point.
pub trait ProviderFactory: Send + Sync + 'static {
    /// The kinds it builds, as `kind = "..."` names them.
    fn kinds(&self) -> &'static [&'static str];

    /// Checks a `[providers.NAME]` table of `kind` (one of [`ProviderFactory::kinds`]) with
    /// the environment's fallbacks, reporting every bad or missing field as
    /// `<prefix>.<field>: <why>` (`prefix` is `providers.NAME`). The table still holds `kind`
    /// if the file gave it.
    fn check(&self, kind: &str, prefix: &str, table: Table, env: Env<'_>) -> Checked;

    /// The edge catalog of `kind` (one of [`ProviderFactory::kinds`]): what its service
    /// documents about its hard edges, with the sources. Its figures are the defaults of an
    /// account's `not_found_grace` and `forgotten_after`.
    fn edges(&self, kind: &str) -> &'static crate::Edges;

    /// A provider to configure from the environment alone, when the file has no table of
    /// that name: its name and (empty, or partial) table. Databricks' tools set
    /// `DATABRICKS_HOST` and a token; tether then needs no `[providers.databricks]`.
    fn configured_by_env(&self, _env: Env<'_>) -> Option<(&'static str, Table)> {
        None
    }

    /// The kinds of event source it reads (`aws-sqs`), as `[events.NAME]` tables name them.
    fn event_kinds(&self) -> &'static [&'static str] {
        &[]
    }

    /// An event source of `kind` (one of [`ProviderFactory::event_kinds`]) from its
    /// `[events.NAME]` table (`prefix` is `events.NAME`; the table still holds `kind` and
    /// `accounts`, which tether reads itself), every bad or missing field reported as
    /// `<prefix>.<field>: <why>`.
    fn event_source(
        &self,
        kind: &str,
        prefix: &str,
        _table: Table,
        _env: Env<'_>,
    ) -> Result<Arc<dyn crate::events::EventSource>, Vec<String>> {
        Err(vec![format!(
            "{prefix}.kind: \"{kind}\" is not an event source kind"
        )])
    }

    /// Its simulators, if the crate was built with them (its `sim` feature).
    fn simulators(&self) -> Option<&dyn SimFactory> {
        None
    }
}

/// One provider account's checked settings.
pub trait ProviderSettings: Debug + Send + Sync {
    /// The kind.
    fn kind(&self) -> &'static str;

    /// The settings every provider has.
    fn common(&self) -> &CommonSettings;

    /// An adapter for the account.
    fn adapter(&self) -> Result<Arc<dyn Provider>, ProviderError>;
}

/// How a simulator is started.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// The port on 127.0.0.1 (0: any free one; `None`: the kind's usual one).
    pub port: Option<u16>,
    /// How long a job stays pending.
    pub pending: Duration,
    /// How long a job runs.
    pub running: Duration,
    /// How jobs end.
    pub outcome: SimOutcome,
    /// How long a new job answers "not found" and is left out of lists (the catalog's
    /// consistency-after-create edge, switched on). Zero: readable at once.
    pub invisible_for: Duration,
    /// How long a job is kept once it ended, then forgotten (the catalog's retention edge,
    /// switched on). `None`: kept for ever.
    pub forget_after: Option<Duration>,
    /// Switches of one provider's simulator (`token`; `access_key_id`, `secret_access_key`).
    /// A simulator refuses one it does not take.
    pub switches: Table,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            port: Some(0),
            pending: Duration::from_secs(2),
            running: Duration::from_secs(10),
            outcome: SimOutcome::Succeed,
            invisible_for: Duration::ZERO,
            forget_after: None,
            switches: Table::new(),
        }
    }
}

/// How a simulator's jobs end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimOutcome {
    /// They succeed.
    Succeed,
    /// They fail.
    Fail,
    /// They end in this provider state (Databricks' `result_state`: `TIMEDOUT`, ...).
    Named(String),
}

/// A fault a simulator answers requests with, for its next `times` requests (made within
/// `lasting`, when given).
#[derive(Debug, Clone, PartialEq)]
pub struct SimFault {
    /// What the requests get.
    pub kind: SimFaultKind,
    /// How many requests it hits.
    pub times: u32,
    /// Which requests.
    pub calls: SimCalls,
    /// How long it lasts, used up or not (`None`: until used up). A real outage lasts a
    /// while, however many requests meet it.
    pub lasting: Option<Duration>,
}

/// Which requests a [`SimFault`] hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimCalls {
    /// Every request.
    All,
    /// Submissions only.
    Submits,
    /// Cancels only.
    Cancels,
}

/// How a simulated job stands, as the simulator itself knows it (the truth an adapter's
/// reading is judged against).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimJobState {
    /// Not finished.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished unsuccessfully.
    Failed,
    /// Cancelled.
    Cancelled,
}

/// What a faulty answer is.
#[derive(Debug, Clone, PartialEq)]
pub enum SimFaultKind {
    /// The provider's own throttling answer, with a `Retry-After` if given.
    Throttle(Option<Duration>),
    /// 503, with a `Retry-After` if given.
    Unavailable(Option<Duration>),
    /// 500, without processing the request.
    ServerError,
    /// The request is answered this late.
    Delay(Duration),
    /// The request is processed (a submission creates its job), then answered 500: the
    /// answer is lost.
    FailAfterProcessing,
    /// The status line is sent, then the connection cut before the body (nothing processed).
    Drop,
}

/// What a simulator has seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimCounts {
    /// Requests of any kind.
    pub requests: u64,
    /// Jobs created.
    pub submissions: u64,
    /// Cancels accepted.
    pub cancels: u64,
}

/// Starts a provider crate's simulators.
#[async_trait]
pub trait SimFactory: Send + Sync {
    /// The port a kind's simulator listens on when none is given.
    fn default_port(&self, kind: &str) -> u16;

    /// Every state of the provider's own API model for `kind` (its SDK's enum), written as
    /// [`RunningSim::set_state`] takes it, with the state tether must read it as: what the
    /// conformance suite holds the adapter to, against the simulator and against any other
    /// implementation of the API.
    fn documented_states(&self, kind: &str) -> Vec<(String, JobState)>;

    /// A job spec of `kind` its simulator runs, named after `name` (the conformance suite,
    /// the crash tests and the soak submit it).
    fn sample_spec(&self, kind: &str, name: &str) -> serde_json::Value;

    /// The APIs a kind stands for whose simulators differ (`http`: one per example
    /// description, `livy`, `dbt-cloud`), the first the default; empty for a kind that is one
    /// API. The switch `api` picks one when a simulator is started, and the conformance suite
    /// runs against each.
    fn apis(&self, _kind: &str) -> &'static [&'static str] {
        &[]
    }

    /// Starts a simulator of `kind` on 127.0.0.1. A bad switch is an
    /// [`std::io::ErrorKind::InvalidInput`] error naming it.
    async fn start(&self, kind: &str, options: SimOptions) -> std::io::Result<Box<dyn RunningSim>>;
}

/// A simulator serving on a loopback port until dropped.
pub trait RunningSim: Send + Sync {
    /// Its base URL.
    fn url(&self) -> String;

    /// What `tether sim` prints: where it listens and how to point tether at it.
    fn banner(&self) -> Vec<String>;

    /// The keys of a `[providers.NAME]` table of `kind` that point tether at it.
    fn settings(&self, kind: &str) -> Table;

    /// A job spec its API runs, named after `name`, where it is not the kind's
    /// ([`SimFactory::sample_spec`]): a simulator of one of the kind's [`SimFactory::apis`].
    fn sample_spec(&self, _name: &str) -> Option<serde_json::Value> {
        None
    }

    /// Its API's documented states, where they are not the kind's
    /// ([`SimFactory::documented_states`]).
    fn documented_states(&self) -> Option<Vec<(String, JobState)>> {
        None
    }

    /// Environment variables an adapter needs besides (AWS's key pair).
    fn env(&self) -> Vec<(String, String)>;

    /// Queues a fault for the next requests.
    fn inject(&self, fault: SimFault);

    /// Drops every queued fault.
    fn clear_faults(&self);

    /// How many jobs were created with each idempotency key (more than one for a key is a
    /// duplicate submission).
    fn jobs_by_key(&self) -> std::collections::BTreeMap<String, u64>;

    /// How many jobs were created with the idempotency key `key`.
    fn jobs_for_key(&self, key: &str) -> u64 {
        self.jobs_by_key().get(key).copied().unwrap_or(0)
    }

    /// How the job `handle` names stands now (`None`: the simulator has no such job).
    fn job_state(&self, handle: &Handle) -> Option<SimJobState>;

    /// Makes the job report `raw` from now on (one of [`SimFactory::documented_states`], or
    /// any text: a state the adapter does not know).
    /// False: no such job.
    fn set_state(&self, handle: &Handle, raw: &str) -> bool;

    /// Forgets the job, as if it had aged out of the provider. False: no such job.
    fn forget(&self, handle: &Handle) -> bool;

    /// Leaves the job out of list calls from now on (a coalesced sweep misses it). False: no
    /// such job.
    fn hide_from_lists(&self, handle: &Handle) -> bool;

    /// Makes list calls report every job they list as finished successfully (a list that
    /// lies), or stop.
    fn lie_in_lists(&self, on: bool);

    /// The `[providers.NAME]` keys (TOML lines) that make every status read of `kind` a call
    /// of its own, where its adapter may gather single reads into one read of many ids, which
    /// [`RunningSim::lie_in_lists`] lies to as it lies to a sweep's (AWS Batch and ECS, whose
    /// real service answers such a read as it answers each id alone).
    fn single_reads(&self, _kind: &str) -> String {
        String::new()
    }

    /// What it has seen.
    fn counts(&self) -> SimCounts;
}
