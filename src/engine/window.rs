//! The submitter's send window: the lease it holds while a submission is in progress.
//!
//! A submit that the provider does not deduplicate (EMR steps, Glue job runs) must never be
//! on its way while another process reconciles the same intent, or both create a job. So:
//! - the submitter's lease covers `lease + request_timeout`, and is renewed every third of
//!   the lease for as long as the submission is in progress (not only once it is waiting);
//! - each attempt of the request is sent only while that lease covers the whole attempt
//!   (`now + request_timeout <= lease end`), which [`SendWindow`] checks as the HTTP client's
//!   [`SendGate`]; once a renewal fails, the window closes by itself before the lease ends;
//! - another process can take the intent over only after the lease ran out, when every
//!   attempt has been answered or abandoned (see `reconcile` in [`super::ensure`]).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tether_provider::{Provider, SendGate};

use super::{Engine, EngineError};
use crate::clock::{to_millis, Clock};
use crate::jobs::Lease;
use crate::model::Millis;

/// The gate a submitter's requests pass: open while its lease covers a whole attempt.
#[derive(Debug, Clone)]
pub(crate) struct SendWindow {
    /// Where the lease ends (ms), as last written by this process.
    until: Arc<AtomicI64>,
    clock: Arc<dyn Clock>,
}

impl SendGate for SendWindow {
    fn may_send(&self, longest: Duration) -> bool {
        let ends = to_millis(self.clock.now()) + longest.as_millis() as i64;
        ends <= self.until.load(Ordering::Acquire)
    }
}

/// A submission lease kept renewed until dropped.
#[derive(Debug)]
pub(crate) struct HeldLease {
    window: SendWindow,
    renewer: tokio::task::JoinHandle<()>,
}

impl HeldLease {
    /// The gate for the submission's requests.
    pub(crate) fn gate(&self) -> &SendWindow {
        &self.window
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

impl Engine {
    /// How long a submitter's lease lasts from `now`: the lease plus one request timeout, so
    /// that an attempt started within the lease ends within it.
    pub(crate) fn submit_lease_len(&self, provider: &dyn Provider) -> Duration {
        self.inner.settings.lease + provider.settings().request_timeout
    }

    /// Extends `lease` to a submitter's length (unless `held_until`, where the record says it
    /// ends, is that far already: a fresh intent) and keeps it renewed until the returned value
    /// is dropped. `None` if the lease was lost already.
    pub(crate) async fn hold_for_submission(
        &self,
        lease: &Lease,
        held_until: Option<i64>,
        provider: &dyn Provider,
    ) -> Result<Option<HeldLease>, EngineError> {
        let length = self.submit_lease_len(provider);
        let mut until = Millis::from(self.now()).plus(length.as_millis() as i64);
        let renew_every = (self.inner.settings.lease / 3).as_millis() as i64;
        match held_until {
            Some(held) if held >= until.0 - renew_every => until = Millis(held),
            _ => {
                if !self.inner.jobs.extend(lease, until).await? {
                    return Ok(None);
                }
            }
        }
        let window = SendWindow {
            until: Arc::new(AtomicI64::new(until.0)),
            clock: self.inner.clock.clone(),
        };
        let renewer = tokio::spawn(renew(
            self.clone(),
            lease.clone(),
            length,
            window.until.clone(),
        ));
        Ok(Some(HeldLease { window, renewer }))
    }
}

/// Renews the lease every third of the lease time; stops once it is lost. A failed renewal
/// (the database out of reach) closes the window at once: nothing more is sent unless a later
/// renewal succeeds (which proves nobody took the lease meanwhile: it is fenced by epoch).
async fn renew(engine: Engine, lease: Lease, length: Duration, until: Arc<AtomicI64>) {
    let every = engine.inner.settings.lease / 3;
    loop {
        tokio::time::sleep(every).await;
        let next = Millis::from(engine.now()).plus(length.as_millis() as i64);
        match engine.inner.jobs.extend(&lease, next).await {
            Ok(true) => until.store(next.0, Ordering::Release),
            Ok(false) => {
                until.store(i64::MIN, Ordering::Release);
                tracing::warn!(
                    job_id = lease.job_id.0,
                    "submission lease lost: no further attempt is sent"
                );
                return;
            }
            Err(e) => {
                until.store(i64::MIN, Ordering::Release);
                tracing::warn!(
                    job_id = lease.job_id.0,
                    error = %e,
                    "renewing the submission lease failed; sending stops unless a retry succeeds"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tether_provider::SendGate;

    use std::sync::Arc;

    use crate::clock::SystemClock;
    use crate::config::Config;
    use crate::db::jobs::{JobStore, NewJob, StateKeyWrite};
    use crate::db::Db;
    use crate::engine::{Engine, Providers};
    use crate::model::{Lease, Millis};
    use crate::state::{TaskInstanceId, TaskState};

    async fn engine(dir: &std::path::Path) -> Engine {
        let text = format!(
            "[database]\nurl = \"sqlite://{}/t.db\"\n[supervisor]\nlease = \"1s\"\n\
             [providers.databricks]\nhost = \"http://127.0.0.1:9\"\ntoken = \"x\"\n\
             request_timeout = \"100ms\"\n",
            dir.display()
        );
        let config = Config::from_toml(&text, "test").unwrap();
        let db = Db::connect(&config.database.url, &config.database.pool)
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let clock = Arc::new(SystemClock);
        Engine::new(
            JobStore::new(db.clone()),
            TaskState::new(db, clock.clone(), config.state.clone()),
            Providers::from_config(&config.providers).unwrap(),
            config.supervisor.clone(),
            clock,
            crate::engine::KeyNamespace {
                value: "test".into(),
                source: crate::engine::NamespaceSource::Config,
            },
        )
    }

    /// A submission lease held for a submit, whose renewal `steal` may take away first: what
    /// the gate says after two renewals.
    async fn gate_after_renewals(steal: bool) -> bool {
        let dir = tempfile::tempdir().unwrap();
        let engine = &engine(dir.path()).await;
        let ti = TaskInstanceId::new("d", "r", "t", -1);
        let now = Millis::from(engine.now());
        let job = engine
            .jobs()
            .insert_intent(
                &NewJob {
                    task_instance: &ti,
                    name: "main",
                    generation: 1,
                    idempotency_key: "k",
                    provider: "databricks",
                    spec_json: "{}",
                    spec_hash: "h",
                    try_number: 1,
                    owner: engine.submitter(),
                    now,
                    lease_until: now.plus(1100),
                    poll_interval_ms: 100,
                    repair_of: None,
                },
                |_| StateKeyWrite {
                    key: "tether.job.main".into(),
                    json: "{}".into(),
                    expires_at: None,
                },
            )
            .await
            .unwrap()
            .unwrap();
        let lease = Lease {
            job_id: job.id,
            owner: engine.submitter().to_string(),
            epoch: job.lease_epoch,
        };
        let provider = engine.providers().get("databricks").unwrap();
        let held = engine
            .hold_for_submission(&lease, None, &*provider)
            .await
            .unwrap()
            .unwrap();
        assert!(held.gate().may_send(Duration::ZERO), "open while held");
        if steal {
            // Another supervisor takes the lease: released, then claimed, epoch increased.
            let jobs = engine.jobs();
            assert!(jobs.release(&lease).await.unwrap());
            let until = now.plus(60_000);
            let stolen = jobs.claim(lease.job_id, "other", now, until).await.unwrap();
            assert!(
                stolen.is_some(),
                "the other supervisor claims the released job"
            );
        }
        tokio::time::sleep(Duration::from_millis(800)).await;
        held.gate().may_send(Duration::ZERO)
    }

    #[tokio::test]
    async fn a_lost_renewal_closes_the_gate_at_once() {
        assert!(gate_after_renewals(false).await, "renewed: still open");
        assert!(
            !gate_after_renewals(true).await,
            "lost: closed although the lease it last wrote has not run out"
        );
    }
}
