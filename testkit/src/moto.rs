//! moto (PyPI `moto[server]`), an independent implementation of the AWS APIs, as a child
//! process on a free loopback port, for the tests that hold tether's AWS adapters, event
//! source and simulator to it. Without `moto_server` a test says it was skipped, except under
//! CI, where it fails. Beside it, what those tests share: the AWS credential chain's
//! environment ([`aws_env`]) and a client of moto's SQS ([`sqs`], [`sqs_call`],
//! [`create_queue`]).

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tether_aws::client::{AwsClient, Json, Target};
use tether_aws::credential::CredentialSource;
use tether_aws::sim::SimConfig;
use tether_provider::http::Idempotency;
use tether_provider::CommonSettings;

/// A running `moto_server`, stopped when dropped.
#[derive(Debug)]
pub struct Moto {
    /// Its endpoint, `http://127.0.0.1:PORT`.
    pub url: String,
    child: tokio::process::Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Starts `moto_server` for `test` (named when it is skipped); `None` without it (a failure
/// under CI).
pub async fn start(test: &str) -> Option<Moto> {
    let available = std::process::Command::new("moto_server")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but moto_server is not installed (.ci/run installs moto[server])"
        );
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: `pip install 'moto[server]'` to run it"
        );
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port();
    let child = tokio::process::Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start moto_server");
    let url = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while reqwest::get(format!("{url}/moto-api/")).await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "moto_server did not start"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Some(Moto { url, child })
}

/// Sets the AWS credential chain's environment to the AWS simulator's key pair alone; the pair.
pub fn aws_env() -> (String, String) {
    let sim = SimConfig::default();
    std::env::set_var("AWS_ACCESS_KEY_ID", &sim.access_key_id);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", &sim.secret_access_key);
    std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/tether-test");
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/tether-test");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    (sim.access_key_id, sim.secret_access_key)
}

/// A client of moto's SQS (`us-east-1`), signed with the environment's key pair.
pub fn sqs(moto: &Moto) -> AwsClient {
    let target = Target {
        provider: "test-sqs",
        signing_name: "sqs",
        region: "us-east-1",
        endpoint: &moto.url,
    };
    let credentials = CredentialSource::new("test-sqs", "us-east-1", None);
    AwsClient::to(target, &CommonSettings::default(), credentials).unwrap()
}

/// Calls SQS operation `op` (AWS JSON 1.0) with `body`; its answer, or a panic naming `op`.
pub async fn sqs_call(client: &AwsClient, op: &str, body: Value) -> Value {
    client
        .json(Json::V1_0, "AmazonSQS", op, &body, Idempotency::Idempotent)
        .await
        .unwrap_or_else(|e| panic!("{op}: {e}"))
}

/// Creates the SQS queue `name`; its URL.
pub async fn create_queue(client: &AwsClient, name: &str) -> String {
    let queue = sqs_call(client, "CreateQueue", json!({ "QueueName": name })).await;
    queue["QueueUrl"].as_str().expect("a queue URL").to_string()
}
