//! Deterministic idempotency keys and spec hashes.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::state::TaskInstanceId;

/// The namespace every idempotency key of a deployment is derived in: two deployments with
/// different namespaces never compute the same key for the same task instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct KeyNamespace {
    /// The namespace.
    pub value: String,
    /// Where it comes from.
    pub source: NamespaceSource,
}

/// Where a [`KeyNamespace`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NamespaceSource {
    /// Made at random when the database was first migrated (the table `tether_settings`).
    Database,
    /// The configuration's `jobs.key_namespace`.
    Config,
}

impl std::fmt::Display for KeyNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let from = match self.source {
            NamespaceSource::Database => "made by this database",
            NamespaceSource::Config => "from jobs.key_namespace",
        };
        write!(f, "{} ({from})", self.value)
    }
}

/// The idempotency key of a job: `tether-` and 32 hex digits of SHA-256 over the deployment's
/// key namespace, the task instance, the job name and the generation. The same inputs always
/// give the same key (a retry finds it again); 39 characters fit every provider's limit
/// (Databricks: 64, Dataproc: 40, Athena: 32 at least).
pub fn idempotency_key(
    namespace: &str,
    ti: &TaskInstanceId,
    name: &str,
    generation: i64,
) -> String {
    let mut hasher = Sha256::new();
    for part in [
        namespace,
        ti.dag_id.as_str(),
        ti.run_id.as_str(),
        ti.task_id.as_str(),
        &ti.map_index.to_string(),
        name,
        &generation.to_string(),
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("tether-{hex}")
}

/// The key of submission attempt `attempt` of a generation: the generation's key
/// ([`idempotency_key`]) for the first, and for each later one (a submission the provider
/// refused, sent again) a key of its own, of the same form, with the attempt in its hash: a
/// provider that remembers a token with its refusal would refuse the same token again.
pub fn attempt_key(
    namespace: &str,
    ti: &TaskInstanceId,
    name: &str,
    generation: i64,
    attempt: i64,
) -> String {
    let key = idempotency_key(namespace, ti, name, generation);
    if attempt <= 1 {
        return key;
    }
    let digest = Sha256::digest(format!("{key}\0attempt\0{attempt}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("tether-{hex}")
}

/// SHA-256 (hex) of a spec's canonical JSON (object keys sorted), so that key order does not
/// count as a change.
pub fn spec_hash(spec: &Value) -> String {
    // serde_json's maps are ordered by key, so `to_string` is canonical.
    let digest = Sha256::digest(spec.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_deterministic_and_distinct() {
        let ti = TaskInstanceId::new("d", "r", "t", -1);
        let k = idempotency_key("ns", &ti, "main", 1);
        assert_eq!(k, idempotency_key("ns", &ti, "main", 1));
        assert_eq!(k.len(), 39);
        assert!(k.starts_with("tether-"));
        assert!(k[7..]
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(k, idempotency_key("ns", &ti, "main", 2));
        assert_ne!(k, idempotency_key("ns", &ti, "other", 1));
        assert_ne!(
            k,
            idempotency_key("ns", &TaskInstanceId::new("d", "r", "t", 0), "main", 1)
        );
        // Another deployment's namespace: another key, of the same length and alphabet.
        let other = idempotency_key("staging", &ti, "main", 1);
        assert_ne!(k, other);
        assert_eq!(other.len(), 39);
        // Field boundaries matter: ("ab", "c") is not ("a", "bc").
        assert_ne!(
            idempotency_key("ns", &TaskInstanceId::new("ab", "c", "t", -1), "m", 1),
            idempotency_key("ns", &TaskInstanceId::new("a", "bc", "t", -1), "m", 1)
        );
        assert_ne!(
            idempotency_key("nsd", &TaskInstanceId::new("", "r", "t", -1), "m", 1),
            idempotency_key("ns", &TaskInstanceId::new("d", "r", "t", -1), "m", 1)
        );
    }

    #[test]
    fn attempts_after_the_first_have_keys_of_their_own() {
        let ti = TaskInstanceId::new("d", "r", "t", -1);
        let first = idempotency_key("ns", &ti, "main", 1);
        assert_eq!(attempt_key("ns", &ti, "main", 1, 1), first);
        let second = attempt_key("ns", &ti, "main", 1, 2);
        let third = attempt_key("ns", &ti, "main", 1, 3);
        assert_ne!(second, first);
        assert_ne!(third, second);
        assert_eq!(
            second,
            attempt_key("ns", &ti, "main", 1, 2),
            "deterministic"
        );
        assert_eq!((second.len(), &second[..7]), (39, "tether-"));
        assert_ne!(second, idempotency_key("ns", &ti, "main", 2));
    }

    #[test]
    fn spec_hash_ignores_key_order() {
        let a: Value = serde_json::from_str(r#"{"a": 1, "b": [1, 2]}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"b": [1, 2], "a": 1}"#).unwrap();
        assert_eq!(spec_hash(&a), spec_hash(&b));
        assert_ne!(spec_hash(&a), spec_hash(&json!({"a": 2, "b": [1, 2]})));
    }
}
