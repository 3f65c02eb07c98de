//! The management API under `/api/v1/admin/`, authenticated with the admin bearer token.
//!
//! One module per entity: [`advertisers`] (and API keys), [`campaigns`] (and assignments),
//! [`influencers`], [`links`], [`coupons`], [`users`], [`diagnostics`] (dead-letter tail,
//! processor lag), [`publishable`] (browser tracker keys), [`webhooks`] (webhook endpoints and
//! postbacks). Authenticated by the admin bearer token or the session of an `admin` user
//! (cookie with its CSRF token, or bearer session token).

pub mod advertisers;
pub mod campaigns;
mod codes;
pub mod coupons;
pub mod diagnostics;
pub mod influencers;
pub mod links;
pub mod offers;
pub mod page;
pub mod plans;
pub mod publishable;
pub mod users;
pub mod webhooks;

use crate::IngestState;
use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use clicktrail_api::body::{parse_json, read_limited};
use clicktrail_api::error::ApiError;
use clicktrail_schemas::CatalogChange;
use clicktrail_schemas::metric_names::ingest::CATALOG_WRITES;
use serde::de::DeserializeOwned;

/// Largest admin request body.
const MAX_ADMIN_BODY: usize = 256 * 1024;

/// Proof that the request carries the admin token or an admin user's session.
pub struct Admin;

impl FromRequestParts<IngestState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &IngestState) -> Result<Self, ApiError> {
        let catalog = state.catalog.snapshot();
        match clicktrail_api::session::authenticate(
            &parts.headers,
            &parts.method,
            &catalog,
            &state.config.admin_token,
        )? {
            Some(p) if p.is_admin() => Ok(Admin),
            Some(_) => Err(ApiError::Forbidden(
                "only admins may use the management API".into(),
            )),
            None => Err(ApiError::Unauthorized(
                "missing Authorization: Bearer <admin token>, or log in as an admin".into(),
            )),
        }
    }
}

/// A JSON body whose errors name the failing field.
pub struct JsonIn<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonIn<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let bytes = read_limited(req.into_body(), MAX_ADMIN_BODY).await?;
        parse_json(&bytes).map(JsonIn)
    }
}

impl IngestState {
    /// Writes a catalog change and waits until this process applied it.
    pub async fn write(&self, change: CatalogChange) -> Result<(), ApiError> {
        let op = serde_json::to_value(&change)
            .ok()
            .and_then(|v| v.get("op").and_then(|o| o.as_str()).map(str::to_string))
            .unwrap_or_default();
        self.catalog.write(self.producer.as_ref(), &change).await?;
        metrics::counter!(CATALOG_WRITES, "op" => op).increment(1);
        Ok(())
    }
}

fn require_text(
    field: &str,
    value: &str,
    max: usize,
    errors: &mut Vec<clicktrail_api::error::FieldError>,
) {
    if value.trim().is_empty() {
        errors.push(clicktrail_api::error::FieldError::new(
            field,
            "must not be empty",
        ));
    } else if value.len() > max {
        errors.push(clicktrail_api::error::FieldError::new(
            field,
            format!("expected at most {max} characters"),
        ));
    } else if value.chars().any(char::is_control) {
        errors.push(clicktrail_api::error::FieldError::new(
            field,
            "must not contain control characters (line breaks, tabs, NUL, escapes)",
        ));
    }
}

pub(crate) fn check(errors: Vec<clicktrail_api::error::FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::fields(errors))
    }
}

/// Admin API documentation.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        advertisers::create, advertisers::list, advertisers::show, advertisers::update,
        advertisers::create_key, advertisers::list_keys, advertisers::rotate_key, advertisers::revoke_key,
        campaigns::create, campaigns::list, campaigns::show, campaigns::update,
        campaigns::assign, campaigns::unassign, campaigns::assigned,
        influencers::create, influencers::list, influencers::show, influencers::update,
        links::create, links::list, links::regenerate, links::deactivate,
        coupons::create, coupons::list, coupons::invalidate, coupons::regenerate,
        users::create, users::list, users::show, users::update, users::reset, users::remove,
        crate::accounts::login, crate::accounts::logout, crate::accounts::set_password,
        crate::accounts::change_password,
        diagnostics::dead_letter,
        diagnostics::pipeline,
        plans::show, plans::set, plans::set_override, plans::remove, plans::remove_override,
        crate::payouts::request_mine, crate::payouts::request_for, crate::payouts::mark_paid,
        crate::payouts::cancel, crate::payouts::review,
        crate::affiliate::validate,
        offers::create, offers::list, offers::show, offers::update, offers::add_variation,
        offers::update_variation,
        publishable::create, publishable::list, publishable::update,
        webhooks::create_webhook, webhooks::list_webhooks, webhooks::update_webhook,
        webhooks::create_postback, webhooks::list_postbacks, webhooks::update_postback,
    ),
    components(schemas(
        advertisers::NewAdvertiser, advertisers::AdvertiserPatch, advertisers::KeyView,
        advertisers::IssuedKey, advertisers::Rotation, campaigns::Assignment, links::LinkView,
        diagnostics::PipelineLag, diagnostics::TopicPartitionLag,
        campaigns::NewCampaign, campaigns::CampaignPatch, campaigns::Assign,
        influencers::NewInfluencer, influencers::InfluencerPatch,
        links::NewLink, coupons::NewCoupons,
        users::UserView, users::NewUser, users::UserPatch, users::Invitation,
        crate::accounts::Login, crate::accounts::SetPassword, crate::accounts::ChangePassword,
        crate::accounts::Session,
        plans::NewPlan, plans::PlanView,
        offers::NewOffer, offers::OfferPatch, offers::NewVariation, offers::VariationPatch,
        offers::OfferView, clicktrail_schemas::catalog::Offer, clicktrail_schemas::catalog::Variation,
        clicktrail_schemas::catalog::CommissionPlan, clicktrail_schemas::catalog::CommissionRate,
        crate::payouts::PayoutRequest, crate::payouts::LedgerAccepted, crate::payouts::Payment,
        crate::payouts::Cancellation, crate::payouts::Review, crate::affiliate::Validation,
        publishable::NewPublishableKey, publishable::PublishableKeyPatch,
        clicktrail_schemas::catalog::PublishableKey,
        webhooks::NewWebhook, webhooks::WebhookPatch, webhooks::WebhookView,
        webhooks::NewPostback, webhooks::PostbackPatch, clicktrail_schemas::catalog::Postback,
        clicktrail_schemas::catalog::WebhookEndpoint,
    )),
    tags((name = "admin", description = "Catalog management (admin bearer token or an admin's session)"),
        (name = "accounts", description = "Login, logout and passwords of users"),
        (name = "ledger", description = "Commission ledger: payout requests, payments, reviews"))
)]
pub struct AdminApi;

/// Every admin route.
pub fn routes() -> Router<IngestState> {
    Router::new()
        .merge(advertisers::routes())
        .merge(campaigns::routes())
        .merge(influencers::routes())
        .merge(links::routes())
        .merge(coupons::routes())
        .merge(diagnostics::routes())
        .merge(users::routes())
        .merge(plans::routes())
        .merge(offers::routes())
        .merge(publishable::routes())
        .merge(webhooks::routes())
}
