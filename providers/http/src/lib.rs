//! tether's declared provider, `kind = "http"`: a REST job API described in configuration
//! (its submit, status, cancel and find calls, where the key goes, how states read) gets what
//! a built-in provider has: write-ahead submission, reattach, cancel only on request, shared
//! rate limits, the conformance suite.
//!
//! - `factory.rs`: [`FACTORY`], the kind for tether's registry (and the simulators).
//! - `config.rs`: the description, checked at start-up, every problem named by its field.
//! - `template.rs`: `{key}`, `{spec.x}`, `{handle.x}`, `{vars.x}` in paths, queries, bodies.
//! - `auth.rs`: bearer, basic, a header, OAuth2 client credentials.
//! - `client.rs`: one declared call, sent and decoded; errors classified.
//! - `state.rs`: state, message and page read from an answer through the description.
//! - `sim/` (feature `sim`): simulators of two real APIs the examples in `config/` describe,
//!   Apache Livy's batches and dbt Cloud's job runs.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod client;
pub mod config;
pub mod edges;
pub mod factory;
#[cfg(feature = "sim")]
pub mod sim;
pub mod state;
pub mod template;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tether_provider::http::Idempotency;
use tether_provider::paging::{self, walk, Page};
use tether_provider::{
    CommonSettings, Handle, Provider, ProviderError, RemoteStatus, Result, SendGate,
};

pub use config::HttpApiConfig;
pub use factory::FACTORY;

use client::{Client, Extra, Op};
use config::{Call, Find, KeyIn, Pages};
use template::Context;

/// The provider kind, as in config and errors.
pub const PROVIDER: &str = "http";

/// A declared API's adapter.
#[derive(Debug)]
pub struct Declared {
    client: Client,
    config: HttpApiConfig,
}

impl Declared {
    /// An adapter for the described API.
    pub fn new(config: HttpApiConfig) -> Result<Self, ProviderError> {
        Ok(Self {
            client: Client::new(&config)?,
            config,
        })
    }

    fn ctx<'a>(
        &'a self,
        key: Option<&'a str>,
        spec: Option<&'a Value>,
        handle: Option<&'a Value>,
    ) -> Context<'a> {
        Context {
            key,
            spec,
            handle,
            vars: Some(&self.config.vars),
        }
    }

    /// The key's value as `[key]` formats it for this job.
    fn key_value(&self, key: &str, spec: &Value) -> Result<String, ProviderError> {
        self.config
            .key
            .value
            .render(&self.ctx(Some(key), Some(spec), None), false)
            .map_err(|e| ProviderError::invalid_spec(PROVIDER, format!("key.value: {e}")))
    }

    /// Sends `call` for `op`, filled from `ctx`, with nothing added and as a call that may be
    /// repeated: every call but a submission.
    async fn send(&self, op: Op, call: &Call, ctx: &Context<'_>) -> Result<Value> {
        self.client
            .call(
                &self.config,
                op,
                call,
                ctx,
                Extra::default(),
                Idempotency::Idempotent,
            )
            .await
    }

    /// One page of `find`'s list: the one after `token` (none: the first), as `find.pages`
    /// says pages are asked for and followed.
    async fn find_page(
        &self,
        find: &Find,
        ctx: &Context<'_>,
        token: Option<String>,
    ) -> Result<Page<Value>> {
        let at = match find.pages {
            Some(Pages::Offset { .. }) => paging::offset(token.as_deref())?,
            _ => 0,
        };
        let query = match &find.pages {
            Some(Pages::Offset {
                offset,
                limit,
                size,
            }) => vec![
                (offset.clone(), at.to_string()),
                (limit.clone(), size.to_string()),
            ],
            Some(Pages::Token { param, .. }) => {
                token.map(|t| (param.clone(), t)).into_iter().collect()
            }
            None => Vec::new(),
        };
        let extra = Extra {
            query,
            ..Extra::default()
        };
        let answer = (self.client)
            .call(
                &self.config,
                Op::Find,
                &find.call,
                ctx,
                extra,
                Idempotency::Idempotent,
            )
            .await?;
        let Some(items) = answer.pointer(&find.items).and_then(Value::as_array) else {
            return Err(ProviderError::transient(
                PROVIDER,
                format!("find: the answer has no list at {:?}", find.items),
            ));
        };
        let items = items.clone();
        Ok(match &find.pages {
            Some(Pages::Offset { size, .. }) => Page::at_offset(items, at, *size),
            Some(Pages::Token { next, .. }) => {
                let token = answer.pointer(next).and_then(Value::as_str);
                Page::new(items, token.map(str::to_string))
            }
            None => Page::new(items, None),
        })
    }

    /// A handle from `picks` of `item`; an error names a field the answer lacks.
    fn handle_from(
        &self,
        item: &Value,
        picks: &config::Picks,
        what: &str,
    ) -> Result<Handle, ProviderError> {
        let mut fields = Map::new();
        for (name, ptr) in picks {
            match item.pointer(ptr) {
                Some(v) if !v.is_null() && !v.is_object() && !v.is_array() => {
                    fields.insert(name.clone(), v.clone());
                }
                _ => {
                    return Err(ProviderError::permanent(
                        PROVIDER,
                        format!("{what}: the answer has no {name} at {ptr:?}"),
                    ))
                }
            }
        }
        Ok(Handle::new(Value::Object(fields)))
    }
}

#[async_trait]
impl Provider for Declared {
    fn kind(&self) -> &'static str {
        PROVIDER
    }

    /// The spec must be a JSON object holding every `{spec...}` the submit call names (a
    /// body field made of one placeholder may be left out).
    fn validate_spec(&self, spec: &Value) -> Result<(), ProviderError> {
        if !spec.is_object() {
            return Err(ProviderError::invalid_spec(
                PROVIDER,
                "the job spec must be a JSON object",
            ));
        }
        let ctx = self.ctx(Some("tether-validate"), Some(spec), None);
        let call = &self.config.submit.call;
        let check = |r: Result<String, String>| {
            r.map(|_| ()).map_err(|e| {
                ProviderError::invalid_spec(
                    PROVIDER,
                    format!("the spec does not fill the submit call: {e}"),
                )
            })
        };
        check(call.path.render(&ctx, true))?;
        for (_, t) in &call.query {
            check(t.render(&ctx, false))?;
        }
        if let Some(b) = &call.body {
            let body = b.render(&ctx).map_err(|e| {
                ProviderError::invalid_spec(
                    PROVIDER,
                    format!("the spec does not fill the submit body: {e}"),
                )
            })?;
            if self.config.key.place == KeyIn::Body && !body.is_object() {
                return Err(ProviderError::invalid_spec(
                    PROVIDER,
                    "the submit body must be a JSON object: the key goes in one of its fields",
                ));
            }
        }
        self.key_value("tether-validate", spec).map(|_| ())
    }

    async fn submit(&self, spec: &Value, key: &str, gate: &dyn SendGate) -> Result<Handle> {
        self.validate_spec(spec)?;
        let value = self.key_value(key, spec)?;
        let name = self.config.key.name.clone();
        let extra = match self.config.key.place {
            KeyIn::Body => Extra {
                body_field: Some((name, value)),
                ..Extra::default()
            },
            KeyIn::Header => Extra {
                header: Some((name, value)),
                ..Extra::default()
            },
            KeyIn::Query => Extra {
                query: vec![(name, value)],
                ..Extra::default()
            },
        };
        let idempotency = if self.config.key.deduplicated {
            Idempotency::Idempotent
        } else {
            Idempotency::NotIdempotent(gate)
        };
        let answer = self
            .client
            .call(
                &self.config,
                Op::Submit,
                &self.config.submit.call,
                &self.ctx(Some(key), Some(spec), None),
                extra,
                idempotency,
            )
            .await?;
        self.handle_from(&answer, &self.config.submit.handle, "submit")
    }

    fn submit_is_idempotent(&self) -> bool {
        self.config.key.deduplicated
    }

    async fn status(&self, handle: &Handle) -> Result<RemoteStatus, ProviderError> {
        let h = handle.value();
        let ctx = self.ctx(None, None, Some(&h));
        let answer = self
            .send(Op::Status, &self.config.status.call, &ctx)
            .await?;
        Ok(state::read(
            &answer,
            &self.config.status,
            &self.config.states,
            handle.as_json(),
        ))
    }

    async fn cancel(&self, handle: &Handle) -> Result<(), ProviderError> {
        let h = handle.value();
        let ctx = self.ctx(None, None, Some(&h));
        self.send(Op::Cancel, &self.config.cancel, &ctx)
            .await
            .map(|_| ())
    }

    /// The find call's list, for jobs whose `match` field holds the key's value; oldest first.
    async fn find(&self, key: &str, spec: &Value, _intent_ms: i64) -> Result<Vec<Handle>> {
        let Some(find) = &self.config.find else {
            return Ok(Vec::new());
        };
        let value = self.key_value(key, spec)?;
        let ctx = self.ctx(Some(key), Some(spec), None);
        let mut listed = Vec::new();
        let fetch = |token: Option<String>| self.find_page(find, &ctx, token);
        walk(u64::from(find.max_pages), fetch, |item: Value| {
            if item.pointer(&find.matches).and_then(Value::as_str) == Some(value.as_str()) {
                listed.push(item);
            }
            true
        })
        .await?;
        let mut found = listed
            .iter()
            .map(|item| self.handle_from(item, &find.handle, "find"))
            .collect::<Result<Vec<_>>>()?;
        if find.newest_first {
            found.reverse();
        }
        Ok(found)
    }

    fn settings(&self) -> &CommonSettings {
        &self.config.common
    }

    fn rate_limiter(&self) -> Option<&tether_provider::RateLimiter> {
        Some(self.client.http().limiter())
    }
}
