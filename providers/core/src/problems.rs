//! One reader for every table of tether's configuration: [`Problems`] collects every bad
//! field with its path (rather than stopping at the first), and reads typed values out of a
//! [`Table`], with one duration grammar everywhere ([`parse_duration`], humantime's: `500ms`,
//! `5s`, `1m30s`, `2h`, `7d`). `src/config` reads the file's own sections with it, and every
//! provider's factory its `[providers.NAME]` table.

use std::fmt::Display;
use std::time::Duration;

use crate::settings::{Setting, Table};

/// The one duration grammar of the configuration: humantime's (`500ms`, `5s`, `1m30s`,
/// `2h`, `7d`, `1h 30m`); whole numbers of each unit.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration such as 500ms, 5s, 1m30s or 7d ({e})"))
}

/// The problems found in a configuration, one line per bad field, each starting with the
/// field's path (`providers.emr.region: missing ...`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Problems {
    /// The path of the table being read (`providers.emr`), or empty for whole paths.
    prefix: String,
    lines: Vec<String>,
}

impl Problems {
    /// A collector for the table at `prefix` (empty: each field is named by its whole path).
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            lines: Vec::new(),
        }
    }

    /// The path of `field` in this table.
    pub fn path(&self, field: &str) -> String {
        if self.prefix.is_empty() {
            field.to_string()
        } else {
            format!("{}.{field}", self.prefix)
        }
    }

    /// Records that `field` is bad, and why.
    pub fn at(&mut self, field: &str, why: impl Display) {
        let line = format!("{}: {why}", self.path(field));
        self.lines.push(line);
    }

    /// Records `field: why` if `result` failed.
    pub fn check(&mut self, field: &str, result: Result<(), String>) {
        self.checked(field, result);
    }

    /// Records `field: why` if `result` failed; its value otherwise.
    pub fn checked<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        result.map_err(|why| self.at(field, why)).ok()
    }

    /// Records a line that names its field already.
    pub fn push(&mut self, line: String) {
        self.lines.push(line);
    }

    /// Records lines that name their fields already.
    pub fn extend(&mut self, lines: impl IntoIterator<Item = String>) {
        self.lines.extend(lines);
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The lines so far.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Whether a line names `field` already.
    pub fn names(&self, field: &str) -> bool {
        let path = format!("{}:", self.path(field));
        self.lines.iter().any(|l| l.starts_with(&path))
    }

    /// The lines, for a caller that reports them.
    pub fn into_lines(self) -> Vec<String> {
        self.lines
    }

    /// `value`, or every line found.
    pub fn into_result<T>(self, value: T) -> Result<T, Vec<String>> {
        if self.lines.is_empty() {
            Ok(value)
        } else {
            Err(self.lines)
        }
    }

    /// The fields of a nested table, named `at` + key (`at` such as `submit.`).
    pub fn within(&mut self, at: &str) -> Within<'_> {
        Within {
            problems: self,
            at: at.to_string(),
        }
    }

    // Typed values taken out of a table: absent is `None`; a value of the wrong type or shape
    // is recorded, and `None` too.

    /// A string.
    pub fn string(&mut self, table: &mut Table, key: &str) -> Option<String> {
        self.within("").string(table, key)
    }

    /// A string that must be there: `what` says what it is.
    pub fn required(&mut self, table: &mut Table, key: &str, what: &str) -> Option<String> {
        self.within("").required(table, key, what)
    }

    /// A duration above zero ([`parse_duration`]).
    pub fn duration(&mut self, table: &mut Table, key: &str) -> Option<Duration> {
        self.within("").duration(table, key)
    }

    /// A duration, zero allowed (`"0s"` turns something off).
    pub fn duration_or_zero(&mut self, table: &mut Table, key: &str) -> Option<Duration> {
        self.within("").duration_or_zero(table, key)
    }

    /// A number (a whole number is taken as one).
    pub fn float(&mut self, table: &mut Table, key: &str) -> Option<f64> {
        self.within("").float(table, key)
    }

    /// A whole number from 0 to `u32::MAX`.
    pub fn whole(&mut self, table: &mut Table, key: &str) -> Option<u32> {
        self.within("").whole(table, key)
    }

    /// A whole number from 1 to `u32::MAX`.
    pub fn positive(&mut self, table: &mut Table, key: &str) -> Option<u32> {
        self.within("").positive(table, key)
    }

    /// `true` or `false`.
    pub fn boolean(&mut self, table: &mut Table, key: &str) -> Option<bool> {
        self.within("").boolean(table, key)
    }

    /// A nested table; `required` says what it is when it must be there (empty: optional).
    pub fn table(&mut self, table: &mut Table, key: &str, required: &str) -> Option<Table> {
        self.within("").table(table, key, required)
    }

    /// Reports every key left in `table` as unknown (`at` is the keys' path within this
    /// table, such as `submit.`).
    pub fn unknown(&mut self, at: &str, table: &Table) {
        for key in table.keys() {
            self.at(&format!("{at}{key}"), "unknown field");
        }
    }
}

/// The readers of [`Problems`] for a nested table: each field is named `at` + key.
#[derive(Debug)]
pub struct Within<'a> {
    problems: &'a mut Problems,
    at: String,
}

impl Within<'_> {
    fn bad(&mut self, key: &str, why: impl Display) {
        let field = format!("{}{key}", self.at);
        self.problems.at(&field, why);
    }

    /// Takes `key` out of `table` and converts it; a value `convert` refuses is recorded.
    fn take<T>(
        &mut self,
        table: &mut Table,
        key: &str,
        convert: impl FnOnce(Setting) -> Result<T, String>,
    ) -> Option<T> {
        let value = table.remove(key)?;
        convert(value).map_err(|why| self.bad(key, why)).ok()
    }

    /// A string.
    pub fn string(&mut self, table: &mut Table, key: &str) -> Option<String> {
        self.take(table, key, |v| match v {
            Setting::String(s) => Ok(s),
            other => Err(format!("must be a string, not {}", other.type_str())),
        })
    }

    /// A string that must be there: `what` says what it is.
    pub fn required(&mut self, table: &mut Table, key: &str, what: &str) -> Option<String> {
        let value = self.string(table, key);
        let field = format!("{}{key}", self.at);
        if value.is_none() && !self.problems.names(&field) {
            self.bad(key, format!("missing: {what}"));
        }
        value
    }

    /// A duration, zero allowed (`"0s"` turns something off).
    pub fn duration_or_zero(&mut self, table: &mut Table, key: &str) -> Option<Duration> {
        let text = self.string(table, key)?;
        match parse_duration(&text) {
            Ok(d) => Some(d),
            Err(why) => {
                self.bad(key, why);
                None
            }
        }
    }

    /// A duration above zero ([`parse_duration`]).
    pub fn duration(&mut self, table: &mut Table, key: &str) -> Option<Duration> {
        let text = self.string(table, key)?;
        match parse_duration(&text) {
            Ok(d) if d.is_zero() => {
                self.bad(key, "must be above 0");
                None
            }
            Ok(d) => Some(d),
            Err(why) => {
                self.bad(key, why);
                None
            }
        }
    }

    /// A number (a whole number is taken as one).
    pub fn float(&mut self, table: &mut Table, key: &str) -> Option<f64> {
        self.take(table, key, |v| match v {
            Setting::Float(f) => Ok(f),
            Setting::Integer(i) => Ok(i as f64),
            other => Err(format!("must be a number, not {}", other.type_str())),
        })
    }

    /// A whole number from 0 to `u32::MAX`.
    pub fn whole(&mut self, table: &mut Table, key: &str) -> Option<u32> {
        self.take(table, key, |v| match v {
            Setting::Integer(i) if (0..=i64::from(u32::MAX)).contains(&i) => Ok(i as u32),
            other => Err(format!("must be a whole number >= 0, not {other}")),
        })
    }

    /// A whole number from 1 to `u32::MAX`.
    pub fn positive(&mut self, table: &mut Table, key: &str) -> Option<u32> {
        self.take(table, key, |v| match v {
            Setting::Integer(n) if (1..=i64::from(u32::MAX)).contains(&n) => Ok(n as u32),
            other => Err(format!("must be a whole number above 0, not {other}")),
        })
    }

    /// `true` or `false`.
    pub fn boolean(&mut self, table: &mut Table, key: &str) -> Option<bool> {
        self.take(table, key, |v| match v {
            Setting::Boolean(b) => Ok(b),
            other => Err(format!("must be true or false, not {}", other.type_str())),
        })
    }

    /// A nested table; `required` says what it is when it must be there (empty: optional).
    pub fn table(&mut self, table: &mut Table, key: &str, required: &str) -> Option<Table> {
        let found = self.take(table, key, |v| match v {
            Setting::Table(t) => Ok(Some(t)),
            other => Err(format!("must be a table, not {}", other.type_str())),
        });
        match found {
            Some(t) => t,
            None if required.is_empty() || self.problems.names(&format!("{}{key}", self.at)) => {
                None
            }
            None => {
                self.bad(key, format!("missing: {required}"));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_grammar_for_every_duration() {
        for (text, secs) in [
            ("500ms", 0.5),
            ("5s", 5.0),
            ("1m30s", 90.0),
            ("1h 30m", 5400.0),
            ("2h", 7200.0),
            ("7d", 604_800.0),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs_f64(secs)),
                "{text}"
            );
        }
        for text in ["soon", "5", "-1s", "1.5 fortnights"] {
            let why = parse_duration(text).unwrap_err();
            assert!(why.contains(&format!("{text:?}")), "{why}");
        }
    }

    #[test]
    fn every_bad_field_is_named_with_its_path() {
        let mut table: Table = [
            ("lease".to_string(), Setting::from("0s")),
            ("wait".to_string(), Setting::from("later")),
            ("rate".to_string(), Setting::Boolean(true)),
            ("odd".to_string(), Setting::Integer(1)),
        ]
        .into_iter()
        .collect();
        let mut p = Problems::new("providers.x");
        assert_eq!(p.duration(&mut table, "lease"), None);
        assert_eq!(p.duration(&mut table, "wait"), None);
        assert_eq!(p.float(&mut table, "rate"), None);
        assert_eq!(p.required(&mut table, "host", "the API's URL"), None);
        p.unknown("", &table);
        let lines = p.into_result(()).unwrap_err();
        assert_eq!(lines.len(), 5, "{lines:#?}");
        assert!(lines[0].starts_with("providers.x.lease: must be above 0"));
        assert!(lines[1].starts_with("providers.x.wait: \"later\" is not a duration"));
        assert!(lines[2].starts_with("providers.x.rate: must be a number"));
        assert!(lines[3].starts_with("providers.x.host: missing: the API's URL"));
        assert_eq!(lines[4], "providers.x.odd: unknown field");
        let mut pages: Table = [
            ("none".to_string(), Setting::Integer(0)),
            ("some".to_string(), Setting::Integer(7)),
        ]
        .into_iter()
        .collect();
        let mut p = Problems::new("providers.y");
        assert_eq!(p.positive(&mut pages, "none"), None);
        assert_eq!(p.positive(&mut pages, "some"), Some(7));
        assert_eq!(
            p.into_lines(),
            ["providers.y.none: must be a whole number above 0, not 0"]
        );
        let mut whole = Problems::new("");
        whole.at("api.max_wait", "too long");
        assert_eq!(whole.into_lines(), ["api.max_wait: too long"]);
    }
}
