//! `tether-bench --compare-airflow`: Airflow's own `DatabricksExecutionTrigger`, N of them in
//! one asyncio loop (`tools/bench/airflow_triggers.py`, run in a virtual environment with Airflow),
//! against a fresh simulator at the same cadence as the `tracked` scenario; then the ratios.

use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

use super::{start_sim, tracked, TrackedBench};
use tether::Error;

/// The script that runs Airflow's triggers (`tools/bench/airflow_triggers.py`), built in.
const AIRFLOW_SCRIPT: &str = include_str!("../airflow_triggers.py");
/// The pins the Airflow virtual environment is built with.
const AIRFLOW_CONSTRAINTS: &str =
    include_str!("../../../clients/python/constraints-airflow-3.3.2-py3.11.txt");

/// `tether-bench --compare-airflow`: the `tracked` scenario, then N of Airflow's
/// `DatabricksExecutionTrigger` in one asyncio loop against a fresh simulator with the same
/// cadence (`tools/bench/airflow_triggers.py`, in `venv`, which is built from PyPI if it lacks
/// Airflow), then the ratios.
pub async fn compare_airflow(bench: &TrackedBench, venv: &Path) -> Result<(), Error> {
    let ours = tracked(bench).await?;
    let python = venv.join("bin/python");
    let has_airflow = Command::new(&python)
        .args([
            "-c",
            "import airflow.providers.databricks.triggers.databricks",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    let dir = tempfile::tempdir().map_err(|source| Error::Io {
        context: "making a temp folder".into(),
        source,
    })?;
    let io = |context: &str| {
        let context = context.to_string();
        move |source| Error::Io { context, source }
    };
    if !has_airflow {
        println!(
            "building {} with apache-airflow 3.3.2 and apache-airflow-providers-databricks 7.23.0 from PyPI",
            venv.display()
        );
        let constraints = dir.path().join("constraints.txt");
        std::fs::write(&constraints, AIRFLOW_CONSTRAINTS).map_err(io("writing constraints"))?;
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(venv)
            .status()
            .await
            .map_err(io("running python3 -m venv"))?
            .success()
            && Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "-c"])
                .arg(&constraints)
                .args([
                    "apache-airflow==3.3.2",
                    "apache-airflow-providers-databricks==7.23.0",
                ])
                .status()
                .await
                .map_err(io("running pip"))?
                .success();
        if !ok {
            return Err(Error::Usage(format!(
                "could not build the Airflow virtual environment in {}",
                venv.display()
            )));
        }
    }
    let script = dir.path().join("airflow_triggers.py");
    std::fs::write(&script, AIRFLOW_SCRIPT).map_err(io("writing the Airflow script"))?;
    let (mut sim, sim_url) = start_sim(&bench.binary, dir.path(), "databricks").await?;
    let airflow_log = dir.path().join("airflow.log");
    let figures_path = dir.path().join("airflow-figures.txt");
    let log = std::fs::File::create(&airflow_log).map_err(io("creating the Airflow log"))?;
    // The triggers log every poll (to stdout, as in the triggerer): into a file.
    let status = Command::new(&python)
        .arg(&script)
        .args(["--sim", &sim_url, "--runs", &bench.jobs.to_string()])
        .args(["--cadence", &bench.cadence.as_secs_f64().to_string()])
        .args(["--window", &bench.window.as_secs_f64().to_string()])
        .arg("--out")
        .arg(&figures_path)
        .env("AIRFLOW_HOME", dir.path())
        .stdout(log.try_clone().map_err(io("creating the Airflow log"))?)
        .stderr(log)
        .status()
        .await
        .map_err(io("running the Airflow triggers"))?;
    let _ = sim.start_kill();
    let text = std::fs::read_to_string(&figures_path).unwrap_or_default();
    print!("{text}");
    let figure = |prefix: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.starts_with(prefix))?;
        line[prefix.len()..].split_whitespace().next()?.parse().ok()
    };
    let (Some(cpu), Some(rss), Some(calls)) = (
        figure("airflow CPU: "),
        figure("airflow peak RSS: "),
        figure("airflow provider calls: "),
    ) else {
        let log = std::fs::read_to_string(&airflow_log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(Error::Usage(format!(
            "the Airflow triggers did not print their figures (exit {}); their log ends:\n{}",
            status,
            tail.join("\n")
        )));
    };
    let ratio = |theirs: f64, ours: f64| {
        if ours > 0.0 {
            format!("{:.1}x", theirs / ours)
        } else {
            "(tether measured 0)".to_string()
        }
    };
    println!(
        "ratio (Airflow / tether), {} jobs: CPU {}, peak RSS {}, provider calls {}",
        bench.jobs,
        ratio(cpu, ours.cpu),
        ratio(rss, ours.rss_mib),
        ratio(calls, ours.calls_per_minute)
    );
    Ok(())
}
