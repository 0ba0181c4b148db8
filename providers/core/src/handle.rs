//! [`Handle`]: a provider's handle on a remote job, kept as its compact JSON text.
//!
//! A supervisor holds one handle per tracked job, 100,000 at once. A parsed
//! `serde_json::Value` object costs a B-tree node of about 630 bytes even for
//! `{"run_id": 42}`; the text costs its length. Fields are read by parsing the text when a
//! call needs them (once per status call or per job in a sweep: far cheaper than the call).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A provider's handle on a remote job (Databricks: `{"run_id": 42}`): a JSON value, stored
/// as its compact text (object keys sorted, as `serde_json` writes them), so that two
/// handles of the same job compare equal. It serializes as the JSON value, not as a string.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Handle(Box<str>);

impl Handle {
    /// A handle holding `value`.
    pub fn new(value: Value) -> Self {
        Self(value.to_string().into_boxed_str())
    }

    /// The handle's JSON value.
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }

    /// The field `name` of the handle's object, if it has one.
    pub fn get(&self, name: &str) -> Option<Value> {
        match self.value() {
            Value::Object(mut fields) => fields.remove(name),
            _ => None,
        }
    }

    /// The string field `name`, if the handle has one.
    pub fn get_str(&self, name: &str) -> Option<String> {
        match self.get(name)? {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer field `name`, if the handle has one.
    pub fn get_i64(&self, name: &str) -> Option<i64> {
        self.get(name)?.as_i64()
    }

    /// The compact JSON text.
    pub fn as_json(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle({})", self.0)
    }
}

impl Serialize for Handle {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Handle {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_round_trips_and_equality() {
        let h = Handle::new(json!({"step_id": "s-1", "cluster_id": "j-1"}));
        assert_eq!(h.as_json(), r#"{"cluster_id":"j-1","step_id":"s-1"}"#);
        assert_eq!(h.get_str("cluster_id").as_deref(), Some("j-1"));
        assert_eq!(h.get_str("nope"), None);
        assert_eq!(
            Handle::new(json!({"run_id": 42})).get_i64("run_id"),
            Some(42)
        );
        assert_eq!(Handle::new(json!({"run_id": "42"})).get_i64("run_id"), None);
        // Serialized as the JSON value, and equal whatever the key order it was built from.
        assert_eq!(serde_json::to_value(&h).unwrap(), h.value());
        let back: Handle =
            serde_json::from_str(r#"{ "step_id": "s-1", "cluster_id": "j-1" }"#).unwrap();
        assert_eq!(back, h);
        assert_eq!(h.to_string(), h.as_json());
    }
}
