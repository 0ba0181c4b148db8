//! Signed requests to AWS (SigV4 by `aws-sigv4`), the two wire protocols tether needs (JSON
//! 1.1 with `X-Amz-Target`, and REST JSON), and AWS's error shapes.
//!
//! Errors carry `__type` (or `x-amzn-ErrorType`) and `message`; throttling
//! (`ThrottlingException`, `TooManyRequestsException`, `RequestLimitExceeded`, HTTP 429/503)
//! pauses the account's rate limiter and is retried by the shared HTTP client.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use reqwest::Method;
use serde_json::Value;
use tether_provider::http::{HttpClient, Idempotency, Response};
use tether_provider::{ErrorKind, ProviderError};

use crate::config::AwsConfig;
use crate::credential::CredentialSource;

/// The version of AWS's JSON protocol a service speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Json {
    /// JSON 1.0 (Step Functions).
    V1_0,
    /// JSON 1.1 (Glue, ECS, SageMaker, EMR, Redshift Data, Athena).
    V1_1,
}

/// A client for one AWS service in one region.
#[derive(Debug)]
pub struct AwsClient {
    provider: &'static str,
    signing_name: &'static str,
    region: String,
    endpoint: String,
    http: HttpClient,
    credentials: CredentialSource,
}

/// What a signature covers: the request.
#[derive(Debug, Clone, Copy)]
pub struct ToSign<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The full URL, percent-encoded.
    pub url: &'a str,
    /// The headers to sign (the signer adds `host` and `x-amz-date` itself).
    pub headers: &'a [(String, String)],
    /// The body.
    pub body: &'a [u8],
}

/// Signs a request for `region` and `signing_name` at `time`: the headers to add
/// (`authorization`, `x-amz-date`, and `x-amz-security-token` for temporary credentials).
pub fn sign_headers(
    credentials: &Credentials,
    region: &str,
    signing_name: &str,
    time: SystemTime,
    request: ToSign<'_>,
) -> Result<Vec<(String, String)>, String> {
    let ToSign {
        method,
        url,
        headers,
        body,
    } = request;
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(signing_name)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// The error type of an AWS error answer, without namespace (`ThrottlingException`).
pub fn error_type(response: &Response) -> Option<String> {
    let from_header = response
        .headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let from_body = body
        .get("__type")
        .or_else(|| body.get("code"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let raw = from_body.or(from_header)?;
    let raw = raw.rsplit('#').next().unwrap_or(&raw);
    Some(raw.split(':').next().unwrap_or(raw).to_string())
}

/// Whether `what` (the operation) creates a job: its refusals blame the spec.
fn is_submit(what: &str) -> bool {
    ["Start", "Add", "Submit", "Run", "Create"]
        .iter()
        .any(|p| what.starts_with(p))
}

fn is_throttle(response: &Response) -> bool {
    response.status.is_client_error()
        && error_type(response).is_some_and(|t| {
            t.contains("Throttl")
                || t.contains("TooManyRequests")
                || t == "RequestLimitExceeded"
                // SQS (`AWS.SimpleQueueService.RequestThrottled` in its query errors).
                || t == "RequestThrottled"
        })
}

/// Where a client sends its calls: the service's signing name, region and endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Who calls, in errors and metrics (the kind, or `aws-sqs`).
    pub provider: &'static str,
    /// The SigV4 signing name (`sqs`).
    pub signing_name: &'static str,
    /// The region.
    pub region: &'a str,
    /// The endpoint, without a trailing slash.
    pub endpoint: &'a str,
}

impl AwsClient {
    /// A client for the configured service.
    pub fn new(config: &AwsConfig) -> Result<Self, ProviderError> {
        let provider = config.service.kind();
        let target = Target {
            provider,
            signing_name: config.service.signing_name(),
            region: &config.region,
            endpoint: &config.endpoint,
        };
        let credentials = CredentialSource::new(provider, &config.region, config.profile.clone());
        Self::to(target, &config.common, credentials)
    }

    /// A client of any AWS service (the events queue's SQS), with `credentials`.
    pub fn to(
        target: Target<'_>,
        common: &tether_provider::CommonSettings,
        credentials: CredentialSource,
    ) -> Result<Self, ProviderError> {
        Ok(Self {
            provider: target.provider,
            signing_name: target.signing_name,
            region: target.region.to_string(),
            endpoint: target.endpoint.to_string(),
            // "you might see an exception because of timeouts or server issues occurring after
            // the resources are mutated": a 503 to a submit without a token may have run.
            http: HttpClient::new(target.provider, common)?.unavailable_may_have_run(),
            credentials,
        })
    }

    /// The HTTP client (for its rate limiter).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// A JSON RPC call: `POST /` with `X-Amz-Target: <prefix>.<operation>` and the content
    /// type of `json`'s version.
    pub async fn json(
        &self,
        json: Json,
        target_prefix: &str,
        operation: &str,
        body: &Value,
        idempotency: Idempotency<'_>,
    ) -> Result<Value, ProviderError> {
        let version = match json {
            Json::V1_0 => "1.0",
            Json::V1_1 => "1.1",
        };
        let headers = vec![
            (
                "content-type".to_string(),
                format!("application/x-amz-json-{version}"),
            ),
            (
                "x-amz-target".to_string(),
                format!("{target_prefix}.{operation}"),
            ),
        ];
        let url = format!("{}/", self.endpoint);
        self.call(
            operation,
            Method::POST,
            &url,
            headers,
            body.to_string().into_bytes(),
            idempotency,
        )
        .await
    }

    /// A REST JSON call on `path_and_query` (already percent-encoded).
    pub async fn rest(
        &self,
        what: &str,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
        idempotency: Idempotency<'_>,
    ) -> Result<Value, ProviderError> {
        let mut headers = Vec::new();
        let bytes = match body {
            Some(b) => {
                headers.push(("content-type".to_string(), "application/json".to_string()));
                b.to_string().into_bytes()
            }
            None => Vec::new(),
        };
        let url = format!("{}{path_and_query}", self.endpoint);
        self.call(what, method, &url, headers, bytes, idempotency)
            .await
    }

    async fn call(
        &self,
        what: &str,
        method: Method,
        url: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        idempotency: Idempotency<'_>,
    ) -> Result<Value, ProviderError> {
        let credentials = self.credentials.get().await?;
        let response = self
            .http
            .send_classified(what, idempotency, is_throttle, |client| {
                let mut request = client.request(method.clone(), url).body(body.clone());
                for (k, v) in &headers {
                    request = request.header(k, v);
                }
                // Signed on every attempt, so that a retry carries a fresh date.
                let to_sign = ToSign {
                    method: method.as_str(),
                    url,
                    headers: &headers,
                    body: &body,
                };
                match sign_headers(
                    &credentials,
                    &self.region,
                    self.signing_name,
                    SystemTime::now(),
                    to_sign,
                ) {
                    Ok(signed) => {
                        for (k, v) in signed {
                            request = request.header(k, v);
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "SigV4 signing failed"),
                }
                request
            })
            .await?;
        self.decode(what, response)
    }

    fn decode(&self, what: &str, response: Response) -> Result<Value, ProviderError> {
        if response.status.is_success() {
            if response.body.is_empty() {
                return Ok(Value::Object(Default::default()));
            }
            return serde_json::from_slice(&response.body).map_err(|e| {
                ProviderError::transient(
                    self.provider,
                    format!(
                        "{what}: malformed JSON in the response ({e}): {}",
                        response.body_snippet()
                    ),
                )
            });
        }
        let kind_name =
            error_type(&response).unwrap_or_else(|| format!("HTTP {}", response.status.as_u16()));
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        let message = body
            .get("message")
            .or_else(|| body.get("Message"))
            .and_then(Value::as_str)
            .map_or_else(|| response.body_snippet(), str::to_string);
        let lower = message.to_ascii_lowercase();
        let kind = match kind_name.as_str() {
            k if k.contains("Throttl")
                || k.contains("TooManyRequests")
                || k == "RequestThrottled"
                // SQS: too many messages in flight; receiving again later is right.
                || k == "OverLimit" =>
            {
                ErrorKind::Transient
            }
            // Answers after which the request may have been processed, whatever their status
            // (see `edges.rs`): a submit's outcome is unknown, and the engine finds the job by
            // its key before anything is sent again. Glue's `OperationTimeoutException` is a
            // 400 in its model; ECS, EMR Serverless and EMR on EKS answer a client token
            // already in use with `ConflictException` (ECS: "The resourceIds are the existing
            // task ARNs which are already associated with the clientToken").
            k if may_have_run(k) => ErrorKind::Transient,
            "ConflictException" if is_submit(what) => ErrorKind::Transient,
            "ResourceNotFoundException"
            | "EntityNotFoundException"
            | "ResourceNotFound"
            | "ExecutionDoesNotExist" => ErrorKind::NotFound,
            // SageMaker's Describe*Job of a job it does not have; Redshift Data's
            // DescribeStatement of a statement past its 24 hours ("... as it has expired").
            "ValidationException"
                if !is_submit(what)
                    && (lower.contains("not found")
                        || lower.contains("could not find")
                        || lower.contains("has expired")) =>
            {
                ErrorKind::NotFound
            }
            "InvalidRequestException"
                if lower.contains("not found") || lower.contains("does not exist") =>
            {
                ErrorKind::NotFound
            }
            "ValidationException"
            | "InvalidRequestException"
            | "InvalidInputException"
            | "InvalidExecutionInput"
            | "InvalidName"
            | "InvalidArn"
            | "StateMachineDoesNotExist"
            | "ClientException"
            | "InvalidParameterException"
            | "ClusterNotFoundException"
                if is_submit(what) =>
            {
                ErrorKind::InvalidSpec
            }
            // ECS: the cluster of a task asked about is gone, and its tasks with it.
            "ClusterNotFoundException" => ErrorKind::NotFound,
            _ if response.status.is_server_error() => ErrorKind::Transient,
            _ => ErrorKind::Permanent,
        };
        Err(ProviderError::new(
            self.provider,
            kind,
            format!(
                "{what}: {kind_name} ({}): {message}",
                response.status.as_u16()
            ),
        )
        .with_retry_after(response.retry_after()))
    }
}

/// Error names after which AWS may have processed the request (timeouts and server failures,
/// whatever HTTP status carries them): "you might see an exception because of timeouts or
/// server issues occurring after the resources are mutated" (ECS API reference, Ensuring
/// idempotency); Glue documents `OperationTimeoutException` on `StartJobRun` as a client error.
fn may_have_run(name: &str) -> bool {
    matches!(
        name,
        "OperationTimeoutException"
            | "RequestTimeout"
            | "RequestTimeoutException"
            | "InternalFailure"
            | "InternalServerError"
            | "InternalServerException"
            | "InternalServiceException"
            | "InternalServiceError"
            | "ServerException"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
            // Redshift Data: "encountered an environmental error while running", naming the
            // statement it made.
            | "ExecuteStatementException"
    )
}
