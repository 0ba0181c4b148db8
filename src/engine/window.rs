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
        let mut until = to_millis(self.now()) + length.as_millis() as i64;
        let renew_every = (self.inner.settings.lease / 3).as_millis() as i64;
        match held_until {
            Some(held) if held >= until - renew_every => until = held,
            _ => {
                if !self.inner.jobs.extend(lease, until).await? {
                    return Ok(None);
                }
            }
        }
        let window = SendWindow {
            until: Arc::new(AtomicI64::new(until)),
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
/// (the database out of reach) is retried at the next tick, while the window narrows.
async fn renew(engine: Engine, lease: Lease, length: Duration, until: Arc<AtomicI64>) {
    let every = engine.inner.settings.lease / 3;
    loop {
        tokio::time::sleep(every).await;
        let next = to_millis(engine.now()) + length.as_millis() as i64;
        match engine.inner.jobs.extend(&lease, next).await {
            Ok(true) => until.store(next, Ordering::Release),
            Ok(false) => {
                tracing::warn!(
                    job_id = lease.job_id,
                    "submission lease lost: no further attempt is sent"
                );
                return;
            }
            Err(e) => tracing::warn!(
                job_id = lease.job_id,
                error = %e,
                "renewing the submission lease failed; sending stops unless a retry succeeds"
            ),
        }
    }
}
