//! A `kubernetes` job's spec, checked: the manifest of one namespaced resource, and how to
//! judge it.
//!
//! ```json
//! {"manifest": {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "nightly-etl"},
//!               "spec": {...}},
//!  "namespace": "etl",
//!  "success": "status.succeeded > 0",
//!  "failure": ["status.failed > 2"],
//!  "message": "status.conditions[type=Failed].message"}
//! ```
//!
//! - `manifest` (required): any `apiVersion` and `kind`; its `metadata.name` (or
//!   `generateName`) is only the readable prefix of the name tether gives it (`name.rs`);
//!   tether's own labels and annotation are added to whatever it has.
//! - `namespace`: the manifest's `metadata.namespace`, else this, else the account's.
//! - `success`, `failure` (one condition or a list, any of which is a failure), `message`
//!   (a path): a resource of a built-in type (`builtin.rs`) may leave them out; any other
//!   must give `success` and `failure`. A given field replaces the built-in one.
//!
//! Every error names the field and says what is wrong.

use serde_json::Value;

use crate::builtin;
use crate::condition::{Condition, Path};

/// A checked spec.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The manifest as given.
    pub manifest: Value,
    /// Its `apiVersion`.
    pub api_version: String,
    /// Its `kind`.
    pub kind: String,
    /// The namespace it goes in, if the spec or manifest names one (else the account's).
    pub namespace: Option<String>,
    /// When it has succeeded.
    pub success: Condition,
    /// When it has failed: any of these.
    pub failure: Vec<Condition>,
    /// Where its status says why, if anywhere.
    pub message: Option<Path>,
}

impl Spec {
    /// The name of the resource tether makes of this spec for `key`: its manifest's name (or
    /// `generateName`, or its kind) as the readable start (`name.rs`).
    pub fn name_for(&self, key: &str) -> String {
        let meta = &self.manifest["metadata"];
        let prefix = meta["name"]
            .as_str()
            .or_else(|| meta["generateName"].as_str())
            .unwrap_or(&self.kind);
        crate::name::resource_name(prefix, key)
    }
}

/// `text` as a condition of `field`, or `None` with the problem noted.
fn condition(problems: &mut Vec<String>, field: &str, text: &str) -> Option<Condition> {
    match Condition::parse(text) {
        Ok(c) => Some(c),
        Err(e) => {
            problems.push(format!("{field}: {e}"));
            None
        }
    }
}

/// The fields a spec may have.
const FIELDS: [&str; 5] = ["manifest", "namespace", "success", "failure", "message"];

impl Spec {
    /// `spec` checked, or every problem, each naming its field.
    pub fn parse(spec: &Value) -> Result<Self, Vec<String>> {
        let Some(object) = spec.as_object() else {
            return Err(vec!["the spec must be a JSON object with a manifest".into()]);
        };
        let mut problems: Vec<String> = object
            .keys()
            .filter(|k| !FIELDS.contains(&k.as_str()))
            .map(|k| {
                format!(
                    "{k}: not a field of a kubernetes spec (it takes {})",
                    FIELDS.join(", ")
                )
            })
            .collect();
        let manifest = &spec["manifest"];
        let text = |v: &Value| {
            v.as_str()
                .filter(|s| !s.trim().is_empty())
                .map(str::to_string)
        };
        let api_version = text(&manifest["apiVersion"]);
        let kind = text(&manifest["kind"]);
        if !manifest.is_object() {
            problems.push("manifest: required, the resource to create (a JSON object)".into());
        } else {
            if api_version.is_none() {
                problems.push("manifest.apiVersion: required (batch/v1, ray.io/v1, ...)".into());
            }
            if kind.is_none() {
                problems.push("manifest.kind: required (Job, RayJob, ...)".into());
            }
        }
        let namespace =
            text(&manifest["metadata"]["namespace"]).or_else(|| text(&spec["namespace"]));
        if let Some(ns) = &namespace {
            if !crate::name::is_dns_label(ns) {
                problems.push(format!(
                    "namespace: {ns:?} is not a namespace name (a DNS-1123 label)"
                ));
            }
        }
        let builtin = match (&api_version, &kind) {
            (Some(a), Some(k)) => builtin::of(a, k),
            _ => None,
        };
        let named = api_version.as_deref().zip(kind.as_deref());
        let (success, failure, message) = judged(spec, builtin, named, &mut problems);
        match (problems.is_empty(), api_version, kind, success, failure) {
            (true, Some(api_version), Some(kind), Some(success), Some(failure)) => Ok(Self {
                manifest: manifest.clone(),
                api_version,
                kind,
                namespace,
                success,
                failure,
                message,
            }),
            _ => Err(problems),
        }
    }
}

/// The spec's success and failure conditions and message path, each the spec's own or the
/// built-in one; the problems noted. `named` is the manifest's (apiVersion, kind), if whole.
fn judged(
    spec: &Value,
    builtin: Option<&builtin::Builtin>,
    named: Option<(&str, &str)>,
    problems: &mut Vec<String>,
) -> (Option<Condition>, Option<Vec<Condition>>, Option<Path>) {
    let success = match (&spec["success"], builtin) {
        (Value::String(s), _) => condition(problems, "success", s),
        (Value::Null, Some(b)) => condition(problems, "success", b.success),
        (Value::Null, None) => None,
        _ => {
            problems.push("success: a condition, as text".into());
            None
        }
    };
    let failure: Option<Vec<Condition>> = match (&spec["failure"], builtin) {
        (Value::String(s), _) => condition(problems, "failure", s).map(|c| vec![c]),
        (Value::Array(list), _) if !list.is_empty() => list
            .iter()
            .enumerate()
            .map(|(i, v)| match v.as_str() {
                Some(s) => condition(problems, &format!("failure[{i}]"), s),
                None => {
                    problems.push(format!("failure[{i}]: a condition, as text"));
                    None
                }
            })
            .collect(),
        (Value::Null, Some(b)) => b
            .failure
            .iter()
            .map(|f| condition(problems, "failure", f))
            .collect(),
        (Value::Null, None) => None,
        _ => {
            problems.push("failure: a condition, or a list of them, as text".into());
            None
        }
    };
    if let (None, Some((api_version, kind))) = (builtin, named) {
        for (field, missing) in [
            ("success", success.is_none()),
            ("failure", failure.is_none()),
        ] {
            if missing && spec[field].is_null() {
                problems.push(format!(
                    "{field}: required for a {} of {} (tether knows the conditions of Job, SparkApplication, RayJob, PyTorchJob and Workflow only)",
                    kind, api_version
                ));
            }
        }
    }
    let message = match (&spec["message"], builtin) {
        (Value::String(s), _) => match Path::parse(s) {
            Ok(p) => Some(p),
            Err(e) => {
                problems.push(format!("message: {e}"));
                None
            }
        },
        (Value::Null, Some(b)) => Path::parse(b.message).ok(),
        (Value::Null, None) => None,
        _ => {
            problems.push("message: a path into the resource, as text".into());
            None
        }
    };
    (success, failure, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_job_needs_no_conditions_written() {
        let spec = Spec::parse(
            &json!({"manifest": {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "etl", "namespace": "data"}, "spec": {}}}),
        )
        .unwrap();
        assert_eq!(spec.namespace.as_deref(), Some("data"));
        assert_eq!(spec.failure.len(), 1);
        let done = json!({"status": {"conditions": [{"type": "Complete", "status": "True"}]}});
        assert!(spec.success.holds(&done));
        assert!(spec.message.is_some());
    }

    #[test]
    fn a_custom_resource_declares_its_own() {
        let manifest = json!({"apiVersion": "example.com/v1", "kind": "Train", "metadata": {}});
        let errors = Spec::parse(&json!({"manifest": manifest})).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("success: required for a Train")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.starts_with("failure: required")),
            "{errors:?}"
        );
        let spec = Spec::parse(&json!({"manifest": manifest, "namespace": "ml",
            "success": "status.phase == Done", "failure": ["status.phase == Failed", "status.retries > 3"]}))
        .unwrap();
        assert_eq!(
            (spec.failure.len(), spec.namespace.as_deref()),
            (2, Some("ml"))
        );
        assert!(spec.message.is_none());
    }

    #[test]
    fn every_problem_is_named() {
        let errors = Spec::parse(&json!({"manifest": {"kind": "Job"}, "namespace": "Bad_NS",
            "success": "status.a >", "failure": [1], "colour": "red"}))
        .unwrap_err();
        for want in [
            "colour: not a field",
            "manifest.apiVersion: required",
            "namespace: \"Bad_NS\"",
            "success: ",
            "failure[0]: a condition",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(want)),
                "{want}: {errors:?}"
            );
        }
        assert!(Spec::parse(&json!([])).is_err());
        assert!(Spec::parse(&json!({})).unwrap_err()[0].starts_with("manifest: required"));
    }
}
