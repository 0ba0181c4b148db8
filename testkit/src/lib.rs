//! tether's provider conformance suite: one list of scenarios, run against every provider kind
//! of the registry that has a simulator (`tests/simulators.rs`), in the spirit of
//! `object_store`'s integration suite. A provider added through the registry is held to it
//! with no line of its own here.
//!
//! Each scenario takes a [`Subject`]: a kind's simulator, started through the registry, and an
//! adapter built by the kind's factory from the settings that point at it. The scenarios:
//!
//! - [`submit_and_deduplicate`]: a second submit with the same key makes no second job (where
//!   the provider deduplicates), and `find` names the first ([`find_names_the_job`] alone
//!   against moto);
//! - [`new_job_reads_as_documented`]: a new job's state is one of the API model's, read as
//!   documented;
//! - [`documented_states`]: every state of the provider's own API model reads as documented;
//! - [`unknown_states_are_never_final`]: a state the adapter does not know reads as unfinished;
//! - [`lost_submit_answer`]: a submission processed but answered 500 ends as one job, through
//!   the engine;
//! - [`cancel`]: an explicit cancel reaches the provider and reads as cancelled;
//! - [`lost_cancel_answer`]: a cancel processed but answered 500 ends the record cancelled
//!   (never lost, also where the provider forgets what it cancels), through the engine;
//! - [`coalesced_sweep`]: a sweep whose list misses jobs and lies about finals changes no
//!   record wrongly: missed jobs are polled singly, finals confirmed;
//! - [`throttling`]: a throttled call waits for the `Retry-After` and then succeeds;
//! - [`not_found`]: a job the provider forgot reads as not found (the engine's `lost`;
//!   [`missing_job_is_not_found`] against moto);
//! - [`secrets_stay_out`]: no credential in a log line, an error or a settings printout.
//!
//! And, on both backends ([`Backend`]), two deployments on one account, and the services'
//! edges as the catalog lists them (`docs/edges.md`), switched on in the simulator
//! ([`SimOptions::invisible_for`], [`SimOptions::forget_after`]):
//!
//! - [`key_namespaces`]: two deployments with their own key namespaces make two jobs for one
//!   task instance on one account, and two sharing one make one where the provider
//!   deduplicates;
//! - [`invisible_after_create`]: a job that reads "not found" for a while after it was made
//!   ends with one job and its true final state;
//! - [`cancel_while_invisible`]: a cancel asked for before the job is visible is sent once it
//!   is, and the job ends cancelled at the provider, as recorded;
//! - [`lost_answer_while_invisible`]: a submission processed but answered 500, of a job not
//!   visible yet, still ends as one job;
//! - [`forgotten_after_end`]: a job forgotten once it ended, after tether saw it, ends
//!   `outcome_unknown` and no retry submits it again, unless the account says so
//!   (`on_forgotten = "resubmit"`).

pub mod moto;
pub mod pubsub;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection};
use tether::app::App;
use tether::config::Config;
use tether::engine::{EnsureAction, EnsureRequest, Supervisor};
use tether::jobs::{JobRecord, Phase};
use tether::state::TaskInstanceId;
use tether_provider::registry::{
    RunningSim, SimCalls, SimFault, SimFaultKind, SimJobState, SimOptions,
};
use tether_provider::settings::{Setting, Table};
use tether_provider::{ErrorKind, Handle, JobState, Provider, ProviderSettings, Tracked, Ungated};

/// Every kind of the registry whose crate has a simulator.
pub fn kinds() -> Vec<&'static str> {
    tether::registry::kinds()
        .into_iter()
        .filter(|k| tether::registry::simulators(k).is_some())
        .collect()
}

/// What the suite runs against: each kind with a simulator, once per API it stands for
/// (`http`: the Livy and dbt Cloud examples), else once. `TETHER_TEST_KINDS` (kinds, comma
/// separated) narrows it to those kinds, for working on one provider.
pub fn targets() -> Vec<(&'static str, Option<&'static str>)> {
    let only: Option<Vec<String>> = std::env::var("TETHER_TEST_KINDS")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.split(',').map(|k| k.trim().to_string()).collect());
    kinds()
        .into_iter()
        .filter(|kind| only.as_ref().is_none_or(|o| o.iter().any(|k| k == kind)))
        .flat_map(|kind| {
            let apis = tether::registry::simulators(kind)
                .expect("listed with a simulator")
                .apis(kind);
            if apis.is_empty() {
                vec![(kind, None)]
            } else {
                apis.iter().map(|a| (kind, Some(*a))).collect()
            }
        })
        .collect()
}

/// Makes a job spec named after its argument.
pub type Specs = Box<dyn Fn(&str) -> Value + Send + Sync>;

/// One provider kind under test: an adapter pointed at its simulator, or at another
/// implementation of its API (moto), which the scenarios that need the simulator's controls
/// are not run against.
pub struct Subject {
    /// The kind.
    pub kind: &'static str,
    sim: Option<Box<dyn RunningSim>>,
    /// The checked settings the adapter was built from.
    pub settings: Arc<dyn ProviderSettings>,
    /// The adapter.
    pub adapter: Arc<dyn Provider>,
    /// The `[providers.KIND]` keys that point at the endpoint, as TOML lines.
    pub toml: String,
    specs: Option<Specs>,
}

impl Subject {
    /// Starts `kind`'s simulator (jobs pending for `pending`, then running for `running`) and
    /// builds an adapter on it through the kind's factory.
    pub async fn start(kind: &'static str, pending: Duration, running: Duration) -> Self {
        Self::start_api(kind, None, pending, running).await
    }

    /// As [`Subject::start`], with the simulator of one of the kind's APIs
    /// (`SimFactory::apis`).
    pub async fn start_api(
        kind: &'static str,
        api: Option<&str>,
        pending: Duration,
        running: Duration,
    ) -> Self {
        let options = SimOptions {
            pending,
            running,
            ..SimOptions::default()
        };
        Self::start_with(kind, api, options, Table::new()).await
    }

    /// As [`Subject::start_api`], the simulator started with `options` (its edges switched on,
    /// say), and the account's settings `overrides` put over the suite's quick ones.
    pub async fn start_with(
        kind: &'static str,
        api: Option<&str>,
        mut options: SimOptions,
        overrides: Table,
    ) -> Self {
        let sims = tether::registry::simulators(kind).expect("a kind with a simulator");
        if let Some(api) = api {
            options.switches.insert("api".into(), Setting::from(api));
        }
        let sim = sims
            .start(kind, options)
            .await
            .expect("start the simulator");
        for (name, value) in sim.env() {
            // The same values for every subject of a run: setting them twice is harmless.
            std::env::set_var(name, value);
        }
        let mut table = sim.settings(kind);
        table.extend(quick_settings());
        table.extend(overrides);
        let mut subject = Self::on_checked_table(kind, table, None);
        subject.sim = Some(sim);
        subject
    }

    /// An adapter of `kind` built through the registry from `table` (the keys that point it
    /// at an endpoint), with no simulator: for another implementation of the API, such as
    /// moto, whose job specs `specs` makes. The caller sets the credentials the adapter reads
    /// from the environment.
    pub fn on_endpoint(kind: &'static str, table: Table, specs: Option<Specs>) -> Self {
        let mut table = table;
        table.extend(quick_settings());
        Self::on_checked_table(kind, table, specs)
    }

    /// An adapter of `kind` built through the registry from the whole table `table`.
    fn on_checked_table(kind: &'static str, table: Table, specs: Option<Specs>) -> Self {
        for (name, value) in [
            ("AWS_CONFIG_FILE", "/nonexistent/tether-testkit"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/tether-testkit"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ] {
            std::env::set_var(name, value);
        }
        let toml: String = table
            .iter()
            .map(|(key, value)| format!("{key} = {value}\n"))
            .collect();
        let env = |name: &str| std::env::var(name).ok();
        let factory = tether::registry::factory(kind).expect("a registered kind");
        let settings = factory
            .check(kind, &format!("providers.{kind}"), table, &env)
            .unwrap_or_else(|problems| panic!("{kind}: {}", problems.join("; ")));
        let adapter = settings.adapter().expect("build the adapter");
        Self {
            kind,
            sim: None,
            settings,
            adapter,
            toml,
            specs,
        }
    }

    /// The simulator: the scenarios that need its controls run against simulators only.
    pub fn sim(&self) -> &dyn RunningSim {
        self.sim
            .as_deref()
            .unwrap_or_else(|| panic!("{}: this scenario needs the simulator", self.kind))
    }

    /// Whether the subject is a simulator.
    pub fn simulated(&self) -> bool {
        self.sim.is_some()
    }

    /// A job spec the subject runs.
    pub fn spec(&self, name: &str) -> Value {
        match (&self.sim, &self.specs) {
            (Some(sim), _) => sim.sample_spec(name).unwrap_or_else(|| {
                tether::registry::simulators(self.kind)
                    .expect("a kind with a simulator")
                    .sample_spec(self.kind, name)
            }),
            (None, Some(specs)) => specs(name),
            (None, None) => panic!("{}: no job specs", self.kind),
        }
    }

    /// The states of the kind's API model, with the state each must read as.
    pub fn documented_states(&self) -> Vec<(String, JobState)> {
        if let Some(states) = self.sim.as_ref().and_then(|s| s.documented_states()) {
            return states;
        }
        tether::registry::simulators(self.kind)
            .expect("a kind with a simulator")
            .documented_states(self.kind)
    }

    /// Submits a job under a fresh key; its handle and key.
    pub async fn submit(&self, scenario: &str) -> (Handle, String) {
        let key = key(self.kind, scenario);
        let handle = self
            .adapter
            .submit(&self.spec(scenario), &key, &Ungated)
            .await
            .unwrap_or_else(|e| panic!("{}: submit: {e}", self.kind));
        (handle, key)
    }

    /// An app (SQLite in `dir`) with this kind as the account `[providers.KIND]`.
    pub async fn app(&self, dir: &std::path::Path) -> App {
        self.app_with(dir, "").await
    }

    /// As [`Subject::app`], with `lines` added to the account's table.
    async fn app_with_account(&self, dir: &std::path::Path, lines: &str) -> App {
        let url = format!("sqlite://{}/conformance.db", dir.display());
        self.app_at_with(&url, "", lines).await
    }

    /// As [`Subject::app`], with `sections` (whole TOML sections) added to the configuration.
    pub async fn app_with(&self, dir: &std::path::Path, sections: &str) -> App {
        let url = format!("sqlite://{}/conformance.db", dir.display());
        self.app_at(&url, sections).await
    }

    /// An app on `db`, with `sections` added to the configuration and the account
    /// `[providers.KIND]`; `[providers.KIND-resubmit]` is the same account with
    /// `on_forgotten = "resubmit"`.
    pub async fn app_on(&self, db: &Database, sections: &str) -> App {
        let sections = format!(
            "{sections}\n[providers.{kind}-resubmit]\nkind = \"{kind}\"\n{toml}\
             on_forgotten = \"resubmit\"\n",
            kind = self.kind,
            toml = self.toml,
        );
        self.app_at(db.url(), &sections).await
    }

    async fn app_at(&self, url: &str, sections: &str) -> App {
        self.app_at_with(url, sections, "").await
    }

    /// As [`Subject::app_at`], with `lines` added to the account's table.
    async fn app_at_with(&self, url: &str, sections: &str, lines: &str) -> App {
        let text = format!(
            "[database]\nurl = \"{url}\"\nmax_connections = 3\n\
             [supervisor]\nlease = \"3s\"\nshutdown_grace = \"1s\"\n{sections}\n\
             [providers.{kind}]\nkind = \"{kind}\"\n{toml}{lines}",
            kind = self.kind,
            toml = self.toml,
        );
        let config = Config::from_toml(&text, "conformance").expect("config");
        App::open(config).await.expect("open the app")
    }

    /// The first documented state that reads as `state`.
    fn raw_state(&self, state: JobState) -> String {
        self.documented_states()
            .into_iter()
            .find(|(_, s)| *s == state)
            .map(|(raw, _)| raw)
            .unwrap_or_else(|| panic!("{}: no documented state reads {state}", self.kind))
    }
}

/// Settings that keep the scenarios short: quick polls and timeouts, few retries.
fn quick_settings() -> Table {
    Table::from([
        ("poll_initial".to_string(), Setting::from("200ms")),
        ("poll_max".to_string(), Setting::from("500ms")),
        ("request_timeout".to_string(), Setting::from("5s")),
        ("max_retries".to_string(), Setting::Integer(3)),
        ("unknown_after".to_string(), Setting::Integer(3)),
        ("not_found_grace".to_string(), Setting::from("1s")),
    ])
}

/// A fresh idempotency key for a scenario: at most 39 characters, as tether's own keys
/// (`tether-` and 32 hex digits), which every provider's limit takes (Dataproc's request ids:
/// 40), ending in a letter or digit; what makes it unique comes first, the kind and scenario
/// after, for reading.
pub fn key(kind: &str, scenario: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut key = format!("tether-{n}-{nanos}-{kind}-{scenario}");
    key.truncate(39);
    // Ending in a letter or digit, as names made from it must (SageMaker's).
    key.trim_end_matches(['-', '_']).to_string()
}

/// A second submit with the same key makes no second job, where the provider deduplicates;
/// and `find` names the first job (the engine's way back to a job whose answer was lost),
/// and only it.
pub async fn submit_and_deduplicate(s: &Subject) {
    let intent = now_ms();
    let (first, key) = s.submit("dedupe").await;
    let spec = s.spec("dedupe");
    if s.adapter.submit_is_idempotent() {
        let again = s.adapter.submit(&spec, &key, &Ungated).await.unwrap();
        assert_eq!(again, first, "{}: the same key names the same job", s.kind);
        assert_eq!(
            s.sim().jobs_for_key(&key),
            1,
            "{}: one job for the key",
            s.kind
        );
    }
    finds_by_key(s, &first, &key, &spec, intent).await;
}

/// `find` names a submitted job by its key, and nothing for a key never used. (Against moto,
/// which does not deduplicate EMR Serverless' `clientToken` as AWS documents, this is the
/// deduplication scenario's part that holds.)
pub async fn find_names_the_job(s: &Subject) {
    let intent = now_ms();
    let (first, key) = s.submit("find").await;
    finds_by_key(s, &first, &key, &s.spec("find"), intent).await;
}

/// `find` with the spec the job was submitted with (a provider may search by its name) and
/// the time its intent was recorded (a provider may recognise its job by that).
async fn finds_by_key(s: &Subject, first: &Handle, key: &str, spec: &Value, intent_ms: i64) {
    let found = s.adapter.find(key, spec, intent_ms).await.unwrap();
    assert_eq!(found, vec![first.clone()], "{}: find names the job", s.kind);
    // A key never used, its intent recorded after every job the provider holds (an hour from
    // now: a provider may recognise its job by time alone): nothing was made for it.
    let other = key_of_nothing(s.kind);
    assert_eq!(
        s.adapter
            .find(&other, spec, now_ms() + 3_600_000)
            .await
            .unwrap(),
        Vec::<Handle>::new(),
        "{}: find names nothing for a key never used",
        s.kind
    );
}

/// Now, in ms since the Unix epoch (an intent's time).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn key_of_nothing(kind: &str) -> String {
    key(kind, "never-used")
}

/// A new job's state, whatever the implementation reports, is one of the API model's states
/// and reads as documented (or, undocumented, as unfinished).
pub async fn new_job_reads_as_documented(s: &Subject) {
    let (handle, _) = s.submit("new").await;
    let got = s.adapter.status(&handle).await.unwrap();
    let documented = s.documented_states();
    match documented.iter().find(|(raw, _)| *raw == got.raw_state) {
        Some((raw, want)) => assert_eq!(got.state, *want, "{}: {raw}", s.kind),
        None => assert!(
            !got.state.is_terminal(),
            "{}: undocumented {:?} read as {}",
            s.kind,
            got.raw_state,
            got.state
        ),
    }
}

/// A job the implementation never made (`missing`: a handle like one of its own, naming
/// nothing) reads as not found, which the engine records as `lost`.
pub async fn missing_job_is_not_found(s: &Subject, missing: &Handle) {
    let err = match s.adapter.status(missing).await {
        Ok(status) => panic!("{}: {missing} read as {status:?}", s.kind),
        Err(e) => e,
    };
    assert_eq!(err.kind, ErrorKind::NotFound, "{}: {err}", s.kind);
}

/// Every state of the provider's own API model reads as documented.
pub async fn documented_states(s: &Subject) {
    let (handle, _) = s.submit("states").await;
    let states = s.documented_states();
    assert!(!states.is_empty(), "{}: no documented states", s.kind);
    let mut wrong = Vec::new();
    for (raw, want) in &states {
        assert!(s.sim().set_state(&handle, raw), "{}: set {raw}", s.kind);
        let got = s.adapter.status(&handle).await.unwrap();
        if got.state != *want {
            wrong.push(format!("{raw}: read {} (documented {want})", got.state));
        }
    }
    assert!(
        wrong.is_empty(),
        "{}: states read otherwise than documented:\n  {}",
        s.kind,
        wrong.join("\n  ")
    );
}

/// A state the adapter does not know reads as unfinished: never success, never any end.
pub async fn unknown_states_are_never_final(s: &Subject) {
    let (handle, _) = s.submit("unknown").await;
    for raw in [
        "A_STATE_INVENTED_TOMORROW",
        "TERMINATED/A_RESULT_INVENTED_TOMORROW",
        "status:A_STATE_INVENTED_TOMORROW",
        "",
    ] {
        assert!(s.sim().set_state(&handle, raw));
        let got = s.adapter.status(&handle).await.unwrap();
        assert!(
            !got.state.is_terminal(),
            "{}: unknown state {raw:?} read as {}",
            s.kind,
            got.state
        );
    }
}

/// A submission the provider processed but answered with 500 ends as one remote job and one
/// record, through the engine (which reconciles with `find`, or repeats an idempotent submit).
pub async fn lost_submit_answer(s: &Subject) {
    let dir = tempfile::tempdir().unwrap();
    let app = s.app(dir.path()).await;
    s.sim().inject(SimFault {
        kind: SimFaultKind::FailAfterProcessing,
        times: 1,
        calls: SimCalls::Submits,
        lasting: None,
    });
    let request = EnsureRequest {
        task_instance: TaskInstanceId::new("conformance", "r1", format!("lost-{}", s.kind), -1),
        try_number: 1,
        name: "main".into(),
        provider: s.kind.into(),
        spec: s.spec("lost"),
    };
    let first = app.engine.ensure(&request).await;
    // Whatever the first answer was, a retry of the task ends with the job recorded.
    let ensured = match first {
        Ok(e) if e.job.handle.is_some() => e,
        _ => {
            let retry = EnsureRequest {
                try_number: 2,
                ..request.clone()
            };
            app.engine
                .ensure(&retry)
                .await
                .unwrap_or_else(|e| panic!("{}: the retry: {e}", s.kind))
        }
    };
    let key = &ensured.job.idempotency_key;
    assert!(
        ensured.job.handle.is_some(),
        "{}: {:?}",
        s.kind,
        ensured.job
    );
    assert_eq!(
        s.sim().jobs_for_key(key),
        1,
        "{}: one remote job for the lost answer",
        s.kind
    );
    app.db.close().await;
}

/// Two deployments (two databases, each with the namespace it made) that ask for the same task
/// instance's job on one account make two remote jobs, each recording its own; two that share
/// a namespace on purpose (`jobs.key_namespace`) make one where the provider deduplicates on
/// the key (where it does not, sharing a namespace cannot make one job of two asks).
pub async fn key_namespaces((kind, api): Target, db: Database) {
    let s = &Subject::start_api(
        kind,
        api,
        Duration::from_millis(100),
        Duration::from_secs(600),
    )
    .await;
    let backend = db.backend();
    let more = || async { Database::new(backend).await.expect("a database") };
    let request = EnsureRequest {
        task_instance: TaskInstanceId::new(
            "conformance",
            "scheduled__2026-12-01T00:00:00+00:00",
            format!("ns-{}", s.kind),
            -1,
        ),
        try_number: 1,
        name: "main".into(),
        provider: s.kind.into(),
        spec: s.spec("namespaces"),
    };
    let d2 = more().await;
    let prod = s.app_on(&db, "").await;
    let staging = s.app_on(&d2, "").await;
    let a = prod.engine.ensure(&request).await.unwrap().job;
    let b = match staging.engine.ensure(&request).await {
        Ok(ensured) => ensured.job,
        // A target that runs one job at a time (a pipeline's update) refuses the second
        // deployment's while the first's runs: refused, never handed the other's job.
        Err(tether::engine::EngineError::SubmissionRefused { job_id, .. }) => {
            let refused = staging.engine.jobs().get(job_id).await.unwrap().unwrap();
            assert_eq!(refused.handle, None, "{}", s.kind);
            refused
        }
        Err(e) => panic!("{}: the second deployment's ensure: {e}", s.kind),
    };
    assert_ne!(a.idempotency_key, b.idempotency_key, "{}: keys", s.kind);
    assert!(a.handle.is_some(), "{}", s.kind);
    assert_ne!(
        a.handle, b.handle,
        "{}: each deployment runs its own job",
        s.kind
    );
    assert_eq!(s.sim().jobs_for_key(&a.idempotency_key), 1, "{}", s.kind);
    let made = u64::from(b.handle.is_some());
    assert_eq!(s.sim().jobs_for_key(&b.idempotency_key), made, "{}", s.kind);
    prod.db.close().await;
    staging.db.close().await;
    if !s.adapter.submit_is_idempotent() {
        return;
    }
    let shared = "[jobs]\nkey_namespace = \"shared\"\n";
    let (d3, d4) = (more().await, more().await);
    let one = s.app_on(&d3, shared).await;
    let two = s.app_on(&d4, shared).await;
    let a = one.engine.ensure(&request).await.unwrap().job;
    let b = two.engine.ensure(&request).await.unwrap().job;
    assert_eq!(a.idempotency_key, b.idempotency_key, "{}", s.kind);
    assert_eq!(a.handle, b.handle, "{}: one job, shared on purpose", s.kind);
    assert_eq!(s.sim().jobs_for_key(&a.idempotency_key), 1, "{}", s.kind);
    one.db.close().await;
    two.db.close().await;
}

/// An explicit cancel reaches the provider, and the job then reads as cancelled.
pub async fn cancel(s: &Subject) {
    let (handle, _) = s.submit("cancel").await;
    let before = s.sim().counts().cancels;
    s.adapter.cancel(&handle).await.unwrap();
    assert_eq!(
        s.sim().counts().cancels,
        before + 1,
        "{}: one cancel",
        s.kind
    );
    assert_eq!(
        s.sim().job_state(&handle),
        Some(SimJobState::Cancelled),
        "{}: cancelled at the provider",
        s.kind
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = match s.adapter.status(&handle).await {
            Ok(got) => got,
            // A provider that forgets what it cancels (Livy deletes a killed batch): the
            // engine reads a job gone after its cancel as cancelled.
            Err(e) if e.kind == ErrorKind::NotFound => break,
            Err(e) => panic!("{}: status after the cancel: {e}", s.kind),
        };
        if got.state == JobState::Cancelled {
            break;
        }
        assert!(
            !got.state.is_terminal() && Instant::now() < deadline,
            "{}: a cancelled job read as {}",
            s.kind,
            got.state
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An explicit cancel the provider carries out but answers with a 500: tether does not know
/// the cancel reached it, and sends it again; the record ends cancelled, as the job did. A
/// provider that forgets what it cancels (Livy deletes a killed batch) answers the second
/// cancel and the polls "not found": still cancelled, never lost.
pub async fn lost_cancel_answer(s: &Subject) {
    let dir = tempfile::tempdir().unwrap();
    let app = s.app(dir.path()).await;
    let request = EnsureRequest {
        task_instance: TaskInstanceId::new("conformance", "r1", format!("cancel-{}", s.kind), -1),
        try_number: 1,
        name: "main".into(),
        provider: s.kind.into(),
        spec: s.spec("lost-cancel"),
    };
    let job = app.engine.ensure(&request).await.unwrap().job;
    let handle = job.handle.clone().expect("submitted");
    s.sim().inject(SimFault {
        kind: SimFaultKind::FailAfterProcessing,
        times: 1,
        calls: SimCalls::Cancels,
        lasting: None,
    });
    // The API's cancel: recorded, then sent; its answer is the simulated 500.
    app.engine
        .cancel(job.id, "conformance: lost cancel answer", "testkit")
        .await
        .unwrap_or_else(|e| panic!("{}: cancel: {e}", s.kind));
    assert_eq!(
        s.sim().job_state(&handle),
        Some(SimJobState::Cancelled),
        "{}: the first cancel was carried out",
        s.kind
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let supervisor = tokio::spawn(Supervisor::new(app.engine.clone()).run(stop.clone()));
    let deadline = Instant::now() + Duration::from_secs(20);
    let record = loop {
        let record = app.engine.jobs().get(job.id).await.unwrap().unwrap();
        if record.phase == Phase::Terminal {
            break record;
        }
        assert!(
            Instant::now() < deadline,
            "{}: the cancelled job never ended: {record:?}",
            s.kind
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    stop.cancel();
    supervisor.await.unwrap();
    assert_eq!(
        record.state,
        JobState::Cancelled,
        "{}: a job cancelled at the provider recorded as {} ({:?})",
        s.kind,
        record.state,
        record.message
    );
    app.db.close().await;
}

/// A coalesced sweep whose list misses some jobs and reports every job it lists as
/// succeeded, while all of them run: no record ends. A missed job that really ends is read by
/// its own call. Then every job ends for real and every record follows.
pub async fn coalesced_sweep(s: &Subject) {
    if !s.adapter.coalesces() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Confirmations are single reads: the simulator lies to reads of many ids.
    let app = s
        .app_with_account(dir.path(), &s.sim().single_reads(s.kind))
        .await;
    let running = s.raw_state(JobState::Running);
    let succeeded = s.raw_state(JobState::Succeeded);
    let mut jobs = Vec::new();
    for i in 0..6 {
        let request = EnsureRequest {
            task_instance: TaskInstanceId::new("conformance", "r1", format!("sweep-{i}"), -1),
            try_number: 1,
            name: "main".into(),
            provider: s.kind.into(),
            spec: s.spec(&format!("sweep-{i}")),
        };
        let job = app.engine.ensure(&request).await.unwrap().job;
        let handle = job.handle.clone().expect("submitted");
        assert!(s.sim().set_state(&handle, &running));
        jobs.push((job.id, handle));
    }
    // Two jobs the lists never show: one runs on, one ends (only its own call can tell).
    assert!(s.sim().hide_from_lists(&jobs[0].1));
    assert!(s.sim().hide_from_lists(&jobs[1].1));
    assert!(s.sim().set_state(&jobs[1].1, &succeeded));
    s.sim().lie_in_lists(true);

    // The sweep itself: what the adapter reports for the listed jobs is a hint at most.
    let tracked: Vec<Tracked<'_>> = jobs
        .iter()
        .map(|(_, h)| Tracked {
            handle: h,
            created_ms: 0,
        })
        .collect();
    let sweep = s.adapter.status_many(&tracked).await.unwrap();
    assert_eq!(
        sweep.statuses.len(),
        jobs.len(),
        "{}: one answer per job",
        s.kind
    );
    assert!(
        sweep.statuses[0].is_none() && sweep.statuses[1].is_none(),
        "{}: the hidden jobs are not reported by the sweep",
        s.kind
    );

    let stop = tokio_util::sync::CancellationToken::new();
    let supervisor = tokio::spawn(Supervisor::new(app.engine.clone()).run(stop.clone()));
    let read = |app: &App, ids: Vec<tether::model::JobId>| {
        let jobs = app.engine.jobs().clone();
        async move {
            let mut records = Vec::new();
            for id in ids {
                records.push(jobs.get(id).await.unwrap().unwrap());
            }
            records
        }
    };
    let ids: Vec<_> = jobs.iter().map(|(id, _)| *id).collect();
    // The missed job that ended is read by its own call.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let records = read(&app, ids.clone()).await;
        let wrong: Vec<&JobRecord> = records
            .iter()
            .enumerate()
            .filter(|(i, r)| *i != 1 && r.phase == Phase::Terminal)
            .map(|(_, r)| r)
            .collect();
        assert!(
            wrong.is_empty(),
            "{}: a job recorded as ended on a list's word: {wrong:?}",
            s.kind
        );
        if records[1].state == JobState::Succeeded {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}: the missed job's end was never read: {:?}",
            s.kind,
            records[1]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A few more rounds of lying sweeps change nothing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for r in read(&app, ids.clone()).await.iter().skip(2) {
        assert_ne!(r.phase, Phase::Terminal, "{}: {r:?}", s.kind);
    }
    // Every job ends for real: every record follows.
    s.sim().lie_in_lists(false);
    for (_, handle) in &jobs {
        assert!(s.sim().set_state(handle, &succeeded));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let records = read(&app, ids.clone()).await;
        if records.iter().all(|r| r.state == JobState::Succeeded) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}: not every end was read: {records:?}",
            s.kind
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.cancel();
    supervisor.await.unwrap();
    app.db.close().await;
}

/// A throttled call waits for the provider's `Retry-After`, then succeeds.
pub async fn throttling(s: &Subject) {
    let (handle, _) = s.submit("throttle").await;
    s.sim().inject(SimFault {
        kind: SimFaultKind::Throttle(Some(Duration::from_secs(1))),
        times: 2,
        calls: SimCalls::All,
        lasting: None,
    });
    let before = s.sim().counts().requests;
    let started = Instant::now();
    let status = s.adapter.status(&handle).await;
    assert!(status.is_ok(), "{}: {status:?}", s.kind);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{}: the Retry-After was not waited for ({:?})",
        s.kind,
        started.elapsed()
    );
    assert!(
        s.sim().counts().requests >= before + 3,
        "{}: two throttled requests, then the one that passed",
        s.kind
    );
}

/// A job the provider no longer knows reads as not found (which the engine records as `lost`).
pub async fn not_found(s: &Subject) {
    let (handle, _) = s.submit("forgotten").await;
    assert!(s.sim().forget(&handle));
    missing_job_is_not_found(s, &handle).await;
}

/// The credentials a subject uses: its settings' secret values and its environment's.
fn secrets(s: &Subject) -> Vec<String> {
    let mut secrets: Vec<String> = s
        .sim()
        .settings(s.kind)
        .into_iter()
        .filter(|(k, _)| ["token", "client_secret"].contains(&k.as_str()))
        .filter_map(|(_, v)| match v {
            Setting::String(v) => Some(v),
            _ => None,
        })
        .collect();
    // A key file's private key (Google's service accounts): each line of its PEM body, so
    // that a fragment of it shows too.
    for (k, v) in s.sim().settings(s.kind) {
        if let (true, Setting::String(path)) = (k == "credentials_file", v) {
            let key: Value = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            if let Some(pem) = key["private_key"].as_str() {
                secrets.extend(
                    pem.lines()
                        .filter(|l| !l.starts_with("-----") && l.len() >= 32)
                        .map(str::to_string),
                );
            }
        }
    }
    // A kubeconfig's bearer tokens.
    for (k, v) in s.sim().settings(s.kind) {
        if let (true, Setting::String(path)) = (k == "kubeconfig", v) {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            secrets.extend(
                text.lines()
                    .filter_map(|l| l.trim().strip_prefix("token:"))
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty()),
            );
        }
    }
    secrets.extend(
        s.sim()
            .env()
            .into_iter()
            .filter(|(k, _)| {
                ["SECRET", "TOKEN", "PASSWORD"]
                    .iter()
                    .any(|w| k.contains(w))
            })
            .map(|(_, v)| v),
    );
    secrets
}

/// No credential shows in a log line (at trace level, through errors and retries), in an
/// error, or in the settings' printout.
pub async fn secrets_stay_out(s: &Subject) {
    let secrets = secrets(s);
    assert!(!secrets.is_empty(), "{}: no credential to look for", s.kind);
    let printed = format!("{:?}", s.settings);
    let (handle, _) = s.submit("secrets").await;
    let mut errors = Vec::new();
    for kind in [
        SimFaultKind::ServerError,
        SimFaultKind::Unavailable(None),
        SimFaultKind::Throttle(None),
    ] {
        s.sim().inject(SimFault {
            kind,
            times: 10,
            calls: SimCalls::All,
            lasting: None,
        });
        if let Err(e) = s.adapter.status(&handle).await {
            errors.push(e.to_string());
        }
        s.sim().clear_faults();
    }
    assert!(s.sim().forget(&handle));
    if let Err(e) = s.adapter.status(&handle).await {
        errors.push(e.to_string());
    }
    let logs = captured_logs();
    assert!(
        logs.contains("WARN") || logs.contains("DEBUG") || logs.contains("TRACE"),
        "{}: no log line was captured to look at",
        s.kind
    );
    for secret in &secrets {
        assert!(
            !printed.contains(secret),
            "{}: the settings print a secret",
            s.kind
        );
        for e in &errors {
            assert!(
                !e.contains(secret),
                "{}: an error holds a secret: {e}",
                s.kind
            );
        }
        assert!(
            !logs.contains(secret),
            "{}: a log line holds a secret",
            s.kind
        );
    }
}

/// The log lines of this process so far (every test of the binary logs here at trace level
/// for tether's crates: see [`capture_logs`]).
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.get_or_init(Default::default).lock().unwrap()).into_owned()
}

static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.get_or_init(Default::default)
            .lock()
            .unwrap()
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends every log line of tether's crates, down to trace, to the buffer that
/// [`captured_logs`] reads (once per process).
pub fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::new(
            "tether=trace,tether_provider=trace,tether_databricks=trace,tether_aws=trace,tether_http=trace",
        );
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(|| Capture)
            .with_ansi(false)
            .init();
    });
}

/// The database a scenario's app keeps its records in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temp folder.
    Sqlite,
    /// A database of its own on the PostgreSQL server `TETHER_TEST_POSTGRES_URL` names.
    Postgres,
}

/// A database that exists for one app: a SQLite file, or a PostgreSQL database dropped again
/// when this is dropped.
pub struct Database {
    backend: Backend,
    url: String,
    _dir: Option<tempfile::TempDir>,
    drop_pg: Option<(String, String)>,
}

impl Database {
    /// A new database on `backend`; `None` (with a message) for PostgreSQL when
    /// `TETHER_TEST_POSTGRES_URL` is not set, except under CI (`CI` set), where that fails.
    pub async fn new(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                Some(Self {
                    backend,
                    url: format!("sqlite://{}/tether.db", dir.path().display()),
                    _dir: Some(dir),
                    drop_pg: None,
                })
            }
            Backend::Postgres => Self::postgres("postgres").await,
        }
    }

    /// A new PostgreSQL database; `None` (saying `SKIPPED <label>`) when
    /// `TETHER_TEST_POSTGRES_URL` is not set, except under CI (`CI` set), where that fails.
    pub async fn postgres(label: &str) -> Option<Self> {
        let backend = Backend::Postgres;
        let admin = match std::env::var("TETHER_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::var_os("CI").is_some() => {
                panic!("CI is set but TETHER_TEST_POSTGRES_URL is not: PostgreSQL tests must run in CI")
            }
            _ => {
                // Straight to stderr: libtest captures eprintln! of passing tests.
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED {label}: set TETHER_TEST_POSTGRES_URL to run it"
                );
                return None;
            }
        };
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let name = format!(
            "tether_kit_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            now_ms() % 1_000_000
        );
        let mut conn = PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at TETHER_TEST_POSTGRES_URL: {e}"));
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create the test database");
        conn.close().await.ok();
        let (address, query) = match admin.split_once('?') {
            Some((address, query)) => (address, format!("?{query}")),
            None => (admin.as_str(), String::new()),
        };
        let (base, _) = address
            .rsplit_once('/')
            .expect("TETHER_TEST_POSTGRES_URL names a database");
        Some(Self {
            backend,
            url: format!("{base}/{name}{query}"),
            _dir: None,
            drop_pg: Some((admin, name)),
        })
    }

    /// Its backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Its URL, as `[database] url` takes it.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let Some((admin, name)) = self.drop_pg.take() else {
            return;
        };
        // Drop runs inside (or outside) a runtime: a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = conn.execute(sql.as_str()).await;
                }
            })
        })
        .join();
    }
}

/// One target of the suite: a kind, and the API of it whose simulator runs
/// ([`targets`]).
pub type Target = (&'static str, Option<&'static str>);

/// Runs `scenario` for every target on `backend`, four targets at a time (each with its own
/// simulator and database); a target's panic fails the whole run, naming the target.
pub async fn for_every_target<F, Fut>(backend: Backend, scenario: F)
where
    F: Fn(Target, Database) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    if Database::new(backend).await.is_none() {
        return;
    }
    let permits = Arc::new(tokio::sync::Semaphore::new(4));
    let mut running = tokio::task::JoinSet::new();
    for target in targets() {
        let db = Database::new(backend).await.expect("a database");
        let run = scenario(target, db);
        let permits = permits.clone();
        running.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("open");
            run.await;
        });
    }
    let mut failed = Vec::new();
    while let Some(done) = running.join_next().await {
        if let Err(e) = done {
            failed.push(e);
        }
    }
    if let Some(e) = failed.into_iter().next() {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// The suite's edge scenarios' simulator: jobs pending 100 ms, running `running`, not visible
/// for `invisible_for` after they are made, forgotten `forget_after` after they end; the
/// account polls quickly and reads "not found" as not visible yet for `grace`.
async fn edge_subject(
    (kind, api): Target,
    running: Duration,
    invisible_for: Duration,
    forget_after: Option<Duration>,
    grace: &str,
) -> Subject {
    let options = SimOptions {
        pending: Duration::from_millis(100),
        running,
        invisible_for,
        forget_after,
        ..SimOptions::default()
    };
    let overrides = Table::from([
        ("not_found_grace".to_string(), Setting::from(grace)),
        ("request_timeout".to_string(), Setting::from("2s")),
    ]);
    Subject::start_with(kind, api, options, overrides).await
}

/// An ensure of the task instance `task` of the scenario, try `try_number`, on `account`.
fn edge_request(s: &Subject, task: &str, try_number: i64, account: &str) -> EnsureRequest {
    EnsureRequest {
        task_instance: TaskInstanceId::new("edges", "r1", format!("{task}-{}", s.kind), -1),
        try_number,
        name: "main".into(),
        provider: account.into(),
        spec: s.spec(task),
    }
}

/// Runs a supervisor until every job of `ids` is final (or `within` passes); their records.
async fn supervise_until_final(
    s: &Subject,
    app: &App,
    ids: &[tether::model::JobId],
    within: Duration,
) -> Vec<JobRecord> {
    let stop = tokio_util::sync::CancellationToken::new();
    let supervisor = tokio::spawn(Supervisor::new(app.engine.clone()).run(stop.clone()));
    let deadline = Instant::now() + within;
    let records = loop {
        let mut records = Vec::new();
        for id in ids {
            records.push(app.engine.jobs().get(*id).await.unwrap().unwrap());
        }
        if records.iter().all(|r| r.phase == Phase::Terminal) {
            break records;
        }
        assert!(
            Instant::now() < deadline,
            "{}: not every job ended within {within:?}: {records:?}",
            s.kind
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.cancel();
    supervisor.await.unwrap();
    records
}

/// A job that reads "not found" (and is left out of lists) for a second after it is made,
/// within the account's grace, is polled on and ends with its true state: one job made, and
/// never recorded lost.
pub async fn invisible_after_create(target: Target, db: Database) {
    let second = Duration::from_secs(1);
    let s = edge_subject(target, second, second, None, "10s").await;
    let app = s.app_on(&db, "").await;
    let ensured = app
        .engine
        .ensure(&edge_request(&s, "invisible", 1, s.kind))
        .await
        .unwrap_or_else(|e| panic!("{}: ensure: {e}", s.kind));
    assert_eq!(ensured.action, EnsureAction::Submitted, "{}", s.kind);
    let handle = ensured.job.handle.clone().expect("submitted");
    let done = supervise_until_final(&s, &app, &[ensured.job.id], Duration::from_secs(30)).await;
    assert_eq!(
        done[0].state,
        JobState::Succeeded,
        "{}: a job not visible at first ended {:?}",
        s.kind,
        done[0]
    );
    assert_eq!(s.sim().job_state(&handle), Some(SimJobState::Succeeded));
    assert_eq!(s.sim().counts().submissions, 1, "{}: one job", s.kind);
    let events = app.engine.jobs().events(ensured.job.id).await.unwrap();
    assert!(
        events.iter().all(|e| e.kind != "lost"),
        "{}: {events:?}",
        s.kind
    );
    app.db.close().await;
}

/// A cancel asked for while the new job is not visible yet (the provider answers "not found"
/// to the cancel and to the polls): the job is not taken for gone; the cancel is sent once the
/// provider shows the job, which ends cancelled at the provider, as recorded.
pub async fn cancel_while_invisible(target: Target, db: Database) {
    let s = edge_subject(
        target,
        Duration::from_secs(60),
        Duration::from_millis(1500),
        None,
        "10s",
    )
    .await;
    let app = s.app_on(&db, "").await;
    let job = app
        .engine
        .ensure(&edge_request(&s, "cancel-invisible", 1, s.kind))
        .await
        .unwrap_or_else(|e| panic!("{}: ensure: {e}", s.kind))
        .job;
    let handle = job.handle.clone().expect("submitted");
    app.engine
        .cancel(job.id, "conformance: cancel while not visible", "testkit")
        .await
        .unwrap_or_else(|e| panic!("{}: cancel: {e}", s.kind));
    let done = supervise_until_final(&s, &app, &[job.id], Duration::from_secs(30)).await;
    assert_eq!(
        done[0].state,
        JobState::Cancelled,
        "{}: {:?}",
        s.kind,
        done[0]
    );
    assert!(
        done[0].cancel_sent_at.is_some(),
        "{}: recorded cancelled, the cancel never sent: {:?}",
        s.kind,
        done[0]
    );
    assert_eq!(
        s.sim().job_state(&handle),
        Some(SimJobState::Cancelled),
        "{}: the job itself was cancelled",
        s.kind
    );
    app.db.close().await;
}

/// A submission the provider processed but answered with 500, of a job the provider does not
/// show for a second: the engine's reconciling (`find`, or the idempotent submit again) waits
/// out the grace rather than call it never made, and the task ends with one job, which
/// succeeds.
pub async fn lost_answer_while_invisible(target: Target, db: Database) {
    let second = Duration::from_secs(1);
    let s = edge_subject(target, second, second, None, "3s").await;
    let app = s.app_on(&db, "").await;
    s.sim().inject(SimFault {
        kind: SimFaultKind::FailAfterProcessing,
        times: 1,
        calls: SimCalls::Submits,
        lasting: None,
    });
    let first = app
        .engine
        .ensure(&edge_request(&s, "lost-invisible", 1, s.kind))
        .await;
    let ensured = match first {
        Ok(e) if e.job.handle.is_some() => e,
        _ => app
            .engine
            .ensure(&edge_request(&s, "lost-invisible", 2, s.kind))
            .await
            .unwrap_or_else(|e| panic!("{}: the retry: {e}", s.kind)),
    };
    assert!(
        ensured.job.handle.is_some(),
        "{}: {:?}",
        s.kind,
        ensured.job
    );
    let done = supervise_until_final(&s, &app, &[ensured.job.id], Duration::from_secs(30)).await;
    assert_eq!(
        done[0].state,
        JobState::Succeeded,
        "{}: {:?}",
        s.kind,
        done[0]
    );
    assert_eq!(
        s.sim().counts().submissions,
        1,
        "{}: one remote job for the lost answer",
        s.kind
    );
    app.db.close().await;
}

/// Two jobs the provider forgets the moment they end, after tether saw them run: on the
/// account as it comes, the job ends `outcome_unknown` and the next try submits nothing; on
/// the account that says re-running is safe (`on_forgotten = "resubmit"`), it ends `lost`
/// and the next try submits it again.
pub async fn forgotten_after_end(target: Target, db: Database) {
    let s = edge_subject(
        target,
        Duration::from_millis(1500),
        Duration::ZERO,
        Some(Duration::ZERO),
        "1s",
    )
    .await;
    let app = s.app_on(&db, "").await;
    let resubmit = format!("{}-resubmit", s.kind);
    let kept = app
        .engine
        .ensure(&edge_request(&s, "forgotten", 1, s.kind))
        .await
        .unwrap_or_else(|e| panic!("{}: ensure: {e}", s.kind))
        .job;
    let rerun = app
        .engine
        .ensure(&edge_request(&s, "forgotten-rerun", 1, &resubmit))
        .await
        .unwrap_or_else(|e| panic!("{}: ensure: {e}", s.kind))
        .job;
    let done = supervise_until_final(&s, &app, &[kept.id, rerun.id], Duration::from_secs(30)).await;
    assert_eq!(
        done[0].state,
        JobState::OutcomeUnknown,
        "{}: a job forgotten after it was seen: {:?}",
        s.kind,
        done[0]
    );
    assert_eq!(done[1].state, JobState::Lost, "{}: {:?}", s.kind, done[1]);
    assert_eq!(s.sim().counts().submissions, 2, "{}", s.kind);

    let again = app
        .engine
        .ensure(&edge_request(&s, "forgotten", 2, s.kind))
        .await
        .unwrap_or_else(|e| panic!("{}: the retry: {e}", s.kind));
    assert_eq!(again.action, EnsureAction::Finished, "{}", s.kind);
    assert_eq!(again.job.state, JobState::OutcomeUnknown, "{}", s.kind);
    assert_eq!(
        s.sim().counts().submissions,
        2,
        "{}: a forgotten job was submitted again",
        s.kind
    );
    let again = app
        .engine
        .ensure(&edge_request(&s, "forgotten-rerun", 2, &resubmit))
        .await
        .unwrap_or_else(|e| panic!("{}: the retry: {e}", s.kind));
    assert_eq!(again.action, EnsureAction::Resubmitted, "{}", s.kind);
    assert_eq!(s.sim().counts().submissions, 3, "{}", s.kind);
    app.db.close().await;
}
