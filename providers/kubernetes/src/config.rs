//! Kubernetes settings: where the cluster and its credentials come from, the namespace
//! resources go in unless their spec names one, how a cancel deletes, and who deletes a
//! finished resource; and the common provider settings.
//!
//! Read from `[providers.NAME]` with `kind = "kubernetes"`:
//!
//! - `kubeconfig`: a kubeconfig file; else `KUBECONFIG`, else `~/.kube/config`, else the
//!   in-cluster service account (`KUBERNETES_SERVICE_HOST` and the mounted token), as kube-rs
//!   infers them. Client certificates, bearer tokens and exec credential plugins (EKS's
//!   `aws eks get-token`, GKE's `gke-gcloud-auth-plugin`) all work as kubectl's do.
//! - `context`: the kubeconfig context (default: its `current-context`).
//! - `namespace`: default namespace (else the context's, else `default`).
//! - `propagation_policy`: how a cancel's delete treats the resource's dependents:
//!   `Background` (default), `Foreground` or `Orphan`.
//! - `delete_after`: a finished Job is deleted this long after it ended, by Kubernetes'
//!   TTL-after-finished controller: tether sets the Job's `ttlSecondsAfterFinished` to it
//!   where the manifest sets none. Unset: a Job stays until someone deletes it (or its own
//!   `ttlSecondsAfterFinished` says). tether hears a Job's end through its watch within
//!   seconds; `delete_after` also bounds the account's `forgotten_after`, so tether warns
//!   if `poll_max` is longer than half of it.

use std::time::Duration;

use tether_provider::settings::Table;
use tether_provider::{CommonSettings, Problems};

/// How a cancel deletes: the `propagationPolicy` of its `DeleteOptions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// The resource goes at once; the garbage collector deletes its dependents (a Job's
    /// pods) after.
    Background,
    /// The resource stays, being deleted, until its dependents are gone.
    Foreground,
    /// The resource goes; its dependents stay.
    Orphan,
}

impl Propagation {
    /// As the API names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Background => "Background",
            Self::Foreground => "Foreground",
            Self::Orphan => "Orphan",
        }
    }
}

/// Checked Kubernetes settings (one account: one cluster and identity).
#[derive(Debug, Clone, PartialEq)]
pub struct KubeConfig {
    /// The kubeconfig file, if one is named (else kube-rs infers it).
    pub kubeconfig: Option<String>,
    /// The context, if one is named.
    pub context: Option<String>,
    /// The default namespace, if one is named.
    pub namespace: Option<String>,
    /// How a cancel deletes.
    pub propagation: Propagation,
    /// The `ttlSecondsAfterFinished` given to Jobs whose manifest has none.
    pub delete_after: Option<Duration>,
    /// Polling, rate limit, retries, timeouts.
    pub common: CommonSettings,
}

impl KubeConfig {
    /// Builds the settings from a provider table, reporting every bad field (prefixed with
    /// `prefix`, e.g. `providers.k8s`). A named kubeconfig must be readable and hold the named
    /// context.
    pub fn build(prefix: &str, mut table: Table) -> Result<Self, Vec<String>> {
        let mut p = Problems::new(prefix);
        table.remove("kind");
        let common = CommonSettings::take_from(&mut table, &mut p, &crate::edges::KUBERNETES);
        let kubeconfig = p.string(&mut table, "kubeconfig");
        let context = p.string(&mut table, "context");
        let namespace = p.string(&mut table, "namespace");
        let propagation = p.string(&mut table, "propagation_policy");
        let delete_after = p.duration(&mut table, "delete_after");
        p.unknown("", &table);
        if let Some(ns) = &namespace {
            if !crate::name::is_dns_label(ns) {
                p.at(
                    "namespace",
                    format!("{ns:?} is not a namespace name (a DNS-1123 label)"),
                );
            }
        }
        let propagation = match propagation.as_deref() {
            None | Some("Background") => Propagation::Background,
            Some("Foreground") => Propagation::Foreground,
            Some("Orphan") => Propagation::Orphan,
            Some(other) => {
                p.at(
                    "propagation_policy",
                    format!("{other:?} is not one of Background, Foreground, Orphan"),
                );
                Propagation::Background
            }
        };
        if let Some(path) = &kubeconfig {
            match kube::config::Kubeconfig::read_from(path) {
                Err(e) => p.at("kubeconfig", format!("cannot read {path}: {e}")),
                Ok(file) => {
                    if let Some(context) = &context {
                        if !file.contexts.iter().any(|c| c.name == *context) {
                            let known: Vec<&str> =
                                file.contexts.iter().map(|c| c.name.as_str()).collect();
                            p.at(
                                "context",
                                format!("{path} has no context {context:?} (it has {known:?})"),
                            );
                        }
                    }
                }
            }
        }
        if let Some(after) = delete_after {
            if after < Duration::from_secs(1) {
                p.at(
                    "delete_after",
                    "must be at least 1s (tether must read the end before it is deleted)",
                );
            }
        }
        let mut common = common;
        if let Some(after) = delete_after {
            // A Job deleted that long after its end is forgotten then: the account's
            // retention warning (poll_max against forgotten_after) covers it.
            common.forgotten_after = Some(common.forgotten_after.map_or(after, |f| f.min(after)));
        }
        p.into_result(Self {
            kubeconfig,
            context,
            namespace,
            propagation,
            delete_after,
            common,
        })
    }

    /// A kube-rs client of these settings, its reads bounded by `read_timeout` (`None`:
    /// kube-rs' own, as long watches need).
    pub async fn client(&self, read_timeout: Option<Duration>) -> Result<kube::Client, String> {
        let mut config = self.client_config().await?;
        if read_timeout.is_some() {
            config.read_timeout = read_timeout;
        }
        // Ring, as the rest of tether: the first caller installs it.
        let _ = rustls::crypto::ring::default_provider().install_default();
        kube::Client::try_from(config).map_err(|e| format!("kube client: {e}"))
    }

    /// The kube-rs client configuration these settings name.
    pub async fn client_config(&self) -> Result<kube::Config, String> {
        let options = kube::config::KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        let mut config = match &self.kubeconfig {
            Some(path) => {
                let file = kube::config::Kubeconfig::read_from(path)
                    .map_err(|e| format!("kubeconfig {path}: {e}"))?;
                kube::Config::from_custom_kubeconfig(file, &options)
                    .await
                    .map_err(|e| format!("kubeconfig {path}: {e}"))?
            }
            None if self.context.is_some() => kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|e| format!("kubeconfig: {e}"))?,
            None => kube::Config::infer().await.map_err(|e| {
                format!("no cluster: {e} (set kubeconfig, KUBECONFIG, or run in a cluster)")
            })?,
        };
        if let Some(ns) = &self.namespace {
            config.default_namespace = ns.clone();
        }
        Ok(config)
    }
}
