//! The Airflow provider package (`clients/python`): its unit tests (tether's API mocked, no
//! binary), its tests against a real `tether serve` and simulator that they start with this
//! build's binary, and the scenarios on
//! a real Airflow 3.3.2 deployment (`clients/python/tests/deployment`: API server, scheduler,
//! DAG processor and triggerer, LocalExecutor, metadata on the PostgreSQL server named by
//! `TETHER_TEST_POSTGRES_URL`).
//!
//! It runs in the virtual environment named by `TETHER_AIRFLOW_VENV`, which `.ci/run` builds
//! (Apache Airflow from PyPI, pinned by `clients/python/constraints-*.txt`). Without it the test
//! says it was skipped, except under CI, where a missing environment fails it.

use std::path::PathBuf;
use std::process::Command;

fn venv() -> Option<PathBuf> {
    match std::env::var_os("TETHER_AIRFLOW_VENV") {
        Some(v) if PathBuf::from(&v).join("bin/python").exists() => Some(PathBuf::from(v)),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but TETHER_AIRFLOW_VENV names no virtual environment (.ci/run builds it)"
            );
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED airflow: set TETHER_AIRFLOW_VENV to a virtual environment with the package (see .ci/run)"
            );
            None
        }
    }
}

/// Runs pytest in `clients/python` with `args`, printing its output.
fn pytest(venv: &std::path::Path, args: &[&str]) {
    let mut command = Command::new(venv.join("bin/python"));
    command.env("TETHER_BIN", env!("CARGO_BIN_EXE_tether"));
    run_pytest(command, args);
}

fn run_pytest(mut command: Command, args: &[&str]) {
    let out = command
        .args(["-m", "pytest", "-q", "-s", "-p", "no:cacheprovider"])
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/clients/python"))
        .output()
        .expect("running pytest");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(
        out.status.success(),
        "pytest failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The unit tests (tether's HTTP API mocked) run where no tether binary can be found: a
/// Python change is checked in seconds. Prints how long they took.
#[test]
fn the_python_unit_tests_need_no_tether_binary() {
    let Some(venv) = venv() else { return };
    let mut command = Command::new(venv.join("bin/python"));
    command
        .env_remove("TETHER_BIN")
        .env("CARGO_TARGET_DIR", "/nonexistent/tether-target");
    let started = std::time::Instant::now();
    run_pytest(command, &["tests/unit"]);
    println!(
        "the Python unit tests took {:.1} s, without a tether binary",
        started.elapsed().as_secs_f64()
    );
}

/// The package against a real `tether serve` and simulator, started with this build's binary.
#[test]
fn the_python_package_passes_its_tests_against_a_real_tether() {
    let Some(venv) = venv() else { return };
    pytest(&venv, &["tests/integration"]);
}

/// Worker eviction, triggerer restart, mark failed (running and deferred), Airflow's own
/// Databricks operator on `TetherStoreBackend`, an incremental task, clear of a succeeded, a
/// running and a deferred task, SIGTERM of a running task, a task killed mid-submit, 200
/// deferred tasks marked failed at once, three AWS kinds and two declared APIs in one DAG,
/// `execution_timeout` running out (running and deferred), a checkpointed task SIGKILLed
/// part-way, and a BigQuery job whose task is SIGKILLed while it runs; each prints the
/// submissions and cancels the simulator saw.
#[test]
fn the_scenarios_pass_on_a_real_airflow_deployment() {
    let Some(venv) = venv() else { return };
    pytest(&venv, &["-x", "tests/deployment"]);
}
