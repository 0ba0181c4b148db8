//! Settings every provider has, read from its `[providers.NAME]` table, and the neutral form
//! that table reaches a provider in.
//!
//! A provider never sees the configuration file's format: tether turns its
//! `[providers.NAME]` table into a [`Table`] of [`Setting`]s. Each adapter's `config.rs` takes
//! the common keys out of it with [`CommonSettings::take_from`], reads its own with the same
//! [`Problems`] collector, and reports whatever is left as unknown.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::edges::Edges;
use crate::problems::{parse_duration, Problems};

/// A provider's settings, by key, as the configuration gave them.
pub type Table = BTreeMap<String, Setting>;

/// One value of a provider's settings.
#[derive(Debug, Clone, PartialEq)]
pub enum Setting {
    /// Text.
    String(String),
    /// A whole number.
    Integer(i64),
    /// A number with a fraction.
    Float(f64),
    /// `true` or `false`.
    Boolean(bool),
    /// A date or time, as written.
    Datetime(String),
    /// A list.
    List(Vec<Setting>),
    /// A nested table.
    Table(Table),
}

impl Setting {
    /// What kind of value it is, for messages (`string`, `integer`, ...).
    pub fn type_str(&self) -> &'static str {
        match self {
            Setting::String(_) => "string",
            Setting::Integer(_) => "integer",
            Setting::Float(_) => "float",
            Setting::Boolean(_) => "boolean",
            Setting::Datetime(_) => "datetime",
            Setting::List(_) => "array",
            Setting::Table(_) => "table",
        }
    }
}

/// As a configuration file writes it: strings quoted, lists in brackets.
impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Setting::String(s) => write!(f, "{s:?}"),
            Setting::Integer(i) => write!(f, "{i}"),
            Setting::Float(x) => write!(f, "{x}"),
            Setting::Boolean(b) => write!(f, "{b}"),
            Setting::Datetime(d) => write!(f, "{d}"),
            Setting::List(items) => {
                let items: Vec<String> = items.iter().map(ToString::to_string).collect();
                write!(f, "[{}]", items.join(", "))
            }
            Setting::Table(t) => {
                let items: Vec<String> = t.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                write!(f, "{{ {} }}", items.join(", "))
            }
        }
    }
}

impl From<&str> for Setting {
    fn from(s: &str) -> Self {
        Setting::String(s.to_string())
    }
}

impl From<String> for Setting {
    fn from(s: String) -> Self {
        Setting::String(s)
    }
}

/// A table as a TOML file gave it, in the form providers read (no TOML types).
pub fn from_toml(table: toml::Table) -> Table {
    table
        .into_iter()
        .map(|(k, v)| (k, from_toml_value(v)))
        .collect()
}

fn from_toml_value(value: toml::Value) -> Setting {
    match value {
        toml::Value::String(s) => Setting::String(s),
        toml::Value::Integer(i) => Setting::Integer(i),
        toml::Value::Float(f) => Setting::Float(f),
        toml::Value::Boolean(b) => Setting::Boolean(b),
        toml::Value::Datetime(d) => Setting::Datetime(d.to_string()),
        toml::Value::Array(items) => {
            Setting::List(items.into_iter().map(from_toml_value).collect())
        }
        toml::Value::Table(t) => Setting::Table(from_toml(t)),
    }
}

/// How often a job is polled.
#[derive(Debug, Clone, PartialEq)]
pub struct PollSettings {
    /// The first delay, and the delay after every state change.
    pub initial: Duration,
    /// The longest delay while nothing changes.
    pub max: Duration,
    /// Growth of the delay per unchanged poll.
    pub multiplier: f64,
}

impl Default for PollSettings {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(60),
            multiplier: 2.0,
        }
    }
}

/// Settings shared by all providers.
#[derive(Debug, Clone, PartialEq)]
pub struct CommonSettings {
    /// Polling backoff.
    pub poll: PollSettings,
    /// Calls per second to this account.
    pub rate_per_second: f64,
    /// Calls allowed at once before the rate applies.
    pub rate_burst: u32,
    /// Failed polls in a row after which a job is marked `unknown` (it keeps being polled).
    pub unknown_after: u32,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// Retries of one call on transient failures.
    pub max_retries: u32,
    /// Poll many jobs through the provider's list calls where it has them (`coalesce`).
    pub coalesce: bool,
    /// How often a supervisor sweeps every active job of this account it holds through the
    /// list calls (`sweep_every`), whatever each job's own polling cadence: the latency target
    /// of a coalescing account. A sweep costs about one call per page of active jobs however
    /// many are due, so this, not the per-job cadence, sets what detection costs. `None`:
    /// sweeps follow the jobs' own cadence.
    pub sweep_every: Option<Duration>,
    /// The longest delay between polls of a job of an account whose service tells tether of
    /// its jobs' ends (provider events: an `[events.NAME]` source names the account, or it
    /// takes notifications), when longer than `poll_max` (`poll_max_with_events`): polling is
    /// then the safety net for a lost event. Never more than half of `forgotten_after`.
    pub poll_max_with_events: Duration,
    /// How long after tether recorded a job's handle a "not found" from the service is read as
    /// "not visible yet" rather than "never made" (`not_found_grace`; the kind's
    /// [`Edges::visible_after_create`] by default).
    pub not_found_grace: Duration,
    /// How long the service keeps an ended job visible (`forgotten_after`; the kind's
    /// [`Edges::forgotten_after`] by default): what a job forgotten after it was seen is
    /// reported against.
    pub forgotten_after: Option<Duration>,
    /// What becomes of a job the service reported once and then forgot (`on_forgotten`).
    pub on_forgotten: OnForgotten,
}

/// What becomes of a job the service reported once and then no longer knows (it aged out of
/// the service's retention while tether could not poll it, or was deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnForgotten {
    /// Its final state is `outcome_unknown`: no retry submits it again until a person settles
    /// it (`tether jobs resolve`).
    #[default]
    OutcomeUnknown,
    /// It is `lost`, and the next try submits it again (the account says re-running a job
    /// whose outcome is unknown is safe).
    Resubmit,
}

impl Default for CommonSettings {
    fn default() -> Self {
        Self {
            poll: PollSettings::default(),
            rate_per_second: 10.0,
            rate_burst: 20,
            unknown_after: 10,
            request_timeout: Duration::from_secs(30),
            max_retries: 4,
            coalesce: true,
            sweep_every: None,
            poll_max_with_events: Duration::from_secs(300),
            not_found_grace: crate::edges::UNDOCUMENTED_GRACE,
            forgotten_after: None,
            on_forgotten: OnForgotten::OutcomeUnknown,
        }
    }
}

impl CommonSettings {
    /// The keys [`CommonSettings::take_from`] takes out of an account's table.
    pub const KEYS: &'static [&'static str] = &[
        "poll_initial",
        "poll_max",
        "poll_multiplier",
        "rate_limit_per_second",
        "rate_limit_burst",
        "unknown_after",
        "request_timeout",
        "max_retries",
        "coalesce",
        "sweep_every",
        "poll_max_with_events",
        "not_found_grace",
        "forgotten_after",
        "on_forgotten",
    ];

    /// Takes the common keys ([`CommonSettings::KEYS`]) out of `table`, recording each bad
    /// one in `problems`; what the table leaves out of `not_found_grace` and
    /// `forgotten_after` comes from the kind's edge catalog.
    pub fn take_from(table: &mut Table, problems: &mut Problems, edges: &Edges) -> Self {
        let mut s = Self {
            not_found_grace: edges.visible_after_create,
            forgotten_after: edges.forgotten_after,
            ..Self::default()
        };
        let p = problems;
        if let Some(d) = p.duration(table, "poll_initial") {
            s.poll.initial = d;
        }
        if let Some(d) = p.duration(table, "poll_max") {
            s.poll.max = d;
        }
        if let Some(m) = p.float(table, "poll_multiplier") {
            if m < 1.0 {
                p.at("poll_multiplier", format!("{m} is below 1"));
            } else {
                s.poll.multiplier = m;
            }
        }
        if s.poll.max < s.poll.initial {
            p.at("poll_max", "is shorter than poll_initial");
        }
        if let Some(r) = p.float(table, "rate_limit_per_second") {
            if r <= 0.0 {
                p.at("rate_limit_per_second", "must be above 0");
            } else {
                s.rate_per_second = r;
            }
        }
        if let Some(n) = p.whole(table, "rate_limit_burst") {
            s.rate_burst = n.max(1);
        }
        if let Some(n) = p.whole(table, "unknown_after") {
            s.unknown_after = n.max(1);
        }
        if let Some(d) = p.duration(table, "request_timeout") {
            s.request_timeout = d;
        }
        if let Some(n) = p.whole(table, "max_retries") {
            s.max_retries = n;
        }
        if let Some(b) = p.boolean(table, "coalesce") {
            s.coalesce = b;
        }
        if let Some(d) = p.duration(table, "poll_max_with_events") {
            s.poll_max_with_events = d;
        }
        if let Some(d) = p.duration(table, "sweep_every") {
            if d.is_zero() {
                p.at("sweep_every", "must be above 0");
            } else if !s.coalesce {
                p.at(
                    "sweep_every",
                    "sweeps need coalesce = true (this account polls each job singly)",
                );
            } else {
                s.sweep_every = Some(d);
            }
        }
        if let Some(d) = p.duration(table, "not_found_grace") {
            s.not_found_grace = d;
        }
        match p.string(table, "forgotten_after").as_deref() {
            None => {}
            Some("never") => s.forgotten_after = None,
            Some(text) => match parse_duration(text) {
                Ok(d) if !d.is_zero() => s.forgotten_after = Some(d),
                _ => p.at(
                    "forgotten_after",
                    format!("{text:?} is neither a duration such as 10m or 7d nor \"never\""),
                ),
            },
        }
        match p.string(table, "on_forgotten").as_deref() {
            None => {}
            Some("outcome_unknown") => s.on_forgotten = OnForgotten::OutcomeUnknown,
            Some("resubmit") => s.on_forgotten = OnForgotten::Resubmit,
            Some(other) => p.at(
                "on_forgotten",
                format!("{other:?} is neither \"outcome_unknown\" nor \"resubmit\""),
            ),
        }
        s
    }

    /// How this account's jobs are polled when its service tells tether of their ends (see
    /// [`CommonSettings::poll_max_with_events`]): `poll_max` lengthened to
    /// `poll_max_with_events`, but never beyond half of `forgotten_after` (a lost event must
    /// still be caught before the service forgets the job) nor below `poll_max`. Where that
    /// lengthens it, a job's delay at least doubles at each poll that finds its state
    /// unchanged, whatever `poll_multiplier` says: with a fixed cadence (multiplier 1) the
    /// delay never grew toward the longer bound, every job stayed due at `poll_initial`
    /// while the account's sweeps were paced at the bound, and the single polls of the jobs
    /// between them took the whole rate limit (an AWS Batch account with events in
    /// `tether-bench --latency`: ends heard of by an event were recorded a minute late).
    pub fn poll_with_events(&self) -> PollSettings {
        let mut max = self.poll_max_with_events.max(self.poll.max);
        if let Some(kept) = self.forgotten_after {
            max = max.min(kept / 2).max(self.poll.max);
        }
        let multiplier = if max > self.poll.max {
            self.poll.multiplier.max(2.0)
        } else {
            self.poll.multiplier
        };
        PollSettings {
            max,
            multiplier,
            ..self.poll.clone()
        }
    }

    /// Why this account's polling may miss the end of a job, if it may: a `poll_max` longer
    /// than half of how long the service keeps ended jobs (a job that ends just after a poll
    /// is then forgotten before the next one reaches it, whenever polls are spaced that far).
    pub fn retention_warning(&self) -> Option<String> {
        let kept = self.forgotten_after?;
        (self.poll.max * 2 > kept).then(|| {
            format!(
                "poll_max ({}) is longer than half of how long the service keeps an ended job \
                 ({}, forgotten_after): a job ending between two polls may be forgotten \
                 before it is read, and end as outcome_unknown",
                crate::edges::human(self.poll.max),
                crate::edges::human(kept)
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With events, polls are spaced up to `poll_max_with_events`, never beyond half the
    /// service's retention, never below `poll_max`.
    #[test]
    fn polling_with_events_is_the_safety_net() {
        let mut s = CommonSettings::default();
        assert_eq!(s.poll_with_events().max, Duration::from_secs(300));
        s.forgotten_after = Some(Duration::from_secs(3600));
        assert_eq!(s.poll_with_events().max, Duration::from_secs(300));
        s.forgotten_after = Some(Duration::from_secs(240));
        assert_eq!(s.poll_with_events().max, Duration::from_secs(120));
        s.forgotten_after = Some(Duration::from_secs(60));
        assert_eq!(s.poll_with_events().max, s.poll.max, "never below poll_max");
        assert_eq!(s.poll_with_events().initial, s.poll.initial);
        // A fixed cadence grows toward the longer bound, and stays fixed without one.
        s.poll.multiplier = 1.0;
        assert_eq!(s.poll_with_events().multiplier, 1.0, "bound not lengthened");
        s.forgotten_after = None;
        assert_eq!(s.poll_with_events().multiplier, 2.0);
        s.poll.multiplier = 3.0;
        assert_eq!(s.poll_with_events().multiplier, 3.0);
    }

    fn make(pairs: &[(&str, Setting)]) -> Table {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    const EDGES: Edges = Edges {
        kind: "test",
        visible_after_create: Duration::from_secs(300),
        forgotten_after: Some(Duration::from_secs(3600)),
        entries: &[],
    };

    #[test]
    fn edges_give_the_defaults_and_a_table_overrides_them() {
        let mut problems = Problems::new("p");
        let s = CommonSettings::take_from(&mut Table::new(), &mut problems, &EDGES);
        assert_eq!(s.not_found_grace, Duration::from_secs(300));
        assert_eq!(s.forgotten_after, Some(Duration::from_secs(3600)));
        assert_eq!(s.on_forgotten, OnForgotten::OutcomeUnknown);
        let mut table = make(&[
            ("not_found_grace", "10s".into()),
            ("forgotten_after", "never".into()),
            ("on_forgotten", "resubmit".into()),
        ]);
        let s = CommonSettings::take_from(&mut table, &mut problems, &EDGES);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(s.not_found_grace, Duration::from_secs(10));
        assert_eq!(s.forgotten_after, None);
        assert_eq!(s.on_forgotten, OnForgotten::Resubmit);
        let mut table = make(&[
            ("forgotten_after", "soon".into()),
            ("on_forgotten", "retry".into()),
        ]);
        CommonSettings::take_from(&mut table, &mut problems, &EDGES);
        let problems = problems.into_lines();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("p.forgotten_after: \"soon\""),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("p.on_forgotten: \"retry\""),
            "{problems:?}"
        );
    }

    #[test]
    fn warns_when_polls_are_spaced_beyond_half_the_retention() {
        let mut s = CommonSettings {
            forgotten_after: Some(Duration::from_secs(600)),
            ..CommonSettings::default()
        };
        s.poll.max = Duration::from_secs(300);
        assert_eq!(s.retention_warning(), None);
        s.poll.max = Duration::from_secs(301);
        let w = s.retention_warning().unwrap();
        assert!(w.contains("10 minutes"), "{w}");
        s.forgotten_after = None;
        assert_eq!(s.retention_warning(), None);
    }

    #[test]
    fn reads_and_checks_common_keys() {
        let mut table = make(&[
            ("poll_initial", "1s".into()),
            ("poll_max", "30s".into()),
            ("rate_limit_per_second", Setting::Integer(2)),
            ("host", "x".into()),
        ]);
        let mut problems = Problems::new("providers.db");
        let s = CommonSettings::take_from(&mut table, &mut problems, &EDGES);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(s.poll.initial, Duration::from_secs(1));
        assert_eq!(s.rate_per_second, 2.0);
        assert!(
            table.contains_key("host"),
            "adapter keys are left in the table"
        );

        let mut table = make(&[
            ("poll_initial", "soon".into()),
            ("unknown_after", Setting::Integer(-1)),
        ]);
        CommonSettings::take_from(&mut table, &mut problems, &EDGES);
        let problems = problems.into_lines();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("providers.db.poll_initial"));
    }

    #[test]
    fn every_common_key_is_taken_and_checked() {
        for key in CommonSettings::KEYS {
            let mut table = make(&[(*key, Setting::List(vec![]))]);
            let mut problems = Problems::new("p");
            CommonSettings::take_from(&mut table, &mut problems, &EDGES);
            assert!(table.is_empty(), "{key} is left in the table");
            assert!(problems.names(key), "{key}: {problems:?}");
        }
    }
}
