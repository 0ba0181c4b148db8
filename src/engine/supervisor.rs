//! The supervisor loop: claim jobs under leases, renew the leases, poll each job when due.
//!
//! Several supervisors may share one PostgreSQL database. Each claims unfinished jobs whose
//! lease is free or has run out (so a crashed supervisor's jobs move to another once its
//! leases expire), renews its leases every third of the lease time, and polls the jobs it
//! holds when they are due, at most `max_concurrent_polls` at once. A job whose lease renewal
//! or fenced write fails is dropped at once: someone else holds it now.
//!
//! On shutdown the loop stops claiming, waits for polls in flight (up to
//! `shutdown_grace`), and releases its leases. It never cancels a remote job.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::poll::PollOutcome;
use super::{Engine, EngineError};
use crate::clock::to_millis;
use crate::jobs::Lease;

/// A job this supervisor holds.
#[derive(Debug)]
struct Held {
    epoch: i64,
    next_poll_at: DateTime<Utc>,
    in_flight: bool,
}

/// Claims and polls jobs until shut down.
#[derive(Debug)]
pub struct Supervisor {
    engine: Engine,
    /// Only this job (`tether run` supervises its own job); `None` for all.
    only: Option<i64>,
}

impl Supervisor {
    /// A supervisor for every unfinished job.
    pub fn new(engine: Engine) -> Self {
        Self { engine, only: None }
    }

    /// A supervisor for one job.
    pub fn for_job(engine: Engine, job_id: i64) -> Self {
        Self {
            engine,
            only: Some(job_id),
        }
    }

    /// Runs until `shutdown` is cancelled (or, for one job, until it finishes). Database
    /// failures are logged and retried; they never end the loop.
    pub async fn run(self, shutdown: CancellationToken) {
        let engine = &self.engine;
        let settings = engine.settings().clone();
        let lease = settings.lease;
        let heartbeat_every = lease / 3;
        let claim_every = (lease / 6).clamp(Duration::from_millis(250), Duration::from_secs(5));
        let capacity = i64::from(settings.claim_batch) * 10;
        let permits = Arc::new(Semaphore::new(settings.max_concurrent_polls as usize));
        let mut held: HashMap<i64, Held> = HashMap::new();
        let mut polls: JoinSet<(i64, Result<PollOutcome, EngineError>)> = JoinSet::new();
        let mut next_heartbeat = engine.now();
        let mut next_claim = engine.now();
        let mut done = false;
        // Database failures in a row: claims and heartbeats back off while it is unreachable.
        let mut db_failures = 0u32;
        let backoff =
            |n: u32| Duration::from_millis(250u64 << n.min(6)).min(Duration::from_secs(10));

        tracing::info!(owner = engine.owner(), "supervisor started");
        while !done && !shutdown.is_cancelled() {
            let now = engine.now();
            if now >= next_heartbeat {
                next_heartbeat = now + heartbeat_every;
                match engine
                    .jobs()
                    .renew(engine.owner(), to_millis(now), engine.lease_until(now))
                    .await
                {
                    Ok(renewed) => {
                        let renewed: HashMap<i64, i64> = renewed.into_iter().collect();
                        held.retain(|id, h| {
                            let kept = h.in_flight || renewed.get(id) == Some(&h.epoch);
                            if !kept {
                                tracing::warn!(
                                    job_id = id,
                                    "lease lost; another supervisor may hold it"
                                );
                            }
                            kept
                        });
                    }
                    Err(e) => {
                        db_failures += 1;
                        next_heartbeat = now + backoff(db_failures).min(heartbeat_every);
                        tracing::warn!(error = %e, failures = db_failures, "renewing leases failed; retrying");
                    }
                }
            }
            if now >= next_claim && (held.len() as i64) < capacity {
                next_claim = now + claim_every;
                let want = (capacity - held.len() as i64).min(i64::from(settings.claim_batch));
                match engine
                    .jobs()
                    .claim_batch(
                        engine.owner(),
                        to_millis(now),
                        engine.lease_until(now),
                        want,
                        self.only,
                    )
                    .await
                {
                    Ok(claimed) => {
                        db_failures = 0;
                        for job in claimed {
                            crate::metrics::LEASES.with_label_values(&["claimed"]).inc();
                            tracing::info!(job_id = job.id, epoch = job.lease_epoch, "claimed");
                            held.insert(
                                job.id,
                                Held {
                                    epoch: job.lease_epoch,
                                    next_poll_at: job.next_poll_at,
                                    in_flight: false,
                                },
                            );
                        }
                    }
                    Err(e) => {
                        db_failures += 1;
                        next_claim = now + backoff(db_failures);
                        tracing::warn!(error = %e, failures = db_failures, "claiming jobs failed; retrying with backoff");
                    }
                }
            }
            // Start every due poll that a permit allows.
            let mut earliest: Option<DateTime<Utc>> = None;
            for (&id, h) in held.iter_mut() {
                if h.in_flight {
                    continue;
                }
                if h.next_poll_at > now {
                    earliest = Some(earliest.map_or(h.next_poll_at, |e| e.min(h.next_poll_at)));
                    continue;
                }
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    break;
                };
                h.in_flight = true;
                let engine = engine.clone();
                let lease = Lease {
                    job_id: id,
                    owner: engine.owner().to_string(),
                    epoch: h.epoch,
                };
                polls.spawn(async move {
                    let result = engine.poll_job(&lease).await;
                    drop(permit);
                    (id, result)
                });
            }
            let mut wake = next_heartbeat.min(next_claim);
            if let Some(e) = earliest {
                wake = wake.min(e);
            }
            let sleep = (wake - engine.now()).to_std().unwrap_or(Duration::ZERO);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(joined) = polls.join_next(), if !polls.is_empty() => {
                    let Ok((id, result)) = joined else { continue };
                    match result {
                        Ok(PollOutcome::Again(at)) => {
                            if let Some(h) = held.get_mut(&id) {
                                h.next_poll_at = at;
                                h.in_flight = false;
                            }
                        }
                        Ok(outcome @ (PollOutcome::Finished | PollOutcome::LeaseLost)) => {
                            if outcome == PollOutcome::LeaseLost {
                                crate::metrics::LEASES.with_label_values(&["lost"]).inc();
                            }
                            held.remove(&id);
                            if self.only == Some(id) {
                                done = self.only_job_finished(id).await;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(job_id = id, error = %e, "poll failed; retrying");
                            if let Some(h) = held.get_mut(&id) {
                                h.in_flight = false;
                                h.next_poll_at = engine.now() + Duration::from_secs(1);
                            }
                        }
                    }
                }
                _ = tokio::time::sleep(sleep) => {}
            }
        }

        // Shutdown: let polls in flight finish, then hand every lease back.
        let grace = tokio::time::timeout(settings.shutdown_grace, async {
            while polls.join_next().await.is_some() {}
        });
        if grace.await.is_err() {
            polls.abort_all();
        }
        match engine.jobs().release_all(engine.owner()).await {
            Ok(n) => tracing::info!(
                released = n,
                "supervisor stopped; leases released, remote jobs left running"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "releasing leases failed; they expire by themselves")
            }
        }
    }

    async fn only_job_finished(&self, id: i64) -> bool {
        matches!(
            self.engine.jobs().phase(id).await,
            Ok(Some(crate::jobs::Phase::Terminal)) | Ok(None)
        )
    }
}
