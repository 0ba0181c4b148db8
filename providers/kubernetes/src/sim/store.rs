//! The simulated API server's objects: one store for every resource type, with a single
//! `resourceVersion` sequence, the log of changes a watch replays from (compacted, after
//! which a watch from an older version answers 410 Gone), and the broadcast that open watches
//! follow.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use tokio::sync::broadcast;

/// Where an object lives: (group, plural, namespace (empty if cluster-scoped), name).
pub type Key = (String, String, String, String);

/// One object and what the simulator knows of it besides.
#[derive(Debug, Clone)]
pub struct Object {
    /// The object as the API shows it.
    pub value: Value,
    /// When it was made.
    pub created: Instant,
    /// When it ended (reached a terminal state), if it did.
    pub ended: Option<Instant>,
    /// Left out of list calls (a sweep misses it).
    pub hidden: bool,
    /// When a client last read it (alone or in a list).
    pub seen: Option<Instant>,
}

impl Object {
    /// Its `metadata.uid`.
    pub fn uid(&self) -> &str {
        self.value["metadata"]["uid"].as_str().unwrap_or_default()
    }
}

/// A change, as a watch sends it.
#[derive(Debug, Clone)]
pub struct Change {
    /// The version it made.
    pub rv: u64,
    /// The object's resource type: (group, plural).
    pub resource: (String, String),
    /// Its namespace (empty if cluster-scoped).
    pub namespace: String,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    /// The object after the change (before it, for `DELETED`).
    pub object: Arc<Value>,
}

/// What a watch follows: the logged changes to replay, and the receiver of those to come.
pub type Followed = (Vec<Arc<Change>>, broadcast::Receiver<Arc<Change>>);

/// How many changes the log keeps; a watch from before the oldest answers 410 Gone, as one
/// from before etcd's compaction does.
const LOG_KEPT: usize = 100_000;

/// Every object.
#[derive(Debug)]
pub struct Store {
    objects: BTreeMap<Key, Object>,
    by_uid: HashMap<String, Key>,
    rv: u64,
    log: VecDeque<Arc<Change>>,
    /// The oldest version a watch may start from (older: 410 Gone).
    oldest: u64,
    changes: broadcast::Sender<Arc<Change>>,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            objects: BTreeMap::new(),
            by_uid: HashMap::new(),
            rv: 1,
            log: VecDeque::new(),
            oldest: 1,
            changes: broadcast::channel(65_536).0,
        }
    }
}

impl Store {
    /// The current version.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// The oldest version a watch or a continued list may start from.
    pub fn oldest(&self) -> u64 {
        self.oldest
    }

    /// Forgets every version so far, as etcd's compaction does once changes the watches do
    /// not select have moved the revision on: a watch or a continued list from any version a
    /// client has seen answers 410 Gone.
    pub fn compact(&mut self) {
        self.log.clear();
        self.rv += 1;
        self.oldest = self.rv;
    }

    /// The object at `key`.
    pub fn get(&self, key: &Key) -> Option<&Object> {
        self.objects.get(key)
    }

    /// The key of the object with `uid`.
    pub fn key_of(&self, uid: &str) -> Option<Key> {
        self.by_uid.get(uid).cloned()
    }

    /// The objects of a resource type in `namespace` (every namespace if `None`), in key order,
    /// from just after `after` (a continued list).
    pub fn list<'a>(
        &'a self,
        group: &'a str,
        plural: &'a str,
        namespace: Option<&'a str>,
        after: Option<(&'a str, &'a str)>,
    ) -> impl Iterator<Item = (&'a Key, &'a Object)> + 'a {
        let start = (
            group.to_string(),
            plural.to_string(),
            String::new(),
            String::new(),
        );
        self.objects
            .range(start..)
            .take_while(move |(k, _)| k.0 == group && k.1 == plural)
            .filter(move |(k, _)| namespace.is_none_or(|ns| k.2 == ns))
            .filter(move |(k, _)| {
                after.is_none_or(|(ns, name)| (k.2.as_str(), k.3.as_str()) > (ns, name))
            })
    }

    /// Notes that a client read the objects at `keys` at `now`.
    pub fn touch<'a>(&mut self, keys: impl IntoIterator<Item = &'a Key>, now: Instant) {
        for key in keys {
            if let Some(o) = self.objects.get_mut(key) {
                o.seen = Some(now);
            }
        }
    }

    /// Of tether's objects (its key annotation) not ended: how many there are, and how many
    /// of them a client read within `within` of `now`.
    pub fn freshness(&self, now: Instant, within: std::time::Duration) -> (u64, u64) {
        let active = self.objects.values().filter(|o| {
            o.ended.is_none() && o.value["metadata"]["annotations"][crate::name::KEY].is_string()
        });
        let (mut all, mut fresh) = (0, 0);
        for o in active {
            all += 1;
            if o.seen.is_some_and(|t| now.duration_since(t) <= within) {
                fresh += 1;
            }
        }
        (all, fresh)
    }

    /// Every object's key.
    pub fn keys(&self) -> Vec<Key> {
        self.objects.keys().cloned().collect()
    }

    /// Stores `object` at `key` (new or changed): its `resourceVersion` set, the change logged
    /// and sent to the watches. The object's value as stored.
    pub fn put(&mut self, key: Key, mut object: Object) -> Value {
        self.rv += 1;
        object.value["metadata"]["resourceVersion"] = Value::String(self.rv.to_string());
        let kind = if self.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        self.by_uid.insert(object.uid().to_string(), key.clone());
        let value = object.value.clone();
        self.record(&key, kind, Arc::new(value.clone()));
        self.objects.insert(key, object);
        value
    }

    /// Changes the object at `key` in place (its status, say), as [`Store::put`] does; false
    /// if there is none.
    pub fn modify(&mut self, key: &Key, f: impl FnOnce(&mut Object)) -> bool {
        let Some(mut object) = self.objects.get(key).cloned() else {
            return false;
        };
        f(&mut object);
        self.put(key.clone(), object);
        true
    }

    /// Removes the object at `key`, logging its deletion; the object as last stored.
    pub fn remove(&mut self, key: &Key) -> Option<Object> {
        let mut object = self.objects.remove(key)?;
        self.by_uid.remove(object.uid());
        self.rv += 1;
        object.value["metadata"]["resourceVersion"] = Value::String(self.rv.to_string());
        self.record(key, "DELETED", Arc::new(object.value.clone()));
        Some(object)
    }

    fn record(&mut self, key: &Key, kind: &'static str, object: Arc<Value>) {
        let change = Arc::new(Change {
            rv: self.rv,
            resource: (key.0.clone(), key.1.clone()),
            namespace: key.2.clone(),
            kind,
            object,
        });
        if self.log.len() >= LOG_KEPT {
            if let Some(dropped) = self.log.pop_front() {
                self.oldest = dropped.rv;
            }
        }
        self.log.push_back(change.clone());
        // No watch open is no error.
        let _ = self.changes.send(change);
    }

    /// The logged changes after version `rv` and a receiver of the changes to come, taken
    /// together (under the simulator's lock, so none is missed or sent twice); `None` if `rv`
    /// is older than the log keeps.
    pub fn follow(&self, rv: u64) -> Option<Followed> {
        if rv < self.oldest {
            return None;
        }
        let replay = self.log.iter().filter(|c| c.rv > rv).cloned().collect();
        Some((replay, self.changes.subscribe()))
    }
}

/// A label selector (`a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x)`, joined
/// by commas), as the API server reads `labelSelector`.
#[derive(Debug, Clone, Default)]
pub struct Selector(Vec<(String, Requirement)>);

#[derive(Debug, Clone)]
enum Requirement {
    Equals(String),
    NotEquals(String),
    Exists,
    Missing,
    In(Vec<String>),
    NotIn(Vec<String>),
}

impl Selector {
    /// `text` read, or why it cannot be.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for part in split_top(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let set = |rest: &str| -> Result<Vec<String>, String> {
                let inner = rest
                    .trim()
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| {
                        format!(
                            "unable to parse requirement: {part:?}: expected a set in parentheses"
                        )
                    })?;
                Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
            };
            let requirement = if let Some(label) = part.strip_prefix('!') {
                (label.trim().to_string(), Requirement::Missing)
            } else if let Some((label, rest)) = part.split_once(" notin ") {
                (label.trim().to_string(), Requirement::NotIn(set(rest)?))
            } else if let Some((label, rest)) = part.split_once(" in ") {
                (label.trim().to_string(), Requirement::In(set(rest)?))
            } else if let Some((label, value)) = part.split_once("!=") {
                (
                    label.trim().to_string(),
                    Requirement::NotEquals(value.trim().to_string()),
                )
            } else if let Some((label, value)) =
                part.split_once("==").or_else(|| part.split_once('='))
            {
                (
                    label.trim().to_string(),
                    Requirement::Equals(value.trim().to_string()),
                )
            } else {
                (part.to_string(), Requirement::Exists)
            };
            if requirement.0.is_empty() || requirement.0.contains(' ') {
                return Err(format!("unable to parse requirement: {part:?}"));
            }
            requirements.push(requirement);
        }
        Ok(Self(requirements))
    }

    /// Whether `object`'s labels satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        self.0.iter().all(|(label, req)| {
            let value = labels[label.as_str()].as_str();
            match req {
                Requirement::Equals(v) => value == Some(v.as_str()),
                Requirement::NotEquals(v) => value != Some(v.as_str()),
                Requirement::Exists => value.is_some(),
                Requirement::Missing => value.is_none(),
                Requirement::In(set) => value.is_some_and(|v| set.iter().any(|s| s == v)),
                Requirement::NotIn(set) => value.is_none_or(|v| !set.iter().any(|s| s == v)),
            }
        })
    }
}

/// `text` split at the commas outside parentheses.
fn split_top(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_read_as_the_api_server_reads_them() {
        let o = json!({"metadata": {"labels": {"app": "etl", "tier": "batch"}}});
        for (text, want) in [
            ("app=etl", true),
            ("app==etl,tier", true),
            ("app!=etl", false),
            ("!owner", true),
            ("tier in (batch, web)", true),
            ("tier notin (batch)", false),
            ("app=etl,tier in (web)", false),
            ("", true),
        ] {
            assert_eq!(Selector::parse(text).unwrap().matches(&o), want, "{text}");
        }
        assert!(Selector::parse("tier in batch").is_err());
    }
}
