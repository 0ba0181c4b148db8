//! Key namespaces (issue 32, finding 3), on both backends: each database makes its own when
//! first migrated and keeps it; `jobs.key_namespace` overrides it; `tether migrate` prints it
//! and `GET /v1/info` answers it; and two deployments on one Databricks workspace make two
//! runs for the same task instance unless they share a namespace on purpose.

mod common;

use tether::engine::{EnsureAction, EnsureRequest, NamespaceSource};
use tether::state::TaskInstanceId;

use common::{app_for, quick_sim, spec, TestDb};

fn request() -> EnsureRequest {
    EnsureRequest {
        task_instance: TaskInstanceId::new(
            "etl",
            "scheduled__2026-12-01T00:00:00+00:00",
            "load",
            -1,
        ),
        try_number: 1,
        name: "main".into(),
        provider: "databricks".into(),
        spec: spec("load"),
    }
}

/// A database's namespace is made once and kept; another database has another; the
/// configuration's wins and is reported as such.
async fn each_database_has_its_own_namespace(db: TestDb) {
    let sim = quick_sim().await;
    let first = app_for(&db, &sim.url(), "2s", "").await;
    let ns = first.engine.key_namespace().clone();
    assert_eq!(ns.source, NamespaceSource::Database);
    assert_eq!(ns.value.len(), 32, "{ns}");
    assert!(ns.value.chars().all(|c| c.is_ascii_hexdigit()), "{ns}");
    first.db.close().await;
    let again = app_for(&db, &sim.url(), "2s", "").await;
    assert_eq!(again.engine.key_namespace(), &ns, "kept when opened again");
    again.db.close().await;

    let other_db = TestDb::sqlite().await;
    let other = app_for(&other_db, &sim.url(), "2s", "").await;
    assert_ne!(
        other.engine.key_namespace().value,
        ns.value,
        "another database, another namespace"
    );
    other.db.close().await;

    let configured = app_for(
        &db,
        &sim.url(),
        "2s",
        "\n[jobs]\nkey_namespace = \"prod-eu\"\n",
    )
    .await;
    assert_eq!(configured.engine.key_namespace().value, "prod-eu");
    assert_eq!(
        configured.engine.key_namespace().source,
        NamespaceSource::Config
    );
    configured.db.close().await;
}

/// Two deployments (two databases) that run the same scheduled task against one workspace:
/// two runs, each reporting its own; sharing a namespace on purpose, one.
async fn two_deployments_on_one_workspace(db: TestDb) {
    let sim = quick_sim().await;
    let staging_db = TestDb::sqlite().await;
    let prod = app_for(&db, &sim.url(), "2s", "").await;
    let staging = app_for(&staging_db, &sim.url(), "2s", "").await;
    let a = prod.engine.ensure(&request()).await.unwrap();
    let b = staging.engine.ensure(&request()).await.unwrap();
    assert_eq!(a.action, EnsureAction::Submitted);
    assert_eq!(b.action, EnsureAction::Submitted);
    assert_ne!(a.job.idempotency_key, b.job.idempotency_key);
    assert_ne!(
        a.job.handle, b.job.handle,
        "each deployment runs its own job"
    );
    assert_eq!(sim.stats().submissions, 2, "two runs on the workspace");
    prod.db.close().await;
    staging.db.close().await;

    // Shared on purpose: the same key, and the workspace's idempotency token makes one run.
    let shared = "\n[jobs]\nkey_namespace = \"shared\"\n";
    let one_db = TestDb::sqlite().await;
    let two_db = TestDb::sqlite().await;
    let one = app_for(&one_db, &sim.url(), "2s", shared).await;
    let two = app_for(&two_db, &sim.url(), "2s", shared).await;
    let a = one.engine.ensure(&request()).await.unwrap();
    let b = two.engine.ensure(&request()).await.unwrap();
    assert_eq!(a.job.idempotency_key, b.job.idempotency_key);
    assert_eq!(a.job.handle, b.job.handle, "one run, shared on purpose");
    assert_eq!(
        sim.stats().submissions,
        3,
        "no run more for the shared namespace's second ask"
    );
    one.db.close().await;
    two.db.close().await;
}

on_both_backends!(
    each_database_has_its_own_namespace,
    two_deployments_on_one_workspace
);
