//! The rules a key and a value must follow before they are stored.

use serde_json::Value;

use super::scope::ValidationError;

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// Default size limit of one value, in bytes of compact JSON (Airflow's default).
pub const DEFAULT_MAX_VALUE_BYTES: usize = 65_535;

/// Checks a key: non-empty UTF-8, at most [`MAX_KEY_BYTES`], no control characters.
pub fn validate_key(key: &str) -> Result<(), ValidationError> {
    if key.is_empty() {
        return Err(ValidationError::new("key", "must not be empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(ValidationError::new(
            "key",
            format!("is {} bytes; the limit is {MAX_KEY_BYTES}", key.len()),
        ));
    }
    if key.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "key",
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// A value that may be stored, with its compact JSON encoding.
#[derive(Debug, Clone)]
pub struct CheckedValue {
    /// The value itself.
    pub value: Value,
    /// Its compact JSON text, as stored.
    pub json: String,
}

/// Why a value cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// A top-level null (a key holding "nothing" is a delete, not a write).
    #[error("invalid value: null cannot be stored (delete the key instead)")]
    Null,
    /// Larger than the configured limit.
    #[error("value is {size} bytes of JSON; the limit is {limit} bytes")]
    TooLarge {
        /// The value's size in bytes of compact JSON.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Not JSON at all (from text input).
    #[error("invalid value: not JSON ({0}); strings need quotes, e.g. '\"text\"'")]
    NotJson(String),
}

/// Checks a value and encodes it. NaN and infinities cannot occur: JSON has no spelling for
/// them and `serde_json` refuses to hold them.
pub fn check_value(value: Value, limit: usize) -> Result<CheckedValue, ValueError> {
    if value.is_null() {
        return Err(ValueError::Null);
    }
    let json = serde_json::to_string(&value).expect("a JSON value always serialises");
    if json.len() > limit {
        return Err(ValueError::TooLarge {
            size: json.len(),
            limit,
        });
    }
    Ok(CheckedValue { value, json })
}

/// Parses text as a JSON value (what the CLI and HTTP bodies give).
pub fn parse_value(text: &str) -> Result<Value, ValueError> {
    serde_json::from_str(text).map_err(|e| ValueError::NotJson(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys() {
        assert!(validate_key("tether.job.main").is_ok());
        assert!(validate_key("ключ").is_ok());
        assert_eq!(validate_key("").unwrap_err().field, "key");
        assert!(validate_key(&"k".repeat(512)).is_ok());
        assert!(validate_key(&"k".repeat(513))
            .unwrap_err()
            .reason
            .contains("513"));
        assert!(validate_key("a\0b").is_err());
    }

    #[test]
    fn values() {
        assert_eq!(check_value(json!(null), 10).unwrap_err(), ValueError::Null);
        assert!(check_value(json!({"a": null}), 100).is_ok());
        let err = check_value(json!("x".repeat(20)), 10).unwrap_err();
        assert_eq!(
            err,
            ValueError::TooLarge {
                size: 22,
                limit: 10
            }
        );
        assert!(parse_value("NaN").is_err());
        assert!(parse_value("Infinity").is_err());
        assert!(parse_value("1e999").is_err());
        assert_eq!(parse_value("{\"w\": 3}").unwrap(), json!({"w": 3}));
    }
}
