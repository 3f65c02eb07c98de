//! The query service: DataFusion SQL over the store for dashboards, exports, audits and
//! analysts.
//!
//! A `SessionContext` per request, whose `clicks` and `events` tables come from a
//! [`TableSource`] (the store's read side, Parquet or ClickHouse) and are already narrowed to the caller's
//! [`scope::Scope`]: an advertiser's key sees only its rows, the admin token everything. Every
//! endpoint builds on those two tables, so no endpoint can forget the scope.
//!
//! Modules: [`stats`] (overview, chart, breakdowns, funnel), [`export`] (CSV), [`audit`]
//! (attribution of one event), [`sql`] (read-only analyst SQL), [`rollups`] (dashboards over
//! the hourly rollups), [`limits`] (memory, time and concurrency bounds of every request),
//! [`filters`], [`json`], [`web`] (the dashboards' pages and charts), [`me`] (a logged-in user's own API), [`ledger`] (commission balances, movements, payouts) and [`affiliate`] (an influencer's earnings), [`freshness`] (answering once the pipeline stored what was sent). This crate plans; the store reads.

pub mod affiliate;
pub mod answers;
pub mod audit;
pub mod deliveries;
pub mod export;
pub mod filters;
pub mod freshness;
pub mod json;
pub mod ledger;
pub mod ledger_answers;
pub mod limits;
pub mod me;
pub mod promo;
pub mod recent;
pub mod rollups;
pub mod scope;
pub mod sealed;
pub mod sql;
pub mod stats;
pub mod web;

use axum::Router;
use clicktrail_api::error::ApiError;
use clicktrail_bus::CatalogView;
use clicktrail_store::source::TableSource;
use std::sync::Arc;

/// Shared by every query handler.
#[derive(Clone)]
pub struct QueryState {
    /// Where tables come from.
    pub source: Arc<dyn TableSource>,
    /// The followed catalog (API keys, names).
    pub catalog: Arc<CatalogView>,
    /// The admin bearer token.
    pub admin_token: String,
    /// Bounds on every query request.
    pub limiter: limits::Limiter,
    /// The processor's progress, for requests that ask to `wait` for it; `None` answers at
    /// once.
    pub pipeline: Option<freshness::Pipeline>,
    /// Base URL shoppers reach the redirector at, for influencers' link URLs.
    pub public_url: String,
    /// Where replays of webhook and postback deliveries are queued (`outbound`); none answers
    /// them 503.
    pub producer: Option<Arc<dyn clicktrail_bus::Producer>>,
}

/// Every query route.
pub fn router(state: QueryState) -> Router {
    let limiter = state.limiter.clone();
    Router::new()
        .merge(stats::routes())
        .merge(export::routes())
        .merge(audit::routes())
        .merge(deliveries::routes())
        .merge(sql::routes())
        .merge(me::routes())
        .merge(ledger::routes())
        .merge(affiliate::routes())
        .merge(promo::routes())
        .merge(web::routes())
        // Inner: a request that waits for the pipeline does so holding its query slot.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            freshness::honour_wait,
        ))
        .with_state(state.clone())
        .route_layer(axum::middleware::from_fn_with_state(
            limiter,
            limits::enforce,
        ))
        .route_layer(axum::middleware::map_response(no_store))
        .merge(web::pages().with_state(state))
}

/// Serves every query route on `port` until the process shuts down, then drains.
/// Errors: the listener failed.
pub async fn run(state: QueryState, port: clicktrail_api::http::Port) -> std::io::Result<()> {
    port.serve(router(state)).await
}

/// OpenAPI description of the query endpoints.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        stats::overview, stats::chart, stats::per_influencer, stats::per_campaign, stats::per_link,
        stats::per_sub_id, stats::per_country, stats::funnel, export::events_csv, export::clicks_csv,
        audit::attribution, sql::run_sql,
        me::me, me::links, me::coupons, me::overview, me::chart, me::funnel, me::per_campaign,
        me::per_link, me::per_sub_id, web::pictures::chart_svg, web::pictures::my_chart_svg, recent::recent_events,
        ledger::balances, ledger::entries, ledger::payouts, ledger::payouts_csv, ledger::reviews,
        affiliate::summary, affiliate::conversions, affiliate::payouts,
        promo::select, promo::analytics, promo::chart_svg,
        deliveries::list, deliveries::replay,
    ),
    components(schemas(sql::SqlRequest, me::Me, me::MyLink, me::MyCoupon)),
    tags(
        (name = "stats", description = "Dashboards and audits (admin token or X-API-KEY)"),
        (name = "export", description = "CSV exports"),
        (name = "sql", description = "Read-only analyst SQL"),
        (name = "me", description = "The logged-in user's own figures, links and coupons"),
        (name = "integrations", description = "The webhook and postback delivery log, and replays"),
    )
)]
pub struct QueryApi;

/// The OpenAPI description of the query endpoints.
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    QueryApi::openapi()
}

/// Answers of the query routes hold one caller's figures: no cache keeps them.
async fn no_store(mut resp: axum::response::Response) -> axum::response::Response {
    resp.headers_mut()
        .entry(http::header::CACHE_CONTROL)
        .or_insert(http::HeaderValue::from_static("private, no-store"));
    resp
}

pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}
