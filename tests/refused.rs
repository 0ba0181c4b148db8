//! A refused submission can be retried: the provider answers a submission with an error that
//! proves it made nothing (a wrong Databricks token, a wrong AWS secret), `tether run` says so
//! and that running it again retries; after the fix, the same command with the same try
//! submits once and succeeds, on the same record and key. And a provider that cannot be
//! reached at submit time: `tether run` says the outcome is unknown, and the rerun reconciles
//! it and submits once.

mod common;

use std::time::Duration;

use tether::state::TaskInstanceId;

use common::procs::{key_of, key_of_attempt, Setup, Sim};
use common::{exit_within, TestDb};

/// Runs `cmd` to its end; its exit code.
async fn finish(mut cmd: tokio::process::Command) -> Option<i32> {
    let mut child = cmd.spawn().unwrap();
    exit_within(&mut child, Duration::from_secs(60))
        .await
        .code()
}

/// The kinds of the job's events, in order.
async fn event_kinds(setup: &Setup, task: &str) -> Vec<String> {
    let app = setup.app().await;
    let ti = TaskInstanceId::new("etl", "r1", task, -1);
    let job = app
        .engine
        .jobs()
        .latest(&ti, "main")
        .await
        .unwrap()
        .unwrap();
    app.engine
        .jobs()
        .events(job.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

/// Wrong credentials first (`break_it` makes the command refused), then the same command with
/// the same try.
async fn refused_then_fixed(db: &TestDb, provider: &'static str) {
    let sim = Sim::start(provider, &[]).await;
    let setup = Setup::new(db, provider, &sim, "2s");
    let good = std::fs::read_to_string(&setup.config).unwrap();
    let mut first = setup.run("load", 1, "refused");
    if provider == "databricks" {
        std::fs::write(
            &setup.config,
            good.replace("dapi-sim-token", "dapi-wrong-token"),
        )
        .unwrap();
    } else {
        first.env("AWS_SECRET_ACCESS_KEY", "a-wrong-secret-0123456789");
    }
    let code = finish(first).await;
    let err = setup.read("refused.err");
    assert_ne!(code, Some(0), "{provider}: {err}");
    assert!(
        err.contains("refused the submission") && err.contains("submits it again"),
        "{provider}: the message says what was refused and that asking again retries: {err}"
    );
    assert_eq!(sim.jobs_for(&key_of("load")).await, 0, "{provider}");

    std::fs::write(&setup.config, &good).unwrap();
    let code = finish(setup.run("load", 1, "fixed")).await;
    assert_eq!(
        code,
        Some(0),
        "{provider}: {}\n{}",
        setup.read("fixed.out"),
        setup.read("fixed.err")
    );
    // The second attempt was sent with a key of its own (the refused one may be remembered
    // with its refusal), and made the one job.
    assert_eq!(sim.jobs_for(&key_of("load")).await, 0, "{provider}");
    assert_eq!(
        sim.jobs_for(&key_of_attempt("load", 2)).await,
        1,
        "{provider}: one submission"
    );
    let kinds = event_kinds(&setup, "load").await;
    assert_eq!(
        &kinds[..4],
        ["intent", "submit_refused", "intent", "submitted"],
        "{provider}: {kinds:?}"
    );
    assert!(
        kinds.contains(&"finished".to_string()),
        "{provider}: {kinds:?}"
    );
}

async fn refused_databricks_submission_is_retried(db: TestDb) {
    refused_then_fixed(&db, "databricks").await;
}

async fn refused_emr_submission_is_retried(db: TestDb) {
    refused_then_fixed(&db, "emr").await;
}

/// The provider's address is wrong at submit time (nothing listens there): `tether run` exits
/// 1 saying the outcome is unknown; with the address fixed, the same command reconciles and
/// submits once.
async fn unreachable_provider_at_submit(db: TestDb) {
    let sim = Sim::start("databricks", &[]).await;
    let setup = Setup::with_timeout(&db, "databricks", &sim, "1s", "1s");
    let good = std::fs::read_to_string(&setup.config).unwrap();
    std::fs::write(&setup.config, good.replace(&sim.url, "http://127.0.0.1:9")).unwrap();
    let code = finish(setup.run("load", 1, "unreachable")).await;
    let err = setup.read("unreachable.err");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("outcome is unknown") && err.contains("run again"),
        "{err}"
    );

    std::fs::write(&setup.config, &good).unwrap();
    let code = finish(setup.run("load", 1, "reachable")).await;
    assert_eq!(
        code,
        Some(0),
        "{}\n{}",
        setup.read("reachable.out"),
        setup.read("reachable.err")
    );
    assert_eq!(sim.jobs_for(&key_of("load")).await, 1, "one submission");
}

on_both_backends!(
    refused_databricks_submission_is_retried,
    refused_emr_submission_is_retried,
    unreachable_provider_at_submit,
);
