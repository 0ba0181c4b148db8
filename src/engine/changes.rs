//! Job change announcements: whoever waits on a job (`/v1/jobs/{id}/wait`) is woken when it
//! changes, by this process or by another one.
//!
//! Changes made in this process are announced directly ([`Changes::announce`]). On
//! PostgreSQL, [`relay`] also passes on the changes made by every other process sharing the
//! database: a trigger on `jobs` announces each change of state, phase, provider state, handle
//! or cancel request on the channel `tether_jobs` (`LISTEN/NOTIFY`). While that relay is
//! connected, waiters re-read a job only every [`RELAYED_REREAD`], in case; without it (SQLite,
//! whose one process announces its own changes, or a lost listening connection) every
//! [`UNRELAYED_REREAD`], to see changes made by other processes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// How often a waiter re-reads its job while other processes' changes are relayed.
pub const RELAYED_REREAD: Duration = Duration::from_secs(5);
/// How often a waiter re-reads its job while they are not.
pub const UNRELAYED_REREAD: Duration = Duration::from_millis(250);
/// The announcement that any job may have changed (the relay was down for a while).
pub const ANY_JOB: i64 = -1;
/// The PostgreSQL channel the trigger announces on.
const CHANNEL: &str = "tether_jobs";

/// The announcements of job changes, by job id.
#[derive(Debug)]
pub struct Changes {
    tx: broadcast::Sender<i64>,
    relayed: AtomicBool,
}

impl Default for Changes {
    fn default() -> Self {
        Self {
            tx: broadcast::Sender::new(4096),
            relayed: AtomicBool::new(false),
        }
    }
}

impl Changes {
    /// Announces that `job_id` changed ([`ANY_JOB`]: any may have).
    pub fn announce(&self, job_id: i64) {
        let _ = self.tx.send(job_id);
    }

    /// A receiver of every announcement from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<i64> {
        self.tx.subscribe()
    }

    /// How often a waiter should re-read its job in case a change was not announced.
    pub fn reread_every(&self) -> Duration {
        if self.relayed.load(Ordering::Relaxed) {
            RELAYED_REREAD
        } else {
            UNRELAYED_REREAD
        }
    }

    /// Waits until `job_id` is announced as changed (or announcements were missed).
    pub async fn changed(rx: &mut broadcast::Receiver<i64>, job_id: i64) {
        loop {
            match rx.recv().await {
                Ok(id) if id == job_id || id == ANY_JOB => return,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => return,
                Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            }
        }
    }
}

impl Changes {
    /// Waits until one of `jobs` is announced as changed (or announcements were missed).
    pub async fn changed_any(
        rx: &mut broadcast::Receiver<i64>,
        jobs: &std::collections::HashSet<i64>,
    ) {
        loop {
            match rx.recv().await {
                Ok(id) if id == ANY_JOB || jobs.contains(&id) => return,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => return,
                Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            }
        }
    }
}

/// Relays the job changes PostgreSQL announces (made by any process) until `shutdown`;
/// reconnects with backoff when the listening connection is lost, and then announces
/// [`ANY_JOB`], since announcements may have been missed meanwhile.
pub async fn relay(url: String, changes: std::sync::Arc<Changes>, shutdown: CancellationToken) {
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        let connected = async {
            let mut listener = sqlx::postgres::PgListener::connect(&url).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            _ = shutdown.cancelled() => return,
            connected = connected => match connected {
                Ok(listener) => listener,
                Err(e) => {
                    failures += 1;
                    let wait = Duration::from_millis(250u64 << failures.min(6));
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64,
                        "listening for job changes failed; waiters re-read meanwhile");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(wait) => continue,
                    }
                }
            },
        };
        failures = 0;
        changes.relayed.store(true, Ordering::Relaxed);
        changes.announce(ANY_JOB);
        tracing::debug!("listening for job changes on {CHANNEL}");
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return,
                next = listener.try_recv() => next,
            };
            match next {
                Ok(Some(n)) => match n.payload().parse::<i64>() {
                    Ok(id) => changes.announce(id),
                    Err(_) => {
                        tracing::warn!(payload = n.payload(), "unexpected job change payload")
                    }
                },
                // The connection was lost; the next call reconnects. Meanwhile, re-read.
                Ok(None) => {
                    changes.relayed.store(false, Ordering::Relaxed);
                    changes.announce(ANY_JOB);
                    tracing::warn!("the job change listener lost its connection; reconnecting");
                }
                Err(e) => {
                    changes.relayed.store(false, Ordering::Relaxed);
                    changes.announce(ANY_JOB);
                    tracing::warn!(error = %e, "the job change listener failed; reconnecting");
                    break;
                }
            }
            if !changes.relayed.load(Ordering::Relaxed) {
                // try_recv reconnected (or will): back to relayed once it answers again.
                changes.relayed.store(true, Ordering::Relaxed);
            }
        }
    }
}
