//! The shapes of the query answers, for the OpenAPI document (the handlers build the same JSON;
//! the Schemathesis run of the test command checks every answer against these).

use serde::Serialize;
use utoipa::ToSchema;

/// The period a figure covers.
#[derive(Serialize, ToSchema)]
pub struct Period {
    /// Inclusive start (RFC 3339), or null for the beginning.
    pub from: Option<String>,
    /// Exclusive end, or null for now.
    pub to: Option<String>,
}

/// An amount of money in one currency.
#[derive(Serialize, ToSchema)]
pub struct Money {
    /// ISO 4217 code.
    pub currency: String,
    /// Integer amount in the currency's minor unit (1999 for 19.99 USD).
    pub amount_minor: i64,
}

/// Click and funnel counts, as the overview and every breakdown row give them.
#[derive(Serialize, ToSchema)]
pub struct Counts {
    /// Human clicks.
    pub clicks: i64,
    /// First clicks of a visitor on a link within 24 hours.
    pub unique_clicks: i64,
    /// Clicks flagged as bots (not in `clicks`).
    pub bot_clicks: i64,
    /// Add-to-cart events.
    pub add_to_carts: i64,
    /// Purchases.
    pub purchases: i64,
    /// Purchases credited to an influencer.
    pub attributed_purchases: i64,
    /// Signups.
    pub signups: i64,
    /// Drop-offs.
    pub drop_offs: i64,
    /// Custom events.
    pub custom_events: i64,
}

/// Totals for a period (`/api/v1/stats/overview`).
#[derive(Serialize, ToSchema)]
pub struct Overview {
    /// The period.
    pub period: Period,
    /// The counts.
    #[serde(flatten)]
    pub counts: Counts,
    /// Purchase revenue per currency.
    pub revenue: Vec<Money>,
    /// Revenue of attributed purchases per currency.
    pub attributed_revenue: Vec<Money>,
    /// Attributed purchases / unique clicks (four decimals; above 1 when shoppers buy more than
    /// once per unique click).
    pub conversion_rate: f64,
}

/// One bucket of the chart.
#[derive(Serialize, ToSchema)]
pub struct ChartPoint {
    /// Bucket start (RFC 3339).
    pub bucket: String,
    /// Human clicks.
    pub clicks: i64,
    /// Unique clicks.
    pub unique_clicks: i64,
    /// Bot clicks.
    pub bot_clicks: i64,
    /// Purchases.
    pub conversions: i64,
    /// Revenue per currency.
    pub revenue: Vec<Money>,
}

/// Clicks, purchases and revenue over time (`/api/v1/stats/chart`).
#[derive(Serialize, ToSchema)]
pub struct Chart {
    /// The period.
    pub period: Period,
    /// `hour` or `day`.
    pub interval: String,
    /// Buckets in time order; buckets with nothing are left out.
    pub series: Vec<ChartPoint>,
}

/// One row of a breakdown.
#[derive(Serialize, ToSchema)]
pub struct BreakdownRow {
    /// Influencer, campaign or link id, or the sub id.
    pub id: String,
    /// Its name (the code for a link); null when no longer in the catalog.
    pub name: Option<String>,
    /// For a link: its influencer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub influencer_id: Option<String>,
    /// The counts (events: credited ones only).
    #[serde(flatten)]
    pub counts: Counts,
    /// Revenue per currency.
    pub revenue: Vec<Money>,
    /// Purchases / unique clicks.
    pub conversion_rate: f64,
}

/// Figures per influencer, campaign, link or sub id, most clicks first.
#[derive(Serialize, ToSchema)]
pub struct Breakdown {
    /// The period.
    pub period: Period,
    /// One row per key.
    pub rows: Vec<BreakdownRow>,
}

/// One step of the funnel.
#[derive(Serialize, ToSchema)]
pub struct FunnelStep {
    /// `landing`, `add_to_cart` or `purchase`.
    pub step: String,
    /// How many reached it.
    pub count: i64,
    /// `count` / the previous step's count (absent for the first step).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_from_previous: Option<f64>,
}

/// Landing → add to cart → purchase (`/api/v1/stats/funnel`).
#[derive(Serialize, ToSchema)]
pub struct Funnel {
    /// The period.
    pub period: Period,
    /// The steps in order.
    pub steps: Vec<FunnelStep>,
    /// Drop-off events.
    pub drop_offs: i64,
    /// Signups.
    pub signups: i64,
    /// Purchases / landings.
    pub overall_rate: f64,
}

/// How one event was attributed (`/api/v1/attribution/{event_id}`).
#[derive(Serialize, ToSchema)]
pub struct Audit {
    /// The event.
    pub event_id: String,
    /// Its advertiser.
    pub advertiser_id: String,
    /// Funnel action.
    pub action: String,
    /// When it happened.
    pub occurred_at: String,
    /// Whether an influencer was credited.
    pub attributed: bool,
    /// The rule that decided (`coupon`, `click_id`, `ref_code`, `extracted`, `first_touch`).
    pub attributed_by: Option<String>,
    /// Why not credited (`expired`, `no_touch`, …).
    pub reason: Option<String>,
    /// Credited campaign.
    pub campaign_id: Option<String>,
    /// Credited influencer.
    pub influencer_id: Option<String>,
    /// Credited link.
    pub link_id: Option<String>,
    /// Credited coupon.
    pub coupon_id: Option<String>,
    /// The credited click.
    pub click_id: Option<String>,
    /// Its time.
    pub click_at: Option<String>,
    /// The attribution window applied, seconds.
    pub window_secs: Option<i64>,
    /// Every touch considered, with its status.
    #[schema(value_type = Vec<Object>)]
    pub candidates: Vec<serde_json::Value>,
    /// A recorded conflict, if any.
    #[schema(value_type = Option<Object>)]
    pub conflicts: Option<serde_json::Value>,
    /// The commission the event booked, if any: `{commission_id, influencer_id, currency,
    /// booked_minor, hold_rule, hold_detail, now: {state: minor units}}`; `hold_rule` names the
    /// fraud rule that held it for review.
    #[schema(value_type = Option<Object>)]
    pub commission: Option<serde_json::Value>,
}

/// The answer to analyst SQL.
#[derive(Serialize, ToSchema)]
pub struct SqlAnswer {
    /// Column names in order.
    pub columns: Vec<String>,
    /// Rows as objects keyed by column name (at most 10,000).
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<serde_json::Value>,
    /// Whether rows past the limit were left out.
    pub truncated: bool,
}
