//! What the simulator's pipeline updates and SQL statements share: a [`Life`] (pending,
//! running, then an outcome, unless cancelled or told to report something else), the state
//! names each API gives it ([`Vocabulary`]), and the [`Store`] that keeps them in creation order.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tether_provider::sim::Lifetimes;
use tether_provider::JobState;

use super::SimConfig;

/// The life of a pipeline update or a statement: pending, running, then its outcome, unless
/// cancelled or told to report something else.
#[derive(Debug)]
pub(super) struct Life {
    created: Instant,
    pending: Duration,
    running: Duration,
    /// The run result it ends with (`SUCCESS`, `FAILED`, or a state of its own API).
    pub(super) outcome: String,
    cancelled: bool,
    /// When it was cancelled.
    cancelled_at: Option<Instant>,
    /// When it was created, in ms since the Unix epoch.
    pub(super) start_ms: i64,
    /// When a client last read it.
    pub(super) last_seen: Option<Instant>,
    /// The state it reports whatever its schedule says.
    pub(super) forced: Option<String>,
    /// Left out of lists.
    pub(super) hidden: bool,
}

/// Where a [`Life`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Pending,
    Running,
    Cancelled,
    Ended,
}

/// The states an API reports a [`Life`] in.
#[derive(Debug)]
pub(super) struct Vocabulary {
    /// Every documented state (and what it is for tether).
    pub(super) states: &'static [(&'static str, JobState)],
    /// The state of one waiting to run.
    pub(super) pending: &'static str,
    /// The state of one that succeeded.
    pub(super) succeeded: &'static str,
}

impl Vocabulary {
    /// The state a run outcome (`SUCCESS`, `FAILED`, a state name) ends a life in.
    pub(super) fn outcome(&self, result: &str) -> String {
        match result {
            "SUCCESS" => self.succeeded.into(),
            s if self.states.iter().any(|(name, _)| *name == s) => s.into(),
            _ => "FAILED".into(),
        }
    }
}

impl Life {
    pub(super) fn new(config: &SimConfig) -> Self {
        Self {
            created: Instant::now(),
            pending: config.pending,
            running: config.running,
            outcome: config.outcome.clone(),
            cancelled: false,
            cancelled_at: None,
            start_ms: crate::now_ms(),
            last_seen: None,
            forced: None,
            hidden: false,
        }
    }

    pub(super) fn phase(&self, now: Instant) -> Phase {
        let age = now.saturating_duration_since(self.created);
        if self.cancelled {
            Phase::Cancelled
        } else if age < self.pending {
            Phase::Pending
        } else if age < self.pending + self.running {
            Phase::Running
        } else {
            Phase::Ended
        }
    }

    /// The state it reports at `now`, in its API's `words`.
    pub(super) fn state(&self, now: Instant, words: &Vocabulary) -> String {
        if let Some(raw) = &self.forced {
            return raw.clone();
        }
        match self.phase(now) {
            Phase::Pending => words.pending.into(),
            Phase::Running => "RUNNING".into(),
            Phase::Cancelled => "CANCELED".into(),
            Phase::Ended => words.outcome(&self.outcome),
        }
    }

    pub(super) fn ended(&self, now: Instant) -> bool {
        matches!(self.phase(now), Phase::Cancelled | Phase::Ended)
    }

    /// Cancels it, unless it ended.
    pub(super) fn cancel(&mut self, now: Instant) {
        if !self.ended(now) {
            self.cancelled = true;
            self.cancelled_at = Some(now);
        }
    }

    /// When it ends (or ended), as far as its schedule or a cancel tells.
    fn end(&self) -> Option<Instant> {
        if self.cancelled {
            return self.cancelled_at;
        }
        Some(self.created + self.pending + self.running)
    }

    /// Whether a client can read it at `now` ([`Lifetimes::readable`]).
    pub(super) fn readable(&self, lifetimes: &Lifetimes, now: Instant) -> bool {
        lifetimes.readable(self.created, self.end(), now)
    }
}

/// A kind of job the simulator keeps in a [`Store`]: pipeline updates or statements.
pub(super) trait JobKind {
    /// The states its API reports.
    const WORDS: Vocabulary;
}

/// A job of a [`Store`]: its life, and what its kind keeps of it.
#[derive(Debug)]
pub(super) struct Job<T> {
    pub(super) life: Life,
    /// What its kind keeps (an update's pipeline and request; a statement's warehouse, text
    /// and tags).
    pub(super) of: T,
}

impl<T: JobKind> Job<T> {
    /// The state it reports at `now`.
    pub(super) fn state(&self, now: Instant) -> String {
        self.life.state(now, &T::WORDS)
    }
}

/// The updates or the statements the simulator holds.
#[derive(Debug)]
pub(super) struct Store<T> {
    by_id: BTreeMap<String, Job<T>>,
    /// Ids in creation order (a forgotten one stays, and is passed over).
    order: Vec<String>,
    /// How many were made.
    made: u64,
}

impl<T> Default for Store<T> {
    fn default() -> Self {
        Self {
            by_id: BTreeMap::new(),
            order: Vec::new(),
            made: 0,
        }
    }
}

impl<T> Store<T> {
    /// The id of the next one, made by `name` from its number (1, 2, ...).
    pub(super) fn new_id(&mut self, name: impl FnOnce(u64) -> String) -> String {
        self.made += 1;
        name(self.made)
    }

    /// Keeps `job` as the newest.
    pub(super) fn insert(&mut self, id: String, job: Job<T>) {
        self.by_id.insert(id.clone(), job);
        self.order.push(id);
    }

    pub(super) fn get_mut(&mut self, id: &str) -> Option<&mut Job<T>> {
        self.by_id.get_mut(id)
    }

    /// Forgets one, as if it had aged out; whether there was one.
    pub(super) fn remove(&mut self, id: &str) -> bool {
        self.by_id.remove(id).is_some()
    }

    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut Job<T>> {
        self.by_id.values_mut()
    }

    /// The one named `id`, if a client can read it at `now`.
    pub(super) fn readable(
        &mut self,
        id: &str,
        lifetimes: &Lifetimes,
        now: Instant,
    ) -> Option<&mut Job<T>> {
        self.by_id
            .get_mut(id)
            .filter(|job| job.life.readable(lifetimes, now))
    }

    /// Every one `keep` accepts, newest first, with its id.
    pub(super) fn newest_first<'a>(
        &'a self,
        keep: impl Fn(&Job<T>) -> bool + 'a,
    ) -> impl Iterator<Item = (&'a String, &'a Job<T>)> + 'a {
        self.order
            .iter()
            .rev()
            .filter_map(|id| self.by_id.get(id).map(|job| (id, job)))
            .filter(move |(_, job)| keep(job))
    }

    /// A page of a list, newest first: after the first `skip` of those listed at `now` (not
    /// hidden, readable, and accepted by `keep`), at most `limit`, each marked as read and
    /// shown by `show`; and whether more follow.
    pub(super) fn page<R>(
        &mut self,
        (lifetimes, now): (&Lifetimes, Instant),
        keep: impl Fn(&Job<T>) -> bool,
        (skip, limit): (usize, usize),
        show: impl Fn(&str, &Job<T>) -> R,
    ) -> (Vec<R>, bool) {
        let listed: Vec<String> = self
            .newest_first(|job| !job.life.hidden && job.life.readable(lifetimes, now) && keep(job))
            .map(|(id, _)| id.clone())
            .collect();
        let page: Vec<R> = listed
            .iter()
            .skip(skip)
            .take(limit)
            .map(|id| {
                let job = self.by_id.get_mut(id).expect("listed");
                job.life.last_seen = Some(now);
                show(id, job)
            })
            .collect();
        let more = skip + page.len() < listed.len();
        (page, more)
    }
}
