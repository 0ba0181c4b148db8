//! Task tokens over the API, on both backends, with two supervisors (two API servers) sharing
//! one database: a token signed on one works on the other; revoked on one, it is refused by
//! both from the next request on, and no longer listed. Signing-key rotation: a server that
//! signs with a new key (`api.signing_kid`) still accepts tokens of the old one while it is in
//! `api.signing_keys`, and refuses them, saying which key, once it is removed; tokens signed
//! before key ids (no `kid`) verify against the ring. A token bound to provider accounts
//! ensures jobs on those only.

mod common;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tether::api::{router, ApiState};

use common::{app_for, quick_sim, TestDb};

const ADMIN: &str = "admin-token-for-token-tests-0123456";
const OLD: &str = "the-old-signing-key-0123456789abcdef";
const NEW: &str = "the-new-signing-key-0123456789abcdef";

/// An API server on `db` with `api` lines added to its `[api]` table; its URL.
async fn server(db: &TestDb, sim: &str, api: &str) -> String {
    let extra = format!(
        "\n[api]\nadmin_token_sha256 = [\"{}\"]\n{api}\n",
        tether::api::auth::hash_token(ADMIN)
    );
    serve(app_for(db, sim, "2s", &extra).await).await
}

/// Serves `app`'s API on a free loopback port; its URL.
async fn serve(app: tether::app::App) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, router(ApiState::new(app)))
            .await
            .unwrap()
    });
    url
}

async fn call(method: Method, url: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Signs a task token for dag etl at `url`: (id, token).
async fn issue(url: &str) -> (String, String) {
    let (status, body) = call(
        Method::POST,
        &format!("{url}/v1/tokens"),
        ADMIN,
        Some(json!({"dag_id": "etl", "ttl_seconds": 600})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        body["id"].as_str().unwrap().to_string(),
        body["token"].as_str().unwrap().to_string(),
    )
}

/// What a task token gets for its own DAG's job list.
async fn use_token(url: &str, token: &str) -> (StatusCode, Value) {
    call(
        Method::GET,
        &format!("{url}/v1/jobs?dag_id=etl"),
        token,
        None,
    )
    .await
}

async fn revoked_on_one_supervisor_refused_by_both(db: TestDb) {
    let sim = quick_sim().await;
    let keys = format!("signing_key = \"{OLD}\"");
    let a = server(&db, &sim.url(), &keys).await;
    let b = server(&db, &sim.url(), &keys).await;
    let (id, token) = issue(&a).await;
    let (keep_id, keep) = issue(&a).await;
    assert_eq!(use_token(&b, &token).await.0, StatusCode::OK);

    // Listed on both, never with the token itself.
    let (status, list) = call(Method::GET, &format!("{b}/v1/tokens"), ADMIN, None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let ids: Vec<&str> = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&id.as_str()) && ids.contains(&keep_id.as_str()),
        "{list}"
    );
    assert!(
        !list.to_string().contains(&token),
        "the list holds no token"
    );
    assert_eq!(list["tokens"][0]["kid"], "default", "{list}");
    assert_eq!(list["next_after"], Value::Null, "one page: {list}");

    // A page at a time, newest first: each page's `next_after` leads to the next, and the
    // pages together are the whole list, each token once.
    for _ in 0..3 {
        issue(&a).await;
    }
    let (_, whole) = call(Method::GET, &format!("{b}/v1/tokens"), ADMIN, None).await;
    let whole: Vec<Value> = whole["tokens"].as_array().unwrap().clone();
    assert_eq!(whole.len(), 5, "{whole:?}");
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(c) => format!("{b}/v1/tokens?limit=2&after={c}"),
            None => format!("{b}/v1/tokens?limit=2"),
        };
        let (status, page) = call(Method::GET, &path, ADMIN, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page["tokens"].as_array().unwrap().len() <= 2, "{page}");
        paged.extend(page["tokens"].as_array().unwrap().iter().cloned());
        match page["next_after"].as_str() {
            Some(c) => after = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(paged, whole);
    for bad in ["limit=0", "limit=1001", "after=nonsense", "after=12x.abc"] {
        let (status, body) = call(Method::GET, &format!("{b}/v1/tokens?{bad}"), ADMIN, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains(bad.split('=').next().unwrap()),
            "{bad}: {body}"
        );
    }

    // A task token cannot list or revoke.
    let (status, _) = call(Method::GET, &format!("{a}/v1/tokens"), &token, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        Method::DELETE,
        &format!("{a}/v1/tokens/{keep_id}"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = call(Method::DELETE, &format!("{a}/v1/tokens/{id}"), ADMIN, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["revoked_at"].is_string(), "{body}");
    for url in [&a, &b] {
        let (status, body) = use_token(url, &token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{url}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("revoked"),
            "{body}"
        );
        assert_eq!(
            use_token(url, &keep).await.0,
            StatusCode::OK,
            "{url}: the other token works"
        );
    }
    let (_, list) = call(Method::GET, &format!("{b}/v1/tokens"), ADMIN, None).await;
    assert!(
        !list.to_string().contains(&id),
        "a revoked token is not live: {list}"
    );
    // Again: the same answer. An unknown id: 404 naming it.
    let (status, _) = call(Method::DELETE, &format!("{b}/v1/tokens/{id}"), ADMIN, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(Method::DELETE, &format!("{b}/v1/tokens/nope"), ADMIN, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["message"].as_str().unwrap().contains("nope"), "{body}");
}

async fn signing_keys_rotate(db: TestDb) {
    let sim = quick_sim().await;
    // Before: one key.
    let before = server(&db, &sim.url(), &format!("signing_key = \"{OLD}\"")).await;
    let (_, old_token) = issue(&before).await;
    // A token signed before key ids existed: no kid in its header.
    let claims = tether::api::auth::TaskClaims {
        jti: String::new(),
        dag_id: "etl".into(),
        run_id: None,
        task_id: None,
        map_index: None,
        assets: vec![],
        providers: None,
        nbf: None,
        exp: chrono::Utc::now().timestamp() as u64 + 600,
    };
    let legacy = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(OLD.as_bytes()),
    )
    .unwrap();
    // During: both keys, the new one signs; the old tokens still work.
    let ring =
        format!("signing_kid = \"k2\"\n[api.signing_keys]\ndefault = \"{OLD}\"\nk2 = \"{NEW}\"");
    let during = server(&db, &sim.url(), &ring).await;
    assert_eq!(use_token(&during, &old_token).await.0, StatusCode::OK);
    assert_eq!(use_token(&during, &legacy).await.0, StatusCode::OK);
    let (new_id, new_token) = issue(&during).await;
    let (_, list) = call(Method::GET, &format!("{during}/v1/tokens"), ADMIN, None).await;
    let new_entry = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == new_id.as_str())
        .unwrap();
    assert_eq!(new_entry["kid"], "k2", "{list}");
    // After: the old key removed.
    let after = server(
        &db,
        &sim.url(),
        &format!("signing_kid = \"k2\"\n[api.signing_keys]\nk2 = \"{NEW}\""),
    )
    .await;
    assert_eq!(use_token(&after, &new_token).await.0, StatusCode::OK);
    let (status, body) = use_token(&after, &old_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("\"default\""),
        "names the key: {body}"
    );
    assert_eq!(use_token(&after, &legacy).await.0, StatusCode::UNAUTHORIZED);
    // The server with only the old key refuses the new tokens.
    assert_eq!(
        use_token(&before, &new_token).await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// A task token bound to provider accounts ensures jobs on those only; without the binding,
/// on every one (as before); a binding to an account that is not configured is a 400.
async fn tokens_bound_to_provider_accounts(db: TestDb) {
    let sim = quick_sim().await;
    let second = format!(
        "[providers.other]\nkind = \"databricks\"\nhost = \"{}\"\ntoken = \"dapi-sim-token\"",
        sim.url()
    );
    let url = server(&db, &sim.url(), &second).await;
    let sign = |body: Value| {
        let url = url.clone();
        async move { call(Method::POST, &format!("{url}/v1/tokens"), ADMIN, Some(body)).await }
    };
    let (status, bound) = sign(json!({"dag_id": "etl", "providers": ["other"]})).await;
    assert_eq!(status, StatusCode::OK, "{bound}");
    assert_eq!(bound["claims"]["providers"], json!(["other"]));
    let (_, free) = sign(json!({"dag_id": "etl"})).await;
    let ensure = |token: String, task: &'static str, provider: &'static str| {
        let url = url.clone();
        async move {
            let body = json!({"dag_id": "etl", "run_id": "r1", "task_id": task, "try_number": 1,
                              "provider": provider, "spec": common::spec(task)});
            call(Method::POST, &format!("{url}/v1/jobs"), &token, Some(body)).await
        }
    };
    let bound_token = bound["token"].as_str().unwrap().to_string();
    let (status, body) = ensure(bound_token.clone(), "a", "databricks").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["message"],
        "this task token may ensure jobs on the provider accounts [\"other\"], not \"databricks\""
    );
    let (status, body) = ensure(bound_token, "b", "other").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let free_token = free["token"].as_str().unwrap().to_string();
    for (task, provider) in [("c", "databricks"), ("d", "other")] {
        let (status, body) = ensure(free_token.clone(), task, provider).await;
        assert_eq!(status, StatusCode::OK, "{provider}: {body}");
    }
    for (providers, needle) in [
        (
            json!(["nope"]),
            "\"nope\" is not a configured provider account",
        ),
        (json!([]), "names no provider account"),
    ] {
        let (status, body) = sign(json!({"dag_id": "etl", "providers": providers})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["message"].as_str().unwrap().contains(needle), "{body}");
    }
    let (_, listed) = call(Method::GET, &format!("{url}/v1/tokens"), ADMIN, None).await;
    let shown: Vec<&Value> = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["providers"])
        .collect();
    assert!(shown.contains(&&json!(["other"])), "{listed}");
    assert!(shown.contains(&&Value::Null), "{listed}");
}

/// A token's expiry (and the token list's "live") are judged by the app's clock, not the
/// system's: the server's clock moved an hour on makes a 10-minute token expired.
async fn token_expiry_follows_the_apps_clock(db: TestDb) {
    let sim = quick_sim().await;
    let clock = tether::clock::ManualClock::new(chrono::Utc::now());
    let extra = format!(
        "\n[api]\nadmin_token_sha256 = [\"{}\"]\n",
        tether::api::auth::hash_token(ADMIN)
    );
    let text = common::config_toml(&db, &sim.url(), "2s", &extra);
    let config = tether::config::Config::from_toml(&text, "test").unwrap();
    let app = tether::app::App::open_with_clock(config, std::sync::Arc::new(clock.clone()))
        .await
        .unwrap();
    let url = serve(app).await;
    let (_, token) = issue(&url).await;
    assert_eq!(use_token(&url, &token).await.0, StatusCode::OK);
    clock.advance(std::time::Duration::from_secs(3600));
    let (status, body) = use_token(&url, &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["message"], "the token has expired", "{body}");
    let (_, list) = call(Method::GET, &format!("{url}/v1/tokens"), ADMIN, None).await;
    assert_eq!(
        list["tokens"],
        json!([]),
        "no token is live an hour on: {list}"
    );
}

on_both_backends!(
    revoked_on_one_supervisor_refused_by_both,
    signing_keys_rotate,
    tokens_bound_to_provider_accounts,
    token_expiry_follows_the_apps_clock
);
