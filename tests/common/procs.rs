//! Real `tether` processes against `tether sim` child processes, for every provider: the
//! simulator (counted through `GET /_sim/stats`, as a person reproducing a case by hand would),
//! a config and spec per provider, `tether run` and `tether serve` commands.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tether::app::App;
use tether::config::Config;
use tether::engine::key::idempotency_key;
use tether::jobs::JobRecord;
use tether::state::TaskInstanceId;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::TestDb;

pub const SIM_KEY_ID: &str = "AKIATETHERSIMULATOR";
pub const SIM_SECRET: &str = "tether-simulator-secret-key-0123456789";

/// A `tether` command for the test binary: simulator credentials, info logs, no crash point.
pub fn tether() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tether"));
    cmd.env("AWS_ACCESS_KEY_ID", SIM_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SIM_SECRET)
        .env("AWS_CONFIG_FILE", "/nonexistent/tether-test")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/tether-test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // The declared providers' examples read their secrets from these.
        .env("LIVY_PASSWORD", "livy-sim-password")
        .env("DBT_CLOUD_API_TOKEN", "dbt-sim-token")
        .env("TETHER_LOG", "info")
        .env_remove("FAILPOINTS")
        .kill_on_drop(true);
    cmd
}

/// A `tether sim` child process and its URL.
pub struct Sim {
    pub url: String,
    /// The kubeconfig a Kubernetes simulator wrote (its banner's second line names it).
    pub kubeconfig: Option<String>,
    _child: Child,
}

impl Sim {
    /// `tether sim <kind> --port 0 <args>`, runs of about a second; reads the URL from its
    /// first line.
    pub async fn start(provider: &str, args: &[&str]) -> Self {
        Self::start_with(provider, "1s", args).await
    }

    /// As [`Sim::start`], with runs that stay running for `running`.
    pub async fn start_with(provider: &str, running: &str, args: &[&str]) -> Self {
        let mut child = tether()
            .args([
                "sim",
                provider,
                "--port",
                "0",
                "--pending",
                "200ms",
                "--running",
                running,
            ])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the simulator starts")
            .unwrap()
            .expect("the simulator prints its URL");
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .expect("a URL in the first line")
            .trim_end_matches([';', ','])
            .to_string();
        let kubeconfig = if provider == "kubernetes" {
            let second = lines.next_line().await.unwrap().unwrap_or_default();
            second
                .split_whitespace()
                .find(|w| w.ends_with(".yaml"))
                .map(str::to_string)
        } else {
            None
        };
        // Keep draining its output so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            url,
            kubeconfig,
            _child: child,
        }
    }

    pub async fn stats(&self) -> Value {
        // The Kubernetes simulator serves TLS with a CA it made at its start; the tests read
        // its counters without checking it (tether itself checks it, through the kubeconfig).
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        http.get(format!("{}/_sim/stats", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Remote jobs the provider created for `key`.
    pub async fn jobs_for(&self, key: &str) -> u64 {
        self.stats().await["by_key"][key].as_u64().unwrap_or(0)
    }

    /// Cancel requests that reached a remote job.
    pub async fn cancels(&self) -> u64 {
        self.stats().await["cancels"].as_u64().unwrap_or(0)
    }
}

/// A job spec of `provider` (a registry kind) that its simulator runs.
pub fn spec(provider: &str, name: &str) -> Value {
    tether::registry::simulators(provider)
        .unwrap_or_else(|| panic!("{provider}: a kind with a simulator"))
        .sample_spec(provider, name)
}

/// Every registry kind with a simulator.
pub fn kinds() -> Vec<&'static str> {
    tether::registry::kinds()
        .into_iter()
        .filter(|k| tether::registry::simulators(k).is_some())
        .collect()
}

/// The fields of a Kubernetes account on `sim`: the kubeconfig it wrote (its server, CA and
/// token).
pub fn kubernetes_account(sim: &Sim) -> String {
    let path = sim
        .kubeconfig
        .as_deref()
        .expect("the simulator's kubeconfig");
    format!(
        "kind = \"kubernetes\"
kubeconfig = \"{path}\""
    )
}

/// The kinds of tether's Google crate, whose simulator serves all three.
pub const GOOGLE_KINDS: [&str; 3] = ["bigquery", "dataproc-job", "dataproc-batch"];

/// The fields of a Google account of `provider` on the simulator at `url`: its project, a
/// location, and a key file (in `dir`) of the service account the simulator trusts (the
/// workspace's test-only key pair), so that the processes sign their tokens as for Google.
pub fn google_account(dir: &std::path::Path, provider: &str, url: &str) -> String {
    let key = dir.join("google-key.json");
    google_key_file(&key, url);
    let location = if provider == "bigquery" {
        "US"
    } else {
        "us-central1"
    };
    format!(
        "kind = \"{provider}\"\nproject = \"tether-sim\"\nlocation = \"{location}\"\nendpoint = \"{url}\"\ncredentials_file = \"{}\"",
        key.display()
    )
}

/// Writes at `path` the key file of the service account the Google simulator at `url`
/// trusts (the workspace's test-only key pair, as the simulator writes it for itself).
pub fn google_key_file(path: &std::path::Path, url: &str) {
    let file = serde_json::json!({
        "type": "service_account",
        "project_id": "tether-sim",
        "private_key_id": "tether-sim-key-1",
        "private_key": include_str!("../../providers/core/testdata/test-only-rsa-key.pem"),
        "client_email": "tether-sim@tether-sim.iam.gserviceaccount.com",
        "token_uri": format!("{url}/token"),
    });
    std::fs::write(path, file.to_string()).unwrap();
}

/// A config file for `provider` at the simulator, a spec file, in a temp folder.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub spec: PathBuf,
    pub provider: &'static str,
}

impl Setup {
    pub fn new(db: &TestDb, provider: &'static str, sim: &Sim, lease: &str) -> Self {
        Self::with_timeout(db, provider, sim, lease, "2s")
    }

    /// As [`Setup::new`], with the provider's `request_timeout`.
    pub fn with_timeout(
        db: &TestDb,
        provider: &'static str,
        sim: &Sim,
        lease: &str,
        request_timeout: &str,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let account = if provider == "http" {
            declared_account("livy.toml", &sim.url)
        } else if provider.starts_with("databricks") {
            format!(
                "kind = \"{provider}\"\nhost = \"{}\"\ntoken = \"dapi-sim-token\"",
                sim.url
            )
        } else if GOOGLE_KINDS.contains(&provider) {
            google_account(dir.path(), provider, &sim.url)
        } else if provider == "kubernetes" {
            kubernetes_account(sim)
        } else {
            format!(
                "kind = \"{provider}\"\nregion = \"us-east-1\"\nendpoint_url = \"{}\"",
                sim.url
            )
        };
        let config = dir.path().join("tether.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[database]
url = "{url}"

[supervisor]
lease = "{lease}"
shutdown_grace = "5s"

[jobs]
key_namespace = "{KEY_NAMESPACE}"

[api]
listen = "127.0.0.1:0"

[providers.{provider}]
{account}
poll_initial = "100ms"
poll_max = "300ms"
request_timeout = "{request_timeout}"
max_retries = 5
unknown_after = 3
not_found_grace = "1s"
"#,
                url = db.url.expose()
            ),
        )
        .unwrap();
        let spec_path = dir.path().join("job.json");
        std::fs::write(&spec_path, spec(provider, "load").to_string()).unwrap();
        Self {
            dir,
            config,
            spec: spec_path,
            provider,
        }
    }

    pub fn log(&self, name: &str) -> Stdio {
        Stdio::from(std::fs::File::create(self.dir.path().join(name)).unwrap())
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// `tether run` for etl/r1/`task`, output to `<log>.out` / `<log>.err`.
    pub fn run(&self, task: &str, try_number: u32, log: &str) -> Command {
        let mut cmd = tether();
        cmd.arg("--config")
            .arg(&self.config)
            .args(["run", "--provider", self.provider, "--spec"])
            .arg(&self.spec)
            .args(["--dag", "etl", "--run", "r1", "--task", task, "--try"])
            .arg(try_number.to_string())
            .stdout(self.log(&format!("{log}.out")))
            .stderr(self.log(&format!("{log}.err")));
        cmd
    }

    /// `tether --config <this config> <args>`, output to `<log>.out` / `<log>.err`.
    pub fn cli(&self, args: &[&str], log: &str) -> Command {
        let mut cmd = tether();
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .stdout(self.log(&format!("{log}.out")))
            .stderr(self.log(&format!("{log}.err")));
        cmd
    }

    pub fn serve(&self) -> Command {
        let mut cmd = tether();
        cmd.arg("--config")
            .arg(&self.config)
            .arg("serve")
            .stdout(self.log("serve.out"))
            .stderr(self.log("serve.err"));
        cmd
    }

    pub async fn app(&self) -> App {
        App::open(Config::load(&self.config).unwrap())
            .await
            .unwrap()
    }
}

/// The provider table of an example description in `config/` (`kind = "http"`), pointed at
/// `url`, less its polling settings (the caller gives its own), as the lines after a
/// `[providers.NAME]` header: its sub-tables inline.
pub fn declared_account(example: &str, url: &str) -> String {
    let text = std::fs::read_to_string(format!("{}/config/{example}", env!("CARGO_MANIFEST_DIR")))
        .unwrap();
    let file: toml::Table = text.parse().unwrap();
    let (_, table) = file["providers"].as_table().unwrap().iter().next().unwrap();
    let mut table = tether_provider::settings::from_toml(table.as_table().unwrap().clone());
    table.insert("base_url".into(), url.into());
    for key in ["poll_initial", "poll_max", "rate_limit_per_second"] {
        table.remove(key);
    }
    // The simulators' secrets in the file itself: a test process that opens the config
    // (`Setup::app`) has no environment for them.
    if let Some(tether_provider::settings::Setting::Table(auth)) = table.get_mut("auth") {
        for (var, secret, value) in [
            ("password_env", "password", "livy-sim-password"),
            ("token_env", "token", "dbt-sim-token"),
        ] {
            if auth.remove(var).is_some() {
                auth.insert(secret.into(), value.into());
            }
        }
    }
    table
        .iter()
        .map(|(key, value)| format!("{key} = {value}\n"))
        .collect()
}

/// The key namespace of the processes' configuration, so that a test knows their keys.
pub const KEY_NAMESPACE: &str = "tether-tests";

/// The idempotency key of etl/r1/`task`, generation 1.
pub fn key_of(task: &str) -> String {
    idempotency_key(
        KEY_NAMESPACE,
        &TaskInstanceId::new("etl", "r1", task, -1),
        "main",
        1,
    )
}

/// The key of submission attempt `attempt` of etl/r1/`task`, generation 1 (an attempt after
/// a refused one has a key of its own).
#[allow(dead_code)]
pub fn key_of_attempt(task: &str, attempt: i64) -> String {
    tether::engine::key::attempt_key(
        KEY_NAMESPACE,
        &TaskInstanceId::new("etl", "r1", task, -1),
        "main",
        1,
        attempt,
    )
}

/// Waits until the job of etl/r1/`task` satisfies `done`.
pub async fn wait_job(app: &App, task: &str, done: impl Fn(&JobRecord) -> bool) -> JobRecord {
    let ti = TaskInstanceId::new("etl", "r1", task, -1);
    let start = Instant::now();
    loop {
        if let Some(job) = app.engine.jobs().latest(&ti, "main").await.unwrap() {
            if done(&job) {
                return job;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{task}: timed out"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
