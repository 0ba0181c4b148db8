//! Bearer tokens, shared by every provider that needs one ([`Grant`]): an OAuth 2.0
//! client-credentials grant ([RFC 6749 §4.4](https://www.rfc-editor.org/rfc/rfc6749#section-4.4)),
//! a signed JWT exchanged at a token URL ([RFC 7523 §2.1](https://www.rfc-editor.org/rfc/rfc7523#section-2.1),
//! Google's service accounts), or a signed JWT sent as the bearer itself (Snowflake's key
//! pairs); each cached until shortly before it expires and dropped after a 401
//! ([`TokenCache`]), and [`once_more_after_401`], the one place a request is sent again with
//! a new token.

use std::future::Future;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use serde_json::Value;

use crate::http::{HttpClient, Idempotency, Response};
use crate::jwt::JwtSigner;
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

/// How a token is had.
#[derive(Debug)]
pub enum Grant {
    /// Asked for at the token endpoint with the client's id and secret.
    ClientCredentials(ClientCredentials),
    /// A JWT of `claims` signed with the account's key and exchanged at `token_url` for an
    /// access token (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`).
    JwtBearer {
        /// The token endpoint (also the assertion's usual `aud`).
        token_url: String,
        /// The account's key.
        signer: JwtSigner,
        /// The assertion's claims (`iss`, `scope`, `aud`, ...); `iat` and `exp` are added.
        claims: Value,
    },
    /// A JWT of `claims` signed with the account's key, sent itself as the bearer token for
    /// `lifetime`.
    SelfSigned {
        /// The account's key.
        signer: JwtSigner,
        /// The token's claims; `iat` and `exp` are added.
        claims: Value,
        /// How long each token is valid.
        lifetime: Duration,
    },
}

impl From<ClientCredentials> for Grant {
    fn from(grant: ClientCredentials) -> Self {
        Grant::ClientCredentials(grant)
    }
}

/// How long a signed assertion lives (Google accepts at most an hour).
const ASSERTION_LIFETIME: Duration = Duration::from_secs(3600);

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
}

/// A token of a [`Grant`], had when first needed and cached until [`REFRESH_BEFORE`] its
/// expiry (an hour when the endpoint does not say).
#[derive(Debug)]
pub struct TokenCache {
    provider: &'static str,
    grant: Grant,
    cached: Mutex<Option<(Secret, Instant)>>,
}

impl TokenCache {
    /// A cache for `grant`; errors name `provider`.
    pub fn new(provider: &'static str, grant: impl Into<Grant>) -> Self {
        Self {
            provider,
            grant: grant.into(),
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
        let (token, lifetime) = match &self.grant {
            Grant::SelfSigned {
                signer,
                claims,
                lifetime,
            } => (signer.sign(claims, *lifetime)?, *lifetime),
            Grant::ClientCredentials(g) => {
                let mut form = vec![("grant_type", "client_credentials".to_string())];
                if let Some(scope) = &g.scope {
                    form.push(("scope", scope.clone()));
                }
                let who = format!("client {}", g.client_id);
                self.exchange(http, &g.token_url, &who, |c| {
                    c.post(&g.token_url)
                        .basic_auth(&g.client_id, Some(g.client_secret.expose()))
                        .form(&form)
                })
                .await?
            }
            Grant::JwtBearer {
                token_url,
                signer,
                claims,
            } => {
                let assertion = signer.sign(claims, ASSERTION_LIFETIME)?;
                let form = [
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", assertion.expose()),
                ];
                let who = format!("the assertion of {}", claims["iss"].as_str().unwrap_or("?"));
                self.exchange(http, token_url, &who, |c| c.post(token_url).form(&form))
                    .await?
            }
        };
        *cached = Some((
            token.clone(),
            Instant::now() + lifetime.saturating_sub(REFRESH_BEFORE),
        ));
        Ok(token)
    }

    /// Asks the token endpoint (`request`), for `who`: the token and how long it lives.
    async fn exchange(
        &self,
        http: &HttpClient,
        token_url: &str,
        who: &str,
        request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<(Secret, Duration), ProviderError> {
        let response = http
            .send("oauth token", Idempotency::Idempotent, request)
            .await?;
        if !response.status.is_success() {
            return Err(ProviderError::permanent(
                self.provider,
                format!(
                    "OAuth token request for {who} failed: HTTP {} ({}; token URL {token_url})",
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
        Ok((Secret::new(answer.access_token), lifetime))
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use axum::routing::post;
    use axum::{Form, Json, Router};
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    use serde_json::json;

    use super::*;
    use crate::CommonSettings;

    const KEY: &str = include_str!("../testdata/test-only-rsa-key.pem");
    const PUBLIC: &str = include_str!("../testdata/test-only-rsa-key.pub.pem");

    fn verified(token: &str, audience: &str) -> Value {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[audience]);
        let key = DecodingKey::from_rsa_pem(PUBLIC.as_bytes()).unwrap();
        jsonwebtoken::decode::<Value>(token, &key, &validation)
            .unwrap()
            .claims
    }

    /// A token endpoint that takes only a signed assertion (RFC 7523), and counts them.
    async fn token_endpoint(asked: Arc<AtomicUsize>) -> String {
        let app = Router::new().route(
            "/token",
            post(move |Form(form): Form<HashMap<String, String>>| {
                let asked = asked.clone();
                async move {
                    assert_eq!(
                        form["grant_type"],
                        "urn:ietf:params:oauth:grant-type:jwt-bearer"
                    );
                    let claims = verified(&form["assertion"], "https://oauth2.test/token");
                    assert_eq!(claims["iss"], "tether@project.iam.gserviceaccount.com");
                    asked.fetch_add(1, Ordering::SeqCst);
                    Json(json!({"access_token": "ya29.test", "expires_in": 3600}))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    fn signer() -> JwtSigner {
        JwtSigner::rs256("test", &Secret::new(KEY), Some("key-1".into())).unwrap()
    }

    #[tokio::test]
    async fn a_signed_assertion_is_exchanged_once_and_again_after_a_401() {
        let asked = Arc::new(AtomicUsize::new(0));
        let token_url = token_endpoint(asked.clone()).await;
        let cache = TokenCache::new(
            "test",
            Grant::JwtBearer {
                token_url,
                signer: signer(),
                claims: json!({
                    "iss": "tether@project.iam.gserviceaccount.com",
                    "scope": "https://www.googleapis.com/auth/cloud-platform",
                    "aud": "https://oauth2.test/token",
                }),
            },
        );
        let http = HttpClient::new("test", &CommonSettings::default()).unwrap();
        assert_eq!(cache.token(&http).await.unwrap().expose(), "ya29.test");
        assert_eq!(cache.token(&http).await.unwrap().expose(), "ya29.test");
        assert_eq!(
            asked.load(Ordering::SeqCst),
            1,
            "cached until near its expiry"
        );
        cache.invalidate().await;
        cache.token(&http).await.unwrap();
        assert_eq!(asked.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_self_signed_token_is_its_own_bearer() {
        let cache = TokenCache::new(
            "test",
            Grant::SelfSigned {
                signer: signer(),
                claims: json!({"iss": "ACME.TETHER.SHA256:abc", "sub": "ACME.TETHER", "aud": "snowflake"}),
                lifetime: Duration::from_secs(3600),
            },
        );
        let http = HttpClient::new("test", &CommonSettings::default()).unwrap();
        let first = cache.token(&http).await.unwrap();
        assert_eq!(verified(first.expose(), "snowflake")["sub"], "ACME.TETHER");
        assert_eq!(cache.token(&http).await.unwrap().expose(), first.expose());
    }
}
