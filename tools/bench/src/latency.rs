//! `tether-bench --latency`: how soon tether knows that a remote job ended, and how soon a
//! client waiting through its long poll hears of it (issue #35, "Seconds, not a polling
//! cadence").
//!
//! For each mode and scale, on a fresh simulator, database and `tether serve` (child
//! processes): N running Databricks runs are seeded through the engine and polled once; then
//! waiters hold `POST /v1/jobs/wait` long polls on every job (one request per 1,000 jobs, as
//! the Airflow provider's shared waiter does), and over the window runs end at the simulator
//! at a stated rate (`POST /_sim/runs/end`, which says each run's `end_time`); each ended job
//! is replaced by a new one (`POST /v1/jobs`), so that about N stay tracked. After the window
//! no more runs end, and the bench waits until every ended job was heard of (or gives up).
//!
//! - detection latency: the job's `finished_at` (tether's record of the end) less the run's
//!   `end_time`;
//! - end to end: when the waiter's answer naming the ended job arrived, less the `end_time`;
//! - over the window: `tether serve`'s CPU-s/s, its peak RSS, the provider calls per minute
//!   by the simulator's counters (status `runs/get`, `runs/list` pages, submissions), and the
//!   simulator's own CPU.
//!
//! The modes: `polling` (the account's settings as they are, polled every cadence), `sweep`
//! (the same with `sweep_every`), `notifications` (the account names a notification
//! destination of the simulator, which POSTs job notifications to tether's
//! `/v1/events/databricks/{account}`); `batch-polling` and `batch-events` the same with AWS
//! Batch jobs, the latter with EventBridge's events through moto's SQS; `bigquery-polling`
//! and `bigquery-events` with BigQuery jobs, the latter with their audit log entries through
//! a Pub/Sub subscription of the Google Cloud CLI's emulator; `kubernetes-polling` and
//! `kubernetes-watch` with Kubernetes Jobs, the latter with a watch of tether's label
//! (`[events.NAME] kind = "kubernetes-watch"`). One table, a line per mode and
//! scale, and with
//! `--compare-airflow` a line for Airflow's `DatabricksExecutionTrigger` at the same cadence
//! and end rate (`airflow_triggers.py --end-rate`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rand::seq::SliceRandom;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{
    count, create_database, drop_database, free_port, proc_cpu_seconds, proc_rss_mib, seed,
    sim_stats, spawn, start_sim, wait_for,
};
use tether::app::App;
use tether::config::Config;
use tether::Error;

/// The admin token the benchmark's server accepts.
const TOKEN: &str = "tether-bench-latency-token-0123456789";
/// The password the simulator's notification destination sends.
const SECRET: &str = "tether-bench-notification-secret";
/// The most jobs one `POST /v1/jobs/wait` names (tether's limit, the Python waiter's chunk).
const WAIT_CHUNK: usize = 1000;
/// The long polls' timeout, in seconds.
const WAIT_TIMEOUT: u64 = 60;
/// How long a renewed long poll lets other new jobs join (the Python waiter's `JOIN_DELAY`).
const JOIN_DELAY: Duration = Duration::from_millis(100);
/// How often the ender looks whether runs are due to end.
const TICK: Duration = Duration::from_millis(100);

/// How tether learns of ends, and of which provider kind the jobs are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Databricks runs, polling only, at the account's settings.
    Polling,
    /// Databricks runs, polling with a sweep target (`sweep_every`).
    Sweep,
    /// Databricks runs, polling, and Databricks job notifications to tether's API.
    Notifications,
    /// AWS Batch jobs, polling only (`DescribeJobs` sweeps of 100 ids a call).
    BatchPolling,
    /// AWS Batch jobs, polling, and the jobs' EventBridge events through an SQS queue served
    /// by moto (`[events.NAME]` of kind `aws-sqs`).
    BatchEvents,
    /// BigQuery jobs, polling only (`jobs.list` sweeps of running jobs).
    BigQueryPolling,
    /// BigQuery jobs, polling, and the jobs' audit log entries through a Pub/Sub subscription
    /// of the Google Cloud CLI's emulator (`[events.NAME]` of kind `gcp-pubsub`).
    BigQueryEvents,
    /// Kubernetes Jobs, polling only (sweeps list tether's label).
    KubernetesPolling,
    /// Kubernetes Jobs, polling, and a watch of tether's label (`[events.NAME]` of kind
    /// `kubernetes-watch`).
    KubernetesWatch,
}

impl Mode {
    /// The mode named `name`.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "polling" => Ok(Self::Polling),
            "sweep" => Ok(Self::Sweep),
            "notifications" => Ok(Self::Notifications),
            "batch-polling" => Ok(Self::BatchPolling),
            "batch-events" => Ok(Self::BatchEvents),
            "bigquery-polling" => Ok(Self::BigQueryPolling),
            "bigquery-events" => Ok(Self::BigQueryEvents),
            "kubernetes-polling" => Ok(Self::KubernetesPolling),
            "kubernetes-watch" => Ok(Self::KubernetesWatch),
            other => Err(format!(
                "{other:?} is not a mode: polling, sweep, notifications, batch-polling, \
                 batch-events, bigquery-polling, bigquery-events, kubernetes-polling or \
                 kubernetes-watch"
            )),
        }
    }

    fn label(self, sweep_every: Duration) -> String {
        match self {
            Self::Polling => "polling only".into(),
            Self::Sweep => format!("sweep_every {}s", sweep_every.as_secs_f64()),
            Self::Notifications => "Databricks notifications".into(),
            Self::BatchPolling => "AWS Batch, polling only".into(),
            Self::BatchEvents => "AWS Batch, EventBridge events through SQS (moto)".into(),
            Self::BigQueryPolling => "BigQuery, polling only".into(),
            Self::BigQueryEvents => "BigQuery, audit log entries through Pub/Sub (emulator)".into(),
            Self::KubernetesPolling => "Kubernetes Jobs, polling only".into(),
            Self::KubernetesWatch => "Kubernetes Jobs, a watch of tether's label".into(),
        }
    }

    /// The provider kind (and account name) of its jobs.
    fn kind(self) -> &'static str {
        match self {
            Self::Polling | Self::Sweep | Self::Notifications => "databricks",
            Self::BatchPolling | Self::BatchEvents => "batch",
            Self::BigQueryPolling | Self::BigQueryEvents => "bigquery",
            Self::KubernetesPolling | Self::KubernetesWatch => "kubernetes",
        }
    }
}

/// How fast runs end: per second, or a share of the tracked jobs per minute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EndRate {
    /// Runs per second.
    PerSecond(f64),
    /// Percent of the tracked jobs per minute.
    PercentPerMinute(f64),
}

impl EndRate {
    /// `10/s`, `600/min` or `1%/min`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a rate such as 10/s, 600/min or 1%/min");
        let (n, unit) = text.trim().split_once('/').ok_or_else(bad)?;
        let per_minute = match unit {
            "s" | "sec" | "second" => false,
            "m" | "min" | "minute" => true,
            _ => return Err(bad()),
        };
        if let Some(p) = n.strip_suffix('%') {
            let p: f64 = p.trim().parse().map_err(|_| bad())?;
            if !per_minute || p <= 0.0 {
                return Err(bad());
            }
            return Ok(Self::PercentPerMinute(p));
        }
        let n: f64 = n.trim().parse().map_err(|_| bad())?;
        if n <= 0.0 {
            return Err(bad());
        }
        Ok(Self::PerSecond(if per_minute { n / 60.0 } else { n }))
    }

    /// Runs per second with `jobs` tracked.
    pub fn per_second(self, jobs: u32) -> f64 {
        match self {
            Self::PerSecond(r) => r,
            Self::PercentPerMinute(p) => f64::from(jobs) * p / 100.0 / 60.0,
        }
    }
}

/// What the `latency` scenario runs.
#[derive(Debug, Clone)]
pub struct LatencyBench {
    /// The scales: running jobs tracked.
    pub jobs: Vec<u32>,
    /// The modes, in order.
    pub modes: Vec<Mode>,
    /// How often each job is due (`poll_initial` = `poll_max`).
    pub cadence: Duration,
    /// How long runs end, and figures are measured.
    pub window: Duration,
    /// How fast runs end during the window.
    pub end_rate: EndRate,
    /// The account's `rate_limit_per_second` and `rate_limit_burst`; `None`: its defaults.
    pub rate_limit: Option<(f64, u32)>,
    /// `sweep_every` of the `sweep` mode.
    pub sweep_every: Duration,
    /// `None`: SQLite in a temp folder; else a PostgreSQL admin URL.
    pub postgres_admin: Option<String>,
    /// `supervisor.claim_batch`.
    pub claim_batch: u32,
    /// The tether binary that serves the simulator.
    pub binary: PathBuf,
    /// The tether binary whose `serve` is measured.
    pub serve_binary: PathBuf,
    /// Airflow's triggers too, in this virtual environment, at the scales up to
    /// `airflow_max_jobs`.
    pub airflow_venv: Option<PathBuf>,
    /// The largest scale Airflow's triggers run at.
    pub airflow_max_jobs: u32,
    /// Keep each line's folder (`serve.log`, `tether.toml`, the SQLite database).
    pub keep: bool,
    /// Hold the waiters' long polls (`false`: none, so that the figures are the supervisor's
    /// own; end to end is then not measured, detection is read from tether's records).
    pub waiters: bool,
}

/// One line of the table.
#[derive(Debug, Clone)]
struct Line {
    what: String,
    jobs: u32,
    /// `Err`: why there are no figures.
    figures: Result<Measured, String>,
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct Measured {
    pub(crate) cpu: f64,
    /// The peak since the process started (`VmHWM`): the seeded jobs' claim and first
    /// recording included.
    pub(crate) rss_mib: f64,
    /// The most RSS sampled (each second) in the window and the drain: the steady state's.
    pub(crate) rss_window_mib: f64,
    pub(crate) calls_per_minute: f64,
    /// Status calls, list calls, submissions per minute (others fold into the total).
    pub(crate) breakdown: (f64, f64, f64),
    /// Calls to the event queue per minute (SQS `ReceiveMessage` and `DeleteMessageBatch`),
    /// counted in the total.
    pub(crate) queue_calls_per_minute: f64,
    /// Seconds, one per measured end (tether's record; Airflow: the trigger fired).
    pub(crate) detection: Vec<f64>,
    /// Seconds, one per measured end heard by a waiter.
    pub(crate) end_to_end: Vec<f64>,
    /// Runs ended during the window.
    pub(crate) ended: usize,
    /// Of them, those whose end tether had not recorded when the bench gave up.
    pub(crate) missed: usize,
    pub(crate) sim_cpu: f64,
    /// What the line's run said of itself.
    pub(crate) notes: Vec<String>,
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Runs every mode at every scale (and Airflow's triggers), then prints the table.
pub async fn latency(bench: &LatencyBench) -> Result<(), Error> {
    let limit = match bench.rate_limit {
        Some((rate, burst)) => format!("{rate}/s, burst {burst}"),
        None => {
            let d = tether_provider_defaults();
            format!("{}/s, burst {} (the account's defaults)", d.0, d.1)
        }
    };
    let backend = if bench.postgres_admin.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let mut kinds: Vec<&str> = bench.modes.iter().map(|m| m.kind()).collect();
    kinds.dedup();
    let sims = kinds
        .iter()
        .map(|k| match *k {
            "databricks" => "Databricks simulator",
            "bigquery" => "Google simulator's BigQuery (events through the Pub/Sub emulator)",
            "kubernetes" => "Kubernetes API server simulator (watched over TLS)",
            _ => "AWS Batch simulator (events through moto's SQS)",
        })
        .collect::<Vec<_>>()
        .join(" and ");
    let header = format!(
        "bench latency: {sims}, {backend}, every job due every {}s (poll_initial = poll_max), \
         account rate limit {limit}, runs ending at {} (each replaced by a new job), {}s window",
        bench.cadence.as_secs_f64(),
        rate_text(bench.end_rate),
        bench.window.as_secs()
    );
    println!("{header}");
    let mut lines = Vec::new();
    for &jobs in &bench.jobs {
        for &mode in &bench.modes {
            let what = mode.label(bench.sweep_every);
            println!(
                "-- {what}, {jobs} jobs, ends at {:.2}/s",
                bench.end_rate.per_second(jobs)
            );
            let started = Instant::now();
            let figures = run_mode(bench, mode, jobs).await.map_err(|e| e.to_string());
            match &figures {
                Ok(m) => print_details(m),
                Err(e) => println!("   not measured: {e}"),
            }
            println!("   took {:.0}s", started.elapsed().as_secs_f64());
            lines.push(Line {
                what,
                jobs,
                figures,
            });
        }
        if let Some(venv) = bench
            .airflow_venv
            .as_ref()
            .filter(|_| jobs <= bench.airflow_max_jobs)
        {
            let what = "Airflow DatabricksExecutionTrigger".to_string();
            println!("-- {what}, {jobs} runs");
            let started = Instant::now();
            let figures = super::airflow::airflow_latency(bench, jobs, venv)
                .await
                .map_err(|e| e.to_string());
            match &figures {
                Ok(m) => print_details(m),
                Err(e) => println!("   not measured: {e}"),
            }
            println!("   took {:.0}s", started.elapsed().as_secs_f64());
            lines.push(Line {
                what,
                jobs,
                figures,
            });
        }
    }
    println!();
    println!("{header}");
    print_table(&lines);
    Ok(())
}

/// The defaults of an account's rate limit (`rate_limit_per_second`, `rate_limit_burst`).
fn tether_provider_defaults() -> (f64, u32) {
    let d = tether_provider::CommonSettings::default();
    (d.rate_per_second, d.rate_burst)
}

fn rate_text(rate: EndRate) -> String {
    match rate {
        EndRate::PerSecond(r) => format!("{r}/s"),
        EndRate::PercentPerMinute(p) => format!("{p}% of the jobs per minute"),
    }
}

fn print_details(m: &Measured) {
    let (gets, lists, submits) = m.breakdown;
    println!(
        "   tether serve (or the triggers): {:.4} CPU-s/s, RSS {:.1} MiB at most in the window, {:.1} MiB peak since it started; provider calls {:.0}/min ({gets:.0} status, {lists:.0} list pages, {submits:.0} submissions, {:.0} event queue); simulator {:.3} CPU-s/s",
        m.cpu, m.rss_window_mib, m.rss_mib, m.calls_per_minute, m.queue_calls_per_minute, m.sim_cpu
    );
    println!(
        "   {} runs ended in the window; detection p50 {} p99 {} max {}; end to end p50 {} p99 {} ({} heard); not recorded when the bench gave up: {}",
        m.ended,
        secs(percentile(&m.detection, 0.50)),
        secs(percentile(&m.detection, 0.99)),
        secs(m.detection.iter().copied().fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.max(x))))),
        secs(percentile(&m.end_to_end, 0.50)),
        secs(percentile(&m.end_to_end, 0.99)),
        m.end_to_end.len(),
        m.missed
    );
    for note in &m.notes {
        println!("   {note}");
    }
}

fn secs(v: Option<f64>) -> String {
    match v {
        Some(s) if s < 10.0 => format!("{s:.2}s"),
        Some(s) => format!("{s:.1}s"),
        None => "-".into(),
    }
}

fn print_table(lines: &[Line]) {
    println!(
        "| mode | jobs | CPU-s/s | RSS in the window / peak | provider calls/min (status, list, submit, event queue) | detection p50 / p99 / max | end to end p50 / p99 | ends (missed) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for line in lines {
        match &line.figures {
            Ok(m) => {
                let (g, l, s) = m.breakdown;
                let max = m
                    .detection
                    .iter()
                    .copied()
                    .fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.max(x))));
                println!(
                    "| {} | {} | {:.4} | {:.1} / {:.1} MiB | {:.0} ({g:.0}, {l:.0}, {s:.0}, {:.0}) | {} / {} / {} | {} / {} | {} ({}) |",
                    line.what,
                    thousands(line.jobs),
                    m.cpu,
                    m.rss_window_mib,
                    m.rss_mib,
                    m.calls_per_minute,
                    m.queue_calls_per_minute,
                    secs(percentile(&m.detection, 0.50)),
                    secs(percentile(&m.detection, 0.99)),
                    secs(max),
                    secs(percentile(&m.end_to_end, 0.50)),
                    secs(percentile(&m.end_to_end, 0.99)),
                    m.ended,
                    m.missed
                );
            }
            Err(e) => println!(
                "| {} | {} | not measured: {} | | | | | |",
                line.what,
                thousands(line.jobs),
                e.replace('\n', " ").replace('|', "/")
            ),
        }
    }
}

fn thousands(n: u32) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The `q` quantile of `values` (nearest rank); `None` for none.
pub(crate) fn percentile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// A tracked job whose remote job the ender may end.
#[derive(Debug, Clone)]
struct Tracked {
    job: i64,
    /// The remote job's id at the simulator (a Databricks run id, a Batch job id).
    remote: String,
    /// The waiter holding its long poll.
    waiter: usize,
}

/// What a waiter heard of an ended job.
#[derive(Debug, Clone, Copy)]
struct Heard {
    /// When the answer arrived, ms since the epoch.
    at_ms: f64,
    /// The job's `finished_at`, ms since the epoch.
    finished_ms: Option<f64>,
}

/// What the waiters heard of ended jobs, and the first of their failed requests.
#[derive(Debug, Default)]
struct Ears {
    heard: HashMap<i64, Heard>,
    failures: u64,
    first_failure: Option<String>,
}

type HeardMap = Arc<Mutex<Ears>>;

/// How many jobs `tether serve` at `base` records pending (its `/metrics`' `tether_jobs`);
/// `None` when it could not be read.
async fn pending_jobs(http: &reqwest::Client, base: &str) -> Option<u64> {
    let text = metrics(http, base).await?;
    Some(metric_sum(&text, "tether_jobs{", "state=\"pending\""))
}

/// Where the simulator's events go and `tether serve` reads them: the `batch-events` mode's
/// SQS queue served by moto, or the `bigquery-events` mode's topic and subscription of the
/// Pub/Sub emulator.
enum Bus {
    Sqs {
        moto: tether_testkit::moto::Moto,
        url: String,
    },
    PubSub {
        emulator: tether_testkit::pubsub::Emulator,
        topic: String,
        subscription: String,
    },
}

impl Bus {
    /// The bus of `mode`, started, if it has one.
    async fn start(mode: Mode) -> Result<Option<Self>, Error> {
        match mode {
            Mode::BatchEvents => {
                let moto = tether_testkit::moto::start("tether-bench --latency batch-events")
                    .await
                    .ok_or_else(|| {
                        Error::Usage("batch-events needs moto: `pip install 'moto[server]'`".into())
                    })?;
                let url = tether_testkit::moto::create_queue(
                    &tether_testkit::moto::sqs(&moto),
                    "tether-bench-events",
                )
                .await;
                Ok(Some(Self::Sqs { moto, url }))
            }
            Mode::BigQueryEvents => {
                let emulator =
                    tether_testkit::pubsub::start("tether-bench --latency bigquery-events")
                        .await
                        .ok_or_else(|| {
                            Error::Usage(
                                "bigquery-events needs the Pub/Sub emulator of the Google Cloud CLI"
                                    .into(),
                            )
                        })?;
                let (topic, subscription) = emulator
                    .topic_and_subscription("tether-sim", "job-logs", "tether-bench", 60)
                    .await;
                Ok(Some(Self::PubSub {
                    emulator,
                    topic,
                    subscription,
                }))
            }
            _ => Ok(None),
        }
    }

    /// The simulator's arguments that send its events here.
    fn sim_args(&self) -> Vec<String> {
        match self {
            Self::Sqs { moto, url } => vec![
                "--event-queue-url".into(),
                url.clone(),
                "--event-endpoint-url".into(),
                moto.url.clone(),
            ],
            Self::PubSub {
                emulator, topic, ..
            } => vec![
                "--event-topic".into(),
                topic.clone(),
                "--event-pubsub-endpoint".into(),
                emulator.url.clone(),
            ],
        }
    }

    /// `tether serve`'s `[events.NAME]` table reading it for the account `kind`.
    fn events_table(&self, kind: &str) -> String {
        match self {
            Self::Sqs { moto, url } => format!(
                "\n[events.aws]\nkind = \"aws-sqs\"\nqueue_url = \"{url}\"\nendpoint_url = \"{}\"\n\
                 region = \"us-east-1\"\naccounts = [\"{kind}\"]\n",
                moto.url
            ),
            Self::PubSub {
                emulator,
                subscription,
                ..
            } => format!(
                "\n[events.google]\nkind = \"gcp-pubsub\"\nsubscription = \"{subscription}\"\n\
                 endpoint = \"{}\"\nunauthenticated = true\naccounts = [\"{kind}\"]\n",
                emulator.url
            ),
        }
    }
}

/// The events `tether serve` handled, whatever their outcome (`tether_events_total`).
async fn events_handled(http: &reqwest::Client, base: &str) -> u64 {
    metric_sum(
        &metrics(http, base).await.unwrap_or_default(),
        "tether_events_total{",
        "",
    )
}

/// The calls `tether serve` made to its event sources (`tether_event_source_calls_total`).
async fn queue_calls(http: &reqwest::Client, base: &str) -> u64 {
    metric_sum(
        &metrics(http, base).await.unwrap_or_default(),
        "tether_event_source_calls_total{",
        "",
    )
}

/// `tether serve`'s `/metrics` text, if it answered.
async fn metrics(http: &reqwest::Client, base: &str) -> Option<String> {
    http.get(format!("{base}/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()
}

/// The sum of the values of the lines of `text` that start with `prefix` (a metric's name
/// and `{`) and hold `label` (`""`: any).
fn metric_sum(text: &str, prefix: &str, label: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(prefix) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// `tether serve`'s histogram of event lags (`tether_event_lag_seconds`: from an event's own
/// time to its job marked due), summed over sources: (bucket bound, events at most that late).
async fn event_lag(http: &reqwest::Client, base: &str) -> Vec<(f64, u64)> {
    let text = metrics(http, base).await.unwrap_or_default();
    let mut buckets: Vec<(f64, u64)> = Vec::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("tether_event_lag_seconds_bucket{"))
    {
        let bound = line
            .split("le=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|b| b.parse::<f64>().ok())
            .unwrap_or(f64::INFINITY);
        let n = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0) as u64;
        match buckets.iter_mut().find(|(b, _)| *b == bound) {
            Some((_, total)) => *total += n,
            None => buckets.push((bound, n)),
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

/// The window's event lags (`after` less `before`), as the bucket bounds their median and
/// 99th percentile fall under: how much of detection passes before tether marks the job due.
fn lag_note(before: &[(f64, u64)], after: &[(f64, u64)]) -> String {
    let window: Vec<(f64, u64)> = after
        .iter()
        .map(|(b, n)| {
            let was = before.iter().find(|(x, _)| x == b).map_or(0, |(_, n)| *n);
            (*b, n.saturating_sub(was))
        })
        .collect();
    let total = window.last().map_or(0, |(_, n)| *n);
    if total == 0 {
        return "no event marked a job due in the window".into();
    }
    let under = |q: f64| {
        window
            .iter()
            .find(|(_, n)| *n as f64 >= q * total as f64)
            .map_or(f64::INFINITY, |(b, _)| *b)
    };
    format!(
        "event lag (an event's own time to its job marked due; {total} events): p50 <= {}s, p99 <= {}s",
        under(0.5),
        under(0.99)
    )
}

/// The kubeconfig `tether sim kubernetes` (the child `sim`, serving at `url`) wrote: its
/// server, CA and token.
fn kubeconfig(sim: &tokio::process::Child, url: &str) -> PathBuf {
    let port = url.rsplit(':').next().unwrap_or("0");
    let pid = sim.id().unwrap_or_default();
    std::env::temp_dir().join(format!("tether-sim-kubeconfig-{pid}-{port}.yaml"))
}

/// The simulator's counter of single status calls, by its kind's name.
fn status_counter(kind: &str) -> &'static str {
    match kind {
        "databricks" | "bigquery" | "kubernetes" => "get_requests",
        _ => "status_requests",
    }
}

/// The simulator's counters of status calls, list calls and submissions, by its kind's names.
fn call_counts(kind: &str, stats: &Value) -> (u64, u64, u64) {
    match kind {
        "databricks" => (
            count(stats, "get_requests"),
            count(stats, "list_requests"),
            count(stats, "submit_requests"),
        ),
        "bigquery" => (
            count(stats, "get_requests"),
            count(stats, "list_requests"),
            count(stats, "insert_requests"),
        ),
        "kubernetes" => (
            count(stats, "get_requests"),
            count(stats, "list_requests"),
            count(stats, "create_requests"),
        ),
        _ => (
            count(stats, "status_requests"),
            count(stats, "list_requests"),
            stats["submissions"][kind].as_u64().unwrap_or(0),
        ),
    }
}

/// One mode at one scale: its figures.
async fn run_mode(bench: &LatencyBench, mode: Mode, jobs: u32) -> Result<Measured, Error> {
    let io = |context: &str| {
        let context = context.to_string();
        move |source| Error::Io { context, source }
    };
    let kind = mode.kind();
    let dir = tempfile::tempdir().map_err(io("making a temp folder"))?;
    if kind == "batch" {
        // `tether serve` (a child) and the bench's SQS client sign with the AWS simulator's
        // key pair.
        tether_testkit::moto::aws_env();
    }
    let queue = Bus::start(mode).await?;
    let sim_args = queue.as_ref().map(Bus::sim_args).unwrap_or_default();
    let (mut sim, sim_url) = start_sim(&bench.binary, dir.path(), kind, &sim_args).await?;
    let (db_url, pg) = create_database(bench.postgres_admin.as_deref(), dir.path()).await?;
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    // The Kubernetes simulator serves TLS with a CA it made at its start: the bench's own
    // calls to it (ends, counters) trust it blindly; tether's trust it through the kubeconfig.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .danger_accept_invalid_certs(true)
        .build()
        .map_err(|e| Error::Usage(format!("HTTP client: {e}")))?;
    let mut account = String::new();
    let mut events = String::new();
    match mode {
        Mode::Polling | Mode::BatchPolling | Mode::BigQueryPolling | Mode::KubernetesPolling => {}
        Mode::KubernetesWatch => {
            events = format!(
                "\n[events.k8s]\nkind = \"kubernetes-watch\"\nkubeconfig = \"{}\"\naccounts = [\"kubernetes\"]\n",
                kubeconfig(&sim, &sim_url).display()
            );
        }
        Mode::Sweep => {
            account += &format!("sweep_every = \"{}s\"\n", bench.sweep_every.as_secs_f64());
        }
        Mode::Notifications => {
            let destination = add_destination(&http, &sim_url, &base).await?;
            account += &format!(
                "notification_destination = \"{destination}\"\nnotification_secret = \"{SECRET}\"\n"
            );
        }
        Mode::BatchEvents | Mode::BigQueryEvents => {
            events = queue.as_ref().expect("the events' bus").events_table(kind);
        }
    }
    let provider = match kind {
        "databricks" => format!(
            "[providers.databricks]\nkind = \"databricks\"\nhost = \"{sim_url}\"\ntoken = \"dapi-sim-token\"\n"
        ),
        // The simulator is the metadata server too: its tokens, without a key file.
        "bigquery" => format!(
            "[providers.bigquery]\nkind = \"bigquery\"\nproject = \"tether-sim\"\nlocation = \"US\"\n\
             endpoint = \"{sim_url}\"\nmetadata_server = \"{sim_url}\"\n"
        ),
        "kubernetes" => format!(
            "[providers.kubernetes]\nkind = \"kubernetes\"\nkubeconfig = \"{}\"\n",
            kubeconfig(&sim, &sim_url).display()
        ),
        _ => format!(
            "[providers.{kind}]\nkind = \"{kind}\"\nendpoint_url = \"{sim_url}\"\nregion = \"us-east-1\"\n"
        ),
    };
    // The account's rate limit for `tether serve`; seeding (in this process) is not limited.
    let rate_lines = match bench.rate_limit {
        Some((rate, burst)) => {
            format!("rate_limit_per_second = {rate}\nrate_limit_burst = {burst}\n")
        }
        None => String::new(),
    };
    let secs = bench.cadence.as_secs_f64();
    let config_text = format!(
        r#"
[database]
url = "{db_url}"

[supervisor]
lease = "30s"
claim_batch = {claim_batch}
max_concurrent_polls = 64

[api]
enabled = true
listen = "127.0.0.1:{port}"
admin_token_sha256 = ["{hash}"]
{events}
{provider}poll_initial = "{secs}s"
poll_max = "{secs}s"
poll_multiplier = 1.0
coalesce = true
{account}"#,
        claim_batch = bench.claim_batch,
        hash = tether::api::auth::hash_token(TOKEN),
    );
    let config_path = dir.path().join("tether.toml");
    std::fs::write(&config_path, format!("{config_text}{rate_lines}"))
        .map_err(io("writing the bench config"))?;
    let unlimited = "rate_limit_per_second = 1000000\nrate_limit_burst = 100000\n";
    let config = Config::from_toml(&format!("{config_text}{unlimited}"), "bench")?;
    let app = App::open(config).await?;
    let seeding = Instant::now();
    let seeded = seed(&app, kind, jobs, "r1").await?;
    let tracked: Vec<Tracked> = seeded
        .iter()
        .enumerate()
        .filter_map(|(i, job)| {
            let handle = job.handle.as_ref()?;
            let remote = match kind {
                "databricks" => handle.get_i64("run_id")?.to_string(),
                "kubernetes" => handle.get_str("uid")?,
                _ => handle.get_str("job_id")?,
            };
            Some(Tracked {
                job: job.id.0,
                remote,
                waiter: i / WAIT_CHUNK,
            })
        })
        .collect();
    let mut notes = vec![format!(
        "seeded {jobs} jobs in {:.1}s",
        seeding.elapsed().as_secs_f64()
    )];
    app.db.close().await;
    drop(app);

    let config_arg = config_path.to_string_lossy().to_string();
    let serve = spawn(
        &bench.serve_binary,
        &["--config", &config_arg, "serve"],
        &dir.path().join("serve.log"),
    )?;
    let serve_pid = serve.id().unwrap_or(0);
    wait_for(&format!("{base}/readyz")).await;
    // Warm-up: every job polled once, so that tether knows each is running.
    let warm = Instant::now();
    loop {
        let stats = sim_stats(&http, &sim_url, bench.cadence * 2).await;
        if count(&stats, "fresh_runs") >= u64::from(jobs) {
            notes.push(format!(
                "warm-up: every job polled once after {:.1}s",
                warm.elapsed().as_secs_f64()
            ));
            break;
        }
        if warm.elapsed() > bench.cadence * 4 + Duration::from_secs(120) {
            notes.push(format!(
                "warm-up: only {} of {jobs} jobs polled after {:.0}s; measuring anyway",
                count(&stats, "fresh_runs"),
                warm.elapsed().as_secs_f64()
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // And recorded: a seeded job is recorded pending, and the poll that finds it running
    // writes that (at 100,000 jobs, 4 to 11 s after the last was polled once); the window
    // measures the steady state, not that first recording.
    let recorded = Instant::now();
    loop {
        let pending = pending_jobs(&http, &base).await;
        if pending == Some(0) {
            notes.push(format!(
                "warm-up: every job recorded running {:.1}s later",
                recorded.elapsed().as_secs_f64()
            ));
            break;
        }
        if recorded.elapsed() > bench.cadence * 4 + Duration::from_secs(300) {
            notes.push(format!(
                "warm-up: {pending:?} jobs still recorded pending after {:.0}s; measuring anyway",
                recorded.elapsed().as_secs_f64()
            ));
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    // The seeded jobs' own events (each job's first state) are sent and read before the
    // window: the simulator has sent them all when its count stops moving.
    if queue.is_some() {
        let drained = Instant::now();
        let sent = |stats: &Value| count(stats, "events_sent");
        let mut last = sent(&sim_stats(&http, &sim_url, bench.cadence * 2).await);
        let mut left = u64::MAX;
        // moto takes 30 to 100 ms a SendMessage on these machines: 10,000 events can take
        // longer than the ten minutes that are ample at 1,000.
        let patience = Duration::from_secs(600) + Duration::from_millis(100) * tracked.len() as u32;
        while drained.elapsed() < patience {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let now = sent(&sim_stats(&http, &sim_url, bench.cadence * 2).await);
            // Read, not only sent: the events `tether serve` handled (a backlog still being
            // read when the window opens holds the window's first ends behind it).
            left = now.saturating_sub(events_handled(&http, &base).await);
            if now == last && left == 0 {
                break;
            }
            last = now;
        }
        notes.push(format!(
            "the seeded jobs' {last} events sent and read in {:.0}s ({left} left in the queue)",
            drained.elapsed().as_secs_f64()
        ));
        // An event with news makes a status call of its own (a poked job is asked singly):
        // wait until those have been made, when the simulator's single status calls fall
        // below one a second.
        let quiet = Instant::now();
        let mut calls = count(
            &sim_stats(&http, &sim_url, bench.cadence * 2).await,
            status_counter(kind),
        );
        while quiet.elapsed() < Duration::from_secs(900) {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let now = count(
                &sim_stats(&http, &sim_url, bench.cadence * 2).await,
                status_counter(kind),
            );
            if now.saturating_sub(calls) < 3 {
                break;
            }
            calls = now;
        }
        notes.push(format!(
            "the status calls they set off made in {:.0}s more",
            quiet.elapsed().as_secs_f64()
        ));
    }

    // The waiters, each on up to 1,000 jobs.
    let heard: HeardMap = Arc::default();
    let mut waiters = tokio::task::JoinSet::new();
    let mut senders = Vec::new();
    for chunk in tracked.chunks(WAIT_CHUNK) {
        let (tx, rx) = mpsc::unbounded_channel();
        senders.push(tx);
        if !bench.waiters {
            // No long poll: what a replacement is sent for goes nowhere.
            continue;
        }
        let known = chunk
            .iter()
            .map(|t| (t.job, Some("running".to_string())))
            .collect();
        waiters.spawn(waiter(
            http.clone(),
            format!("{base}/v1/jobs/wait"),
            known,
            rx,
            heard.clone(),
        ));
    }
    if !bench.waiters {
        notes.push(
            "no waiters (--no-waiters): the figures are the supervisor's own; detection read from tether's records, end to end not measured".into(),
        );
    }
    // Let the long polls open.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The window: runs end at the rate, each replaced.
    let rate = bench.end_rate.per_second(jobs);
    let sim_pid = sim.id().unwrap_or(0);
    let before = sim_stats(&http, &sim_url, bench.cadence * 2).await;
    let queue_before = queue_calls(&http, &base).await;
    let lag_before = event_lag(&http, &base).await;
    let (cpu0, sim_cpu0) = (
        proc_cpu_seconds(serve_pid).unwrap_or(0.0),
        proc_cpu_seconds(sim_pid).unwrap_or(0.0),
    );
    let started = Instant::now();
    let rss_window = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let rss_window = rss_window.clone();
        tokio::spawn(async move {
            loop {
                let kib = (proc_rss_mib(serve_pid, "VmRSS:").unwrap_or(0.0) * 1024.0) as u64;
                rss_window.fetch_max(kib, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let ends = end_runs(
        &http,
        Ender {
            kind,
            sim_url: &sim_url,
            base: &base,
        },
        tracked,
        rate,
        bench.window,
        &senders,
    )
    .await?;
    let elapsed = started.elapsed().as_secs_f64();
    let after = sim_stats(&http, &sim_url, bench.cadence * 2).await;
    let queue_after = queue_calls(&http, &base).await;
    if queue.is_some() {
        let lag = event_lag(&http, &base).await;
        notes.push(lag_note(&lag_before, &lag));
    }
    let cpu = (proc_cpu_seconds(serve_pid).unwrap_or(0.0) - cpu0) / elapsed;
    let sim_cpu = (proc_cpu_seconds(sim_pid).unwrap_or(0.0) - sim_cpu0) / elapsed;
    let per_minute = |n: u64| n as f64 * 60.0 / elapsed;
    // A watch's events come in on its open request, which the simulator counts with the
    // others: for Kubernetes the column shows the watches opened, and the total adds nothing
    // (the event source's receives are reads of an in-process channel, not calls).
    let watches = kind == "kubernetes";
    let queue_calls_per_minute = if watches {
        per_minute(count(&after, "watch_requests").saturating_sub(count(&before, "watch_requests")))
    } else {
        per_minute(queue_after.saturating_sub(queue_before))
    };
    let calls_per_minute =
        per_minute(count(&after, "requests").saturating_sub(count(&before, "requests")))
            + if watches { 0.0 } else { queue_calls_per_minute };
    let (c0, c1) = (call_counts(kind, &before), call_counts(kind, &after));
    let breakdown = (
        per_minute(c1.0.saturating_sub(c0.0)),
        per_minute(c1.1.saturating_sub(c0.1)),
        per_minute(c1.2.saturating_sub(c0.2)),
    );
    if mode == Mode::Notifications {
        notes.push(format!(
            "notifications sent {:.0}/min in the window ({} failed in all: those of the seeding, before tether listened)",
            per_minute(count(&after, "notifications_sent").saturating_sub(count(&before, "notifications_sent"))),
            count(&after, "notifications_failed")
        ));
    }

    // Drain: wait until every ended job was heard of (without waiters: recorded), or give up.
    let deadline = Instant::now() + bench.cadence * 4 + Duration::from_secs(60);
    let mut unrecorded: Vec<i64> = ends.keys().copied().collect();
    while Instant::now() < deadline {
        let all_heard = if bench.waiters {
            let ears = heard.lock().expect("heard");
            ends.keys().all(|j| ears.heard.contains_key(j))
        } else {
            let mut left = Vec::new();
            for job in unrecorded {
                if finished_at(&http, &base, job).await.is_none() {
                    left.push(job);
                }
            }
            unrecorded = left;
            unrecorded.is_empty()
        };
        if all_heard {
            break;
        }
        let pause = if bench.waiters { 200 } else { 2_000 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    waiters.abort_all();
    sampler.abort();
    let rss_mib = proc_rss_mib(serve_pid, "VmHWM:").unwrap_or(0.0);
    let rss_window_mib = rss_window.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0;
    let (heard, failures, first_failure) = {
        let mut ears = heard.lock().expect("heard");
        (
            std::mem::take(&mut ears.heard),
            ears.failures,
            ears.first_failure.take(),
        )
    };
    if let Some(first) = first_failure {
        notes.push(format!("{failures} long polls failed; the first: {first}"));
    }
    let mut detection = Vec::new();
    let mut end_to_end = Vec::new();
    let mut missed = 0;
    for (job, end_ms) in &ends {
        let finished = match heard.get(job) {
            Some(h) => {
                end_to_end.push((h.at_ms - end_ms) / 1000.0);
                h.finished_ms
            }
            // Not heard: tether's record, if any.
            None => finished_at(&http, &base, *job).await,
        };
        match finished {
            Some(f) => detection.push((f - end_ms) / 1000.0),
            None => missed += 1,
        }
    }
    drop(serve);
    let _ = sim.start_kill();
    drop(queue);
    drop_database(pg).await;
    if bench.keep {
        notes.push(format!("kept in {}", dir.keep().display()));
    }
    Ok(Measured {
        cpu,
        rss_mib,
        rss_window_mib,
        calls_per_minute,
        breakdown,
        queue_calls_per_minute,
        detection,
        end_to_end,
        ended: ends.len(),
        missed,
        sim_cpu,
        notes,
    })
}

/// Makes the simulator's generic webhook destination sending to tether's
/// `/v1/events/databricks/databricks` at `base`; its id.
async fn add_destination(
    http: &reqwest::Client,
    sim_url: &str,
    base: &str,
) -> Result<String, Error> {
    let body = json!({"display_name": "tether",
        "config": {"generic_webhook": {"url": format!("{base}/v1/events/databricks/databricks"),
                   "username": "databricks", "password": SECRET}}});
    let answer: Value = http
        .post(format!("{sim_url}/api/2.0/notification-destinations"))
        .bearer_auth("dapi-sim-token")
        .json(&body)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| Error::Usage(format!("making the notification destination: {e}")))?
        .json()
        .await
        .map_err(|e| Error::Usage(format!("the notification destination: {e}")))?;
    answer["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Error::Usage(format!("the simulator made no destination: {answer}")))
}

/// A job's `finished_at` (ms since the epoch), if it has one.
async fn finished_at(http: &reqwest::Client, base: &str, job: i64) -> Option<f64> {
    let view: Value = http
        .get(format!("{base}/v1/jobs/{job}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    parse_time(&view["finished_at"])
}

/// An RFC 3339 time as ms since the epoch.
fn parse_time(v: &Value) -> Option<f64> {
    let t = chrono::DateTime::parse_from_rfc3339(v.as_str()?).ok()?;
    Some(t.timestamp_micros() as f64 / 1000.0)
}

/// Where runs are ended and replaced: the kind, its simulator and tether's API.
#[derive(Clone, Copy)]
struct Ender<'a> {
    kind: &'static str,
    sim_url: &'a str,
    base: &'a str,
}

impl Ender<'_> {
    /// Ends `remotes` at the simulator now (Databricks `POST /_sim/runs/end`, AWS
    /// `POST /_sim/jobs/end`); each one ended, with its end time (ms since the epoch).
    async fn end(
        &self,
        http: &reqwest::Client,
        remotes: Vec<String>,
    ) -> Result<Vec<(String, f64)>, Error> {
        let (path, body, id_key) = match self.kind {
            "databricks" => {
                let ids: Vec<i64> = remotes.iter().filter_map(|r| r.parse().ok()).collect();
                ("/_sim/runs/end", json!({ "run_ids": ids }), "run_id")
            }
            "bigquery" => ("/_sim/jobs/end", json!({ "job_ids": remotes }), "job_id"),
            "kubernetes" => ("/_sim/jobs/end", json!({ "uids": remotes }), "uid"),
            _ => ("/_sim/jobs/end", json!({ "ids": remotes }), "id"),
        };
        let answer: Value = http
            .post(format!("{}{path}", self.sim_url))
            .json(&body)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| Error::Usage(format!("ending jobs at the simulator: {e}")))?
            .json()
            .await
            .map_err(|e| Error::Usage(format!("ending jobs at the simulator: {e}")))?;
        Ok(answer["ended"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| {
                let id = match &e[id_key] {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return None,
                };
                Some((id, e["end_time"].as_f64()?))
            })
            .collect())
    }
}

/// Ends remote jobs of `tracked` (in a random order) at `rate` per second for `window`,
/// replacing each by a new job that the same waiter waits for; the ended jobs and their end
/// times (ms since the epoch).
async fn end_runs(
    http: &reqwest::Client,
    ender: Ender<'_>,
    mut tracked: Vec<Tracked>,
    rate: f64,
    window: Duration,
    waiters: &[mpsc::UnboundedSender<i64>],
) -> Result<HashMap<i64, f64>, Error> {
    tracked.shuffle(&mut rand::rng());
    let by_remote: HashMap<String, Tracked> = tracked
        .iter()
        .map(|t| (t.remote.clone(), t.clone()))
        .collect();
    let mut next = tracked.into_iter();
    let mut ends = HashMap::new();
    let mut replacements = tokio::task::JoinSet::new();
    let started = Instant::now();
    let mut asked = 0u64;
    let mut n = 0u64;
    while started.elapsed() < window {
        let due = (rate * started.elapsed().as_secs_f64()) as u64;
        let remotes: Vec<String> = next
            .by_ref()
            .take(due.saturating_sub(asked) as usize)
            .map(|t| t.remote)
            .collect();
        asked += remotes.len() as u64;
        if !remotes.is_empty() {
            for (remote, at) in ender.end(http, remotes).await? {
                let Some(t) = by_remote.get(&remote) else {
                    continue;
                };
                ends.insert(t.job, at);
                n += 1;
                let (http, url, tx, kind) = (
                    http.clone(),
                    format!("{}/v1/jobs", ender.base),
                    waiters[t.waiter].clone(),
                    ender.kind,
                );
                replacements.spawn(async move {
                    if let Some(id) = replace(&http, &url, kind, n).await {
                        let _ = tx.send(id);
                    }
                });
            }
        }
        while replacements.try_join_next().is_some() {}
        tokio::time::sleep(TICK).await;
    }
    while replacements.join_next().await.is_some() {}
    Ok(ends)
}

/// Submits a new job of `kind` through the API (the task that follows an ended one); its id.
async fn replace(http: &reqwest::Client, url: &str, kind: &str, n: u64) -> Option<i64> {
    let name = format!("bench-new-{n}");
    let spec = tether::registry::simulators(kind)?.sample_spec(kind, &name);
    let body = json!({"dag_id": "bench", "run_id": "r2", "task_id": name, "try_number": 1,
        "provider": kind, "spec": spec});
    let answer: Value = http
        .post(url)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .ok()?
        .error_for_status()
        .ok()?
        .json()
        .await
        .ok()?;
    answer["job"]["id"].as_i64()
}

/// One `POST /v1/jobs/wait` for `listed`: its answer, or what went wrong.
async fn wait_many(
    http: reqwest::Client,
    url: String,
    listed: Vec<Value>,
) -> Result<Value, String> {
    let body = json!({"jobs": listed, "timeout": WAIT_TIMEOUT});
    let r = http
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status();
    if !status.is_success() {
        return Err(format!("{status}: {}", r.text().await.unwrap_or_default()));
    }
    r.json::<Value>().await.map_err(|e| e.to_string())
}

/// One waiter, as the Python provider's shared waiter: one `POST /v1/jobs/wait` per 1,000 of
/// its jobs, renewed when one of them changes (a job that ended is noted in `heard` and
/// dropped; one that changed otherwise is waited on from its new state) and when new jobs join
/// (after [`JOIN_DELAY`]).
async fn waiter(
    http: reqwest::Client,
    url: String,
    mut jobs: HashMap<i64, Option<String>>,
    mut joining: mpsc::UnboundedReceiver<i64>,
    heard: HeardMap,
) {
    loop {
        if jobs.is_empty() {
            match joining.recv().await {
                Some(id) => {
                    jobs.insert(id, None);
                }
                None => return,
            }
        }
        let listed: Vec<Value> = jobs
            .iter()
            .map(|(id, state)| json!({"id": id, "state": state}))
            .collect();
        let mut polls = tokio::task::JoinSet::new();
        for chunk in listed.chunks(WAIT_CHUNK) {
            polls.spawn(wait_many(http.clone(), url.clone(), chunk.to_vec()));
        }
        tokio::select! {
            Some(answer) = polls.join_next() => {
                let at_ms = epoch_ms();
                polls.abort_all();
                match answer.map_err(|e| e.to_string()).and_then(|a| a) {
                    Ok(v) => {
                        for job in v["changed"].as_array().into_iter().flatten() {
                            let Some(id) = job["id"].as_i64() else { continue };
                            if job["phase"] == "terminal" {
                                jobs.remove(&id);
                                let finished_ms = parse_time(&job["finished_at"]);
                                heard.lock().expect("heard").heard.insert(id, Heard { at_ms, finished_ms });
                            } else {
                                jobs.insert(id, job["state"].as_str().map(str::to_string));
                            }
                        }
                        for gone in v["errors"].as_array().into_iter().flatten() {
                            if let Some(id) = gone["id"].as_i64() {
                                jobs.remove(&id);
                            }
                        }
                    }
                    Err(e) => {
                        {
                            let mut ears = heard.lock().expect("heard");
                            ears.failures += 1;
                            ears.first_failure.get_or_insert(e);
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
            joined = joining.recv() => {
                polls.abort_all();
                let Some(id) = joined else { return };
                jobs.insert(id, None);
                tokio::time::sleep(JOIN_DELAY).await;
                while let Ok(id) = joining.try_recv() {
                    jobs.insert(id, None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_rates_read_per_second_per_minute_and_as_a_share() {
        assert_eq!(EndRate::parse("10/s"), Ok(EndRate::PerSecond(10.0)));
        assert_eq!(EndRate::parse("600/min"), Ok(EndRate::PerSecond(10.0)));
        let share = EndRate::parse("1%/min").unwrap();
        assert_eq!(share, EndRate::PercentPerMinute(1.0));
        assert!((share.per_second(6000) - 1.0).abs() < 1e-9);
        for bad in ["10", "0/s", "-1/s", "1%/s", "ten/s", "10/h"] {
            assert!(EndRate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn percentiles_by_nearest_rank_and_thousands() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.50), Some(50.0));
        assert_eq!(percentile(&v, 0.99), Some(99.0));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn times_read_as_epoch_milliseconds() {
        let v = json!("2026-12-06T22:00:00.250Z");
        assert_eq!(parse_time(&v), Some(1_796_594_400_250.0));
        assert_eq!(parse_time(&json!(null)), None);
    }
}
