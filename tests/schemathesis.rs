//! Property-based API testing with schemathesis (PyPI) against `/openapi.json` of a running
//! `tether serve`: no 5xx answer, no answer that breaks the document (status codes, content
//! types, bodies). `.ci/run` installs schemathesis; without it this test says it was skipped,
//! except under CI, where it fails.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{config_toml, quick_sim, TestDb};

const ADMIN: &str = "schemathesis-admin-token-0123456789";

fn schemathesis_available() -> bool {
    std::process::Command::new("schemathesis")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

async fn schemathesis_finds_no_server_error_and_no_schema_violation(db: TestDb) {
    if !schemathesis_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but schemathesis is not installed (.ci/run installs it with pip)"
        );
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED schemathesis: `pip install schemathesis` to run it"
        );
        return;
    }
    let sim = quick_sim().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tether.toml");
    let api = format!(
        "\n[api]\nlisten = \"127.0.0.1:{port}\"\nadmin_token_sha256 = [\"{}\"]\nsigning_key = \"schemathesis-signing-key-0123456789abcdef\"\nmax_wait = \"2s\"\n",
        tether::api::auth::hash_token(ADMIN)
    );
    std::fs::write(&config, config_toml(&db, &sim.url(), "5s", &api)).unwrap();
    let mut serve = tokio::process::Command::new(env!("CARGO_BIN_EXE_tether"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("TETHER_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while reqwest::get(format!("{url}/readyz"))
        .await
        .map(|r| r.status().is_success())
        .ok()
        != Some(true)
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "tether serve did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = tokio::process::Command::new("schemathesis")
        .args(["run", &format!("{url}/openapi.json")])
        .args(["-H", &format!("Authorization: Bearer {ADMIN}")])
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
            "--max-examples",
            "25",
        ])
        .env("NO_COLOR", "1")
        // Its cache folder goes to the temp dir, not into the repository.
        .current_dir(dir.path())
        .output()
        .await
        .unwrap();
    let _ = serve.start_kill();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Vec<&str> = text.lines().filter(|l| l.contains("generated")).collect();
    eprintln!("schemathesis on {}: {summary:?}", db.backend);
}

on_both_backends!(schemathesis_finds_no_server_error_and_no_schema_violation);
