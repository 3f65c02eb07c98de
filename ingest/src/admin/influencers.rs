//! Influencers.

use super::page::{Page, PageQuery, paginate};
use super::{Admin, JsonIn, check, require_text};
use crate::IngestState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use clicktrail_api::error::{ApiError, FieldError};
use clicktrail_schemas::CatalogChange;
use clicktrail_schemas::catalog::{Influencer, Status};
use clicktrail_schemas::ids::new_id;
use serde::Deserialize;

/// A new influencer.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInfluencer {
    /// Display name.
    pub name: String,
    /// Contact address.
    pub email: Option<String>,
}

/// Changes to an influencer.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InfluencerPatch {
    /// Display name.
    pub name: Option<String>,
    /// Contact address.
    pub email: Option<String>,
    /// `active` or `inactive`.
    #[schema(value_type = Option<String>)]
    pub status: Option<Status>,
}

pub(super) fn routes() -> Router<IngestState> {
    Router::new()
        .route("/api/v1/admin/influencers", post(create).get(list))
        .route("/api/v1/admin/influencers/{id}", get(show).patch(update))
}

fn validate(i: &Influencer, errors: &mut Vec<FieldError>) {
    require_text("name", &i.name, 200, errors);
    if let Some(e) = &i.email
        && (!e.contains('@') || e.len() > 254)
    {
        errors.push(FieldError::new("email", "expected an email address"));
    }
}

/// Create an influencer.
#[utoipa::path(post, path = "/api/v1/admin/influencers", tag = "admin", request_body = NewInfluencer, responses((status = 201, description = "Created", body = Influencer), (status = 400, description = "Invalid")))]
pub async fn create(
    _: Admin,
    State(s): State<IngestState>,
    JsonIn(req): JsonIn<NewInfluencer>,
) -> Result<(StatusCode, Json<Influencer>), ApiError> {
    let i = Influencer {
        id: new_id("inf"),
        name: req.name.trim().to_string(),
        email: req.email.map(|e| e.trim().to_string()),
        status: Status::Active,
        created_at: Utc::now(),
    };
    let mut errors = Vec::new();
    validate(&i, &mut errors);
    check(errors)?;
    s.write(CatalogChange::InfluencerUpserted {
        influencer: i.clone(),
    })
    .await?;
    Ok((StatusCode::CREATED, Json(i)))
}

/// List influencers.
#[utoipa::path(get, path = "/api/v1/admin/influencers", tag = "admin", params(PageQuery), responses((status = 200, description = "Influencers in creation order", body = Page<Influencer>)))]
pub async fn list(
    _: Admin,
    State(s): State<IngestState>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<Influencer>>, ApiError> {
    let all: Vec<Influencer> = s.catalog.snapshot().influencers.values().cloned().collect();
    paginate(all, &page, |i| (i.created_at, i.id.as_str())).map(Json)
}

pub(super) fn find(s: &IngestState, id: &str) -> Result<Influencer, ApiError> {
    s.catalog
        .snapshot()
        .influencers
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("influencer `{id}` does not exist")))
}

/// Get an influencer.
#[utoipa::path(get, path = "/api/v1/admin/influencers/{id}", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "The influencer", body = Influencer), (status = 404, description = "Unknown")))]
pub async fn show(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
) -> Result<Json<Influencer>, ApiError> {
    find(&s, &id).map(Json)
}

/// Update an influencer.
#[utoipa::path(patch, path = "/api/v1/admin/influencers/{id}", tag = "admin", params(("id" = String, Path)), request_body = InfluencerPatch, responses((status = 200, description = "Updated", body = Influencer), (status = 404, description = "Unknown")))]
pub async fn update(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
    JsonIn(p): JsonIn<InfluencerPatch>,
) -> Result<Json<Influencer>, ApiError> {
    let mut i = find(&s, &id)?;
    if let Some(v) = p.name {
        i.name = v.trim().to_string();
    }
    if p.email.is_some() {
        i.email = p.email;
    }
    if let Some(v) = p.status {
        i.status = v;
    }
    let mut errors = Vec::new();
    validate(&i, &mut errors);
    check(errors)?;
    s.write(CatalogChange::InfluencerUpserted {
        influencer: i.clone(),
    })
    .await?;
    Ok(Json(i))
}
