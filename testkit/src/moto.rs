//! moto (PyPI `moto[server]`), an independent implementation of the AWS APIs, as a child
//! process on a free loopback port, for the tests that hold tether's AWS adapters, event
//! source and simulator to it. Without `moto_server` a test says it was skipped, except under
//! CI, where it fails.

use std::process::Stdio;
use std::time::{Duration, Instant};

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
