//! `kind = "kubernetes-watch"`: an event source ([`EventSource`]) that watches the resources
//! tether made (its label, `tether.dev/managed-by=tether`) and hands every change to the
//! engine as a hint naming the resource's uid: the job is polled at once if the change may
//! be an end, so tether hears a Job's end within a second rather than at its next poll.
//!
//! One watch per (namespace, resource type), through kube-rs' watcher: it lists, then
//! watches from the list's `resourceVersion` with bookmarks, resumes from the last version it
//! saw when a watch ends, and lists again after `410 Gone` (a version compacted away), with
//! backoff between failures. A change is only a hint: the poll it causes reads the resource
//! (uid checked) and only the poll is recorded, so a lost, repeated or stale event changes no
//! record.
//!
//! `[events.NAME]` takes the cluster as an account does (`kubeconfig`, `context`),
//! `namespaces` (default: the context's namespace; `["*"]`: every namespace, which needs
//! cluster-wide `list` and `watch`), and `resources` (`apiVersion/Kind`, default
//! `["batch/v1/Job"]`). `kind` and `accounts` are tether's and left alone; any other key is
//! refused.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use kube::api::{Api, DynamicObject, GroupVersionKind};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use tether_provider::events::{Delivery, EventSource, Hint, Reading};
use tether_provider::settings::{Setting, Table};
use tether_provider::{JobState, Problems, ProviderError};
use tokio::sync::{mpsc, OnceCell};

use crate::adapter::KIND as PROVIDER_KIND;
use crate::config::{KubeConfig, Propagation};
use crate::name;

/// The event source kind.
pub const KIND: &str = "kubernetes-watch";

/// How long a receive waits for a first event.
const WAIT: Duration = Duration::from_secs(20);
/// The most events a receive returns.
const BATCH: usize = 1000;
/// Events waiting to be received before the watches wait for room.
const QUEUED: usize = 10_000;

/// Checked `[events.NAME]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchConfig {
    /// The cluster, as an account names it.
    pub cluster: KubeConfig,
    /// The namespaces watched (`None`: every namespace; empty: the context's).
    pub namespaces: Option<Vec<String>>,
    /// The resource types watched: (apiVersion, kind).
    pub resources: Vec<(String, String)>,
}

fn strings(p: &mut Problems, table: &mut Table, key: &str) -> Option<Vec<String>> {
    match table.remove(key)? {
        Setting::List(items) => {
            let mut out = Vec::new();
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    Setting::String(s) => out.push(s),
                    other => p.at(
                        &format!("{key}[{i}]"),
                        format!("must be a string, not {}", other.type_str()),
                    ),
                }
            }
            Some(out)
        }
        other => {
            p.at(
                key,
                format!("must be a list of strings, not {}", other.type_str()),
            );
            None
        }
    }
}

impl WatchConfig {
    /// Reads an `[events.NAME]` table (`prefix` is `events.NAME`), every bad field named.
    pub fn build(prefix: &str, mut table: Table) -> Result<Self, Vec<String>> {
        let mut p = Problems::new(prefix);
        table.remove("kind");
        table.remove("accounts");
        let namespaces = strings(&mut p, &mut table, "namespaces");
        let resources = strings(&mut p, &mut table, "resources")
            .unwrap_or_else(|| vec!["batch/v1/Job".to_string()]);
        let mut cluster = Table::new();
        for key in ["kubeconfig", "context"] {
            if let Some(v) = table.remove(key) {
                cluster.insert(key.to_string(), v);
            }
        }
        p.unknown("", &table);
        let cluster = match KubeConfig::build(prefix, cluster) {
            Ok(c) => Some(c),
            Err(lines) => {
                p.extend(lines);
                None
            }
        };
        let namespaces = match namespaces {
            Some(list) if list.iter().any(|n| n == "*") => None,
            Some(list) => {
                for (i, ns) in list.iter().enumerate() {
                    if !name::is_dns_label(ns) {
                        p.at(
                            &format!("namespaces[{i}]"),
                            format!("{ns:?} is not a namespace name (or \"*\": every namespace)"),
                        );
                    }
                }
                Some(list)
            }
            None => Some(Vec::new()),
        };
        let mut types = Vec::new();
        for (i, r) in resources.iter().enumerate() {
            match r.rsplit_once('/') {
                Some((api_version, kind)) if !api_version.is_empty() && !kind.is_empty() => {
                    types.push((api_version.to_string(), kind.to_string()));
                }
                _ => p.at(
                    &format!("resources[{i}]"),
                    format!("{r:?} is not apiVersion/Kind (batch/v1/Job, ray.io/v1/RayJob)"),
                ),
            }
        }
        if types.is_empty() && p.is_empty() {
            p.at("resources", "must name at least one apiVersion/Kind");
        }
        let cluster = cluster.unwrap_or_else(|| KubeConfig {
            kubeconfig: None,
            context: None,
            namespace: None,
            propagation: Propagation::Background,
            delete_after: None,
            common: tether_provider::CommonSettings::default(),
        });
        p.into_result(Self {
            cluster,
            namespaces,
            resources: types,
        })
    }
}

/// The watches and what they heard.
pub struct WatchSource {
    config: WatchConfig,
    started: OnceCell<()>,
    tx: mpsc::Sender<Delivery>,
    rx: tokio::sync::Mutex<mpsc::Receiver<Delivery>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for WatchSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchSource")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Drop for WatchSource {
    fn drop(&mut self) {
        for task in self.tasks.lock().expect("poisoned").drain(..) {
            task.abort();
        }
    }
}

/// Receipts: each event's own number (a watch needs no acknowledging).
static RECEIPTS: AtomicU64 = AtomicU64::new(0);

/// What one watched object of `api_version` and `kind` says: a hint naming its uid. (The
/// watch's type, not the object's own: a list's items of a built-in type carry none.)
fn reading(
    object: &DynamicObject,
    deleted: bool,
    api_version: &str,
    kind: &str,
) -> Option<Reading> {
    let uid = object.metadata.uid.clone()?;
    // A built-in type's state is read here only to spare a poll for progress; an end, a
    // deletion or a type without built-in conditions is polled.
    let judged = crate::builtin::of(api_version, kind).and_then(|_| {
        let handle =
            tether_provider::Handle::new(serde_json::json!({"av": api_version, "k": kind}));
        let judge = crate::adapter::Kubernetes::judge_of(&handle).ok()?;
        let value = serde_json::to_value(object).ok()?;
        Some(crate::adapter::judged_by(&judge, &value))
    });
    let progress = !deleted
        && object.metadata.deletion_timestamp.is_none()
        && judged
            .as_ref()
            .is_some_and(|s| matches!(s.state, JobState::Pending | JobState::Running));
    Some(Reading::Hint(Hint {
        kind: PROVIDER_KIND,
        reference: uid,
        region: None,
        at_ms: Some(chrono::Utc::now().timestamp_millis()),
        state: Some(if deleted {
            "Deleted".to_string()
        } else {
            judged.map_or_else(|| "Changed".to_string(), |s| s.raw_state)
        }),
        progress,
    }))
}

impl WatchSource {
    /// The source of `config`; its watches start at its first receive.
    pub fn new(config: WatchConfig) -> Self {
        let (tx, rx) = mpsc::channel(QUEUED);
        Self {
            config,
            started: OnceCell::new(),
            tx,
            rx: tokio::sync::Mutex::new(rx),
            tasks: Mutex::new(Vec::new()),
        }
    }

    async fn start(&self) -> Result<(), ProviderError> {
        let client = self
            .config
            .cluster
            .client(None)
            .await
            .map_err(|e| ProviderError::permanent(KIND, e))?;
        let default_ns = client.default_namespace().to_string();
        let selector = format!("{}={}", name::MANAGED_BY, name::MANAGED_BY_VALUE);
        let mut tasks = Vec::new();
        for (api_version, kind) in &self.config.resources {
            let (group, version) = api_version
                .rsplit_once('/')
                .unwrap_or(("", api_version.as_str()));
            let gvk = GroupVersionKind::gvk(group, version, kind);
            let (resource, _) = kube::discovery::pinned_kind(&client, &gvk)
                .await
                .map_err(|e| {
                    ProviderError::transient(
                        KIND,
                        format!("discovery of {kind} {api_version}: {e}"),
                    )
                })?;
            let apis: Vec<(String, Api<DynamicObject>)> = match &self.config.namespaces {
                None => vec![("*".into(), Api::all_with(client.clone(), &resource))],
                Some(list) if list.is_empty() => vec![(
                    default_ns.clone(),
                    Api::namespaced_with(client.clone(), &default_ns, &resource),
                )],
                Some(list) => list
                    .iter()
                    .map(|ns| {
                        (
                            ns.clone(),
                            Api::namespaced_with(client.clone(), ns, &resource),
                        )
                    })
                    .collect(),
            };
            for (ns, api) in apis {
                let tx = self.tx.clone();
                let config = watcher::Config::default().labels(&selector);
                let what = format!("{kind} in {ns}");
                let (api_version, kind) = (api_version.clone(), kind.clone());
                tasks.push(tokio::spawn(async move {
                    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
                    while let Some(event) = stream.next().await {
                        let (object, deleted) = match event {
                            Ok(Event::Apply(o) | Event::InitApply(o)) => (o, false),
                            Ok(Event::Delete(o)) => (o, true),
                            Ok(Event::Init | Event::InitDone) => continue,
                            Err(e) => {
                                tracing::warn!(watch = %what, error = %e, "kubernetes watch failed; resuming");
                                continue;
                            }
                        };
                        let Some(hint) = reading(&object, deleted, &api_version, &kind) else {
                            continue;
                        };
                        let receipt = RECEIPTS.fetch_add(1, Ordering::Relaxed).to_string();
                        if tx.send(Delivery { receipt, reading: Ok(hint) }).await.is_err() {
                            return;
                        }
                    }
                }));
            }
        }
        self.tasks.lock().expect("poisoned").extend(tasks);
        Ok(())
    }
}

#[async_trait]
impl EventSource for WatchSource {
    /// The changes the watches heard: waits up to 20 s for the first, then takes what else
    /// is there (up to 1,000).
    async fn receive(&self) -> tether_provider::Result<Vec<Delivery>> {
        self.started.get_or_try_init(|| self.start()).await?;
        let mut rx = self.rx.lock().await;
        let mut out = Vec::new();
        match tokio::time::timeout(WAIT, rx.recv()).await {
            Ok(Some(first)) => out.push(first),
            Ok(None) | Err(_) => return Ok(out),
        }
        while out.len() < BATCH {
            match rx.try_recv() {
                Ok(d) => out.push(d),
                Err(_) => break,
            }
        }
        Ok(out)
    }

    /// Nothing to acknowledge: a watch's events are not redelivered.
    async fn acknowledge(&self, _receipts: &[String]) -> tether_provider::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(status: serde_json::Value) -> DynamicObject {
        serde_json::from_value(json!({"metadata": {"name": "n", "uid": "u-1"}, "status": status}))
            .unwrap()
    }

    fn progress(r: Option<Reading>) -> bool {
        match r {
            Some(Reading::Hint(h)) => {
                assert_eq!((h.kind, h.reference.as_str()), ("kubernetes", "u-1"));
                h.progress
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_an_end_a_deletion_or_an_unknown_type_is_polled() {
        let running = object(json!({"active": 1}));
        let done = object(json!({"conditions": [{"type": "Complete", "status": "True"}]}));
        assert!(progress(reading(&running, false, "batch/v1", "Job")));
        assert!(!progress(reading(&done, false, "batch/v1", "Job")));
        assert!(!progress(reading(&running, true, "batch/v1", "Job")));
        assert!(!progress(reading(
            &running,
            false,
            "example.com/v1",
            "Train"
        )));
    }

    #[test]
    fn every_bad_field_is_named() {
        let table = |pairs: &[(&str, Setting)]| -> Table {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect()
        };
        let ok = WatchConfig::build("events.k8s", table(&[])).unwrap();
        assert_eq!(
            ok.resources,
            vec![("batch/v1".to_string(), "Job".to_string())]
        );
        assert_eq!(ok.namespaces, Some(Vec::new()));
        let all = WatchConfig::build(
            "events.k8s",
            table(&[("namespaces", Setting::List(vec!["*".into()]))]),
        )
        .unwrap();
        assert_eq!(all.namespaces, None);
        let errors = WatchConfig::build(
            "events.k8s",
            table(&[
                ("namespaces", Setting::List(vec!["Bad_NS".into()])),
                ("resources", Setting::List(vec!["Job".into()])),
                ("colour", "red".into()),
            ]),
        )
        .unwrap_err();
        for want in [
            "events.k8s.namespaces[0]",
            "events.k8s.resources[0]",
            "events.k8s.colour",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(want)),
                "{want}: {errors:?}"
            );
        }
    }
}
