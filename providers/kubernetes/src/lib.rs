//! tether's Kubernetes provider (`kind = "kubernetes"`, issue 37), being built: any namespaced
//! resource as a job.
//!
//! - `condition.rs`: success and failure conditions over a resource's status, in Argo's
//!   `successCondition` syntax, with selectors for condition lists;
//! - `builtin.rs`: the conditions of `batch/v1` Job, `SparkApplication`, `RayJob`,
//!   `PyTorchJob` and Argo's `Workflow`, so that their specs need none;
//! - `name.rs`: one resource per key (its name, label and annotation);
//! - `spec.rs`: a job's spec checked (the manifest, its namespace, the conditions).
//!
//! Not yet here: the adapter (kube-rs), the watch, the simulator, the registry's line.

pub mod builtin;
pub mod condition;
pub mod name;
pub mod spec;
