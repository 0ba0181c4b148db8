//! Caps on long polls in flight (`/v1/jobs/{id}/wait`, `/v1/jobs/wait`): in total
//! (`api.max_waits`) and per token (`api.max_waits_per_token`; every admin token counts as
//! one). A wait beyond either is answered 429 with `Retry-After` at once, rather than holding
//! a connection (and a descriptor) the server may need for other requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;

use super::auth::Principal;
use super::error::ApiError;

/// What a client refused here should wait before asking again.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// The long polls in flight, in total and by token.
#[derive(Debug)]
pub struct WaitSlots {
    max: usize,
    per_token: usize,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    total: usize,
    by_token: HashMap<String, usize>,
}

impl WaitSlots {
    /// At most `max` waits in flight, `per_token` of them with one token.
    pub fn new(max: usize, per_token: usize) -> Self {
        Self {
            max,
            per_token,
            held: Mutex::default(),
        }
    }

    /// A slot for one wait by `who`, held until the slot is dropped; 429 if none is free.
    pub fn take(self: &Arc<Self>, who: &Principal) -> Result<WaitSlot, ApiError> {
        let token = match who {
            Principal::Admin => "admin".to_string(),
            Principal::Task(c) => format!("task:{}", c.jti),
        };
        let mut held = self.held.lock().expect("wait slots lock");
        if held.total >= self.max {
            crate::metrics::WAITS_REFUSED
                .with_label_values(&["api.max_waits"])
                .inc();
            return Err(too_many(format!(
                "{} long polls are open, the most this server allows (api.max_waits); \
                 try again shortly",
                held.total
            )));
        }
        let mine = held.by_token.entry(token.clone()).or_default();
        if *mine >= self.per_token {
            let n = *mine;
            crate::metrics::WAITS_REFUSED
                .with_label_values(&["api.max_waits_per_token"])
                .inc();
            return Err(too_many(format!(
                "this token has {n} long polls open, the most one token may \
                 (api.max_waits_per_token); wait for many jobs in one POST /v1/jobs/wait, \
                 or try again shortly"
            )));
        }
        *mine += 1;
        held.total += 1;
        crate::metrics::WAITS_IN_FLIGHT.inc();
        Ok(WaitSlot {
            slots: self.clone(),
            token,
        })
    }

    /// How many waits are in flight.
    pub fn in_flight(&self) -> usize {
        self.held.lock().expect("wait slots lock").total
    }
}

fn too_many(message: String) -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_waits", message).retry_after(RETRY_AFTER)
}

/// One wait's place; given back when dropped (the wait answered, or its client went away).
#[derive(Debug)]
pub struct WaitSlot {
    slots: Arc<WaitSlots>,
    token: String,
}

impl Drop for WaitSlot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().expect("wait slots lock");
        held.total -= 1;
        crate::metrics::WAITS_IN_FLIGHT.dec();
        if let Some(n) = held.by_token.get_mut(&self.token) {
            *n -= 1;
            if *n == 0 {
                held.by_token.remove(&self.token);
            }
        }
    }
}
