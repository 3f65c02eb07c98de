//! Newsletter promo offers and their text variations (`docs/promos.md`).
//!
//! - `POST /api/v1/admin/offers`, `GET /api/v1/admin/offers`: create (on one of an advertiser's
//!   tracking links) and list offers.
//! - `GET|PATCH /api/v1/admin/offers/{id}`: an offer with its variations; change its name,
//!   weight or active flag.
//! - `POST /api/v1/admin/offers/{id}/variations`: add a variation.
//! - `PATCH /api/v1/admin/variations/{id}`: change a variation's texts or approve it.

use super::page::{Page, PageQuery, paginate};
use super::{Admin, JsonIn, check, require_text};
use crate::IngestState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use chrono::Utc;
use clicktrail_api::error::{ApiError, FieldError};
use clicktrail_schemas::CatalogChange;
use clicktrail_schemas::catalog::{Offer, Variation};
use clicktrail_schemas::ids::new_id;
use serde::{Deserialize, Serialize};

/// The largest offer weight.
pub const MAX_WEIGHT: u32 = 1000;

/// A new offer.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOffer {
    /// The tracking link readers follow (its advertiser owns the offer).
    pub link_id: String,
    /// Display name, 1 to 200 characters.
    pub name: String,
    /// Relative weight for `weighted` selection, 1 to 1,000 (default 1).
    pub weight: Option<u32>,
    /// Whether it may be selected (default true).
    pub active: Option<bool>,
}

/// Changes to an offer.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferPatch {
    /// Display name.
    pub name: Option<String>,
    /// Relative weight, 1 to 1,000.
    pub weight: Option<u32>,
    /// Whether it may be selected and recorded.
    pub active: Option<bool>,
}

/// A new variation.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVariation {
    /// Headline, 1 to 200 characters.
    pub headline: String,
    /// Body text, at most 2,000 characters.
    #[serde(default)]
    pub body: String,
    /// Call-to-action text, 1 to 80 characters.
    pub cta: String,
    /// Tone (`playful`, `formal`, …), at most 40 characters.
    #[serde(default)]
    pub tone: String,
    /// Whether it may be shown now (default false: approve it later).
    #[serde(default)]
    pub approved: bool,
}

/// Changes to a variation.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariationPatch {
    /// Headline.
    pub headline: Option<String>,
    /// Body text.
    pub body: Option<String>,
    /// Call-to-action text.
    pub cta: Option<String>,
    /// Tone.
    pub tone: Option<String>,
    /// Approve (true) or withdraw (false).
    pub approved: Option<bool>,
}

/// An offer with its variations.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OfferView {
    /// The offer.
    #[serde(flatten)]
    pub offer: Offer,
    /// Its variations, in creation order.
    pub variations: Vec<Variation>,
}

#[derive(Debug, Deserialize)]
/// List filters.
pub struct ListQuery {
    /// Only this advertiser's offers.
    pub advertiser_id: Option<String>,
}

pub(super) fn routes() -> Router<IngestState> {
    Router::new()
        .route("/api/v1/admin/offers", post(create).get(list))
        .route("/api/v1/admin/offers/{id}", get(show).patch(update))
        .route("/api/v1/admin/offers/{id}/variations", post(add_variation))
        .route("/api/v1/admin/variations/{id}", patch(update_variation))
}

fn validate_offer(o: &Offer, errors: &mut Vec<FieldError>) {
    require_text("name", &o.name, 200, errors);
    if !(1..=MAX_WEIGHT).contains(&o.weight) {
        errors.push(FieldError::new(
            "weight",
            format!("expected 1 to {MAX_WEIGHT}"),
        ));
    }
}

fn validate_variation(v: &Variation, errors: &mut Vec<FieldError>) {
    require_text("headline", &v.headline, 200, errors);
    require_text("cta", &v.cta, 80, errors);
    if v.body.chars().count() > 2000 {
        errors.push(FieldError::new("body", "expected at most 2000 characters"));
    } else if v.body.chars().any(|c| c.is_control() && c != '\n') {
        errors.push(FieldError::new(
            "body",
            "must not contain control characters other than line breaks",
        ));
    }
    if v.tone.chars().count() > 40 {
        errors.push(FieldError::new("tone", "expected at most 40 characters"));
    } else if v.tone.chars().any(char::is_control) {
        errors.push(FieldError::new(
            "tone",
            "must not contain control characters",
        ));
    }
}

fn view(s: &IngestState, o: Offer) -> OfferView {
    let catalog = s.catalog.snapshot();
    let mut variations: Vec<Variation> = catalog
        .variations
        .values()
        .filter(|v| v.offer_id == o.id)
        .cloned()
        .collect();
    variations.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    OfferView {
        offer: o,
        variations,
    }
}

fn find(s: &IngestState, id: &str) -> Result<Offer, ApiError> {
    s.catalog
        .snapshot()
        .offers
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("offer `{id}` does not exist")))
}

/// Create a promo offer on a tracking link.
#[utoipa::path(post, path = "/api/v1/admin/offers", tag = "admin", request_body = NewOffer,
    responses((status = 201, description = "Created", body = OfferView), (status = 400, description = "Invalid, or no such link")))]
pub async fn create(
    _: Admin,
    State(s): State<IngestState>,
    JsonIn(req): JsonIn<NewOffer>,
) -> Result<(StatusCode, Json<OfferView>), ApiError> {
    let link = s.catalog.snapshot().links.get(&req.link_id).cloned();
    let mut errors = Vec::new();
    match &link {
        None => errors.push(FieldError::new("link_id", "no such tracking link")),
        Some(l) if !l.active => errors.push(FieldError::new(
            "link_id",
            "the link is deactivated: readers would reach a 404",
        )),
        Some(_) => {}
    }
    let o = Offer {
        id: new_id("ofr"),
        advertiser_id: link.map(|l| l.advertiser_id).unwrap_or_default(),
        link_id: req.link_id,
        name: req.name.trim().to_string(),
        weight: req.weight.unwrap_or(1),
        active: req.active.unwrap_or(true),
        created_at: Utc::now(),
    };
    validate_offer(&o, &mut errors);
    check(errors)?;
    s.write(CatalogChange::OfferUpserted { offer: o.clone() })
        .await?;
    Ok((StatusCode::CREATED, Json(view(&s, o))))
}

/// List offers (without their variations), optionally of one advertiser.
#[utoipa::path(get, path = "/api/v1/admin/offers", tag = "admin", params(("advertiser_id" = Option<String>, Query), PageQuery),
    responses((status = 200, description = "Offers in creation order", body = Page<Offer>)))]
pub async fn list(
    _: Admin,
    State(s): State<IngestState>,
    Query(q): Query<ListQuery>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<Offer>>, ApiError> {
    let all: Vec<Offer> = s
        .catalog
        .snapshot()
        .offers
        .values()
        .filter(|o| {
            q.advertiser_id
                .as_ref()
                .is_none_or(|a| &o.advertiser_id == a)
        })
        .cloned()
        .collect();
    paginate(all, &page, |o| (o.created_at, o.id.as_str())).map(Json)
}

/// An offer with its variations.
#[utoipa::path(get, path = "/api/v1/admin/offers/{id}", tag = "admin", params(("id" = String, Path)),
    responses((status = 200, description = "The offer", body = OfferView), (status = 404, description = "Unknown")))]
pub async fn show(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
) -> Result<Json<OfferView>, ApiError> {
    Ok(Json(view(&s, find(&s, &id)?)))
}

/// Change an offer's name, weight or active flag.
#[utoipa::path(patch, path = "/api/v1/admin/offers/{id}", tag = "admin", params(("id" = String, Path)), request_body = OfferPatch,
    responses((status = 200, description = "Updated", body = OfferView), (status = 400, description = "Invalid"), (status = 404, description = "Unknown")))]
pub async fn update(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
    JsonIn(p): JsonIn<OfferPatch>,
) -> Result<Json<OfferView>, ApiError> {
    let mut o = find(&s, &id)?;
    if let Some(v) = p.name {
        o.name = v.trim().to_string();
    }
    if let Some(v) = p.weight {
        o.weight = v;
    }
    if let Some(v) = p.active {
        o.active = v;
    }
    let mut errors = Vec::new();
    validate_offer(&o, &mut errors);
    check(errors)?;
    s.write(CatalogChange::OfferUpserted { offer: o.clone() })
        .await?;
    Ok(Json(view(&s, o)))
}

/// Add a text variation to an offer.
#[utoipa::path(post, path = "/api/v1/admin/offers/{id}/variations", tag = "admin", params(("id" = String, Path)), request_body = NewVariation,
    responses((status = 201, description = "Created", body = Variation), (status = 400, description = "Invalid"), (status = 404, description = "Unknown offer")))]
pub async fn add_variation(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
    JsonIn(req): JsonIn<NewVariation>,
) -> Result<(StatusCode, Json<Variation>), ApiError> {
    let o = find(&s, &id)?;
    let v = Variation {
        id: new_id("var"),
        offer_id: o.id,
        advertiser_id: o.advertiser_id,
        headline: req.headline.trim().to_string(),
        body: req.body.trim().to_string(),
        cta: req.cta.trim().to_string(),
        tone: req.tone.trim().to_string(),
        approved: req.approved,
        created_at: Utc::now(),
    };
    let mut errors = Vec::new();
    validate_variation(&v, &mut errors);
    check(errors)?;
    s.write(CatalogChange::VariationUpserted {
        variation: v.clone(),
    })
    .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// Change a variation's texts, or approve or withdraw it.
#[utoipa::path(patch, path = "/api/v1/admin/variations/{id}", tag = "admin", params(("id" = String, Path)), request_body = VariationPatch,
    responses((status = 200, description = "Updated", body = Variation), (status = 400, description = "Invalid"), (status = 404, description = "Unknown")))]
pub async fn update_variation(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
    JsonIn(p): JsonIn<VariationPatch>,
) -> Result<Json<Variation>, ApiError> {
    let mut v = s
        .catalog
        .snapshot()
        .variations
        .get(&id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("variation `{id}` does not exist")))?;
    let text = |t: Option<String>, slot: &mut String| {
        if let Some(t) = t {
            *slot = t.trim().to_string();
        }
    };
    text(p.headline, &mut v.headline);
    text(p.body, &mut v.body);
    text(p.cta, &mut v.cta);
    text(p.tone, &mut v.tone);
    if let Some(a) = p.approved {
        v.approved = a;
    }
    let mut errors = Vec::new();
    validate_variation(&v, &mut errors);
    check(errors)?;
    s.write(CatalogChange::VariationUpserted {
        variation: v.clone(),
    })
    .await?;
    Ok(Json(v))
}
