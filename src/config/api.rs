//! `[api]`: the HTTP API of `tether serve`: where it listens, admin tokens, task-token signing
//! keys, limits and timeouts, TLS.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{parse_duration, positive, Problems};

/// The default port of the HTTP API (`api.listen` is `127.0.0.1:8470`): not 8080, which is
/// Airflow's API server's, so that both run on one machine as they come.
pub const DEFAULT_API_PORT: u16 = 8470;

/// The HTTP API of `tether serve`.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Whether `tether serve` serves the API.
    pub enabled: bool,
    /// Address to listen on.
    pub listen: std::net::SocketAddr,
    /// SHA-256 (hex) of each admin token; the tokens themselves are never stored.
    pub admin_token_sha256: Vec<String>,
    /// The keys task tokens are signed with (HS256), by key id; the first signs, the others
    /// are accepted until removed (`api.signing_keys` with `api.signing_kid`, or one
    /// `api.signing_key`, whose id is `default`). Empty: a random key per process.
    pub signing_keys: Vec<SigningKey>,
    /// Lifetime of a task token when the request gives none.
    pub task_token_ttl: Duration,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Longest long-poll wait a client may ask for.
    pub max_wait: Duration,
    /// Most long polls (`/v1/jobs/{id}/wait`, `/v1/jobs/wait`) open at once; more are 429.
    pub max_waits: usize,
    /// Most long polls open at once with one token (every admin token counts as one); more
    /// are 429.
    pub max_waits_per_token: usize,
    /// How long a connection may take to send a request's headers, counted from when the
    /// server starts waiting for them: a connection idle between requests (or that never
    /// sends one) is closed after it too.
    pub header_read_timeout: Duration,
    /// How long a request's body may take to arrive in full (then 408).
    pub body_read_timeout: Duration,
    /// Serve HTTPS with this certificate chain and key (PEM files).
    pub tls: Option<TlsFiles>,
}

/// A task-token signing key and its id (`kid`).
#[derive(Debug, Clone)]
pub struct SigningKey {
    /// The key id, carried in the header of the tokens it signs.
    pub kid: String,
    /// The secret.
    pub key: tether_provider::Secret,
}

/// PEM files for HTTPS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: ([127, 0, 0, 1], DEFAULT_API_PORT).into(),
            admin_token_sha256: Vec::new(),
            signing_keys: Vec::new(),
            task_token_ttl: Duration::from_secs(12 * 3600),
            max_body_bytes: 1024 * 1024,
            max_wait: Duration::from_secs(60),
            max_waits: 2048,
            max_waits_per_token: 1024,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(60),
            tls: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    enabled: Option<bool>,
    listen: Option<String>,
    admin_token_sha256: Option<Vec<String>>,
    signing_key: Option<String>,
    signing_keys: Option<BTreeMap<String, String>>,
    signing_kid: Option<String>,
    task_token_ttl: Option<String>,
    max_body_bytes: Option<usize>,
    max_wait: Option<String>,
    max_waits: Option<usize>,
    max_waits_per_token: Option<usize>,
    header_read_timeout: Option<String>,
    body_read_timeout: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

impl RawApi {
    /// The section, checked.
    pub(super) fn build(self, problems: &mut Problems) -> ApiConfig {
        let mut api = ApiConfig::default();
        if let Some(e) = self.enabled {
            api.enabled = e;
        }
        if let Some(l) = &self.listen {
            problems.check(
                "api.listen",
                l.parse()
                    .map(|a| api.listen = a)
                    .map_err(|_| format!("{l:?} is not an address such as 127.0.0.1:8470")),
            );
        }
        for (i, h) in self.admin_token_sha256.iter().flatten().enumerate() {
            let h = h.trim().to_ascii_lowercase();
            if h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()) {
                api.admin_token_sha256.push(h);
            } else {
                problems.check(
                    "api.admin_token_sha256",
                    Err(format!(
                        "entry {i} is not 64 hex digits (use `tether token hash`)"
                    )),
                );
            }
        }
        let single = self
            .signing_key
            .clone()
            .or_else(|| std::env::var("TETHER_API_SIGNING_KEY").ok())
            .filter(|k| !k.is_empty());
        let ring = self.signing_keys.clone().unwrap_or_default();
        let strong = |key: &str| {
            if key.len() < 32 {
                Err(format!(
                    "is {} bytes; use at least 32 random bytes",
                    key.len()
                ))
            } else {
                Ok(())
            }
        };
        if ring.is_empty() {
            if let Some(kid) = &self.signing_kid {
                problems.check(
                    "api.signing_kid",
                    Err(format!("names {kid:?}, but api.signing_keys is empty")),
                );
            }
            if let Some(k) = single {
                match strong(&k) {
                    Ok(()) => api.signing_keys.push(SigningKey {
                        kid: "default".into(),
                        key: tether_provider::Secret::new(k),
                    }),
                    Err(e) => problems.check("api.signing_key", Err(e)),
                }
            }
        } else if self.signing_key.is_some() {
            problems.check(
                "api.signing_key",
                Err(
                    "set api.signing_keys (with api.signing_kid) or api.signing_key, not both \
                     (during a rotation, put the old key in api.signing_keys as `default`)"
                        .into(),
                ),
            );
        } else {
            let signer = match (&self.signing_kid, ring.len()) {
                (Some(kid), _) => Some(kid.clone()),
                (None, 1) => ring.keys().next().cloned(),
                (None, _) => None,
            };
            match &signer {
                None => problems.check(
                    "api.signing_kid",
                    Err(format!(
                        "is required with {} signing keys: name the one that signs ({})",
                        ring.len(),
                        ring.keys().cloned().collect::<Vec<_>>().join(", ")
                    )),
                ),
                Some(kid) if !ring.contains_key(kid) => problems.check(
                    "api.signing_kid",
                    Err(format!(
                        "{kid:?} is not in api.signing_keys ({})",
                        ring.keys().cloned().collect::<Vec<_>>().join(", ")
                    )),
                ),
                Some(_) => {}
            }
            for (kid, key) in &ring {
                let field = format!("api.signing_keys.{kid}");
                if let Err(e) = crate::model::scope::validate_id("key id", kid, "") {
                    problems.check(&field, Err(e.to_string()));
                    continue;
                }
                match strong(key) {
                    Ok(()) => {
                        let entry = SigningKey {
                            kid: kid.clone(),
                            key: tether_provider::Secret::new(key.clone()),
                        };
                        if signer.as_deref() == Some(kid.as_str()) {
                            api.signing_keys.insert(0, entry);
                        } else {
                            api.signing_keys.push(entry);
                        }
                    }
                    Err(e) => problems.check(&field, Err(e)),
                }
            }
        }
        if let Some(t) = &self.task_token_ttl {
            problems.check(
                "api.task_token_ttl",
                parse_duration(t).map(|d| api.task_token_ttl = d),
            );
        }
        if let Some(t) = &self.max_wait {
            problems.check("api.max_wait", parse_duration(t).map(|d| api.max_wait = d));
        }
        for (field, value, target) in [
            ("api.max_waits", self.max_waits, &mut api.max_waits),
            (
                "api.max_waits_per_token",
                self.max_waits_per_token,
                &mut api.max_waits_per_token,
            ),
        ] {
            if let Some(n) = value {
                problems.check(
                    field,
                    if n == 0 {
                        Err("must be at least 1".into())
                    } else {
                        *target = n;
                        Ok(())
                    },
                );
            }
        }
        if let Some(t) = &self.header_read_timeout {
            problems.check(
                "api.header_read_timeout",
                parse_duration(t)
                    .and_then(positive)
                    .map(|d| api.header_read_timeout = d),
            );
        }
        if let Some(t) = &self.body_read_timeout {
            problems.check(
                "api.body_read_timeout",
                parse_duration(t)
                    .and_then(positive)
                    .map(|d| api.body_read_timeout = d),
            );
        }
        if let Some(n) = self.max_body_bytes {
            problems.check(
                "api.max_body_bytes",
                if n < 1024 {
                    Err(format!("{n} is below 1024"))
                } else {
                    api.max_body_bytes = n;
                    Ok(())
                },
            );
        }

        match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => {
                for (field, path) in [("api.tls_cert", &cert), ("api.tls_key", &key)] {
                    if !path.is_file() {
                        problems.check(
                            field,
                            Err(format!("{} is not a readable file", path.display())),
                        );
                    }
                }
                api.tls = Some(TlsFiles { cert, key });
            }
            (None, None) => {}
            (Some(_), None) => {
                problems.check("api.tls_key", Err("missing: api.tls_cert is set".into()))
            }
            (None, Some(_)) => {
                problems.check("api.tls_cert", Err("missing: api.tls_key is set".into()))
            }
        }

        api
    }
}
