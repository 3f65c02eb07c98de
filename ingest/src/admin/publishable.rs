//! Publishable keys (`pk_…`) for the browser tracker, each bound to an allow-list of origins.

use super::page::{Page, PageQuery, paginate};
use super::{Admin, JsonIn, check};
use crate::IngestState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{patch, post};
use axum::{Json, Router};
use chrono::Utc;
use clicktrail_api::error::{ApiError, FieldError};
use clicktrail_schemas::CatalogChange;
use clicktrail_schemas::catalog::{PublishableKey, normalize_origin};
use clicktrail_schemas::ids::random_code;
use serde::Deserialize;

/// Origins one key may list at most.
pub const MAX_ORIGINS: usize = 50;

/// A new publishable key.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPublishableKey {
    /// Origins whose pages may send with it (`https://shop.example.com`, 1 to 50).
    pub allowed_origins: Vec<String>,
}

/// Changes to a publishable key; absent fields stay as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishableKeyPatch {
    /// The new allow-list, replacing the old (1 to 50 origins).
    pub allowed_origins: Option<Vec<String>>,
    /// Whether it is accepted.
    pub active: Option<bool>,
}

pub(super) fn routes() -> Router<IngestState> {
    Router::new()
        .route(
            "/api/v1/admin/advertisers/{id}/publishable-keys",
            post(create).get(list),
        )
        .route("/api/v1/admin/publishable-keys/{key}", patch(update))
}

/// The canonical allow-list, or every origin's error.
fn origins(list: &[String]) -> Result<Vec<String>, ApiError> {
    let mut errors = Vec::new();
    if list.is_empty() || list.len() > MAX_ORIGINS {
        errors.push(FieldError::new(
            "allowed_origins",
            format!("expected 1 to {MAX_ORIGINS} origins"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, raw) in list.iter().enumerate() {
        match normalize_origin(raw) {
            Ok(o) if !out.contains(&o) => out.push(o),
            Ok(_) => {}
            Err(e) => errors.push(FieldError::new(format!("allowed_origins[{i}]"), e)),
        }
    }
    check(errors)?;
    Ok(out)
}

/// Create a publishable key for an advertiser's web pages.
#[utoipa::path(post, path = "/api/v1/admin/advertisers/{id}/publishable-keys", tag = "admin",
    params(("id" = String, Path)), request_body = NewPublishableKey,
    responses((status = 201, description = "Created", body = PublishableKey), (status = 400, description = "Invalid origins, each named"), (status = 404, description = "Unknown advertiser")))]
pub async fn create(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
    JsonIn(req): JsonIn<NewPublishableKey>,
) -> Result<(StatusCode, Json<PublishableKey>), ApiError> {
    super::advertisers::find(&s, &id)?;
    let allowed_origins = origins(&req.allowed_origins)?;
    let key = PublishableKey {
        key: format!(
            "pk_{}",
            random_code(b"abcdefghijkmnpqrstuvwxyz23456789", 24)
        ),
        advertiser_id: id,
        allowed_origins,
        active: true,
        created_at: Utc::now(),
    };
    s.write(CatalogChange::PublishableKeyUpserted { key: key.clone() })
        .await?;
    Ok((StatusCode::CREATED, Json(key)))
}

/// List an advertiser's publishable keys.
#[utoipa::path(get, path = "/api/v1/admin/advertisers/{id}/publishable-keys", tag = "admin",
    params(("id" = String, Path), PageQuery),
    responses((status = 200, description = "Keys in creation order", body = Page<PublishableKey>), (status = 404, description = "Unknown advertiser")))]
pub async fn list(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<PublishableKey>>, ApiError> {
    super::advertisers::find(&s, &id)?;
    let keys: Vec<PublishableKey> = s
        .catalog
        .snapshot()
        .publishable_keys
        .values()
        .filter(|k| k.advertiser_id == id)
        .cloned()
        .collect();
    paginate(keys, &page, |k| (k.created_at, k.key.as_str())).map(Json)
}

/// Change a publishable key's allow-list or switch it off or on.
#[utoipa::path(patch, path = "/api/v1/admin/publishable-keys/{key}", tag = "admin",
    params(("key" = String, Path)), request_body = PublishableKeyPatch,
    responses((status = 200, description = "Updated", body = PublishableKey), (status = 400, description = "Invalid origins"), (status = 404, description = "Unknown key")))]
pub async fn update(
    _: Admin,
    State(s): State<IngestState>,
    Path(key): Path<String>,
    JsonIn(p): JsonIn<PublishableKeyPatch>,
) -> Result<Json<PublishableKey>, ApiError> {
    let mut k = s
        .catalog
        .snapshot()
        .publishable_keys
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("publishable key `{key}` does not exist")))?;
    if let Some(list) = p.allowed_origins {
        k.allowed_origins = origins(&list)?;
    }
    if let Some(active) = p.active {
        k.active = active;
    }
    s.write(CatalogChange::PublishableKeyUpserted { key: k.clone() })
        .await?;
    Ok(Json(k))
}
