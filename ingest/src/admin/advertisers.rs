//! Advertisers and their API keys.

use super::page::{Page, PageQuery, paginate};
use super::{Admin, JsonIn, check, require_text};
use crate::IngestState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::Utc;
use clicktrail_api::error::ApiError;
use clicktrail_schemas::CatalogChange;
use clicktrail_schemas::catalog::{Advertiser, ApiKey, Status, api_key_prefix, hash_api_key};
use clicktrail_schemas::ids::{new_id, random_code};
use serde::{Deserialize, Serialize};

/// A new advertiser.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAdvertiser {
    /// Display name.
    pub name: String,
    /// Require HMAC-signed event requests (default false).
    #[serde(default)]
    pub require_signature: bool,
    /// Count purchases sent from web pages toward revenue and commissions (default false:
    /// they count as events only).
    #[serde(default)]
    pub browser_purchases_count: bool,
}

/// Changes to an advertiser; absent fields stay as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvertiserPatch {
    /// Display name.
    pub name: Option<String>,
    /// `active` or `inactive`.
    #[schema(value_type = Option<String>)]
    pub status: Option<Status>,
    /// Require signed event requests.
    pub require_signature: Option<bool>,
    /// Count purchases sent from web pages toward revenue and commissions.
    pub browser_purchases_count: Option<bool>,
}

/// An API key as listed: never the secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    /// Id, `key_…`.
    pub id: String,
    /// Owner.
    pub advertiser_id: String,
    /// The public part of the key before its secret (`ct_XXXXXXXX`).
    pub prefix: String,
    /// Creation time.
    pub created_at: chrono::DateTime<Utc>,
    /// When it stops (or stopped) working, if revoked or rotated.
    pub revoked_at: Option<chrono::DateTime<Utc>>,
}

/// A key as issued: shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedKey {
    /// Id, `key_…`.
    pub id: String,
    /// Owner.
    pub advertiser_id: String,
    /// The public part of the key.
    pub prefix: String,
    /// Creation time.
    pub created_at: chrono::DateTime<Utc>,
    /// Always absent for a new key.
    pub revoked_at: Option<chrono::DateTime<Utc>>,
    /// The whole key, for `X-API-KEY`; only its SHA-256 is kept.
    pub key: String,
    /// The secret that signs event requests (`X-Clicktrail-Signature`).
    pub signing_secret: String,
    /// After a rotation: when the key it replaces stops working.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_key_revoked_at: Option<chrono::DateTime<Utc>>,
}

fn view(k: &ApiKey) -> KeyView {
    KeyView {
        id: k.id.clone(),
        advertiser_id: k.advertiser_id.clone(),
        prefix: k.prefix.clone(),
        created_at: k.created_at,
        revoked_at: k.revoked_at,
    }
}

pub(super) fn routes() -> Router<IngestState> {
    Router::new()
        .route("/api/v1/admin/advertisers", post(create).get(list))
        .route("/api/v1/admin/advertisers/{id}", get(show).patch(update))
        .route(
            "/api/v1/admin/advertisers/{id}/api-keys",
            post(create_key).get(list_keys),
        )
        .route("/api/v1/admin/api-keys/{id}/rotate", post(rotate_key))
        .route("/api/v1/admin/api-keys/{id}", delete(revoke_key))
}

/// Create an advertiser.
#[utoipa::path(post, path = "/api/v1/admin/advertisers", tag = "admin", request_body = NewAdvertiser,
    responses((status = 201, description = "Created", body = Advertiser), (status = 400, description = "Invalid fields"), (status = 401, description = "Not admin")))]
pub async fn create(
    _: Admin,
    State(s): State<IngestState>,
    JsonIn(req): JsonIn<NewAdvertiser>,
) -> Result<(StatusCode, Json<Advertiser>), ApiError> {
    let mut errors = Vec::new();
    require_text("name", &req.name, 200, &mut errors);
    check(errors)?;
    let advertiser = Advertiser {
        id: new_id("adv"),
        name: req.name.trim().to_string(),
        status: Status::Active,
        require_signature: req.require_signature,
        browser_purchases_count: req.browser_purchases_count,
        created_at: Utc::now(),
    };
    s.write(CatalogChange::AdvertiserUpserted {
        advertiser: advertiser.clone(),
    })
    .await?;
    Ok((StatusCode::CREATED, Json(advertiser)))
}

/// List advertisers.
#[utoipa::path(get, path = "/api/v1/admin/advertisers", tag = "admin", params(PageQuery), responses((status = 200, description = "Advertisers in creation order", body = Page<Advertiser>)))]
pub async fn list(
    _: Admin,
    State(s): State<IngestState>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<Advertiser>>, ApiError> {
    let all: Vec<Advertiser> = s.catalog.snapshot().advertisers.values().cloned().collect();
    paginate(all, &page, |a| (a.created_at, a.id.as_str())).map(Json)
}

pub(super) fn find(s: &IngestState, id: &str) -> Result<Advertiser, ApiError> {
    s.catalog
        .snapshot()
        .advertisers
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("advertiser `{id}` does not exist")))
}

/// Get an advertiser.
#[utoipa::path(get, path = "/api/v1/admin/advertisers/{id}", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "The advertiser", body = Advertiser), (status = 404, description = "Unknown")))]
pub async fn show(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
) -> Result<Json<Advertiser>, ApiError> {
    find(&s, &id).map(Json)
}

/// Update an advertiser (name, status, signature requirement, whether browser purchases count).
#[utoipa::path(patch, path = "/api/v1/admin/advertisers/{id}", tag = "admin", params(("id" = String, Path)), request_body = AdvertiserPatch, responses((status = 200, description = "Updated", body = Advertiser), (status = 404, description = "Unknown")))]
pub async fn update(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
    JsonIn(p): JsonIn<AdvertiserPatch>,
) -> Result<Json<Advertiser>, ApiError> {
    let mut a = find(&s, &id)?;
    let mut errors = Vec::new();
    if let Some(name) = p.name {
        require_text("name", &name, 200, &mut errors);
        a.name = name.trim().to_string();
    }
    check(errors)?;
    if let Some(st) = p.status {
        a.status = st;
    }
    if let Some(r) = p.require_signature {
        a.require_signature = r;
    }
    if let Some(b) = p.browser_purchases_count {
        a.browser_purchases_count = b;
    }
    s.write(CatalogChange::AdvertiserUpserted {
        advertiser: a.clone(),
    })
    .await?;
    Ok(Json(a))
}

async fn issue_key(s: &IngestState, advertiser_id: &str) -> Result<IssuedKey, ApiError> {
    for _ in 0..5 {
        let prefix = format!("ct_{}", random_code(b"abcdefghijkmnpqrstuvwxyz23456789", 8));
        if s.catalog.snapshot().key_prefix_taken(&prefix) {
            continue;
        }
        let secret = random_code(
            b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789",
            40,
        );
        let full = format!("{prefix}_{secret}");
        debug_assert_eq!(api_key_prefix(&full), Some(prefix.as_str()));
        let key = ApiKey {
            id: new_id("key"),
            advertiser_id: advertiser_id.to_string(),
            prefix,
            hash: hash_api_key(&full),
            signing_secret: String::new(),
            created_at: Utc::now(),
            revoked_at: None,
        };
        s.write(CatalogChange::ApiKeyCreated { key: key.clone() })
            .await?;
        return Ok(IssuedKey {
            id: key.id.clone(),
            advertiser_id: key.advertiser_id.clone(),
            prefix: key.prefix.clone(),
            created_at: key.created_at,
            revoked_at: None,
            signing_secret: key.signing_secret(&s.config.signing_key),
            key: full,
            old_key_revoked_at: None,
        });
    }
    Err(ApiError::Unavailable(
        "could not pick an unused key prefix; retry".into(),
    ))
}

/// Create an API key. The key and its signing secret are in this answer only; keep them.
#[utoipa::path(post, path = "/api/v1/admin/advertisers/{id}/api-keys", tag = "admin", params(("id" = String, Path)), responses((status = 201, description = "The key, shown once", body = IssuedKey), (status = 404, description = "Unknown advertiser")))]
pub async fn create_key(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<IssuedKey>), ApiError> {
    find(&s, &id)?;
    Ok((StatusCode::CREATED, Json(issue_key(&s, &id).await?)))
}

/// List an advertiser's keys (prefixes only).
#[utoipa::path(get, path = "/api/v1/admin/advertisers/{id}/api-keys", tag = "admin", params(("id" = String, Path), PageQuery), responses((status = 200, description = "Keys without secrets, in creation order", body = Page<KeyView>)))]
pub async fn list_keys(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<KeyView>>, ApiError> {
    find(&s, &id)?;
    let c = s.catalog.snapshot();
    let keys: Vec<KeyView> = c
        .api_keys
        .values()
        .filter(|k| k.advertiser_id == id)
        .map(view)
        .collect();
    paginate(keys, &page, |k| (k.created_at, k.id.as_str())).map(Json)
}

fn find_key(s: &IngestState, id: &str) -> Result<ApiKey, ApiError> {
    s.catalog
        .snapshot()
        .api_keys
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("API key `{id}` does not exist")))
}

/// How long a rotated key keeps working beside its successor unless the request says
/// otherwise: one day, to deploy the new key without losing events.
pub const DEFAULT_ROTATION_OVERLAP_SECS: u32 = 86_400;
/// The longest overlap a rotation may ask for: seven days.
pub const MAX_ROTATION_OVERLAP_SECS: u32 = 7 * 86_400;

/// A rotation; the body may be empty.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// Seconds the old key keeps working beside the new one (default 86400, at most 604800;
    /// 0 revokes it at once).
    pub overlap_secs: Option<u32>,
}

/// Rotate a live key: a new key is issued and the old one is revoked after the overlap
/// (`old_key_revoked_at` in the answer). A key already revoked, or already rotated, is not
/// rotated again (409): create a new key instead.
#[utoipa::path(post, path = "/api/v1/admin/api-keys/{id}/rotate", tag = "admin", params(("id" = String, Path)), request_body = Option<Rotation>,
    responses((status = 201, description = "The new key, shown once", body = IssuedKey), (status = 400, description = "Invalid overlap"), (status = 404, description = "Unknown key"), (status = 409, description = "Revoked or already rotated")))]
pub async fn rotate_key(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<IssuedKey>), ApiError> {
    let bytes = clicktrail_api::body::read_limited(body, super::MAX_ADMIN_BODY).await?;
    let rotation: Rotation = if bytes.iter().all(u8::is_ascii_whitespace) {
        Rotation::default()
    } else {
        clicktrail_api::body::parse_json(&bytes)?
    };
    let overlap = rotation
        .overlap_secs
        .unwrap_or(DEFAULT_ROTATION_OVERLAP_SECS);
    if overlap > MAX_ROTATION_OVERLAP_SECS {
        return Err(ApiError::field(
            "overlap_secs",
            format!("expected at most {MAX_ROTATION_OVERLAP_SECS} seconds (seven days)"),
        ));
    }
    let old = find_key(&s, &id)?;
    let now = Utc::now();
    match old.revoked_at {
        Some(at) if at <= now => {
            return Err(ApiError::Conflict(format!(
                "API key `{id}` is revoked and stays revoked; create a new key instead"
            )));
        }
        Some(at) => {
            return Err(ApiError::Conflict(format!(
                "API key `{id}` was already rotated and stops working at {}; rotate its \
                 successor or create a new key",
                at.to_rfc3339()
            )));
        }
        None => {}
    }
    let mut new = issue_key(&s, &old.advertiser_id).await?;
    let revoked_at = now + chrono::Duration::seconds(i64::from(overlap));
    s.write(CatalogChange::ApiKeyRevoked { id, at: revoked_at })
        .await?;
    new.old_key_revoked_at = Some(revoked_at);
    Ok((StatusCode::CREATED, Json(new)))
}

/// Revoke a key.
#[utoipa::path(delete, path = "/api/v1/admin/api-keys/{id}", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "Revoked", body = KeyView), (status = 404, description = "Unknown key")))]
pub async fn revoke_key(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
) -> Result<Json<KeyView>, ApiError> {
    find_key(&s, &id)?;
    s.write(CatalogChange::ApiKeyRevoked {
        id: id.clone(),
        at: Utc::now(),
    })
    .await?;
    let key = find_key(&s, &id)?;
    Ok(Json(view(&key)))
}
