//! The commission ledger, read (`docs/commissions.md`): balances per influencer, currency and
//! status; movements; payouts and their CSV export; commissions held for review.
//!
//! Routes under `/api/v1/ledger/…` answer the admin (everything) and an advertiser (its own
//! affiliates' money); the influencer's own view is [`crate::affiliate`]. Writes (payout
//! requests, payments, reviews) are ingest's.
//!
//! Every read goes through [`register`], which adds `l`: the scoped `ledger` table with
//! `state`, each movement's status now (`pending` past its `available_at` is `available`).

use crate::json::rows;
use crate::scope::{Scope, session};
use crate::{QueryState, internal};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use clicktrail_api::error::ApiError;
use clicktrail_schemas::ledger::LedgerStatus;
use datafusion::prelude::*;
use datafusion::scalar::ScalarValue;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};

pub(crate) fn routes() -> Router<QueryState> {
    Router::new()
        .route("/api/v1/ledger/balances", get(balances))
        .route("/api/v1/ledger/entries", get(entries))
        .route("/api/v1/ledger/payouts", get(payouts))
        .route("/api/v1/ledger/payouts.csv", get(payouts_csv))
        .route("/api/v1/ledger/reviews", get(reviews))
}

/// Registers `l` in `ctx`: the (scoped) `ledger` table with `state`, the status of each
/// movement at `now`.
pub(crate) async fn register(ctx: &SessionContext, now: DateTime<Utc>) -> Result<(), ApiError> {
    let df = ctx.table("ledger").await.map_err(internal)?;
    let now = lit(ScalarValue::TimestampMicrosecond(
        Some(now.timestamp_micros()),
        Some("UTC".into()),
    ));
    let state = when(
        col("status")
            .eq(lit("pending"))
            .and(col("available_at").lt_eq(now)),
        lit("available"),
    )
    .otherwise(col("status"))
    .map_err(internal)?;
    let df = df.with_column("state", state).map_err(internal)?;
    ctx.register_table("l", df.into_view()).map_err(internal)?;
    Ok(())
}

/// A single-quoted SQL string literal of `s`.
pub(crate) fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Balances per (group columns, currency), one field per status, from `l` rows matching
/// `filter`. `group` names extra columns of `l` to group by (e.g. `influencer_id`).
pub(crate) async fn balance_rows(
    ctx: &SessionContext,
    group: &[&str],
    filter: &str,
) -> Result<Vec<Map<String, Value>>, ApiError> {
    let keys: String = group.iter().map(|g| format!("{g}, ")).collect();
    let sql = format!(
        "SELECT {keys}currency, state, sum(amount_minor) AS amount_minor FROM l WHERE {filter} \
         GROUP BY {keys}currency, state"
    );
    let mut out: BTreeMap<Vec<String>, Map<String, Value>> = BTreeMap::new();
    for r in rows(ctx, &sql).await? {
        let mut id: Vec<String> = group
            .iter()
            .map(|g| r.get(*g).and_then(Value::as_str).unwrap_or("").to_string())
            .collect();
        let currency = r.get("currency").and_then(Value::as_str).unwrap_or("");
        if currency.is_empty() {
            continue;
        }
        id.push(currency.to_string());
        let entry = out.entry(id.clone()).or_insert_with(|| {
            let mut m = Map::new();
            for (g, v) in group.iter().zip(&id) {
                m.insert((*g).to_string(), json!(v));
            }
            m.insert("currency".into(), json!(currency));
            for s in LedgerStatus::ALL {
                m.insert(s.as_str().into(), json!(0));
            }
            m
        });
        if let Some(state) = r.get("state").and_then(Value::as_str)
            && entry.contains_key(state)
        {
            entry.insert(state.into(), json!(crate::json::int(&r, "amount_minor")));
        }
    }
    Ok(out.into_values().collect())
}

/// Payouts from `l` rows matching `filter`: id, influencer, advertiser, currency, amount,
/// status (`requested`, `paid`, `cancelled` or `refused`), times, reference and reason.
pub(crate) const PAYOUTS_SQL: &str = "SELECT * FROM (SELECT payout_id, influencer_id, \
    advertiser_id, max(currency) AS currency, \
    CASE WHEN count(*) FILTER (WHERE kind = 'payout_paid') > 0 THEN 'paid' \
         WHEN count(*) FILTER (WHERE kind = 'payout_cancelled') > 0 THEN 'cancelled' \
         WHEN count(*) FILTER (WHERE kind = 'payout_refused') > 0 THEN 'refused' \
         ELSE 'requested' END AS status, \
    CASE WHEN count(*) FILTER (WHERE kind = 'payout_paid') > 0 \
              THEN sum(CASE WHEN status = 'paid' THEN amount_minor ELSE 0 END) \
         WHEN count(*) FILTER (WHERE kind = 'payout_cancelled') > 0 \
              THEN 0 - sum(CASE WHEN kind = 'payout_cancelled' THEN amount_minor ELSE 0 END) \
         ELSE sum(CASE WHEN status = 'requested' THEN amount_minor ELSE 0 END) END AS amount_minor, \
    max(event_id) FILTER (WHERE kind IN ('payout_request', 'payout_refused')) AS request_id, \
    min(at) FILTER (WHERE kind IN ('payout_request', 'payout_refused')) AS requested_at, \
    max(at) FILTER (WHERE kind = 'payout_paid') AS paid_at, \
    max(note) FILTER (WHERE kind = 'payout_paid') AS reference, \
    max(note) FILTER (WHERE kind IN ('payout_cancelled', 'payout_refused')) AS reason, \
    count(DISTINCT item_id) FILTER (WHERE kind = 'payout_request') AS items \
    FROM l WHERE payout_id IS NOT NULL AND {filter} \
    GROUP BY payout_id, influencer_id, advertiser_id) p WHERE {outer} \
    ORDER BY requested_at DESC, payout_id";

/// The payouts query for `filter` (over `l`) and `outer` (over the payouts).
pub(crate) fn payouts_sql(filter: &str, outer: &str) -> String {
    PAYOUTS_SQL
        .replace("{filter}", filter)
        .replace("{outer}", outer)
}

/// The scope of a ledger route: the admin's or an advertiser's (influencers read theirs under
/// `/api/v1/me/…`); the `influencer_id` and `advertiser_id` filters as SQL over `l`.
async fn prepare(
    state: &QueryState,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> Result<(SessionContext, String), ApiError> {
    let scope = Scope::of(headers, state)?;
    let mut filter = vec!["true".to_string()];
    if let Some(i) = q.get("influencer_id") {
        filter.push(format!("influencer_id = {}", quoted(i)));
    }
    if let Some(a) = q.get("advertiser_id") {
        if !scope.is_all() {
            return Err(ApiError::field(
                "advertiser_id",
                "only the admin may filter by advertiser",
            ));
        }
        filter.push(format!("advertiser_id = {}", quoted(a)));
    }
    let ctx = session(state, &scope).await?;
    register(&ctx, Utc::now()).await?;
    Ok((ctx, filter.join(" AND ")))
}

/// Balances per influencer, advertiser and currency, one amount per status.
#[utoipa::path(get, path = "/api/v1/ledger/balances", tag = "ledger",
    params(("influencer_id" = Option<String>, Query), ("advertiser_id" = Option<String>, Query, description = "Admin only")),
    responses((status = 200, description = "Balances in minor units", body = crate::ledger_answers::Balances), (status = 401, description = "No credentials"), (status = 403, description = "An influencer (see /api/v1/me/affiliate)")))]
pub async fn balances(
    State(state): State<QueryState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (ctx, filter) = prepare(&state, &headers, &q).await?;
    let b = balance_rows(&ctx, &["influencer_id", "advertiser_id"], &filter).await?;
    Ok(Json(json!({ "balances": b })))
}

/// The latest movements (newest first), at most `limit` (default 100, at most 1,000).
#[utoipa::path(get, path = "/api/v1/ledger/entries", tag = "ledger",
    params(("influencer_id" = Option<String>, Query), ("advertiser_id" = Option<String>, Query), ("kind" = Option<String>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, description = "Movements, newest first", body = crate::ledger_answers::Entries), (status = 400, description = "Bad limit"), (status = 401, description = "No credentials")))]
pub async fn entries(
    State(state): State<QueryState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let limit = crate::filters::limit(&q, 100, 1000)?;
    let (ctx, mut filter) = prepare(&state, &headers, &q).await?;
    if let Some(k) = q.get("kind") {
        filter.push_str(&format!(" AND kind = {}", quoted(k)));
    }
    let sql = format!(
        "SELECT * EXCEPT (src_partition, src_offset) FROM l WHERE {filter} \
         ORDER BY at DESC, entry_id LIMIT {limit}"
    );
    Ok(Json(json!({ "entries": rows(&ctx, &sql).await? })))
}

fn status_filter(q: &HashMap<String, String>) -> Result<String, ApiError> {
    match q.get("status").map(String::as_str) {
        None => Ok("true".into()),
        Some(s @ ("requested" | "paid" | "cancelled" | "refused")) => Ok(format!("status = '{s}'")),
        Some(_) => Err(ApiError::field(
            "status",
            "expected requested, paid, cancelled or refused",
        )),
    }
}

/// Payouts, newest first; `status=requested` lists the pending payout requests.
#[utoipa::path(get, path = "/api/v1/ledger/payouts", tag = "ledger",
    params(("influencer_id" = Option<String>, Query), ("advertiser_id" = Option<String>, Query), ("status" = Option<String>, Query, description = "requested, paid, cancelled or refused")),
    responses((status = 200, description = "Payouts, newest first", body = crate::ledger_answers::Payouts), (status = 400, description = "Bad status"), (status = 401, description = "No credentials")))]
pub async fn payouts(
    State(state): State<QueryState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let outer = status_filter(&q)?;
    let (ctx, filter) = prepare(&state, &headers, &q).await?;
    let p = rows(&ctx, &payouts_sql(&filter, &outer)).await?;
    Ok(Json(json!({ "payouts": p })))
}

/// Payouts as CSV (one row per payout, the columns of `/api/v1/ledger/payouts`), for the
/// payment run; cells that a spreadsheet would run as formulas are prefixed with `'`.
#[utoipa::path(get, path = "/api/v1/ledger/payouts.csv", tag = "ledger",
    params(("influencer_id" = Option<String>, Query), ("advertiser_id" = Option<String>, Query), ("status" = Option<String>, Query)),
    responses((status = 200, description = "CSV with a header row", content_type = "text/csv")))]
pub async fn payouts_csv(
    State(state): State<QueryState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let outer = status_filter(&q)?;
    let (ctx, filter) = prepare(&state, &headers, &q).await?;
    let df = ctx
        .sql(&payouts_sql(&filter, &outer))
        .await
        .map_err(internal)?;
    let schema = df.schema().as_arrow().clone();
    let batches = df.collect().await.map_err(internal)?;
    let mut body = Vec::new();
    let empty =
        datafusion::arrow::record_batch::RecordBatch::new_empty(std::sync::Arc::new(schema));
    let mut first = true;
    for b in batches.iter().filter(|b| b.num_rows() > 0) {
        let b = crate::export::neutralize(b).map_err(internal)?;
        body.extend_from_slice(&crate::export::csv_bytes(&b, first).map_err(internal)?);
        first = false;
    }
    if first {
        body.extend_from_slice(&crate::export::csv_bytes(&empty, true).map_err(internal)?);
    }
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    resp.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"payouts.csv\""),
    );
    Ok(resp)
}

/// Commissions held for review by a fraud rule, oldest first, with the rule and what it saw.
#[utoipa::path(get, path = "/api/v1/ledger/reviews", tag = "ledger",
    params(("influencer_id" = Option<String>, Query), ("advertiser_id" = Option<String>, Query)),
    responses((status = 200, description = "Held commissions, oldest first", body = crate::ledger_answers::Reviews), (status = 401, description = "No credentials")))]
pub async fn reviews(
    State(state): State<QueryState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (ctx, filter) = prepare(&state, &headers, &q).await?;
    let sql = format!(
        "SELECT b.commission_id, b.influencer_id, b.advertiser_id, b.campaign_id, b.currency, \
         h.amount_minor, b.rule, b.note AS detail, b.event_id, b.order_id, b.at \
         FROM (SELECT item_id, sum(amount_minor) AS amount_minor FROM l \
               WHERE status = 'review' AND {filter} GROUP BY item_id HAVING sum(amount_minor) <> 0) h \
         JOIN l b ON b.item_id = h.item_id AND b.kind = 'commission' \
         ORDER BY b.at, b.commission_id"
    );
    Ok(Json(json!({ "reviews": rows(&ctx, &sql).await? })))
}
