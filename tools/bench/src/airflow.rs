//! `tether-bench --compare-airflow`: Airflow's own `DatabricksExecutionTrigger`, N of them in
//! one asyncio loop (`tools/bench/airflow_triggers.py`, run in a virtual environment with Airflow),
//! against a fresh simulator at the same cadence as the `tracked` scenario; then the ratios.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;
use tokio::process::Command;

use super::latency::{LatencyBench, Measured};
use super::{proc_cpu_seconds, start_sim, tracked, TrackedBench};
use tether::Error;

/// The script that runs Airflow's triggers (`tools/bench/airflow_triggers.py`), built in.
const AIRFLOW_SCRIPT: &str = include_str!("../airflow_triggers.py");
/// The pins the Airflow virtual environment is built with.
const AIRFLOW_CONSTRAINTS: &str =
    include_str!("../../../clients/python/constraints-airflow-3.3.2-py3.11.txt");

/// The Python of `venv`, built from PyPI (in a folder of `dir`) if it lacks Airflow and its
/// Databricks provider.
async fn airflow_python(venv: &Path, dir: &Path) -> Result<PathBuf, Error> {
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
    if has_airflow {
        return Ok(python);
    }
    let io = |context: &str| {
        let context = context.to_string();
        move |source| Error::Io { context, source }
    };
    println!(
        "building {} with apache-airflow 3.3.2 and apache-airflow-providers-databricks 7.23.0 from PyPI",
        venv.display()
    );
    let constraints = dir.join("constraints.txt");
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
    Ok(python)
}

/// `tether-bench --latency --compare-airflow`: `jobs` of Airflow's
/// `DatabricksExecutionTrigger` against a fresh simulator at the bench's cadence, with runs
/// ending at its rate (`airflow_triggers.py --end-rate`): the figures, the trigger's firing
/// standing for both detection and the waiter's wake-up (it is both in Airflow).
pub(crate) async fn airflow_latency(
    bench: &LatencyBench,
    jobs: u32,
    venv: &Path,
) -> Result<Measured, Error> {
    let io = |context: &str| {
        let context = context.to_string();
        move |source| Error::Io { context, source }
    };
    let dir = tempfile::tempdir().map_err(io("making a temp folder"))?;
    let python = airflow_python(venv, dir.path()).await?;
    let script = dir.path().join("airflow_triggers.py");
    std::fs::write(&script, AIRFLOW_SCRIPT).map_err(io("writing the Airflow script"))?;
    let (mut sim, sim_url) = start_sim(&bench.binary, dir.path(), "databricks", &[]).await?;
    let sim_pid = sim.id().unwrap_or(0);
    let sim_cpu0 = proc_cpu_seconds(sim_pid).unwrap_or(0.0);
    let airflow_log = dir.path().join("airflow.log");
    let out = dir.path().join("latency.json");
    let log = std::fs::File::create(&airflow_log).map_err(io("creating the Airflow log"))?;
    let started = std::time::Instant::now();
    let status = Command::new(&python)
        .arg(&script)
        .args(["--sim", &sim_url, "--runs", &jobs.to_string()])
        .args(["--cadence", &bench.cadence.as_secs_f64().to_string()])
        .args(["--window", &bench.window.as_secs_f64().to_string()])
        .args(["--end-rate", &bench.end_rate.per_second(jobs).to_string()])
        .arg("--latency-out")
        .arg(&out)
        .env("AIRFLOW_HOME", dir.path())
        .stdout(log.try_clone().map_err(io("creating the Airflow log"))?)
        .stderr(log)
        .status()
        .await
        .map_err(io("running the Airflow triggers"))?;
    // The simulator's CPU over the whole run (its window is the script's).
    let sim_cpu =
        (proc_cpu_seconds(sim_pid).unwrap_or(0.0) - sim_cpu0) / started.elapsed().as_secs_f64();
    let _ = sim.start_kill();
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let Ok(v) = serde_json::from_str::<Value>(&text) else {
        let log = std::fs::read_to_string(&airflow_log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(Error::Usage(format!(
            "the Airflow triggers wrote no figures (exit {status}); their log ends:\n{}",
            tail.join("\n")
        )));
    };
    let f = |key: &str| v[key].as_f64().unwrap_or(0.0);
    let mut fired = Vec::new();
    let mut missed = 0;
    let ends = v["ends"].as_object().cloned().unwrap_or_default();
    for (run, end) in &ends {
        match (v["fired"][run].as_f64(), end.as_f64()) {
            (Some(at), Some(end)) => fired.push((at - end) / 1000.0),
            _ => missed += 1,
        }
    }
    Ok(Measured {
        cpu: f("cpu"),
        rss_mib: f("rss_mib"),
        // Its one loop's peak stands for both.
        rss_window_mib: f("rss_mib"),
        calls_per_minute: f("calls_per_minute"),
        breakdown: (
            f("gets_per_minute"),
            f("lists_per_minute"),
            f("submits_per_minute"),
        ),
        queue_calls_per_minute: 0.0,
        detection: fired.clone(),
        end_to_end: fired,
        ended: ends.len(),
        missed,
        sim_cpu,
        notes: vec![
            "the trigger's firing is both its detection and its waiter's wake-up; the simulator's CPU is over the whole run".into(),
        ],
    })
}

/// `tether-bench --compare-airflow`: the `tracked` scenario, then N of Airflow's
/// `DatabricksExecutionTrigger` in one asyncio loop against a fresh simulator with the same
/// cadence (`tools/bench/airflow_triggers.py`, in `venv`, which is built from PyPI if it lacks
/// Airflow), then the ratios.
pub async fn compare_airflow(bench: &TrackedBench, venv: &Path) -> Result<(), Error> {
    let ours = tracked(bench).await?;
    let dir = tempfile::tempdir().map_err(|source| Error::Io {
        context: "making a temp folder".into(),
        source,
    })?;
    let python = airflow_python(venv, dir.path()).await?;
    let io = |context: &str| {
        let context = context.to_string();
        move |source| Error::Io { context, source }
    };
    let script = dir.path().join("airflow_triggers.py");
    std::fs::write(&script, AIRFLOW_SCRIPT).map_err(io("writing the Airflow script"))?;
    let (mut sim, sim_url) = start_sim(&bench.binary, dir.path(), "databricks", &[]).await?;
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
