//! How a declared API's answers are read: the state (through the account's `states` map; a
//! state the map does not name is read as running and logged, never as an end), the message
//! and the job's page.

use serde_json::Value;
use tether_provider::{JobState, RemoteStatus};

use crate::config::Status;
use crate::PROVIDER;

/// The longest message kept.
const MAX_MESSAGE: usize = 2000;

/// A JSON value as text: a string as it is, a list of strings as its last five lines (a log),
/// anything else as JSON.
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let lines: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            lines[lines.len().saturating_sub(5)..].join("\n")
        }
        other => other.to_string(),
    }
}

/// The status a status answer tells.
pub fn read(
    answer: &Value,
    status: &Status,
    states: &std::collections::BTreeMap<String, JobState>,
    job: &str,
) -> RemoteStatus {
    let raw = match answer.pointer(&status.state) {
        None | Some(Value::Null) => String::new(),
        Some(v @ (Value::Object(_) | Value::Array(_))) => v.to_string(),
        Some(v) => text(v),
    };
    let state = states.get(&raw).copied().unwrap_or_else(|| {
        tracing::warn!(
            provider = PROVIDER,
            job,
            raw_state = %raw,
            "a state the account's states map does not name; treating it as running"
        );
        JobState::Running
    });
    let pick = |ptr: &Option<String>| {
        ptr.as_deref()
            .and_then(|p| answer.pointer(p))
            .filter(|v| !v.is_null())
            .map(text)
            .filter(|t| !t.is_empty())
    };
    let mut message = pick(&status.message);
    if let Some(m) = message.as_mut() {
        if m.len() > MAX_MESSAGE {
            let cut = (0..=MAX_MESSAGE)
                .rev()
                .find(|i| m.is_char_boundary(*i))
                .unwrap_or(0);
            m.truncate(cut);
        }
    }
    RemoteStatus {
        state,
        raw_state: raw,
        message,
        url: pick(&status.url),
        next_poll_hint: None,
    }
}
