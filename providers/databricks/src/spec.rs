//! What the pipeline and SQL kinds check alike in a job spec: that it is a JSON object, that it
//! sets only fields its request takes, and that it names its pipeline or warehouse by an id.
//! Each check says why a spec is refused; the kind reports it as an invalid spec.

use serde_json::{Map, Value};

use crate::client::is_id;

/// The spec as an object, or why not: `holds` says what it should hold.
pub fn object<'a>(spec: &'a Value, holds: &str) -> Result<&'a Map<String, Value>, String> {
    spec.as_object()
        .ok_or_else(|| format!("the job spec must be a JSON object: {holds}"))
}

/// The fields of `obj` that `takes` does not accept, joined with commas (`None`: there are
/// none).
pub fn unknown_fields(obj: &Map<String, Value>, takes: impl Fn(&str) -> bool) -> Option<String> {
    let unknown: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| !takes(k))
        .collect();
    (!unknown.is_empty()).then(|| unknown.join(", "))
}

/// Whether `obj` names `field` by an id ([`is_id`]), or why not: `what` says whose id it is.
pub fn id_field(obj: &Map<String, Value>, field: &str, what: &str) -> Result<(), String> {
    match obj.get(field) {
        Some(Value::String(id)) if is_id(id) => Ok(()),
        Some(other) => Err(format!("{field} must be {what}, not {other}")),
        None => Err(format!("the job spec needs {field}")),
    }
}
