//! The HTTP pieces roles are assembled from: redirect routes, health and metrics, the pipeline
//! view and the OpenAPI document. `clicktrail serve` puts every piece on one port; each role
//! of a deployment serves its own pieces on its own port.

use crate::telemetry::{HTTP_REQUESTS, HTTP_SECONDS};
use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use clicktrail_api::auth::require_admin;
use clicktrail_api::error::ApiError;
use clicktrail_bus::{CatalogView, ConsumerFactory, Lifecycle};
use clicktrail_redirector::Redirector;
use clicktrail_schemas::Topic;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// What health and metrics need.
#[derive(Clone)]
pub struct Ops {
    pub lifecycle: Lifecycle,
    pub metrics: PrometheusHandle,
    /// The role's catalog view, whose position `/health/ready` reports.
    pub catalog: Option<Arc<CatalogView>>,
}

/// What the pipeline view needs.
#[derive(Clone)]
pub struct PipelineView {
    pub consumers: Arc<dyn ConsumerFactory>,
    pub processor_group: String,
    pub admin_token: String,
}

/// `/health/live`, `/health/ready`, `/metrics` and `/api/v1/openapi.json`.
pub fn operations(ops: Ops) -> Router {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi))
        .with_state(ops)
}

/// `/r/…` and `/ref/…`.
pub fn redirects(redirector: Arc<Redirector>) -> Router {
    Router::new()
        .route("/r/{*rest}", any(redirect))
        .route("/ref/{*rest}", any(redirect))
        .with_state(redirector)
}

/// `/api/v1/admin/pipeline`.
pub fn pipeline_view(view: PipelineView) -> Router {
    Router::new()
        .route("/api/v1/admin/pipeline", get(pipeline))
        .with_state(view)
}

/// The pieces of one port, with the JSON 404 and request metrics.
pub fn app(pieces: Vec<Router>) -> Router {
    pieces
        .into_iter()
        .fold(Router::new(), Router::merge)
        .fallback(|| async {
            ApiError::NotFound("no such endpoint; see /api/v1/openapi.json".into())
        })
        .layer(middleware::from_fn(track))
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

/// Follow a tracking link: 302 to the campaign's destination with `ref_code` and `click_id`.
#[utoipa::path(get, path = "/r/{code}", tag = "redirect", params(("code" = String, Path)),
    responses((status = 302, description = "Redirect; sets the ct_vid cookie for 24 hours on first visit"), (status = 404, description = "Unknown or deactivated code (HTML page)")))]
#[allow(dead_code)]
fn doc_redirect() {}

/// Follow a tracking link with a sub id (also under `/ref/{code}` and `/ref/{code}/{sub_id}`).
#[utoipa::path(get, path = "/r/{code}/{sub_id}", tag = "redirect", params(("code" = String, Path), ("sub_id" = String, Path)),
    responses((status = 302, description = "Redirect"), (status = 404, description = "Unknown or deactivated code")))]
#[allow(dead_code)]
fn doc_redirect_sub() {}

async fn redirect(
    State(redirector): State<Arc<Redirector>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    redirector
        .handle(req.method(), req.uri(), req.headers(), peer.ip())
        .map(Body::new)
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health/live", tag = "operations", responses((status = 200, description = "Alive")))]
async fn live() -> &'static str {
    "ok\n"
}

/// Readiness: the catalog is read to its end, the role's backends answered and the process
/// is not shutting down. `X-Clicktrail-Catalog` gives the next catalog offset this role applies.
#[utoipa::path(get, path = "/health/ready", tag = "operations", responses((status = 200, description = "Ready"), (status = 503, description = "Starting or draining")))]
async fn ready(State(s): State<Ops>) -> Response {
    let mut resp = if s.lifecycle.is_ready() {
        "ready\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
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
async fn metrics(State(s): State<Ops>) -> String {
    s.metrics.render()
}

/// Processor progress per topic: end offset, committed offset and lag per partition.
#[utoipa::path(get, path = "/api/v1/admin/pipeline", tag = "admin", responses((status = 200, description = "Lag per topic partition"), (status = 401, description = "Not admin")))]
async fn pipeline(
    State(s): State<PipelineView>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    require_admin(&headers, &s.admin_token)?;
    let mut topics = serde_json::Map::new();
    let mut total = 0u64;
    for topic in [Topic::Clicks, Topic::Events] {
        let ends = s.consumers.end_offsets(topic).await?;
        let committed = s.consumers.committed(&s.processor_group, topic).await?;
        let mut parts = Vec::new();
        for (p, end) in ends.iter().enumerate() {
            let committed = committed.get(p).copied().flatten().unwrap_or(0);
            let lag = end.saturating_sub(committed);
            total += lag;
            parts.push(
                json!({"partition": p, "end_offset": end, "committed": committed, "lag": lag}),
            );
        }
        topics.insert(topic.name().into(), Value::Array(parts));
    }
    Ok(Json(
        json!({"group": s.processor_group, "lag": total, "topics": topics}),
    ))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "clicktrail", description = "Influencer and affiliate tracking: redirects, funnel events, attribution and analytics."),
    paths(doc_redirect, doc_redirect_sub, live, ready, metrics, pipeline),
    tags(
        (name = "redirect", description = "Shopper redirects"),
        (name = "operations", description = "Health and metrics"),
    )
)]
struct ProcessApi;

/// The OpenAPI document of every role.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    let mut doc = ProcessApi::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.merge(clicktrail_ingest::openapi());
    doc.merge(clicktrail_query::openapi());
    doc
}

/// The OpenAPI document.
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi_document())
}
