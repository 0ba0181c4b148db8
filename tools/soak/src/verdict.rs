//! The soak's verdict: every job the API named, read from the database when all is quiet,
//! against what the simulators did — how many remote jobs each idempotency key made, and how
//! each remote job ended.

use std::collections::BTreeMap;

use tether_provider::registry::SimJobState;
use tether_provider::JobState;

use tether::jobs::{JobRecord, Phase};

/// What the soak counts at the end (the ones that must be 0 are said so in [`super`]).
#[derive(Debug, Default)]
pub struct Verdict {
    /// Remote jobs the simulators made.
    pub submissions: u64,
    /// Remote jobs beyond the first for one idempotency key.
    pub duplicates: u64,
    /// Jobs whose record is not finished, that never got a remote job, or whose recorded end
    /// is not the remote job's.
    pub lost: u64,
    /// Jobs recorded "outcome unknown": their remote job was forgotten before tether read its
    /// end (the soak's retention outlasts its outages, so none may be).
    pub outcome_unknown: u64,
    /// Remote jobs cancelled that nobody asked to cancel.
    pub unasked_cancels: u64,
    /// Cancels asked for (and recorded) that tether never sent, and whose remote job ran to
    /// its end.
    pub unsent_cancels: u64,
    /// Cancels sent only after the remote job had ended by itself: the soak cancels a job a
    /// few seconds into a run of a minute, so this is a cancel delayed by most of a minute.
    pub late_cancels: u64,
    /// The longest time from a cancel's request to its sending, in seconds.
    pub slowest_cancel: f64,
    /// Jobs whose generation is not 1 (tether submitted anew).
    pub new_generations: u64,
    /// Cancels asked for and recorded.
    pub asked_cancels: u64,
    /// One line per job that broke a promise.
    pub problems: Vec<String>,
}

/// How a remote job ended, as the simulator of its provider (named as its kind) reports it.
fn remote_end(record: &JobRecord, sims: &crate::Sims) -> Option<JobState> {
    let handle = record.handle.as_ref()?;
    let (_, sim) = sims.iter().find(|(kind, _)| *kind == record.provider)?;
    Some(match sim.job_state(handle)? {
        SimJobState::Running => JobState::Running,
        SimJobState::Succeeded => JobState::Succeeded,
        SimJobState::Failed => JobState::Failed,
        SimJobState::Cancelled => JobState::Cancelled,
    })
}

/// Judges the final records against the simulators.
pub fn judge(records: &[JobRecord], sims: &crate::Sims) -> Verdict {
    let mut v = Verdict::default();
    let mut by_key: BTreeMap<String, u64> = BTreeMap::new();
    for (_, sim) in sims {
        by_key.extend(sim.jobs_by_key());
    }
    v.submissions = by_key.values().sum();
    for (key, made) in &by_key {
        if *made > 1 {
            v.duplicates += made - 1;
            v.problems.push(format!("key {key}: {made} remote jobs"));
        }
    }
    for job in records {
        let name = format!(
            "job {} ({} {})",
            job.id, job.provider, job.task_instance.task_id
        );
        let asked = job.cancel_requested_at.is_some();
        v.asked_cancels += u64::from(asked);
        if job.generation != 1 {
            v.new_generations += 1;
            v.problems
                .push(format!("{name}: generation {}", job.generation));
        }
        if job.phase != Phase::Terminal {
            v.lost += 1;
            v.problems.push(format!(
                "{name}: still {} ({})",
                job.phase.as_str(),
                job.state
            ));
            continue;
        }
        if job.state == JobState::OutcomeUnknown {
            v.outcome_unknown += 1;
            v.problems
                .push(format!("{name}: outcome unknown ({:?})", job.message));
            continue;
        }
        let Some(remote) = remote_end(job, sims) else {
            v.lost += 1;
            v.problems.push(format!(
                "{name}: ended {} without a remote job ({:?})",
                job.state, job.message
            ));
            continue;
        };
        if remote != job.state {
            v.lost += 1;
            v.problems.push(format!(
                "{name}: recorded {} but the remote job is {remote}",
                job.state
            ));
        }
        if remote == JobState::Cancelled && !asked {
            v.unasked_cancels += 1;
            v.problems
                .push(format!("{name}: cancelled at the provider, never asked"));
        }
        if let (Some(asked_at), Some(sent_at)) = (job.cancel_requested_at, job.cancel_sent_at) {
            let took = (sent_at - asked_at).num_milliseconds() as f64 / 1000.0;
            v.slowest_cancel = v.slowest_cancel.max(took);
        }
        if asked && remote != JobState::Cancelled {
            if job.cancel_sent_at.is_some() {
                v.late_cancels += 1;
                v.problems.push(format!(
                    "{name}: a cancel was asked and sent only after the remote job ended {remote}"
                ));
            } else {
                v.unsent_cancels += 1;
                v.problems.push(format!(
                    "{name}: a cancel was asked, never sent, and the remote job ended {remote}"
                ));
            }
        }
    }
    v
}
