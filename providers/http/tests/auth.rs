//! A declared provider's credentials, against a local server that checks them: OAuth2 client
//! credentials (a token fetched from the token URL with the client's basic credentials,
//! cached, fetched again after a 401), a header of one's own, and a bearer token with a scheme.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use serde_json::json;
use tether_http::{Declared, HttpApiConfig};
use tether_provider::settings::{Setting, Table};
use tether_provider::{Handle, JobState, Provider};

#[derive(Default)]
struct Seen {
    tokens_issued: u64,
    /// The token the API accepts now (the last issued).
    valid: Option<String>,
    /// Authorization headers of the job calls.
    job_auth: Vec<String>,
}

type Shared = Arc<Mutex<Seen>>;

async fn token(
    State(seen): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> Response {
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("tether-client:client-s3cret")
    );
    let given = headers.get("authorization").and_then(|v| v.to_str().ok());
    if given != Some(basic.as_str())
        || form.get("grant_type").map(String::as_str) != Some("client_credentials")
        || form.get("scope").map(String::as_str) != Some("jobs")
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let mut seen = seen.lock().unwrap();
    seen.tokens_issued += 1;
    let token = format!("oauth-{}", seen.tokens_issued);
    seen.valid = Some(token.clone());
    Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600})).into_response()
}

async fn job(State(seen): State<Shared>, headers: HeaderMap) -> Response {
    let mut seen = seen.lock().unwrap();
    let given = headers
        .get("authorization")
        .or_else(|| headers.get("x-api-key"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    seen.job_auth.push(given.clone());
    let ok = match &seen.valid {
        Some(t) => given == format!("Bearer {t}"),
        None => given == "key-123" || given == "Token dbt-tok",
    };
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"msg": "bad credentials"})),
        )
            .into_response();
    }
    Json(json!({"id": 1, "state": "done"})).into_response()
}

async fn server() -> (String, Shared) {
    let seen: Shared = Arc::default();
    let app = Router::new()
        .route("/oauth/token", post(token))
        .route("/jobs/1", get(job))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// A minimal description of the local API with `auth`.
fn adapter(url: &str, auth: Table) -> Declared {
    let t = |pairs: &[(&str, Setting)]| {
        Setting::Table(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    };
    let s = |v: &str| Setting::String(v.to_string());
    let table: Table = [
        ("base_url", s(url)),
        ("max_retries", Setting::Integer(0)),
        ("auth", Setting::Table(auth)),
        (
            "key",
            t(&[
                ("in", s("header")),
                ("name", s("Idempotency-Key")),
                ("deduplicated", Setting::Boolean(true)),
            ]),
        ),
        (
            "submit",
            t(&[("path", s("/jobs")), ("handle", t(&[("id", s("/id"))]))]),
        ),
        (
            "status",
            t(&[("path", s("/jobs/{handle.id}")), ("state", s("/state"))]),
        ),
        ("states", t(&[("done", s("succeeded"))])),
        ("cancel", t(&[("path", s("/jobs/{handle.id}/cancel"))])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let env = |name: &str| (name == "CLIENT_SECRET").then(|| "client-s3cret".to_string());
    let config = HttpApiConfig::build("providers.t", table, &env).unwrap();
    assert!(!format!("{config:?}").contains("client-s3cret"));
    Declared::new(config).unwrap()
}

fn auth(pairs: &[(&str, &str)]) -> Table {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Setting::String(v.to_string())))
        .collect()
}

#[tokio::test]
async fn oauth2_tokens_are_fetched_cached_and_fetched_again_after_a_401() {
    let (url, seen) = server().await;
    let a = adapter(
        &url,
        auth(&[
            ("type", "oauth2"),
            ("token_url", &format!("{url}/oauth/token")),
            ("client_id", "tether-client"),
            ("client_secret_env", "CLIENT_SECRET"),
            ("scope", "jobs"),
        ]),
    );
    let handle = Handle::new(json!({"id": 1}));
    for _ in 0..3 {
        assert_eq!(a.status(&handle).await.unwrap().state, JobState::Succeeded);
    }
    assert_eq!(
        seen.lock().unwrap().tokens_issued,
        1,
        "one token for three calls"
    );
    // The server revokes it: the next call is answered 401 once, then goes through with a new one.
    seen.lock().unwrap().valid = Some("revoked".into());
    assert_eq!(a.status(&handle).await.unwrap().state, JobState::Succeeded);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.tokens_issued, 2);
    assert_eq!(
        seen.job_auth.last().map(String::as_str),
        Some("Bearer oauth-2")
    );
}

#[tokio::test]
async fn a_header_and_a_bearer_scheme() {
    let (url, seen) = server().await;
    let handle = Handle::new(json!({"id": 1}));
    let header = adapter(
        &url,
        auth(&[
            ("type", "header"),
            ("name", "X-API-Key"),
            ("value", "key-123"),
        ]),
    );
    assert_eq!(
        header.status(&handle).await.unwrap().state,
        JobState::Succeeded
    );
    let token = adapter(
        &url,
        auth(&[
            ("type", "bearer"),
            ("scheme", "Token"),
            ("token", "dbt-tok"),
        ]),
    );
    assert_eq!(
        token.status(&handle).await.unwrap().state,
        JobState::Succeeded
    );
    let wrong = adapter(&url, auth(&[("type", "bearer"), ("token", "nope")]));
    let err = wrong.status(&handle).await.unwrap_err();
    assert!(err.to_string().contains("bad credentials"), "{err}");
    assert!(!err.to_string().contains("nope"), "{err}");
    assert_eq!(
        seen.lock().unwrap().job_auth[..2],
        ["key-123".to_string(), "Token dbt-tok".to_string()]
    );
}
