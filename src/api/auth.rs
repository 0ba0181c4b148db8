//! Who is calling: admin tokens (stored as SHA-256 hashes) and task tokens (HS256 JWTs that
//! tether signs on an admin's request, bound to one DAG and optionally one run, task and map
//! index, plus the assets they name). This mirrors how Airflow's Execution API gives each task
//! an identity token.
//!
//! Task tokens carry an id (`jti`, checked against the revocation list in the database on
//! every request: see [`super::tokens`]) and the id of the key that signed them (`kid`, so
//! that keys can be rotated: `api.signing_keys`).
//!
//! A task token reaches its own task instance's state and jobs, its task's cross-run state, and
//! the asset states it names; anything else is 403 with a message saying which scope it lacks.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::error::ApiError;
use super::ApiState;
use crate::state::{Scope, TaskInstanceId};

/// What a task token may touch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaskClaims {
    /// The token's id, to list and revoke it (empty in tokens signed before ids existed).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jti: String,
    /// The DAG.
    pub dag_id: String,
    /// The run, or any run of the DAG.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The task, or any task of the DAG.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// The map index, or any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_index: Option<i64>,
    /// Assets whose state the token may read and write.
    #[serde(default)]
    pub assets: Vec<String>,
    /// The provider accounts (`[providers.NAME]`) it may ensure jobs on; none: every one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub providers: Option<Vec<String>>,
    /// Not before, seconds since the epoch (RFC 7519 §4.1.5); tether signs none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
}

/// The caller.
#[derive(Debug, Clone)]
pub enum Principal {
    /// An admin: everything.
    Admin,
    /// A task: its own scopes only.
    Task(TaskClaims),
}

/// SHA-256 of a token, hex: what the config stores for admin tokens.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Signs task tokens (with the first key of the ring, its id in the header's `kid`) and
/// checks them (with the key their `kid` names; a token without one, signed before key ids,
/// with each key in turn).
#[derive(Clone)]
pub struct TokenKeys {
    signer: (String, EncodingKey),
    verifiers: Vec<(String, DecodingKey)>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(******)")
    }
}

impl TokenKeys {
    /// Keys from one shared secret, with the key id `kid`.
    pub fn new(kid: &str, secret: &[u8]) -> Self {
        Self::ring(&[(kid.to_string(), secret.to_vec())])
    }

    /// Keys from a ring of (kid, secret): the first signs, every one verifies.
    ///
    /// # Panics
    /// If `ring` is empty.
    pub fn ring(ring: &[(String, Vec<u8>)]) -> Self {
        let (kid, secret) = ring.first().expect("a key ring holds at least one key");
        Self {
            signer: (kid.clone(), EncodingKey::from_secret(secret)),
            verifiers: ring
                .iter()
                .map(|(k, s)| (k.clone(), DecodingKey::from_secret(s)))
                .collect(),
        }
    }

    /// Keys from the configured ring (`api.signing_keys`, the signing one first); `None` if
    /// none is configured.
    pub fn from_config(keys: &[crate::config::SigningKey]) -> Option<Self> {
        let ring: Vec<(String, Vec<u8>)> = keys
            .iter()
            .map(|k| (k.kid.clone(), k.key.expose().as_bytes().to_vec()))
            .collect();
        (!ring.is_empty()).then(|| Self::ring(&ring))
    }

    /// A signed token for `claims`, and the id of the key that signed it.
    pub fn sign(&self, claims: &TaskClaims) -> (String, String) {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.signer.0.clone());
        let token = jsonwebtoken::encode(&header, claims, &self.signer.1)
            .expect("HS256 signing cannot fail");
        (token, self.signer.0.clone())
    }

    /// The claims of `token` if a key of the ring signed it and it is valid at `now` (seconds
    /// since the epoch, from the app's clock): refused after its `exp` and before its `nbf`
    /// (RFC 7519 §4.1.4, §4.1.5), with no leeway.
    fn verify(&self, token: &str, now: i64) -> Result<TaskClaims, String> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims = ["exp".to_string()].into();
        // Times are checked below against the app's clock, not the library's.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| "the token is not valid here")?;
        let candidates: Vec<&DecodingKey> = match &header.kid {
            Some(kid) => match self.verifiers.iter().find(|(k, _)| k == kid) {
                Some((_, key)) => vec![key],
                None => {
                    return Err(format!(
                        "the token was signed with key {kid:?}, which this server no longer accepts"
                    ))
                }
            },
            None => self.verifiers.iter().map(|(_, k)| k).collect(),
        };
        for key in candidates {
            // Signed by this key: the token is this one, valid or not in time.
            if let Ok(data) = jsonwebtoken::decode::<TaskClaims>(token, key, &validation) {
                let now = now.max(0) as u64;
                if data.claims.exp < now {
                    return Err("the token has expired".into());
                }
                if data.claims.nbf.is_some_and(|nbf| nbf > now) {
                    return Err("the token is not valid yet (its nbf is ahead)".into());
                }
                return Ok(data.claims);
            }
        }
        Err("the token is not valid here".into())
    }
}

impl FromRequestParts<ApiState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let mut headers = parts.headers.get_all(AUTHORIZATION).iter();
        let header = headers
            .next()
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token>"))?;
        if headers.next().is_some() {
            return Err(ApiError::bad_request(
                "more than one Authorization header: send one",
            ));
        }
        let token = header.to_str().ok().and_then(bearer_token).ok_or_else(|| {
            ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
        })?;
        let hashed = hash_token(token);
        if state.admin_hashes.contains(&hashed) {
            return Ok(Principal::Admin);
        }
        let now = state.app.clock.now().timestamp();
        let claims = state
            .keys
            .verify(token, now)
            .map_err(ApiError::unauthorized)?;
        if !claims.jti.is_empty() && state.tokens.is_revoked(&claims.jti).await? {
            return Err(ApiError::unauthorized(format!(
                "the token {} was revoked",
                claims.jti
            )));
        }
        Ok(Principal::Task(claims))
    }
}

/// The token of an `Authorization` header's value, `Bearer <token>`: the scheme's name is
/// case-insensitive (RFC 9110 §11.1) and may be followed by more than one space.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl Principal {
    /// Only admins pass.
    pub fn require_admin(&self, what: &str) -> Result<(), ApiError> {
        match self {
            Principal::Admin => Ok(()),
            Principal::Task(_) => Err(ApiError::forbidden(format!("{what} needs an admin token"))),
        }
    }

    /// Whether the caller may touch a task instance (its state and its jobs).
    pub fn allow_task_instance(&self, ti: &TaskInstanceId) -> Result<(), ApiError> {
        let Principal::Task(c) = self else {
            return Ok(());
        };
        let ok = c.dag_id == ti.dag_id
            && c.run_id.as_ref().is_none_or(|r| *r == ti.run_id)
            && c.task_id.as_ref().is_none_or(|t| *t == ti.task_id)
            && c.map_index.is_none_or(|m| m == ti.map_index);
        if ok {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this task token lacks the scope of task instance {ti}; it covers {}",
                describe(c)
            )))
        }
    }

    /// Whether the caller may ensure jobs on the provider account `provider`.
    pub fn allow_provider(&self, provider: &str) -> Result<(), ApiError> {
        match self {
            Principal::Task(TaskClaims {
                providers: Some(allowed),
                ..
            }) if !allowed.iter().any(|p| p == provider) => Err(ApiError::forbidden(format!(
                "this task token may ensure jobs on the provider accounts {allowed:?}, not {provider:?}"
            ))),
            _ => Ok(()),
        }
    }

    /// Whether the caller may touch a scope's state.
    pub fn allow_scope(&self, scope: &Scope) -> Result<(), ApiError> {
        let Principal::Task(c) = self else {
            return Ok(());
        };
        match scope {
            Scope::TaskInstance(ti) => self.allow_task_instance(ti),
            Scope::Task { dag_id, task_id } => {
                if *dag_id == c.dag_id && c.task_id.as_ref().is_none_or(|t| t == task_id) {
                    Ok(())
                } else {
                    Err(ApiError::forbidden(format!(
                        "this task token lacks the scope of task {dag_id}/{task_id}; it covers {}",
                        describe(c)
                    )))
                }
            }
            Scope::Asset { asset } => {
                if c.assets.iter().any(|a| a == asset) {
                    Ok(())
                } else {
                    Err(ApiError::forbidden(format!(
                        "this task token lacks the scope of asset {asset:?}; it names {:?}",
                        c.assets
                    )))
                }
            }
        }
    }
}

fn describe(c: &TaskClaims) -> String {
    format!(
        "dag {} run {} task {} map index {}",
        c.dag_id,
        c.run_id.as_deref().unwrap_or("*"),
        c.task_id.as_deref().unwrap_or("*"),
        c.map_index.map_or("*".to_string(), |m| m.to_string())
    )
}
