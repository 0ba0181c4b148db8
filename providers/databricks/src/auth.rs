//! Credentials on requests: a personal access token, or OAuth machine-to-machine tokens from
//! the workspace's token endpoint (`tether_provider::token`, cached until shortly before they
//! expire).
//!
//! Reference: <https://docs.databricks.com/en/dev-tools/auth/oauth-m2m.html>

use tether_provider::http::HttpClient;
use tether_provider::token::{ClientCredentials, TokenCache};
use tether_provider::{ProviderError, Secret};

use crate::config::Auth;
use crate::PROVIDER;

/// Adds credentials to requests.
#[derive(Debug)]
pub enum Authenticator {
    /// A personal access token.
    Token(Secret),
    /// A service principal's OAuth tokens.
    OAuth(TokenCache),
}

impl Authenticator {
    /// An authenticator for the workspace at `host`.
    pub fn new(host: &str, auth: Auth) -> Self {
        match auth {
            Auth::Token(token) => Self::Token(token),
            Auth::OAuth {
                client_id,
                client_secret,
            } => Self::OAuth(TokenCache::new(
                PROVIDER,
                ClientCredentials {
                    token_url: format!("{host}/oidc/v1/token"),
                    client_id,
                    client_secret,
                    scope: Some("all-apis".into()),
                },
            )),
        }
    }

    /// The bearer token to send now.
    pub async fn bearer(&self, http: &HttpClient) -> Result<Secret, ProviderError> {
        match self {
            Self::Token(token) => Ok(token.clone()),
            Self::OAuth(tokens) => tokens.token(http).await,
        }
    }

    /// Drops a cached OAuth token (after a 401), so the next call fetches a new one.
    pub async fn invalidate(&self) {
        if let Self::OAuth(tokens) = self {
            tokens.invalidate().await;
        }
    }
}
