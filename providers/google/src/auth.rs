//! Credentials on requests: Google's Application Default Credentials, through
//! `google-cloud-auth` (Google's official Rust crate), which caches each token and refreshes
//! it before it expires.
//!
//! - [`Credentials::Default`]: the chain Google's tools follow: `GOOGLE_APPLICATION_CREDENTIALS`,
//!   gcloud's `application_default_credentials.json`, the metadata server.
//! - [`Credentials::File`]: one credentials file, of any type the chain reads: a service
//!   account's key (signed by the crate: a self-signed JWT with the `cloud-platform` scope,
//!   as Google's libraries send), gcloud's user credentials (`authorized_user`), an external
//!   account (workload identity federation) or an impersonated service account.
//! - [`Credentials::Metadata`]: the metadata server at a given URL.
//!
//! The crate is built without its default features (they bring aws-lc-rs beside the ring
//! tether's rustls uses): ring is installed as rustls' process-wide provider before the first
//! credentials are built. Credentials are built on first use, inside the runtime (the crate
//! refreshes tokens from a task of its own). Neither a key nor a token is ever logged: the
//! crate's `AccessToken` prints as `[censored]`, and tether's errors name the file and the
//! failure, never its contents.
//!
//! Reference: <https://cloud.google.com/docs/authentication/application-default-credentials>

use std::sync::Once;

use google_cloud_auth::credentials::{
    external_account, impersonated, mds, service_account, user_account, AccessTokenCredentials,
    Builder,
};
use serde_json::Value;
use tether_provider::{ProviderError, Secret};
use tokio::sync::OnceCell;

use crate::config::Credentials;
use crate::SCOPE;

/// Adds credentials to requests.
#[derive(Debug)]
pub struct Authenticator {
    /// Which account, in errors.
    kind: &'static str,
    source: Credentials,
    built: OnceCell<AccessTokenCredentials>,
}

impl Authenticator {
    /// An authenticator for `source`; nothing is read until the first token is asked for.
    pub fn new(kind: &'static str, source: Credentials) -> Self {
        Self {
            kind,
            source,
            built: OnceCell::new(),
        }
    }

    /// The bearer token to send now (`None`: no credentials, [`Credentials::None`]).
    pub async fn bearer(&self) -> Result<Option<Secret>, ProviderError> {
        if self.source == Credentials::None {
            return Ok(None);
        }
        let credentials = self
            .built
            .get_or_try_init(|| async { self.build() })
            .await?;
        match credentials.access_token().await {
            Ok(token) => Ok(Some(Secret::new(token.token))),
            Err(e) if e.is_transient() => Err(ProviderError::transient(
                self.kind,
                format!("{}: no access token yet: {e}", self.describe()),
            )),
            Err(e) => Err(ProviderError::permanent(
                self.kind,
                format!("{}: no access token: {e}", self.describe()),
            )),
        }
    }

    /// Where the credentials come from, for errors.
    pub fn describe(&self) -> String {
        match &self.source {
            Credentials::Default => "Application Default Credentials".into(),
            Credentials::File(path) => format!("credentials_file {path:?}"),
            Credentials::Metadata(url) => format!("the metadata server at {url}"),
            Credentials::None => "no credentials".into(),
        }
    }

    fn build(&self) -> Result<AccessTokenCredentials, ProviderError> {
        install_crypto_provider();
        let refused = |e: &dyn std::fmt::Display| {
            ProviderError::permanent(self.kind, format!("{}: {e}", self.describe()))
        };
        match &self.source {
            Credentials::Default => Builder::default()
                .with_scopes([SCOPE])
                .build_access_token_credentials()
                .map_err(|e| refused(&e)),
            Credentials::Metadata(url) => mds::Builder::default()
                .with_endpoint(url.clone())
                .with_scopes([SCOPE])
                .build_access_token_credentials()
                .map_err(|e| refused(&e)),
            Credentials::None => Err(refused(&"no credentials to build")),
            Credentials::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| refused(&e))?;
                let json: Value =
                    serde_json::from_str(&text).map_err(|e| refused(&format!("not JSON ({e})")))?;
                from_file(json).map_err(|e| refused(&e))
            }
        }
    }
}

/// The credentials a file describes, by its `type`, as Google's chain reads them.
fn from_file(json: Value) -> Result<AccessTokenCredentials, String> {
    let kind = json
        .get("type")
        .and_then(Value::as_str)
        .ok_or("the file has no \"type\" (service_account, authorized_user, external_account or impersonated_service_account)")?
        .to_string();
    let built = match kind.as_str() {
        "service_account" => service_account::Builder::new(json)
            .with_access_specifier(service_account::AccessSpecifier::from_scopes([SCOPE]))
            .build_access_token_credentials(),
        "authorized_user" => user_account::Builder::new(json)
            .with_scopes([SCOPE])
            .build_access_token_credentials(),
        "external_account" => external_account::Builder::new(json)
            .with_scopes([SCOPE])
            .build_access_token_credentials(),
        "impersonated_service_account" => impersonated::Builder::new(json)
            .with_scopes([SCOPE])
            .build_access_token_credentials(),
        other => {
            return Err(format!(
                "type {other:?} is not one tether reads (service_account, authorized_user, \
                 external_account or impersonated_service_account)"
            ))
        }
    };
    built.map_err(|e| format!("a {kind} file tether cannot use: {e}"))
}

/// Installs ring as rustls' process-wide crypto provider, once: `google-cloud-auth` without
/// its default features signs and connects with whatever provider the process installed.
/// Another provider installed first (by an embedding program) is kept.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bad_file_is_named_without_its_contents() {
        let dir = std::env::temp_dir().join(format!("tether-google-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cases = [
            ("missing.json", None, "No such file"),
            ("notjson.json", Some("private_key = secret"), "not JSON"),
            (
                "notype.json",
                Some("{\"private_key\": \"secret\"}"),
                "has no \"type\"",
            ),
            (
                "odd.json",
                Some("{\"type\": \"gdch_service_account\"}"),
                "is not one tether reads",
            ),
        ];
        for (name, contents, expected) in cases {
            let path = dir.join(name);
            if let Some(c) = contents {
                std::fs::write(&path, c).unwrap();
            }
            let auth =
                Authenticator::new("bigquery", Credentials::File(path.display().to_string()));
            let err = auth.bearer().await.unwrap_err();
            assert!(err.message.contains(expected), "{name}: {err}");
            assert!(err.message.contains(name), "{name}: {err}");
            assert!(!err.message.contains("secret"), "{name}: {err}");
            assert!(!err.is_transient(), "{name}: {err}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
