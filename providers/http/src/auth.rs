//! Credentials on each request: a bearer token, basic, a header of one's own, or OAuth2
//! client-credentials tokens from the token URL (`tether_provider::token`, cached until a
//! minute before they expire).

use tether_provider::http::HttpClient;
use tether_provider::token::{ClientCredentials, TokenCache};
use tether_provider::{ProviderError, Secret};

use crate::config::Auth;
use crate::PROVIDER;

/// Applies the account's credentials.
#[derive(Debug)]
pub struct Authenticator {
    auth: Auth,
    /// The OAuth2 tokens, for an account that has them.
    tokens: Option<TokenCache>,
}

impl Authenticator {
    /// An authenticator for `auth`.
    pub fn new(auth: Auth) -> Self {
        let tokens = match &auth {
            Auth::OAuth2 {
                token_url,
                client_id,
                client_secret,
                scope,
            } => Some(TokenCache::new(
                PROVIDER,
                ClientCredentials {
                    token_url: token_url.clone(),
                    client_id: client_id.clone(),
                    client_secret: client_secret.clone(),
                    scope: scope.clone(),
                },
            )),
            _ => None,
        };
        Self { auth, tokens }
    }

    /// What to add to a request: `(header, value)`, or basic credentials.
    pub async fn credentials(&self, http: &HttpClient) -> Result<Credentials, ProviderError> {
        Ok(match (&self.auth, &self.tokens) {
            (Auth::None, _) => Credentials::None,
            (Auth::Bearer { scheme, token }, _) => Credentials::Header(
                reqwest::header::AUTHORIZATION.to_string(),
                Secret::new(format!("{scheme} {}", token.expose())),
            ),
            (Auth::Basic { username, password }, _) => {
                Credentials::Basic(username.clone(), password.clone())
            }
            (Auth::Header { name, value }, _) => Credentials::Header(name.clone(), value.clone()),
            (Auth::OAuth2 { .. }, tokens) => {
                let tokens = tokens
                    .as_ref()
                    .expect("an OAuth2 account has a token cache");
                Credentials::Header(
                    reqwest::header::AUTHORIZATION.to_string(),
                    Secret::new(format!("Bearer {}", tokens.token(http).await?.expose())),
                )
            }
        })
    }

    /// Forgets a cached OAuth2 token (after a 401).
    pub async fn invalidate(&self) {
        if let Some(tokens) = &self.tokens {
            tokens.invalidate().await;
        }
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
