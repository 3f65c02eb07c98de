//! What every role's HTTP port has besides its own routes, and how it is served.
//!
//! - [`ops_routes`]: `/health/live` (the process answers), `/health/ready` (every role of the
//!   process is ready and it is not draining; `X-Clicktrail-Catalog` gives the next catalog
//!   offset applied), `/metrics` (Prometheus text) and `/api/v1/openapi.json`.
//! - [`app`]: a port's routes with the JSON 404 fallback and request metrics (per route
//!   template and status, [`HTTP_REQUESTS`]; latency, [`HTTP_SECONDS`]).
//! - [`serve`]: serves an app until the [`Lifecycle`] shuts down, then drains open
//!   connections; a drain longer than the deadline ends the process. Connections are bounded
//!   in number and in time by [`crate::conn`].

use crate::conn::ConnLimits;
use crate::error::ApiError;
use crate::lifecycle::Lifecycle;
use crate::rate::RateLimiter;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clicktrail_bus::CatalogView;
use clicktrail_schemas::metric_names::http::{HTTP_REQUESTS, HTTP_SECONDS};
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// What the operations routes of a port need.
#[derive(Clone)]
pub struct Ops {
    /// The process's readiness and shutdown.
    pub lifecycle: Lifecycle,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// The role's catalog view, whose position `/health/ready` reports.
    pub catalog: Option<Arc<CatalogView>>,
    /// The OpenAPI document served at `/api/v1/openapi.json`.
    pub openapi: Arc<utoipa::openapi::OpenApi>,
}

/// `/health/live`, `/health/ready`, `/metrics` and `/api/v1/openapi.json`.
pub fn ops_routes(ops: Ops) -> Router {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/docs", get(reference))
        .with_state(ops)
}

/// The routes of one port, with the JSON 404 for every unknown path, rate limits
/// ([`crate::rate`]) and request metrics.
pub fn app(pieces: impl IntoIterator<Item = Router>, rate: RateLimiter) -> Router {
    pieces
        .into_iter()
        .fold(Router::new(), Router::merge)
        .fallback(|| async {
            ApiError::NotFound("no such endpoint; see /api/v1/openapi.json".into())
        })
        .layer(middleware::from_fn_with_state(rate, crate::rate::enforce))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn(track))
}

/// Where one role serves: its listener, its operations routes, its connection limits and its
/// drain deadline.
pub struct Port {
    /// The bound listener.
    pub listener: TcpListener,
    /// Health, metrics and OpenAPI of the process; its lifecycle stops the port.
    pub ops: Ops,
    /// Connection count and timeouts.
    pub limits: ConnLimits,
    /// Rate limits.
    pub rate: RateLimiter,
    /// Longest the drain of open connections may take at shutdown.
    pub drain: Duration,
}

impl Port {
    /// Serves `routes` beside the operations routes until the lifecycle shuts down.
    /// Errors: the listener failed.
    pub async fn serve(self, routes: Router) -> std::io::Result<()> {
        let lifecycle = self.ops.lifecycle.clone();
        let app = app([routes, ops_routes(self.ops)], self.rate);
        serve(self.listener, app, self.limits, lifecycle, self.drain).await
    }
}

/// Serves `app` on `listener` within `limits` until `lifecycle` shuts down; then readiness
/// is already 503 and open connections drain. A drain longer than `deadline` ends the process
/// (exit code 1). Errors: the listener failed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    lifecycle: Lifecycle,
    deadline: Duration,
) -> std::io::Result<()> {
    let stopped = async move {
        lifecycle.stopped().await;
        tracing::info!("shutting down: readiness off, draining HTTP");
        tokio::spawn(async move {
            tokio::time::sleep(deadline).await;
            tracing::error!(?deadline, "shutdown deadline passed; exiting");
            std::process::exit(1);
        });
    };
    crate::conn::serve(listener, app, limits, stopped).await
}

/// The text of an HTML error page's `<title>` and first `<p>` ("Link not found: This link does
/// not exist or is no longer active."), for a client that did not ask for HTML.
fn page_summary(html: &str) -> Option<String> {
    let between = |open: &str, close: &str| {
        let start = html.find(open)? + open.len();
        let len = html[start..].find(close)?;
        Some(html[start..start + len].trim().to_string())
    };
    let title = between("<title>", "</title>")?;
    Some(match between("<p>", "</p>") {
        Some(p) if !p.contains('<') => format!("{title}: {p}"),
        _ => title,
    })
}

/// Largest error body rewritten as JSON; a longer one is answered with its status's own text.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Answers every error as JSON: the framework's own rejections (a malformed path or query
/// parameter, a method the route does not take, a body of the wrong type) come as plain text
/// or empty; they get the [`crate::error::ErrorBody`] shape, `{"error", "message"}`, with their
/// status, their text as the message and their headers (`Allow`, `Retry-After`) kept. Answers
/// to `HEAD` keep no body.
async fn json_errors(req: Request, next: Next) -> Response {
    use axum::http::{HeaderValue, Method, header};
    let head = req.method() == Method::HEAD;
    // A browser (it asks for HTML) keeps an HTML error page, such as the redirector's page
    // for an unknown link; every other client gets JSON.
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let resp = next.run(req).await;
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let is_json = content_type.starts_with("application/json");
    let was_html = content_type.starts_with("text/html");
    let keep_html = wants_html && was_html;
    if head || is_json || keep_html || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, MAX_ERROR_BODY)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let (error, fallback) = match status {
        StatusCode::BAD_REQUEST => ("invalid_request", "the request is malformed"),
        StatusCode::UNAUTHORIZED => ("unauthorized", "credentials are missing or wrong"),
        StatusCode::NOT_FOUND => ("not_found", "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this method is not allowed here; the Allow header lists those that are",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "expected a body of type application/json",
        ),
        StatusCode::UNPROCESSABLE_ENTITY => ("invalid_request", "the request is malformed"),
        StatusCode::TOO_MANY_REQUESTS => ("too_many_requests", "too many requests"),
        StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "unavailable; retry shortly"),
        s if s.is_server_error() => ("internal", "internal error"),
        _ => ("error", status.canonical_reason().unwrap_or("error")),
    };
    // An HTML page (meant for a browser) is not a message: its title and first paragraph are.
    let message = if text.is_empty() || status.is_server_error() {
        fallback.to_string()
    } else if was_html {
        page_summary(&text).unwrap_or_else(|| fallback.to_string())
    } else {
        text
    };
    let body = serde_json::json!({ "error": error, "message": message }).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(body))
}

async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let resp = next.run(req).await;
    metrics::counter!(HTTP_REQUESTS, "route" => route.clone(), "status" => resp.status().as_str().to_string()).increment(1);
    metrics::histogram!(HTTP_SECONDS, "route" => route).record(started.elapsed().as_secs_f64());
    resp
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health/live", tag = "operations", responses((status = 200, description = "Alive")))]
pub async fn live() -> &'static str {
    "ok\n"
}

/// Readiness: the catalog is read to its end, the role's backends answered and the process
/// is not shutting down. `X-Clicktrail-Catalog` gives the next catalog offset this role applies.
/// A 503 says why in its JSON body (`{"error": "unavailable", "message": "not ready: …"}`):
/// what the process is waiting for while it starts, or that it is shutting down.
#[utoipa::path(get, path = "/health/ready", tag = "operations", responses((status = 200, description = "Ready"), (status = 503, description = "Starting (with what it waits for) or draining", body = crate::error::ErrorBody)))]
pub async fn ready(State(s): State<Ops>) -> Response {
    let mut resp = match s.lifecycle.not_ready_reason() {
        None => "ready\n".into_response(),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(
                serde_json::json!({"error": "unavailable", "message": format!("not ready: {why}")}),
            ),
        )
            .into_response(),
    };
    if let Some(c) = &s.catalog {
        let next = *c.subscribe().borrow();
        resp.headers_mut()
            .insert("x-clicktrail-catalog", next.into());
    }
    resp
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text exposition")))]
pub async fn metrics(State(s): State<Ops>) -> String {
    s.metrics.render()
}

async fn openapi(State(s): State<Ops>) -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json((*s.openapi).clone())
}

/// The API reference page (HTML), rendered from the OpenAPI document.
#[utoipa::path(get, path = "/api/v1/docs", tag = "operations", responses((status = 200, description = "The API reference page", content_type = "text/html", body = String)))]
pub async fn reference(State(s): State<Ops>) -> Response {
    let doc = serde_json::to_value(&*s.openapi).unwrap_or_default();
    match crate::reference::render(&doc) {
        Ok(page) => axum::response::Html(page).into_response(),
        Err(e) => {
            crate::error::ApiError::Internal(format!("the API reference did not render: {e}"))
                .into_response()
        }
    }
}

/// The OpenAPI description of the operations routes.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(live, ready, metrics, reference),
    tags((name = "operations", description = "Health and metrics"))
)]
pub struct OpsApi;
