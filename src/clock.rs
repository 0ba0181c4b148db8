//! Wall-clock time as tether sees it.
//!
//! Expiry and garbage collection compare stored timestamps with "now". The stores take a
//! [`Clock`] so that tests can move time by hand instead of sleeping.
//!
//! Leases are different: several processes compare each other's timestamps, so they must
//! share one clock whatever their hosts' clocks say. The engine keeps time by [`DbClock`], the
//! database's clock read through this process's monotonic clock.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

pub use crate::model::ids::{from_millis, to_millis};

/// A source of the current time.
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().expect("clock mutex poisoned");
        *now += chrono::Duration::from_std(by).expect("duration out of range");
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("clock mutex poisoned")
    }
}

/// The database's clock, as this process keeps it: the database's time read at a sync
/// ([`DbClock::sync`]), carried forward by this process's monotonic clock. Every time the
/// engine writes or compares (lease expiry, claims, renewals, heartbeats, events) is on it, so
/// that a supervisor whose host clock runs ahead or behind neither takes live leases nor keeps
/// dead ones, and events follow each other in time across processes.
///
/// Before the first sync it is the local clock. Each sync also measures the skew (the local
/// clock minus the database's), which the supervisor logs, exports and bounds
/// (`supervisor.max_clock_skew`).
#[derive(Debug)]
pub struct DbClock {
    /// The process's own clock: what the skew is measured for (tests inject one that is off).
    local: Arc<dyn Clock>,
    anchor: Mutex<Option<Anchor>>,
}

/// The database's time at a monotonic instant, and the skew measured then.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    db_ms: i64,
    at: Instant,
    skew_ms: i64,
}

impl DbClock {
    /// A clock that follows the database once synced, measuring `local` against it.
    pub fn new(local: Arc<dyn Clock>) -> Self {
        Self {
            local,
            anchor: Mutex::new(None),
        }
    }

    /// Reads the database's clock and anchors to it; returns the skew (local minus database,
    /// in ms). The database's time is taken to be read halfway through the round trip.
    pub async fn sync(&self, db: &crate::db::Db) -> Result<i64, crate::db::DbError> {
        let sent = Instant::now();
        let local_sent = to_millis(self.local.now());
        let db_ms = db.now_ms().await?;
        let half = sent.elapsed() / 2;
        let skew_ms = local_sent + half.as_millis() as i64 - db_ms;
        *self.anchor.lock().expect("clock mutex poisoned") = Some(Anchor {
            db_ms,
            at: sent + half,
            skew_ms,
        });
        crate::metrics::CLOCK_SKEW.set(skew_ms as f64 / 1000.0);
        Ok(skew_ms)
    }

    /// The skew measured at the last sync (local minus database, ms); `None` before one.
    pub fn skew_ms(&self) -> Option<i64> {
        self.anchor
            .lock()
            .expect("clock mutex poisoned")
            .map(|a| a.skew_ms)
    }
}

impl Clock for DbClock {
    fn now(&self) -> DateTime<Utc> {
        match *self.anchor.lock().expect("clock mutex poisoned") {
            Some(a) => from_millis(a.db_ms + a.at.elapsed().as_millis() as i64),
            None => self.local.now(),
        }
    }
}
