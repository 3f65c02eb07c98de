//! Newsletter promos on the query side (`docs/promos.md`):
//!
//! - `GET /api/v1/promo/select`: an approved variation of an active offer, with its texts and
//!   the tracking link carrying `promo_var`, chosen `weighted` (offers by weight, variations
//!   uniformly) or `adaptive` (offers by weight, variations by Thompson sampling on their
//!   CTR with the exploration floor of [`stats::EXPLORATION`]).
//! - `GET /api/v1/promo/analytics`: impressions, clicks, unique clicks, CTR with its Wilson
//!   interval, per offer (with its best variation), per variation (highest CTR first, with the
//!   probability of being best and the test against the leader) and per day.
//!
//! Callers: an advertiser (its API key or users: its own offers) or an admin. Output is
//! aggregate only: no visitor key, address or click id leaves these routes.

pub mod analytics;
pub mod stats;

use crate::scope::{Scope, session};
use crate::{QueryState, filters::Filters};
use analytics::{Computed, Day, Figures, OfferFigures, Selection, VariationFigures, compute};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use clicktrail_api::error::{ApiError, FieldError};
use moka::sync::Cache;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

pub(crate) fn routes() -> Router<QueryState> {
    Router::new()
        .route("/api/v1/promo/select", get(select))
        .route("/api/v1/promo/analytics", get(analytics))
        .route("/api/v1/promo/chart.svg", get(chart_svg))
}

/// How long adaptive selection reuses an offer's click and impression counts: 30 seconds.
pub const ARMS_TTL: Duration = Duration::from_secs(30);

/// An offer's variations as adaptive selection reads them: (variation id, arm).
type Arms = Arc<Vec<(String, stats::Arm)>>;

/// Each offer's [`Arms`] as adaptive selection last read them.
static ARMS: LazyLock<Cache<String, Arms>> = LazyLock::new(|| {
    Cache::builder()
        .max_capacity(10_000)
        .time_to_live(ARMS_TTL)
        .build()
});

/// A selected variation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Selected {
    /// The offer.
    pub offer_id: String,
    /// Its name.
    pub offer_name: String,
    /// The variation.
    pub variation_id: String,
    /// Its headline.
    pub headline: String,
    /// Its body text.
    pub body: String,
    /// Its call to action.
    pub cta: String,
    /// Its tone.
    pub tone: String,
    /// The link to put in the newsletter: `<public URL>/r/<code>?promo_var=<variation id>`.
    pub tracking_url: String,
    /// `weighted` or `adaptive`.
    pub strategy: String,
    /// The seed used (the one given, else a random one): the same seed, strategy and counts
    /// select the same variation.
    pub seed: u64,
}

fn unknown_params(q: &HashMap<String, String>, known: &[&str]) -> Vec<FieldError> {
    q.keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|k| {
            FieldError::new(
                k.clone(),
                format!("unknown parameter; expected one of {}", known.join(", ")),
            )
        })
        .collect()
}

/// Select a variation for a newsletter send.
#[utoipa::path(get, path = "/api/v1/promo/select", tag = "promo",
    params(("offer_id" = Option<String>, Query, description = "One offer; default: any active offer of the caller, by weight"),
        ("advertiser_id" = Option<String>, Query, description = "Admin only: offers of this advertiser"),
        ("strategy" = Option<String>, Query, description = "weighted (default) or adaptive"),
        ("seed" = Option<u64>, Query, description = "Makes the choice reproducible")),
    responses((status = 200, description = "The variation and its tracking link", body = Selected),
        (status = 400, description = "Bad parameter, unknown offer"), (status = 401, description = "No credentials"),
        (status = 404, description = "No active offer with an approved variation")))]
pub async fn select(
    State(state): State<QueryState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Selected>, ApiError> {
    let scope = Scope::of(&headers, &state)?;
    let mut errors = unknown_params(&q, &["offer_id", "advertiser_id", "strategy", "seed"]);
    let strategy = q.get("strategy").map_or("weighted", String::as_str);
    if !matches!(strategy, "weighted" | "adaptive") {
        errors.push(FieldError::new("strategy", "expected weighted or adaptive"));
    }
    let seed = match q.get("seed") {
        None => rand::random(),
        Some(s) => s.parse::<u64>().unwrap_or_else(|_| {
            errors.push(FieldError::new(
                "seed",
                "expected a whole number from 0 to 2^64 - 1",
            ));
            0
        }),
    };
    if q.contains_key("advertiser_id") && !scope.is_all() {
        errors.push(FieldError::new(
            "advertiser_id",
            "only the admin may choose an advertiser",
        ));
    }
    let catalog = state.catalog.snapshot();
    let visible = |adv: &str| {
        scope.advertiser().is_none_or(|a| a == adv)
            && q.get("advertiser_id").is_none_or(|a| a == adv)
    };
    if let Some(o) = q.get("offer_id")
        && !catalog
            .offers
            .get(o)
            .is_some_and(|o| visible(&o.advertiser_id))
    {
        errors.push(FieldError::new("offer_id", "no such offer"));
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let mut offers: Vec<_> = catalog
        .offers
        .values()
        .filter(|o| o.active && visible(&o.advertiser_id))
        .filter(|o| q.get("offer_id").is_none_or(|id| &o.id == id))
        .filter(|o| !catalog.approved_variations(&o.id).is_empty())
        // Only offers whose link redirects: a newsletter must not carry a link that 404s.
        .filter(|o| {
            catalog
                .links
                .get(&o.link_id)
                .is_some_and(|l| catalog.resolve_code(&l.code).is_some())
        })
        .collect();
    offers.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    if offers.is_empty() {
        return Err(ApiError::NotFound(
            "no active offer with an approved variation".into(),
        ));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let weights: Vec<u32> = offers.iter().map(|o| o.weight).collect();
    let offer = offers[stats::weighted(&weights, &mut rng)];
    let variations = catalog.approved_variations(&offer.id);
    let chosen = if strategy == "adaptive" {
        let arms = arms(&state, &scope, &offer.id).await?;
        let arms: Vec<stats::Arm> = variations
            .iter()
            .map(|v| {
                arms.iter().find(|(id, _)| *id == v.id).map_or(
                    stats::Arm {
                        clicks: 0,
                        recipients: 0,
                    },
                    |(_, a)| *a,
                )
            })
            .collect();
        variations[stats::thompson(&arms, &mut rng)]
    } else {
        variations[stats::weighted(&vec![1; variations.len()], &mut rng)]
    };
    let link = catalog
        .links
        .get(&offer.link_id)
        .ok_or_else(|| ApiError::NotFound("the offer's link no longer exists".into()))?;
    Ok(Json(Selected {
        offer_id: offer.id.clone(),
        offer_name: offer.name.clone(),
        variation_id: chosen.id.clone(),
        headline: chosen.headline.clone(),
        body: chosen.body.clone(),
        cta: chosen.cta.clone(),
        tone: chosen.tone.clone(),
        tracking_url: format!(
            "{}/r/{}?promo_var={}",
            state.public_url.trim_end_matches('/'),
            link.code,
            chosen.id
        ),
        strategy: strategy.to_string(),
        seed,
    }))
}

/// The all-time unique clicks and recipients of an offer's variations, cached for
/// [`ARMS_TTL`].
async fn arms(state: &QueryState, scope: &Scope, offer_id: &str) -> Result<Arms, ApiError> {
    if let Some(a) = ARMS.get(offer_id) {
        return Ok(a);
    }
    let ctx = session(state, scope).await?;
    let sel = Selection {
        filters: Filters::parse(
            &HashMap::from([("period".into(), "all".into())]),
            Utc::now(),
        )?,
        offer_id: Some(offer_id.to_string()),
        variation_id: None,
    };
    let c = compute(&ctx, &sel, &state.catalog.snapshot(), scope.advertiser()).await?;
    let arms: Arms = Arc::new(
        c.variations
            .into_iter()
            .map(|v| {
                (
                    v.variation_id,
                    stats::Arm {
                        clicks: v.figures.unique_clicks,
                        recipients: v.figures.impressions,
                    },
                )
            })
            .collect(),
    );
    ARMS.insert(offer_id.to_string(), arms.clone());
    Ok(arms)
}

/// The answer of `/api/v1/promo/analytics`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PromoAnalytics {
    /// The period.
    pub period: crate::answers::Period,
    /// Totals.
    pub summary: Figures,
    /// Per offer, with its best variation.
    pub offers: Vec<OfferFigures>,
    /// Per variation, highest CTR first (absent with `include_variations=false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variations: Option<Vec<VariationFigures>>,
    /// Per day (with `include_timeline=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<Day>>,
}

fn flag(q: &HashMap<String, String>, name: &str, default: bool) -> Result<bool, FieldError> {
    match q.get(name).map(String::as_str) {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => Err(FieldError::new(name, "expected true or false")),
    }
}

/// What an analytics request asks for.
struct Asked {
    selection: Selection,
    variations: bool,
    timeline: bool,
}

/// Reads an analytics request's parameters (all of them wrong at once).
fn asked(scope: &Scope, q: &HashMap<String, String>) -> Result<Asked, ApiError> {
    let known = [
        "offer_id",
        "variation_id",
        "period",
        "from",
        "to",
        "tz",
        "advertiser_id",
        "include_variations",
        "include_timeline",
    ];
    let mut errors = unknown_params(q, &known);
    let variations = flag(q, "include_variations", true)
        .map_err(|e| errors.push(e))
        .ok();
    let timeline = flag(q, "include_timeline", false)
        .map_err(|e| errors.push(e))
        .ok();
    if q.contains_key("advertiser_id") && !scope.is_all() {
        errors.push(FieldError::new(
            "advertiser_id",
            "only the admin may filter by advertiser",
        ));
    }
    let period: HashMap<String, String> = q
        .iter()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "period" | "from" | "to" | "tz" | "advertiser_id"
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let filters = match Filters::parse(&period, Utc::now()) {
        Ok(f) => Some(f),
        Err(ApiError::Invalid { mut fields, .. }) => {
            errors.append(&mut fields);
            None
        }
        Err(e) => return Err(e),
    };
    match filters {
        Some(filters) if errors.is_empty() => Ok(Asked {
            selection: Selection {
                filters,
                offer_id: q.get("offer_id").cloned(),
                variation_id: q.get("variation_id").cloned(),
            },
            variations: variations.unwrap_or(true),
            timeline: timeline.unwrap_or(false),
        }),
        _ => Err(ApiError::fields(errors)),
    }
}

/// Promo figures: impressions, clicks, CTRs with intervals, the test of each variation against
/// its offer's leader, conversions and revenue.
#[utoipa::path(get, path = "/api/v1/promo/analytics", tag = "promo",
    params(("offer_id" = Option<String>, Query), ("variation_id" = Option<String>, Query),
        ("period" = Option<String>, Query, description = "today, 7d, 30d (default) or all"),
        ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("tz" = Option<String>, Query),
        ("advertiser_id" = Option<String>, Query, description = "Admin only"),
        ("include_variations" = Option<bool>, Query, description = "Default true"),
        ("include_timeline" = Option<bool>, Query, description = "Default false")),
    responses((status = 200, description = "The figures", body = PromoAnalytics),
        (status = 400, description = "Bad parameter, each named"), (status = 401, description = "No credentials")))]
pub async fn analytics(
    State(state): State<QueryState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<PromoAnalytics>, ApiError> {
    let scope = Scope::of(&headers, &state)?;
    let a = asked(&scope, &q)?;
    let ctx = session(&state, &scope).await?;
    let Computed {
        summary,
        offers,
        variations,
        timeline,
    } = compute(
        &ctx,
        &a.selection,
        &state.catalog.snapshot(),
        scope.advertiser(),
    )
    .await?;
    let f = &a.selection.filters;
    let rfc = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    Ok(Json(PromoAnalytics {
        period: crate::answers::Period {
            from: f.from.map(rfc),
            to: f.to.map(rfc),
        },
        summary,
        offers,
        variations: a.variations.then_some(variations),
        timeline: a.timeline.then_some(timeline),
    }))
}

/// The CTR per day with its 95 % interval, as an SVG picture (the analytics' parameters,
/// `width` and `height`).
#[utoipa::path(get, path = "/api/v1/promo/chart.svg", tag = "promo",
    params(("offer_id" = Option<String>, Query), ("variation_id" = Option<String>, Query),
        ("period" = Option<String>, Query), ("from" = Option<String>, Query), ("to" = Option<String>, Query),
        ("tz" = Option<String>, Query), ("advertiser_id" = Option<String>, Query, description = "Admin only"),
        ("width" = Option<u32>, Query, description = "pixels, 280 to 1600 (default 640)"),
        ("height" = Option<u32>, Query, description = "pixels, 160 to 800 (default 260)")),
    responses((status = 200, description = "An SVG picture", content_type = "image/svg+xml", body = String),
        (status = 400, description = "Bad parameter")))]
pub async fn chart_svg(
    State(state): State<QueryState>,
    headers: HeaderMap,
    Query(mut q): Query<HashMap<String, String>>,
) -> Result<axum::response::Response, ApiError> {
    let scope = Scope::of(&headers, &state)?;
    let (width, height) = crate::web::pictures::size(&mut q)?;
    let a = asked(&scope, &q)?;
    let ctx = session(&state, &scope).await?;
    let c = compute(
        &ctx,
        &a.selection,
        &state.catalog.snapshot(),
        scope.advertiser(),
    )
    .await?;
    Ok(crate::web::pictures::svg_answer(
        crate::web::ctr_chart::render(
            &c.timeline,
            width,
            height,
            "Click-through rate per day with its 95 % interval",
        ),
    ))
}
