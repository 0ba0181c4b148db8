//! The edge catalog: what each service documents about its own hard edges, as data the engine
//! reads and the documentation renders (`docs/src/providers/edges.md`, written from these tables).
//!
//! Every provider kind has one [`Edges`] value, kept beside its adapter. Two of its figures
//! steer the engine through the account's settings (where an account may override them):
//!
//! - [`Edges::visible_after_create`]: how long a job the service just created may be answered
//!   "not found" (an eventually consistent read, a task not yet indexed). Within it, counted
//!   from when tether recorded the handle, a "not found" is not an end: tether keeps polling.
//!   After it, a job the service never reported is `lost` (it was never made, so a later try
//!   may submit again).
//! - [`Edges::forgotten_after`]: how long the service keeps an ended job visible. A job it
//!   reported once and then no longer knows was forgotten, not lost: its outcome is unknown,
//!   and a retry must not submit it again unless a person (or the account) says so.
//!
//! The [`Edge`] entries are the rest of the catalog, each with the document it comes from:
//! idempotency scopes and lifetimes, name rules, filter restrictions, page limits, the errors
//! after which a request may have been processed, throttling codes.

use std::time::Duration;

/// One documented behaviour of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// What it is about.
    pub topic: Topic,
    /// What the service does, in its documentation's terms.
    pub says: &'static str,
    /// What tether does about it.
    pub tether: &'static str,
    /// Where it is documented: a page, or an API model file and its shape.
    pub source: &'static str,
}

/// What an [`Edge`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Topic {
    /// Consistency after create: when a new job can be read or listed.
    Consistency,
    /// Retention: how long ended jobs stay visible.
    Retention,
    /// The idempotency token's or name's scope and lifetime.
    Idempotency,
    /// Name rules and reuse windows.
    Names,
    /// Restrictions of list filters.
    Filters,
    /// Page and batch limits.
    Limits,
    /// Errors after which the request may have been processed.
    MayHaveRun,
    /// Throttling answers.
    Throttling,
    /// Anything else that changes what tether must do.
    Other,
}

impl Topic {
    /// The heading the documentation uses.
    pub fn title(self) -> &'static str {
        match self {
            Topic::Consistency => "consistency after create",
            Topic::Retention => "retention of ended jobs",
            Topic::Idempotency => "idempotency",
            Topic::Names => "names",
            Topic::Filters => "list filters",
            Topic::Limits => "page and batch limits",
            Topic::MayHaveRun => "errors after which the request may have run",
            Topic::Throttling => "throttling",
            Topic::Other => "other",
        }
    }
}

/// A kind's edge catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edges {
    /// The kind (`ecs`, `databricks`, ...).
    pub kind: &'static str,
    /// How long a job just created may be answered "not found" before that means it was
    /// never made (the default of the account's `not_found_grace`).
    pub visible_after_create: Duration,
    /// How long the service keeps an ended job visible, where it documents a bound (the
    /// default of the account's `forgotten_after`); `None`: kept until deleted, or no bound
    /// documented.
    pub forgotten_after: Option<Duration>,
    /// The documented behaviours, with their sources.
    pub entries: &'static [Edge],
}

impl Edges {
    /// Renders the catalog as a Markdown section (the documentation's `docs/src/providers/edges.md` is made
    /// of these, one per kind).
    pub fn markdown(&self) -> String {
        let mut out = format!("## `{}`\n\n", self.kind);
        out.push_str(&format!(
            "- a new job may read \"not found\" for: {} (`not_found_grace`)\n",
            human(self.visible_after_create)
        ));
        out.push_str(&format!(
            "- ended jobs stay visible for: {} (`forgotten_after`)\n\n",
            self.forgotten_after
                .map_or_else(|| "no bound documented".to_string(), human)
        ));
        out.push_str("| topic | the service | tether | source |\n|---|---|---|---|\n");
        let mut entries: Vec<&Edge> = self.entries.iter().collect();
        entries.sort_by_key(|e| e.topic);
        for e in entries {
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                e.topic.title(),
                cell(e.says),
                cell(e.tether),
                cell(e.source)
            ));
        }
        out.push('\n');
        out
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// `90 days`, `1 hour`, `5 minutes`, `30 s`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = if s >= 86_400 && s.is_multiple_of(86_400) {
        (s / 86_400, "day")
    } else if s >= 3600 && s.is_multiple_of(3600) {
        (s / 3600, "hour")
    } else if s >= 60 && s.is_multiple_of(60) {
        (s / 60, "minute")
    } else {
        return format!("{s} s");
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// A day, for the tables.
pub const DAY: Duration = Duration::from_secs(86_400);
/// An hour, for the tables.
pub const HOUR: Duration = Duration::from_secs(3600);
/// A minute, for the tables.
pub const MINUTE: Duration = Duration::from_secs(60);

/// The grace after create where a service documents none: two minutes, far longer than any
/// read-after-write lag reported of these APIs, and short enough that a job truly never made
/// is resubmitted by the next try.
pub const UNDOCUMENTED_GRACE: Duration = Duration::from_secs(120);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human(90 * DAY), "90 days");
        assert_eq!(human(HOUR), "1 hour");
        assert_eq!(human(5 * MINUTE), "5 minutes");
        assert_eq!(human(Duration::from_secs(45)), "45 s");
    }

    #[test]
    fn markdown_escapes_cells() {
        const E: Edges = Edges {
            kind: "x",
            visible_after_create: MINUTE,
            forgotten_after: None,
            entries: &[Edge {
                topic: Topic::Other,
                says: "a | b",
                tether: "t",
                source: "s",
            }],
        };
        let md = E.markdown();
        assert!(md.contains("a \\| b"), "{md}");
        assert!(md.contains("no bound documented"), "{md}");
    }
}
