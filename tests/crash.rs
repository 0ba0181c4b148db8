//! Every crash point (`src/crash.rs`) on every provider, with real processes: a `tether`
//! process is SIGKILLed at the point (`FAILPOINTS=<point>=return`), the same command (or a
//! retry of the same try) runs again, and the job ends as it should, with exactly one remote
//! submission for its key and no cancel that nobody asked for.

mod common;

use std::time::Duration;

use futures_util::StreamExt;

use tether::crash::POINTS;
use tether::jobs::Phase;
use tether_provider::JobState;
use tokio::process::Command;

use common::procs::{key_of, kinds, wait_job, Setup, Sim};
use common::{exit_within, TestDb};

/// Runs `cmd` with the crash point `point` on, and checks that it died by SIGKILL there.
/// The renewal point fires on the second renewal: the first comes before the claim, when the
/// supervisor holds nothing yet.
async fn killed_at(mut cmd: Command, point: &str, what: &str, setup: &Setup, log: &str) {
    let action = if point == "during_renewal" {
        "1*off->return"
    } else {
        "return"
    };
    cmd.env("FAILPOINTS", format!("{point}={action}"));
    let mut child = cmd.spawn().unwrap();
    let status = exit_within(&mut child, Duration::from_secs(60)).await;
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "{what}: expected a SIGKILL at {point}, got {status}\n{}\n{}",
        setup.read(&format!("{log}.out")),
        setup.read(&format!("{log}.err"))
    );
}

/// Runs `cmd` to its end (no crash point) and returns its exit code.
async fn finish(mut cmd: Command) -> Option<i32> {
    let mut child = cmd.spawn().unwrap();
    exit_within(&mut child, Duration::from_secs(60))
        .await
        .code()
}

/// One crash point on one provider.
async fn crash_at(db: &TestDb, point: &'static str, provider: &'static str) {
    let what = format!("{point}/{provider}/{}", db.backend);
    // A cancel needs a job that is still running when it arrives.
    let running = if point == "after_cancel_recorded" {
        "20s"
    } else {
        "1s"
    };
    let sim = Sim::start_with(provider, running, &[]).await;
    let setup = Setup::new(db, provider, &sim, "1s");
    let app = setup.app().await;
    let task = format!("crash-{point}-{provider}").replace('_', "-");
    let mut expect = JobState::Succeeded;
    match point {
        "before_intent" | "after_intent" | "after_submit" | "before_terminal_record" => {
            killed_at(setup.run(&task, 1, "first"), point, &what, &setup, "first").await;
        }
        "during_renewal" | "during_claim" => {
            assert_eq!(
                finish(no_wait(setup.run(&task, 1, "submit"))).await,
                Some(0)
            );
            killed_at(setup.serve(), point, &what, &setup, "serve").await;
        }
        "after_cancel_recorded" => {
            assert_eq!(
                finish(no_wait(setup.run(&task, 1, "submit"))).await,
                Some(0)
            );
            let job = wait_job(&app, &task, |j| j.phase == Phase::Active).await;
            let cancel = setup.cli(&["jobs", "cancel", &job.id.to_string()], "cancel");
            killed_at(cancel, point, &what, &setup, "cancel").await;
            assert_eq!(
                sim.cancels().await,
                0,
                "{what}: killed before the provider was asked"
            );
            expect = JobState::Cancelled;
        }
        "during_gc" => {
            assert_eq!(
                finish(no_wait(setup.run(&task, 1, "submit"))).await,
                Some(0)
            );
            for key in ["a", "b", "c"] {
                let set = setup.cli(
                    &[
                        "state",
                        "set",
                        key,
                        "1",
                        "--dag",
                        "etl",
                        "--run",
                        "r1",
                        "--task",
                        &task,
                        "--retention",
                        "1s",
                    ],
                    "set",
                );
                assert_eq!(finish(set).await, Some(0));
            }
            tokio::time::sleep(Duration::from_millis(1100)).await;
            let gc = setup.cli(&["gc", "--batch-size", "1"], "gc");
            killed_at(gc, point, &what, &setup, "gc").await;
            let again = setup.cli(&["gc"], "gc-again");
            assert_eq!(finish(again).await, Some(0), "{what}: the next sweep runs");
        }
        other => unreachable!("crash point {other} has no scenario"),
    }

    // The same try runs again (a person reruns it, or the task restarts).
    let code = finish(setup.run(&task, 1, "again")).await;
    let (out, err) = (setup.read("again.out"), setup.read("again.err"));
    let wanted = if expect == JobState::Succeeded { 0 } else { 6 };
    assert_eq!(code, Some(wanted), "{what}: rerun\n{out}\n{err}");
    let job = wait_job(&app, &task, |j| j.phase == Phase::Terminal).await;
    assert_eq!(job.state, expect, "{what}: {job:?}\n{out}\n{err}");
    let key = key_of(&task);
    assert_eq!(
        sim.jobs_for(&key).await,
        1,
        "{what}: one remote job\n{out}\n{err}"
    );
    let cancels = sim.cancels().await;
    if expect == JobState::Cancelled {
        // Recorded before the crash, sent by whoever polled the job next (once; a cancel
        // the CLI and a supervisor send at the same moment may reach it twice).
        assert!((1..=2).contains(&cancels), "{what}: {cancels} cancels");
    } else {
        assert_eq!(cancels, 0, "{what}: a cancel nobody asked for");
    }
    if point == "during_gc" {
        let state = app
            .state
            .list(&job.task_instance.clone().into())
            .await
            .unwrap();
        let keys: Vec<&str> = state.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            ["tether.job.main"],
            "{what}: expired keys gone, the job's kept"
        );
    }
    println!(
        "{what}: killed, rerun, {:?}, 1 remote job, {cancels} cancel(s)",
        job.state
    );
}

fn no_wait(mut cmd: Command) -> Command {
    cmd.arg("--no-wait");
    cmd
}

/// Providers crashed at once.
const AT_ONCE: usize = 4;

/// One point on every provider of the registry with a simulator; four providers at a time,
/// except for the garbage collector's point (one provider's sweep would remove the keys
/// another's is to crash on).
async fn crash_point_on_each_provider(db: TestDb, point: &'static str) {
    let at_once = if point == "during_gc" { 1 } else { AT_ONCE };
    let providers = kinds();
    assert!(providers.len() >= 6, "{providers:?}");
    futures_util::stream::iter(providers)
        .for_each_concurrent(at_once, |provider| crash_at(&db, point, provider))
        .await;
}

#[test]
fn every_crash_point_has_a_test() {
    let here = include_str!("crash.rs");
    for point in POINTS {
        assert!(
            here.contains(&format!("\"{point}\"")),
            "crash point {point} has no scenario"
        );
    }
}

macro_rules! crash_points {
    ($($point:ident),* $(,)?) => {
        $(
            async fn $point(db: TestDb) {
                crash_point_on_each_provider(db, stringify!($point)).await;
            }
        )*
        on_both_backends!($($point),*);
    };
}

crash_points!(
    before_intent,
    after_intent,
    after_submit,
    before_terminal_record,
    during_renewal,
    during_claim,
    after_cancel_recorded,
    during_gc,
);
