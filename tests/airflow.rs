//! The Airflow provider package (`clients/python`): its own test suite (pytest, against a real
//! `tether serve` and simulator that it starts with this build's binary).
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

#[test]
fn the_python_package_passes_its_tests() {
    let Some(venv) = venv() else { return };
    let out = Command::new(venv.join("bin/python"))
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/clients/python"))
        .env("TETHER_BIN", env!("CARGO_BIN_EXE_tether"))
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
