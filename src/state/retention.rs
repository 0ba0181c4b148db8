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

/// The longest retention short of `never`: 100 years. Longer ones would put an expiry past
/// what clients parse (Python's `datetime` ends in year 9999, JavaScript's `Date` in 275760).
pub const MAX_RETENTION: Duration = Duration::from_secs(36_500 * 86_400);

/// A retention that is neither `never` nor a positive duration of at most [`MAX_RETENTION`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionParseError {
    /// Not a duration at all, or zero.
    #[error("{0:?} is not a retention: give a duration such as 30d, 12h or 90s, or `never`")]
    NotADuration(String),
    /// Longer than [`MAX_RETENTION`].
    #[error("{0:?} is longer than the longest retention, 36500d (100 years): give a shorter one, or `never`")]
    TooLong(String),
}

impl FromStr for Retention {
    type Err = RetentionParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("never") {
            return Ok(Retention::Never);
        }
        match humantime::parse_duration(s) {
            Ok(d) if d > MAX_RETENTION => Err(RetentionParseError::TooLong(s.to_string())),
            Ok(d) if !d.is_zero() => Ok(Retention::For(d)),
            Err(humantime::DurationError::NumberOverflow) => {
                Err(RetentionParseError::TooLong(s.to_string()))
            }
            _ => Err(RetentionParseError::NotADuration(s.to_string())),
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

    #[test]
    fn refuses_retentions_past_a_hundred_years() {
        assert_eq!(
            "36500d".parse(),
            Ok(Retention::For(MAX_RETENTION)),
            "the limit itself is allowed"
        );
        for long in ["36501d", "99999999999999d", "999999999999999999999999s"] {
            let err = long.parse::<Retention>().unwrap_err();
            assert_eq!(err, RetentionParseError::TooLong(long.into()));
            assert!(err.to_string().contains("36500d (100 years)"), "{err}");
        }
    }
}
