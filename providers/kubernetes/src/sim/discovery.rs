//! The resource types the simulated API server serves, and its discovery documents: `/api`,
//! `/apis`, and each group version's resource list, as client-go, kube-rs and the Python
//! client read them to find a kind's plural and scope.
//!
//! Built in: `v1` `Namespace` (cluster-scoped) and `ConfigMap`, `batch/v1` `Job`, and
//! `apiextensions.k8s.io/v1` `CustomResourceDefinition`. Creating a CRD registers its kind
//! (every version it serves), as the real server does once the CRD is established; deleting it
//! unregisters it. The operators' resources of tether's built-in conditions (Spark, Ray,
//! Kubeflow, Argo) are registered when the simulator starts, as on a cluster where those
//! operators are installed.

use serde_json::{json, Value};

/// One resource type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// Its API group (empty: the core group).
    pub group: String,
    /// The versions it is served in, the first preferred.
    pub versions: Vec<String>,
    /// Its kind.
    pub kind: String,
    /// Its plural (the path segment).
    pub plural: String,
    /// Its singular name.
    pub singular: String,
    /// Whether its objects live in namespaces.
    pub namespaced: bool,
}

impl ResourceType {
    fn new(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Self {
        Self {
            group: group.into(),
            versions: vec![version.into()],
            kind: kind.into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            namespaced,
        }
    }

    /// `group/version` (or `version` for the core group).
    pub fn group_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// `plural.group` (or `plural`), as error messages name the resource.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// The types served.
#[derive(Debug, Clone)]
pub struct Types(Vec<ResourceType>);

/// The operators' resources registered at start: (group, version, kind, plural).
pub const OPERATORS: &[(&str, &str, &str, &str)] = &[
    (
        "sparkoperator.k8s.io",
        "v1beta2",
        "SparkApplication",
        "sparkapplications",
    ),
    ("ray.io", "v1", "RayJob", "rayjobs"),
    ("kubeflow.org", "v1", "PyTorchJob", "pytorchjobs"),
    ("argoproj.io", "v1alpha1", "Workflow", "workflows"),
];

impl Default for Types {
    fn default() -> Self {
        let mut types = vec![
            ResourceType::new("", "v1", "Namespace", "namespaces", false),
            ResourceType::new("", "v1", "ConfigMap", "configmaps", true),
            ResourceType::new("batch", "v1", "Job", "jobs", true),
            ResourceType::new(
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
                "customresourcedefinitions",
                false,
            ),
        ];
        types.extend(
            OPERATORS
                .iter()
                .map(|(g, v, k, p)| ResourceType::new(g, v, k, p, true)),
        );
        Self(types)
    }
}

impl Types {
    /// The type served at `group`/`version` under `plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.0.iter().find(|t| {
            t.group == group && t.plural == plural && t.versions.iter().any(|v| v == version)
        })
    }

    /// Registers the kind a `CustomResourceDefinition` defines, or says what is wrong with it
    /// (as the server's validation would, naming the field).
    pub fn register(&mut self, crd: &Value) -> Result<ResourceType, String> {
        let spec = &crd["spec"];
        let text = |v: &Value, field: &str| {
            v.as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| format!("{field}: Required value"))
        };
        let group = text(&spec["group"], "spec.group")?;
        let plural = text(&spec["names"]["plural"], "spec.names.plural")?;
        let kind = text(&spec["names"]["kind"], "spec.names.kind")?;
        let name = crd["metadata"]["name"].as_str().unwrap_or_default();
        if name != format!("{plural}.{group}") {
            return Err(format!(
                "metadata.name: Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"
            ));
        }
        let versions: Vec<String> = spec["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v["served"].as_bool().unwrap_or(false))
            .filter_map(|v| v["name"].as_str().map(str::to_string))
            .collect();
        if versions.is_empty() {
            return Err("spec.versions: Invalid value: must have exactly one version marked as storage version and serve at least one".into());
        }
        let ty = ResourceType {
            singular: spec["names"]["singular"]
                .as_str()
                .map_or_else(|| kind.to_lowercase(), str::to_string),
            group,
            versions,
            kind,
            plural,
            namespaced: spec["scope"].as_str() != Some("Cluster"),
        };
        self.0
            .retain(|t| !(t.group == ty.group && t.plural == ty.plural));
        self.0.push(ty.clone());
        Ok(ty)
    }

    /// Unregisters the kind of the CRD named `name` (`plural.group`).
    pub fn unregister(&mut self, name: &str) {
        self.0
            .retain(|t| t.qualified() != name || t.group.is_empty());
    }

    /// `/api`: the core group's versions.
    pub fn core_versions() -> Value {
        json!({"kind": "APIVersions", "versions": ["v1"],
               "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
    }

    /// `/apis`: every named group and its versions.
    pub fn groups(&self) -> Value {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for t in self.0.iter().filter(|t| !t.group.is_empty()) {
            match groups.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, versions)) => {
                    for v in &t.versions {
                        if !versions.contains(v) {
                            versions.push(v.clone());
                        }
                    }
                }
                None => groups.push((t.group.clone(), t.versions.clone())),
            }
        }
        let groups: Vec<Value> = groups
            .iter()
            .map(|(g, versions)| {
                let gv = |v: &String| json!({"groupVersion": format!("{g}/{v}"), "version": v});
                json!({"name": g, "versions": versions.iter().map(gv).collect::<Vec<_>>(),
                       "preferredVersion": gv(&versions[0])})
            })
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// A group version's resource list (`/api/v1`, `/apis/batch/v1`), if it is served.
    pub fn resources(&self, group: &str, version: &str) -> Option<Value> {
        let served: Vec<&ResourceType> = self
            .0
            .iter()
            .filter(|t| t.group == group && t.versions.iter().any(|v| v == version))
            .collect();
        if served.is_empty() {
            return None;
        }
        let verbs = [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ];
        let mut resources = Vec::new();
        for t in served {
            resources.push(json!({"name": t.plural, "singularName": t.singular,
                "namespaced": t.namespaced, "kind": t.kind, "verbs": verbs}));
            resources.push(
                json!({"name": format!("{}/status", t.plural), "singularName": "",
                "namespaced": t.namespaced, "kind": t.kind, "verbs": ["get", "patch", "update"]}),
            );
        }
        Some(json!({"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": if group.is_empty() { version.to_string() } else { format!("{group}/{version}") },
            "resources": resources}))
    }
}
