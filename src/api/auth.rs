//! Who is calling: admin tokens (stored as SHA-256 hashes) and task tokens (HS256 JWTs that
//! tether signs on an admin's request, bound to one DAG and optionally one run, task and map
//! index, plus the assets they name). This mirrors how Airflow's Execution API gives each task
//! an identity token.
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

/// Signs task tokens and checks them.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(******)")
    }
}

impl TokenKeys {
    /// Keys from a shared secret.
    pub fn new(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// A signed token for `claims`.
    pub fn sign(&self, claims: &TaskClaims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing cannot fail")
    }

    fn verify(&self, token: &str) -> Result<TaskClaims, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims = ["exp".to_string()].into();
        validation.leeway = 0;
        jsonwebtoken::decode::<TaskClaims>(token, &self.decoding, &validation).map(|d| d.claims)
    }
}

impl FromRequestParts<ApiState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token>"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
            })?;
        let hashed = hash_token(token);
        if state.admin_hashes.contains(&hashed) {
            return Ok(Principal::Admin);
        }
        match state.keys.verify(token) {
            Ok(claims) => Ok(Principal::Task(claims)),
            Err(e) => Err(ApiError::unauthorized(match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    "the token has expired".to_string()
                }
                _ => "the token is not valid here".to_string(),
            })),
        }
    }
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
