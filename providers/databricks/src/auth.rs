//! Credentials on requests: a personal access token, or OAuth machine-to-machine tokens
//! fetched from the workspace's token endpoint and cached until shortly before they expire.
//!
//! Reference: <https://docs.databricks.com/en/dev-tools/auth/oauth-m2m.html>

use std::time::Duration;

use serde::Deserialize;
use tether_provider::http::{HttpClient, Idempotency};
use tether_provider::{ErrorKind, ProviderError, Secret};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::Auth;
use crate::PROVIDER;

/// A cached token is renewed this long before it expires.
const MIN_TTL: Duration = Duration::from_secs(60);

/// Adds credentials to requests.
#[derive(Debug)]
pub struct Authenticator {
    auth: Auth,
    token_url: String,
    /// The OAuth token and when it stops being usable (expiry minus [`MIN_TTL`]).
    cached: Mutex<Option<(Secret, Instant)>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

impl Authenticator {
    /// An authenticator for the workspace at `host`.
    pub fn new(host: &str, auth: Auth) -> Self {
        Self {
            auth,
            token_url: format!("{host}/oidc/v1/token"),
            cached: Mutex::new(None),
        }
    }

    /// The bearer token to send now.
    pub async fn bearer(&self, http: &HttpClient) -> Result<Secret, ProviderError> {
        let (client_id, client_secret) = match &self.auth {
            Auth::Token(token) => return Ok(token.clone()),
            Auth::OAuth {
                client_id,
                client_secret,
            } => (client_id, client_secret),
        };
        let mut cached = self.cached.lock().await;
        if let Some((token, usable_until)) = cached.as_ref() {
            if Instant::now() < *usable_until {
                return Ok(token.clone());
            }
        }
        let response = http
            .send("oidc/v1/token", Idempotency::Idempotent, |c| {
                c.post(&self.token_url)
                    .basic_auth(client_id, Some(client_secret.expose()))
                    .form(&[("grant_type", "client_credentials"), ("scope", "all-apis")])
            })
            .await?;
        if !response.status.is_success() {
            return Err(ProviderError::new(
                PROVIDER,
                ErrorKind::Permanent,
                format!(
                    "OAuth token request for client {client_id} failed: HTTP {} ({})",
                    response.status,
                    response.body_snippet()
                ),
            ));
        }
        let token: TokenResponse = serde_json::from_slice(&response.body).map_err(|e| {
            ProviderError::transient(PROVIDER, format!("OAuth token response is not JSON: {e}"))
        })?;
        let ttl = Duration::from_secs(token.expires_in.unwrap_or(3600));
        let secret = Secret::new(token.access_token);
        *cached = Some((secret.clone(), Instant::now() + ttl.saturating_sub(MIN_TTL)));
        Ok(secret)
    }

    /// Drops a cached OAuth token (after a 401), so the next call fetches a new one.
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}
