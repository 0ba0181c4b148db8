//! tether's Kubernetes provider (`kind = "kubernetes"`): any namespaced resource as a job
//! (a `batch/v1` Job, a `SparkApplication`, a `RayJob`, a `PyTorchJob`, an Argo `Workflow`,
//! any custom resource), created from a manifest and judged by conditions over its status.
//!
//! - `factory.rs`: [`FACTORY`], what tether's registry lists.
//! - `config.rs`: the cluster (kubeconfig, context, in-cluster), default namespace, cancel's
//!   propagation policy, `delete_after`.
//! - `adapter.rs`: the adapter on kube-rs: create under the key's name (409 adopted only if
//!   the annotation names the key), reads fenced by `metadata.uid`, delete with
//!   `preconditions.uid`, sweeps by label.
//! - `spec.rs`: a job's spec checked (the manifest, its namespace, the conditions).
//! - `condition.rs`: success and failure conditions in Argo's `successCondition` syntax, with
//!   selectors for condition lists; `builtin.rs`: the conditions of the common resources.
//! - `name.rs`: one resource per key (its name, label and annotation).
//! - `watch.rs`: the event source (`[events.NAME] kind = "kubernetes-watch"`): watches of
//!   tether's label whose changes make the jobs they name due now.
//! - `edges.rs`: the catalog of the API's documented hard edges.
//! - `sim/` (feature `sim`): a simulator of the API server's part that tether, `kubectl` and
//!   the Python client use (`tether sim kubernetes`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod adapter;
pub mod builtin;
pub mod condition;
pub mod config;
pub mod edges;
pub mod factory;
pub mod name;
#[cfg(feature = "sim")]
pub mod sim;
pub mod spec;
pub mod watch;

pub use adapter::Kubernetes;
pub use config::KubeConfig;
pub use factory::FACTORY;
