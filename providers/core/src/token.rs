//! Bearer tokens fetched from a token endpoint, shared by every provider that needs one: an
//! OAuth 2.0 client-credentials grant ([RFC 6749 §4.4](https://www.rfc-editor.org/rfc/rfc6749#section-4.4)),
//! cached until shortly before it expires and dropped after a 401, and
//! [`once_more_after_401`], the one place a request is sent again with a new token.

use std::future::Future;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::http::{HttpClient, Idempotency, Response};
use crate::{ProviderError, Secret};

/// A cached token is fetched again this long before it expires.
pub const REFRESH_BEFORE: Duration = Duration::from_secs(60);

/// An OAuth 2.0 client-credentials grant: where to ask, and as whom.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientCredentials {
    /// The token endpoint.
    pub token_url: String,
    /// The client's id (sent with basic authentication).
    pub client_id: String,
    /// The client's secret.
    pub client_secret: Secret,
    /// The `scope` parameter, if the endpoint wants one.
    pub scope: Option<String>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
}

/// A client-credentials token, fetched when first needed and cached until [`REFRESH_BEFORE`]
/// its expiry (an hour when the endpoint does not say).
#[derive(Debug)]
pub struct TokenCache {
    provider: &'static str,
    grant: ClientCredentials,
    cached: Mutex<Option<(Secret, Instant)>>,
}

impl TokenCache {
    /// A cache for `grant`; errors name `provider`.
    pub fn new(provider: &'static str, grant: ClientCredentials) -> Self {
        Self {
            provider,
            grant,
            cached: Mutex::new(None),
        }
    }

    /// The token to send now: the cached one, or a new one from the endpoint.
    pub async fn token(&self, http: &HttpClient) -> Result<Secret, ProviderError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, usable_until)) = cached.as_ref() {
            if Instant::now() < *usable_until {
                return Ok(token.clone());
            }
        }
        let g = &self.grant;
        let mut form = vec![("grant_type", "client_credentials".to_string())];
        if let Some(scope) = &g.scope {
            form.push(("scope", scope.clone()));
        }
        let response = http
            .send("oauth token", Idempotency::Idempotent, |c| {
                c.post(&g.token_url)
                    .basic_auth(&g.client_id, Some(g.client_secret.expose()))
                    .form(&form)
            })
            .await?;
        if !response.status.is_success() {
            return Err(ProviderError::permanent(
                self.provider,
                format!(
                    "OAuth token request for client {} failed: HTTP {} ({})",
                    g.client_id,
                    response.status,
                    response.body_snippet()
                ),
            ));
        }
        let answer: TokenAnswer = serde_json::from_slice(&response.body).map_err(|e| {
            ProviderError::transient(
                self.provider,
                format!("OAuth token response is not JSON: {e}"),
            )
        })?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600));
        let token = Secret::new(answer.access_token);
        *cached = Some((
            token.clone(),
            Instant::now() + lifetime.saturating_sub(REFRESH_BEFORE),
        ));
        Ok(token)
    }

    /// Drops the cached token (after a 401), so that the next request fetches a new one.
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}

/// Sends a request, and once more after a 401 (a token revoked before its time): `send`
/// reads the credentials each time it is called, and `invalidate` drops the cached ones in
/// between.
pub async fn once_more_after_401<S, SF, I, IF>(
    mut send: S,
    invalidate: I,
) -> Result<Response, ProviderError>
where
    S: FnMut() -> SF,
    SF: Future<Output = Result<Response, ProviderError>>,
    I: FnOnce() -> IF,
    IF: Future<Output = ()>,
{
    let response = send().await?;
    if response.status != reqwest::StatusCode::UNAUTHORIZED {
        return Ok(response);
    }
    invalidate().await;
    send().await
}
