//! The web view served by `tether serve` under `/ui`: a jobs list (filters, counts per state,
//! paging, refreshing itself), a job page (identity, handle and provider link, lease, timings,
//! the event log as a timeline, the provider's last message) and a task-state browser.
//!
//! The pages are one HTML shell with a little plain JavaScript (`app.js`) that reads the same
//! `/v1` API with the token the person logged in with, kept in the browser session
//! (`sessionStorage`), never in a URL: an admin token sees everything, a task token its own
//! scopes. The assets are embedded in the binary (no build step); every answer carries a strict
//! Content-Security-Policy (scripts and styles from this origin only), and refuses framing:
//! [`secure`] adds those headers to every answer under `/ui`, whichever handler (or fallback)
//! gave it. A provider's run page is a link only when it is an http(s) URL, and every path
//! segment the state browser takes from its query string is encoded.

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("app.css");

/// The security headers of every `/ui` answer.
const HEADERS: [(header::HeaderName, &str); 5] = [
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::CACHE_CONTROL, "no-store"),
];

/// Middleware over the whole router: every answer to a path under `/ui` carries the security
/// headers, the router's fallbacks (an unknown page or asset, a wrong method) included.
pub async fn secure(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let ui = path == "/ui" || path.starts_with("/ui/");
    let mut response = next.run(request).await;
    if ui {
        for (name, value) in HEADERS {
            response
                .headers_mut()
                .insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

async fn page() -> Response {
    Html(INDEX).into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

/// The `/ui` routes (no state: the pages read the API from the browser).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", get(page))
        .route("/ui/", get(page))
        .route("/ui/jobs/{id}", get(page))
        .route("/ui/state", get(page))
        .route("/ui/assets/app.js", get(script))
        .route("/ui/assets/app.css", get(style))
}
