//! Clients that are slow or never finish, over raw sockets against `tether::api::serve` (the
//! server `tether serve` runs), with short configured deadlines (`api.header_read_timeout` and
//! `api.body_read_timeout` 1 s): a connection that sends nothing, one that sends its header a
//! byte at a time, and one idle after a request are closed; a body declared over
//! `api.max_body_bytes` is a 413 from the header alone; a body that does not arrive is a 408;
//! and a long poll that outlasts both deadlines is not cut.

mod common;

use std::time::{Duration, Instant};

use tether::engine::EnsureRequest;
use tether::state::TaskInstanceId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use common::{app_for, quick_sim, TestDb};

const ADMIN: &str = "admin-token-for-slow-clients-0123";

struct Server {
    address: std::net::SocketAddr,
    app: tether::app::App,
    stop: CancellationToken,
    _sim: tether_databricks::sim::Simulator,
    _db: TestDb,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn start() -> Server {
    let db = TestDb::sqlite().await;
    let sim = quick_sim().await;
    let extra = format!(
        "\n[api]\nadmin_token_sha256 = [\"{}\"]\nmax_body_bytes = 4096\nmax_wait = \"10s\"\n\
         header_read_timeout = \"1s\"\nbody_read_timeout = \"1s\"\n",
        tether::api::auth::hash_token(ADMIN)
    );
    let app = app_for(&db, &sim.url(), "5s", &extra).await;
    let listener = tether::api::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let address = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(tether::api::serve(app.clone(), listener, stop.clone()));
    Server {
        address,
        app,
        stop,
        _sim: sim,
        _db: db,
    }
}

/// Reads until the server closes the connection (or `limit` passes); what it sent, and when
/// it closed (`None`: still open at `limit`).
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Option<Instant>) {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&seen).into(), None),
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (String::from_utf8_lossy(&seen).into(), Some(Instant::now()))
            }
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_nothing_is_closed() {
    let server = start().await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let opened = Instant::now();
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    let after = closed
        .expect("still open after 10 s")
        .duration_since(opened);
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(4),
        "closed after {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_sent_a_byte_at_a_time_is_cut_off() {
    let server = start().await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let opened = Instant::now();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // A header line, one byte every 200 ms: never finished, always busy.
    let mut closed = None;
    for _ in 0..50 {
        if stream.write_all(b"X").await.is_err() {
            closed = Some(Instant::now());
            break;
        }
        let mut buf = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = Some(Instant::now());
                break;
            }
            Ok(Ok(_)) | Err(_) => {}
        }
    }
    let after = closed
        .expect("still open after 10 s of trickled header bytes")
        .duration_since(opened);
    assert!(after < Duration::from_secs(4), "closed after {after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_idle_after_a_request_is_closed() {
    let server = start().await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answered = Instant::now();
    let (seen, closed) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    let after = closed
        .expect("still open after 10 s")
        .duration_since(answered);
    assert!(after < Duration::from_secs(4), "closed after {after:?}");
}

/// Sends a state PUT declaring `length` body bytes, then only `{`; the first answer and how
/// long it took.
async fn put_declaring(server: &Server, length: u64) -> (String, Duration) {
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let sent = Instant::now();
    stream
        .write_all(
            format!(
                "PUT /v1/state/assets/a/keys/k HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\
                 Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("no answer within 5 s")
        .unwrap();
    (
        String::from_utf8_lossy(&buf[..n]).to_string(),
        sent.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_declared_too_large_is_refused_from_the_header() {
    let server = start().await;
    let (answer, after) = put_declaring(&server, 99_999_999_999).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("api.max_body_bytes"), "{answer}");
    assert!(after < Duration::from_secs(1), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_arrives_is_a_408() {
    let server = start().await;
    let (answer, after) = put_declaring(&server, 100).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("api.body_read_timeout"), "{answer}");
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(4),
        "{after:?}"
    );
    // Nothing was written.
    let scope = tether::state::Scope::Asset { asset: "a".into() };
    assert!(server.app.state.list(&scope).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_outlasts_the_deadlines() {
    let server = start().await;
    let job = server
        .app
        .engine
        .ensure(&EnsureRequest {
            task_instance: TaskInstanceId::new("etl", "r1", "load", -1),
            try_number: 1,
            name: "main".into(),
            provider: "databricks".into(),
            spec: common::spec("load"),
        })
        .await
        .unwrap()
        .job;
    // No supervisor runs: the job stays pending, and the wait ends at its timeout (3 s).
    let started = Instant::now();
    let answer = reqwest::Client::new()
        .get(format!(
            "http://{}/v1/jobs/{}/wait?state=pending&timeout=3",
            server.address, job.id
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["changed"], false, "{body}");
    assert!(started.elapsed() >= Duration::from_millis(2900));
}
