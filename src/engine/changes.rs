//! Job change announcements: whoever waits on a job (`/v1/jobs/{id}/wait`, `/v1/jobs/wait`)
//! is woken when it changes, by this process or by another one.
//!
//! A waiter registers the jobs it waits for ([`Changes::watch`]) and sleeps until one of
//! them is announced ([`Watch::changed`]): an announcement wakes only the waiters of that job,
//! so that a thousand idle waiters cost nothing while their jobs do not change.
//!
//! Changes made in this process are announced directly ([`Changes::announce`]). Other
//! processes' changes are relayed: on PostgreSQL by [`relay`] (a trigger on `jobs` announces
//! each change of state, phase, provider state, handle or cancel request on the channel
//! `tether_jobs`, `LISTEN/NOTIFY`); on SQLite by [`watch_sqlite`] (the same trigger appends
//! to the table `job_changes`, which one connection per process reads whenever
//! `PRAGMA data_version` says another connection committed). While a relay runs, waiters
//! re-read their jobs only every [`RELAYED_REREAD`], in case; without one (not started, or
//! its connection lost) every [`UNRELAYED_REREAD`]. The SQL of both relays lives in
//! [`crate::db::changes`].
//!
//! The same relays carry pokes (a provider event named a job; see [`crate::engine::events`]):
//! they go to this process's supervisor ([`Changes::take_pokes`]), which polls the ones it
//! holds at once. When the relay may have missed some, the supervisor is told
//! ([`Pokes::missed`]) and reads the pokes of its jobs from the database instead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::db::changes::{listen, SqliteLog, POKES};
use crate::db::Db;
use crate::model::JobId;

/// How often a waiter re-reads its job while other processes' changes are relayed: only in
/// case of a bug, since every change a waiter answers on (state, phase) is relayed, and a
/// relay that may have missed some wakes every waiter. (At 5 s, 500 idle waiters on SQLite
/// cost 1.6 % of a core, mostly the thread switches of those reads; at 30 s, a sixth.)
pub const RELAYED_REREAD: Duration = Duration::from_secs(30);
/// How often a waiter re-reads its job while they are not.
pub const UNRELAYED_REREAD: Duration = Duration::from_millis(250);
/// The announcement that any job may have changed (the relay was down for a while).
pub const ANY_JOB: JobId = JobId(-1);
/// How often the SQLite relay asks whether another connection committed.
const SQLITE_LOOK_EVERY: Duration = Duration::from_millis(250);

/// The waiters of job changes, by job id, and whether other processes' changes are relayed.
#[derive(Debug, Default)]
pub struct Changes {
    waiters: Mutex<Waiters>,
    next_watch: AtomicU64,
    relayed: AtomicBool,
    pokes: Pokes,
}

/// The pokes heard and not yet taken by the supervisor.
#[derive(Debug, Default)]
pub struct Pokes {
    jobs: Mutex<Vec<JobId>>,
    /// The relay may have missed some: the supervisor reads its jobs' pokes from the database.
    missed: AtomicBool,
    heard: Notify,
}

/// What [`Changes::take_pokes`] gives.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Poked {
    /// The jobs poked, in order heard (a job poked twice may appear twice).
    pub jobs: Vec<JobId>,
    /// Whether pokes may have been missed since the last take.
    pub missed: bool,
}

#[derive(Debug, Default)]
struct Waiters {
    /// Job id -> the watches waiting for it.
    by_job: HashMap<JobId, HashMap<u64, Arc<Watched>>>,
    /// Watch id -> its wake-up and jobs (to wake every one, and to unregister).
    watches: HashMap<u64, (Arc<Watched>, Vec<JobId>)>,
}

/// One watch's wake-up, and which of its jobs were announced since it last asked.
#[derive(Debug, Default)]
struct Watched {
    notify: Notify,
    announced: Mutex<Announced>,
}

/// The jobs of a watch announced since it last asked ([`Watch::take_announced`]).
#[derive(Debug, Default)]
struct Announced {
    jobs: Vec<JobId>,
    /// Any of them may have changed ([`ANY_JOB`]).
    all: bool,
}

impl Watched {
    fn announce(&self, job_id: JobId) {
        {
            let mut announced = self.announced.lock().expect("announced lock");
            if job_id == ANY_JOB {
                announced.all = true;
                announced.jobs.clear();
            } else if !announced.all {
                announced.jobs.push(job_id);
            }
        }
        self.notify.notify_one();
    }
}

impl Changes {
    /// Announces that `job_id` changed ([`ANY_JOB`]: any may have): wakes its waiters.
    pub fn announce(&self, job_id: JobId) {
        let waiters = self.waiters.lock().expect("waiters lock");
        if job_id == ANY_JOB {
            for (watched, _) in waiters.watches.values() {
                watched.announce(ANY_JOB);
            }
        } else if let Some(watches) = waiters.by_job.get(&job_id) {
            for watched in watches.values() {
                watched.announce(job_id);
            }
        }
    }

    /// Registers a waiter for `jobs`: every announcement of one of them from now on wakes it
    /// (one announced between two waits is kept for the next). Unregistered when dropped.
    pub fn watch(self: &Arc<Self>, jobs: impl IntoIterator<Item = JobId>) -> Watch {
        let id = self.next_watch.fetch_add(1, Ordering::Relaxed);
        let watched = Arc::new(Watched::default());
        let jobs: Vec<JobId> = jobs.into_iter().collect();
        let mut waiters = self.waiters.lock().expect("waiters lock");
        for job in &jobs {
            waiters
                .by_job
                .entry(*job)
                .or_default()
                .insert(id, watched.clone());
        }
        waiters.watches.insert(id, (watched.clone(), jobs));
        Watch {
            changes: self.clone(),
            id,
            watched,
        }
    }

    /// How many waiters are registered.
    pub fn waiters(&self) -> usize {
        self.waiters.lock().expect("waiters lock").watches.len()
    }

    /// How often a waiter should re-read its job in case a change was not announced.
    pub fn reread_every(&self) -> Duration {
        if self.relayed.load(Ordering::Relaxed) {
            RELAYED_REREAD
        } else {
            UNRELAYED_REREAD
        }
    }

    fn set_relayed(&self, relayed: bool) {
        self.relayed.store(relayed, Ordering::Relaxed);
    }

    /// Announces that `job_id` was poked: this process's supervisor polls it now if it holds
    /// it.
    pub fn poke(&self, job_id: JobId) {
        self.pokes.jobs.lock().expect("pokes lock").push(job_id);
        self.pokes.heard.notify_one();
    }

    /// Tells the supervisor that pokes may have been missed (the relay was down).
    fn pokes_missed(&self) {
        self.pokes.missed.store(true, Ordering::Relaxed);
        self.pokes.heard.notify_one();
    }

    /// Takes the pokes heard since the last take.
    pub fn take_pokes(&self) -> Poked {
        Poked {
            jobs: std::mem::take(&mut *self.pokes.jobs.lock().expect("pokes lock")),
            missed: self.pokes.missed.swap(false, Ordering::Relaxed),
        }
    }

    /// Waits until a poke is heard (at once if one was since the last wait).
    pub async fn poked(&self) {
        self.pokes.heard.notified().await;
    }
}

/// A waiter's registration for some jobs' changes (see [`Changes::watch`]).
#[derive(Debug)]
pub struct Watch {
    changes: Arc<Changes>,
    id: u64,
    watched: Arc<Watched>,
}

impl Watch {
    /// Waits until one of the watched jobs is announced as changed (at once if one was since
    /// the last call).
    pub async fn changed(&self) {
        self.watched.notify.notified().await;
    }

    /// The watched jobs announced since the last take (each once, in no order); `None` when
    /// any of them may have changed (the relay was down, or [`ANY_JOB`] was announced): a
    /// waiter then reads them all.
    pub fn take_announced(&self) -> Option<Vec<JobId>> {
        let mut announced = self.watched.announced.lock().expect("announced lock");
        if std::mem::take(&mut announced.all) {
            announced.jobs.clear();
            return None;
        }
        let mut jobs = std::mem::take(&mut announced.jobs);
        jobs.sort_unstable();
        jobs.dedup();
        Some(jobs)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut waiters = self.changes.waiters.lock().expect("waiters lock");
        if let Some((_, jobs)) = waiters.watches.remove(&self.id) {
            for job in jobs {
                if let Some(watches) = waiters.by_job.get_mut(&job) {
                    watches.remove(&self.id);
                    if watches.is_empty() {
                        waiters.by_job.remove(&job);
                    }
                }
            }
        }
    }
}

/// Starts the relay of `db`'s backend ([`relay`] on PostgreSQL, [`watch_sqlite`] on SQLite)
/// until `shutdown`: what `tether serve` runs beside its supervisor.
pub fn spawn_relay(
    db: &Db,
    changes: Arc<Changes>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    match db.backend() {
        crate::db::Backend::Postgres => {
            tokio::spawn(relay(db.url().expose().to_string(), changes, shutdown))
        }
        crate::db::Backend::Sqlite => tokio::spawn(watch_sqlite(db.clone(), changes, shutdown)),
    }
}

/// Relays the job changes other processes make on a SQLite database until `shutdown`: one
/// connection of its own asks `PRAGMA data_version` every [`SQLITE_LOOK_EVERY`]; when another
/// connection committed, it reads the rows `job_changes` gained since its last look
/// ([`SqliteLog`]) and announces their jobs. Rows it missed (pruned before it read them) or a
/// lost connection announce [`ANY_JOB`].
pub async fn watch_sqlite(db: Db, changes: Arc<Changes>, shutdown: CancellationToken) {
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        let ended = watch_sqlite_once(&db, &changes, &shutdown).await;
        changes.set_relayed(false);
        changes.announce(ANY_JOB);
        changes.pokes_missed();
        let Err(e) = ended else { return };
        failures += 1;
        let wait = Duration::from_millis(250u64 << failures.min(6));
        tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64,
            "watching the database for other processes' job changes failed; waiters re-read meanwhile");
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn watch_sqlite_once(
    db: &Db,
    changes: &Changes,
    shutdown: &CancellationToken,
) -> Result<(), sqlx::Error> {
    let mut log = SqliteLog::open(db).await?;
    changes.set_relayed(true);
    // Changes made before the relay ran (or while it was down) were not relayed.
    changes.announce(ANY_JOB);
    changes.pokes_missed();
    let mut tick = tokio::time::interval(SQLITE_LOOK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        let look = log.look().await?;
        if look.missed {
            changes.announce(ANY_JOB);
            changes.pokes_missed();
        }
        for job in look.jobs {
            changes.announce(JobId(job));
        }
        for job in look.pokes {
            changes.poke(JobId(job));
        }
    }
}

/// Relays the job changes PostgreSQL announces (made by any process) until `shutdown`;
/// reconnects with backoff when the listening connection is lost, and then announces
/// [`ANY_JOB`], since announcements may have been missed meanwhile.
pub async fn relay(url: String, changes: std::sync::Arc<Changes>, shutdown: CancellationToken) {
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        let connected = listen(&url);
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
        changes.set_relayed(true);
        changes.announce(ANY_JOB);
        changes.pokes_missed();
        tracing::debug!("listening for job changes");
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return,
                next = listener.try_recv() => next,
            };
            match next {
                Ok(Some(n)) => match n.payload().parse::<i64>() {
                    Ok(id) if n.channel() == POKES => changes.poke(JobId(id)),
                    Ok(id) => changes.announce(JobId(id)),
                    Err(_) => {
                        tracing::warn!(payload = n.payload(), "unexpected job change payload")
                    }
                },
                // The connection was lost; the next call reconnects. Meanwhile, re-read.
                Ok(None) => {
                    changes.set_relayed(false);
                    changes.announce(ANY_JOB);
                    changes.pokes_missed();
                    tracing::warn!("the job change listener lost its connection; reconnecting");
                }
                Err(e) => {
                    changes.set_relayed(false);
                    changes.announce(ANY_JOB);
                    changes.pokes_missed();
                    tracing::warn!(error = %e, "the job change listener failed; reconnecting");
                    break;
                }
            }
            if changes.reread_every() != RELAYED_REREAD {
                // try_recv reconnected (or will): back to relayed once it answers again.
                changes.set_relayed(true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{Changes, ANY_JOB};
    use crate::model::JobId;

    /// A watch says which of its jobs were announced since it last asked, each once; after
    /// "any job", that it must read them all.
    #[test]
    fn a_watch_keeps_what_was_announced_of_its_jobs() {
        let changes = Arc::new(Changes::default());
        let watch = changes.watch([JobId(1), JobId(2), JobId(3)]);
        assert_eq!(watch.take_announced(), Some(vec![]));
        changes.announce(JobId(3));
        changes.announce(JobId(2));
        changes.announce(JobId(3));
        changes.announce(JobId(9));
        assert_eq!(watch.take_announced(), Some(vec![JobId(2), JobId(3)]));
        assert_eq!(watch.take_announced(), Some(vec![]));
        changes.announce(JobId(1));
        changes.announce(ANY_JOB);
        changes.announce(JobId(2));
        assert_eq!(watch.take_announced(), None, "read them all");
        assert_eq!(watch.take_announced(), Some(vec![]));
        drop(watch);
        assert_eq!(changes.waiters(), 0);
    }
}
