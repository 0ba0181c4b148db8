//! tether keeps long-running remote jobs alive across worker crashes, evictions and retries,
//! on top of a durable task-state store in the spirit of Airflow's task state store (AIP-103).
//!
//! # Layout
//! - [`model`]: what tether records (identifiers and their rules, job records, task-state
//!   entries, typed ids and times), used by every layer and using none.
//! - [`db`]: the database layer: every SQL statement, connecting to SQLite (the embedded
//!   default) or PostgreSQL, the embedded migrations (`migrations/sqlite`,
//!   `migrations/postgres`) and the change feeds.
//! - [`state`]: the task-state store: values, versions with compare-and-set, retention, and
//!   garbage collection ([`state::gc`]). [`state::TaskState`] is its entry point.
//! - [`jobs`]: job history retention; the job types re-exported from [`model`] and [`db`].
//! - [`config`]: the TOML configuration and its checks.
//! - [`registry`]: the provider crates tether is built with, one line each.
//! - [`clock`]: time as the stores see it (replaceable in tests).
//! - [`crash`]: the named crash points of the crash tests (test builds only).
//! - [`error`]: the public [`Error`] and its mapping to exit codes.
//! - [`cli`]: the `tether` command line; `src/main.rs` only parses and calls into it.
//! - [`app`]: opening the database and building the services every command needs.
//! - [`maintenance`]: the scheduled sweep above both stores (expired state, old jobs).
//! - [`ui`]: the web view under `/ui` (an HTML shell and plain JavaScript over the API).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crash;
pub mod db;
pub mod engine;
pub mod error;
pub mod jobs;
pub mod maintenance;
pub mod metrics;
pub mod model;
pub mod registry;
pub mod state;
pub mod ui;

pub use error::Error;
