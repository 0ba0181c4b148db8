//! The HTTP API over real HTTP, on both backends: every endpoint group, token scoping, request
//! limits, long-poll wait, metrics, and the OpenAPI document.

mod common;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tether::api::{router, ApiState};
use tether::app::App;
use tether_databricks::sim::Simulator;

use common::{app_for, quick_sim, TestDb};

const ADMIN: &str = "admin-token-for-tests-0123456789";

struct Api {
    url: String,
    http: reqwest::Client,
    app: App,
    waits: std::sync::Arc<tether::api::waits::WaitSlots>,
    _sim: Simulator,
}

async fn start(db: &TestDb) -> Api {
    start_with(db, "").await
}

/// As [`start`], with `more` (TOML tables) after the `[api]` table.
async fn start_with(db: &TestDb, more: &str) -> Api {
    let sim = quick_sim().await;
    sim.configure(|c| c.running = Duration::from_secs(2));
    let extra = format!(
        "\n[api]\nadmin_token_sha256 = [\"{}\"]\nsigning_key = \"test-signing-key-0123456789abcdef!\"\nmax_wait = \"10s\"\nmax_body_bytes = 4096\n",
        tether::api::auth::hash_token(ADMIN)
    )
    .replace("[api]", "");
    // The provider table ends the generated config; the [api] table must come after it.
    let app = app_for(db, &sim.url(), "2s", &format!("\n[api]{extra}\n{more}")).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = ApiState::new(app.clone());
    let waits = state.waits.clone();
    let api = router(state);
    tokio::spawn(async move { axum::serve(listener, api).await.unwrap() });
    Api {
        url,
        http: reqwest::Client::new(),
        app,
        waits,
        _sim: sim,
    }
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(method, path, Some(ADMIN), body).await
    }

    async fn task_token(&self, claims: Value) -> String {
        let (status, body) = self.admin(Method::POST, "/v1/tokens", Some(claims)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().unwrap().to_string()
    }
}

fn ensure_body(dag: &str, task: &str, try_number: i64) -> Value {
    json!({"dag_id": dag, "run_id": "r1", "task_id": task, "try_number": try_number,
           "provider": "databricks", "spec": common::spec(task)})
}

async fn health_ready_and_openapi(db: TestDb) {
    let api = start(&db).await;
    assert_eq!(
        api.call(Method::GET, "/healthz", None, None).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    assert_eq!(
        api.call(Method::GET, "/readyz", None, None).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let (status, doc) = api.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/v1/jobs",
        "/v1/jobs/{id}/wait",
        "/v1/state/assets/{asset}/keys/{key}",
        "/v1/tokens",
        "/metrics",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    let (status, body) = api
        .call(Method::GET, "/v1/nothing", Some(ADMIN), None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    // What this deployment is, with the namespace its keys are derived in.
    let (status, info) = api.admin(Method::GET, "/v1/info", None).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["database"], db.backend, "{info}");
    assert_eq!(
        info["key_namespace"]["value"],
        api.app.engine.key_namespace().value.as_str()
    );
    assert_eq!(info["key_namespace"]["source"], "database");
    assert_eq!(info["state_max_value_bytes"], 65_535, "{info}");
    assert!(doc["paths"].get("/v1/info").is_some());
}

async fn every_endpoint_needs_a_valid_token(db: TestDb) {
    let api = start(&db).await;
    for (method, path) in [
        (Method::GET, "/v1/jobs"),
        (Method::GET, "/v1/jobs/1"),
        (Method::GET, "/v1/state/assets/a/keys"),
        (Method::GET, "/metrics"),
        (Method::GET, "/v1/info"),
    ] {
        let (status, body) = api.call(method.clone(), path, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        assert_eq!(body["message"], "missing Authorization: Bearer <token>");
        let (status, body) = api.call(method, path, Some("not-a-token"), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
    }
}

async fn jobs_ensure_wait_events_cancel_list(db: TestDb) {
    let api = start(&db).await;
    let (status, first) = api
        .admin(
            Method::POST,
            "/v1/jobs",
            Some(ensure_body("etl", "load", 1)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["action"], "submitted");
    assert_eq!(first["submitted"], true);
    let id = first["job"]["id"].as_i64().unwrap();
    assert!(first["job"]["handle"]["run_id"].is_i64());

    // The retry of the same task instance reattaches.
    let (_, again) = api
        .admin(
            Method::POST,
            "/v1/jobs",
            Some(ensure_body("etl", "load", 2)),
        )
        .await;
    assert_eq!(
        (again["action"].as_str(), again["submitted"].as_bool()),
        (Some("reattached"), Some(false))
    );

    // Long poll: answers as soon as the state differs from the one the caller knows.
    let stop = tokio_util::sync::CancellationToken::new();
    let sup =
        tokio::spawn(tether::engine::Supervisor::new(api.app.engine.clone()).run(stop.clone()));
    let mut known = "pending".to_string();
    let mut seen = vec![known.clone()];
    while known != "succeeded" {
        let started = Instant::now();
        let (status, w) = api
            .admin(
                Method::GET,
                &format!("/v1/jobs/{id}/wait?state={known}&timeout=10"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{w}");
        assert_eq!(w["changed"], true, "{w}");
        // One poll interval (poll_max 300 ms) plus the wait's own re-read.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the wait took {:?}",
            started.elapsed()
        );
        known = w["job"]["state"].as_str().unwrap().to_string();
        seen.push(known.clone());
    }
    assert!(seen.contains(&"running".to_string()), "{seen:?}");
    // A wait on a finished job returns at once; a wait with nothing to wait for times out.
    let (_, w) = api
        .admin(Method::GET, &format!("/v1/jobs/{id}/wait?timeout=1"), None)
        .await;
    assert_eq!(w["changed"], true);
    let (_, events) = api
        .admin(Method::GET, &format!("/v1/jobs/{id}/events"), None)
        .await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(&kinds[..2], ["intent", "submitted"]);
    assert!(
        kinds.contains(&"reattached") && kinds.contains(&"finished"),
        "{kinds:?}"
    );
    assert_eq!(events["next_after_id"], Value::Null, "{events}");
    // A page at a time: one event per page, in the same order.
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let (status, page) = api
            .admin(
                Method::GET,
                &format!("/v1/jobs/{id}/events?limit=1&after_id={after}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        paged.push(page["events"][0]["kind"].as_str().unwrap().to_string());
        match page["next_after_id"].as_i64() {
            Some(next) => after = next,
            None => break,
        }
    }
    assert_eq!(paged, kinds);
    let (status, body) = api
        .admin(Method::GET, &format!("/v1/jobs/{id}/events?limit=0"), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("limit 0"),
        "{body}"
    );

    // Cancel with a reason; a running job gets cancelled.
    let (_, second) = api
        .admin(
            Method::POST,
            "/v1/jobs",
            Some(ensure_body("etl", "other", 1)),
        )
        .await;
    let id2 = second["job"]["id"].as_i64().unwrap();
    let (status, body) = api
        .admin(
            Method::POST,
            &format!("/v1/jobs/{id2}/cancel"),
            Some(json!({"reason": "bad data"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["cancel_reason"], "bad data");
    let (_, w) = api
        .admin(
            Method::GET,
            &format!("/v1/jobs/{id2}/wait?state=pending&timeout=10"),
            None,
        )
        .await;
    let (_, w) = if w["job"]["state"] == "cancelled" {
        (StatusCode::OK, w)
    } else {
        api.admin(
            Method::GET,
            &format!(
                "/v1/jobs/{id2}/wait?state={}&timeout=10",
                w["job"]["state"].as_str().unwrap()
            ),
            None,
        )
        .await
    };
    assert_eq!(w["job"]["state"], "cancelled", "{w}");

    // The reason is optional (recorded as empty), as on the command line; a long one is
    // refused with its length.
    let (_, third) = api
        .admin(
            Method::POST,
            "/v1/jobs",
            Some(ensure_body("ops", "third", 1)),
        )
        .await;
    let id3 = third["job"]["id"].as_i64().unwrap();
    let cancel3 = format!("/v1/jobs/{id3}/cancel");
    let (status, body) = api
        .admin(
            Method::POST,
            &cancel3,
            Some(json!({"reason": "x".repeat(1001)})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("1001 bytes"),
        "{body}"
    );
    let (status, body) = api
        .admin(Method::POST, &cancel3, Some(json!({"reason": "a\u{0}b"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = api.admin(Method::POST, &cancel3, Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["cancel_reason"], "", "{body}");
    stop.cancel();
    sup.await.unwrap();

    // List with filters and paging.
    let (_, page) = api
        .admin(Method::GET, "/v1/jobs?dag_id=etl&limit=1", None)
        .await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1);
    let next = page["next_before_id"].as_i64().expect("a second page");
    let (_, page2) = api
        .admin(
            Method::GET,
            &format!("/v1/jobs?dag_id=etl&limit=1&before_id={next}"),
            None,
        )
        .await;
    assert_eq!(page2["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(page2["next_before_id"], Value::Null);
    let (_, only) = api
        .admin(Method::GET, "/v1/jobs?state=cancelled&dag_id=etl", None)
        .await;
    assert_eq!(only["jobs"].as_array().unwrap().len(), 1);
    let (status, body) = api
        .admin(Method::GET, "/v1/jobs?state=exploded", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Found by tests/hostile_api.rs: PostgreSQL text cannot hold a NUL byte (it was a 500).
    let (status, body) = api.admin(Method::GET, "/v1/jobs?provider=%00", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().contains("NUL"), "{body}");
    let (status, body) = api.admin(Method::PUT, "/v1/jobs", Some(json!({}))).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert!(body["message"].as_str().unwrap().contains("PUT"), "{body}");

    // Bad input names what is wrong; nothing is recorded.
    let mut bad = ensure_body("etl", "bad task", 1);
    let (status, body) = api.admin(Method::POST, "/v1/jobs", Some(bad.clone())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("task_id"),
        "{body}"
    );
    bad = ensure_body("etl", "t", 1);
    bad["spec"] = json!({"run_name": "no tasks"});
    let (status, body) = api.admin(Method::POST, "/v1/jobs", Some(bad)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_spec")),
        "{body}"
    );
    let (status, _) = api.admin(Method::GET, "/v1/jobs/999999", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn state_endpoints_for_three_scopes(db: TestDb) {
    let api = start(&db).await;
    let ti = "/v1/state/task-instances/etl/r1/load/-1";
    let task = "/v1/state/tasks/etl/load";
    let asset = "/v1/state/assets/s3%3A%2F%2Flake%2Forders";
    for base in [ti, task, asset] {
        let (status, w) = api
            .admin(
                Method::PUT,
                &format!("{base}/keys/cursor"),
                Some(json!({"value": {"offset": 1}, "if_version": 0})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{base}: {w}");
        assert_eq!(w["version"], 1);
        let (status, got) = api
            .admin(Method::GET, &format!("{base}/keys/cursor"), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(got["value"], json!({"offset": 1}));
        let (status, c) = api
            .admin(
                Method::PUT,
                &format!("{base}/keys/cursor"),
                Some(json!({"value": 2, "if_version": 0})),
            )
            .await;
        assert_eq!(
            (status, c["error"].as_str()),
            (StatusCode::CONFLICT, Some("version_conflict")),
            "{c}"
        );
        let (_, list) = api.admin(Method::GET, &format!("{base}/keys"), None).await;
        assert_eq!(list["entries"].as_array().unwrap().len(), 1);
        let (status, _) = api
            .admin(
                Method::DELETE,
                &format!("{base}/keys/cursor?if_version=7"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        let (status, _) = api
            .admin(
                Method::DELETE,
                &format!("{base}/keys/cursor?if_version=1"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = api
            .admin(Method::GET, &format!("{base}/keys/cursor"), None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    // The asset key really is the URI.
    api.admin(
        Method::PUT,
        &format!("{asset}/keys/wm"),
        Some(json!({"value": "2026-11-24"})),
    )
    .await;
    let e = api
        .app
        .state
        .get(&tether::state::Scope::asset("s3://lake/orders"), "wm")
        .await
        .unwrap();
    assert_eq!(e.unwrap().value, json!("2026-11-24"));
    // Retention, expiry as in Airflow's shape.
    let (_, w) = api
        .admin(
            Method::PUT,
            &format!("{ti}/keys/short"),
            Some(json!({"value": 1, "retention": "1h"})),
        )
        .await;
    assert!(w["expires_at"].is_string(), "{w}");
    let (status, body) = api
        .admin(
            Method::PUT,
            &format!("{ti}/keys/short"),
            Some(json!({"value": 1, "retention": "soon"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("retention"),
        "{body}"
    );
    // Clear one map index, all map indices, and forget a run.
    for m in [0, 1, 2] {
        api.admin(
            Method::PUT,
            &format!("/v1/state/task-instances/etl/r1/map/{m}/keys/k"),
            Some(json!({"value": m})),
        )
        .await;
    }
    let (_, r) = api
        .admin(
            Method::DELETE,
            "/v1/state/task-instances/etl/r1/map/0",
            None,
        )
        .await;
    assert_eq!(r["removed"], 1);
    let (_, r) = api
        .admin(
            Method::DELETE,
            "/v1/state/task-instances/etl/r1/map/-1?all_map_indices=true",
            None,
        )
        .await;
    assert_eq!(r["removed"], 2);
    let (_, r) = api
        .admin(Method::DELETE, "/v1/state/runs/etl/r1", None)
        .await;
    assert_eq!(r["removed"], 1, "the `short` key of etl/r1/load");
    let (_, r) = api.admin(Method::DELETE, asset, None).await;
    assert_eq!(r["removed"], 1);
    api.admin(
        Method::PUT,
        &format!("{task}/keys/wm"),
        Some(json!({"value": 7})),
    )
    .await;
    let (_, r) = api.admin(Method::DELETE, task, None).await;
    assert_eq!(r["removed"], 1);
}

/// A scope holds at most `state.max_keys_per_scope` live keys: a new key beyond it is a 409
/// `quota_exceeded` naming the limit; rewrites, expired keys and the engine's own job keys
/// are not held against it. Key lists come a page at a time.
async fn key_quota_and_paged_key_lists(db: TestDb) {
    let api = start_with(&db, "[state]\nmax_keys_per_scope = 5").await;
    let token = api
        .task_token(json!({"dag_id": "etl", "run_id": "r1", "task_id": "t"}))
        .await;
    let base = "/v1/state/task-instances/etl/r1/t/-1";
    let put = |key: String, body: Value| {
        let api = &api;
        let token = token.clone();
        async move {
            api.call(
                Method::PUT,
                &format!("{base}/keys/{key}"),
                Some(&token),
                Some(body),
            )
            .await
        }
    };
    for i in 0..5 {
        let (status, body) = put(format!("k{i}"), json!({"value": i})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = put("k5".into(), json!({"value": 5})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "quota_exceeded", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("holds 5 keys") && message.contains("state.max_keys_per_scope"),
        "{body}"
    );
    // A must-not-exist write of a new key is refused by the quota too, of a live key by its
    // version; a rewrite of a live key passes.
    let (_, body) = put("k5".into(), json!({"value": 5, "if_version": 0})).await;
    assert_eq!(body["error"], "quota_exceeded", "{body}");
    let (_, body) = put("k4".into(), json!({"value": 4, "if_version": 0})).await;
    assert_eq!(body["error"], "version_conflict", "{body}");
    let (status, body) = put("k4".into(), json!({"value": 44})).await;
    assert_eq!(
        (status, body["version"].as_i64()),
        (StatusCode::OK, Some(2))
    );
    // Room again after a delete; an expired key holds none.
    let (status, _) = api
        .call(
            Method::DELETE,
            &format!("{base}/keys/k0"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = put("k0".into(), json!({"value": 0, "retention": "1s"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, body) = put("k5".into(), json!({"value": 5})).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the expired k0 holds no place: {body}"
    );
    // Other scopes have their own room.
    let (status, body) = api
        .call(
            Method::PUT,
            "/v1/state/task-instances/etl/r1/t/0/keys/k0",
            Some(&api.task_token(json!({"dag_id": "etl"})).await),
            Some(json!({"value": 0})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A full scope does not stop the engine: ensuring a job writes its key beyond the quota.
    let (status, body) = api
        .call(
            Method::POST,
            "/v1/jobs",
            Some(&token),
            Some(ensure_body("etl", "t", 1)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The list: by key, a page at a time; the pages together are the whole list.
    let (status, whole) = api
        .call(Method::GET, &format!("{base}/keys"), Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{whole}");
    assert_eq!(whole["next_after"], Value::Null);
    let keys: Vec<String> = whole["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys.len(), 6, "five of ours and the job's: {keys:?}");
    assert!(
        keys.iter().any(|k| k.starts_with("tether.job.")),
        "{keys:?}"
    );
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let query = match &after {
            Some(a) => format!("?limit=2&after={}", urlencode(a)),
            None => "?limit=2".to_string(),
        };
        let (status, page) = api
            .call(
                Method::GET,
                &format!("{base}/keys{query}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let entries = page["entries"].as_array().unwrap();
        assert!(entries.len() <= 2, "{page}");
        paged.extend(
            entries
                .iter()
                .map(|e| e["key"].as_str().unwrap().to_string()),
        );
        match page["next_after"].as_str() {
            Some(a) => after = Some(a.to_string()),
            None => break,
        }
    }
    assert_eq!(paged, keys);
    for (bad, names) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("after=", "after"),
        ("cursor=k1", "cursor"),
    ] {
        let (status, body) = api
            .call(
                Method::GET,
                &format!("{base}/keys?{bad}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(names),
            "{bad}: {body}"
        );
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn limits_are_400_or_413_naming_the_field(db: TestDb) {
    let api = start(&db).await;
    let base = "/v1/state/assets/a/keys";
    let (status, body) = api
        .admin(
            Method::PUT,
            &format!("{base}/k"),
            Some(json!({"value": "x".repeat(5000)})),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")),
        "{body}"
    );
    let (status, body) = api
        .admin(
            Method::PUT,
            &format!("{base}/k"),
            Some(json!({"value": null})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().contains("null"), "{body}");
    let long_key = "k".repeat(513);
    let (status, body) = api
        .admin(
            Method::PUT,
            &format!("{base}/{long_key}"),
            Some(json!({"value": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().starts_with("invalid key"),
        "{body}"
    );
    let (status, body) = api
        .admin(Method::PUT, &format!("{base}/k"), Some(json!({"valeu": 1})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("valeu"),
        "{body}"
    );
    let (status, body) = api
        .admin(
            Method::PUT,
            "/v1/state/task-instances/etl/r1/t/x/keys/k",
            Some(json!({"value": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = api
        .admin(
            Method::PUT,
            "/v1/state/task-instances/bad%20dag/r1/t/-1/keys/k",
            Some(json!({"value": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = api
        .admin(
            Method::PUT,
            &format!("{base}/k"),
            Some(json!({"value": 1, "retention": "99999999999999d"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("longer than the longest retention, 36500d (100 years)"),
        "{body}"
    );
    // Nothing was written by any of these.
    let (_, list) = api.admin(Method::GET, base, None).await;
    assert_eq!(list["entries"], json!([]));
}

async fn task_tokens_are_scoped(db: TestDb) {
    let api = start(&db).await;
    let token = api
        .task_token(
            json!({"dag_id": "etl", "run_id": "r1", "task_id": "load", "assets": ["orders"]}),
        )
        .await;
    let t = Some(token.as_str());
    // Its own task instance, its task's cross-run state, and the assets it names.
    for path in [
        "/v1/state/task-instances/etl/r1/load/-1/keys/k",
        "/v1/state/task-instances/etl/r1/load/3/keys/k",
        "/v1/state/tasks/etl/load/keys/k",
        "/v1/state/assets/orders/keys/k",
    ] {
        let (status, body) = api
            .call(Method::PUT, path, t, Some(json!({"value": 1})))
            .await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    // Anything else: 403 saying which scope it lacks.
    for (path, lacks) in [
        (
            "/v1/state/task-instances/other/r1/load/-1/keys/k",
            "task instance other/r1/load",
        ),
        (
            "/v1/state/task-instances/etl/r2/load/-1/keys/k",
            "task instance etl/r2/load",
        ),
        (
            "/v1/state/task-instances/etl/r1/extract/-1/keys/k",
            "task instance etl/r1/extract",
        ),
        ("/v1/state/tasks/etl/extract/keys/k", "task etl/extract"),
        ("/v1/state/tasks/other/load/keys/k", "task other/load"),
        ("/v1/state/assets/customers/keys/k", "asset \"customers\""),
    ] {
        let (status, body) = api.call(Method::GET, path, t, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(lacks), "{path}: {message}");
    }
    // Jobs: its own, yes; another DAG's, no; admin-only operations, no.
    let (status, own) = api
        .call(
            Method::POST,
            "/v1/jobs",
            t,
            Some(ensure_body("etl", "load", 1)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{own}");
    let (_, other) = api
        .admin(
            Method::POST,
            "/v1/jobs",
            Some(ensure_body("other", "load", 1)),
        )
        .await;
    let other_id = other["job"]["id"].as_i64().unwrap();
    let (status, _) = api
        .call(Method::GET, &format!("/v1/jobs/{other_id}"), t, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api
        .call(
            Method::POST,
            &format!("/v1/jobs/{other_id}/cancel"),
            t,
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api
        .call(
            Method::POST,
            "/v1/jobs",
            t,
            Some(ensure_body("other", "load", 1)),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, page) = api.call(Method::GET, "/v1/jobs", t, None).await;
    let dags: Vec<&str> = page["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["dag_id"].as_str().unwrap())
        .collect();
    assert_eq!(dags, ["etl"], "a task token lists only its own jobs");
    let (status, _) = api
        .call(Method::GET, "/v1/jobs?dag_id=other", t, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (method, path, body) in [
        (Method::DELETE, "/v1/state/runs/etl/r1", None),
        (Method::POST, "/v1/tokens", Some(json!({"dag_id": "etl"}))),
    ] {
        let (status, body) = api.call(method, path, t, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("admin"),
            "{body}"
        );
    }
    // Expired tokens are refused.
    let (expired, _) =
        tether::api::auth::TokenKeys::new("default", b"test-signing-key-0123456789abcdef!").sign(
            &tether::api::auth::TaskClaims {
                jti: String::new(),
                dag_id: "etl".into(),
                run_id: None,
                task_id: None,
                map_index: None,
                assets: vec![],
                providers: None,
                nbf: None,
                exp: 1,
            },
        );
    let (status, body) = api
        .call(Method::GET, "/v1/jobs", Some(&expired), None)
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("the token has expired"))
    );
}

/// `POST /v1/jobs/wait`: one request for many jobs, answered when any of them changes; jobs it
/// cannot wait for are named in `errors`; bad lists are a 400.
async fn waiting_for_many_jobs_at_once(db: TestDb) {
    let api = start(&db).await;
    let mut ids = Vec::new();
    for task in ["a", "b", "c"] {
        let (status, body) = api
            .admin(Method::POST, "/v1/jobs", Some(ensure_body("etl", task, 1)))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        ids.push(body["job"]["id"].as_i64().unwrap());
    }
    let wait = |jobs: Value, timeout: u64| {
        api.admin(
            Method::POST,
            "/v1/jobs/wait",
            Some(json!({"jobs": jobs, "timeout": timeout})),
        )
    };
    // Nothing changes while no supervisor polls: the answer comes at the timeout.
    let started = Instant::now();
    let (status, body) = wait(
        json!([{"id": ids[0], "state": "pending"}, {"id": ids[1], "state": "pending"},
               {"id": ids[2]}]),
        2,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"changed": [], "errors": []}));
    assert!(started.elapsed() >= Duration::from_millis(1900));
    // A state the caller has wrong is a change at once; a missing job is an error at once.
    let started = Instant::now();
    let (_, body) = wait(
        json!([{"id": ids[0], "state": "running"}, {"id": 999_999, "state": "pending"}]),
        10,
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(body["changed"][0]["id"], ids[0], "{body}");
    assert_eq!(
        body["errors"],
        json!([{"id": 999_999, "error": "not_found", "message": "job 999999 not found"}])
    );
    // A task token of another DAG may not wait for these.
    let other = api.task_token(json!({"dag_id": "other"})).await;
    let (status, body) = api
        .call(
            Method::POST,
            "/v1/jobs/wait",
            Some(&other),
            Some(json!({"jobs": [{"id": ids[1], "state": "pending"}], "timeout": 5})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["changed"], json!([]));
    assert_eq!(body["errors"][0]["error"], "forbidden", "{body}");
    // Bad lists.
    for (jobs, needle) in [
        (json!([]), "1 to 1000 jobs"),
        (json!([{"id": ids[0]}, {"id": ids[0]}]), "listed twice"),
        (json!([{"id": ids[0], "state": "done"}]), "not a job state"),
        (json!([{"job": ids[0]}]), "job"),
    ] {
        let (status, body) = wait(jobs, 1).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains(needle),
            "{needle}: {body}"
        );
    }
    // A supervisor moves them on: the wait answers with the ones that changed.
    let stop = tokio_util::sync::CancellationToken::new();
    let sup =
        tokio::spawn(tether::engine::Supervisor::new(api.app.engine.clone()).run(stop.clone()));
    let started = Instant::now();
    let (status, body) = wait(
        Value::Array(
            ids.iter()
                .map(|id| json!({"id": id, "state": "pending"}))
                .collect(),
        ),
        10,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let changed = body["changed"].as_array().unwrap();
    assert!(!changed.is_empty(), "{body}");
    assert!(changed.iter().all(|j| j["state"] != "pending"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(9), "{body}");
    stop.cancel();
    sup.await.unwrap();
}

/// The `Authorization` header and task tokens as the RFCs read them: the scheme's name in any
/// case (RFC 9110 §11.1), one header only, and `nbf` honoured (RFC 7519 §4.1.5).
async fn tokens_are_read_as_the_rfcs_say(db: TestDb) {
    let api = start(&db).await;
    let with = |values: &[&str]| {
        let mut req = api.http.get(format!("{}/v1/jobs", api.url));
        for v in values {
            req = req.header(reqwest::header::AUTHORIZATION, *v);
        }
        req.send()
    };
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let resp = with(&[&format!("{scheme} {ADMIN}")]).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "scheme {scheme}");
    }
    let resp = with(&[&format!("bearer   {ADMIN}")]).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "spaces after the scheme");
    for refused in [
        ADMIN.to_string(),
        format!("Basic {ADMIN}"),
        "Bearer ".into(),
    ] {
        let resp = with(&[&refused]).await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{refused:?}");
    }
    let resp = with(&[&format!("Bearer {ADMIN}"), "Bearer someone-else"])
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["message"], "more than one Authorization header: send one",
        "{body}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let signed = |nbf: u64| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &json!({"dag_id": "etl", "assets": [], "nbf": nbf, "exp": now + 7200}),
            &jsonwebtoken::EncodingKey::from_secret(b"test-signing-key-0123456789abcdef!"),
        )
        .unwrap()
    };
    let (status, body) = api
        .call(Method::GET, "/v1/jobs", Some(&signed(now + 3600)), None)
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("the token is not valid yet (its nbf is ahead)")
        )
    );
    let (status, body) = api
        .call(Method::GET, "/v1/jobs", Some(&signed(now - 60)), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn metrics_parse_and_show_the_figures(db: TestDb) {
    let api = start(&db).await;
    let (_, first) = api
        .admin(
            Method::POST,
            "/v1/jobs",
            Some(ensure_body("etl", "load", 1)),
        )
        .await;
    let id = first["job"]["id"].as_i64().unwrap();
    api.admin(
        Method::PUT,
        "/v1/state/assets/a/keys/k",
        Some(json!({"value": 1})),
    )
    .await;
    let stop = tokio_util::sync::CancellationToken::new();
    let sup =
        tokio::spawn(tether::engine::Supervisor::new(api.app.engine.clone()).run(stop.clone()));
    api.admin(
        Method::GET,
        &format!("/v1/jobs/{id}/wait?state=pending&timeout=10"),
        None,
    )
    .await;
    stop.cancel();
    sup.await.unwrap();
    let resp = api
        .http
        .get(format!("{}/metrics", api.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
    let names: std::collections::BTreeSet<&str> =
        scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    for family in [
        "tether_jobs",
        "tether_polls_total",
        "tether_leases_total",
        "tether_state_operations_total",
        "tether_state_operation_seconds",
        "tether_http_request_seconds",
        "tether_rate_limit_waits",
    ] {
        assert!(
            names.contains(family),
            "{family} missing from /metrics:\n{text}"
        );
    }
    let jobs = scrape
        .samples
        .iter()
        .find(|s| s.metric == "tether_jobs" && s.labels.get("provider") == Some("databricks"))
        .unwrap();
    assert!(matches!(jobs.value, prometheus_parse::Value::Gauge(v) if v >= 1.0));
}

async fn unreachable_database_is_503(db: TestDb) {
    let api = start(&db).await;
    api.app.db.close().await;
    let (status, body) = api
        .admin(Method::GET, "/v1/state/assets/a/keys", None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "unavailable");
    let (status, _) = api.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

on_both_backends!(
    health_ready_and_openapi,
    every_endpoint_needs_a_valid_token,
    jobs_ensure_wait_events_cancel_list,
    state_endpoints_for_three_scopes,
    limits_are_400_or_413_naming_the_field,
    key_quota_and_paged_key_lists,
    task_tokens_are_scoped,
    tokens_are_read_as_the_rfcs_say,
    waiting_for_many_jobs_at_once,
    metrics_parse_and_show_the_figures,
    unreachable_database_is_503,
    waiters_hear_other_processes_changes,
    long_polls_in_flight_are_capped,
);

/// At most `api.max_waits` long polls at once, `api.max_waits_per_token` with one token:
/// beyond either, 429 `too_many_waits` with `Retry-After`, naming the setting; a slot is free
/// again once its wait answers, or its client goes away.
async fn long_polls_in_flight_are_capped(db: TestDb) {
    // (Keys before any table header land in `[api]`.)
    let api = start_with(&db, "max_waits = 3\nmax_waits_per_token = 2").await;
    // No supervisor runs here: the job stays pending, and a wait on "pending" holds.
    let (_, job) = api
        .admin(
            Method::POST,
            "/v1/jobs",
            Some(ensure_body("etl", "capped", 1)),
        )
        .await;
    let id = job["job"]["id"].as_i64().unwrap();
    let one = api
        .task_token(json!({"dag_id": "etl", "run_id": "r1", "task_id": "capped"}))
        .await;
    let other = api.task_token(json!({"dag_id": "etl"})).await;
    let open = |token: String, timeout: u64| {
        let (http, url) = (api.http.clone(), api.url.clone());
        tokio::spawn(async move {
            let answer = http
                .get(format!(
                    "{url}/v1/jobs/{id}/wait?state=pending&timeout={timeout}"
                ))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            (
                answer.status(),
                answer.headers().get("retry-after").cloned(),
            )
        })
    };
    let held_a = open(one.clone(), 4);
    let held_b = open(one.clone(), 30);
    wait_until_waits(&api, 2).await;
    let (status, retry) = open(one.clone(), 4).await.unwrap();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry.unwrap(), "2");
    let (status, body) = api
        .call(
            Method::GET,
            &format!("/v1/jobs/{id}/wait?state=pending&timeout=4"),
            Some(&one),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "too_many_waits");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("api.max_waits_per_token"),
        "{body}"
    );
    // Another token still has room, up to the total.
    let held_c = open(other.clone(), 4);
    wait_until_waits(&api, 3).await;
    let (status, body) = api
        .call(
            Method::POST,
            "/v1/jobs/wait",
            Some(ADMIN),
            Some(json!({"jobs": [{"id": id, "state": "pending"}], "timeout": 4})),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("api.max_waits)"),
        "{body}"
    );
    // A wait that answers (its timeout) gives its slot back.
    assert_eq!(held_a.await.unwrap().0, StatusCode::OK);
    assert_eq!(held_c.await.unwrap().0, StatusCode::OK);
    wait_until_waits(&api, 1).await;
    let held_d = open(one.clone(), 1);
    assert_eq!(held_d.await.unwrap().0, StatusCode::OK);
    // So does one whose client went away.
    held_b.abort();
    wait_until_waits(&api, 0).await;
}

/// Waits (up to 10 s) until exactly `n` long polls are in flight on `api`'s server.
async fn wait_until_waits(api: &Api, n: usize) {
    let start = Instant::now();
    loop {
        let now = api.waits.in_flight();
        if now == n {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{now} waits in flight, not {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A change made by another process reaches `/v1/jobs/{id}/wait` through the relay: on
/// PostgreSQL `LISTEN/NOTIFY`, on SQLite the change log read when `PRAGMA data_version` moves.
/// With the relay running, a waiter re-reads its job only every 30 s, so an answer within 3 s
/// of the change can only come from the relay.
async fn waiters_hear_other_processes_changes(db: TestDb) {
    use tether::engine::changes::{relay, watch_sqlite, RELAYED_REREAD};
    use tether::engine::{EnsureRequest, Supervisor};
    let api = start(&db).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let changes = api.app.engine.changes().clone();
    if db.backend == "postgres" {
        tokio::spawn(relay(db.url.expose().to_string(), changes, stop.clone()));
    } else {
        tokio::spawn(watch_sqlite(api.app.db.clone(), changes, stop.clone()));
    }
    let start_wait = Instant::now();
    while api.app.engine.changes().reread_every() != RELAYED_REREAD {
        assert!(
            start_wait.elapsed() < Duration::from_secs(10),
            "relay never connected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // "Another process": its own engine on the same database, with its own supervisor.
    let other = app_for(&db, &api._sim.url(), "2s", "").await;
    let job = other
        .engine
        .ensure(&EnsureRequest {
            task_instance: tether::state::TaskInstanceId::new("etl", "r1", "notify", -1),
            try_number: 1,
            name: "main".into(),
            provider: "databricks".into(),
            spec: common::spec("notify"),
        })
        .await
        .unwrap()
        .job;
    let waiter = {
        let (http, url) = (api.http.clone(), api.url.clone());
        tokio::spawn(async move {
            let answer: Value = http
                .get(format!(
                    "{url}/v1/jobs/{}/wait?state=pending&timeout=9",
                    job.id
                ))
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (answer, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let supervisor = tokio::spawn(Supervisor::new(other.engine.clone()).run(stop.clone()));
    // The other process records the change (pending -> running) within a second or so.
    let changed_at = loop {
        let j = other.engine.jobs().get(job.id).await.unwrap().unwrap();
        if j.state != tether_provider::JobState::Pending {
            break Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (answer, answered_at) = waiter.await.unwrap();
    assert_eq!(answer["changed"], true, "{answer}");
    let lag = answered_at.saturating_duration_since(changed_at);
    assert!(
        lag < Duration::from_secs(3),
        "the waiter answered {lag:?} after the change: not woken by NOTIFY"
    );
    stop.cancel();
    let _ = supervisor.await;
}
