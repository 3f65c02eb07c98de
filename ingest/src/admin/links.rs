//! Tracking links: one per influencer and campaign (or more), each with a unique short code.

use super::page::{Page, PageQuery, paginate};
use super::{Admin, JsonIn, check};
use crate::IngestState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use clicktrail_api::error::{ApiError, FieldError};
use clicktrail_schemas::CatalogChange;
use clicktrail_schemas::catalog::Link;
use clicktrail_schemas::ids::{LINK_CODE_ALPHABET, new_id, random_code};
use serde::{Deserialize, Serialize};

/// Length of generated link codes: 32^8 ≈ 10^12 codes.
pub const CODE_LEN: usize = 8;

/// A new link.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLink {
    /// The campaign.
    pub campaign_id: String,
    /// The influencer, who must be assigned to the campaign.
    pub influencer_id: String,
    /// A chosen code (3 to 32 of a-z, A-Z, 0-9, `-`, `_`); generated when absent.
    pub code: Option<String>,
}

#[derive(Debug, Deserialize)]
/// List filters.
pub struct ListQuery {
    /// Filter.
    pub campaign_id: Option<String>,
    /// Filter.
    pub influencer_id: Option<String>,
}

pub(super) fn routes() -> Router<IngestState> {
    Router::new()
        .route("/api/v1/admin/links", post(create).get(list))
        .route("/api/v1/admin/links/{id}/regenerate", post(regenerate))
        .route("/api/v1/admin/links/{id}/deactivate", post(deactivate))
}

/// A link with the URL shoppers follow.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LinkView {
    /// The link.
    #[serde(flatten)]
    pub link: Link,
    /// Its redirect URL, `<public URL>/r/<code>`.
    pub url: String,
}

fn with_url(s: &IngestState, l: &Link) -> LinkView {
    LinkView {
        url: format!("{}/r/{}", s.config.public_url.trim_end_matches('/'), l.code),
        link: l.clone(),
    }
}

fn valid_code(code: &str) -> bool {
    (3..=32).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Writes a change built around a fresh code, trying new codes when one is taken.
async fn with_fresh_code(
    s: &IngestState,
    chosen: Option<String>,
    make: impl Fn(String) -> CatalogChange,
) -> Result<String, ApiError> {
    if let Some(code) = chosen {
        s.write(make(code.clone())).await?;
        return Ok(code);
    }
    super::codes::write_fresh(
        s,
        || random_code(LINK_CODE_ALPHABET, CODE_LEN),
        |code| make(code.clone()),
        ApiError::Unavailable("could not find an unused code; retry".into()),
    )
    .await
}

/// Create a tracking link.
#[utoipa::path(post, path = "/api/v1/admin/links", tag = "admin", request_body = NewLink,
    responses((status = 201, description = "The link with its redirect URL", body = LinkView), (status = 400, description = "Invalid, or the influencer is not assigned"), (status = 404, description = "Unknown campaign or influencer"), (status = 409, description = "Code taken")))]
pub async fn create(
    _: Admin,
    State(s): State<IngestState>,
    JsonIn(req): JsonIn<NewLink>,
) -> Result<(StatusCode, Json<LinkView>), ApiError> {
    let campaign = super::campaigns::find(&s, &req.campaign_id)?;
    super::influencers::find(&s, &req.influencer_id)?;
    let mut errors = Vec::new();
    if !s
        .catalog
        .snapshot()
        .assignments
        .contains(&(campaign.id.clone(), req.influencer_id.clone()))
    {
        errors.push(FieldError::new(
            "influencer_id",
            "the influencer is not assigned to this campaign; assign them first",
        ));
    }
    if let Some(c) = &req.code
        && !valid_code(c)
    {
        errors.push(FieldError::new(
            "code",
            "expected 3 to 32 of a-z, A-Z, 0-9, - and _",
        ));
    }
    check(errors)?;
    let id = new_id("lnk");
    let make = |code: String| CatalogChange::LinkCreated {
        link: Link {
            id: id.clone(),
            campaign_id: campaign.id.clone(),
            influencer_id: req.influencer_id.clone(),
            advertiser_id: campaign.advertiser_id.clone(),
            code,
            active: true,
            created_at: Utc::now(),
        },
    };
    with_fresh_code(&s, req.code.clone(), make).await?;
    let link = s
        .catalog
        .snapshot()
        .links
        .get(&id)
        .cloned()
        .expect("applied");
    Ok((StatusCode::CREATED, Json(with_url(&s, &link))))
}

/// List links, optionally of one campaign or influencer.
#[utoipa::path(get, path = "/api/v1/admin/links", tag = "admin", params(("campaign_id" = Option<String>, Query), ("influencer_id" = Option<String>, Query), PageQuery), responses((status = 200, description = "Links in creation order", body = Page<LinkView>)))]
pub async fn list(
    _: Admin,
    State(s): State<IngestState>,
    Query(q): Query<ListQuery>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<LinkView>>, ApiError> {
    let c = s.catalog.snapshot();
    let all: Vec<LinkView> = c
        .links
        .values()
        .filter(|l| q.campaign_id.as_ref().is_none_or(|x| &l.campaign_id == x))
        .filter(|l| {
            q.influencer_id
                .as_ref()
                .is_none_or(|x| &l.influencer_id == x)
        })
        .map(|l| with_url(&s, l))
        .collect();
    paginate(all, &page, |v| (v.link.created_at, v.link.id.as_str())).map(Json)
}

fn find(s: &IngestState, id: &str) -> Result<Link, ApiError> {
    s.catalog
        .snapshot()
        .links
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("link `{id}` does not exist")))
}

/// Give a link a new code; the old code stops resolving (click ids already issued stay valid).
#[utoipa::path(post, path = "/api/v1/admin/links/{id}/regenerate", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "The link with its new code", body = LinkView), (status = 404, description = "Unknown")))]
pub async fn regenerate(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
) -> Result<Json<LinkView>, ApiError> {
    find(&s, &id)?;
    with_fresh_code(&s, None, |code| CatalogChange::LinkCodeChanged {
        id: id.clone(),
        code,
    })
    .await?;
    Ok(Json(with_url(&s, &find(&s, &id)?)))
}

/// Deactivate a link: its code answers 404 and is no longer credited.
#[utoipa::path(post, path = "/api/v1/admin/links/{id}/deactivate", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "Deactivated", body = LinkView), (status = 404, description = "Unknown")))]
pub async fn deactivate(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
) -> Result<Json<LinkView>, ApiError> {
    find(&s, &id)?;
    s.write(CatalogChange::LinkDeactivated { id: id.clone() })
        .await?;
    Ok(Json(with_url(&s, &find(&s, &id)?)))
}
