//! Status reads gathered by id: the single status reads of a kind whose describe call takes
//! many ids (Batch `DescribeJobs`, ECS `DescribeTasks`), asked within a short window of one
//! another, go out as one call, and each reads its own job from that call's answer exactly as
//! from an answer of its own ([`super::JobApi::gathers`]).
//!
//! The first read of a group (an ECS cluster; Batch has one) opens a batch and sends it after
//! the window; a batch that reaches [`FLUSH_AT`] reads is sent at once, so that many reads due
//! together (more than a supervisor's polls in flight, say) are not held back by the window.
//! A read whose batch fails for any reason but a transient one is sent again alone, so that one
//! bad id (or a refusal of a batch) answers only for itself; a transient failure (throttling,
//! a 5xx) is every read's, as it would have been. A reader that is dropped while it opens a
//! batch sends nothing: the batch's other reads then go alone.
//!
//! Events and the polls of new jobs arrive a few a second: gathering them makes one call a
//! window instead of one each (issue 35: AWS Batch at 1/50 of Airflow's calls).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tether_provider::ProviderError;
use tokio::sync::{oneshot, Notify};

/// A batch this full is sent at once, without waiting for the window: it already saves most of
/// its calls, and the reads waiting in it may be all that a supervisor has in flight.
pub const FLUSH_AT: usize = 8;

/// What a batch's call answered, shared by its readers.
pub type Answer = Result<Arc<Value>, ProviderError>;

/// An id asked for, and who waits for the answer.
type Reader = (String, oneshot::Sender<Answer>);

/// The batches being gathered, per group.
#[derive(Debug, Default)]
pub struct Gather {
    open: Mutex<HashMap<String, Arc<Batch>>>,
}

#[derive(Debug, Default)]
struct Batch {
    /// The ids asked for and who waits for each answer; `None` once taken to be sent.
    readers: Mutex<Option<Vec<Reader>>>,
    /// Rung when the batch is full.
    full: Notify,
}

/// How one read joined a batch.
pub enum Joined {
    /// It opened the batch: it sends it (with [`Gather::take`] after the window or when
    /// full) and hands the answer on ([`Sending::answer`]).
    Opened(Sending),
    /// It waits for the batch's answer; an error receiving means its batch was not sent
    /// (the reader that opened it was dropped): it reads alone.
    Waits(oneshot::Receiver<Answer>),
}

/// A batch its opener is to send. Dropped unsent, it answers nobody: the readers waiting in
/// it then read alone.
pub struct Sending {
    group: String,
    batch: Arc<Batch>,
    gather: Arc<Gather>,
    readers: Vec<Reader>,
}

impl Gather {
    /// Joins `id` (of `group`) to the group's open batch, or opens one; at most `chunk` ids a
    /// batch.
    pub fn join(self: &Arc<Self>, group: &str, id: &str, chunk: usize) -> Joined {
        let mut open = self.open.lock().expect("gather lock");
        if let Some(batch) = open.get(group).cloned() {
            let mut readers = batch.readers.lock().expect("batch lock");
            if let Some(list) = readers.as_mut() {
                let (tx, rx) = oneshot::channel();
                list.push((id.to_string(), tx));
                // Full: no one else joins it; its opener sends it at once.
                if list.len() + 1 >= chunk.min(FLUSH_AT) {
                    open.remove(group);
                    batch.full.notify_one();
                }
                return Joined::Waits(rx);
            }
        }
        let batch = Arc::new(Batch {
            readers: Mutex::new(Some(Vec::new())),
            full: Notify::new(),
        });
        open.insert(group.to_string(), batch.clone());
        Joined::Opened(Sending {
            group: group.to_string(),
            batch,
            gather: self.clone(),
            readers: Vec::new(),
        })
    }
}

impl Sending {
    /// Waits until the window has passed or the batch is full, closes it, and answers the
    /// ids to read: the opener's own `id` first, then the others' (each once).
    pub async fn take(&mut self, id: &str, window: Duration) -> Vec<String> {
        let _ = tokio::time::timeout(window, self.batch.full.notified()).await;
        self.close();
        let mut ids = vec![id.to_string()];
        for (other, _) in &self.readers {
            if !ids.contains(other) {
                ids.push(other.clone());
            }
        }
        ids
    }

    /// Hands the batch's answer to every reader waiting in it.
    pub fn answer(mut self, answer: &Answer) {
        for (_, tx) in self.readers.drain(..) {
            let _ = tx.send(answer.clone());
        }
    }

    /// No one joins the batch any more; its readers are this sender's to answer.
    fn close(&mut self) {
        let mut open = self.gather.open.lock().expect("gather lock");
        if open
            .get(&self.group)
            .is_some_and(|b| Arc::ptr_eq(b, &self.batch))
        {
            open.remove(&self.group);
        }
        drop(open);
        let taken = self.batch.readers.lock().expect("batch lock").take();
        self.readers.extend(taken.into_iter().flatten());
    }
}

impl Drop for Sending {
    /// Unsent (its opener was dropped): the batch is closed and its readers' senders dropped,
    /// so each reads alone.
    fn drop(&mut self) {
        self.close();
        self.readers.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_within_the_window_share_one_answer() {
        let gather = Arc::new(Gather::default());
        let Joined::Opened(mut sending) = gather.join("", "a", 100) else {
            panic!("the first read opens the batch");
        };
        let Joined::Waits(b) = gather.join("", "b", 100) else {
            panic!("the second joins it");
        };
        let Joined::Waits(a_again) = gather.join("", "a", 100) else {
            panic!("a third joins it");
        };
        let ids = sending.take("a", Duration::from_millis(20)).await;
        assert_eq!(ids, ["a", "b"], "each id once, the opener's first");
        sending.answer(&Ok(Arc::new(serde_json::json!({"jobs": []}))));
        assert!(b.await.unwrap().is_ok());
        assert!(a_again.await.unwrap().is_ok());
        // The window has closed: the next read opens a new batch.
        assert!(matches!(gather.join("", "c", 100), Joined::Opened(_)));
    }

    #[tokio::test]
    async fn a_full_batch_goes_at_once_and_groups_are_apart() {
        let gather = Arc::new(Gather::default());
        let Joined::Opened(mut sending) = gather.join("c1", "0", 3) else {
            panic!()
        };
        assert!(matches!(gather.join("c2", "x", 3), Joined::Opened(_)));
        let _one = gather.join("c1", "1", 3);
        let _two = gather.join("c1", "2", 3);
        let started = std::time::Instant::now();
        let ids = sending.take("0", Duration::from_secs(30)).await;
        assert_eq!(ids.len(), 3);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not held for the window"
        );
        assert!(matches!(gather.join("c1", "3", 3), Joined::Opened(_)));
    }

    #[tokio::test]
    async fn an_opener_dropped_unsent_lets_the_others_read_alone() {
        let gather = Arc::new(Gather::default());
        let opened = gather.join("", "a", 100);
        let Joined::Waits(b) = gather.join("", "b", 100) else {
            panic!()
        };
        drop(opened);
        assert!(b.await.is_err(), "b reads alone");
        assert!(matches!(gather.join("", "c", 100), Joined::Opened(_)));
    }
}
