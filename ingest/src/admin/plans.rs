//! Commission plans: `/api/v1/admin/campaigns/{id}/commission-plan` (the campaign's) and
//! `…/commission-plan/influencers/{influencer_id}` (an influencer's override there).

use super::campaigns::MAX_DURATION_SECS;
use super::{Admin, JsonIn, check};
use crate::IngestState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use clicktrail_api::error::{ApiError, FieldError};
use clicktrail_schemas::CatalogChange;
use clicktrail_schemas::catalog::{
    CommissionPlan, CommissionRate, DEFAULT_COOKIE_SECS, DEFAULT_HOLD_SECS, DEFAULT_MIN_CLICK_SECS,
};
use clicktrail_schemas::money::parse_currency;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The largest commission, minimum payout or flat amount: 10^12 minor units.
const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000;
/// The longest `/ref/…` cookie: 400 days, the most current browsers keep a cookie.
const MAX_COOKIE_SECS: u64 = 400 * 86_400;
/// The largest click-injection threshold: one day.
const MAX_MIN_CLICK_SECS: u64 = 86_400;

/// A commission plan as set by an admin; absent fields take their defaults.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlan {
    /// `{"type": "percent", "basis_points": 1000}` (10 % of the purchase value) or
    /// `{"type": "flat", "currency": "EUR", "purchase_minor": 500, "signup_minor": 100}`.
    pub rate: CommissionRate,
    /// Hold period in seconds (default 30 days, at most ten years).
    pub hold_secs: Option<u64>,
    /// Minimum payout per currency: ISO 4217 code → minor units above zero.
    pub min_payout: Option<BTreeMap<String, i64>>,
    /// Life of the `/ref/…` attribution cookie in seconds (default 7 days, at most 400 days).
    pub cookie_secs: Option<u64>,
    /// Click-injection threshold in seconds (default 10; 0 turns the rule off; at most a day).
    pub min_click_secs: Option<u64>,
}

/// A campaign's plan and the overrides of its influencers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlanView {
    /// The campaign's plan; none when its conversions earn nothing.
    pub plan: Option<CommissionPlan>,
    /// Influencers' overrides in this campaign.
    pub overrides: Vec<CommissionPlan>,
}

pub(crate) fn routes() -> Router<IngestState> {
    Router::new()
        .route(
            "/api/v1/admin/campaigns/{id}/commission-plan",
            get(show).put(set).delete(remove),
        )
        .route(
            "/api/v1/admin/campaigns/{id}/commission-plan/influencers/{influencer_id}",
            axum::routing::put(set_override).delete(remove_override),
        )
}

fn campaign_advertiser(s: &IngestState, id: &str) -> Result<String, ApiError> {
    s.catalog
        .snapshot()
        .campaigns
        .get(id)
        .map(|c| c.advertiser_id.clone())
        .ok_or_else(|| ApiError::NotFound(format!("no campaign {id}")))
}

fn validate(p: NewPlan) -> Result<NewPlan, ApiError> {
    let mut errors = Vec::new();
    let amount_ok = |v: i64| (1..=MAX_AMOUNT_MINOR).contains(&v);
    let rate = match p.rate {
        CommissionRate::Percent { basis_points } => {
            if !(1..=10_000).contains(&basis_points) {
                errors.push(FieldError::new(
                    "rate.basis_points",
                    "expected 1 to 10000 (hundredths of a percent: 1000 is 10 %)",
                ));
            }
            CommissionRate::Percent { basis_points }
        }
        CommissionRate::Flat {
            currency,
            purchase_minor,
            signup_minor,
        } => {
            let currency = parse_currency(&currency).unwrap_or_else(|e| {
                errors.push(FieldError::new("rate.currency", e.to_string()));
                currency
            });
            for (field, v) in [
                ("rate.purchase_minor", purchase_minor),
                ("rate.signup_minor", signup_minor),
            ] {
                if v.is_some_and(|v| !amount_ok(v)) {
                    errors.push(FieldError::new(
                        field,
                        format!("expected minor units from 1 to {MAX_AMOUNT_MINOR}"),
                    ));
                }
            }
            if purchase_minor.is_none() && signup_minor.is_none() {
                errors.push(FieldError::new(
                    "rate",
                    "a flat plan needs purchase_minor, signup_minor or both",
                ));
            }
            CommissionRate::Flat {
                currency,
                purchase_minor,
                signup_minor,
            }
        }
    };
    let limit = |field: &str, v: Option<u64>, max: u64, errors: &mut Vec<FieldError>| {
        if v.is_some_and(|v| v > max) {
            errors.push(FieldError::new(
                field,
                format!("expected at most {max} seconds"),
            ));
        }
    };
    limit("hold_secs", p.hold_secs, MAX_DURATION_SECS, &mut errors);
    limit(
        "min_click_secs",
        p.min_click_secs,
        MAX_MIN_CLICK_SECS,
        &mut errors,
    );
    limit("cookie_secs", p.cookie_secs, MAX_COOKIE_SECS, &mut errors);
    if p.cookie_secs == Some(0) {
        errors.push(FieldError::new("cookie_secs", "expected at least 1 second"));
    }
    let mut min_payout = BTreeMap::new();
    for (code, v) in p.min_payout.unwrap_or_default() {
        let field = format!("min_payout.{code}");
        match parse_currency(&code) {
            Ok(c) if amount_ok(v) => {
                min_payout.insert(c, v);
            }
            Ok(_) => errors.push(FieldError::new(
                field,
                format!("expected minor units from 1 to {MAX_AMOUNT_MINOR}"),
            )),
            Err(e) => errors.push(FieldError::new(field, e.to_string())),
        }
    }
    check(errors)?;
    Ok(NewPlan {
        rate,
        min_payout: Some(min_payout),
        ..p
    })
}

async fn save(
    s: &IngestState,
    campaign_id: String,
    influencer_id: Option<String>,
    p: NewPlan,
) -> Result<Json<CommissionPlan>, ApiError> {
    let advertiser_id = campaign_advertiser(s, &campaign_id)?;
    if let Some(inf) = &influencer_id
        && !s.catalog.snapshot().influencers.contains_key(inf)
    {
        return Err(ApiError::NotFound(format!("no influencer {inf}")));
    }
    let p = validate(p)?;
    let plan = CommissionPlan {
        campaign_id,
        influencer_id,
        advertiser_id,
        rate: p.rate,
        hold_secs: p.hold_secs.unwrap_or(DEFAULT_HOLD_SECS),
        min_payout: p.min_payout.unwrap_or_default(),
        cookie_secs: p.cookie_secs.unwrap_or(DEFAULT_COOKIE_SECS),
        min_click_secs: p.min_click_secs.unwrap_or(DEFAULT_MIN_CLICK_SECS),
        updated_at: chrono::Utc::now(),
    };
    s.write(CatalogChange::CommissionPlanSet { plan: plan.clone() })
        .await?;
    Ok(Json(plan))
}

/// A campaign's commission plan and its influencers' overrides.
#[utoipa::path(get, path = "/api/v1/admin/campaigns/{id}/commission-plan", tag = "admin", params(("id" = String, Path)),
    responses((status = 200, description = "The plan (null when none) and overrides", body = PlanView), (status = 404, description = "Unknown campaign")))]
pub async fn show(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
) -> Result<Json<PlanView>, ApiError> {
    campaign_advertiser(&s, &id)?;
    let catalog = s.catalog.snapshot();
    let mut overrides: Vec<CommissionPlan> = catalog
        .plans
        .values()
        .filter(|p| p.campaign_id == id && p.influencer_id.is_some())
        .cloned()
        .collect();
    overrides.sort_by(|a, b| a.influencer_id.cmp(&b.influencer_id));
    Ok(Json(PlanView {
        plan: catalog.campaign_plan(&id).cloned(),
        overrides,
    }))
}

/// Set a campaign's commission plan (replacing any).
#[utoipa::path(put, path = "/api/v1/admin/campaigns/{id}/commission-plan", tag = "admin", params(("id" = String, Path)), request_body = NewPlan,
    responses((status = 200, description = "Set", body = CommissionPlan), (status = 400, description = "Invalid, with each field"), (status = 404, description = "Unknown campaign")))]
pub async fn set(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
    JsonIn(p): JsonIn<NewPlan>,
) -> Result<Json<CommissionPlan>, ApiError> {
    save(&s, id, None, p).await
}

/// Set an influencer's override of a campaign's plan.
#[utoipa::path(put, path = "/api/v1/admin/campaigns/{id}/commission-plan/influencers/{influencer_id}", tag = "admin",
    params(("id" = String, Path), ("influencer_id" = String, Path)), request_body = NewPlan,
    responses((status = 200, description = "Set", body = CommissionPlan), (status = 400, description = "Invalid, with each field"), (status = 404, description = "Unknown campaign or influencer")))]
pub async fn set_override(
    _: Admin,
    State(s): State<IngestState>,
    Path((id, influencer_id)): Path<(String, String)>,
    JsonIn(p): JsonIn<NewPlan>,
) -> Result<Json<CommissionPlan>, ApiError> {
    save(&s, id, Some(influencer_id), p).await
}

async fn drop_plan(
    s: &IngestState,
    campaign_id: String,
    influencer_id: Option<String>,
) -> Result<StatusCode, ApiError> {
    campaign_advertiser(s, &campaign_id)?;
    let key = clicktrail_schemas::catalog::plan_key(&campaign_id, influencer_id.as_deref());
    if !s.catalog.snapshot().plans.contains_key(&key) {
        return Err(ApiError::NotFound("no such plan".into()));
    }
    s.write(CatalogChange::CommissionPlanRemoved {
        campaign_id,
        influencer_id,
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a campaign's plan: later conversions earn nothing; booked commissions stay.
#[utoipa::path(delete, path = "/api/v1/admin/campaigns/{id}/commission-plan", tag = "admin", params(("id" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 404, description = "Unknown campaign, or it has no plan")))]
pub async fn remove(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    drop_plan(&s, id, None).await
}

/// Remove an influencer's override: the campaign's plan applies to them again.
#[utoipa::path(delete, path = "/api/v1/admin/campaigns/{id}/commission-plan/influencers/{influencer_id}", tag = "admin",
    params(("id" = String, Path), ("influencer_id" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 404, description = "Unknown campaign, or no such override")))]
pub async fn remove_override(
    _: Admin,
    State(s): State<IngestState>,
    Path((id, influencer_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    drop_plan(&s, id, Some(influencer_id)).await
}
