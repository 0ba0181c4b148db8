//! Hostile answers (property tests): whatever a server answers a declared provider's status or
//! find call with (any JSON, any shape, any status), the Livy and dbt Cloud examples never read
//! success unless the answer holds, at the state pointer, the very state the example maps to
//! success; and `find` never names a job whose key field is not the key.

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use proptest::prelude::*;
use serde_json::{json, Value};
use tether_http::{Declared, HttpApiConfig};
use tether_provider::settings::Setting;
use tether_provider::{Handle, JobState, Provider};

mod common;

/// What the server answers every request with.
type Answer = Arc<Mutex<(u16, String)>>;

/// Held by each case while it sets the answer and calls: the two properties run on parallel
/// threads against the one server.
static TURN: Mutex<()> = Mutex::new(());

struct Server {
    url: String,
    answer: Answer,
    runtime: tokio::runtime::Runtime,
}

fn server() -> &'static Server {
    static SERVER: std::sync::OnceLock<Server> = std::sync::OnceLock::new();
    SERVER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let answer: Answer = Arc::new(Mutex::new((200, "{}".into())));
        let served = answer.clone();
        let url = runtime.block_on(async move {
            let app = axum::Router::new().fallback(move || {
                let (status, body) = served.lock().unwrap().clone();
                async move {
                    (
                        StatusCode::from_u16(status).unwrap(),
                        [("content-type", "application/json")],
                        body,
                    )
                        .into_response()
                }
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            url
        });
        Server {
            url,
            answer,
            runtime,
        }
    })
}

/// An example's adapter, pointed at the hostile server, with no retries.
fn adapter(file: &str) -> Declared {
    let mut table = common::example(file);
    table.insert("base_url".into(), Setting::String(server().url.clone()));
    table.insert("max_retries".into(), Setting::Integer(0));
    table.insert("request_timeout".into(), Setting::from("2s"));
    table.insert("rate_limit_per_second".into(), Setting::Integer(100_000));
    table.insert("rate_limit_burst".into(), Setting::Integer(100_000));
    let env = |_: &str| Some("hostile-secret".to_string());
    Declared::new(HttpApiConfig::build("providers.x", table, &env).unwrap()).unwrap()
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop_oneof![
            Just(1i64),
            Just(2),
            Just(3),
            Just(10),
            Just(20),
            Just(30),
            Just(11),
            Just(0),
            Just(-10)
        ]
        .prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just("success"),
            Just("SUCCESS"),
            Just("Success"),
            Just("succeeded"),
            Just("10"),
            Just("10.0"),
            Just(" success"),
            Just("success "),
            Just("dead"),
            Just("killed"),
            Just("running"),
            Just(""),
            Just("Succes"),
            Just("10 "),
        ]
        .prop_map(Value::from),
        "[a-z_ ]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("state".to_string()),
                    Just("data".to_string()),
                    Just("status".to_string()),
                    Just("log".to_string()),
                    "[a-z]{1,6}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An answer: any JSON, or one shaped like the API's with any value where the state goes, or
/// not JSON at all; under any status.
fn answer() -> impl Strategy<Value = (u16, String)> {
    let body = prop_oneof![
        any_json().prop_map(|v| v.to_string()),
        any_json().prop_map(|v| json!({"id": 1, "state": v}).to_string()),
        any_json().prop_map(
            |v| json!({"status": {"code": 200}, "data": {"id": 1, "status": v}}).to_string()
        ),
        any_json().prop_map(|v| json!({"data": v}).to_string()),
        "[ -~]{0,40}",
    ];
    (
        prop_oneof![
            Just(200u16),
            Just(201),
            Just(202),
            Just(204),
            Just(400),
            Just(404),
            Just(409),
            Just(500)
        ],
        body,
    )
}

/// Whether the answer holds the example's success state at its state pointer.
fn says_success(file: &str, body: &str) -> bool {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return false;
    };
    match file {
        "livy.toml" => v.pointer("/state") == Some(&json!("success")),
        _ => matches!(v.pointer("/data/status"), Some(s) if *s == json!(10) || *s == json!("10")),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn status_never_reads_success_falsely((status, body) in answer()) {
        let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let s = server();
        *s.answer.lock().unwrap() = (status, body.clone());
        for file in ["livy.toml", "dbt-cloud.toml"] {
            let adapter = adapter(file);
            let got = s.runtime.block_on(adapter.status(&Handle::new(json!({"id": 1}))));
            if let Ok(got) = got {
                if got.state == JobState::Succeeded {
                    prop_assert!((200..300).contains(&status) && says_success(file, &body),
                        "{file}: success read from {status} {body}");
                }
            }
        }
    }

    #[test]
    fn find_never_names_a_job_without_the_key((status, body) in answer(), tagged in any::<bool>()) {
        let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let s = server();
        let key = "tether-0123456789abcdef0123456789abcdef";
        // Sometimes a list that does hold the key, beside hostile items.
        let body = if tagged {
            json!({"sessions": [{"id": 5, "name": key}, serde_json::from_str::<Value>(&body).unwrap_or(Value::Null)],
                   "data": [{"id": 6, "cause": format!("tether {key}")}]}).to_string()
        } else {
            body
        };
        *s.answer.lock().unwrap() = (status, body.clone());
        for (file, field, spec) in [
            ("livy.toml", "/sessions", json!({"file": "local:/x.py"})),
            ("dbt-cloud.toml", "/data", json!({"job_id": 1})),
        ] {
            let adapter = adapter(file);
            let Ok(found) = s.runtime.block_on(adapter.find(key, &spec, 0)) else { continue };
            let v: Value = serde_json::from_str(&body).unwrap();
            let items = v.pointer(field).and_then(Value::as_array).cloned().unwrap_or_default();
            for handle in found {
                let id = handle.get("id").unwrap();
                let named = items.iter().any(|i| {
                    i.get("id") == Some(&id)
                        && (i.get("name") == Some(&json!(key)) || i.get("cause") == Some(&json!(format!("tether {key}"))))
                });
                prop_assert!(named, "{file}: found {handle} in {body}");
            }
        }
    }
}
