//! Hostile HTTP requests (proptest), the API's side of fuzzing: every route with generated
//! path segments (empty, huge, unicode, percent-escapes, `..`, numbers out of range), query
//! strings, bodies (the route's own shape with fields of the wrong type, missing or unknown;
//! JSON truncated at a random byte; bytes that are not JSON; bodies over the size limit) and
//! tokens (the admin's, none, garbage); the many-jobs wait, retentions past the limit, paging
//! cursors of every list, a scope's key quota and the cap on long polls among them. Against a live server on each backend, the API never answers 5xx, and every refusal
//! is a 4xx whose JSON body names what is wrong.

mod common;

use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{json, Value};
use tether::api::{router, ApiState};

use common::{app_for, quick_sim, TestDb};

const ADMIN: &str = "admin-token-for-hostile-tests-0123";

/// One runtime, a Databricks simulator, and a live API per backend (SQLite; PostgreSQL when
/// `TETHER_TEST_POSTGRES_URL` is set), shared by every case.
struct World {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    servers: Vec<(String, &'static str)>,
    _keep: Vec<Box<dyn std::any::Any + Send + Sync>>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (servers, keep) = rt.block_on(async {
            let mut keep: Vec<Box<dyn std::any::Any + Send + Sync>> = Vec::new();
            let sim = quick_sim().await;
            let mut dbs = vec![TestDb::sqlite().await];
            if let Some(pg) = TestDb::postgres("hostile_api").await {
                dbs.push(pg);
            }
            let extra = format!(
                "\n[api]\nadmin_token_sha256 = [\"{}\"]\nsigning_key = \"hostile-signing-key-0123456789abcdef\"\nmax_wait = \"1s\"\nmax_body_bytes = 4096\nmax_waits = 2\nmax_waits_per_token = 1\n[state]\nmax_keys_per_scope = 3\n",
                tether::api::auth::hash_token(ADMIN)
            );
            let mut servers = Vec::new();
            for db in dbs {
                let app = app_for(&db, &sim.url(), "2s", &extra).await;
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let url = format!("http://{}", listener.local_addr().unwrap());
                let api = router(ApiState::new(app));
                tokio::spawn(async move { axum::serve(listener, api).await.unwrap() });
                servers.push((url, db.backend));
                keep.push(Box::new(db));
            }
            keep.push(Box::new(sim));
            (servers, keep)
        });
        World {
            rt,
            http: reqwest::Client::new(),
            servers,
            _keep: keep,
        }
    })
}

/// A path segment: plausible ids, numbers, and hostile text, percent-encoded as a client
/// would send it (or raw, when it is already valid in a path).
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_.-]{1,20}",
        Just(String::new()),
        Just("..".to_string()),
        Just("-1".to_string()),
        Just("99999999999999999999999".to_string()),
        Just("1e3".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "\\PC{1,30}",
        "[a-z]{300,600}",
        Just("%00".to_string()),
        Just("%zz".to_string()),
        Just("tether.job.main".to_string()),
    ]
    .prop_map(|s| {
        if s.starts_with('%') {
            s
        } else {
            url::form_urlencoded::byte_serialize(s.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        }
    })
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A route's own body shape, each field kept, dropped, or replaced by any JSON value, and
/// sometimes an unknown field.
fn shaped(fields: Vec<(&'static str, Value)>) -> impl Strategy<Value = Value> {
    let n = fields.len();
    (
        prop::collection::vec((0u8..4, any_json()), n),
        prop::option::of(("[a-z]{1,8}", any_json())),
    )
        .prop_map(move |(choices, unknown)| {
            let mut body = serde_json::Map::new();
            for ((name, good), (choice, other)) in fields.iter().zip(choices) {
                match choice {
                    0 | 1 => {
                        body.insert(name.to_string(), good.clone());
                    }
                    2 => {}
                    _ => {
                        body.insert(name.to_string(), other);
                    }
                }
            }
            if let Some((k, v)) = unknown {
                body.insert(k, v);
            }
            Value::Object(body)
        })
}

/// A body: the route's shape (mangled), any JSON, truncated JSON, bytes that are not JSON,
/// or more than the 4 KiB limit.
fn body(fields: Vec<(&'static str, Value)>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => shaped(fields.clone()).prop_map(|v| v.to_string().into_bytes()),
        1 => any_json().prop_map(|v| v.to_string().into_bytes()),
        1 => (shaped(fields), any::<prop::sample::Index>()).prop_map(|(v, cut)| {
            let text = v.to_string().into_bytes();
            let at = cut.index(text.len().max(1));
            text[..at].to_vec()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => (5000usize..20_000).prop_map(|n| format!("{{\"value\": \"{}\"}}", "x".repeat(n)).into_bytes()),
    ]
}

fn ensure_fields() -> Vec<(&'static str, Value)> {
    vec![
        ("dag_id", json!("etl")),
        ("run_id", json!("r1")),
        ("task_id", json!("load")),
        ("map_index", json!(-1)),
        ("try_number", json!(1)),
        ("name", json!("main")),
        ("provider", json!("databricks")),
        (
            "spec",
            json!({"run_name": "x", "tasks": [{"task_key": "t"}]}),
        ),
    ]
}

fn put_fields() -> Vec<(&'static str, Value)> {
    vec![
        ("value", json!({"watermark": 42})),
        ("retention", json!("30d")),
        ("if_version", json!(0)),
    ]
}

fn token_fields() -> Vec<(&'static str, Value)> {
    vec![
        ("dag_id", json!("etl")),
        ("run_id", json!("r1")),
        ("task_id", json!("load")),
        ("map_index", json!(-1)),
        ("ttl_seconds", json!(3600)),
        ("assets", json!(["orders"])),
    ]
}

/// A request: method, path (with query), body, and the token.
#[derive(Debug, Clone)]
struct Request {
    method: &'static str,
    path: String,
    body: Option<Vec<u8>>,
    token: Option<String>,
}

fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        ("[a-z_]{1,16}", segment()).prop_map(|(k, v)| format!("?{k}={v}")),
        prop::sample::select(vec![
            "?limit=-1",
            "?limit=abc",
            "?limit=100000000000",
            "?before_id=x",
            "?before_id=-5",
            "?state=bogus",
            "?state=running",
            "?if_version=abc",
            "?if_version=-1",
            "?all_map_indices=maybe",
            "?after=2",
            "?after=",
            "?after=%00",
            "?after=%FF",
            "?after=1.x",
            "?after_id=x",
            "?after_id=-9223372036854775808",
            "?limit=0",
            "?limit=1001",
            "?limit=2&after=k",
            "?timeout=abc",
            "?timeout=100000s",
            "?dag_id=&run_id=",
            "?provider=%00",
        ])
        .prop_map(str::to_string),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    let seg = segment;
    let ti = (seg(), seg(), seg(), seg())
        .prop_map(|(d, r, t, m)| format!("/v1/state/task-instances/{d}/{r}/{t}/{m}"));
    let task = (seg(), seg()).prop_map(|(d, t)| format!("/v1/state/tasks/{d}/{t}"));
    let asset = seg().prop_map(|a| format!("/v1/state/assets/{a}"));
    let scope = prop_oneof![ti, task, asset];
    let token = prop_oneof![
        6 => Just(Some(ADMIN.to_string())),
        1 => Just(None),
        1 => "\\PC{0,40}".prop_map(Some),
        1 => Just(Some("eyJhbGciOiJIUzI1NiJ9.e30.x".to_string())),
    ];
    let shape = prop_oneof![
        (body(ensure_fields()), query()).prop_map(|(b, q)| (
            "POST",
            format!("/v1/jobs{q}"),
            Some(b)
        )),
        query().prop_map(|q| ("GET", format!("/v1/jobs{q}"), None)),
        (seg(), query()).prop_map(|(id, q)| ("GET", format!("/v1/jobs/{id}{q}"), None)),
        (seg(), query()).prop_map(|(id, q)| ("GET", format!("/v1/jobs/{id}/wait{q}"), None)),
        body(vec![
            ("jobs", json!([{"id": 1, "state": "running"}, {"id": 2}])),
            ("timeout", json!(1)),
        ])
        .prop_map(|b| ("POST", "/v1/jobs/wait".to_string(), Some(b))),
        (seg(), query()).prop_map(|(id, q)| ("GET", format!("/v1/jobs/{id}/events{q}"), None)),
        query().prop_map(|q| ("GET", format!("/v1/tokens{q}"), None)),
        (seg(), body(vec![("reason", json!("because\u{0}"))])).prop_map(|(id, b)| (
            "POST",
            format!("/v1/jobs/{id}/cancel"),
            Some(b)
        )),
        (scope.clone(), seg(), body(put_fields())).prop_map(|(s, k, b)| (
            "PUT",
            format!("{s}/keys/{k}"),
            Some(b)
        )),
        (
            scope.clone(),
            seg(),
            body(vec![
                ("value", json!(1)),
                ("retention", json!("99999999999999d"))
            ])
        )
            .prop_map(|(s, k, b)| ("PUT", format!("{s}/keys/{k}"), Some(b))),
        (scope.clone(), seg()).prop_map(|(s, k)| ("GET", format!("{s}/keys/{k}"), None)),
        (scope.clone(), seg(), query()).prop_map(|(s, k, q)| (
            "DELETE",
            format!("{s}/keys/{k}{q}"),
            None
        )),
        (scope.clone(), query()).prop_map(|(s, q)| ("GET", format!("{s}/keys{q}"), None)),
        (scope, query()).prop_map(|(s, q)| ("DELETE", format!("{s}{q}"), None)),
        (seg(), seg()).prop_map(|(d, r)| ("DELETE", format!("/v1/state/runs/{d}/{r}"), None)),
        body(token_fields()).prop_map(|b| ("POST", "/v1/tokens".to_string(), Some(b))),
        (seg(), seg()).prop_map(|(a, b)| ("GET", format!("/{a}/{b}"), None)),
    ];
    (shape, token).prop_map(|((method, path, body), token)| Request {
        method,
        path,
        body,
        token,
    })
}

/// Sends `req` to every server; a description of each wrong answer.
fn send(req: &Request) -> Vec<String> {
    let w = world();
    w.rt.block_on(async {
        let mut wrong = Vec::new();
        for (url, backend) in &w.servers {
            let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap();
            let mut r = w.http.request(method, format!("{url}{}", req.path));
            if let Some(t) = &req.token {
                r = r.header("authorization", format!("Bearer {t}"));
            }
            if let Some(b) = &req.body {
                r = r.header("content-type", "application/json").body(b.clone());
            }
            let Ok(resp) = r.send().await else {
                // reqwest refuses some header values itself (a token with a newline): not
                // the server's answer.
                continue;
            };
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            if status.is_server_error() {
                wrong.push(format!("{backend}: {status} {text}"));
            } else if status.is_client_error() {
                let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let message = body["message"].as_str().unwrap_or("");
                if message.trim().is_empty() || body["error"].as_str().is_none() {
                    wrong.push(format!(
                        "{backend}: {status} without a JSON message: {text:?}"
                    ));
                }
            }
        }
        wrong
    })
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// Every route, every generated request: never 5xx, and every 4xx names what is wrong.
    #[test]
    fn every_request_is_answered_without_a_server_error(req in request()) {
        let wrong = send(&req);
        prop_assert!(wrong.is_empty(), "{} {}: {wrong:?}", req.method, req.path);
    }
}
