//! What a simulator that sends its jobs' events does to them on the way, as the real
//! delivery may: an event lost (best-effort routing), repeated (at-least-once delivery) or
//! delayed past later ones. Tests queue [`EventFault`]s for the next events (of one job
//! family, or any); the soak asks for chaos, every Nth event faulted in turn. The AWS
//! simulator's EventBridge events and the Google simulator's log entries share it.

use std::time::Duration;

/// How long the chaos of [`EventFaults::chaos`] delays an event.
pub const CHAOS_DELAY: Duration = Duration::from_secs(3);

/// What happens to the next events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFaultKind {
    /// Not sent (the routing's best effort lost it).
    Drop,
    /// Sent twice, the same event (at-least-once delivery).
    Duplicate,
    /// Sent this much later, so that later events overtake it.
    Delay(Duration),
}

/// A fault of the next `times` events (of the jobs `of` names, or any); `S` is how a
/// simulator names a family of its jobs (a service, a kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventFault<S> {
    /// What happens to them.
    pub kind: EventFaultKind,
    /// Whose events; `None` for all.
    pub of: Option<S>,
    /// How many events.
    pub times: u32,
}

impl<S> EventFault<S> {
    /// `kind` for the next `times` events of any job.
    pub fn new(kind: EventFaultKind, times: u32) -> Self {
        Self {
            kind,
            of: None,
            times,
        }
    }

    /// Only for the jobs `of` names.
    #[must_use]
    pub fn on(mut self, of: S) -> Self {
        self.of = Some(of);
        self
    }
}

/// One event to send: its body, and how long to wait first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing<B> {
    /// What is sent.
    pub body: B,
    /// How long to hold it first.
    pub after: Option<Duration>,
}

/// The task sending a simulator's events; it stops when dropped (with the simulator).
#[derive(Debug)]
pub struct Emitter(pub tokio::task::JoinHandle<()>);

impl Drop for Emitter {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The faults still to apply, the chaos, and the counts of events made, sent and failed.
#[derive(Debug, Clone)]
pub struct EventFaults<S> {
    faults: Vec<EventFault<S>>,
    /// Every this many events, one is faulted (dropped, repeated, delayed, in turn).
    chaos_every: Option<u64>,
    /// Events made (numbers them).
    made: u64,
    /// Events handed to the delivery (a duplicate counts twice).
    pub sent: u64,
    /// Events the delivery refused or could not be reached for.
    pub failed: u64,
}

impl<S> Default for EventFaults<S> {
    fn default() -> Self {
        Self {
            faults: Vec::new(),
            chaos_every: None,
            made: 0,
            sent: 0,
            failed: 0,
        }
    }
}

impl<S: Copy + PartialEq> EventFaults<S> {
    /// Every `every`th event faulted, in turn dropped, repeated and delayed by
    /// [`CHAOS_DELAY`] (`None`: no chaos).
    pub fn chaos(&mut self, every: Option<u64>) {
        self.chaos_every = every.filter(|k| *k > 0);
    }

    /// Queues a fault.
    pub fn inject(&mut self, fault: EventFault<S>) {
        if fault.times > 0 {
            self.faults.push(fault);
        }
    }

    /// Numbers a new event (from 1).
    pub fn next_number(&mut self) -> u64 {
        self.made += 1;
        self.made
    }

    /// What is sent of the event `body` of a job of `of`, numbered `n` by
    /// [`EventFaults::next_number`]: nothing, it, it twice, or it later.
    pub fn apply<B: Clone>(&mut self, of: S, n: u64, body: B) -> Vec<Outgoing<B>> {
        let now = |body| Outgoing { body, after: None };
        match self.take(of, n) {
            None => vec![now(body)],
            Some(EventFaultKind::Drop) => Vec::new(),
            Some(EventFaultKind::Duplicate) => vec![now(body.clone()), now(body)],
            Some(EventFaultKind::Delay(by)) => vec![Outgoing {
                body,
                after: Some(by),
            }],
        }
    }

    /// The fault that applies to event `n` of a job of `of`, if any: a queued one, else the
    /// chaos's turn.
    fn take(&mut self, of: S, n: u64) -> Option<EventFaultKind> {
        let Some(i) = self
            .faults
            .iter()
            .position(|f| f.of.is_none_or(|s| s == of))
        else {
            let every = self.chaos_every?;
            return n.is_multiple_of(every).then(|| match (n / every) % 3 {
                0 => EventFaultKind::Drop,
                1 => EventFaultKind::Duplicate,
                _ => EventFaultKind::Delay(CHAOS_DELAY),
            });
        };
        let kind = self.faults[i].kind;
        self.faults[i].times -= 1;
        if self.faults[i].times == 0 {
            self.faults.remove(i);
        }
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The soak's chaos: every Nth event dropped, duplicated or delayed, in turn; a queued
    /// fault first.
    #[test]
    fn chaos_faults_every_nth_event_in_turn() {
        let mut e = EventFaults::<u8>::default();
        e.chaos(Some(2));
        let kinds: Vec<Option<EventFaultKind>> = (1..=6).map(|n| e.take(0, n)).collect();
        assert_eq!(
            kinds,
            [
                None,
                Some(EventFaultKind::Duplicate),
                None,
                Some(EventFaultKind::Delay(CHAOS_DELAY)),
                None,
                Some(EventFaultKind::Drop),
            ]
        );
        e.inject(EventFault::new(EventFaultKind::Duplicate, 1));
        assert_eq!(e.take(0, 7), Some(EventFaultKind::Duplicate));
    }

    #[test]
    fn faults_apply_in_order_to_their_family_and_run_out() {
        let mut e = EventFaults::<char>::default();
        e.inject(EventFault::new(EventFaultKind::Drop, 1).on('b'));
        e.inject(EventFault::new(EventFaultKind::Duplicate, 2));
        assert_eq!(e.apply('e', 1, "x").len(), 2);
        assert!(e.apply('b', 2, "x").is_empty());
        assert_eq!(e.apply('b', 3, "x").len(), 2);
        assert_eq!(
            e.apply('b', 4, "x"),
            [Outgoing {
                body: "x",
                after: None
            }]
        );
    }
}
