//! Credentials from the standard AWS chain (environment, shared config and credentials files
//! with profiles, web identity / IRSA, ECS container and EC2 instance metadata), through
//! `aws-config`, cached and refreshed five minutes before they expire.
//!
//! The chain is loaded on first use, so that building a provider needs no network.

use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use tether_provider::ProviderError;
use tokio::sync::{Mutex, OnceCell};

/// Credentials are renewed this long before they expire.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// Credentials for one provider account.
#[derive(Debug)]
pub struct CredentialSource {
    provider: &'static str,
    region: String,
    profile: Option<String>,
    chain: OnceCell<SharedCredentialsProvider>,
    cached: Mutex<Option<Credentials>>,
    /// Credentials given outright (the simulator signing its own calls), never refreshed:
    /// the chain is not asked.
    fixed: Option<Credentials>,
}

impl CredentialSource {
    /// A source for `region` (and a named profile, if any).
    pub fn new(provider: &'static str, region: &str, profile: Option<String>) -> Self {
        Self {
            provider,
            region: region.to_string(),
            profile,
            chain: OnceCell::new(),
            cached: Mutex::new(None),
            fixed: None,
        }
    }

    /// A source that always gives `credentials` (a key pair a test or the simulator holds).
    pub fn fixed(provider: &'static str, region: &str, credentials: Credentials) -> Self {
        Self {
            fixed: Some(credentials),
            ..Self::new(provider, region, None)
        }
    }

    /// Current credentials, from the cache or the chain.
    pub async fn get(&self) -> Result<Credentials, ProviderError> {
        if let Some(fixed) = &self.fixed {
            return Ok(fixed.clone());
        }
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            let fresh = c
                .expiry()
                .is_none_or(|exp| exp > SystemTime::now() + REFRESH_BEFORE);
            if fresh {
                return Ok(c.clone());
            }
        }
        let chain = self
            .chain
            .get_or_try_init(|| async {
                let mut loader = aws_config::defaults(BehaviorVersion::latest())
                    .region(aws_config::Region::new(self.region.clone()));
                if let Some(p) = &self.profile {
                    loader = loader.profile_name(p);
                }
                loader.load().await.credentials_provider().ok_or_else(|| {
                    ProviderError::permanent(
                        self.provider,
                        "the AWS credential chain is not available",
                    )
                })
            })
            .await?;
        let fresh = chain.provide_credentials().await.map_err(|e| {
            // The chain's messages name the sources it tried, never a secret.
            ProviderError::permanent(self.provider, format!("no AWS credentials: {e}"))
        })?;
        *cached = Some(fresh.clone());
        Ok(fresh)
    }
}
