//! What a provider's own events say of its jobs, read by the provider crate that knows their
//! shape (EventBridge envelopes for AWS, job notifications for Databricks, ...) and matched by
//! the engine to the job they name.
//!
//! An event is a hint, never a record: the engine marks the job it names due now and polls it,
//! so a final state is always confirmed by a status call before it is recorded. An event that
//! names no job of tether's kinds is [`Reading::Foreign`]; one that cannot be read at all is an
//! error naming what is wrong with it.

/// What one event says: which remote job it names and when it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    /// The kind whose job it names (`batch`, `databricks`, ...), as `kind = "..."` names it.
    pub kind: &'static str,
    /// The job's reference: what [`crate::Provider::handle_ref`] returns for its handle (the
    /// remote job's own id: a Batch job id, a Databricks run id, ...).
    pub reference: String,
    /// The region the event comes from, where the service has regions: an event is matched
    /// only to an account of that region.
    pub region: Option<String>,
    /// When the event happened at the service, in ms since the Unix epoch, if it says.
    pub at_ms: Option<i64>,
    /// The state the event reports, as the service names it (a hint only).
    pub state: Option<String>,
    /// The state it reports is one the service documents as not an end (a job queued,
    /// started, running, stopping): the engine does not poll the job for it, since only an
    /// end is worth a call at once and polling reads the rest. False for an end, and for a
    /// state tether does not know (which may be an end).
    pub progress: bool,
}

/// What reading one event found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// It names a job of one of tether's kinds.
    Hint(Hint),
    /// A well-formed event that is not about a job tether could track (another service, a
    /// detail type it does not act on); the text says what it was.
    Foreign(String),
}

/// One event as a source delivered it: what reading it found, and the receipt that
/// acknowledges it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// What acknowledges it ([`EventSource::acknowledge`]): an SQS receipt handle, ...
    pub receipt: String,
    /// What the event says, or why it could not be read (naming what is wrong with it).
    pub reading: std::result::Result<Reading, String>,
}

/// A queue of a provider's events that supervisors read (`[events.NAME]`): AWS EventBridge
/// events delivered to an SQS queue, ...
///
/// Several supervisors may read one source; each event reaches one of them, which hands it to
/// the job's holder through the database. An event is acknowledged once it is matched (or
/// known to match nothing): one not acknowledged comes back later (the queue's visibility
/// timeout), or goes to the queue's redrive target.
#[async_trait::async_trait]
pub trait EventSource: Send + Sync + std::fmt::Debug + 'static {
    /// The next events, waiting for them up to the source's long-poll time (SQS: 20 s);
    /// empty when none came.
    async fn receive(&self) -> crate::Result<Vec<Delivery>>;

    /// Acknowledges handled events (SQS: deletes the messages).
    async fn acknowledge(&self, receipts: &[String]) -> crate::Result<()>;
}

/// Notifications a provider account's service sends to tether over HTTP (Databricks job
/// notifications, to `POST /v1/events/databricks/{account}`).
pub trait Webhook: Send + Sync + std::fmt::Debug {
    /// Whether a request with this `Authorization` header (if any) comes from the service:
    /// the secret the account's configuration names. A request that fails is refused (401)
    /// and read no further.
    fn authentic(&self, authorization: Option<&str>) -> bool;

    /// What one notification's body says, or why it cannot be read.
    fn read(&self, body: &[u8]) -> std::result::Result<Reading, String>;
}
