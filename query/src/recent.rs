//! The latest events of a period with what credited each: the rows the advertiser's dashboard
//! links to their attribution audits.

use crate::filters::Filters;
use crate::json::rows;
use crate::scope::{Scope, session};
use crate::stats::period;
use crate::{QueryState, internal};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use clicktrail_api::error::ApiError;
use serde_json::{Value, json};
use std::collections::HashMap;

/// The latest events of the period, newest first, each with what credited it: the rows the
/// dashboard links to their attribution audit. Advertisers and admins only (an influencer sees
/// aggregates, never single events).
#[utoipa::path(get, path = "/api/v1/stats/recent-events", tag = "stats",
    params(("limit" = Option<u32>, Query, description = "1 to 200 (default 20)"), ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("period" = Option<String>, Query), ("campaign_id" = Option<String>, Query), ("influencer_id" = Option<String>, Query), ("tz" = Option<String>, Query)),
    responses((status = 200, description = "`{period, rows: [{event_id, action, occurred_at, value_minor, currency, attributed_by, influencer_id, influencer, campaign_id}]}`", body = crate::answers::Breakdown), (status = 400, description = "Bad filter")))]
pub async fn recent_events(
    State(state): State<QueryState>,
    headers: HeaderMap,
    Query(mut q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let limit = crate::filters::limit(&q, 20, 200)?;
    q.remove("limit");
    let scope = Scope::of(&headers, &state)?;
    let f = Filters::parse(&q, chrono::Utc::now())?;
    if f.advertiser_id.is_some() && !scope.is_all() {
        return Err(ApiError::field(
            "advertiser_id",
            "only the admin token may filter by advertiser",
        ));
    }
    let ctx = session(&state, &scope).await?;
    let df = f
        .apply(
            ctx.table(clicktrail_schemas::arrow::EVENTS_TABLE)
                .await
                .map_err(internal)?,
            "occurred_at",
        )
        .map_err(internal)?;
    ctx.register_table("recent", df.into_view())
        .map_err(internal)?;
    let mut list = rows(&ctx, &format!("SELECT event_id, action, occurred_at, value_minor, currency, attributed_by, influencer_id, campaign_id FROM recent ORDER BY occurred_at DESC, event_id LIMIT {limit}")).await?;
    let catalog = state.catalog.snapshot();
    for r in &mut list {
        let name = r
            .get("influencer_id")
            .and_then(Value::as_str)
            .and_then(|i| catalog.influencers.get(i))
            .map(|i| i.name.clone());
        r.insert("influencer".into(), json!(name));
    }
    Ok(Json(json!({"period": period(&f), "rows": list})))
}
