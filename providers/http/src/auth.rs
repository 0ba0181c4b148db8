//! Credentials on each request: a bearer token, basic, a header of one's own, or OAuth2
//! client-credentials tokens fetched from the token URL and cached until a minute before they
//! expire.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tether_provider::http::{HttpClient, Idempotency};
use tether_provider::{ProviderError, Secret};
use tokio::sync::Mutex;

use crate::config::Auth;
use crate::PROVIDER;

/// How long before its expiry a cached token is fetched again.
const REFRESH_BEFORE: Duration = Duration::from_secs(60);

/// Applies the account's credentials.
#[derive(Debug)]
pub struct Authenticator {
    auth: Auth,
    /// The OAuth2 token and when to fetch another.
    token: Mutex<Option<(Secret, Instant)>>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
}

impl Authenticator {
    /// An authenticator for `auth`.
    pub fn new(auth: Auth) -> Self {
        Self {
            auth,
            token: Mutex::new(None),
        }
    }

    /// What to add to a request: `(header, value)`, or basic credentials.
    pub async fn credentials(&self, http: &HttpClient) -> Result<Credentials, ProviderError> {
        Ok(match &self.auth {
            Auth::None => Credentials::None,
            Auth::Bearer { scheme, token } => Credentials::Header(
                reqwest::header::AUTHORIZATION.to_string(),
                Secret::new(format!("{scheme} {}", token.expose())),
            ),
            Auth::Basic { username, password } => {
                Credentials::Basic(username.clone(), password.clone())
            }
            Auth::Header { name, value } => Credentials::Header(name.clone(), value.clone()),
            Auth::OAuth2 { .. } => Credentials::Header(
                reqwest::header::AUTHORIZATION.to_string(),
                Secret::new(format!("Bearer {}", self.oauth_token(http).await?.expose())),
            ),
        })
    }

    /// Forgets a cached OAuth2 token (after a 401).
    pub async fn invalidate(&self) {
        *self.token.lock().await = None;
    }

    async fn oauth_token(&self, http: &HttpClient) -> Result<Secret, ProviderError> {
        let Auth::OAuth2 {
            token_url,
            client_id,
            client_secret,
            scope,
        } = &self.auth
        else {
            unreachable!("called for OAuth2 only");
        };
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref() {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let mut form = vec![("grant_type", "client_credentials".to_string())];
        if let Some(scope) = scope {
            form.push(("scope", scope.clone()));
        }
        let response = http
            .send("oauth2 token", Idempotency::Idempotent, |c| {
                c.post(token_url)
                    .basic_auth(client_id, Some(client_secret.expose()))
                    .form(&form)
            })
            .await?;
        if !response.status.is_success() {
            return Err(ProviderError::permanent(
                PROVIDER,
                format!(
                    "oauth2 token: HTTP {} from the token URL ({})",
                    response.status,
                    response.body_snippet()
                ),
            ));
        }
        let answer: TokenAnswer = serde_json::from_slice(&response.body).map_err(|e| {
            ProviderError::transient(PROVIDER, format!("oauth2 token: malformed answer ({e})"))
        })?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600));
        let token = Secret::new(answer.access_token);
        *cached = Some((
            token.clone(),
            Instant::now() + lifetime.saturating_sub(REFRESH_BEFORE),
        ));
        Ok(token)
    }
}

/// Credentials for one request.
#[derive(Debug)]
pub enum Credentials {
    /// None.
    None,
    /// A header.
    Header(String, Secret),
    /// HTTP basic.
    Basic(String, Secret),
}

impl Credentials {
    /// Adds them to a request.
    pub fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Credentials::None => request,
            Credentials::Header(name, value) => request.header(name.as_str(), value.expose()),
            Credentials::Basic(user, password) => request.basic_auth(user, Some(password.expose())),
        }
    }
}
