//! `[state]`: task-state defaults and limits (the settings are `crate::state::StateSettings`).

use std::str::FromStr;

use serde::Deserialize;

use super::Problems;
use crate::state::{Retention, StateSettings};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawState {
    default_retention: Option<String>,
    max_value_bytes: Option<u64>,
    clear_on_success: Option<bool>,
    max_keys_per_scope: Option<u32>,
}

impl RawState {
    /// The section, checked.
    pub(super) fn build(self, problems: &mut Problems) -> StateSettings {
        let mut state = StateSettings::default();
        if let Some(r) = &self.default_retention {
            problems.check(
                "state.default_retention",
                Retention::from_str(r)
                    .map(|r| state.default_retention = r)
                    .map_err(|e| e.to_string()),
            );
        }
        if let Some(n) = self.max_value_bytes {
            problems.check(
                "state.max_value_bytes",
                if n == 0 || n > 64 * 1024 * 1024 {
                    Err(format!("{n} is outside 1..=67108864"))
                } else {
                    state.max_value_bytes = n as usize;
                    Ok(())
                },
            );
        }
        if let Some(b) = self.clear_on_success {
            state.clear_on_success = b;
        }
        if let Some(n) = self.max_keys_per_scope {
            state.max_keys_per_scope = n;
        }

        state
    }
}
