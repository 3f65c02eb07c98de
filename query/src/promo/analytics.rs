//! Promo figures from the store (`docs/promos.md`): each variation's recipients, clicks
//! (human, unique, flagged), conversions and revenue, with the statistics of [`super::stats`].
//!
//! Rules, in the order they are applied:
//! - A send counts once: recipients are summed over distinct (variation, newsletter send),
//!   taking the send's largest recorded count (the processor already drops copies).
//! - A click flagged by the redirector (`is_bot`: crawler or mail-scanner user agent, scanner
//!   network, HEAD request, no user agent) is a flagged click, with its reason.
//! - A click less than [`PREFETCH_SECS`] after a send of its variation was delivered
//!   (`sent_at`) is flagged `prefetch_after_send`: mail gateways open every link of a message
//!   on delivery, people do not read and click that fast.
//! - Clicks are the rest; unique clicks count each visitor key once per variation and
//!   calendar day (in `tz`); the hashed visitor key itself changes every UTC day.
//! - CTR is unique clicks ÷ recipients.
//! - Conversions are attributed purchases credited to a counted click, revenue their values
//!   per currency (minor units).

use super::stats::{Comparison, compare, probability_best, wilson};
use crate::filters::Filters;
use crate::internal;
use crate::json::rows;
use chrono::{DateTime, NaiveDate, Utc};
use clicktrail_api::error::ApiError;
use clicktrail_schemas::Catalog;
use datafusion::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// A click within this many seconds after its variation's send was delivered is a prefetch.
pub const PREFETCH_SECS: i64 = 2;

/// Which offers and variations, over which period.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The period (`sent_at` of sends, `at` of clicks), the time zone of days, and for an
    /// admin the advertiser.
    pub filters: Filters,
    /// Only this offer.
    pub offer_id: Option<String>,
    /// Only this variation.
    pub variation_id: Option<String>,
}

/// The figures of one variation, offer or the whole selection.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Figures {
    /// Distinct newsletter sends.
    pub sends: u64,
    /// Recipients of those sends: the impressions.
    pub impressions: u64,
    /// Human clicks (flagged ones excluded).
    pub clicks: u64,
    /// Clicks of distinct visitors per variation and day.
    pub unique_clicks: u64,
    /// Clicks excluded, by rule (`mail_scanner_user_agent`, `prefetch_after_send`, …).
    pub flagged_clicks: BTreeMap<String, u64>,
    /// Unique clicks ÷ impressions (0 without impressions).
    pub ctr: f64,
    /// Wilson 95 % interval of the CTR, low end.
    pub ctr_low: f64,
    /// Wilson 95 % interval of the CTR, high end.
    pub ctr_high: f64,
    /// Attributed purchases through counted clicks.
    pub conversions: u64,
    /// Conversions ÷ unique clicks.
    pub conversion_rate: f64,
    /// Their value per ISO 4217 currency, in minor units.
    pub revenue: BTreeMap<String, i64>,
}

impl Figures {
    /// Computes the rates and the interval from the counts.
    pub fn finish(&mut self) {
        self.ctr = ratio(self.unique_clicks, self.impressions);
        let (lo, hi) = wilson(self.unique_clicks, self.impressions);
        (self.ctr_low, self.ctr_high) = (round6(lo), round6(hi));
        self.conversion_rate = ratio(self.conversions, self.unique_clicks);
    }

    fn add(&mut self, o: &Figures) {
        self.sends += o.sends;
        self.impressions += o.impressions;
        self.clicks += o.clicks;
        self.unique_clicks += o.unique_clicks;
        for (k, v) in &o.flagged_clicks {
            *self.flagged_clicks.entry(k.clone()).or_default() += v;
        }
        self.conversions += o.conversions;
        for (k, v) in &o.revenue {
            *self.revenue.entry(k.clone()).or_default() += v;
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        round6(a as f64 / b as f64)
    }
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// A variation against its offer's leader.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VersusLeader {
    /// The leader (highest CTR in the offer).
    pub leader_id: String,
    /// Pooled two-proportion z statistic (negative: this variation trails).
    pub z: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Whether the difference is significant at 95 %.
    pub significant: bool,
    /// Recipients each needs for 80 % power at the observed CTRs (null when equal).
    pub recipients_needed: Option<u64>,
    /// How many more recipients the smaller of the two still needs.
    pub more_recipients_needed: Option<u64>,
}

/// One variation's figures.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VariationFigures {
    /// The variation.
    pub variation_id: String,
    /// Its offer.
    pub offer_id: String,
    /// Its headline.
    pub headline: String,
    /// Whether it is approved now.
    pub approved: bool,
    /// The figures.
    #[serde(flatten)]
    pub figures: Figures,
    /// Probability that its true CTR is the highest of its offer's variations that went out;
    /// null for one never sent.
    pub probability_best: Option<f64>,
    /// The test against the leader; null for the leader itself.
    pub vs_leader: Option<VersusLeader>,
}

/// One offer's figures.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OfferFigures {
    /// The offer.
    pub offer_id: String,
    /// Its name.
    pub name: String,
    /// The figures.
    #[serde(flatten)]
    pub figures: Figures,
    /// The variation with the highest CTR (null without impressions).
    pub best_variation_id: Option<String>,
}

/// One day of the timeline.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Day {
    /// The calendar day in `tz`.
    pub date: String,
    /// The figures of that day (sends by delivery day, clicks by click day).
    #[serde(flatten)]
    pub figures: Figures,
}

/// Everything computed for a selection.
#[derive(Debug, Clone, Default)]
pub struct Computed {
    /// The selection's totals.
    pub summary: Figures,
    /// Per offer.
    pub offers: Vec<OfferFigures>,
    /// Per variation, highest CTR first.
    pub variations: Vec<VariationFigures>,
    /// Per day, in order.
    pub timeline: Vec<Day>,
}

#[derive(Default)]
struct Acc {
    figures: Figures,
    visitors: HashSet<(String, NaiveDate)>,
}

fn text(r: &serde_json::Map<String, serde_json::Value>, k: &str) -> String {
    r.get(k)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string()
}

fn int(r: &serde_json::Map<String, serde_json::Value>, k: &str) -> i64 {
    crate::json::int(r, k)
}

fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The offer and variation filters of `sel` as SQL over columns prefixed with `prefix`.
fn id_filter(sel: &Selection, prefix: &str) -> String {
    let mut ids = vec!["true".to_string()];
    if let Some(o) = &sel.offer_id {
        ids.push(format!("{prefix}offer_id = {}", quoted(o)));
    }
    if let Some(v) = &sel.variation_id {
        ids.push(format!("{prefix}variation_id = {}", quoted(v)));
    }
    ids.join(" AND ")
}

/// Computes the figures of `sel` in `ctx` (a session already scoped to the caller), naming
/// offers and variations from `catalog` (only those of `advertiser` when given).
pub async fn compute(
    ctx: &SessionContext,
    sel: &Selection,
    catalog: &Catalog,
    advertiser: Option<&str>,
) -> Result<Computed, ApiError> {
    let ids = id_filter(sel, "");
    let f = &sel.filters;
    let imp = f
        .apply(ctx.table("impressions").await.map_err(internal)?, "sent_at")
        .map_err(internal)?;
    ctx.register_table("imp", imp.into_view())
        .map_err(internal)?;
    let pc = f
        .apply(ctx.table("promo_clicks").await.map_err(internal)?, "at")
        .map_err(internal)?;
    ctx.register_table("pc", pc.into_view()).map_err(internal)?;

    let sends = rows(
        ctx,
        &format!(
            "SELECT offer_id, variation_id, max(recipients) AS recipients, \
         CAST(min(sent_at) AS BIGINT) AS sent_us FROM imp WHERE {ids} \
         GROUP BY offer_id, variation_id, newsletter_send_id"
        ),
    )
    .await?;
    // Deliveries of every period: a click just inside the period may follow a send before it.
    let deliveries = rows(ctx, &format!(
        "SELECT DISTINCT variation_id, CAST(sent_at AS BIGINT) AS sent_us FROM impressions WHERE {ids}"
    ))
    .await?;
    let clicks = rows(
        ctx,
        &format!(
            "SELECT click_id, offer_id, variation_id, CAST(at AS BIGINT) AS at_us, visitor_key, \
         is_bot, bot_reason FROM pc WHERE {ids}"
        ),
    )
    .await?;
    let sales = rows(ctx, &format!(
        "SELECT DISTINCT e.event_id AS event_id, p.click_id AS click_id, e.currency AS currency, \
         e.value_minor AS value_minor FROM events e JOIN pc p ON e.credited_click_id = p.click_id \
         WHERE e.action = 'purchase' AND e.attributed AND {}",
        id_filter(sel, "p.")
    ))
    .await?;

    let mut delivered: HashMap<String, Vec<i64>> = HashMap::new();
    for r in &deliveries {
        delivered
            .entry(text(r, "variation_id"))
            .or_default()
            .push(int(r, "sent_us"));
    }
    let day = |us: i64| -> NaiveDate {
        DateTime::<Utc>::from_timestamp_micros(us)
            .unwrap_or_default()
            .with_timezone(&f.tz)
            .date_naive()
    };
    let mut per: BTreeMap<(String, String), Acc> = BTreeMap::new();
    let mut days: BTreeMap<NaiveDate, Acc> = BTreeMap::new();
    for r in &sends {
        let n = u64::try_from(int(r, "recipients")).unwrap_or(0);
        for a in [
            per.entry((text(r, "offer_id"), text(r, "variation_id")))
                .or_default(),
            days.entry(day(int(r, "sent_us"))).or_default(),
        ] {
            a.figures.sends += 1;
            a.figures.impressions += n;
        }
    }
    let mut counted: HashMap<String, (String, String)> = HashMap::new();
    for r in &clicks {
        let (variation, at_us) = (text(r, "variation_id"), int(r, "at_us"));
        let flag = if r.get("is_bot").and_then(|v| v.as_bool()).unwrap_or(false) {
            Some(
                r.get("bot_reason")
                    .and_then(|v| v.as_str())
                    .unwrap_or("bot")
                    .to_string(),
            )
        } else if delivered.get(&variation).is_some_and(|sent| {
            sent.iter()
                .any(|&s| at_us >= s && at_us < s + PREFETCH_SECS * 1_000_000)
        }) {
            Some("prefetch_after_send".to_string())
        } else {
            None
        };
        let key = (text(r, "offer_id"), variation.clone());
        let d = day(at_us);
        let visitor = (format!("{variation}\u{1f}{}", text(r, "visitor_key")), d);
        for a in [
            per.entry(key.clone()).or_default(),
            days.entry(d).or_default(),
        ] {
            match &flag {
                Some(reason) => *a.figures.flagged_clicks.entry(reason.clone()).or_default() += 1,
                None => {
                    a.figures.clicks += 1;
                    if a.visitors.insert(visitor.clone()) {
                        a.figures.unique_clicks += 1;
                    }
                }
            }
        }
        if flag.is_none() {
            counted.insert(text(r, "click_id"), key);
        }
    }
    for r in &sales {
        let Some(key) = counted.get(&text(r, "click_id")) else {
            continue;
        };
        let a = per.entry(key.clone()).or_default();
        a.figures.conversions += 1;
        *a.figures.revenue.entry(text(r, "currency")).or_default() += int(r, "value_minor");
    }

    // Every variation of the selected offers, with or without figures.
    for v in catalog.variations.values() {
        let visible = advertiser.is_none_or(|a| v.advertiser_id == a)
            && f.advertiser_id
                .as_ref()
                .is_none_or(|a| &v.advertiser_id == a)
            && sel.offer_id.as_ref().is_none_or(|o| &v.offer_id == o)
            && sel.variation_id.as_ref().is_none_or(|x| &v.id == x);
        if visible {
            per.entry((v.offer_id.clone(), v.id.clone())).or_default();
        }
    }
    Ok(assemble(per, days, catalog))
}

fn assemble(
    per: BTreeMap<(String, String), Acc>,
    days: BTreeMap<NaiveDate, Acc>,
    catalog: &Catalog,
) -> Computed {
    let mut out = Computed::default();
    let mut by_offer: BTreeMap<String, Vec<VariationFigures>> = BTreeMap::new();
    for ((offer_id, variation_id), mut a) in per {
        a.figures.finish();
        let v = catalog.variations.get(&variation_id);
        by_offer
            .entry(offer_id.clone())
            .or_default()
            .push(VariationFigures {
                headline: v.map(|v| v.headline.clone()).unwrap_or_default(),
                approved: v.is_some_and(|v| v.approved),
                variation_id,
                offer_id,
                figures: a.figures,
                probability_best: None,
                vs_leader: None,
            });
    }
    for (offer_id, mut vars) in by_offer {
        vars.sort_by(|a, b| {
            b.figures
                .ctr
                .total_cmp(&a.figures.ctr)
                .then_with(|| a.variation_id.cmp(&b.variation_id))
        });
        // Only variations that went out compete: one never sent has no CTR to be best with.
        let arms: Vec<(u64, u64)> = vars
            .iter()
            .filter(|v| v.figures.impressions > 0)
            .map(|v| (v.figures.unique_clicks, v.figures.impressions))
            .collect();
        let mut best = probability_best(&arms).into_iter();
        let leader = vars.first().filter(|l| l.figures.impressions > 0).map(|l| {
            (
                l.variation_id.clone(),
                l.figures.unique_clicks,
                l.figures.impressions,
            )
        });
        let mut total = Figures::default();
        for v in vars.iter_mut() {
            if v.figures.impressions > 0 {
                v.probability_best = best.next().map(round6);
            }
            total.add(&v.figures);
            if let Some((id, k, n)) = &leader
                && *id != v.variation_id
                && v.figures.impressions > 0
            {
                let c: Comparison = compare(v.figures.unique_clicks, v.figures.impressions, *k, *n);
                let have = v.figures.impressions.min(*n);
                v.vs_leader = Some(VersusLeader {
                    leader_id: id.clone(),
                    z: round6(c.z),
                    p_value: round6(c.p_value),
                    significant: c.significant,
                    recipients_needed: c.recipients_needed,
                    more_recipients_needed: c.recipients_needed.map(|r| r.saturating_sub(have)),
                });
            }
        }
        total.finish();
        out.summary.add(&total);
        out.offers.push(OfferFigures {
            name: catalog
                .offers
                .get(&offer_id)
                .map(|o| o.name.clone())
                .unwrap_or_default(),
            offer_id,
            figures: total,
            best_variation_id: leader.map(|l| l.0),
        });
        out.variations.extend(vars);
    }
    out.summary.finish();
    out.variations.sort_by(|a, b| {
        b.figures
            .ctr
            .total_cmp(&a.figures.ctr)
            .then_with(|| a.variation_id.cmp(&b.variation_id))
    });
    out.timeline = days
        .into_iter()
        .map(|(d, mut a)| {
            a.figures.finish();
            Day {
                date: d.to_string(),
                figures: a.figures,
            }
        })
        .collect();
    out
}
