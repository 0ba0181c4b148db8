//! The Pub/Sub emulator that the Google Cloud CLI carries (`platform/pubsub-emulator`, a real
//! implementation of the Pub/Sub API), as a child process on a free loopback port, for the
//! tests, the bench and the soak that carry the Google simulator's log entries to tether's
//! `gcp-pubsub` event source. Without the emulator a test says it was skipped, except under
//! CI, where it fails. Beside it, the two calls they share: make a topic and a subscription
//! ([`Emulator::topic_and_subscription`]).
//!
//! The emulator's project ids, like Pub/Sub's, are 6 to 30 characters.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

/// A running emulator, stopped when dropped.
#[derive(Debug)]
pub struct Emulator {
    /// Its endpoint, `http://127.0.0.1:PORT`.
    pub url: String,
    child: tokio::process::Child,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The emulator of the Google Cloud CLI on the PATH, if it has it.
pub fn binary() -> Option<PathBuf> {
    let out = std::process::Command::new("sh")
        .args(["-c", "readlink -f \"$(command -v gcloud)\""])
        .output()
        .ok()?;
    let gcloud = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let bin = gcloud
        .parent()?
        .parent()?
        .join("platform/pubsub-emulator/bin/cloud-pubsub-emulator");
    bin.is_file().then_some(bin)
}

/// Starts the emulator for `test` (named when it is skipped); `None` without it (a failure
/// under CI).
pub async fn start(test: &str) -> Option<Emulator> {
    let Some(bin) = binary() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but there is no Pub/Sub emulator (the Google Cloud CLI's \
             platform/pubsub-emulator)"
        );
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: no Pub/Sub emulator (the Google Cloud CLI's platform/pubsub-emulator)"
        );
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port();
    let child = tokio::process::Command::new(bin)
        .args(["--host=127.0.0.1", &format!("--port={port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the Pub/Sub emulator");
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while reqwest::get(&url).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the Pub/Sub emulator did not start"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Some(Emulator { url, child })
}

impl Emulator {
    /// Makes topic `topic` and subscription `subscription` of it (ack deadline
    /// `ack_deadline_seconds`) in `project`; their names, `projects/P/topics/T` and
    /// `projects/P/subscriptions/S`.
    pub async fn topic_and_subscription(
        &self,
        project: &str,
        topic: &str,
        subscription: &str,
        ack_deadline_seconds: u32,
    ) -> (String, String) {
        let http = reqwest::Client::new();
        let topic = format!("projects/{project}/topics/{topic}");
        let subscription = format!("projects/{project}/subscriptions/{subscription}");
        let made = http
            .put(format!("{}/v1/{topic}", self.url))
            .send()
            .await
            .expect("reach the emulator");
        assert!(made.status().is_success(), "make {topic}: {made:?}");
        let made = http
            .put(format!("{}/v1/{subscription}", self.url))
            .json(&json!({"topic": topic, "ackDeadlineSeconds": ack_deadline_seconds}))
            .send()
            .await
            .expect("reach the emulator");
        assert!(made.status().is_success(), "make {subscription}: {made:?}");
        (topic, subscription)
    }
}
