//! `tether demo`: a worker eviction and a retry that reattaches, end to end, on one machine.
//!
//! Starts the Databricks simulator in-process, runs `tether run` for a task as a child
//! process (as an Airflow worker would), kills it with SIGKILL while the run is RUNNING (an
//! eviction), runs the retry, and shows that the retry reattached: one submission, and the
//! job completed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tether_databricks::sim::{SimConfig, Simulator};
use tether_provider::JobState;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::app::App;
use crate::config::Config;
use crate::state::TaskInstanceId;
use crate::Error;

const DAG: &str = "demo_etl";
const RUN: &str = "scheduled__2026-11-24T00:00:00+00:00";
const TASK: &str = "transform";
const SPEC: &str = r#"{
  "run_name": "nightly transform",
  "tasks": [{
    "task_key": "transform",
    "spark_python_task": {"python_file": "dbfs:/jobs/transform.py"},
    "new_cluster": {"spark_version": "15.4.x-scala2.12", "node_type_id": "i3.xlarge", "num_workers": 2}
  }]
}"#;

fn io(context: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        context: context.to_string(),
        source,
    }
}

pub(super) async fn run() -> Result<(), Error> {
    let dir = std::env::temp_dir().join(format!("tether-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(io("creating the demo folder"))?;
    let result = story(&dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn story(dir: &Path) -> Result<(), Error> {
    let sim = Simulator::start(
        SimConfig {
            pending: Duration::from_secs(1),
            running: Duration::from_secs(6),
            terminating: Duration::from_secs(1),
            ..SimConfig::default()
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .map_err(io("starting the Databricks simulator"))?;
    let config_path = dir.join("tether.toml");
    let config_text = format!(
        "[database]\nurl = \"sqlite://{db}\"\n\n[supervisor]\nlease = \"3s\"\n\n\
         [providers.databricks]\nhost = \"{host}\"\ntoken = \"dapi-sim-token\"\n\
         poll_initial = \"500ms\"\npoll_max = \"1s\"\n",
        db = dir.join("tether.db").display(),
        host = sim.url()
    );
    std::fs::write(&config_path, config_text).map_err(io("writing the demo config"))?;
    let spec_path = dir.join("job.json");
    std::fs::write(&spec_path, SPEC).map_err(io("writing the demo job spec"))?;
    let app = App::open(Config::load(&config_path)?).await?;

    println!("tether demo: a Databricks run that survives the eviction of its Airflow worker");
    println!(
        "  simulator   {} (a Databricks workspace on this machine)",
        sim.url()
    );
    println!("  database    {}", dir.join("tether.db").display());
    println!("  task        {DAG} / {RUN} / {TASK}");
    println!();
    println!("1. Try 1 starts: `tether run --try 1` submits the run and waits for it.");
    let mut try1 = spawn_try(&config_path, &spec_path, 1)?;
    let ti = TaskInstanceId::new(DAG, RUN, TASK, -1);
    let job = wait_for(&app, &ti, Duration::from_secs(30), |s| {
        s == JobState::Running
    })
    .await?;
    println!();
    println!("2. The run is RUNNING. The worker is evicted: try 1 is killed with SIGKILL.");
    try1.start_kill().map_err(io("killing try 1"))?;
    let _ = try1.wait().await;
    let run_id = job.handle.as_ref().and_then(|h| h.get_i64("run_id"));
    if let Some(state) = run_id.and_then(|id| sim.run_state(id)) {
        println!(
            "   The Databricks run {} is still {state}: nothing cancelled it.",
            run_id.unwrap_or_default()
        );
    }
    println!();
    println!("3. Airflow retries the task: `tether run --try 2` with the same arguments.");
    let mut try2 = spawn_try(&config_path, &spec_path, 2)?;
    let status = tokio::time::timeout(Duration::from_secs(90), try2.wait())
        .await
        .map_err(|_| Error::Usage("try 2 did not finish within 90 s".into()))?
        .map_err(io("waiting for try 2"))?;
    let stats = sim.stats();
    let job = app
        .engine
        .jobs()
        .get(job.id)
        .await?
        .ok_or(crate::engine::EngineError::JobNotFound(job.id))?;
    println!();
    println!("4. What happened:");
    for e in app.engine.jobs().events(job.id).await? {
        println!(
            "   {}  {:16} {}",
            e.at.format("%H:%M:%S%.3f"),
            e.kind,
            e.state.as_deref().unwrap_or("")
        );
    }
    println!();
    println!(
        "   submissions the workspace received: {} (tries: 2)",
        stats.submissions
    );
    println!(
        "   try 2 exit status:                  {}",
        status.code().unwrap_or(-1)
    );
    println!(
        "   final state of job {}:              {}",
        job.id, job.state
    );
    app.db.close().await;
    if stats.submissions == 1 && status.success() && job.state == JobState::Succeeded {
        println!();
        println!("The retry reattached to the running job instead of submitting it again, and it completed.");
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "the demo did not go as expected: {} submissions, try 2 {status}, job {}",
            stats.submissions, job.state
        )))
    }
}

fn spawn_try(config: &Path, spec: &Path, try_number: u32) -> Result<Child, Error> {
    let exe: PathBuf = std::env::current_exe().map_err(io("finding the tether binary"))?;
    let mut child = Command::new(exe)
        .arg("--config")
        .arg(config)
        .args(["run", "--provider", "databricks", "--spec"])
        .arg(spec)
        .args([
            "--dag",
            DAG,
            "--run",
            RUN,
            "--task",
            TASK,
            "--try",
            &try_number.to_string(),
        ])
        .env("TETHER_LOG", "error")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(io("starting tether run"))?;
    let stdout = child.stdout.take().expect("piped");
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            println!("   try {try_number} | {line}");
        }
    });
    Ok(child)
}

async fn wait_for(
    app: &App,
    ti: &TaskInstanceId,
    limit: Duration,
    done: impl Fn(JobState) -> bool,
) -> Result<crate::jobs::JobRecord, Error> {
    let start = Instant::now();
    loop {
        if let Some(job) = app.engine.jobs().latest(ti, "main").await? {
            if done(job.state) {
                return Ok(job);
            }
        }
        if start.elapsed() > limit {
            return Err(Error::Usage(
                "the demo job did not reach RUNNING in time".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
