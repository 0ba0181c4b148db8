//! One RS256 JWT signer ([RFC 7519](https://www.rfc-editor.org/rfc/rfc7519), signed with
//! RSASSA-PKCS1-v1_5 and SHA-256), for the accounts whose credential is a private key: a
//! Google service account exchanges a signed assertion at its token URL
//! ([RFC 7523 §2.1](https://www.rfc-editor.org/rfc/rfc7523#section-2.1)), and Snowflake's key
//! pair authentication sends the signed token itself as the bearer. Both go through
//! [`crate::token::TokenCache`]; this module only signs.
//!
//! Signing is the `jsonwebtoken` crate's, not hand-written.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value};

use crate::{ProviderError, Secret};

/// Signs JWTs with one RSA private key.
pub struct JwtSigner {
    provider: &'static str,
    key: EncodingKey,
    /// The key's id (`kid` in the header), where the verifier wants it (Google's
    /// `private_key_id`).
    kid: Option<String>,
}

/// The key itself is never printed.
impl std::fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtSigner")
            .field("provider", &self.provider)
            .field("key", &"******")
            .field("kid", &self.kid)
            .finish()
    }
}

impl JwtSigner {
    /// A signer with the RSA private key `pem` (PKCS#1 or PKCS#8 PEM, as Google's JSON keys and
    /// `openssl genrsa` write them); errors name `provider`.
    pub fn rs256(
        provider: &'static str,
        pem: &Secret,
        kid: Option<String>,
    ) -> Result<Self, ProviderError> {
        let key = EncodingKey::from_rsa_pem(pem.expose().as_bytes()).map_err(|e| {
            ProviderError::permanent(
                provider,
                format!("the private key is not an RSA PEM key: {e}"),
            )
        })?;
        Ok(Self { provider, key, kid })
    }

    /// A JWT of `claims` (an object) with `iat` now and `exp` after `lifetime` added.
    pub fn sign(&self, claims: &Value, lifetime: Duration) -> Result<Secret, ProviderError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut body: Map<String, Value> = match claims {
            Value::Object(map) => map.clone(),
            other => {
                return Err(ProviderError::permanent(
                    self.provider,
                    format!("JWT claims must be an object, not {other}"),
                ))
            }
        };
        body.insert("iat".into(), now.into());
        body.insert("exp".into(), (now + lifetime.as_secs()).into());
        let header = Header {
            kid: self.kid.clone(),
            ..Header::new(Algorithm::RS256)
        };
        jsonwebtoken::encode(&header, &body, &self.key)
            .map(Secret::new)
            .map_err(|e| ProviderError::permanent(self.provider, format!("signing a JWT: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    const KEY: &str = include_str!("../testdata/test-only-rsa-key.pem");
    const PUBLIC: &str = include_str!("../testdata/test-only-rsa-key.pub.pem");

    #[test]
    fn a_signed_token_verifies_with_the_public_key() {
        let signer = JwtSigner::rs256("test", &Secret::new(KEY), Some("k1".into())).unwrap();
        let claims = serde_json::json!({"iss": "tether@example.iam", "aud": "https://t/token"});
        let token = signer.sign(&claims, Duration::from_secs(3600)).unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&["https://t/token"]);
        let decoded = jsonwebtoken::decode::<Value>(
            token.expose(),
            &DecodingKey::from_rsa_pem(PUBLIC.as_bytes()).unwrap(),
            &validation,
        )
        .unwrap();
        assert_eq!(decoded.header.kid.as_deref(), Some("k1"));
        assert_eq!(decoded.claims["iss"], "tether@example.iam");
        let (iat, exp) = (
            decoded.claims["iat"].as_u64(),
            decoded.claims["exp"].as_u64(),
        );
        assert_eq!(exp.unwrap() - iat.unwrap(), 3600);
        assert!(!format!("{signer:?}").contains("PRIVATE"));
    }

    #[test]
    fn a_bad_key_or_bad_claims_are_named() {
        let err = JwtSigner::rs256("test", &Secret::new("not a key"), None).unwrap_err();
        assert!(err.to_string().contains("not an RSA PEM key"), "{err}");
        let signer = JwtSigner::rs256("test", &Secret::new(KEY), None).unwrap();
        let err = signer
            .sign(&Value::Null, Duration::from_secs(1))
            .unwrap_err();
        assert!(err.to_string().contains("must be an object"), "{err}");
    }
}
