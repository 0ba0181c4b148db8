//! Google's credentials end to end, against the simulator: a service account's key file (its
//! tokens signed by `google-cloud-auth` and their signatures checked by the simulator), the
//! metadata server on loopback, and a key the simulator does not trust (refused, named,
//! never printed).

use std::net::SocketAddr;
use std::process::Command;

use serde_json::json;
use tether_google::sim::{SimConfig, Simulator};
use tether_google::{BigQuery, Credentials, GoogleConfig};
use tether_provider::settings::{Setting, Table};
use tether_provider::{Provider, Ungated};

async fn sim() -> Simulator {
    Simulator::start(SimConfig::default(), SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap()
}

fn account(sim: &Simulator, credentials: (&str, String)) -> GoogleConfig {
    let table = Table::from([
        ("project".to_string(), Setting::from("tether-sim")),
        ("location".to_string(), Setting::from("US")),
        ("endpoint".to_string(), Setting::String(sim.url())),
        ("max_retries".to_string(), Setting::Integer(0)),
        (credentials.0.to_string(), Setting::String(credentials.1)),
    ]);
    GoogleConfig::build("bigquery", "providers.bigquery", table, |_| None).unwrap()
}

fn spec() -> serde_json::Value {
    json!({"configuration": {"query": {"query": "SELECT 1", "useLegacySql": false}}})
}

#[tokio::test]
async fn a_key_file_signs_tokens_the_service_verifies() {
    let sim = sim().await;
    let config = account(
        &sim,
        ("credentials_file", sim.key_file().display().to_string()),
    );
    assert!(matches!(config.credentials, Credentials::File(_)));
    let adapter = BigQuery::new(config).unwrap();
    let handle = adapter
        .submit(&spec(), "tether-key-file", &Ungated)
        .await
        .unwrap();
    adapter.status(&handle).await.unwrap();
    let stats = sim.stats();
    assert!(stats.signed_tokens_verified >= 2, "{stats:?}");
    assert_eq!(
        stats.tokens_issued, 0,
        "a service account signs its own tokens"
    );
}

#[tokio::test]
async fn the_metadata_server_on_loopback_gives_the_tokens() {
    let sim = sim().await;
    let config = account(&sim, ("metadata_server", sim.url()));
    let adapter = BigQuery::new(config).unwrap();
    let handle = adapter
        .submit(&spec(), "tether-metadata", &Ungated)
        .await
        .unwrap();
    adapter.status(&handle).await.unwrap();
    let stats = sim.stats();
    assert!(stats.tokens_issued >= 1, "{stats:?}");
    assert_eq!(stats.signed_tokens_verified, 0);
}

#[tokio::test]
async fn a_key_the_service_does_not_trust_is_refused_by_name() {
    let dir = tempfile_dir("untrusted");
    let pem = dir.join("key.pem");
    let made = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&pem)
        .output();
    let Ok(made) = made else {
        eprintln!("SKIPPED a_key_the_service_does_not_trust_is_refused_by_name: no openssl");
        return;
    };
    assert!(made.status.success(), "{made:?}");
    let private_key = std::fs::read_to_string(&pem).unwrap();
    let key_file = dir.join("key.json");
    std::fs::write(
        &key_file,
        json!({
            "type": "service_account",
            "project_id": "tether-sim",
            "private_key_id": "other",
            "private_key": private_key,
            "client_email": "intruder@tether-sim.iam.gserviceaccount.com",
            "token_uri": "http://127.0.0.1:9/token",
        })
        .to_string(),
    )
    .unwrap();
    let sim = sim().await;
    let adapter = BigQuery::new(account(
        &sim,
        ("credentials_file", key_file.display().to_string()),
    ))
    .unwrap();
    let err = adapter
        .submit(&spec(), "tether-untrusted", &Ungated)
        .await
        .unwrap_err();
    assert!(err.message.contains("credentials were refused"), "{err}");
    assert!(err.message.contains("key.json"), "{err}");
    let body: String = private_key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(!err.message.contains(&body[..40]), "{err}");
    assert_eq!(sim.stats().common.submissions, 0);
    std::fs::remove_dir_all(&dir).ok();
}

fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tether-google-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
