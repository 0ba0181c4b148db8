//! tether's Databricks adapters, one per kind, on one workspace client:
//!
//! - `databricks` (here in `lib.rs`): runs submitted through the Jobs API (`runs/submit`,
//!   `run-now`), polled with `runs/get`, reconciled with `runs/list`, cancelled with
//!   `runs/cancel`;
//! - `databricks-pipeline` (`pipelines.rs`): pipeline (Delta Live Tables) updates;
//! - `databricks-sql` (`statements.rs`): SQL statements on a SQL warehouse.
//!
//! The modules:
//! - `factory.rs`: [`FACTORY`], what tether's registry lists: the kinds, the settings check,
//!   the adapters and the simulator.
//! - `config.rs`: host and credentials (config or `DATABRICKS_*` variables).
//! - `auth.rs`: personal access tokens and OAuth machine-to-machine tokens.
//! - `client.rs`: the workspace client, Databricks' error shapes, the Jobs API calls.
//! - `state.rs`: how run, update and statement states map to tether's.
//! - `spec.rs`: what the pipeline and SQL kinds check alike in a job spec.
//! - `notifications.rs`: job notifications (issue #35): the `webhook_notifications` tether
//!   adds to a run when the account names a notification destination, and the reading of
//!   what the workspace then sends ([`notifications::DatabricksWebhook`]).
//! - `sim/` (feature `sim`, off by default): a Databricks simulator speaking the same APIs,
//!   for tests and for trying tether without a workspace (`tether sim databricks`).
//!
//! A `databricks` job spec is the body of `runs/submit` (a one-time run: `tasks`, `run_name`,
//! ...) or of `run-now` (an existing job: `job_id`, `job_parameters`, ...). tether adds the
//! `idempotency_token`, so Databricks itself deduplicates a repeated submission, and tags
//! one-time runs' names with the key so that `find` can recognise them.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod client;
pub mod config;
pub mod edges;
pub mod factory;
pub mod notifications;
pub mod pipelines;
#[cfg(feature = "sim")]
pub mod sim;
mod spec;
pub mod state;
pub mod statements;

use std::collections::HashMap;

use async_trait::async_trait;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde_json::{json, Value};
use tether_provider::paging::{walk, Page};
use tether_provider::{
    CommonSettings, Handle, Provider, ProviderError, RemoteStatus, Result, SendGate, Sweep,
    SweepPart, Tracked,
};

pub use config::{Auth, DatabricksConfig, Notifications, OnRetry};
pub use factory::FACTORY;
pub use pipelines::DatabricksPipeline;
pub use statements::DatabricksSql;

/// The provider kind, as in config and errors.
pub const PROVIDER: &str = "databricks";
/// Databricks accepts idempotency tokens of at most this many characters.
pub const MAX_IDEMPOTENCY_TOKEN: usize = 64;

/// Jobs per `start_time` window of a coalesced sweep: ten full pages of `runs/list` (24 runs
/// a page) when the workspace's active runs are mostly tether's, so that windows can be
/// fetched in parallel.
const SWEEP_WINDOW_JOBS: usize = client::LIST_LIMIT * 10;
/// Windows of a sweep fetched at once (the account's rate limiter paces them).
const SWEEP_PARALLEL: usize = 8;
/// Jobs per part of a rolling sweep: the windows fetched at once.
const SWEEP_PART_JOBS: usize = SWEEP_WINDOW_JOBS * SWEEP_PARALLEL;
/// How far the workspace's clock may be from tether's: how much earlier than tether's record
/// a run's `start_time` may be, and how far each kind's `find` looks either side of its window.
pub(crate) const CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

/// Now, in ms since the Unix epoch (by tether's clock).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The Databricks adapter.
#[derive(Debug)]
pub struct Databricks {
    client: client::Client,
    config: DatabricksConfig,
    /// The account's job notifications, when it names a notification destination.
    webhook: Option<notifications::DatabricksWebhook>,
}

impl Databricks {
    /// An adapter for the configured workspace.
    pub fn new(config: DatabricksConfig) -> Result<Self, ProviderError> {
        let client = client::Client::for_config(&config)?;
        let webhook = config
            .notifications
            .as_ref()
            .map(|n| notifications::DatabricksWebhook::new(n.secret.clone()));
        Ok(Self {
            client,
            config,
            webhook,
        })
    }
}

impl Databricks {
    /// Every active run started within `[from, to]`, page after page; and the calls made.
    async fn active_runs(
        &self,
        from: i64,
        to: Option<i64>,
    ) -> Result<(Vec<client::Run>, u64), ProviderError> {
        let mut runs = Vec::new();
        let fetch = |token: Option<String>| async move {
            let page = self
                .client
                .list_active_runs(from, to, token.as_deref())
                .await?;
            Ok(runs_page(page))
        };
        let walked = walk(u64::MAX, fetch, |run| {
            runs.push(run);
            true
        })
        .await?;
        Ok((runs, walked.calls))
    }
}

/// The `start_time` windows (from, to; both inclusive) of a sweep part over jobs created at
/// `starts`: contiguous, each opening at every [`SWEEP_WINDOW_JOBS`]th job's creation; the
/// first opens the clocks' skew earlier unless an earlier part covers that time, the last
/// closes before the next part's first job (or stays open).
fn windows(mut starts: Vec<i64>, part: SweepPart) -> Vec<(i64, Option<i64>)> {
    starts.sort_unstable();
    let mut bounds: Vec<i64> = starts.iter().step_by(SWEEP_WINDOW_JOBS).copied().collect();
    if !part.after_earlier {
        bounds[0] -= CLOCK_SKEW_MS;
    }
    bounds.dedup();
    bounds
        .iter()
        .enumerate()
        .map(|(k, &from)| {
            let to = match bounds.get(k + 1) {
                Some(next) => Some(next - 1),
                None => part.before_ms.map(|b| (b - 1).max(from)),
            };
            (from, to)
        })
        .collect()
}

/// A page of `runs/list`: its runs, and the next page's token while `has_more` says so.
fn runs_page(page: client::RunsPage) -> Page<client::Run> {
    Page::new(page.runs, page.next_page_token.filter(|_| page.has_more))
}

fn run_id(handle: &Handle) -> Result<i64, ProviderError> {
    handle.get_i64("run_id").ok_or_else(|| {
        ProviderError::permanent(PROVIDER, format!("handle {handle} has no numeric run_id"))
    })
}

/// The run name tether gives a one-time run: the spec's name tagged with the key.
pub fn tagged_run_name(spec: &Value, key: &str) -> String {
    match spec.get("run_name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => format!("{name} [{key}]"),
        _ => key.to_string(),
    }
}

#[async_trait]
impl Provider for Databricks {
    fn kind(&self) -> &'static str {
        PROVIDER
    }

    fn validate_spec(&self, spec: &Value) -> Result<(), ProviderError> {
        let Some(obj) = spec.as_object() else {
            return Err(ProviderError::invalid_spec(
                PROVIDER,
                "the job spec must be a JSON object (a runs/submit or run-now body)",
            ));
        };
        notifications::check_spec(spec).map_err(|e| ProviderError::invalid_spec(PROVIDER, e))?;
        if obj.contains_key("idempotency_token") {
            return Err(ProviderError::invalid_spec(
                PROVIDER,
                "the job spec must not set idempotency_token: tether sets it",
            ));
        }
        match obj.get("job_id") {
            Some(id) if !id.is_i64() => Err(ProviderError::invalid_spec(
                PROVIDER,
                format!("job_id must be a number, not {id}"),
            )),
            Some(_) => Ok(()),
            None if !obj.get("tasks").is_some_and(Value::is_array) => {
                Err(ProviderError::invalid_spec(
                    PROVIDER,
                    "the job spec needs either job_id (run an existing job) or a tasks array (a one-time run)",
                ))
            }
            None => Ok(()),
        }
    }

    /// `idempotency_token` makes the submit idempotent: it may be repeated without a gate.
    /// With a notification destination, a one-time run also names it in its
    /// `webhook_notifications` ([`notifications::add_destination`]); `run-now` takes none (a
    /// job's runs notify as the job's settings say).
    async fn submit(&self, spec: &Value, key: &str, _gate: &dyn SendGate) -> Result<Handle> {
        self.validate_spec(spec)?;
        if key.len() > MAX_IDEMPOTENCY_TOKEN {
            return Err(ProviderError::invalid_spec(
                PROVIDER,
                format!("idempotency key is longer than {MAX_IDEMPOTENCY_TOKEN} characters"),
            ));
        }
        let mut body = spec.clone();
        let obj = body.as_object_mut().expect("validated above");
        if !obj.contains_key("job_id") {
            obj.insert("run_name".into(), json!(tagged_run_name(spec, key)));
            if let Some(n) = &self.config.notifications {
                let full = notifications::add_destination(obj, &n.destination);
                if !full.is_empty() {
                    tracing::warn!(
                        provider = PROVIDER,
                        key,
                        events = ?full,
                        "the spec names {} destinations for these events already: tether's \
                         is left out of them, and learns of them by polling",
                        notifications::MAX_DESTINATIONS
                    );
                }
            }
        }
        obj.insert("idempotency_token".into(), json!(key));
        let run_id = self.client.submit(&body).await?;
        Ok(Handle::new(json!({ "run_id": run_id })))
    }

    fn submit_is_idempotent(&self) -> bool {
        true
    }

    /// `runs/get`; for a repair's handle (`repair_id`), with the run's `repair_history`, which
    /// the repair's state is read from.
    async fn status(&self, handle: &Handle) -> Result<RemoteStatus, ProviderError> {
        let id = run_id(handle)?;
        if let Some(repair_id) = handle.get_i64("repair_id") {
            let run = self.client.get_run_with_history(id).await?;
            return Ok(state::repair_status(&run, repair_id));
        }
        let run = self.client.get_run(id).await?;
        Ok(state::run_status(&run))
    }

    fn repairs(&self) -> bool {
        self.config.on_retry == OnRetry::Repair
    }

    /// `runs/repair` of the failed run with `rerun_all_failed_tasks`, after the run's latest
    /// repair (read from its `repair_history`): the handle names the run and the repair.
    async fn repair(
        &self,
        failed: &Handle,
        _idempotency_key: &str,
        gate: &dyn SendGate,
    ) -> Result<Handle, ProviderError> {
        let id = run_id(failed)?;
        let run = self.client.get_run_with_history(id).await?;
        let latest = run
            .repair_history
            .iter()
            .filter(|i| i.kind.as_deref() == Some("REPAIR"))
            .filter_map(|i| i.id)
            .next_back();
        let repair_id = self.client.repair(id, latest, gate).await?;
        Ok(Handle::new(json!({ "run_id": id, "repair_id": repair_id })))
    }

    /// The first repair in the run's `repair_history` after the attempt `failed` names (the
    /// original run, or a repair): a repair has no idempotency token, but repairs of a run
    /// follow one another, so the one after the failure is the one asked for.
    async fn find_repair(
        &self,
        failed: &Handle,
        _intent_ms: i64,
    ) -> Result<Option<Handle>, ProviderError> {
        let id = run_id(failed)?;
        let run = self.client.get_run_with_history(id).await?;
        let after = match failed.get_i64("repair_id") {
            Some(r) => run.repair_history.iter().position(|i| i.id == Some(r)),
            None => run
                .repair_history
                .iter()
                .position(|i| i.kind.as_deref() != Some("REPAIR")),
        };
        let Some(after) = after else {
            return Ok(None);
        };
        Ok(run.repair_history[after + 1..]
            .iter()
            .find(|i| i.kind.as_deref() == Some("REPAIR"))
            .and_then(|i| i.id)
            .map(|repair_id| Handle::new(json!({ "run_id": id, "repair_id": repair_id }))))
    }

    async fn cancel(&self, handle: &Handle) -> Result<(), ProviderError> {
        self.client.cancel(run_id(handle)?).await
    }

    /// Pages through `runs/list` (newest first) for one-time runs named with the key.
    async fn find(&self, key: &str, spec: &Value, _intent_ms: i64) -> Result<Vec<Handle>> {
        // Runs of an existing job carry the job's name, not ours: for those the engine relies
        // on resubmitting with the same idempotency token, which Databricks deduplicates.
        if spec.get("job_id").is_some() {
            return Ok(Vec::new());
        }
        let wanted = tagged_run_name(spec, key);
        let mut found = Vec::new();
        let fetch = |token: Option<String>| async move {
            Ok(runs_page(self.client.list_runs(token.as_deref()).await?))
        };
        walk(u64::from(self.config.find_max_pages), fetch, |run| {
            if run.run_name.as_deref() == Some(wanted.as_str()) {
                found.push(Handle::new(json!({ "run_id": run.run_id })));
            }
            true
        })
        .await?;
        found.reverse();
        Ok(found)
    }

    fn coalesces(&self) -> bool {
        self.config.common.coalesce
    }

    async fn status_many(&self, jobs: &[Tracked<'_>]) -> Result<Sweep, ProviderError> {
        self.status_part(jobs, SweepPart::default()).await
    }

    /// Parts of [`SWEEP_PART_JOBS`]: [`SWEEP_PARALLEL`] windows, listed at once.
    fn sweep_part(&self) -> Option<usize> {
        Some(SWEEP_PART_JOBS)
    }

    /// `runs/list?active_only=true` over contiguous `start_time` windows from the oldest job's
    /// creation (less the clocks' skew, unless an earlier part listed that time) to the next
    /// part's first job (or now), each holding about [`SWEEP_WINDOW_JOBS`] of the jobs asked
    /// about, fetched in parallel. Finished runs are not listed: those jobs fall back to
    /// `runs/get`, which also confirms every terminal state. A run that started after the
    /// next part's first job was created is listed by that part's windows, not matched here,
    /// and so asked about singly.
    async fn status_part(
        &self,
        jobs: &[Tracked<'_>],
        part: SweepPart,
    ) -> Result<Sweep, ProviderError> {
        let mut statuses = vec![None; jobs.len()];
        let mut wanted = HashMap::with_capacity(jobs.len());
        let mut starts = Vec::with_capacity(jobs.len());
        for (i, job) in jobs.iter().enumerate() {
            if let Ok(id) = run_id(job.handle) {
                wanted.insert(id, i);
                starts.push(job.created_ms);
            }
        }
        if starts.is_empty() {
            return Ok(Sweep { statuses, calls: 0 });
        }
        let windows = windows(starts, part);
        let fetched: Vec<(Vec<client::Run>, u64)> = stream::iter(windows)
            .map(|(from, to)| self.active_runs(from, to))
            .buffer_unordered(SWEEP_PARALLEL)
            .try_collect()
            .await?;
        let mut calls = 0;
        for (runs, n) in fetched {
            calls += n;
            for run in runs {
                if let Some(&i) = wanted.get(&run.run_id) {
                    statuses[i] = Some(state::run_status(&run));
                }
            }
        }
        Ok(Sweep { statuses, calls })
    }

    /// The run id, in decimal: what the workspace's job notifications name (`run.run_id`). A
    /// repair's handle gives its run's id, as the repair's notifications name the run.
    fn handle_ref(&self, handle: &Handle) -> String {
        match handle.get_i64("run_id") {
            Some(id) => id.to_string(),
            None => handle.as_json().to_string(),
        }
    }

    fn webhook(&self) -> Option<&dyn tether_provider::events::Webhook> {
        self.webhook
            .as_ref()
            .map(|w| w as &dyn tether_provider::events::Webhook)
    }

    fn settings(&self) -> &CommonSettings {
        &self.config.common
    }

    fn rate_limiter(&self) -> Option<&tether_provider::RateLimiter> {
        Some(self.client.http().limiter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A whole sweep lists from its oldest job less the skew to now; parts of a rolling
    /// sweep list each stretch of time once: the first from the skew on, each to the next
    /// part's first job.
    #[test]
    fn sweep_windows_tile_time_across_parts() {
        let starts = |from: i64, n: usize| (0..n as i64).map(|k| from + k).collect::<Vec<_>>();
        let whole = windows(starts(1_000_000, 500), SweepPart::default());
        assert_eq!(
            whole,
            vec![
                (1_000_000 - CLOCK_SKEW_MS, Some(1_000_239)),
                (1_000_240, Some(1_000_479)),
                (1_000_480, None)
            ]
        );
        let first = windows(
            starts(1_000_000, 480),
            SweepPart {
                after_earlier: false,
                before_ms: Some(1_000_480),
            },
        );
        assert_eq!(first.last(), Some(&(1_000_240, Some(1_000_479))));
        let second = windows(
            starts(1_000_480, 20),
            SweepPart {
                after_earlier: true,
                before_ms: None,
            },
        );
        assert_eq!(second, vec![(1_000_480, None)]);
        // Jobs created in the same ms as the next part's first: the window holds that ms.
        let same = windows(
            vec![5_000; 3],
            SweepPart {
                after_earlier: true,
                before_ms: Some(5_000),
            },
        );
        assert_eq!(same, vec![(5_000, Some(5_000))]);
    }

    #[test]
    fn handle_ref_is_the_run_id() {
        let adapter = Databricks::new(DatabricksConfig::for_tests(PROVIDER)).unwrap();
        let run = Handle::new(json!({"run_id": 1042}));
        let repaired = Handle::new(json!({"repair_id": 500_001, "run_id": 1042}));
        assert_eq!(adapter.handle_ref(&run), "1042");
        assert_eq!(adapter.handle_ref(&repaired), "1042");
        let odd = Handle::new(json!({"other": 1}));
        assert_eq!(adapter.handle_ref(&odd), odd.as_json());
        assert!(adapter.webhook().is_none(), "no destination, no webhook");
    }

    #[test]
    fn validate_spec_checks_webhook_notifications() {
        let adapter = Databricks::new(DatabricksConfig::for_tests(PROVIDER)).unwrap();
        let err = adapter
            .validate_spec(&json!({"tasks": [], "webhook_notifications": {"on_start": "x"}}))
            .unwrap_err();
        assert!(
            err.message.contains("webhook_notifications.on_start"),
            "{err}"
        );
    }
}
