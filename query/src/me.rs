//! The logged-in user's own API: `GET /api/v1/me` (who am I), and for influencer users their
//! figures (`/api/v1/me/stats/…`), links and coupons.
//!
//! An influencer's figures are the shared stats computed in [`Scope::Influencer`]: only clicks
//! of their own links and events credited to them, in the campaigns they are assigned to, and
//! only as aggregates. No route here returns a customer id, order id, referrer, address-derived
//! field or another influencer's name.

use crate::scope::Scope;
use crate::stats::{self, Dim};
use crate::{QueryState, internal};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use clicktrail_api::error::ApiError;
use clicktrail_schemas::catalog::UserRole;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

pub(crate) fn routes() -> Router<QueryState> {
    Router::new()
        .route("/api/v1/me", get(me))
        .route("/api/v1/me/links", get(links))
        .route("/api/v1/me/coupons", get(coupons))
        .route("/api/v1/me/stats/overview", get(overview))
        .route("/api/v1/me/stats/chart", get(chart))
        .route("/api/v1/me/stats/funnel", get(funnel))
        .route("/api/v1/me/stats/per-campaign", get(per_campaign))
        .route("/api/v1/me/stats/per-link", get(per_link))
        .route("/api/v1/me/stats/per-sub-id", get(per_sub_id))
}

/// The logged-in user.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    /// User id.
    pub id: String,
    /// Login email address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// `admin`, `advertiser` or `influencer`.
    pub role: UserRole,
    /// The advertiser of an advertiser user.
    pub advertiser_id: Option<String>,
    /// Its name.
    pub advertiser_name: Option<String>,
    /// The influencer of an influencer user.
    pub influencer_id: Option<String>,
    /// Their name.
    pub influencer_name: Option<String>,
    /// When the session ends.
    pub session_expires_at: chrono::DateTime<chrono::Utc>,
}

/// Who is logged in.
#[utoipa::path(get, path = "/api/v1/me", tag = "me", security(("session" = [])),
    responses((status = 200, description = "The user of the session", body = Me), (status = 401, description = "Not logged in"), (status = 403, description = "A token or key that is not a user's")))]
pub async fn me(State(state): State<QueryState>, headers: HeaderMap) -> Result<Json<Me>, ApiError> {
    let (_, user) = Scope::caller(&headers, &state)?;
    let user = user.ok_or_else(|| {
        ApiError::Forbidden("/api/v1/me is a logged-in user's; this credential is not one".into())
    })?;
    let catalog = state.catalog.snapshot();
    let name = catalog
        .users
        .get(&user.id)
        .map(|u| u.name.clone())
        .unwrap_or_default();
    Ok(Json(Me {
        advertiser_name: user
            .advertiser_id
            .as_ref()
            .and_then(|a| catalog.advertisers.get(a))
            .map(|a| a.name.clone()),
        influencer_name: user
            .influencer_id
            .as_ref()
            .and_then(|i| catalog.influencers.get(i))
            .map(|i| i.name.clone()),
        id: user.id,
        email: user.email,
        name,
        role: user.role,
        advertiser_id: user.advertiser_id,
        influencer_id: user.influencer_id,
        session_expires_at: chrono::DateTime::from_timestamp(user.claims.exp, 0)
            .unwrap_or_default(),
    }))
}

/// The influencer and their assigned campaigns of an influencer user's request.
/// Errors: 401 without a session, 403 for any other caller.
fn mine(headers: &HeaderMap, state: &QueryState) -> Result<(String, Vec<String>), ApiError> {
    match Scope::me(headers, state)?.0 {
        Scope::Influencer {
            influencer_id,
            campaigns,
        } => Ok((influencer_id, campaigns)),
        _ => Err(internal("not an influencer scope")),
    }
}

/// Live campaigns first, then active items, then by campaign name and code.
fn order<T>(items: &mut [T], key: impl Fn(&T) -> (bool, bool, &String, &String)) {
    items.sort_by(|a, b| {
        let (al, aa, an, ac) = key(a);
        let (bl, ba, bn, bc) = key(b);
        (bl, ba, an, ac).cmp(&(al, aa, bn, bc))
    });
}

/// One of the influencer's tracking links.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MyLink {
    /// Link id.
    pub id: String,
    /// The short code.
    pub code: String,
    /// The URL to share: `{public_url}/r/{code}`.
    pub url: String,
    /// Whether the code resolves.
    pub active: bool,
    /// Campaign id.
    pub campaign_id: String,
    /// Campaign name.
    pub campaign_name: String,
    /// Whether the campaign is live now.
    pub campaign_live: bool,
}

/// One of the influencer's coupons.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MyCoupon {
    /// Coupon id.
    pub id: String,
    /// The code.
    pub code: String,
    /// Whether it still credits.
    pub active: bool,
    /// Campaign id.
    pub campaign_id: String,
    /// Campaign name.
    pub campaign_name: String,
    /// Whether the campaign is live now.
    pub campaign_live: bool,
}

/// The influencer's links in the campaigns they are assigned to, live campaigns first.
#[utoipa::path(get, path = "/api/v1/me/links", tag = "me", security(("session" = [])),
    responses((status = 200, description = "Links", body = Vec<MyLink>), (status = 401, description = "Not logged in"), (status = 403, description = "Not an influencer user")))]
pub async fn links(
    State(state): State<QueryState>,
    headers: HeaderMap,
) -> Result<Json<Vec<MyLink>>, ApiError> {
    let (influencer_id, campaigns) = mine(&headers, &state)?;
    let catalog = state.catalog.snapshot();
    let now = chrono::Utc::now();
    let mut out: Vec<MyLink> = catalog
        .links
        .values()
        .filter(|l| l.influencer_id == influencer_id && campaigns.contains(&l.campaign_id))
        .filter_map(|l| {
            let c = catalog.campaigns.get(&l.campaign_id)?;
            Some(MyLink {
                id: l.id.clone(),
                url: format!("{}/r/{}", state.public_url.trim_end_matches('/'), l.code),
                code: l.code.clone(),
                active: l.active,
                campaign_id: c.id.clone(),
                campaign_name: c.name.clone(),
                campaign_live: c.is_live_at(now),
            })
        })
        .collect();
    order(&mut out, |x| {
        (x.campaign_live, x.active, &x.campaign_name, &x.code)
    });
    Ok(Json(out))
}

/// The influencer's coupons in the campaigns they are assigned to, live campaigns first.
#[utoipa::path(get, path = "/api/v1/me/coupons", tag = "me", security(("session" = [])),
    responses((status = 200, description = "Coupons", body = Vec<MyCoupon>), (status = 401, description = "Not logged in"), (status = 403, description = "Not an influencer user")))]
pub async fn coupons(
    State(state): State<QueryState>,
    headers: HeaderMap,
) -> Result<Json<Vec<MyCoupon>>, ApiError> {
    let (influencer_id, campaigns) = mine(&headers, &state)?;
    let catalog = state.catalog.snapshot();
    let now = chrono::Utc::now();
    let mut out: Vec<MyCoupon> = catalog
        .coupons
        .values()
        .filter(|c| {
            c.influencer_id.as_deref() == Some(influencer_id.as_str())
                && campaigns.contains(&c.campaign_id)
        })
        .filter_map(|cp| {
            let c = catalog.campaigns.get(&cp.campaign_id)?;
            Some(MyCoupon {
                id: cp.id.clone(),
                code: cp.code.clone(),
                active: cp.active,
                campaign_id: c.id.clone(),
                campaign_name: c.name.clone(),
                campaign_live: c.is_live_at(now),
            })
        })
        .collect();
    order(&mut out, |x| {
        (x.campaign_live, x.active, &x.campaign_name, &x.code)
    });
    Ok(Json(out))
}

type Q = Query<HashMap<String, String>>;

/// The influencer's totals: clicks, unique clicks, credited funnel counts and revenue.
#[utoipa::path(get, path = "/api/v1/me/stats/overview", tag = "me", security(("session" = [])),
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query), ("period" = Option<String>, Query), ("campaign_id" = Option<String>, Query), ("tz" = Option<String>, Query)),
    responses((status = 200, description = "Totals", body = crate::answers::Overview), (status = 400, description = "Bad filter"), (status = 403, description = "Not an influencer user")))]
pub async fn overview(
    State(state): State<QueryState>,
    headers: HeaderMap,
    Query(q): Q,
) -> Result<Json<Value>, ApiError> {
    stats::overview_in(&state, &Scope::me(&headers, &state)?.0, &q).await
}

/// "My traffic" and "my conversions" over time.
#[utoipa::path(get, path = "/api/v1/me/stats/chart", tag = "me", security(("session" = [])),
    params(("interval" = Option<String>, Query), ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("period" = Option<String>, Query), ("campaign_id" = Option<String>, Query), ("tz" = Option<String>, Query)),
    responses((status = 200, description = "Buckets in time order", body = crate::answers::Chart), (status = 400, description = "Bad filter"), (status = 403, description = "Not an influencer user")))]
pub async fn chart(
    State(state): State<QueryState>,
    headers: HeaderMap,
    Query(q): Q,
) -> Result<Json<Value>, ApiError> {
    stats::chart_in(&state, &Scope::me(&headers, &state)?.0, &q).await
}

/// The influencer's funnel.
#[utoipa::path(get, path = "/api/v1/me/stats/funnel", tag = "me", security(("session" = [])),
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query), ("period" = Option<String>, Query), ("campaign_id" = Option<String>, Query), ("tz" = Option<String>, Query)),
    responses((status = 200, description = "Steps", body = crate::answers::Funnel), (status = 400, description = "Bad filter"), (status = 403, description = "Not an influencer user")))]
pub async fn funnel(
    State(state): State<QueryState>,
    headers: HeaderMap,
    Query(q): Q,
) -> Result<Json<Value>, ApiError> {
    stats::funnel_in(&state, &Scope::me(&headers, &state)?.0, &q).await
}

macro_rules! mine {
    ($name:ident, $path:literal, $dim:expr, $what:literal) => {
        #[doc = concat!("The influencer's figures per ", $what, ".")]
        #[utoipa::path(get, path = $path, tag = "me", security(("session" = [])),
            params(("from" = Option<String>, Query), ("to" = Option<String>, Query), ("period" = Option<String>, Query), ("campaign_id" = Option<String>, Query), ("tz" = Option<String>, Query)),
            responses((status = 200, description = "One row per key", body = crate::answers::Breakdown), (status = 400, description = "Bad filter"), (status = 403, description = "Not an influencer user")))]
        pub async fn $name(State(state): State<QueryState>, headers: HeaderMap, Query(q): Q) -> Result<Json<Value>, ApiError> {
            stats::breakdown(&state, &Scope::me(&headers, &state)?.0, &q, $dim).await
        }
    };
}

mine!(
    per_campaign,
    "/api/v1/me/stats/per-campaign",
    Dim::Campaign,
    "campaign"
);
mine!(per_link, "/api/v1/me/stats/per-link", Dim::Link, "link");
mine!(
    per_sub_id,
    "/api/v1/me/stats/per-sub-id",
    Dim::SubId,
    "sub id"
);
