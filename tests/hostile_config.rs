//! Hostile configuration (proptest): generated TOML documents made of tether's own fields
//! (and a few it does not have) with values of every kind, and text that is not TOML at all.
//! `Config::from_toml` never panics, and a refusal names what is wrong: a syntax error says
//! so, and each bad field's message starts with the field's path.

use proptest::prelude::*;
use tether::config::{Config, ConfigError};
use toml::Value;

/// Fields by section, as the book's configuration reference lists them.
const FIELDS: &[(&str, &[&str])] = &[
    ("", &["data_dir"]),
    (
        "database",
        &["url", "max_connections", "connect_timeout", "idle_timeout"],
    ),
    (
        "state",
        &[
            "default_retention",
            "max_value_bytes",
            "clear_on_success",
            "max_keys_per_scope",
        ],
    ),
    ("gc", &["schedule", "batch_size"]),
    ("jobs", &["retention", "key_namespace"]),
    (
        "supervisor",
        &[
            "lease",
            "claim_batch",
            "max_concurrent_polls",
            "on_spec_change",
            "shutdown_grace",
            "max_clock_skew",
        ],
    ),
    (
        "api",
        &[
            "enabled",
            "listen",
            "admin_token_sha256",
            "signing_key",
            "signing_kid",
            "signing_keys",
            "task_token_ttl",
            "max_body_bytes",
            "max_wait",
            "max_waits",
            "max_waits_per_token",
            "header_read_timeout",
            "body_read_timeout",
            "tls_cert",
            "tls_key",
        ],
    ),
];

const PROVIDER_FIELDS: &[&str] = &[
    "kind",
    "host",
    "token",
    "client_id",
    "client_secret",
    "region",
    "endpoint_url",
    "poll_initial",
    "poll_max",
    "poll_multiplier",
    "request_timeout",
    "max_retries",
    "unknown_after",
    "rate_limit_per_second",
    "rate_limit_burst",
    "coalesce",
    "no_such_field",
];

/// A value a person might write, right or wrong.
fn value() -> impl Strategy<Value = Value> {
    let text = prop_oneof![
        Just("30s".to_string()),
        Just("0s".to_string()),
        Just("-5s".to_string()),
        Just("never".to_string()),
        Just("1h 30m".to_string()),
        Just("0 */15 * * * *".to_string()),
        Just("sqlite:///tmp/tether-hostile/t.db".to_string()),
        Just("postgres://user:secret@127.0.0.1:1/db".to_string()),
        Just("http://127.0.0.1:9".to_string()),
        Just("emr".to_string()),
        Just("databricks".to_string()),
        Just("127.0.0.1:0".to_string()),
        ".{0,30}",
    ];
    let leaf = prop_oneof![
        8 => text.prop_map(Value::String),
        2 => any::<i64>().prop_map(Value::Integer),
        1 => (-1e12f64..1e12).prop_map(Value::Float),
        1 => any::<bool>().prop_map(Value::Boolean),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        proptest::collection::vec(inner, 0..3).prop_map(Value::Array)
    })
}

/// A document: some of tether's sections with some of their fields, some providers.
fn document() -> impl Strategy<Value = String> {
    let sections = proptest::collection::vec(
        (
            proptest::sample::select(FIELDS),
            proptest::collection::vec((any::<prop::sample::Index>(), value()), 0..3),
        ),
        0..5,
    );
    let providers = proptest::collection::vec(
        (
            prop_oneof![
                3 => proptest::sample::select(tether::registry::kinds())
                    .prop_map(str::to_string),
                1 => "[a-z][a-z-]{0,8}",
            ],
            proptest::collection::vec((proptest::sample::select(PROVIDER_FIELDS), value()), 0..6),
        ),
        0..3,
    );
    (sections, providers).prop_map(|(sections, providers)| {
        let mut doc = toml::Table::new();
        for ((section, fields), picks) in sections {
            for (i, v) in picks {
                let field = fields[i.index(fields.len())];
                if section.is_empty() {
                    doc.insert(field.to_string(), v);
                } else if let Value::Table(t) = doc
                    .entry(section.to_string())
                    .or_insert_with(|| Value::Table(toml::Table::new()))
                {
                    t.insert(field.to_string(), v);
                }
            }
        }
        let mut all = toml::Table::new();
        for (name, fields) in providers {
            all.insert(
                name,
                Value::Table(
                    fields
                        .into_iter()
                        .map(|(f, v)| (f.to_string(), v))
                        .collect(),
                ),
            );
        }
        if !all.is_empty() {
            doc.insert("providers".into(), Value::Table(all));
        }
        toml::to_string(&doc).unwrap_or_default()
    })
}

fn check(text: &str) -> Result<(), TestCaseError> {
    match Config::from_toml(text, "hostile.toml") {
        Ok(_) => {}
        Err(ConfigError::Syntax { message, .. }) => {
            prop_assert!(!message.is_empty(), "a syntax error without a message");
        }
        Err(ConfigError::Invalid { problems, .. }) => {
            prop_assert!(!problems.is_empty());
            for p in &problems {
                let path = p.split(':').next().unwrap_or_default();
                prop_assert!(
                    !path.is_empty() && !path.contains(' '),
                    "a problem that does not start with the field's path: {p:?}\n{text}"
                );
            }
        }
        Err(other) => prop_assert!(!other.to_string().is_empty()),
    }
    Ok(())
}

proptest! {
    #[test]
    fn generated_configs_are_accepted_or_refused_by_field(text in document()) {
        check(&text)?;
    }

    #[test]
    fn text_that_is_not_toml_is_a_syntax_error(text in ".{0,200}") {
        check(&text)?;
    }
}
