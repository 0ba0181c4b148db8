//! The task-state suite: the same tests against SQLite and PostgreSQL.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use tether::clock::{ManualClock, SystemClock};
use tether::state::{
    ClearTarget, Retention, Scope, SetOptions, StateError, StateSettings, TaskInstanceId,
    TaskState, ValueError,
};

use common::TestDb;

fn ti(run: &str, task: &str, map_index: i64) -> Scope {
    Scope::TaskInstance(TaskInstanceId::new("etl", run, task, map_index))
}

fn start() -> ManualClock {
    ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 24, 8, 0, 0).unwrap())
}

async fn state_at(db: &TestDb, clock: &ManualClock, settings: StateSettings) -> TaskState {
    db.app_with(settings, Arc::new(clock.clone())).await.state
}

async fn value_of(state: &TaskState, scope: &Scope, key: &str) -> Option<Value> {
    state.get(scope, key).await.unwrap().map(|e| e.value)
}

async fn scopes_are_isolated(db: TestDb) {
    let state = db.app().await.state;
    let scopes = [
        ti("run1", "load", -1),
        ti("run1", "load", 0),
        ti("run1", "load", 1),
        ti("run2", "load", -1),
        ti("run1", "extract", -1),
        Scope::task("etl", "load"),
        Scope::task("other_dag", "load"),
        Scope::asset("s3://lake/orders"),
        Scope::asset("orders"),
    ];
    for (i, scope) in scopes.iter().enumerate() {
        state
            .set(scope, "cursor", json!({ "i": i }), SetOptions::default())
            .await
            .unwrap();
    }
    for (i, scope) in scopes.iter().enumerate() {
        assert_eq!(
            value_of(&state, scope, "cursor").await,
            Some(json!({ "i": i })),
            "{scope} on {}",
            db.backend
        );
        let listed = state.list(scope).await.unwrap();
        assert_eq!(listed.len(), 1, "{scope}");
        assert_eq!(listed[0].version, 1);
    }
    // A retry (any try number) sees what an earlier try wrote: the try is not in the scope.
    assert!(value_of(&state, &ti("run1", "load", -1), "missing")
        .await
        .is_none());
}

async fn values_round_trip_as_json(db: TestDb) {
    let state = db.app().await.state;
    let scope = Scope::asset("warehouse.orders");
    let values = [
        json!("text with \"quotes\" and ünïcode"),
        json!(42),
        json!(-1.5e10),
        json!(true),
        json!([1, "two", {"three": [3]}]),
        json!({"watermark": "2026-11-24T00:00:00Z", "nested": {"null_inside": null}}),
    ];
    for (i, v) in values.iter().enumerate() {
        let key = format!("k{i}");
        state
            .set(&scope, &key, v.clone(), SetOptions::default())
            .await
            .unwrap();
        assert_eq!(value_of(&state, &scope, &key).await.as_ref(), Some(v));
    }
    let keys: Vec<String> = state
        .list(&scope)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, ["k0", "k1", "k2", "k3", "k4", "k5"]);
}

async fn versions_and_compare_and_set(db: TestDb) {
    let state = db.app().await.state;
    let scope = ti("r", "t", -1);
    let set = |v: Value, if_version: Option<i64>| {
        let state = state.clone();
        let scope = scope.clone();
        async move {
            state
                .set(
                    &scope,
                    "handle",
                    v,
                    SetOptions {
                        if_version,
                        retention: None,
                    },
                )
                .await
        }
    };
    assert_eq!(set(json!(1), Some(0)).await.unwrap().version, 1);
    match set(json!(2), Some(0)).await {
        Err(StateError::Conflict {
            expected: 0,
            found: Some(1),
            ..
        }) => {}
        other => panic!("must-not-exist write over an existing key: {other:?}"),
    }
    assert_eq!(set(json!(2), None).await.unwrap().version, 2);
    let stale = set(json!("stale"), Some(1)).await.unwrap_err();
    assert!(
        matches!(
            stale,
            StateError::Conflict {
                expected: 1,
                found: Some(2),
                ..
            }
        ),
        "{stale:?}"
    );
    assert_eq!(
        stale.to_string(),
        "version conflict on key \"handle\" in task instance etl/r/t: expected version 1, found version 2"
    );
    assert_eq!(value_of(&state, &scope, "handle").await, Some(json!(2)));
    assert_eq!(set(json!(3), Some(2)).await.unwrap().version, 3);
    // CAS on an absent key.
    match set(json!(9), Some(5)).await {
        Ok(_) => panic!("CAS on version 5 must fail"),
        Err(StateError::Conflict { found: Some(3), .. }) => {}
        Err(e) => panic!("{e:?}"),
    }
    // Delete honours if_version too.
    assert!(matches!(
        state.delete(&scope, "handle", Some(2)).await,
        Err(StateError::Conflict { found: Some(3), .. })
    ));
    state.delete(&scope, "handle", Some(3)).await.unwrap();
    assert!(matches!(
        state.delete(&scope, "handle", None).await,
        Err(StateError::NotFound { .. })
    ));
    match set(json!(1), Some(1)).await {
        Err(StateError::Conflict { found: None, .. }) => {}
        other => panic!("CAS on a deleted key: {other:?}"),
    }
    assert_eq!(set(json!(1), Some(0)).await.unwrap().version, 1);
    assert!(matches!(
        set(json!(1), Some(-1)).await,
        Err(StateError::Invalid(e)) if e.field == "if_version"
    ));
}

async fn expiry_and_default_retention(db: TestDb) {
    let clock = start();
    let settings = StateSettings {
        default_retention: Retention::For(Duration::from_secs(7 * 86400)),
        ..StateSettings::default()
    };
    let state = state_at(&db, &clock, settings).await;
    let hour = SetOptions {
        if_version: None,
        retention: Some(Retention::For(Duration::from_secs(3600))),
    };
    let run = ti("r", "t", -1);
    let written = state.set(&run, "short", json!(1), hour).await.unwrap();
    assert_eq!(
        written.expires_at,
        Some(Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap())
    );
    // Task-instance keys take the configured default; task and asset keys never expire.
    let ti_default = state
        .set(&run, "default", json!(1), SetOptions::default())
        .await
        .unwrap();
    assert_eq!(
        ti_default.expires_at,
        Some(Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap())
    );
    let asset = Scope::asset("a");
    let task = Scope::task("etl", "t");
    for scope in [&asset, &task] {
        let w = state
            .set(scope, "wm", json!(1), SetOptions::default())
            .await
            .unwrap();
        assert_eq!(w.expires_at, None, "{scope}");
    }
    let never = SetOptions {
        if_version: None,
        retention: Some(Retention::Never),
    };
    assert_eq!(
        state
            .set(&run, "forever", json!(1), never)
            .await
            .unwrap()
            .expires_at,
        None
    );
    // An asset write may still ask for a retention.
    state.set(&asset, "brief", json!(1), hour).await.unwrap();

    clock.advance(Duration::from_secs(3599));
    assert_eq!(value_of(&state, &run, "short").await, Some(json!(1)));
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        value_of(&state, &run, "short").await,
        None,
        "expired at its expiry time"
    );
    assert_eq!(value_of(&state, &asset, "brief").await, None);
    let keys: Vec<String> = state
        .list(&run)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, ["default", "forever"]);
    assert!(matches!(
        state.delete(&run, "short", None).await,
        Err(StateError::NotFound { .. })
    ));
    // An expired key counts as absent for "must not exist", and its version carries on.
    let rewritten = state
        .set(
            &run,
            "short",
            json!(2),
            SetOptions {
                if_version: Some(0),
                retention: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(rewritten.version, 2);
    let entry = state.get(&run, "short").await.unwrap().unwrap();
    assert_eq!(entry.created_at, clock_now(&clock));

    clock.advance(Duration::from_secs(7 * 86400));
    assert_eq!(value_of(&state, &run, "default").await, None);
    assert_eq!(value_of(&state, &run, "forever").await, Some(json!(1)));
    assert_eq!(value_of(&state, &asset, "wm").await, Some(json!(1)));
    assert_eq!(value_of(&state, &task, "wm").await, Some(json!(1)));
}

fn clock_now(clock: &ManualClock) -> chrono::DateTime<Utc> {
    use tether::clock::Clock;
    clock.now()
}

async fn sizes_keys_and_ids_are_checked(db: TestDb) {
    let settings = StateSettings {
        max_value_bytes: 100,
        ..StateSettings::default()
    };
    let state = state_at(&db, &start(), settings).await;
    let scope = ti("r", "t", -1);
    let opts = SetOptions::default();
    // A string of 98 characters is 100 bytes of JSON with its quotes: at the limit.
    state
        .set(&scope, "k", json!("x".repeat(98)), opts)
        .await
        .unwrap();
    let err = state
        .set(&scope, "k", json!("x".repeat(99)), opts)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StateError::Value(ValueError::TooLarge {
                size: 101,
                limit: 100
            })
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "value is 101 bytes of JSON; the limit is 100 bytes"
    );
    assert_eq!(
        value_of(&state, &scope, "k").await,
        Some(json!("x".repeat(98))),
        "a refused write changes nothing"
    );
    assert!(matches!(
        state.set(&scope, "k", Value::Null, opts).await,
        Err(StateError::Value(ValueError::Null))
    ));
    for (key, why) in [("", "must not be empty"), ("a\nb", "control")] {
        let err = state.set(&scope, key, json!(1), opts).await.unwrap_err();
        assert!(err.to_string().starts_with("invalid key:"), "{err}");
        assert!(err.to_string().contains(why), "{err}");
    }
    let long_key = "k".repeat(513);
    let err = state
        .set(&scope, &long_key, json!(1), opts)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid key: is 513 bytes; the limit is 512"
    );
    state
        .set(&scope, &"k".repeat(512), json!(1), opts)
        .await
        .unwrap();
    let bad_ids = [
        (
            Scope::TaskInstance(TaskInstanceId::new("my dag", "r", "t", -1)),
            "dag_id",
        ),
        (
            Scope::TaskInstance(TaskInstanceId::new("d", "r/1", "t", -1)),
            "run_id",
        ),
        (
            Scope::TaskInstance(TaskInstanceId::new("d", "r", "t;drop", -1)),
            "task_id",
        ),
        (
            Scope::TaskInstance(TaskInstanceId::new("d", "r", "t", -5)),
            "map_index",
        ),
        (Scope::task("", "t"), "dag_id"),
        (Scope::asset(""), "asset"),
    ];
    for (scope, field) in bad_ids {
        for err in [
            state.set(&scope, "k", json!(1), opts).await.unwrap_err(),
            state.get(&scope, "k").await.unwrap_err(),
            state.list(&scope).await.unwrap_err(),
        ] {
            match err {
                StateError::Invalid(e) => assert_eq!(e.field, field, "{scope}: {e}"),
                other => panic!("{scope}: {other:?}"),
            }
        }
    }
    // Run ids may hold ':' and '+', as Airflow's scheduled run ids do.
    let scheduled = ti("scheduled__2026-11-24T00:00:00+00:00", "t", -1);
    state.set(&scheduled, "k", json!(1), opts).await.unwrap();
}

async fn clear_all_map_indices_and_forget_run(db: TestDb) {
    let state = db.app().await.state;
    let opts = SetOptions::default();
    for m in [-1, 0, 1, 2] {
        for key in ["a", "b"] {
            state
                .set(&ti("r1", "load", m), key, json!(m), opts)
                .await
                .unwrap();
        }
    }
    state
        .set(&ti("r1", "other", -1), "a", json!(1), opts)
        .await
        .unwrap();
    state
        .set(&ti("r2", "load", 0), "a", json!(1), opts)
        .await
        .unwrap();
    state
        .set(&Scope::task("etl", "load"), "a", json!(1), opts)
        .await
        .unwrap();
    state
        .set(&Scope::asset("orders"), "a", json!(1), opts)
        .await
        .unwrap();

    let one = state
        .clear(&ClearTarget::Scope(ti("r1", "load", 2)))
        .await
        .unwrap();
    assert_eq!(one, 2);
    let all = state
        .clear(&ClearTarget::AllMapIndices {
            dag_id: "etl".into(),
            run_id: "r1".into(),
            task_id: "load".into(),
        })
        .await
        .unwrap();
    assert_eq!(all, 6, "map indices -1, 0 and 1, two keys each");
    for m in [-1, 0, 1, 2] {
        assert!(state.list(&ti("r1", "load", m)).await.unwrap().is_empty());
    }
    assert_eq!(state.list(&ti("r1", "other", -1)).await.unwrap().len(), 1);
    assert_eq!(state.list(&ti("r2", "load", 0)).await.unwrap().len(), 1);

    assert_eq!(state.forget_run("etl", "r1").await.unwrap(), 1);
    assert!(state.list(&ti("r1", "other", -1)).await.unwrap().is_empty());
    assert_eq!(state.list(&ti("r2", "load", 0)).await.unwrap().len(), 1);
    // Cross-run task state and asset state outlive a forgotten run.
    assert_eq!(state.forget_run("etl", "r2").await.unwrap(), 1);
    assert_eq!(
        state.list(&Scope::task("etl", "load")).await.unwrap().len(),
        1
    );
    assert_eq!(state.list(&Scope::asset("orders")).await.unwrap().len(), 1);
    assert_eq!(
        state
            .clear(&ClearTarget::Scope(Scope::asset("orders")))
            .await
            .unwrap(),
        1
    );
}

async fn clear_on_success_is_configurable(db: TestDb) {
    let instance = TaskInstanceId::new("etl", "r", "t", 3);
    let scope = Scope::TaskInstance(instance.clone());
    for clear_on_success in [false, true] {
        let settings = StateSettings {
            clear_on_success,
            ..StateSettings::default()
        };
        let state = db.app_with(settings, Arc::new(SystemClock)).await.state;
        state
            .set(&scope, "k", json!(1), SetOptions::default())
            .await
            .unwrap();
        state
            .set(
                &Scope::task("etl", "t"),
                "wm",
                json!(1),
                SetOptions::default(),
            )
            .await
            .unwrap();
        let removed = state.task_instance_succeeded(&instance).await.unwrap();
        assert_eq!(removed, u64::from(clear_on_success));
        assert_eq!(
            state.get(&scope, "k").await.unwrap().is_none(),
            clear_on_success
        );
        assert!(state
            .get(&Scope::task("etl", "t"), "wm")
            .await
            .unwrap()
            .is_some());
    }
}

async fn gc_removes_only_expired_keys_in_batches(db: TestDb) {
    let clock = start();
    let state = state_at(&db, &clock, StateSettings::default()).await;
    let minute = SetOptions {
        if_version: None,
        retention: Some(Retention::For(Duration::from_secs(60))),
    };
    let day = SetOptions {
        if_version: None,
        retention: Some(Retention::For(Duration::from_secs(86400))),
    };
    for i in 0..120 {
        state
            .set(&ti("r", "t", i), "k", json!(i), minute)
            .await
            .unwrap();
    }
    for i in 0..40 {
        state
            .set(&Scope::asset(format!("a{i}")), "k", json!(i), minute)
            .await
            .unwrap();
    }
    for i in 0..25 {
        state
            .set(&Scope::task("etl", format!("t{i}")), "k", json!(i), minute)
            .await
            .unwrap();
    }
    state
        .set(&ti("r", "keep", -1), "day", json!(1), day)
        .await
        .unwrap();
    state
        .set(&Scope::asset("keep"), "wm", json!(1), SetOptions::default())
        .await
        .unwrap();

    let early = state.sweep(50).await.unwrap();
    assert_eq!(early.total(), 0, "nothing has expired yet");
    assert_eq!(early.batches, 1);

    clock.advance(Duration::from_secs(61));
    let report = state.sweep(50).await.unwrap();
    assert_eq!(
        (report.task_instance, report.asset, report.task),
        (120, 40, 25)
    );
    assert_eq!(report.total(), 185);
    assert_eq!(
        report.batches, 4,
        "50 + 50 + 50 + 35: batches of at most 50"
    );
    assert!(
        report.to_string().starts_with("removed 185 expired keys"),
        "{report}"
    );

    let again = state.sweep(50).await.unwrap();
    assert_eq!(again.total(), 0);
    assert_eq!(
        value_of(&state, &ti("r", "keep", -1), "day").await,
        Some(json!(1))
    );
    assert_eq!(
        value_of(&state, &Scope::asset("keep"), "wm").await,
        Some(json!(1))
    );

    clock.advance(Duration::from_secs(86400));
    assert_eq!(state.sweep(50).await.unwrap().task_instance, 1);
    assert_eq!(
        value_of(&state, &Scope::asset("keep"), "wm").await,
        Some(json!(1))
    );
}

/// 50 writers each add one to a counter with compare-and-set, retrying on conflict: with an
/// atomic CAS the counter ends at exactly 50.
async fn fifty_concurrent_cas_writers(db: TestDb) {
    let state = db.app().await.state;
    let scope = Scope::asset("counter");
    state
        .set(
            &scope,
            "n",
            json!(0),
            SetOptions {
                if_version: Some(0),
                retention: None,
            },
        )
        .await
        .unwrap();
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let state = state.clone();
        let scope = scope.clone();
        writers.spawn(async move {
            let mut conflicts = 0u32;
            loop {
                let entry = state.get(&scope, "n").await.unwrap().unwrap();
                let next = entry.value.as_i64().unwrap() + 1;
                let opts = SetOptions {
                    if_version: Some(entry.version),
                    retention: None,
                };
                match state.set(&scope, "n", json!(next), opts).await {
                    Ok(_) => return conflicts,
                    Err(StateError::Conflict { .. }) => conflicts += 1,
                    Err(e) => panic!("writer failed: {e}"),
                }
            }
        });
    }
    let mut conflicts = 0;
    while let Some(result) = writers.join_next().await {
        conflicts += result.unwrap();
    }
    let entry = state.get(&scope, "n").await.unwrap().unwrap();
    assert_eq!(
        entry.value,
        json!(50),
        "{} lost updates",
        50 - entry.value.as_i64().unwrap()
    );
    assert_eq!(entry.version, 51);
    eprintln!(
        "{}: 50 CAS increments with {conflicts} conflicts retried",
        db.backend
    );
}

/// The sweeper runs by itself on its cron schedule inside the long-running process.
async fn sweeper_runs_on_schedule(db: TestDb) {
    let app = db.app().await;
    let scope = ti("r", "t", -1);
    let brief = SetOptions {
        if_version: None,
        retention: Some(Retention::For(Duration::from_millis(500))),
    };
    app.state
        .set(&scope, "brief", json!(1), brief)
        .await
        .unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let every_second = tether::config::parse_cron("* * * * * *").unwrap();
    let sweeper = tether::maintenance::Sweeper::new(app.state.clone(), every_second, 10);
    let handle = tokio::spawn(sweeper.run(shutdown.clone()));
    let rows = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM task_state")
            .fetch_one(app.db.pool())
            .await
            .unwrap()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while rows().await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the sweeper never removed the row"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("the sweeper stops when cancelled")
        .unwrap();
}

on_both_backends!(
    scopes_are_isolated,
    values_round_trip_as_json,
    versions_and_compare_and_set,
    expiry_and_default_retention,
    sizes_keys_and_ids_are_checked,
    clear_all_map_indices_and_forget_run,
    clear_on_success_is_configurable,
    gc_removes_only_expired_keys_in_batches,
    fifty_concurrent_cas_writers,
    sweeper_runs_on_schedule,
);
