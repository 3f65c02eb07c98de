//! An influencer's affiliate figures (`/api/v1/me/affiliate`, `/api/v1/me/conversions`,
//! `/api/v1/me/payouts`), computed in their scope ([`Scope::Influencer`]) and aggregate only:
//! counts, sums and statuses. No answer here carries an order id, customer id, e-mail address,
//! event id or the time of a sale finer than its day.
//!
//! Periods are the dashboards' (`period=today|7d|30d|all`, or `from`/`to`), in whole hours
//! ending at the last whole hour, like every influencer figure. Earnings are the commissions
//! (and clawbacks) booked in the period, by the status each is in now; balances are all time.

use crate::json::{int, rows};
use crate::ledger::{balance_rows, payouts_sql, register};
use crate::scope::Scope;
use crate::stats::{CLICK_COUNTS, EVENT_COUNTS, prepare};
use crate::{QueryState, internal};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use clicktrail_api::error::ApiError;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};

pub(crate) fn routes() -> Router<QueryState> {
    Router::new()
        .route("/api/v1/me/affiliate", get(summary))
        .route("/api/v1/me/conversions", get(conversions))
        .route("/api/v1/me/payouts", get(payouts))
}

/// Registers `lp`: the first movement (booking) of every commission or clawback booked within
/// the filters' period, from `l`.
async fn booked_in(
    ctx: &datafusion::prelude::SessionContext,
    f: &crate::filters::Filters,
) -> Result<(), ApiError> {
    use datafusion::prelude::*;
    let period = crate::filters::Filters {
        campaign_id: None,
        influencer_id: None,
        advertiser_id: None,
        ..f.clone()
    };
    let df = period
        .apply(ctx.table("l").await.map_err(internal)?, "at")
        .map_err(internal)?
        .filter(col("kind").in_list(vec![lit("commission"), lit("clawback")], false))
        .map_err(internal)?;
    ctx.register_table("lp", df.into_view()).map_err(internal)?;
    Ok(())
}

/// Clicks, unique clicks, conversions, earnings by status per currency and balances, in all
/// and per sub id.
#[utoipa::path(get, path = "/api/v1/me/affiliate", tag = "me", security(("session" = [])),
    params(("period" = Option<String>, Query, description = "today, 7d, 30d (default) or all"), ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("tz" = Option<String>, Query)),
    responses((status = 200, description = "The influencer's figures, minor units", body = crate::ledger_answers::AffiliateSummary),
        (status = 401, description = "Not logged in"), (status = 403, description = "Not an influencer user")))]
pub async fn summary(
    State(state): State<QueryState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (scope, _) = Scope::me(&headers, &state)?;
    let (ctx, f) = prepare(&state, &scope, &q, true).await?;
    register(&ctx, chrono::Utc::now()).await?;
    booked_in(&ctx, &f).await?;
    let c = rows(&ctx, &format!("SELECT {CLICK_COUNTS} FROM c")).await?;
    let e = rows(&ctx, &format!("SELECT {EVENT_COUNTS} FROM e")).await?;
    let (c, e) = (&c[0], &e[0]);
    let earnings = balance_rows(&ctx, &[], "item_id IN (SELECT item_id FROM lp)").await?;
    let balances = balance_rows(&ctx, &[], "true").await?;

    let mut per: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut entry = |id: &Value| -> String {
        let key = id.as_str().unwrap_or("").to_string();
        per.entry(key.clone()).or_insert_with(|| {
            let mut m = Map::new();
            m.insert(
                "sub_id".into(),
                if key.is_empty() {
                    Value::Null
                } else {
                    json!(key)
                },
            );
            for k in ["clicks", "unique_clicks", "conversions"] {
                m.insert(k.into(), json!(0));
            }
            m.insert("earnings".into(), json!([]));
            m
        });
        key
    };
    let clicks = rows(
        &ctx,
        &format!("SELECT sub_id, {CLICK_COUNTS} FROM c GROUP BY sub_id"),
    )
    .await?;
    let conv = rows(
        &ctx,
        "SELECT k.sub_id AS sub_id, sum(e.n) AS conversions FROM e \
        LEFT JOIN clicks k ON e.credited_click_id = k.click_id \
        WHERE e.action = 'purchase' AND e.attributed GROUP BY k.sub_id",
    )
    .await?;
    let earned = rows(&ctx, "SELECT k.sub_id AS sub_id, l.currency AS currency, sum(l.amount_minor) AS amount_minor \
        FROM l JOIN lp ON l.item_id = lp.item_id LEFT JOIN clicks k ON k.click_id = lp.click_id \
        WHERE l.state <> 'rejected' AND lp.kind = 'commission' GROUP BY k.sub_id, l.currency ORDER BY 2").await?;
    let mut keys = Vec::new();
    for r in &clicks {
        keys.push((entry(&r["sub_id"]), r.clone(), "c"));
    }
    for r in &conv {
        keys.push((
            entry(r.get("sub_id").unwrap_or(&Value::Null)),
            r.clone(),
            "v",
        ));
    }
    for r in &earned {
        keys.push((
            entry(r.get("sub_id").unwrap_or(&Value::Null)),
            r.clone(),
            "m",
        ));
    }
    for (k, r, what) in keys {
        let m = per.get_mut(&k).expect("entered");
        match what {
            "c" => {
                m.insert("clicks".into(), json!(int(&r, "clicks")));
                m.insert("unique_clicks".into(), json!(int(&r, "unique_clicks")));
            }
            "v" => {
                m.insert("conversions".into(), json!(int(&r, "conversions")));
            }
            _ => {
                if let Some(Value::Array(list)) = m.get_mut("earnings") {
                    list.push(
                        json!({"currency": r["currency"], "amount_minor": int(&r, "amount_minor")}),
                    );
                }
            }
        }
    }
    Ok(Json(json!({
        "period": crate::stats::period(&f),
        "clicks": int(c, "clicks"),
        "unique_clicks": int(c, "unique_clicks"),
        "conversions": int(e, "attributed_purchases"),
        "signups": int(e, "signups"),
        "earnings": earnings,
        "balances": balances,
        "per_sub_id": per.into_values().collect::<Vec<_>>(),
    })))
}

/// The latest commissions (at most `limit`, default 20, at most 200), newest first: the day
/// booked, the action, the commission (net of refunds), its status now and the click's sub id.
#[utoipa::path(get, path = "/api/v1/me/conversions", tag = "me", security(("session" = [])),
    params(("limit" = Option<u32>, Query)),
    responses((status = 200, description = "Recent commissions, newest first", body = crate::ledger_answers::MyConversions),
        (status = 401, description = "Not logged in"), (status = 403, description = "Not an influencer user")))]
pub async fn conversions(
    State(state): State<QueryState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (scope, _) = Scope::me(&headers, &state)?;
    let limit = crate::filters::limit(&q, 20, 200)?;
    let ctx = crate::scope::session(&state, &scope).await?;
    register(&ctx, chrono::Utc::now()).await?;
    let sql = format!(
        "SELECT b.item_id AS item, b.at AS at, b.action AS action, b.currency AS currency, \
         k.sub_id AS sub_id, s.state AS state, s.amount_minor AS amount_minor \
         FROM (SELECT * FROM l WHERE kind = 'commission' ORDER BY at DESC, item_id LIMIT {limit}) b \
         JOIN (SELECT item_id, state, sum(amount_minor) AS amount_minor FROM l GROUP BY item_id, state) s \
           ON s.item_id = b.item_id \
         LEFT JOIN clicks k ON k.click_id = b.click_id"
    );
    let mut by_item: BTreeMap<(String, String), Map<String, Value>> = BTreeMap::new();
    for r in rows(&ctx, &sql).await? {
        let item = r["item"].as_str().unwrap_or("").to_string();
        let at = r["at"].as_str().unwrap_or("").to_string();
        let e = by_item.entry((at.clone(), item)).or_insert_with(|| {
            let mut m = Map::new();
            m.insert("date".into(), json!(at.get(..10).unwrap_or("")));
            m.insert(
                "action".into(),
                r.get("action").cloned().unwrap_or(Value::Null),
            );
            m.insert("commission_minor".into(), json!(0));
            m.insert("currency".into(), r["currency"].clone());
            m.insert("status".into(), json!("void"));
            m.insert(
                "sub_id".into(),
                r.get("sub_id").cloned().unwrap_or(Value::Null),
            );
            m
        });
        let amount = int(&r, "amount_minor");
        if amount != 0 {
            e.insert("commission_minor".into(), json!(amount));
            e.insert("status".into(), r["state"].clone());
        }
    }
    let list: Vec<Value> = by_item.into_values().rev().map(Value::Object).collect();
    Ok(Json(json!({ "conversions": list })))
}

/// The logged-in influencer's payouts and payout requests, newest first.
#[utoipa::path(get, path = "/api/v1/me/payouts", tag = "me", security(("session" = [])),
    responses((status = 200, description = "The influencer's payouts, newest first", body = crate::ledger_answers::Payouts),
        (status = 401, description = "Not logged in"), (status = 403, description = "Not an influencer user")))]
pub async fn payouts(
    State(state): State<QueryState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (scope, _) = Scope::me(&headers, &state)?;
    let ctx = crate::scope::session(&state, &scope).await?;
    register(&ctx, chrono::Utc::now()).await?;
    let mut list = rows(&ctx, &payouts_sql("true", "true")).await?;
    for p in &mut list {
        p.remove("influencer_id");
    }
    Ok(Json(json!({ "payouts": list })))
}
