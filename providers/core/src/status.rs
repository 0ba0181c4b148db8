//! Normalised job states.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The state of a remote job, as tether sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Accepted, not started (queued, pending, waiting for a cluster).
    Pending,
    /// Running (or in a state tether does not know: never reported as success).
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished unsuccessfully.
    Failed,
    /// Cancelled.
    Cancelled,
    /// The provider never reported the job and does not know it past the time it may take to
    /// show a new one (`not_found_grace`): it was never made, or made elsewhere (a wrong
    /// workspace). A later try submits it again.
    Lost,
    /// The provider reported the job once and no longer knows it: it aged out of the
    /// service's retention (or was deleted) before tether read its end. Whether it succeeded
    /// is unknown; no retry submits it again until a person settles it
    /// (`tether jobs resolve`), unless the account says `on_forgotten = "resubmit"`.
    OutcomeUnknown,
    /// The provider could not be asked for a while; tether keeps polling.
    Unknown,
}

impl JobState {
    /// Whether the job will not change state again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded
                | JobState::Failed
                | JobState::Cancelled
                | JobState::Lost
                | JobState::OutcomeUnknown
        )
    }

    /// The name stored in the database and printed to users.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Lost => "lost",
            JobState::OutcomeUnknown => "outcome_unknown",
            JobState::Unknown => "unknown",
        }
    }

    /// Every state's name, for messages that list them.
    pub const NAMES: &'static str =
        "pending, running, succeeded, failed, cancelled, lost, outcome_unknown, unknown";

    /// The inverse of [`JobState::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => JobState::Pending,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            "lost" => JobState::Lost,
            "outcome_unknown" => JobState::OutcomeUnknown,
            "unknown" => JobState::Unknown,
            _ => return None,
        })
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a provider said about a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteStatus {
    /// The normalised state.
    pub state: JobState,
    /// The provider's own state, verbatim (e.g. `TERMINATED/FAILED`).
    pub raw_state: String,
    /// The provider's message, if any.
    pub message: Option<String>,
    /// A link to the job in the provider's UI.
    pub url: Option<String>,
    /// How soon the provider suggests asking again, if it says.
    pub next_poll_hint: Option<Duration>,
}

impl RemoteStatus {
    /// A status with the provider's own state and message, no link and no poll hint.
    pub fn new(state: JobState, raw_state: impl Into<String>, message: Option<String>) -> Self {
        Self {
            state,
            raw_state: raw_state.into(),
            message,
            url: None,
            next_poll_hint: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::JobState;

    #[test]
    fn names_round_trip_and_are_listed() {
        let all = [
            JobState::Pending,
            JobState::Running,
            JobState::Succeeded,
            JobState::Failed,
            JobState::Cancelled,
            JobState::Lost,
            JobState::OutcomeUnknown,
            JobState::Unknown,
        ];
        for state in all {
            assert_eq!(JobState::parse(state.as_str()), Some(state));
            assert!(JobState::NAMES.split(", ").any(|n| n == state.as_str()));
        }
        assert_eq!(JobState::NAMES.split(", ").count(), all.len());
        assert!(JobState::OutcomeUnknown.is_terminal());
        assert_eq!(JobState::parse("outcome unknown"), None);
    }
}
