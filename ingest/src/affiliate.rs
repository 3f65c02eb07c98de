//! `GET /api/v1/affiliate/validate?code=`: whether a referral code (a tracking link's code or a
//! coupon code) is live for the calling advertiser, so that a checkout can accept or refuse it
//! before the order is placed. Authenticated by the advertiser's `X-API-KEY`; answers about
//! that advertiser's codes only (another advertiser's code is `unknown`).

use crate::IngestState;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use clicktrail_api::auth::api_key;
use clicktrail_api::error::ApiError;
use serde::{Deserialize, Serialize};

/// The query.
#[derive(Debug, Deserialize)]
pub struct ValidateQuery {
    /// The code a shopper entered or arrived with.
    pub code: Option<String>,
}

/// Whether a code is live.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Validation {
    /// The code as asked.
    pub code: String,
    /// Whether an event carrying it now would be credited to an influencer.
    pub valid: bool,
    /// `link` (a tracking link's code, as `ref_code`) or `coupon`; none when unknown.
    pub kind: Option<String>,
    /// Why not: `unknown`, `inactive`, `campaign_not_live`, `generic` (a coupon of no
    /// influencer) or `not_allowed` (the campaign credits only the other kind of touch).
    pub reason: Option<String>,
    /// The campaign it belongs to.
    pub campaign_id: Option<String>,
    /// The influencer it credits.
    pub influencer_id: Option<String>,
    /// Their display name, to show ("referred by …").
    pub influencer_name: Option<String>,
}

pub(crate) fn routes() -> Router<IngestState> {
    Router::new().route("/api/v1/affiliate/validate", get(validate))
}

/// Is this referral code live?
#[utoipa::path(get, path = "/api/v1/affiliate/validate", tag = "events", params(("code" = String, Query, description = "A link code or coupon code")),
    security(("apiKey" = [])),
    responses((status = 200, description = "Whether the code is live, and why not", body = Validation),
        (status = 400, description = "No code"), (status = 401, description = "Missing or wrong API key")))]
pub async fn validate(
    State(s): State<IngestState>,
    headers: HeaderMap,
    Query(q): Query<ValidateQuery>,
) -> Result<Json<Validation>, ApiError> {
    let catalog = s.catalog.snapshot();
    let (_, advertiser) = api_key(&headers, &catalog)?;
    let code = q.code.unwrap_or_default().trim().to_string();
    if code.is_empty() || code.len() > 64 {
        return Err(ApiError::field(
            "code",
            "expected a code of 1 to 64 characters",
        ));
    }
    let now = chrono::Utc::now();
    let mut v = Validation {
        code: code.clone(),
        valid: false,
        kind: None,
        reason: Some("unknown".into()),
        campaign_id: None,
        influencer_id: None,
        influencer_name: None,
    };
    use clicktrail_schemas::catalog::AttributionSource as A;
    let (kind, active, campaign_id, influencer_id) =
        if let Some(c) = catalog.coupon(&advertiser.id, &code) {
            (
                "coupon",
                c.active,
                c.campaign_id.clone(),
                c.influencer_id.clone(),
            )
        } else if let Some(l) = catalog
            .link_by_code(&code)
            .filter(|l| l.advertiser_id == advertiser.id)
        {
            (
                "link",
                l.active,
                l.campaign_id.clone(),
                Some(l.influencer_id.clone()),
            )
        } else {
            return Ok(Json(v));
        };
    let campaign = catalog.campaigns.get(&campaign_id);
    let allowed = campaign.is_some_and(|c| match c.attribution_source {
        A::All => true,
        A::Links => kind == "link",
        A::Coupons => kind == "coupon",
    });
    v.reason = if !active {
        Some("inactive".into())
    } else if influencer_id.is_none() {
        Some("generic".into())
    } else if !campaign.is_some_and(|c| c.is_live_at(now)) {
        Some("campaign_not_live".into())
    } else if !allowed {
        Some("not_allowed".into())
    } else {
        None
    };
    v.valid = v.reason.is_none();
    v.kind = Some(kind.into());
    v.influencer_name = influencer_id
        .as_ref()
        .and_then(|i| catalog.influencers.get(i))
        .map(|i| i.name.clone());
    v.campaign_id = Some(campaign_id);
    v.influencer_id = influencer_id;
    Ok(Json(v))
}
