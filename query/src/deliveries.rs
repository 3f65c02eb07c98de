//! The webhook and postback delivery log (`deliveries`) and replays: an advertiser (its key or
//! users) sees its own deliveries, an admin everyone's; an influencer none.

use crate::json::rows;
use crate::ledger::quoted;
use crate::scope::{Scope, session};
use crate::{QueryState, internal};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use clicktrail_api::error::ApiError;
use clicktrail_bus::RecordProducer;
use clicktrail_schemas::catalog::WebhookEvent;
use clicktrail_schemas::outbound::{OutboundRecord, Replay};
use clicktrail_schemas::wire::WIRE_VERSION;
use serde_json::{Value, json};
use std::collections::HashMap;

/// The delivery routes.
pub fn routes() -> Router<QueryState> {
    Router::new()
        .route("/api/v1/deliveries", get(list))
        .route("/api/v1/deliveries/{delivery_id}/replay", post(replay))
}

/// What an attempt's `outcome` may be.
const OUTCOMES: [&str; 3] = ["delivered", "retrying", "failed"];

const COLUMNS: &str = "delivery_id, message_id, advertiser_id, target_kind, target_id, event, \
    url, attempt, at, status, outcome, error, response, next_attempt_at, replay";

/// The delivery log, newest attempt first: every attempt of every delivery (one message to
/// one endpoint or postback) with its status, outcome, error, the first 512 bytes of the
/// answer and, while retrying, when the next attempt is due.
#[utoipa::path(get, path = "/api/v1/deliveries", tag = "integrations",
    params(("message_id" = Option<String>, Query, description = "One message (its idempotency id)"),
        ("delivery_id" = Option<String>, Query), ("target_id" = Option<String>, Query, description = "An endpoint (`whk_…`) or postback (`pbk_…`)"),
        ("outcome" = Option<String>, Query, description = "delivered, retrying or failed"),
        ("limit" = Option<u32>, Query, description = "1 to 500 (default 100)")),
    responses((status = 200, description = "`{rows: [{delivery_id, message_id, advertiser_id, target_kind, target_id, event, url, attempt, at, status, outcome, error, response, next_attempt_at, replay}]}`", body = Object),
        (status = 400, description = "Bad filter"), (status = 401, description = "No credentials"), (status = 403, description = "An influencer")))]
pub async fn list(
    State(state): State<QueryState>,
    headers: HeaderMap,
    Query(mut q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let scope = Scope::of(&headers, &state)?;
    let limit = crate::filters::limit(&q, 100, 500)?;
    q.remove("limit");
    if let Some(o) = q.get("outcome")
        && !OUTCOMES.contains(&o.as_str())
    {
        return Err(ApiError::field(
            "outcome",
            "expected delivered, retrying or failed",
        ));
    }
    let mut filters = Vec::new();
    for field in ["message_id", "delivery_id", "target_id", "outcome"] {
        if let Some(v) = q.remove(field) {
            filters.push(format!("{field} = {}", quoted(&v)));
        }
    }
    if let Some(extra) = q.keys().next() {
        return Err(ApiError::field(
            extra.clone(),
            "unknown filter: expected message_id, delivery_id, target_id, outcome or limit",
        ));
    }
    let ctx = session(&state, &scope).await?;
    let filter = if filters.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", filters.join(" AND "))
    };
    let list = rows(
        &ctx,
        &format!(
            "SELECT {COLUMNS} FROM deliveries {filter} ORDER BY at DESC, delivery_id, attempt DESC LIMIT {limit}"
        ),
    )
    .await?;
    Ok(Json(json!({ "rows": list })))
}

/// Refuses a replay whose target was switched off or removed since (409), or, for a postback,
/// whose URL template now points at another scheme, host or port than the recorded URL (a
/// replay would go to the old address). A webhook's replay goes to its endpoint's URL of the
/// moment.
fn check_target(state: &QueryState, kind: &str, id: &str, url: &str) -> Result<(), ApiError> {
    let catalog = state.catalog.snapshot();
    let switched_off = || {
        ApiError::Conflict(format!(
            "the {kind} `{id}` was switched off or removed; it is not sent to again"
        ))
    };
    if kind == "webhook" {
        catalog
            .webhooks
            .get(id)
            .filter(|w| w.active)
            .ok_or_else(switched_off)?;
        return Ok(());
    }
    let postback = catalog
        .postbacks
        .get(id)
        .filter(|p| p.active)
        .ok_or_else(switched_off)?;
    let origin = |u: &str| {
        url::Url::parse(u)
            .map(|u| u.origin().ascii_serialization())
            .ok()
    };
    let now = origin(&postback.url.replace(['{', '}'], ""));
    if now.is_none() || now != origin(url) {
        return Err(ApiError::Conflict(format!(
            "the postback `{id}` now points elsewhere than when this delivery was made; \
             its recorded URL is not called again"
        )));
    }
    Ok(())
}

/// Replay a delivery: the same body (same idempotency id, `Idempotency-Key` and the body's
/// `id`) sent again to the same endpoint or postback, signed anew and marked
/// `X-Clicktrail-Replay: true`, as a delivery of its own with its own attempts in the log.
#[utoipa::path(post, path = "/api/v1/deliveries/{delivery_id}/replay", tag = "integrations",
    params(("delivery_id" = String, Path)),
    responses((status = 202, description = "`{replay_of, message_id}`: queued", body = Object),
        (status = 404, description = "No such delivery visible to the caller"),
        (status = 409, description = "Its target was switched off, or a postback's URL now points elsewhere"), (status = 503, description = "Not durable; retry")))]
pub async fn replay(
    State(state): State<QueryState>,
    headers: HeaderMap,
    Path(delivery_id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let scope = Scope::of_method(&headers, &axum::http::Method::POST, &state)?;
    let producer = state.producer.clone().ok_or_else(|| {
        ApiError::Unavailable("this process cannot queue replays; ask the query role".into())
    })?;
    let ctx = session(&state, &scope).await?;
    let found = rows(
        &ctx,
        &format!(
            "SELECT message_id, advertiser_id, target_kind, target_id, event, url, body \
             FROM deliveries WHERE delivery_id = {} ORDER BY attempt DESC LIMIT 1",
            quoted(&delivery_id)
        ),
    )
    .await?;
    let row = found
        .first()
        .ok_or_else(|| ApiError::NotFound(format!("delivery `{delivery_id}` does not exist")))?;
    let text = |k: &str| {
        row.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    check_target(
        &state,
        &text("target_kind"),
        &text("target_id"),
        &text("url"),
    )?;
    let event: WebhookEvent = serde_json::from_value(json!(text("event")))
        .map_err(|e| internal(format!("a stored delivery names an unknown event: {e}")))?;
    let record = OutboundRecord {
        v: WIRE_VERSION,
        message_id: text("message_id"),
        event,
        advertiser_id: text("advertiser_id"),
        created_at: chrono::Utc::now(),
        data: Value::Null,
        credited: None,
        after: None,
        replay: Some(Replay {
            delivery_id: delivery_id.clone(),
            target_kind: text("target_kind"),
            target_id: text("target_id"),
            url: text("url"),
            body: text("body"),
        }),
    };
    producer
        .send_records(std::slice::from_ref(&record))
        .await
        .map_err(ApiError::not_durable)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"replay_of": delivery_id, "message_id": record.message_id})),
    ))
}
