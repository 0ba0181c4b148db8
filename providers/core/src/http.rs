//! The retrying HTTP client every adapter sends its requests through.
//!
//! - Retries 429, 408 and 5xx responses, and connection failures, with jittered exponential
//!   backoff (the `backoff` crate), at most `max_retries` times.
//! - Honours `Retry-After` (seconds or an HTTP date): the wait replaces the backoff delay, and
//!   the account's [`RateLimiter`] is paused for that long, so every job on that account slows
//!   down instead of failing.
//! - Retries a timed-out or cut-off request only if the call is idempotent: a submit whose
//!   answer was lost is reconciled by the engine (`find`), never blindly repeated.
//! - Sends each attempt of a non-idempotent call (the first too) only if its [`SendGate`]
//!   allows it: the engine's gate closes once the submitter's lease could end before the
//!   attempt's answer, so that no request is still on its way while another process
//!   reconciles the job.
//! - Takes a token from the rate limiter before every attempt.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use backoff::backoff::Backoff;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode};

use crate::error::ProviderError;
use crate::ratelimit::RateLimiter;
use crate::settings::CommonSettings;

/// The longest Retry-After tether honours; longer requests are clamped.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// The pause after a 429 that gave no Retry-After.
pub const DEFAULT_THROTTLE_PAUSE: Duration = Duration::from_secs(1);

/// A response, read to the end.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The `Retry-After` wait, if the response gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        retry_after(&self.headers)
    }

    /// The body as text, shortened for messages.
    pub fn body_snippet(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        if text.len() > 300 {
            let cut = (0..=300)
                .rev()
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            format!("{}...", &text[..cut])
        } else {
            text.to_string()
        }
    }
}

/// Whether repeating a call can change its effect.
#[derive(Debug, Clone, Copy)]
pub enum Idempotency<'a> {
    /// Safe to repeat (reads, cancels, submits the provider deduplicates).
    Idempotent,
    /// Not safe to repeat once the request may have reached the provider; each attempt is
    /// sent only if the gate allows it.
    NotIdempotent(&'a dyn SendGate),
}

/// Decides, right before each attempt of a non-idempotent call, whether it may be sent.
///
/// tether's engine allows an attempt only while the submitter's lease covers all of it (the
/// request timeout included): once the lease may run out, another process may reconcile the
/// job, and a request still on its way could then create a second job.
pub trait SendGate: Send + Sync + std::fmt::Debug {
    /// Whether an attempt that lasts at most `longest` may start now.
    fn may_send(&self, longest: Duration) -> bool;
}

/// A gate that always allows: for tools and tests that submit outside the engine.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ungated;

impl SendGate for Ungated {
    fn may_send(&self, _longest: Duration) -> bool {
        true
    }
}

/// A reqwest client with tether's retry, backoff and rate-limit rules.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    limiter: Arc<RateLimiter>,
    provider: &'static str,
    max_retries: u32,
    /// The longest one attempt may take (reqwest's timeout): what a [`SendGate`] is asked.
    request_timeout: Duration,
    /// First backoff delay; short in tests.
    initial_backoff: Duration,
    /// Whether a `503` may come after the request was processed (AWS: "you might see an
    /// exception because of timeouts or server issues occurring after the resources are
    /// mutated"): a request that is not idempotent is then never sent again on a 503.
    unavailable_may_have_run: bool,
}

impl HttpClient {
    /// A client for `provider` with the given settings.
    pub fn new(provider: &'static str, settings: &CommonSettings) -> Result<Self, ProviderError> {
        let client = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("tether/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ProviderError::permanent(provider, format!("cannot build HTTP client: {e}"))
            })?;
        Ok(Self {
            client,
            limiter: Arc::new(RateLimiter::new(
                settings.rate_per_second,
                settings.rate_burst,
            )),
            provider,
            max_retries: settings.max_retries,
            request_timeout: settings.request_timeout,
            initial_backoff: Duration::from_millis(200),
            unavailable_may_have_run: false,
        })
    }

    /// For an API whose `503` does not say the request was not processed (AWS, a described
    /// REST API): a 503 to a request that is not idempotent fails it as of unknown outcome
    /// (the engine looks for the job before anything is sent again), where a 429 is still
    /// waited out and sent again.
    pub fn unavailable_may_have_run(mut self) -> Self {
        self.unavailable_may_have_run = true;
        self
    }

    /// The underlying reqwest client, for building requests.
    pub fn inner(&self) -> &reqwest::Client {
        &self.client
    }

    /// The account's rate limiter.
    pub fn limiter(&self) -> &Arc<RateLimiter> {
        &self.limiter
    }

    /// Sends the request `build` makes (again on each retry) and reads the whole response.
    ///
    /// Returns the final response whatever its status, unless it is a retryable status that
    /// stayed so after every retry, which becomes a transient [`ProviderError`]. `what` names
    /// the call in errors (`runs/get`), and never holds credentials.
    pub async fn send(
        &self,
        what: &str,
        idempotency: Idempotency<'_>,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, ProviderError> {
        self.send_classified(what, idempotency, |_| false, build)
            .await
    }

    /// As [`HttpClient::send`], for APIs that signal throttling in other ways than 429/503
    /// (AWS JSON 1.1 answers `400` with `ThrottlingException`): a response for which
    /// `throttled` is true is treated like a 429.
    pub async fn send_classified(
        &self,
        what: &str,
        idempotency: Idempotency<'_>,
        throttled: impl Fn(&Response) -> bool,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, ProviderError> {
        let mut backoff = backoff::ExponentialBackoff {
            current_interval: self.initial_backoff,
            initial_interval: self.initial_backoff,
            randomization_factor: 0.5,
            multiplier: 2.0,
            max_interval: Duration::from_secs(10),
            max_elapsed_time: None,
            ..Default::default()
        };
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.limiter.acquire().await;
            if let Idempotency::NotIdempotent(gate) = idempotency {
                if !gate.may_send(self.request_timeout) {
                    // Every earlier attempt was answered "not processed" (429/503) or never
                    // connected: an outcome-unknown attempt is never repeated (see `attempt`).
                    return Err(ProviderError::transient(
                        self.provider,
                        format!(
                            "{what}: not sent (attempt {attempt}): the submitter's lease could end before an answer"
                        ),
                    ));
                }
            }
            let outcome = self.attempt(what, idempotency, &throttled, &build).await;
            let (error, retry_after) = match outcome {
                Attempt::Done(response) => return Ok(response),
                Attempt::Fail(error) => return Err(error),
                Attempt::Retry(error) => {
                    let retry_after = error.retry_after;
                    (error, retry_after)
                }
            };
            if attempt > self.max_retries {
                return Err(error);
            }
            // A throttled call has paused the account's limiter for its Retry-After: the next
            // `acquire` waits for it, so no extra sleep here.
            let delay = match retry_after {
                Some(_) => Duration::ZERO,
                None => backoff.next_backoff().unwrap_or(Duration::from_secs(10)),
            };
            tracing::debug!(
                provider = self.provider,
                call = what,
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %error.message,
                "retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(
        &self,
        what: &str,
        idempotency: Idempotency<'_>,
        throttled_by_body: &impl Fn(&Response) -> bool,
        build: &impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Attempt {
        let may_repeat = matches!(idempotency, Idempotency::Idempotent);
        let sent = build(&self.client).send().await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return self.network_error(what, &e, may_repeat || e.is_connect()),
        };
        let status = response.status();
        let headers = response.headers().clone();
        let body = match response.bytes().await {
            Ok(b) => b.to_vec(),
            Err(e) => return self.network_error(what, &e, may_repeat),
        };
        let response = Response {
            status,
            headers,
            body,
        };
        let throttled = status == StatusCode::TOO_MANY_REQUESTS || throttled_by_body(&response);
        if throttled || status == StatusCode::SERVICE_UNAVAILABLE {
            let wait = response
                .retry_after()
                .unwrap_or(DEFAULT_THROTTLE_PAUSE)
                .min(MAX_RETRY_AFTER);
            // The whole account slows down, not only this call.
            self.limiter.pause(wait);
            let error = ProviderError::transient(
                self.provider,
                format!("{what}: HTTP {status} ({})", response.body_snippet()),
            )
            .with_retry_after(Some(wait));
            if !throttled && self.unavailable_may_have_run && !may_repeat {
                // This API's 503 may follow processing: the outcome is unknown.
                return Attempt::Fail(error);
            }
            // A 429 (or, where the API says so, a 503) means the request was not processed:
            // safe to repeat.
            return Attempt::Retry(error);
        }
        if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
            let error = ProviderError::transient(
                self.provider,
                format!("{what}: HTTP {status} ({})", response.body_snippet()),
            );
            return if may_repeat {
                Attempt::Retry(error)
            } else {
                Attempt::Fail(error)
            };
        }
        Attempt::Done(response)
    }

    fn network_error(&self, what: &str, e: &reqwest::Error, may_repeat: bool) -> Attempt {
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else {
            "connection failed"
        };
        // reqwest's message carries the URL but never headers, so no credential leaks here.
        let error =
            ProviderError::transient(self.provider, format!("{what}: {kind}: {}", error_chain(e)));
        if may_repeat {
            Attempt::Retry(error)
        } else {
            Attempt::Fail(error)
        }
    }
}

enum Attempt {
    Done(Response),
    Retry(ProviderError),
    Fail(ProviderError),
}

/// The error and its sources on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Parses a `Retry-After` header: delay seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs >= 0.0 && secs.is_finite()).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use std::sync::atomic::{AtomicU32, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Opens for `open` attempts, then closes.
    #[derive(Debug)]
    struct Gate {
        open: u32,
        asked: AtomicU32,
    }

    impl SendGate for Gate {
        fn may_send(&self, longest: Duration) -> bool {
            assert_eq!(
                longest,
                Duration::from_secs(3),
                "asked with the request timeout"
            );
            self.asked.fetch_add(1, Ordering::SeqCst) < self.open
        }
    }

    /// A server that answers every request `503` with `Retry-After: 0`, counting requests.
    async fn unavailable_server() -> (String, Arc<AtomicU32>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/submit", listener.local_addr().unwrap());
        let count = Arc::new(AtomicU32::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            }
        });
        (url, count)
    }

    /// Where an API's 503 may follow processing (AWS), a non-idempotent call answered 503 is
    /// sent once and fails as of unknown outcome; an idempotent one is still retried.
    #[tokio::test]
    async fn a_503_that_may_have_run_is_not_sent_again_unless_idempotent() {
        let settings = CommonSettings {
            request_timeout: Duration::from_secs(3),
            max_retries: 3,
            ..CommonSettings::default()
        };
        let client = HttpClient::new("test", &settings)
            .unwrap()
            .unavailable_may_have_run();
        let (url, requests) = unavailable_server().await;
        let err = client
            .send("submit", Idempotency::NotIdempotent(&Ungated), |c| {
                c.post(&url)
            })
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert_eq!(requests.load(Ordering::SeqCst), 1, "sent once");
        let (url, requests) = unavailable_server().await;
        let _ = client
            .send("status", Idempotency::Idempotent, |c| c.get(&url))
            .await;
        assert_eq!(requests.load(Ordering::SeqCst), 4, "retried");
    }

    #[tokio::test]
    async fn a_closed_gate_stops_a_non_idempotent_call_before_it_is_sent_again() {
        let (url, requests) = unavailable_server().await;
        let settings = CommonSettings {
            request_timeout: Duration::from_secs(3),
            max_retries: 5,
            ..CommonSettings::default()
        };
        let client = HttpClient::new("test", &settings).unwrap();
        let gate = Gate {
            open: 2,
            asked: AtomicU32::new(0),
        };
        let err = client
            .send("submit", Idempotency::NotIdempotent(&gate), |c| {
                c.post(&url)
            })
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert!(err.message.contains("not sent (attempt 3)"), "{err}");
        assert_eq!(
            requests.load(Ordering::SeqCst),
            2,
            "two attempts reached the server"
        );

        // An idempotent call does not ask the gate: all retries are sent.
        let (url, requests) = unavailable_server().await;
        client
            .send("get", Idempotency::Idempotent, |c| c.get(&url))
            .await
            .unwrap_err();
        assert_eq!(requests.load(Ordering::SeqCst), 6);
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        let later = SystemTime::now() + Duration::from_secs(120);
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap(),
        );
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(115) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }
}
