//! The `kubernetes` adapter: any namespaced resource as a job, through kube-rs.
//!
//! - **Submit**: the manifest gets the name derived from the key (`name.rs`), tether's labels
//!   and the key's annotation, and is created (`POST`). A `409 AlreadyExists` is read: a
//!   resource whose annotation names this key is the one an earlier try made (adopted), any
//!   other is refused with an error naming it. So a submit repeated after a lost answer makes
//!   no second resource.
//! - **Handle**: namespace, name, `metadata.uid`, apiVersion, kind and plural (no discovery
//!   needed to read it again), and the spec's own conditions where it gave any.
//! - **Status**: a `GET` by name whose uid must be the handle's: a resource of that name with
//!   another uid was deleted and re-created by someone, and is never taken for ours (ours is
//!   gone). Judged by the success and failure conditions (`condition.rs`, `builtin.rs`).
//! - **Cancel**: `DELETE` with `preconditions.uid` (a cancel never deletes a resource that
//!   replaced ours) and the account's `propagationPolicy`.
//! - **Sweep**: one list per namespace and resource type, selected by tether's label, paged.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams,
    Preconditions, PropagationPolicy,
};
use kube::Client;
use serde_json::{json, Value};
use tether_provider::{
    CommonSettings, ErrorKind, Handle, JobState, Provider, ProviderError, RateLimiter,
    RemoteStatus, Result, SendGate, Sweep, Tracked,
};
use tokio::sync::OnceCell;

use crate::builtin;
use crate::condition::{Condition, Path};
use crate::config::{KubeConfig, Propagation};
use crate::name;
use crate::spec::Spec;

/// The kind's name.
pub const KIND: &str = "kubernetes";

/// Items a sweep's list asks for a page.
const PAGE: u32 = 500;

/// The adapter of one account.
pub struct Kubernetes {
    config: KubeConfig,
    client: OnceCell<Client>,
    limiter: RateLimiter,
    /// Discovery's answers: (apiVersion, kind) -> the resource and whether it is namespaced.
    resources: Mutex<HashMap<(String, String), (ApiResource, bool)>>,
}

impl std::fmt::Debug for Kubernetes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // kube's Client is not Debug; the settings say which cluster.
        f.debug_struct("Kubernetes")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// How a resource is judged: the conditions of its handle.
#[derive(Debug)]
pub struct Judge {
    success: Condition,
    failure: Vec<Condition>,
    message: Option<Path>,
    /// Where its status names its state, for the raw state (`builtin.rs`).
    state: Option<Path>,
}

impl Kubernetes {
    /// The adapter of `config`; its client is made at its first call.
    pub fn new(config: KubeConfig) -> Self {
        let limiter = RateLimiter::new(config.common.rate_per_second, config.common.rate_burst);
        Self {
            config,
            client: OnceCell::new(),
            limiter,
            resources: Mutex::new(HashMap::new()),
        }
    }

    async fn client(&self) -> Result<&Client> {
        self.client
            .get_or_try_init(|| async {
                self.config
                    .client(Some(self.config.common.request_timeout))
                    .await
                    .map_err(|e| ProviderError::permanent(KIND, e))
            })
            .await
    }

    /// Waits for the account's rate limit.
    async fn slot(&self) {
        self.limiter.acquire().await;
    }

    /// `e`, from a call about `what`, as tether classifies it.
    fn classify(&self, e: kube::Error, what: &str) -> ProviderError {
        let kube::Error::Api(status) = e else {
            // Connection refused or cut, a timeout, TLS: the request may or may not have
            // been carried out.
            return ProviderError::transient(KIND, format!("{what}: {e}"));
        };
        let retry_after = status
            .details
            .as_ref()
            .map(|d| d.retry_after_seconds)
            .filter(|s| *s > 0)
            .map(|s| std::time::Duration::from_secs(u64::from(s)));
        let message = format!(
            "{what}: {} ({} {})",
            status.message, status.code, status.reason
        );
        let kind = match (status.code, status.reason.as_str()) {
            (404, _) => ErrorKind::NotFound,
            // 410 Expired: a version or continue token too old; asking afresh works.
            (410 | 429 | 500..=599, _) => ErrorKind::Transient,
            (409, "Conflict") => ErrorKind::Transient,
            // A quota frees up as other work ends; any other refusal stays.
            (403, _) if status.message.contains("exceeded quota") => ErrorKind::Transient,
            (400 | 403 | 422, _) => ErrorKind::InvalidSpec,
            _ => ErrorKind::Permanent,
        };
        if kind == ErrorKind::Transient {
            if let Some(wait) = retry_after {
                self.limiter.pause(wait);
            }
        }
        ProviderError::new(KIND, kind, message).with_retry_after(retry_after)
    }

    /// The resource type of (apiVersion, kind), by discovery (cached).
    async fn resource(&self, api_version: &str, kind: &str) -> Result<(ApiResource, bool)> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(found) = self.resources.lock().expect("poisoned").get(&key) {
            return Ok(found.clone());
        }
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let client = self.client().await?;
        self.slot().await;
        let found = match kube::discovery::pinned_kind(client, &gvk).await {
            Ok((resource, caps)) => (resource, caps.scope == kube::discovery::Scope::Namespaced),
            Err(kube::Error::Api(s)) if s.code == 404 => {
                return Err(ProviderError::invalid_spec(
                    KIND,
                    format!(
                        "the cluster serves no {kind} of {api_version} (is its CRD installed?)"
                    ),
                ))
            }
            Err(kube::Error::Discovery(e)) => {
                return Err(ProviderError::invalid_spec(
                    KIND,
                    format!("the cluster serves no {kind} of {api_version}: {e}"),
                ))
            }
            Err(e) => return Err(self.classify(e, &format!("discovery of {kind} {api_version}"))),
        };
        self.resources
            .lock()
            .expect("poisoned")
            .insert(key, found.clone());
        Ok(found)
    }

    async fn api(&self, resource: &ApiResource, namespace: &str) -> Result<Api<DynamicObject>> {
        let client = self.client().await?.clone();
        Ok(Api::namespaced_with(client, namespace, resource))
    }

    /// The namespace of a spec: its own, the account's, or the context's.
    async fn namespace(&self, spec: &Spec) -> Result<String> {
        if let Some(ns) = spec
            .namespace
            .clone()
            .or_else(|| self.config.namespace.clone())
        {
            return Ok(ns);
        }
        Ok(self.client().await?.default_namespace().to_string())
    }

    /// The manifest as tether creates it: its name, namespace, labels and annotation.
    fn manifest(&self, spec: &Spec, name: &str, namespace: &str, key: &str) -> Value {
        let mut manifest = spec.manifest.clone();
        let meta = &mut manifest["metadata"];
        if !meta.is_object() {
            *meta = json!({});
        }
        if let Some(m) = meta.as_object_mut() {
            m.remove("generateName");
        }
        meta["name"] = json!(name);
        meta["namespace"] = json!(namespace);
        if !meta["labels"].is_object() {
            meta["labels"] = json!({});
        }
        meta["labels"][name::MANAGED_BY] = json!(name::MANAGED_BY_VALUE);
        meta["labels"][name::KEY_DIGEST] = json!(name::key_digest(key));
        if !meta["annotations"].is_object() {
            meta["annotations"] = json!({});
        }
        meta["annotations"][name::KEY] = json!(key);
        if let (Some(after), true) = (
            self.config.delete_after,
            spec.kind == "Job" && spec.api_version == "batch/v1",
        ) {
            if manifest["spec"]["ttlSecondsAfterFinished"].is_null() {
                manifest["spec"]["ttlSecondsAfterFinished"] = json!(after.as_secs());
            }
        }
        manifest
    }

    /// The handle of `object`, made from `raw` (the spec as given).
    fn handle(object: &DynamicObject, resource: &ApiResource, raw: &Value) -> Handle {
        let mut h = json!({
            "ns": object.metadata.namespace,
            "name": object.metadata.name,
            "uid": object.metadata.uid,
            "av": resource.api_version,
            "k": resource.kind,
            "p": resource.plural,
        });
        for (field, short) in [("success", "s"), ("failure", "f"), ("message", "m")] {
            if !raw[field].is_null() {
                h[short] = raw[field].clone();
            }
        }
        Handle::new(h)
    }

    /// The handle's resource type.
    fn resource_of(handle: &Handle) -> Result<(ApiResource, String, String, String)> {
        let bad = || ProviderError::permanent(KIND, format!("{handle}: not a kubernetes handle"));
        let av = handle.get_str("av").ok_or_else(bad)?;
        let (group, version) = av.rsplit_once('/').unwrap_or(("", av.as_str()));
        let resource = ApiResource {
            group: group.to_string(),
            version: version.to_string(),
            api_version: av.clone(),
            kind: handle.get_str("k").ok_or_else(bad)?,
            plural: handle.get_str("p").ok_or_else(bad)?,
        };
        Ok((
            resource,
            handle.get_str("ns").ok_or_else(bad)?,
            handle.get_str("name").ok_or_else(bad)?,
            handle.get_str("uid").ok_or_else(bad)?,
        ))
    }

    /// How the handle's resource is judged: its own conditions, else the built-in ones.
    pub fn judge_of(handle: &Handle) -> Result<Judge> {
        let av = handle.get_str("av").unwrap_or_default();
        let kind = handle.get_str("k").unwrap_or_default();
        let builtin = builtin::of(&av, &kind);
        let bad = |e: String| ProviderError::permanent(KIND, format!("{handle}: {e}"));
        let success = match (handle.get_str("s"), builtin) {
            (Some(s), _) => Condition::parse(&s).map_err(bad)?,
            (None, Some(b)) => Condition::parse(b.success).map_err(bad)?,
            (None, None) => return Err(bad("no success condition".into())),
        };
        let failure = match (handle.get("f"), builtin) {
            (Some(Value::String(s)), _) => vec![Condition::parse(&s).map_err(bad)?],
            (Some(Value::Array(list)), _) => list
                .iter()
                .map(|v| Condition::parse(v.as_str().unwrap_or_default()))
                .collect::<Result<_, _>>()
                .map_err(bad)?,
            (_, Some(b)) => b
                .failure
                .iter()
                .map(|f| Condition::parse(f))
                .collect::<Result<_, _>>()
                .map_err(bad)?,
            (_, None) => return Err(bad("no failure condition".into())),
        };
        let message = match (handle.get_str("m"), builtin) {
            (Some(m), _) => Some(Path::parse(&m).map_err(bad)?),
            (None, Some(b)) => Path::parse(b.message).ok(),
            (None, None) => None,
        };
        let state = builtin.and_then(|b| Path::parse(b.state).ok());
        Ok(Judge {
            success,
            failure,
            message,
            state,
        })
    }
}

/// What `resource` says of its job, by `judge`.
pub fn judged_by(judge: &Judge, resource: &Value) -> RemoteStatus {
    let status = &resource["status"];
    let empty = status.as_object().is_none_or(serde_json::Map::is_empty);
    let raw = match judge.state.as_ref().and_then(|p| p.get(resource)) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        // A list of conditions: the type of the last that holds.
        Some(Value::Array(conditions)) => conditions
            .iter()
            .rev()
            .find(|c| c["status"] == "True")
            .and_then(|c| c["type"].as_str())
            .map(str::to_string)
            .unwrap_or_else(|| if empty { "Pending" } else { "Running" }.to_string()),
        _ if empty => "Pending".to_string(),
        _ => "Running".to_string(),
    };
    let message = judge
        .message
        .as_ref()
        .and_then(|p| p.get(resource))
        .and_then(|v| match v {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Null | Value::String(_) => None,
            other => Some(other.to_string()),
        });
    let state = if judge.failure.iter().any(|f| f.holds(resource)) {
        JobState::Failed
    } else if judge.success.holds(resource) {
        JobState::Succeeded
    } else if empty {
        JobState::Pending
    } else {
        JobState::Running
    };
    RemoteStatus::new(state, raw, message)
}

#[async_trait]
impl Provider for Kubernetes {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn validate_spec(&self, spec: &Value) -> Result<(), ProviderError> {
        Spec::parse(spec)
            .map(|_| ())
            .map_err(|problems| ProviderError::invalid_spec(KIND, problems.join("; ")))
    }

    /// Creates the resource under the key's name; a 409 is the resource an earlier try made
    /// if its annotation names the key (so a repeated submit makes none; no gate needed).
    async fn submit(&self, raw: &Value, key: &str, _gate: &dyn SendGate) -> Result<Handle> {
        let spec = Spec::parse(raw)
            .map_err(|problems| ProviderError::invalid_spec(KIND, problems.join("; ")))?;
        let (resource, namespaced) = self.resource(&spec.api_version, &spec.kind).await?;
        if !namespaced {
            return Err(ProviderError::invalid_spec(
                KIND,
                format!(
                    "{} is cluster-scoped: tether runs namespaced resources only",
                    spec.kind
                ),
            ));
        }
        let namespace = self.namespace(&spec).await?;
        let name = spec.name_for(key);
        let manifest = self.manifest(&spec, &name, &namespace, key);
        let object: DynamicObject = serde_json::from_value(manifest)
            .map_err(|e| ProviderError::invalid_spec(KIND, format!("manifest: {e}")))?;
        let api = self.api(&resource, &namespace).await?;
        self.slot().await;
        let what = format!("create {} {namespace}/{name}", spec.kind);
        match api.create(&PostParams::default(), &object).await {
            Ok(made) => Ok(Self::handle(&made, &resource, raw)),
            Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists" => {
                // The name is taken; read what took it (again, within the account's grace,
                // while it is not readable yet).
                let grace = std::time::Instant::now() + self.config.common.not_found_grace;
                let found = loop {
                    self.slot().await;
                    let found = api
                        .get_opt(&name)
                        .await
                        .map_err(|e| self.classify(e, &what))?;
                    if found.is_some() || std::time::Instant::now() >= grace {
                        break found;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                };
                match found {
                    Some(existing) if annotated(&existing, key) => {
                        Ok(Self::handle(&existing, &resource, raw))
                    }
                    Some(existing) => Err(ProviderError::permanent(
                        KIND,
                        format!(
                            "{what}: a {} named {name} exists in {namespace} and is not this job's \
                             (its {} annotation is {:?}, uid {}); tether will not adopt it",
                            spec.kind,
                            name::KEY,
                            existing.metadata.annotations.as_ref().and_then(|a| a.get(name::KEY)),
                            existing.metadata.uid.as_deref().unwrap_or("?"),
                        ),
                    )),
                    // Deleted between the two calls: the next try creates it.
                    None => Err(ProviderError::transient(
                        KIND,
                        format!("{what}: it existed (409), then was gone"),
                    )),
                }
            }
            // The namespace does not exist (or was deleted): the spec names a place that is not.
            Err(kube::Error::Api(s)) if s.code == 404 => Err(ProviderError::invalid_spec(
                KIND,
                format!("{what}: {} (404)", s.message),
            )),
            Err(e) => Err(self.classify(e, &what)),
        }
    }

    fn submit_is_idempotent(&self) -> bool {
        true
    }

    /// The create's answer (or the read that adopted it) is the stored resource, with its
    /// uid: one gone before tether's first read was deleted (a TTL of 0, a person), never
    /// "not made", so it ends outcome_unknown and no retry creates it again.
    fn handle_proves_existence(&self) -> bool {
        true
    }

    async fn status(&self, handle: &Handle) -> Result<RemoteStatus, ProviderError> {
        let (resource, namespace, name, uid) = Self::resource_of(handle)?;
        let judge = Self::judge_of(handle)?;
        let api = self.api(&resource, &namespace).await?;
        self.slot().await;
        let what = format!("get {} {namespace}/{name}", resource.kind);
        let found = api
            .get_opt(&name)
            .await
            .map_err(|e| self.classify(e, &what))?;
        let object = match found {
            None => return Err(ProviderError::not_found(KIND, format!("{what}: gone"))),
            Some(o) if o.metadata.uid.as_deref() != Some(uid.as_str()) => {
                return Err(ProviderError::not_found(
                    KIND,
                    format!(
                        "{what}: gone; a resource of that name with uid {} replaced it (ours was {uid}), \
                         never taken for ours",
                        o.metadata.uid.as_deref().unwrap_or("?")
                    ),
                ))
            }
            Some(o) => o,
        };
        let value = serde_json::to_value(&object)
            .map_err(|e| ProviderError::transient(KIND, format!("{what}: {e}")))?;
        Ok(judged_by(&judge, &value))
    }

    /// Deletes the resource if it is still ours (`preconditions.uid`), with the account's
    /// propagation policy.
    async fn cancel(&self, handle: &Handle) -> Result<(), ProviderError> {
        let (resource, namespace, name, uid) = Self::resource_of(handle)?;
        let api = self.api(&resource, &namespace).await?;
        let params = DeleteParams {
            propagation_policy: Some(match self.config.propagation {
                Propagation::Background => PropagationPolicy::Background,
                Propagation::Foreground => PropagationPolicy::Foreground,
                Propagation::Orphan => PropagationPolicy::Orphan,
            }),
            preconditions: Some(Preconditions {
                uid: Some(uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        self.slot().await;
        let what = format!("delete {} {namespace}/{name}", resource.kind);
        match api.delete(&name, &params).await {
            Ok(_) => Ok(()),
            // Another uid under our name: ours is gone already. The server words it two ways
            // (its check before the delete, and storage's if the object changed between).
            Err(kube::Error::Api(s))
                if s.code == 409
                    && (s.message.contains("UID in the precondition")
                        || s.message.contains("Precondition failed")) =>
            {
                Err(ProviderError::not_found(
                    KIND,
                    format!(
                        "{what}: gone, another resource has its name ({})",
                        s.message
                    ),
                ))
            }
            Err(e) => Err(self.classify(e, &what)),
        }
    }

    /// The resource under the key's name, if its annotation names the key.
    async fn find(&self, key: &str, raw: &Value, _intent_ms: i64) -> Result<Vec<Handle>> {
        let spec = Spec::parse(raw)
            .map_err(|problems| ProviderError::invalid_spec(KIND, problems.join("; ")))?;
        let (resource, _) = self.resource(&spec.api_version, &spec.kind).await?;
        let namespace = self.namespace(&spec).await?;
        let name = spec.name_for(key);
        let api = self.api(&resource, &namespace).await?;
        self.slot().await;
        let what = format!("get {} {namespace}/{name}", spec.kind);
        match api
            .get_opt(&name)
            .await
            .map_err(|e| self.classify(e, &what))?
        {
            Some(o) if annotated(&o, key) => Ok(vec![Self::handle(&o, &resource, raw)]),
            _ => Ok(Vec::new()),
        }
    }

    fn coalesces(&self) -> bool {
        self.config.common.coalesce
    }

    /// One paged list per namespace and resource type, selected by tether's label; statuses
    /// matched by uid.
    async fn status_many(&self, jobs: &[Tracked<'_>]) -> Result<Sweep, ProviderError> {
        let mut groups: HashMap<(String, String, String, String), Vec<usize>> = HashMap::new();
        for (i, job) in jobs.iter().enumerate() {
            if let Ok((r, ns, _, _)) = Self::resource_of(job.handle) {
                groups
                    .entry((ns, r.api_version, r.kind, r.plural))
                    .or_default()
                    .push(i);
            }
        }
        let mut sweep = Sweep {
            statuses: vec![None; jobs.len()],
            calls: 0,
        };
        let selector = format!("{}={}", name::MANAGED_BY, name::MANAGED_BY_VALUE);
        for ((namespace, av, kind, plural), members) in groups {
            let (group, version) = av.rsplit_once('/').unwrap_or(("", av.as_str()));
            let resource = ApiResource {
                group: group.into(),
                version: version.into(),
                api_version: av.clone(),
                kind: kind.clone(),
                plural,
            };
            let api = self.api(&resource, &namespace).await?;
            // Each tracked job of the group, by uid: judged as its page comes, so that a sweep
            // of 10,000 resources holds one page of them at a time.
            let mut wanted: HashMap<String, Vec<usize>> = HashMap::new();
            for i in members {
                if let Some(uid) = jobs[i].handle.get_str("uid") {
                    wanted.entry(uid).or_default().push(i);
                }
            }
            let mut params = ListParams::default().labels(&selector).limit(PAGE);
            let mut restarted = false;
            loop {
                self.slot().await;
                sweep.calls += 1;
                let page = match api.list(&params).await {
                    Ok(page) => page,
                    // The continue token expired (410 Expired): the list starts again, once.
                    Err(kube::Error::Api(s)) if s.code == 410 && !restarted => {
                        restarted = true;
                        params = ListParams::default().labels(&selector).limit(PAGE);
                        continue;
                    }
                    Err(e) => return Err(self.classify(e, &format!("list {kind} in {namespace}"))),
                };
                for item in &page.items {
                    let Some(at) = item.metadata.uid.as_ref().and_then(|u| wanted.get(u)) else {
                        continue;
                    };
                    let Ok(value) = serde_json::to_value(item) else {
                        continue;
                    };
                    for &i in at {
                        if let Ok(judge) = Self::judge_of(jobs[i].handle) {
                            sweep.statuses[i] = Some(judged_by(&judge, &value));
                        }
                    }
                }
                match page.metadata.continue_.filter(|c| !c.is_empty()) {
                    Some(token) => params = params.continue_token(&token),
                    None => break,
                }
            }
        }
        Ok(sweep)
    }

    /// The resource's uid: what its watch events name.
    fn handle_ref(&self, handle: &Handle) -> String {
        handle.get_str("uid").unwrap_or_default()
    }

    fn settings(&self) -> &CommonSettings {
        &self.config.common
    }

    fn rate_limiter(&self) -> Option<&RateLimiter> {
        Some(&self.limiter)
    }
}

/// Whether `object`'s annotation names `key`.
fn annotated(object: &DynamicObject, key: &str) -> bool {
    object
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(name::KEY))
        .is_some_and(|k| k == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job_handle(extra: Value) -> Handle {
        let mut h =
            json!({"ns": "d", "name": "n", "uid": "u", "av": "batch/v1", "k": "Job", "p": "jobs"});
        if let (Some(h), Some(extra)) = (h.as_object_mut(), extra.as_object()) {
            h.extend(extra.clone());
        }
        Handle::new(h)
    }

    #[test]
    fn a_job_is_judged_by_its_terminal_conditions() {
        let judge = Kubernetes::judge_of(&job_handle(json!({}))).unwrap();
        let read = |status: Value| judged_by(&judge, &json!({"status": status}));
        assert_eq!(read(json!({})).state, JobState::Pending);
        let running = read(json!({"active": 1}));
        assert_eq!(
            (running.state, running.raw_state.as_str()),
            (JobState::Running, "Running")
        );
        let met = read(json!({"conditions": [{"type": "SuccessCriteriaMet", "status": "True"}]}));
        assert_eq!(
            (met.state, met.raw_state.as_str()),
            (JobState::Running, "SuccessCriteriaMet")
        );
        let done = read(
            json!({"conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
            {"type": "Complete", "status": "True"}]}),
        );
        assert_eq!(
            (done.state, done.raw_state.as_str()),
            (JobState::Succeeded, "Complete")
        );
        let failed = read(
            json!({"conditions": [{"type": "FailureTarget", "status": "True"},
            {"type": "Failed", "status": "True", "message": "Job has reached the specified backoff limit"}]}),
        );
        assert_eq!(failed.state, JobState::Failed);
        assert_eq!(
            failed.message.as_deref(),
            Some("Job has reached the specified backoff limit")
        );
    }

    #[test]
    fn the_manifest_gets_its_name_labels_annotation_and_time_to_live() {
        let mut table = tether_provider::settings::Table::new();
        table.insert("delete_after".into(), "1h".into());
        let k = Kubernetes::new(KubeConfig::build("providers.k8s", table).unwrap());
        let spec = Spec::parse(
            &json!({"manifest": {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"generateName": "etl-", "labels": {"team": "data"}}, "spec": {}}}),
        )
        .unwrap();
        let m = k.manifest(&spec, "etl-0123", "data", "tether-key");
        assert_eq!(m["metadata"]["name"], "etl-0123");
        assert!(m["metadata"].get("generateName").is_none());
        assert_eq!(m["metadata"]["labels"]["team"], "data");
        assert_eq!(m["metadata"]["labels"][name::MANAGED_BY], "tether");
        assert_eq!(m["metadata"]["annotations"][name::KEY], "tether-key");
        assert_eq!(m["spec"]["ttlSecondsAfterFinished"], 3600);
        assert_eq!(
            k.config.common.forgotten_after,
            Some(std::time::Duration::from_secs(3600))
        );
    }

    #[test]
    fn a_handle_s_own_conditions_replace_the_built_in_ones() {
        let judge = Kubernetes::judge_of(&job_handle(
            json!({"s": "status.succeeded > 2", "f": ["status.failed > 0"]}),
        ))
        .unwrap();
        assert_eq!(
            judged_by(&judge, &json!({"status": {"succeeded": 3}})).state,
            JobState::Succeeded
        );
        assert_eq!(
            judged_by(&judge, &json!({"status": {"succeeded": 1}})).state,
            JobState::Running
        );
        let custom = Handle::new(
            json!({"ns": "d", "name": "n", "uid": "u", "av": "x.io/v1", "k": "T", "p": "ts"}),
        );
        assert!(
            Kubernetes::judge_of(&custom).is_err(),
            "a custom resource without conditions"
        );
    }
}
