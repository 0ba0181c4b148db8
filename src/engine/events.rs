//! Provider events: a job's end heard from its service, not at its next poll.
//!
//! An event names a remote job by its reference ([`tether_provider::events::Hint`]; the
//! remote job's own id, stored beside the handle as `handle_ref`). Whoever hears it (an event
//! source's reader, a webhook, `POST /v1/events/poke`) marks the active jobs of the named
//! accounts with that reference due now ([`Engine::poke`]): a database write that the
//! database announces to every process ([`crate::engine::changes`]), so the supervisor that
//! holds the job, in this process or another, polls it at once. An event is only a hint: the
//! poll's status call is what is recorded, so a duplicated, reordered or forged event costs
//! one call and changes nothing wrongly; a lost one costs latency, since polling goes on.
//!
//! [`read_source`] is the loop that reads one `[events.NAME]` source (an SQS queue, ...):
//! receive, poke, acknowledge. An event is acknowledged once it is handled, matched or not;
//! one whose poke failed (the database was unreachable) is left for the queue to deliver
//! again.

use std::sync::Arc;
use std::time::Duration;

use tether_provider::events::{Delivery, EventSource, Hint, Reading};
use tether_provider::Handle;
use tokio_util::sync::CancellationToken;

use super::{Engine, EngineError};
use crate::db::pokes::Pokes;
use crate::model::{JobId, Millis};

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// These jobs were marked due now.
    Matched(Vec<JobId>),
    /// It names these active jobs, whose records already say the state it reports: they
    /// are left as they are (no status call for what tether knows).
    Known(Vec<JobId>),
    /// It reports progress (a state that is not an end, [`Hint::progress`]) of these active
    /// jobs: they are left to polling, since only an end is worth a status call at once.
    Progress(Vec<JobId>),
    /// It names no active job of the accounts it may be about.
    Unmatched,
    /// It is not about a job of tether's kinds (the text says what it was).
    Foreign(String),
    /// It could not be read (the text says why).
    Unreadable(String),
}

impl Outcome {
    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Matched(_) => "matched",
            Outcome::Known(_) => "known",
            Outcome::Progress(_) => "progress",
            Outcome::Unmatched => "unmatched",
            Outcome::Foreign(_) => "foreign",
            Outcome::Unreadable(_) => "unreadable",
        }
    }
}

impl Engine {
    /// The reference of `handle` of a job of account `provider` (see
    /// [`tether_provider::Provider::handle_ref`]); the handle's JSON text for an account
    /// no longer configured.
    pub fn handle_ref(&self, provider: &str, handle: &Handle) -> String {
        match self.providers().get(provider) {
            Ok(p) => p.handle_ref(handle),
            Err(_) => handle.as_json().to_string(),
        }
    }

    /// The pokes of this engine's database.
    pub(super) fn pokes(&self) -> Pokes {
        Pokes::new(self.jobs().db().clone())
    }

    /// Marks the active jobs with reference `reference` of the accounts `accounts` due now.
    pub async fn poke(
        &self,
        accounts: &[String],
        reference: &str,
    ) -> Result<Vec<JobId>, EngineError> {
        Ok(self.poke_unless_known(accounts, reference, None).await?.0)
    }

    /// As [`Engine::poke`], for an event reporting the raw state `state` (if it does): jobs
    /// whose records say that state already are not poked. Returns the jobs poked, and those
    /// left.
    async fn poke_unless_known(
        &self,
        accounts: &[String],
        reference: &str,
        state: Option<&str>,
    ) -> Result<(Vec<JobId>, Vec<JobId>), EngineError> {
        let pokes = self.pokes();
        let now = Millis::from(self.now());
        let (mut poked, mut known) = (Vec::new(), Vec::new());
        for account in accounts {
            match state {
                Some(state) => {
                    let (p, k) = pokes
                        .poke_unless_known(account, reference, state, now)
                        .await?;
                    poked.extend(p);
                    known.extend(k);
                }
                None => poked.extend(pokes.poke(account, reference, now).await?),
            }
        }
        Ok((poked, known))
    }

    /// Handles what one event says for the accounts `accounts` (those of its kind only; the
    /// source `source` names it in the metrics), and counts it.
    pub async fn handle_event(
        &self,
        source: &str,
        accounts: &[String],
        reading: Result<Reading, String>,
    ) -> Result<Outcome, EngineError> {
        let outcome = match reading {
            Err(why) => Outcome::Unreadable(why),
            Ok(Reading::Foreign(what)) => Outcome::Foreign(what),
            Ok(Reading::Hint(hint)) => self.handle_hint(source, accounts, &hint).await?,
        };
        crate::metrics::EVENTS
            .with_label_values(&[source, outcome.label()])
            .inc();
        Ok(outcome)
    }

    async fn handle_hint(
        &self,
        source: &str,
        accounts: &[String],
        hint: &Hint,
    ) -> Result<Outcome, EngineError> {
        let of_kind: Vec<String> = accounts
            .iter()
            .filter(|a| self.providers().get(a).is_ok_and(|p| p.kind() == hint.kind))
            .cloned()
            .collect();
        if of_kind.is_empty() {
            return Ok(Outcome::Foreign(format!(
                "an event of kind {} (none of the source's accounts is of that kind)",
                hint.kind
            )));
        }
        // Progress (queued, started, running) needs no poll at once: the end comes by its own
        // event, or by polling if that event is lost. Polling reads the progress meanwhile.
        if hint.progress {
            let pokes = self.pokes();
            let mut jobs = Vec::new();
            for account in &of_kind {
                jobs.extend(pokes.active(account, &hint.reference, None).await?);
            }
            if jobs.is_empty() {
                return Ok(Outcome::Unmatched);
            }
            tracing::debug!(source, reference = %hint.reference, jobs = ?jobs, state = ?hint.state, "event: progress, left to polling");
            return Ok(Outcome::Progress(jobs));
        }
        // An event that says what the record says needs no poll (a new job's first event,
        // most often, after its first poll): a later state still comes by its own event, or
        // by polling if that event is lost.
        let (poked, known) = self
            .poke_unless_known(&of_kind, &hint.reference, hint.state.as_deref())
            .await?;
        if poked.is_empty() {
            if !known.is_empty() {
                tracing::debug!(source, reference = %hint.reference, jobs = ?known, state = ?hint.state, "event: the jobs' records say so already");
                return Ok(Outcome::Known(known));
            }
            return Ok(Outcome::Unmatched);
        }
        let lag_ms = hint
            .at_ms
            .map(|at| (Millis::from(self.now()).0 - at).max(0));
        if let Some(lag) = lag_ms {
            crate::metrics::EVENT_LAG
                .with_label_values(&[source])
                .observe(lag as f64 / 1000.0);
        }
        tracing::debug!(source, reference = %hint.reference, jobs = ?poked, state = ?hint.state, lag_ms, "event: jobs due now");
        Ok(Outcome::Matched(poked))
    }

    /// Writes the reference of active jobs recorded before references were (an upgrade),
    /// so that events find them too. Returns how many it wrote.
    pub async fn backfill_handle_refs(&self) -> Result<usize, EngineError> {
        let pokes = self.pokes();
        let mut written = 0;
        loop {
            let batch = pokes.unreferenced(500).await?;
            if batch.is_empty() {
                return Ok(written);
            }
            for job in &batch {
                let handle = Handle::new(
                    serde_json::from_str(&job.handle).unwrap_or(serde_json::Value::Null),
                );
                let reference = self.handle_ref(&job.provider, &handle);
                pokes.set_ref(job.job_id, &reference).await?;
                written += 1;
            }
        }
    }
}

/// A configured event source: its name, what it reads from, and the accounts its events
/// may be about.
#[derive(Debug, Clone)]
pub struct Source {
    /// `[events.NAME]`'s name.
    pub name: String,
    /// The queue.
    pub source: Arc<dyn EventSource>,
    /// The provider accounts its events are matched to.
    pub accounts: Vec<String>,
    /// Whether an event that cannot be read is acknowledged (deleted) or left for the
    /// queue's redrive policy.
    pub delete_unreadable: bool,
}

impl Source {
    /// The source `[events.NAME]` configures.
    pub fn of(name: &str, config: &crate::config::EventsConfig) -> Self {
        Self {
            name: name.to_string(),
            source: config.source.clone(),
            accounts: config.accounts.clone(),
            delete_unreadable: config.delete_unreadable,
        }
    }
}

/// Starts a reader ([`read_source`]) of each configured source until `shutdown`.
pub fn spawn_readers(
    engine: &Engine,
    sources: &std::collections::BTreeMap<String, crate::config::EventsConfig>,
    shutdown: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    sources
        .iter()
        .map(|(name, config)| {
            tokio::spawn(read_source(
                engine.clone(),
                Source::of(name, config),
                shutdown.clone(),
            ))
        })
        .collect()
}

/// Reads `source` until `shutdown`: receives, hands each event to [`Engine::handle_event`],
/// acknowledges what was handled. Failures are logged and retried with backoff; they never
/// end the loop.
pub async fn read_source(engine: Engine, source: Source, shutdown: CancellationToken) {
    let mut failures = 0u32;
    tracing::info!(source = %source.name, accounts = ?source.accounts, "reading provider events");
    while !shutdown.is_cancelled() {
        let received = tokio::select! {
            _ = shutdown.cancelled() => return,
            received = source.source.receive() => received,
        };
        crate::metrics::EVENT_SOURCE_CALLS
            .with_label_values(&[&source.name, "receive"])
            .inc();
        let deliveries = match received {
            Ok(d) => {
                failures = 0;
                d
            }
            Err(e) => {
                failures += 1;
                let wait =
                    Duration::from_millis(250u64 << failures.min(7)).min(Duration::from_secs(30));
                tracing::warn!(source = %source.name, error = %e, retry_in_ms = wait.as_millis() as u64, "receiving provider events failed; polling covers the jobs meanwhile");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(wait) => continue,
                }
            }
        };
        let handled = handle_deliveries(&engine, &source, deliveries).await;
        if handled.is_empty() {
            continue;
        }
        crate::metrics::EVENT_SOURCE_CALLS
            .with_label_values(&[&source.name, "acknowledge"])
            .inc();
        if let Err(e) = source.source.acknowledge(&handled).await {
            // They come back after the queue's visibility timeout: a second poke, no harm.
            tracing::warn!(source = %source.name, error = %e, events = handled.len(), "acknowledging provider events failed; they will be delivered again");
        }
    }
}

/// Handles each delivery; returns the receipts of those handled (to acknowledge).
async fn handle_deliveries(
    engine: &Engine,
    source: &Source,
    deliveries: Vec<Delivery>,
) -> Vec<String> {
    let mut handled = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        let outcome = engine
            .handle_event(&source.name, &source.accounts, delivery.reading)
            .await;
        match outcome {
            Ok(Outcome::Unreadable(why)) => {
                tracing::warn!(source = %source.name, why, "a provider event could not be read");
                if source.delete_unreadable {
                    handled.push(delivery.receipt);
                }
            }
            Ok(Outcome::Foreign(what)) => {
                tracing::debug!(source = %source.name, what, "a provider event not about tether's jobs");
                handled.push(delivery.receipt);
            }
            Ok(_) => handled.push(delivery.receipt),
            Err(e) => {
                tracing::warn!(source = %source.name, error = %e, "a provider event could not be matched (the database?); it will be delivered again");
            }
        }
    }
    handled
}
