//! Dashboard statistics: overview, chart, per-influencer/campaign/link/sub-id, funnel.
//!
//! Definitions (also in `docs/api.md`): `clicks` are human (non-bot) redirects, `unique_clicks`
//! the first click of a visitor on a link within 24 hours, `bot_clicks` the flagged ones.
//! Event counts include unattributed events unless a campaign or influencer filter narrows
//! them to that campaign's or influencer's credited events. `conversion_rate` is attributed
//! purchases over unique clicks. Money is integer minor units per ISO 4217 currency.

use crate::filters::Filters;
use crate::json::{amount, int, rows};
use crate::rollups;
use crate::scope::{Scope, session, summing_session};
use crate::{QueryState, internal};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use clicktrail_api::error::ApiError;
use datafusion::prelude::SessionContext;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};

pub(crate) fn routes() -> Router<QueryState> {
    Router::new()
        .route("/api/v1/stats/overview", get(overview))
        .route("/api/v1/stats/chart", get(chart))
        .route("/api/v1/stats/per-influencer", get(per_influencer))
        .route("/api/v1/stats/per-campaign", get(per_campaign))
        .route("/api/v1/stats/per-link", get(per_link))
        .route("/api/v1/stats/per-sub-id", get(per_sub_id))
        .route("/api/v1/stats/per-country", get(per_country))
        .route("/api/v1/stats/funnel", get(funnel))
        .route(
            "/api/v1/stats/recent-events",
            get(crate::recent::recent_events),
        )
}

/// A scoped session with `c` (filtered clicks) and `e` (filtered events) registered, read
/// from the hourly rollups where they hold what is asked (see [`rollups::register`]).
pub(crate) async fn prepare(
    state: &QueryState,
    scope: &Scope,
    q: &HashMap<String, String>,
    raw_only: bool,
) -> Result<(SessionContext, Filters), ApiError> {
    let mut filters = Filters::parse(q, chrono::Utc::now())?;
    if let Scope::Influencer { .. } = scope {
        // An influencer's figures have hourly resolution: no narrower window can isolate one
        // sale's time.
        // and none ends later than the last whole hour, so that polling the current hour cannot
        // time a sale either.
        let last_hour = rollups::hour_floor(chrono::Utc::now());
        filters.from = filters.from.map(|t| rollups::hour_floor(t).min(last_hour));
        filters.to = Some(
            filters
                .to
                .map_or(last_hour, |t| rollups::hour_ceil(t).min(last_hour)),
        );
    }
    if filters.advertiser_id.is_some() && !scope.is_all() {
        return Err(ApiError::field(
            "advertiser_id",
            "only the admin token may filter by advertiser",
        ));
    }
    // Rollups aggregated when read cost more than the raw rows they are aggregated from.
    let raw_only = raw_only || !state.source.rollups_stored();
    // The dashboards only sum the rollups' measures.
    let ctx = match raw_only {
        true => session(state, scope).await?,
        false => summing_session(state, scope).await?,
    };
    rollups::register(&ctx, &filters, raw_only)
        .await
        .map_err(internal)?;
    Ok((ctx, filters))
}

pub(crate) fn period(f: &Filters) -> Value {
    json!({"from": f.from, "to": f.to})
}

fn ratio(num: i64, den: i64) -> f64 {
    if den == 0 {
        0.0
    } else {
        ((num as f64 / den as f64) * 10_000.0).round() / 10_000.0
    }
}

// Each row of `c` holds counts of clicks, each row of `e` stands for `n` events (see
// `rollups::register`); `amount` is the events' value in minor units.
pub(crate) const CLICK_COUNTS: &str = "sum(c.clicks) AS clicks, sum(c.unique_clicks) AS unique_clicks, \
     sum(c.bot_clicks) AS bot_clicks";

pub(crate) const EVENT_COUNTS: &str = "sum(e.n) FILTER (WHERE e.action = 'add_to_cart') AS add_to_carts, \
     sum(e.n) FILTER (WHERE e.action = 'purchase') AS purchases, \
     sum(e.n) FILTER (WHERE e.action = 'signup') AS signups, \
     sum(e.n) FILTER (WHERE e.action = 'drop_off') AS drop_offs, \
     sum(e.n) FILTER (WHERE e.action = 'custom') AS custom_events, \
     sum(e.n) FILTER (WHERE e.action = 'purchase' AND e.attributed) AS attributed_purchases";

/// Click and event totals of the filtered `c` and `e` tables: one row each.
async fn totals(
    ctx: &SessionContext,
) -> Result<(Map<String, Value>, Map<String, Value>), ApiError> {
    let mut c = rows(ctx, &format!("SELECT {CLICK_COUNTS} FROM c")).await?;
    let mut e = rows(ctx, &format!("SELECT {EVENT_COUNTS} FROM e")).await?;
    Ok((c.remove(0), e.remove(0)))
}

fn revenue(rows: &[Map<String, Value>]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| json!({"currency": r["currency"], "amount_minor": amount(r)}))
            .collect(),
    )
}

/// Totals for the period.
#[utoipa::path(get, path = "/api/v1/stats/overview", tag = "stats",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query), ("period" = Option<String>, Query, description = "today, 7d, 30d (default) or all"), ("campaign_id" = Option<String>, Query), ("influencer_id" = Option<String>, Query), ("tz" = Option<String>, Query, description = "IANA time zone of `today`, calendar periods and daily buckets (default UTC)")),
    responses((status = 200, description = "Clicks, uniques, bots, funnel counts, revenue per currency, conversion rate", body = crate::answers::Overview), (status = 400, description = "Bad filter"), (status = 401, description = "No credentials")))]
pub async fn overview(
    State(state): State<QueryState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    overview_in(&state, &Scope::of(&headers, &state)?, &q).await
}

/// The overview within `scope`.
pub(crate) async fn overview_in(
    state: &QueryState,
    scope: &Scope,
    q: &HashMap<String, String>,
) -> Result<Json<Value>, ApiError> {
    let (ctx, f) = prepare(state, scope, q, false).await?;
    let (c, e) = totals(&ctx).await?;
    let rev = rows(&ctx, "SELECT currency, sum(CAST(amount AS DECIMAL(38, 0))) AS amount_minor FROM e WHERE action = 'purchase' GROUP BY currency ORDER BY currency").await?;
    let arev = rows(&ctx, "SELECT currency, sum(CAST(amount AS DECIMAL(38, 0))) AS amount_minor FROM e WHERE action = 'purchase' AND attributed GROUP BY currency ORDER BY currency").await?;
    let (c, e) = (&c, &e);
    Ok(Json(json!({
        "period": period(&f),
        "clicks": int(c, "clicks"),
        "unique_clicks": int(c, "unique_clicks"),
        "bot_clicks": int(c, "bot_clicks"),
        "add_to_carts": int(e, "add_to_carts"),
        "purchases": int(e, "purchases"),
        "attributed_purchases": int(e, "attributed_purchases"),
        "signups": int(e, "signups"),
        "drop_offs": int(e, "drop_offs"),
        "custom_events": int(e, "custom_events"),
        "revenue": revenue(&rev),
        "attributed_revenue": revenue(&arev),
        "conversion_rate": ratio(int(e, "attributed_purchases"), int(c, "unique_clicks")),
    })))
}

/// Hourly or daily series of clicks, conversions (purchases) and revenue.
#[utoipa::path(get, path = "/api/v1/stats/chart", tag = "stats",
    params(("interval" = Option<String>, Query, description = "hour or day (default)"), ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("period" = Option<String>, Query), ("campaign_id" = Option<String>, Query), ("influencer_id" = Option<String>, Query), ("tz" = Option<String>, Query, description = "IANA time zone of `today`, calendar periods and daily buckets (default UTC)")),
    responses((status = 200, description = "Buckets in time order", body = crate::answers::Chart), (status = 400, description = "Bad filter")))]
pub async fn chart(
    State(state): State<QueryState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    chart_in(&state, &Scope::of(&headers, &state)?, &q).await
}

/// Hours as buckets of the filters' interval in their time zone: the hours are read (rollup
/// hours are UTC hours), each is put in the local hour or day its start falls in. In a zone
/// whose offset is not whole hours, a daily bucket starts at the UTC hour that holds midnight.
pub(crate) async fn chart_in(
    state: &QueryState,
    scope: &Scope,
    q: &HashMap<String, String>,
) -> Result<Json<Value>, ApiError> {
    let (ctx, f) = prepare(state, scope, q, false).await?;
    let unit = &f.interval; // validated: hour or day
    let hour = |col: &str| format!("CAST(date_part('epoch', date_trunc('hour', {col})) AS BIGINT)");
    let mut clicks = rows(
        &ctx,
        &format!(
            "SELECT {} AS hour, {CLICK_COUNTS} FROM c GROUP BY 1",
            hour("at")
        ),
    )
    .await?;
    let mut conv = rows(&ctx, &format!("SELECT {} AS hour, currency, sum(n) AS conversions, sum(CAST(amount AS DECIMAL(38, 0))) AS amount_minor FROM e WHERE action = 'purchase' GROUP BY 1, 2 ORDER BY 2", hour("occurred_at"))).await?;
    for r in clicks.iter_mut().chain(conv.iter_mut()) {
        let start = chrono::DateTime::from_timestamp(int(r, "hour"), 0).unwrap_or_default();
        let (at, label) = f.bucket(start);
        r.insert("bucket".into(), json!(label));
        r.insert("bucket_at".into(), json!(at.timestamp()));
    }
    // In time order (labels alone misorder the hour repeated when clocks go back).
    let mut buckets: BTreeMap<(i64, String), Map<String, Value>> = BTreeMap::new();
    let first = clicks
        .iter()
        .chain(conv.iter())
        .map(|r| int(r, "hour"))
        .min()
        .and_then(|h| chrono::DateTime::from_timestamp(h, 0));
    let entry = |buckets: &mut BTreeMap<(i64, String), Map<String, Value>>,
                 key: &(i64, String)|
     -> Map<String, Value> {
        buckets.remove(key).unwrap_or_else(|| {
            let mut m = Map::new();
            m.insert("bucket".into(), json!(key.1));
            for k in ["clicks", "unique_clicks", "bot_clicks", "conversions"] {
                m.insert(k.into(), json!(0));
            }
            m.insert("revenue".into(), json!([]));
            m
        })
    };
    for (at, label) in f.all_buckets(first, chrono::Utc::now()).unwrap_or_default() {
        let key = (at.timestamp(), label);
        let m = entry(&mut buckets, &key);
        buckets.insert(key, m);
    }
    let key_of = |r: &Map<String, Value>| {
        (
            int(r, "bucket_at"),
            r["bucket"].as_str().unwrap_or_default().to_string(),
        )
    };
    for r in &clicks {
        let key = key_of(r);
        let mut m = entry(&mut buckets, &key);
        for k in ["clicks", "unique_clicks", "bot_clicks"] {
            m.insert(k.into(), json!(int(&m, k) + int(r, k)));
        }
        buckets.insert(key, m);
    }
    for r in &conv {
        let key = key_of(r);
        let mut m = entry(&mut buckets, &key);
        let n = m["conversions"].as_i64().unwrap_or(0) + int(r, "conversions");
        m.insert("conversions".into(), json!(n));
        if let Some(Value::Array(rev)) = m.get_mut("revenue") {
            add_revenue(rev, &r["currency"], amount(r));
        }
        buckets.insert(key, m);
    }
    Ok(Json(json!({
        "period": period(&f),
        "interval": unit,
        "tz": f.tz.name(),
        "series": buckets.into_values().collect::<Vec<_>>(),
    })))
}

/// Adds `amount` in `currency` to a revenue list (one entry per currency).
fn add_revenue(rev: &mut Vec<Value>, currency: &Value, amount: Value) {
    if let Some(e) = rev.iter_mut().find(|e| e["currency"] == *currency) {
        let sum = e["amount_minor"].as_i64().unwrap_or(0) + amount.as_i64().unwrap_or(0);
        e["amount_minor"] = json!(sum);
    } else {
        rev.push(json!({"currency": currency, "amount_minor": amount}));
    }
}

/// A breakdown dimension.
#[derive(Clone, Copy)]
pub(crate) enum Dim {
    Influencer,
    Campaign,
    Link,
    SubId,
    Country,
}

pub(crate) async fn breakdown(
    state: &QueryState,
    scope: &Scope,
    q: &HashMap<String, String>,
    dim: Dim,
) -> Result<Json<Value>, ApiError> {
    // Sub ids and countries are on raw clicks only, not in the hourly rollups.
    let raw_only = matches!(dim, Dim::SubId | Dim::Country);
    let (ctx, f) = prepare(state, scope, q, raw_only).await?;
    let (col, from) = match dim {
        Dim::Influencer => ("e.influencer_id", "e"),
        Dim::Campaign => ("e.campaign_id", "e"),
        Dim::Link => ("e.link_id", "e"),
        Dim::SubId => (
            "k.sub_id",
            "e JOIN clicks k ON e.credited_click_id = k.click_id",
        ),
        Dim::Country => (
            "k.country",
            "e JOIN clicks k ON e.credited_click_id = k.click_id",
        ),
    };
    let click_col = match dim {
        Dim::Influencer => "influencer_id",
        Dim::Campaign => "campaign_id",
        Dim::Link => "link_id",
        Dim::SubId => "sub_id",
        Dim::Country => "country",
    };
    let clicks = rows(&ctx, &format!("SELECT {click_col} AS id, {CLICK_COUNTS} FROM c WHERE {click_col} IS NOT NULL GROUP BY 1")).await?;
    let events = rows(
        &ctx,
        &format!(
            "SELECT {col} AS id, {EVENT_COUNTS} FROM {from} WHERE {col} IS NOT NULL GROUP BY 1"
        ),
    )
    .await?;
    let rev = rows(&ctx, &format!("SELECT {col} AS id, e.currency AS currency, sum(CAST(e.amount AS DECIMAL(38, 0))) AS amount_minor FROM {from} WHERE e.action = 'purchase' AND {col} IS NOT NULL GROUP BY 1, 2 ORDER BY 2")).await?;

    let catalog = state.catalog.snapshot();
    let mut out: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let blank = |id: &str| {
        let mut m = Map::new();
        m.insert("id".into(), json!(id));
        let (name, extra) = match dim {
            Dim::Influencer => (catalog.influencers.get(id).map(|i| i.name.clone()), None),
            Dim::Campaign => (catalog.campaigns.get(id).map(|c| c.name.clone()), None),
            Dim::Link => {
                let l = catalog.links.get(id);
                (
                    l.map(|l| l.code.clone()),
                    l.map(|l| ("influencer_id", json!(l.influencer_id))),
                )
            }
            Dim::SubId | Dim::Country => (Some(id.to_string()), None),
        };
        m.insert("name".into(), json!(name));
        if let Some((k, v)) = extra {
            m.insert(k.into(), v);
        }
        for k in [
            "clicks",
            "unique_clicks",
            "bot_clicks",
            "add_to_carts",
            "purchases",
            "attributed_purchases",
            "signups",
            "drop_offs",
            "custom_events",
        ] {
            m.insert(k.into(), json!(0));
        }
        m.insert("revenue".into(), json!([]));
        m
    };
    for (source, keys) in [
        (&clicks, &["clicks", "unique_clicks", "bot_clicks"][..]),
        (
            &events,
            &[
                "add_to_carts",
                "purchases",
                "attributed_purchases",
                "signups",
                "drop_offs",
                "custom_events",
            ][..],
        ),
    ] {
        for r in source {
            let id = r["id"].as_str().unwrap_or_default().to_string();
            let m = out.entry(id.clone()).or_insert_with(|| blank(&id));
            for k in keys {
                m.insert((*k).into(), json!(int(r, k)));
            }
        }
    }
    for r in &rev {
        let id = r["id"].as_str().unwrap_or_default().to_string();
        let m = out.entry(id.clone()).or_insert_with(|| blank(&id));
        if let Some(Value::Array(v)) = m.get_mut("revenue") {
            v.push(json!({"currency": r["currency"], "amount_minor": amount(r)}));
        }
    }
    let mut list: Vec<Map<String, Value>> = out.into_values().collect();
    for m in &mut list {
        let rate = ratio(
            m["purchases"].as_i64().unwrap_or(0),
            m["unique_clicks"].as_i64().unwrap_or(0),
        );
        m.insert("conversion_rate".into(), json!(rate));
    }
    list.sort_by(|a, b| {
        b["clicks"]
            .as_i64()
            .cmp(&a["clicks"].as_i64())
            .then_with(|| a["id"].as_str().cmp(&b["id"].as_str()))
    });
    Ok(Json(json!({"period": period(&f), "rows": list})))
}

macro_rules! per {
    ($name:ident, $path:literal, $dim:expr, $what:literal) => {
        #[doc = concat!("Clicks, funnel counts, revenue and conversion rate per ", $what, ", credited events only.")]
        #[utoipa::path(get, path = $path, tag = "stats",
            params(("from" = Option<String>, Query), ("to" = Option<String>, Query), ("period" = Option<String>, Query), ("campaign_id" = Option<String>, Query), ("influencer_id" = Option<String>, Query), ("tz" = Option<String>, Query, description = "IANA time zone of `today`, calendar periods and daily buckets (default UTC)")),
            responses((status = 200, description = "One row per key, most clicks first", body = crate::answers::Breakdown), (status = 400, description = "Bad filter")))]
        pub async fn $name(State(state): State<QueryState>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Result<Json<Value>, ApiError> {
            breakdown(&state, &Scope::of(&headers, &state)?, &q, $dim).await
        }
    };
}

per!(
    per_influencer,
    "/api/v1/stats/per-influencer",
    Dim::Influencer,
    "influencer"
);
per!(
    per_campaign,
    "/api/v1/stats/per-campaign",
    Dim::Campaign,
    "campaign"
);
per!(
    per_link,
    "/api/v1/stats/per-link",
    Dim::Link,
    "tracking link"
);
per!(
    per_sub_id,
    "/api/v1/stats/per-sub-id",
    Dim::SubId,
    "sub id (conversions joined through the credited click)"
);
per!(
    per_country,
    "/api/v1/stats/per-country",
    Dim::Country,
    "country: ISO 3166 alpha-2 of the click's address when a geo database is configured (`--geo-db`, `scripts/geo-db`); conversions joined through the credited click"
);

/// The funnel: landing (unique clicks) → add to cart → purchase, with drop-offs.
#[utoipa::path(get, path = "/api/v1/stats/funnel", tag = "stats",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query), ("period" = Option<String>, Query), ("campaign_id" = Option<String>, Query), ("influencer_id" = Option<String>, Query), ("tz" = Option<String>, Query, description = "IANA time zone of `today`, calendar periods and daily buckets (default UTC)")),
    responses((status = 200, description = "Steps with counts and step rates", body = crate::answers::Funnel), (status = 400, description = "Bad filter")))]
pub async fn funnel(
    State(state): State<QueryState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    funnel_in(&state, &Scope::of(&headers, &state)?, &q).await
}

/// The funnel within `scope`.
pub(crate) async fn funnel_in(
    state: &QueryState,
    scope: &Scope,
    q: &HashMap<String, String>,
) -> Result<Json<Value>, ApiError> {
    let (ctx, f) = prepare(state, scope, q, false).await?;
    let (c, e) = totals(&ctx).await?;
    let landing = int(&c, "unique_clicks");
    let carts = int(&e, "add_to_carts");
    let purchases = int(&e, "purchases");
    Ok(Json(json!({
        "period": period(&f),
        "steps": [
            {"step": "landing", "count": landing},
            {"step": "add_to_cart", "count": carts, "rate_from_previous": ratio(carts, landing)},
            {"step": "purchase", "count": purchases, "rate_from_previous": ratio(purchases, carts)},
        ],
        "drop_offs": int(&e, "drop_offs"),
        "signups": int(&e, "signups"),
        "overall_rate": ratio(purchases, landing),
    })))
}
