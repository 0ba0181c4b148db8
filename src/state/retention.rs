//! Retention: how long a written value lives before it reads as absent and the GC removes it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How long a value is kept after a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Kept until deleted or cleared.
    Never,
    /// Kept for this long after the write.
    For(Duration),
}

impl Retention {
    /// When a value written at `now` expires, if ever.
    pub fn expires_at(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Retention::Never => None,
            Retention::For(d) => Some(
                chrono::Duration::from_std(d)
                    .ok()
                    .and_then(|d| now.checked_add_signed(d))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC),
            ),
        }
    }
}

/// A retention that is neither `never` nor a positive duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a retention: give a duration such as 30d, 12h or 90s, or `never`")]
pub struct RetentionParseError {
    input: String,
}

impl FromStr for Retention {
    type Err = RetentionParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("never") {
            return Ok(Retention::Never);
        }
        match humantime::parse_duration(s) {
            Ok(d) if !d.is_zero() => Ok(Retention::For(d)),
            _ => Err(RetentionParseError {
                input: s.to_string(),
            }),
        }
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Retention::Never => f.write_str("never"),
            Retention::For(d) => write!(f, "{}", humantime::format_duration(*d)),
        }
    }
}

impl Serialize for Retention {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Retention {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_and_never() {
        assert_eq!("never".parse(), Ok(Retention::Never));
        assert_eq!(
            "30d".parse(),
            Ok(Retention::For(Duration::from_secs(30 * 86400)))
        );
        assert_eq!(
            "1h 30m".parse(),
            Ok(Retention::For(Duration::from_secs(5400)))
        );
        assert!("0s".parse::<Retention>().is_err());
        let err = "soon".parse::<Retention>().unwrap_err().to_string();
        assert!(err.contains("\"soon\""), "{err}");
    }
}
