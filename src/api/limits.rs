//! What a client may send and how slowly: a body declared larger than `api.max_body_bytes` is
//! refused from its header alone (413, nothing read), and a body that has not arrived in full
//! within `api.body_read_timeout` ends the request with 408. Headers have their own deadline,
//! `api.header_read_timeout`, which the HTTP server enforces per connection (see
//! [`super::serve`]).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::error::ApiError;

/// The limits on request bodies.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// `api.max_body_bytes`.
    pub max_bytes: usize,
    /// `api.body_read_timeout`.
    pub read_timeout: Duration,
}

/// Middleware: reads a request's body in full, within the limits, before the handler runs.
pub async fn guard_body(
    State(limits): State<BodyLimits>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_bytes as u64) {
        return too_large().into_response();
    }
    if declared == Some(0) || !may_have_body(&request) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let read = Limited::new(body, limits.max_bytes).collect();
    let bytes = match tokio::time::timeout(limits.read_timeout, read).await {
        Err(_) => {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the request body did not arrive within api.body_read_timeout ({})",
                    humantime::format_duration(limits.read_timeout)
                ),
            )
            .into_response()
        }
        Ok(Err(e)) if e.is::<LengthLimitError>() => return too_large().into_response(),
        Ok(Err(e)) => {
            return ApiError::bad_request(format!("reading the request body failed: {e}"))
                .into_response()
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the request body is larger than api.max_body_bytes",
    )
}

/// Whether a request may carry a body: it declares a length or a transfer encoding.
fn may_have_body(request: &Request) -> bool {
    let headers = request.headers();
    headers.contains_key(header::CONTENT_LENGTH) || headers.contains_key(header::TRANSFER_ENCODING)
}

/// Accepts a connection for the HTTP server only once its first byte has arrived within
/// `api.header_read_timeout`. hyper's header deadline starts only after it has chosen between
/// HTTP/1 and HTTP/2 from the first bytes, so without this a connection that never sends one
/// would stay open for good. Under TLS it runs before the handshake (which has a deadline of
/// its own).
#[derive(Debug, Clone, Copy)]
pub struct FirstByteWithin(pub Duration);

impl<S: Send + 'static> axum_server::accept::Accept<tokio::net::TcpStream, S> for FirstByteWithin {
    type Stream = tokio::net::TcpStream;
    type Service = S;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = std::io::Result<(Self::Stream, S)>> + Send>,
    >;

    fn accept(&self, stream: tokio::net::TcpStream, service: S) -> Self::Future {
        let within = self.0;
        Box::pin(async move {
            let mut first = [0u8; 1];
            match tokio::time::timeout(within, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => Ok((stream, service)),
                Ok(Ok(_)) => Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no request within api.header_read_timeout",
                )),
            }
        })
    }
}
