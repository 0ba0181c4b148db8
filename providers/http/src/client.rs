//! Sends a declared call: the templates filled from the job, the credentials added, the
//! answer decoded as JSON or the error classified (`not_found` statuses; a submission's 400,
//! 404, 409 or 422 is a bad spec; the message from `error_message` where the answer has one).

use serde_json::Value;
use tether_provider::http::{HttpClient, Idempotency, Response};
use tether_provider::token::once_more_after_401;
use tether_provider::{ErrorKind, ProviderError};

use crate::auth::Authenticator;
use crate::config::{Call, HttpApiConfig};
use crate::template::Context;
use crate::PROVIDER;

/// Which call is made, for the classification of its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `submit`.
    Submit,
    /// `status`.
    Status,
    /// `cancel`.
    Cancel,
    /// `find`.
    Find,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Submit => "submit",
            Op::Status => "status",
            Op::Cancel => "cancel",
            Op::Find => "find",
        }
    }
}

/// Where the key goes in this request, beyond the templates.
#[derive(Debug, Default)]
pub struct Extra {
    /// A header.
    pub header: Option<(String, String)>,
    /// Query parameters (the key's, a page's).
    pub query: Vec<(String, String)>,
    /// A top-level body field.
    pub body_field: Option<(String, String)>,
}

/// The API's calls.
#[derive(Debug)]
pub struct Client {
    http: HttpClient,
    auth: Authenticator,
}

impl Client {
    /// A client for the described API.
    pub fn new(config: &HttpApiConfig) -> Result<Self, ProviderError> {
        Ok(Self {
            // A described API's 503 may come from a proxy after the backend made the job: a
            // submit is sent once (docs/src/providers/edges.md, `http`).
            http: HttpClient::new(PROVIDER, &config.common)?.unavailable_may_have_run(),
            auth: Authenticator::new(config.auth.clone()),
        })
    }

    /// The HTTP client (for its rate limiter).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// Makes `call` for `op`, filled from `ctx`, and returns the answer's JSON (`null` for an
    /// empty answer). A template naming a value the job lacks is a bad spec.
    pub async fn call(
        &self,
        config: &HttpApiConfig,
        op: Op,
        call: &Call,
        ctx: &Context<'_>,
        extra: Extra,
        idempotency: Idempotency<'_>,
    ) -> Result<Value, ProviderError> {
        let what = op.name();
        let unfilled = |e: String| match op {
            Op::Submit | Op::Find => ProviderError::invalid_spec(PROVIDER, format!("{what}: {e}")),
            // A handle recorded without a field the call needs: nothing to ask again about.
            Op::Status | Op::Cancel => ProviderError::permanent(PROVIDER, format!("{what}: {e}")),
        };
        let path = call.path.render(ctx, true).map_err(unfilled)?;
        let url = format!("{}{path}", config.base_url);
        let mut query = Vec::with_capacity(call.query.len() + 1);
        for (name, t) in &call.query {
            query.push((name.clone(), t.render(ctx, false).map_err(unfilled)?));
        }
        query.extend(extra.query);
        let body = match &call.body {
            None => None,
            Some(b) => {
                let mut body = b.render(ctx).map_err(unfilled)?;
                if let Some((field, value)) = extra.body_field {
                    let Some(obj) = body.as_object_mut() else {
                        return Err(ProviderError::invalid_spec(
                            PROVIDER,
                            format!("{what}: the body is not a JSON object, so the key cannot go in its field {field:?}"),
                        ));
                    };
                    obj.insert(field, Value::String(value));
                }
                Some(body)
            }
        };
        // An OAuth2 token may have been revoked early: a 401 fetches another, once.
        let send = || async {
            let credentials = self.auth.credentials(&self.http).await?;
            self.http
                .send(what, idempotency, |c| {
                    let mut r = c.request(call.method.clone(), &url).query(&query);
                    if let Some((name, value)) = &extra.header {
                        r = r.header(name.as_str(), value.as_str());
                    }
                    if let Some(body) = &body {
                        r = r.json(body);
                    }
                    credentials.apply(r)
                })
                .await
        };
        let response = once_more_after_401(send, || self.auth.invalidate()).await?;
        decode(config, op, &response)
    }
}

/// The answer's JSON, or a classified error.
fn decode(config: &HttpApiConfig, op: Op, response: &Response) -> Result<Value, ProviderError> {
    let what = op.name();
    let status = response.status;
    if status.is_success() {
        if response.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        return serde_json::from_slice(&response.body).map_err(|e| {
            // A broken body (a proxy's error page, a cut-off answer) is worth asking again.
            ProviderError::transient(
                PROVIDER,
                format!(
                    "{what}: malformed JSON in the answer ({e}): {}",
                    response.body_snippet()
                ),
            )
        });
    }
    let said = config.error_message.as_deref().and_then(|ptr| {
        serde_json::from_slice::<Value>(&response.body)
            .ok()?
            .pointer(ptr)
            .map(crate::state::text)
    });
    let message = format!(
        "{what}: HTTP {} ({})",
        status.as_u16(),
        said.unwrap_or_else(|| response.body_snippet())
    );
    let code = status.as_u16();
    let kind = match op {
        Op::Status | Op::Cancel if config.not_found.contains(&code) => ErrorKind::NotFound,
        Op::Submit if matches!(code, 400 | 404 | 409 | 422) => ErrorKind::InvalidSpec,
        _ => ErrorKind::Permanent,
    };
    Err(ProviderError::new(PROVIDER, kind, message).with_retry_after(response.retry_after()))
}
