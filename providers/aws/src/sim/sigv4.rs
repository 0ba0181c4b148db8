//! Checking a request's SigV4 signature the way AWS does: recompute it from the request and
//! the secret of the key it names, and compare.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use axum::http::{HeaderMap, Method, Uri};

use super::SimConfig;
use crate::client::{sign_headers, ToSign};
use crate::config::Service;

/// AWS refuses requests signed further than this from its clock.
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// An AWS error type and the message to answer with.
type Refusal = (&'static str, String);

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
struct Authorization<'a> {
    /// `Credential=`: `ACCESS_KEY/DATE/REGION/SERVICE/aws4_request`.
    credential: &'a str,
    /// `SignedHeaders=`, `;`-separated.
    signed: &'a str,
    /// `Signature=`.
    signature: &'a str,
}

fn authorization(auth: &str) -> Result<Authorization<'_>, Refusal> {
    let Some(fields) = auth.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return Err((
            "MissingAuthenticationTokenException",
            "Missing Authentication Token".into(),
        ));
    };
    let mut parts = Authorization {
        credential: "",
        signed: "",
        signature: "",
    };
    for part in fields.split(',').map(str::trim) {
        if let Some(v) = part.strip_prefix("Credential=") {
            parts.credential = v;
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            parts.signed = v;
        } else if let Some(v) = part.strip_prefix("Signature=") {
            parts.signature = v;
        }
    }
    Ok(parts)
}

/// The credential scope's access key, region and signing name, checked against the
/// simulator's key and `service`.
fn scope<'a>(
    config: &SimConfig,
    service: Service,
    credential: &'a str,
) -> Result<(&'a str, &'a str, &'a str), Refusal> {
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, _date, region, signing_name, "aws4_request"] = scope.as_slice() else {
        return Err((
            "IncompleteSignatureException",
            format!("malformed Credential scope {credential:?}"),
        ));
    };
    if *access_key != config.access_key_id {
        return Err((
            "UnrecognizedClientException",
            "The security token included in the request is invalid.".into(),
        ));
    }
    if *signing_name != service.signing_name() {
        return Err((
            "InvalidSignatureException",
            format!(
                "Credential should be scoped to correct service: '{}'.",
                service.signing_name()
            ),
        ));
    }
    Ok((access_key, region, signing_name))
}

/// The request's `x-amz-date`, refused when malformed or too far from the clock.
fn request_time(amz_date: &str) -> Result<SystemTime, Refusal> {
    let time = chrono::NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| {
            (
                "IncompleteSignatureException",
                "x-amz-date is missing or malformed".to_string(),
            )
        })?
        .and_utc();
    let time: SystemTime = time.into();
    let skew = SystemTime::now()
        .duration_since(time)
        .or_else(|e| Ok::<_, ()>(e.duration()))
        .unwrap_or_default();
    if skew > MAX_SKEW {
        return Err((
            "InvalidSignatureException",
            "Signature expired: the request time is too far from the server's".into(),
        ));
    }
    Ok(time)
}

/// `Ok`, or the AWS error type and message to answer with.
pub fn verify(
    config: &SimConfig,
    service: Service,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Refusal> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let auth = authorization(header("authorization"))?;
    let (access_key, region, signing_name) = scope(config, service, auth.credential)?;
    let time = request_time(header("x-amz-date"))?;
    // The signer adds host, x-amz-date and the session token itself.
    let to_sign: Vec<(String, String)> = auth
        .signed
        .split(';')
        .filter(|h| {
            !matches!(
                *h,
                "host" | "x-amz-date" | "x-amz-security-token" | "x-amz-content-sha256"
            )
        })
        .map(|h| (h.to_string(), header(h).to_string()))
        .collect();
    let token = headers
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let credentials = Credentials::new(
        access_key,
        &config.secret_access_key,
        token,
        None,
        "simulator",
    );
    let url = format!(
        "http://{}{}",
        header("host"),
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let request = ToSign {
        method: method.as_str(),
        url: &url,
        headers: &to_sign,
        body,
    };
    let expected = sign_headers(&credentials, region, signing_name, time, request)
        .map_err(|e| ("IncompleteSignatureException", e))?;
    let expected_signature = expected
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, v)| v.rsplit("Signature=").next())
        .unwrap_or("");
    if expected_signature != auth.signature {
        return Err((
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
        ));
    }
    Ok(())
}
