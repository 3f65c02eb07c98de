//! `GET /api/v1/attribution/{event_id}`: how one event was attributed, for audits.

use crate::json::to_json;
use crate::scope::{Scope, session};
use crate::{QueryState, internal};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use clicktrail_api::error::ApiError;
use datafusion::prelude::{col, lit};
use serde_json::{Value, json};

pub(crate) fn routes() -> Router<QueryState> {
    Router::new().route("/api/v1/attribution/{event_id}", get(attribution))
}

/// The stored decision for an event: the rule, the credited influencer, campaign, link or
/// coupon, every candidate considered, the click time and window, and any conflict.
#[utoipa::path(get, path = "/api/v1/attribution/{event_id}", tag = "stats", params(("event_id" = String, Path)),
    responses((status = 200, description = "The decision", body = crate::answers::Audit), (status = 404, description = "No such event in the caller's scope")))]
pub async fn attribution(
    State(state): State<QueryState>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let scope = Scope::of(&headers, &state)?;
    let ctx = session(&state, &scope).await?;
    let batches = ctx
        .table("events")
        .await
        .map_err(internal)?
        .filter(col("event_id").eq(lit(event_id.clone())))
        .map_err(internal)?
        .collect()
        .await
        .map_err(internal)?;
    let mut rows = to_json(&batches)?;
    if rows.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no event `{event_id}` is stored for you: the id is unknown, belongs to another \
             advertiser, or was sent less than about a second ago (add `?wait=5` to wait for \
             the pipeline)"
        )));
    }
    let mut row = rows.remove(0);
    let parse = |v: Option<Value>| match v {
        Some(Value::String(s)) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
        other => other.unwrap_or(Value::Null),
    };
    let candidates = parse(row.remove("candidates"));
    let conflict = parse(row.remove("conflict"));
    let get = |k: &str| row.get(k).cloned().unwrap_or(Value::Null);
    let commission = commission(&ctx, &event_id).await?;
    Ok(Json(json!({
        "event_id": get("event_id"),
        "advertiser_id": get("advertiser_id"),
        "action": get("action"),
        "occurred_at": get("occurred_at"),
        "attributed": get("attributed"),
        "attributed_by": get("attributed_by"),
        "reason": get("reason"),
        "campaign_id": get("campaign_id"),
        "influencer_id": get("influencer_id"),
        "link_id": get("link_id"),
        "coupon_id": get("coupon_id"),
        "click_id": get("credited_click_id"),
        "click_at": get("click_at"),
        "window_secs": get("window_secs"),
        "candidates": candidates,
        "conflicts": conflict,
        "commission": commission,
    })))
}

/// The commission the event booked, if any: `{commission_id, influencer_id, currency,
/// booked_minor, hold_rule, hold_detail, now: {state: minor units}}`, where `hold_rule` is the
/// fraud rule that held it for review (`click_injection`, `self_referral`) and `now` what is
/// left of it in each state (`docs/commissions.md`).
async fn commission(
    ctx: &datafusion::prelude::SessionContext,
    event_id: &str,
) -> Result<Value, ApiError> {
    crate::ledger::register(ctx, chrono::Utc::now()).await?;
    let booked = crate::json::rows(
        ctx,
        &format!(
            "SELECT commission_id, influencer_id, currency, amount_minor, rule, note FROM l \
             WHERE kind = 'commission' AND event_id = {} LIMIT 1",
            crate::ledger::quoted(event_id)
        ),
    )
    .await?;
    let Some(b) = booked.into_iter().next() else {
        return Ok(Value::Null);
    };
    let id = b.get("commission_id").and_then(Value::as_str).unwrap_or("");
    let states = crate::json::rows(
        ctx,
        &format!(
            "SELECT state, sum(amount_minor) AS amount_minor FROM l WHERE item_id = {} \
             GROUP BY state HAVING sum(amount_minor) <> 0 ORDER BY state",
            crate::ledger::quoted(id)
        ),
    )
    .await?;
    let now: serde_json::Map<String, Value> = states
        .iter()
        .filter_map(|r| {
            let state = r.get("state")?.as_str()?.to_string();
            Some((state, r.get("amount_minor")?.clone()))
        })
        .collect();
    let get = |k: &str| b.get(k).cloned().unwrap_or(Value::Null);
    Ok(json!({
        "commission_id": get("commission_id"),
        "influencer_id": get("influencer_id"),
        "currency": get("currency"),
        "booked_minor": get("amount_minor"),
        "hold_rule": get("rule"),
        "hold_detail": get("note"),
        "now": now,
    }))
}
