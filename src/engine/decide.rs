//! The decision table of [`super::ensure`] as a pure function: what to do when a task asks for
//! its job, from the latest record of (task instance, job name) and the request alone. The
//! executor in `ensure` carries the decision out against the database and the provider; this
//! module reads nothing and changes nothing, so every row is tested without either.

use tether_provider::JobState;

use crate::jobs::Phase;
use crate::model::job::JobRecord;

/// What `decide` reads of the latest record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts<'a> {
    /// Where the job is in tether's protocol.
    pub phase: Phase,
    /// Its normalised state.
    pub state: JobState,
    /// Whether its handle is recorded.
    pub has_handle: bool,
    /// Whether a cancel was asked for.
    pub cancel_requested: bool,
    /// The try that submitted it.
    pub try_number: i64,
    /// The try it belongs to now ([`JobRecord::owner_try`]).
    pub owner_try: i64,
    /// The try that took its result, if one did.
    pub consumed_try: Option<i64>,
    /// Its spec's hash.
    pub spec_hash: &'a str,
    /// Its configured provider.
    pub provider: &'a str,
}

impl<'a> Facts<'a> {
    /// The facts of a record.
    pub fn of(job: &'a JobRecord) -> Self {
        Facts {
            phase: job.phase,
            state: job.state,
            has_handle: job.handle.is_some(),
            cancel_requested: job.cancel_requested_at.is_some(),
            try_number: job.try_number,
            owner_try: job.owner_try(),
            consumed_try: job.consumed_try,
            spec_hash: &job.spec_hash,
            provider: &job.provider,
        }
    }

    /// A refused submission: ended failed without a handle ([`JobRecord::refused`]).
    fn refused(&self) -> bool {
        self.phase == Phase::Terminal && self.state == JobState::Failed && !self.has_handle
    }
}

/// What the task asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asked<'a> {
    /// Its try number.
    pub try_number: i64,
    /// The hash of the spec it asks with.
    pub spec_hash: &'a str,
    /// The configured provider it names.
    pub provider: &'a str,
    /// Whether that provider repairs a failed job in place (`on_retry = "repair"`).
    pub repairs: bool,
}

/// What `ensure` does: one row of the decision table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing is recorded: submit generation 1.
    SubmitFirst,
    /// An intent without a handle: wait for its submitter, or reconcile with `find`.
    ResolveSubmitting,
    /// A job not finished: reattach, whatever the try; `spec_changed` when it runs with
    /// another spec or provider than asked (then `on_spec_change` says reattach or refuse).
    Reattach {
        /// The running job's spec or provider differs from the request's.
        spec_changed: bool,
    },
    /// A job not finished whose cancel was asked, asked for by a later try than its owner:
    /// once the cancel has reached the provider, submit generation + 1.
    RerunAfterCancel,
    /// A refused submission (nothing was made), asked for by the same or a later try: submit
    /// again on the same record, with the next attempt's key.
    RetryRefused,
    /// Submit generation + 1; `repair` when the failed job is repaired in place instead.
    Rerun {
        /// Repair the failed generation rather than submit a new job.
        repair: bool,
    },
    /// Report the recorded result; submit nothing.
    Report,
}

/// The decision table (see [`super::ensure`]'s documentation, row by row).
pub fn decide(latest: Option<&Facts<'_>>, asked: &Asked<'_>) -> Decision {
    let Some(job) = latest else {
        return Decision::SubmitFirst;
    };
    if job.phase == Phase::Submitting {
        return Decision::ResolveSubmitting;
    }
    let same_spec = job.spec_hash == asked.spec_hash && job.provider == asked.provider;
    let later_try = asked.try_number > job.owner_try;
    if !job.state.is_terminal() {
        return if job.cancel_requested && later_try {
            Decision::RerunAfterCancel
        } else {
            Decision::Reattach {
                spec_changed: !same_spec,
            }
        };
    }
    if job.refused() && asked.try_number >= job.try_number {
        return Decision::RetryRefused;
    }
    let rerun = match job.state {
        // A success is run again only after a try took its result (its task completed:
        // Airflow's clear); one nobody took ended while its try was gone (an eviction).
        JobState::Succeeded => job.consumed_try.is_some_and(|t| asked.try_number > t),
        // The service forgot the job before tether read its end: running it again is a
        // person's call (`tether jobs resolve`), never a retry's.
        JobState::OutcomeUnknown => false,
        _ => later_try,
    };
    if !rerun {
        return Decision::Report;
    }
    Decision::Rerun {
        repair: job.state == JobState::Failed && asked.repairs && same_spec,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "spec-a";
    const PROVIDER: &str = "databricks";

    fn job(phase: Phase, state: JobState) -> Facts<'static> {
        Facts {
            phase,
            state,
            has_handle: true,
            cancel_requested: false,
            try_number: 1,
            owner_try: 1,
            consumed_try: None,
            spec_hash: SPEC,
            provider: PROVIDER,
        }
    }

    fn active(state: JobState) -> Facts<'static> {
        job(Phase::Active, state)
    }

    fn ended(state: JobState) -> Facts<'static> {
        job(Phase::Terminal, state)
    }

    fn asked(try_number: i64) -> Asked<'static> {
        Asked {
            try_number,
            spec_hash: SPEC,
            provider: PROVIDER,
            repairs: false,
        }
    }

    /// One case per row of the table in `ensure.rs`'s documentation, named by the row's
    /// first cell; [`the_documented_table_has_a_case_per_row`] holds the two together.
    fn cases() -> Vec<(
        &'static str,
        Option<Facts<'static>>,
        Asked<'static>,
        Decision,
    )> {
        use Decision::*;
        use JobState::*;
        let refused = Facts {
            has_handle: false,
            ..ended(Failed)
        };
        let cancelled_by_try_1 = Facts {
            cancel_requested: true,
            ..active(Running)
        };
        let consumed = Facts {
            consumed_try: Some(1),
            ..ended(Succeeded)
        };
        let changed = Asked {
            spec_hash: "spec-b",
            ..asked(2)
        };
        let repairing = Asked {
            repairs: true,
            ..asked(2)
        };
        vec![
            ("nothing", None, asked(1), SubmitFirst),
            (
                "an intent without a handle",
                Some(job(Phase::Submitting, Pending)),
                asked(2),
                ResolveSubmitting,
            ),
            (
                "a job that is not finished",
                Some(active(Running)),
                asked(3),
                Reattach {
                    spec_changed: false,
                },
            ),
            (
                "a job not finished whose cancel its try asked for, asked by a later try",
                Some(cancelled_by_try_1),
                asked(2),
                RerunAfterCancel,
            ),
            (
                "a job that succeeded, its result not consumed",
                Some(ended(Succeeded)),
                asked(2),
                Report,
            ),
            (
                "a job that succeeded, consumed by try N, asked by a later try",
                Some(consumed),
                asked(2),
                Rerun { repair: false },
            ),
            (
                "a refused submission",
                Some(refused),
                asked(1),
                RetryRefused,
            ),
            (
                "a failed / cancelled / lost job, asked by a later try than the one it belongs to",
                Some(ended(Cancelled)),
                asked(2),
                Rerun { repair: false },
            ),
            (
                "a job whose outcome is unknown",
                Some(ended(OutcomeUnknown)),
                asked(5),
                Report,
            ),
            (
                "the same, failed, with the same spec, on a provider that repairs",
                Some(ended(Failed)),
                repairing,
                Rerun { repair: true },
            ),
            (
                "a terminal job, asked by the same (or an earlier) try",
                Some(ended(Failed)),
                asked(1),
                Report,
            ),
            (
                "a running job whose spec differs from the one asked for",
                Some(active(Running)),
                changed,
                Reattach { spec_changed: true },
            ),
        ]
    }

    #[test]
    fn each_row_of_the_documented_table_decides_as_documented() {
        for (row, latest, request, expected) in cases() {
            assert_eq!(decide(latest.as_ref(), &request), expected, "row: {row}");
        }
    }

    /// The first cells of the table in `ensure.rs`'s module documentation.
    fn documented_rows() -> Vec<String> {
        include_str!("ensure.rs")
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .filter_map(|l| l.strip_prefix("//! | "))
            .filter(|l| !l.starts_with("what is recorded") && !l.starts_with('-'))
            .map(|l| l.split(" | ").next().unwrap_or("").trim().to_string())
            .collect()
    }

    #[test]
    fn the_documented_table_has_a_case_per_row() {
        let rows = documented_rows();
        assert_eq!(rows.len(), 12, "{rows:#?}");
        let cases: Vec<&str> = cases().iter().map(|c| c.0).collect();
        for row in &rows {
            assert!(
                cases.iter().any(|c| row.starts_with(c)),
                "documented row without a case: {row}"
            );
        }
        for case in &cases {
            assert!(
                rows.iter().any(|r| r.starts_with(case)),
                "case without a documented row: {case}"
            );
        }
    }

    /// The rows' conditions, each written from the table's text on its own: for every input,
    /// exactly one holds, and `decide` gives its decision.
    fn rows_holding(latest: Option<&Facts<'_>>, a: &Asked<'_>) -> Vec<(&'static str, Decision)> {
        use Decision::*;
        let Some(j) = latest else {
            return vec![("nothing", SubmitFirst)];
        };
        if j.phase == Phase::Submitting {
            return vec![("intent without a handle", ResolveSubmitting)];
        }
        let same = j.spec_hash == a.spec_hash && j.provider == a.provider;
        let later = a.try_number > j.owner_try;
        let finished = j.state.is_terminal();
        let on_its_way_out = j.cancel_requested && later;
        let reattaching = !finished && !on_its_way_out;
        let refused = j.phase == Phase::Terminal && j.state == JobState::Failed && !j.has_handle;
        let mut rows = Vec::new();
        let mut row = |holds: bool, name: &'static str, d: Decision| {
            if holds {
                rows.push((name, d));
            }
        };
        row(
            reattaching && same,
            "not finished",
            Reattach {
                spec_changed: false,
            },
        );
        row(
            reattaching && !same,
            "running with another spec",
            Reattach { spec_changed: true },
        );
        row(
            !finished && on_its_way_out,
            "cancel asked, later try",
            RerunAfterCancel,
        );
        row(
            refused && a.try_number >= j.try_number,
            "refused",
            RetryRefused,
        );
        let not_refused_row = finished && !(refused && a.try_number >= j.try_number);
        let taken = j.consumed_try.is_some_and(|t| a.try_number > t);
        row(
            not_refused_row && j.state == JobState::Succeeded && !taken,
            "succeeded, not consumed (or by this or a later try)",
            Report,
        );
        row(
            not_refused_row && j.state == JobState::Succeeded && taken,
            "succeeded, consumed, later try",
            Rerun { repair: false },
        );
        row(
            not_refused_row && j.state == JobState::OutcomeUnknown,
            "outcome unknown",
            Report,
        );
        let ended_badly = matches!(
            j.state,
            JobState::Failed | JobState::Cancelled | JobState::Lost
        );
        let repair = j.state == JobState::Failed && a.repairs && same;
        row(
            not_refused_row && ended_badly && later && repair,
            "failed, same spec, repairs",
            Rerun { repair: true },
        );
        row(
            not_refused_row && ended_badly && later && !repair,
            "failed / cancelled / lost, later try",
            Rerun { repair: false },
        );
        row(
            not_refused_row && ended_badly && !later,
            "terminal, same or earlier try",
            Report,
        );
        rows
    }

    #[test]
    fn every_input_reaches_exactly_one_row() {
        use JobState::*;
        let phases = [Phase::Submitting, Phase::Active, Phase::Terminal];
        let states = [
            Pending,
            Running,
            Unknown,
            Succeeded,
            Failed,
            Cancelled,
            Lost,
            OutcomeUnknown,
        ];
        let mut inputs = 0;
        for phase in phases {
            for state in states {
                for flags in 0..8u8 {
                    for (try_number, attached) in [(1, 1), (1, 2), (2, 2), (2, 3)] {
                        for consumed in [None, Some(1), Some(2), Some(3)] {
                            for asked_try in 1..=4 {
                                for spec in ["spec-a", "spec-b"] {
                                    for provider in [PROVIDER, "other"] {
                                        for repairs in [false, true] {
                                            let latest = Facts {
                                                phase,
                                                state,
                                                has_handle: flags & 1 != 0,
                                                cancel_requested: flags & 2 != 0,
                                                try_number,
                                                owner_try: attached,
                                                consumed_try: consumed,
                                                spec_hash: if flags & 4 != 0 { SPEC } else { "x" },
                                                provider: PROVIDER,
                                            };
                                            let a = Asked {
                                                try_number: asked_try,
                                                spec_hash: spec,
                                                provider,
                                                repairs,
                                            };
                                            let rows = rows_holding(Some(&latest), &a);
                                            assert_eq!(rows.len(), 1, "{latest:?} {a:?}: {rows:?}");
                                            assert_eq!(
                                                decide(Some(&latest), &a),
                                                rows[0].1,
                                                "{latest:?} {a:?}: row {}",
                                                rows[0].0
                                            );
                                            inputs += 1;
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(rows_holding(None, &asked(1)).len(), 1);
        assert_eq!(inputs, 3 * 8 * 8 * 4 * 4 * 4 * 2 * 2 * 2);
    }
}
