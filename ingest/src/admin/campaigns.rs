//! Campaigns and the assignment of influencers to them.

use super::page::{Page, PageQuery, paginate};
use super::{Admin, JsonIn, check, require_text};
use crate::IngestState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use clicktrail_api::error::{ApiError, FieldError};
use clicktrail_schemas::CatalogChange;
use clicktrail_schemas::catalog::{
    AttributionSource, Campaign, DEFAULT_WINDOW_SECS, Influencer, Status,
};
use clicktrail_schemas::ids::new_id;
use clicktrail_schemas::wire::MAX_DESTINATION_LEN;
use serde::Deserialize;

/// A new campaign.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCampaign {
    /// Display name.
    pub name: String,
    /// Where redirects go (http or https URL).
    pub destination_url: String,
    /// Live from (RFC 3339); absent means always.
    pub starts_at: Option<DateTime<Utc>>,
    /// Live until (RFC 3339, exclusive); absent means forever.
    pub ends_at: Option<DateTime<Utc>>,
    /// `all` (default), `links` or `coupons`.
    #[schema(value_type = Option<String>)]
    pub attribution_source: Option<AttributionSource>,
    /// Attribution window in seconds, at least 1 (default 30 days).
    pub attribution_window_secs: Option<u64>,
    /// How long a customer stays with their first touch, in seconds (default forever).
    pub trailing_expiry_secs: Option<u64>,
}

/// The longest attribution window or trailing expiry: ten years, in seconds.
pub const MAX_DURATION_SECS: u64 = 10 * 365 * 86_400;

/// Changes to a campaign; absent fields stay as they are, and `null` clears `starts_at`,
/// `ends_at` and `trailing_expiry_secs` (live from always, until forever, no expiry).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignPatch {
    /// Display name.
    pub name: Option<String>,
    /// Destination URL.
    pub destination_url: Option<String>,
    /// Live from; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub starts_at: Option<Option<DateTime<Utc>>>,
    /// Live until; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub ends_at: Option<Option<DateTime<Utc>>>,
    /// `all`, `links` or `coupons`.
    #[schema(value_type = Option<String>)]
    pub attribution_source: Option<AttributionSource>,
    /// Attribution window in seconds.
    pub attribution_window_secs: Option<u64>,
    /// Trailing expiry in seconds; `null` clears it (no expiry).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>)]
    pub trailing_expiry_secs: Option<Option<u64>>,
    /// `active` or `inactive`.
    #[schema(value_type = Option<String>)]
    pub status: Option<Status>,
}

/// An assignment of an influencer to a campaign.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Assignment {
    /// The campaign.
    pub campaign_id: String,
    /// The influencer.
    pub influencer_id: String,
    /// Whether the influencer is now assigned (false after a removal).
    pub assigned: bool,
}

/// An influencer to assign.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    /// The influencer.
    pub influencer_id: String,
}

#[derive(Debug, Deserialize)]
/// List filters.
pub struct ListQuery {
    /// Filter.
    pub advertiser_id: Option<String>,
}

/// A field given in a patch, `null` included: absent stays `None` (through `#[serde(default)]`),
/// `null` is `Some(None)`, a value is `Some(Some(value))`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

pub(super) fn routes() -> Router<IngestState> {
    Router::new()
        .route("/api/v1/admin/advertisers/{id}/campaigns", post(create))
        .route("/api/v1/admin/campaigns", get(list))
        .route("/api/v1/admin/campaigns/{id}", get(show).patch(update))
        .route(
            "/api/v1/admin/campaigns/{id}/influencers",
            post(assign).get(assigned),
        )
        .route(
            "/api/v1/admin/campaigns/{id}/influencers/{influencer_id}",
            delete(unassign),
        )
}

fn validate(c: &Campaign, errors: &mut Vec<FieldError>) {
    require_text("name", &c.name, 200, errors);
    match url::Url::parse(&c.destination_url) {
        _ if c.destination_url.len() > MAX_DESTINATION_LEN => errors.push(FieldError::new(
            "destination_url",
            format!("expected at most {MAX_DESTINATION_LEN} characters"),
        )),
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
        _ => errors.push(FieldError::new(
            "destination_url",
            "expected an absolute http or https URL",
        )),
    }
    if c.attribution_window_secs > MAX_DURATION_SECS {
        errors.push(FieldError::new(
            "attribution_window_secs",
            format!("expected at most {MAX_DURATION_SECS} seconds (ten years)"),
        ));
    }
    if c.trailing_expiry_secs
        .is_some_and(|s| s > MAX_DURATION_SECS)
    {
        errors.push(FieldError::new(
            "trailing_expiry_secs",
            format!("expected at most {MAX_DURATION_SECS} seconds (ten years), or leave it out for no expiry"),
        ));
    }
    if c.attribution_window_secs < 1 {
        errors.push(FieldError::new(
            "attribution_window_secs",
            "expected at least 1 second",
        ));
    }
    if c.trailing_expiry_secs == Some(0) {
        errors.push(FieldError::new(
            "trailing_expiry_secs",
            "expected at least 1 second, or leave it out for no expiry",
        ));
    }
    if let (Some(s), Some(e)) = (c.starts_at, c.ends_at)
        && e <= s
    {
        errors.push(FieldError::new("ends_at", "must be after starts_at"));
    }
}

/// Create a campaign under an advertiser.
#[utoipa::path(post, path = "/api/v1/admin/advertisers/{id}/campaigns", tag = "admin", params(("id" = String, Path)), request_body = NewCampaign,
    responses((status = 201, description = "Created", body = Campaign), (status = 400, description = "Invalid fields"), (status = 404, description = "Unknown advertiser")))]
pub async fn create(
    _: Admin,
    State(s): State<IngestState>,
    Path(advertiser_id): Path<String>,
    JsonIn(req): JsonIn<NewCampaign>,
) -> Result<(StatusCode, Json<Campaign>), ApiError> {
    super::advertisers::find(&s, &advertiser_id)?;
    let c = Campaign {
        id: new_id("cmp"),
        advertiser_id,
        name: req.name.trim().to_string(),
        destination_url: req.destination_url.trim().to_string(),
        starts_at: req.starts_at,
        ends_at: req.ends_at,
        attribution_source: req.attribution_source.unwrap_or_default(),
        attribution_window_secs: req.attribution_window_secs.unwrap_or(DEFAULT_WINDOW_SECS),
        trailing_expiry_secs: req.trailing_expiry_secs,
        status: Status::Active,
        created_at: Utc::now(),
    };
    let mut errors = Vec::new();
    validate(&c, &mut errors);
    check(errors)?;
    s.write(CatalogChange::CampaignUpserted {
        campaign: c.clone(),
    })
    .await?;
    Ok((StatusCode::CREATED, Json(c)))
}

/// List campaigns, optionally of one advertiser.
#[utoipa::path(get, path = "/api/v1/admin/campaigns", tag = "admin", params(("advertiser_id" = Option<String>, Query), PageQuery), responses((status = 200, description = "Campaigns in creation order", body = Page<Campaign>)))]
pub async fn list(
    _: Admin,
    State(s): State<IngestState>,
    Query(q): Query<ListQuery>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<Campaign>>, ApiError> {
    let c = s.catalog.snapshot();
    let all: Vec<Campaign> = c
        .campaigns
        .values()
        .filter(|x| {
            q.advertiser_id
                .as_ref()
                .is_none_or(|a| &x.advertiser_id == a)
        })
        .cloned()
        .collect();
    paginate(all, &page, |c| (c.created_at, c.id.as_str())).map(Json)
}

pub(super) fn find(s: &IngestState, id: &str) -> Result<Campaign, ApiError> {
    s.catalog
        .snapshot()
        .campaigns
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("campaign `{id}` does not exist")))
}

/// Get a campaign.
#[utoipa::path(get, path = "/api/v1/admin/campaigns/{id}", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "The campaign", body = Campaign), (status = 404, description = "Unknown")))]
pub async fn show(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
) -> Result<Json<Campaign>, ApiError> {
    find(&s, &id).map(Json)
}

/// Update a campaign.
#[utoipa::path(patch, path = "/api/v1/admin/campaigns/{id}", tag = "admin", params(("id" = String, Path)), request_body = CampaignPatch, responses((status = 200, description = "Updated", body = Campaign), (status = 400, description = "Invalid"), (status = 404, description = "Unknown")))]
pub async fn update(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
    JsonIn(p): JsonIn<CampaignPatch>,
) -> Result<Json<Campaign>, ApiError> {
    let mut c = find(&s, &id)?;
    if let Some(v) = p.name {
        c.name = v.trim().to_string();
    }
    if let Some(v) = p.destination_url {
        c.destination_url = v.trim().to_string();
    }
    if let Some(v) = p.starts_at {
        c.starts_at = v;
    }
    if let Some(v) = p.ends_at {
        c.ends_at = v;
    }
    if let Some(v) = p.attribution_source {
        c.attribution_source = v;
    }
    if let Some(v) = p.attribution_window_secs {
        c.attribution_window_secs = v;
    }
    if let Some(v) = p.trailing_expiry_secs {
        c.trailing_expiry_secs = v;
    }
    if let Some(v) = p.status {
        c.status = v;
    }
    let mut errors = Vec::new();
    validate(&c, &mut errors);
    check(errors)?;
    s.write(CatalogChange::CampaignUpserted {
        campaign: c.clone(),
    })
    .await?;
    Ok(Json(c))
}

/// Assign an influencer to a campaign.
#[utoipa::path(post, path = "/api/v1/admin/campaigns/{id}/influencers", tag = "admin", params(("id" = String, Path)), request_body = Assign, responses((status = 201, description = "Assigned", body = Assignment), (status = 404, description = "Unknown campaign or influencer")))]
pub async fn assign(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
    JsonIn(req): JsonIn<Assign>,
) -> Result<(StatusCode, Json<Assignment>), ApiError> {
    find(&s, &id)?;
    super::influencers::find(&s, &req.influencer_id)?;
    s.write(CatalogChange::InfluencerAssigned {
        campaign_id: id.clone(),
        influencer_id: req.influencer_id.clone(),
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Assignment {
            campaign_id: id,
            influencer_id: req.influencer_id,
            assigned: true,
        }),
    ))
}

/// Remove an influencer from a campaign.
#[utoipa::path(delete, path = "/api/v1/admin/campaigns/{id}/influencers/{influencer_id}", tag = "admin", params(("id" = String, Path), ("influencer_id" = String, Path)), responses((status = 200, description = "Unassigned", body = Assignment), (status = 404, description = "Not assigned")))]
pub async fn unassign(
    _: Admin,
    State(s): State<IngestState>,
    Path((id, influencer_id)): Path<(String, String)>,
) -> Result<Json<Assignment>, ApiError> {
    if !s
        .catalog
        .snapshot()
        .assignments
        .contains(&(id.clone(), influencer_id.clone()))
    {
        return Err(ApiError::NotFound(format!(
            "influencer `{influencer_id}` is not assigned to campaign `{id}`"
        )));
    }
    s.write(CatalogChange::InfluencerUnassigned {
        campaign_id: id.clone(),
        influencer_id: influencer_id.clone(),
    })
    .await?;
    Ok(Json(Assignment {
        campaign_id: id,
        influencer_id,
        assigned: false,
    }))
}

/// The influencers assigned to a campaign.
#[utoipa::path(get, path = "/api/v1/admin/campaigns/{id}/influencers", tag = "admin", params(("id" = String, Path), PageQuery), responses((status = 200, description = "Influencers in creation order", body = Page<Influencer>)))]
pub async fn assigned(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<Influencer>>, ApiError> {
    find(&s, &id)?;
    let c = s.catalog.snapshot();
    let out: Vec<Influencer> = c
        .assignments
        .iter()
        .filter(|(cmp, _)| cmp == &id)
        .filter_map(|(_, inf)| c.influencers.get(inf).cloned())
        .collect();
    paginate(out, &page, |i| (i.created_at, i.id.as_str())).map(Json)
}
