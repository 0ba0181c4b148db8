//! The REST client every Google kind calls through: a bearer token from [`crate::auth`],
//! tether's retrying HTTP client, and Google's error shape.
//!
//! Google's JSON APIs answer an error as
//! `{"error": {"code": 409, "message": "...", "status": "ALREADY_EXISTS",
//! "errors": [{"reason": "duplicate", "domain": "global", "message": "..."}]}}`. BigQuery
//! throttles with `403` and the reason `rateLimitExceeded` (or `quotaExceeded` for a rate
//! quota) as well as with `429`: both are waited out and sent again, as a 429 is.
//!
//! Reference: <https://cloud.google.com/bigquery/docs/error-messages>,
//! <https://cloud.google.com/apis/design/errors>

use serde::de::DeserializeOwned;
use serde::Deserialize;
use tether_provider::http::{HttpClient, Idempotency, Response};
use tether_provider::token::once_more_after_401;
use tether_provider::{ErrorKind, ProviderError};

use crate::auth::Authenticator;
use crate::GoogleConfig;

/// Google's error body.
#[derive(Debug, Default, Deserialize)]
pub struct ApiError {
    /// The error.
    #[serde(default)]
    pub error: ErrorBody,
}

/// `error` of Google's error body.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorBody {
    /// The HTTP status, again.
    #[serde(default)]
    pub code: u16,
    /// What went wrong.
    #[serde(default)]
    pub message: String,
    /// The canonical code (`ALREADY_EXISTS`, `NOT_FOUND`, `RESOURCE_EXHAUSTED`, ...).
    #[serde(default)]
    pub status: String,
    /// The older per-error details, with their `reason` (`duplicate`, `notFound`,
    /// `rateLimitExceeded`, ...).
    #[serde(default)]
    pub errors: Vec<ErrorItem>,
}

/// An item of `error.errors`.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorItem {
    /// Why (`duplicate`, `invalid`, `notFound`, `rateLimitExceeded`, ...).
    #[serde(default)]
    pub reason: String,
}

impl ApiError {
    /// Reads an error body (an empty one if it is not Google's shape).
    pub fn of(response: &Response) -> Self {
        serde_json::from_slice(&response.body).unwrap_or_default()
    }

    /// The first reason, if any.
    pub fn reason(&self) -> &str {
        self.error.errors.first().map_or("", |e| e.reason.as_str())
    }
}

/// Whether a response is Google's throttling: a 429, or BigQuery's 403 `rateLimitExceeded`
/// (or a rate quota's `quotaExceeded`), which its documentation says to retry with backoff.
pub fn throttled(response: &Response) -> bool {
    response.status.as_u16() == 403
        && matches!(
            ApiError::of(response).reason(),
            "rateLimitExceeded" | "quotaExceeded"
        )
}

/// What a call does, for the classification of its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// It makes a job: a 400 or a 404 (of a dataset, a table, a cluster) names a bad spec.
    Submit,
    /// Anything else.
    Other,
}

/// One Google API, as tether calls it.
#[derive(Debug)]
pub struct Client {
    kind: &'static str,
    endpoint: String,
    http: HttpClient,
    auth: Authenticator,
}

impl Client {
    /// A client for the configured account.
    pub fn for_config(config: &GoogleConfig) -> Result<Self, ProviderError> {
        Self::new(
            config.kind,
            &config.endpoint,
            &config.common,
            config.credentials.clone(),
        )
    }

    /// A client of `endpoint` for `kind` (a provider or event source kind).
    pub fn new(
        kind: &'static str,
        endpoint: &str,
        common: &tether_provider::CommonSettings,
        credentials: crate::Credentials,
    ) -> Result<Self, ProviderError> {
        Ok(Self {
            kind,
            endpoint: endpoint.to_string(),
            http: HttpClient::new(kind, common)?,
            auth: Authenticator::new(kind, credentials),
        })
    }

    /// The HTTP client (for its rate limiter).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The API's base URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends the request `build` makes to `path` (under the endpoint) with a bearer token,
    /// once more after a 401, and returns the response whatever its status (throttling and,
    /// where `idempotency` allows, 5xx answers are retried first).
    pub async fn send(
        &self,
        path: &str,
        idempotency: Idempotency<'_>,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<Response, ProviderError> {
        let url = format!("{}{path}", self.endpoint);
        let what = path.split('?').next().unwrap_or(path);
        let send = || async {
            let token = self.auth.bearer().await?;
            self.http
                .send_classified(what, idempotency, throttled, |c| match &token {
                    Some(token) => build(c, &url).bearer_auth(token.expose()),
                    None => build(c, &url),
                })
                .await
        };
        // The crate refreshes tokens before they expire; a 401 is sent once more in case a
        // token was revoked meanwhile, then reported.
        once_more_after_401(send, || async {}).await
    }

    /// [`Client::send`], then the answer decoded or the error classified.
    pub async fn call<T: DeserializeOwned>(
        &self,
        path: &str,
        call: Call,
        idempotency: Idempotency<'_>,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<T, ProviderError> {
        let response = self.send(path, idempotency, build).await?;
        self.decode(path, call, &response)
    }

    /// Turns a response into `T` or a classified error.
    pub fn decode<T: DeserializeOwned>(
        &self,
        path: &str,
        call: Call,
        response: &Response,
    ) -> Result<T, ProviderError> {
        let what = path.split('?').next().unwrap_or(path);
        let status = response.status;
        if status.is_success() {
            return serde_json::from_slice(&response.body).map_err(|e| {
                // A broken body (a proxy's error page, a cut-off answer) is worth asking again.
                ProviderError::transient(
                    self.kind,
                    format!(
                        "{what}: malformed JSON in the response ({e}): {}",
                        response.body_snippet()
                    ),
                )
            });
        }
        let api = ApiError::of(response);
        let message = if api.error.message.is_empty() {
            format!("{what}: HTTP {status} ({})", response.body_snippet())
        } else {
            let reason = match (api.reason(), api.error.status.as_str()) {
                ("", "") => String::new(),
                ("", s) | (s, _) => format!("{s}, "),
            };
            format!(
                "{what}: {}({}): {}",
                reason,
                status.as_u16(),
                api.error.message
            )
        };
        let kind = match (call, status.as_u16()) {
            (Call::Submit, 400 | 404) => ErrorKind::InvalidSpec,
            (_, 404) => ErrorKind::NotFound,
            (_, 401) => {
                return Err(ProviderError::permanent(
                    self.kind,
                    format!(
                        "{message} (the credentials were refused: {})",
                        self.auth.describe()
                    ),
                ))
            }
            _ => ErrorKind::Permanent,
        };
        Err(ProviderError::new(self.kind, kind, message).with_retry_after(response.retry_after()))
    }
}

/// `s` as one segment of a URL path (ids and locations are letters, digits, `_` and `-`, so
/// this only guards against a handle that was tampered with).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
