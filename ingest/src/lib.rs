//! Ingest: the advertiser events API and the management (admin) API.
//!
//! - [`events`]: `POST /api/v1/events` (one event or up to 1,000) and the `/event/{action}`
//!   aliases. Authenticated by `X-API-KEY` (and a signature when the advertiser requires it,
//!   see `clicktrail_api::auth`); validated field by field ([`validate`]); answered 2xx only once the bus has
//!   made every event durable.
//! - [`admin`]: advertisers, API keys, campaigns, influencers, assignments, links and coupons
//!   under `/api/v1/admin/`, with the admin bearer token. Every change is a record on the
//!   `catalog` topic; the handler answers once this process's follower has applied it, so
//!   uniqueness is decided by the catalog state machine in topic order. Diagnostics: the
//!   dead-letter tail and the processor's lag per partition.
//!
//! - [`payouts`]: payout requests, payments, cancellations and fraud reviews, each a record on
//!   the `ledger` topic; [`affiliate`]: whether a referral code is live, for checkouts.
//! - [`accounts`]: login, logout, set-password links and password changes of users
//!   (`/api/v1/auth/…`, `/api/v1/me/password`); users themselves are managed under
//!   `/api/v1/admin/users` by admins, whose sessions the management API accepts as it accepts
//!   the admin token.
//!
//! [`router`] gives the routes to put on a port; [`run`] serves them on their own port.
//!
//! Errors, body limits and authentication come from `clicktrail-api`.

pub mod accounts;
pub mod admin;
pub mod affiliate;
pub mod browser;
pub mod events;
pub mod payouts;
pub mod promo;
pub mod validate;

use axum::Router;
use clicktrail_api::http::Port;
use clicktrail_bus::{CatalogView, ConsumerFactory, Producer, TailReader};
use std::sync::Arc;

/// Ingest settings.
#[derive(Clone)]
pub struct IngestConfig {
    /// Bearer token of the management API.
    pub admin_token: String,
    /// Base URL shoppers reach the redirector at, for link URLs (`{public_url}/r/{code}`).
    pub public_url: String,
    /// Largest events request body, in bytes.
    pub max_body_bytes: usize,
    /// Consumer group of the processors, whose lag `/api/v1/admin/pipeline` shows.
    pub processor_group: String,
    /// The deployment's key from which every API key's signing secret is derived
    /// (`ApiKey::signing_secret`); never logged.
    pub signing_key: String,
    /// How long a session lasts after login, in seconds.
    pub session_ttl_secs: u64,
}

impl std::fmt::Debug for IngestConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestConfig")
            .field("public_url", &self.public_url)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("processor_group", &self.processor_group)
            .field("session_ttl_secs", &self.session_ttl_secs)
            .finish_non_exhaustive()
    }
}

/// Shared by every ingest handler.
#[derive(Clone)]
pub struct IngestState {
    /// Settings.
    pub config: Arc<IngestConfig>,
    /// The followed catalog.
    pub catalog: Arc<CatalogView>,
    /// Where events and catalog changes go.
    pub producer: Arc<dyn Producer>,
    /// Reads the dead-letter tail.
    pub tail: Arc<dyn TailReader>,
    /// Reads end offsets and the processor group's positions, for the lag view.
    pub consumers: Arc<dyn ConsumerFactory>,
    /// Rate limits of the login and password routes.
    pub logins: clicktrail_api::session::LoginLimiter,
}

/// Every ingest route.
pub fn router(state: IngestState) -> Router {
    Router::new()
        .merge(events::routes())
        .merge(admin::routes())
        .merge(accounts::routes())
        .merge(payouts::routes())
        .merge(affiliate::routes())
        .merge(promo::routes())
        .merge(browser::routes())
        .with_state(state)
}

/// Serves every ingest route on `port` until the process shuts down, then drains.
/// Errors: the listener failed.
pub async fn run(state: IngestState, port: Port) -> std::io::Result<()> {
    port.serve(router(state)).await
}

/// The OpenAPI description of ingest's endpoints.
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    let mut doc = events::EventsApi::openapi();
    doc.merge(admin::AdminApi::openapi());
    doc.merge(promo::PromoApi::openapi());
    doc.merge(browser::BrowserApi::openapi());
    doc
}
