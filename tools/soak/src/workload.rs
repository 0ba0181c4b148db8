//! The soak's clients: what a fleet of Airflow workers does to the API while the chaos runs.
//! They ensure new jobs (asking again, as a retrying worker does, until an answer names the
//! job), ensure running ones again (the same try, and a later one, as a retried task does),
//! and cancel a few on purpose; each answer is counted by its status.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng as _;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::time::Instant;

/// A job the soak asked for: its task in DAG `soak`, run `r1`, and its provider account.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The task id.
    pub task: String,
    /// The provider account (named as its kind).
    pub provider: &'static str,
    /// The provider's submit body.
    pub spec: Value,
    /// Whether to cancel it on purpose, a few seconds after its submission.
    pub cancel: bool,
}

/// The API's answers, counted.
#[derive(Debug, Default)]
pub struct Answers {
    /// Requests sent (each attempt).
    pub requests: AtomicU64,
    /// 2xx answers.
    pub ok: AtomicU64,
    /// 503 answers (the database out of reach, a submission whose outcome is being settled).
    pub unavailable: AtomicU64,
    /// Other 5xx answers: each is a fault of tether's.
    pub server_errors: AtomicU64,
    /// 4xx answers: the soak only sends valid requests, so each is a fault too.
    pub refused: AtomicU64,
    /// Requests that got no answer (a supervisor killed or stopped, a timeout).
    pub unanswered: AtomicU64,
    /// Re-ensures that submitted (a new generation, or a second submission): must be none.
    pub resubmitted: AtomicU64,
    /// The first few faulty answers, to print.
    pub examples: Mutex<Vec<String>>,
}

impl Answers {
    fn note(&self, what: String) {
        let mut examples = self.examples.lock().expect("not poisoned");
        if examples.len() < 10 {
            examples.push(what);
        }
    }

    /// A figure.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// A job the API named in an answer.
#[derive(Debug, Clone)]
pub struct Ensured {
    /// tether's job id.
    pub job_id: i64,
    /// The plan it came from.
    pub planned: Planned,
    /// Whether the soak has asked to cancel it.
    pub cancel_asked: bool,
}

/// The clients.
#[derive(Debug)]
pub struct Workload {
    client: reqwest::Client,
    urls: Vec<String>,
    token: String,
    /// The answers, counted.
    pub answers: Answers,
    /// By index in the plan.
    pub ensured: Mutex<BTreeMap<usize, Ensured>>,
}

/// An API answer other than 2xx that ends a call (a 4xx, or the deadline passing).
type Refused = String;

impl Workload {
    /// Clients of the supervisors at `urls`, with an admin `token`.
    pub fn new(urls: Vec<String>, token: String) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("a default HTTP client builds");
        Self {
            client,
            urls,
            token,
            answers: Answers::default(),
            ensured: Mutex::new(BTreeMap::new()),
        }
    }

    /// Sends `body` to `path` at a random supervisor until one answers 2xx (retrying after
    /// 503s, other 5xx and no answer) or 4xx, or `deadline` passes.
    async fn call(&self, path: &str, body: &Value, deadline: Instant) -> Result<Value, Refused> {
        let a = &self.answers;
        loop {
            if Instant::now() >= deadline {
                return Err(format!("POST {path}: no answer before the deadline"));
            }
            let url = &self.urls[rand::rng().random_range(0..self.urls.len())];
            a.requests.fetch_add(1, Ordering::Relaxed);
            let sent = self
                .client
                .post(format!("{url}{path}"))
                .bearer_auth(&self.token)
                .json(body)
                .send()
                .await;
            let response = match sent {
                Ok(r) => r,
                Err(_) => {
                    a.unanswered.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    continue;
                }
            };
            let status = response.status();
            let text = match response.text().await {
                Ok(t) => t,
                Err(_) => {
                    a.unanswered.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            if status.is_success() {
                a.ok.fetch_add(1, Ordering::Relaxed);
                return serde_json::from_str(&text).map_err(|e| {
                    format!("POST {path}: {status} with a body that is not JSON: {e}")
                });
            }
            if status == StatusCode::SERVICE_UNAVAILABLE {
                a.unavailable.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            let problem = format!("POST {path} at {url}: {status} {text}");
            a.note(problem.clone());
            if status.is_server_error() {
                a.server_errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            a.refused.fetch_add(1, Ordering::Relaxed);
            return Err(problem);
        }
    }

    fn ensure_body(planned: &Planned, try_number: i64) -> Value {
        json!({
            "dag_id": "soak", "run_id": "r1", "task_id": planned.task,
            "try_number": try_number, "provider": planned.provider, "spec": planned.spec,
        })
    }

    /// Ensures planned job `index` until an answer names it; then, if planned, cancels it
    /// a few seconds later.
    pub async fn ensure_new(self: Arc<Self>, index: usize, planned: Planned, deadline: Instant) {
        let body = Self::ensure_body(&planned, 1);
        let answer = match self.call("/v1/jobs", &body, deadline).await {
            Ok(answer) => answer,
            Err(problem) => {
                self.answers.note(format!("{}: {problem}", planned.task));
                return;
            }
        };
        let Some(job_id) = answer["job"]["id"].as_i64() else {
            self.answers.note(format!(
                "{}: an ensure answer without a job id: {answer}",
                planned.task
            ));
            return;
        };
        let cancel = planned.cancel;
        self.ensured.lock().expect("not poisoned").insert(
            index,
            Ensured {
                job_id,
                planned,
                cancel_asked: cancel,
            },
        );
        if cancel {
            let wait = Duration::from_millis(rand::rng().random_range(1_000..4_000));
            tokio::time::sleep(wait).await;
            let body = json!({"reason": "soak: cancelled on purpose"});
            if let Err(problem) = self
                .call(&format!("/v1/jobs/{job_id}/cancel"), &body, deadline)
                .await
            {
                self.answers
                    .note(format!("cancelling job {job_id}: {problem}"));
            }
        }
    }

    /// Ensures a random job that is not being cancelled again, with its first try or a later
    /// one: the answer must reattach or report the result, never submit.
    pub async fn ensure_again(&self, deadline: Instant) {
        let pick = {
            let ensured = self.ensured.lock().expect("not poisoned");
            let candidates: Vec<&Ensured> = ensured.values().filter(|e| !e.cancel_asked).collect();
            if candidates.is_empty() {
                return;
            }
            candidates[rand::rng().random_range(0..candidates.len())].clone()
        };
        let try_number = rand::rng().random_range(1..=2);
        let body = Self::ensure_body(&pick.planned, try_number);
        let Ok(answer) = self.call("/v1/jobs", &body, deadline).await else {
            return;
        };
        let action = answer["action"].as_str().unwrap_or("");
        if answer["submitted"].as_bool() != Some(false)
            || answer["job"]["id"].as_i64() != Some(pick.job_id)
        {
            self.answers.resubmitted.fetch_add(1, Ordering::Relaxed);
            self.answers.note(format!(
                "ensuring job {} again (try {try_number}) answered {action}: {answer}",
                pick.job_id
            ));
        }
    }
}
