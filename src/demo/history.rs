//! 90 days of demo history, so that every period and chart shows something: clicks written to
//! the `clicks` topic as the redirector writes them (a redirect cannot be answered in the past),
//! and the shoppers' events sent through the events API with their `occurred_at` and the click
//! ids of those clicks, so that the processor dedups and attributes them like any others.
//!
//! Rhythm: about 90 clicks a day at the start, growing by 1% a day; a third more on Saturdays and
//! Sundays; by hour (UTC) a peak around 20:00 and a smaller one at noon. One human shopper in
//! five clicks the same link again within the hour (a repeat: a click, not a unique click).

use super::catalog::{DemoCatalog, DemoLink};
use super::{Api, BOTS, SUB_IDS, USER_AGENTS};
use chrono::{DateTime, Datelike, Duration, Timelike, Utc, Weekday};
use clicktrail_bus::{Producer, RecordProducer};
use clicktrail_redirector::classify::device_class;
use clicktrail_schemas::token::ClickKeys;
use clicktrail_schemas::wire::ClickRecord;
use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::{Value, json};

/// Days of history.
pub const DAYS: i64 = 90;
const CLICKS_PER_DAY: f64 = 90.0;

/// Relative traffic of an hour of the day (UTC).
fn hour_weight(h: u32) -> f64 {
    let h = f64::from(h);
    0.25 + (-(h - 20.0).powi(2) / 18.0).exp() + 0.5 * (-(h - 12.0).powi(2) / 8.0).exp()
}

/// Clicks expected on day `d` (0 = the first day of history) falling on `weekday`.
fn day_clicks(d: i64, weekday: Weekday) -> f64 {
    let weekend = matches!(weekday, Weekday::Sat | Weekday::Sun);
    CLICKS_PER_DAY * 1.01f64.powi(d as i32) * if weekend { 1.35 } else { 1.0 }
}

/// What the history wrote.
pub struct Written {
    /// Clicks appended to `clicks`.
    pub clicks: usize,
    /// Events accepted by the events API.
    pub events: usize,
}

/// Writes the history ending at `now`.
pub async fn write(
    api: &Api,
    producer: &dyn Producer,
    keys: &ClickKeys,
    catalog: &DemoCatalog,
    now: DateTime<Utc>,
) -> anyhow::Result<Written> {
    let start = (now - Duration::days(DAYS))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    let hour_total: f64 = (0..24).map(hour_weight).sum();
    let (mut clicks, mut events) = (Vec::new(), Vec::new());
    let mut written = Written {
        clicks: 0,
        events: 0,
    };
    let mut hour = start;
    let mut n = 0usize;
    while hour + Duration::hours(1) <= now {
        let day = (hour - start).num_days();
        let expected = day_clicks(day, hour.weekday()) * hour_weight(hour.hour()) / hour_total;
        let count = {
            let mut rng = rand::rng();
            // Expected count, with its fraction as a chance of one more.
            expected as usize + usize::from(rng.random_bool(expected.fract()))
        };
        for _ in 0..count {
            let at = hour + Duration::milliseconds(rand::rng().random_range(0..3_600_000));
            let (click, shopper) = click_at(keys, catalog, at);
            if let Some(e) = shopper
                .as_ref()
                .map(|s| events_of(n, &click, s, catalog, now))
            {
                events.extend(e);
            }
            // One human shopper in five follows the same link again within the hour: a
            // repeat click, counted in clicks but not in unique clicks.
            let again = shopper.is_some() && rand::rng().random_bool(0.2);
            if again {
                let later = click.at + Duration::minutes(rand::rng().random_range(1..60));
                if later < now {
                    let mut repeat = click.clone();
                    repeat.at = later;
                    repeat.click_id = keys.mint(
                        &click.link_id,
                        later.timestamp_millis(),
                        rand::rng().random(),
                    );
                    clicks.push(click);
                    clicks.push(repeat);
                    n += 1;
                    continue;
                }
            }
            clicks.push(click);
            n += 1;
        }
        if clicks.len() >= 5_000 {
            written.clicks += flush_clicks(producer, &mut clicks).await?;
        }
        if events.len() >= 1_000 {
            written.events += flush_events(api, &catalog.api_key, &mut events).await?;
        }
        hour += Duration::hours(1);
    }
    written.clicks += flush_clicks(producer, &mut clicks).await?;
    written.events += flush_events(api, &catalog.api_key, &mut events).await?;
    Ok(written)
}

/// A human shopper's visitor key and user agent (`None` for a bot).
struct Shopper {
    roll: f64,
}

fn click_at(
    keys: &ClickKeys,
    catalog: &DemoCatalog,
    at: DateTime<Utc>,
) -> (ClickRecord, Option<Shopper>) {
    let mut rng = rand::rng();
    // The first influencer draws the most traffic.
    let link: &DemoLink = if rng.random_bool(0.4) {
        &catalog.links[rng.random_range(0..2.min(catalog.links.len()))]
    } else {
        catalog.links.choose(&mut rng).expect("the demo has links")
    };
    let bot = rng.random_bool(0.06);
    let ua = if bot {
        *BOTS.choose(&mut rng).expect("non-empty")
    } else {
        *USER_AGENTS.choose(&mut rng).expect("non-empty")
    };
    let click = ClickRecord {
        v: 1,
        click_id: keys.mint(&link.id, at.timestamp_millis(), rng.random()),
        at,
        link_id: link.id.clone(),
        code: link.code.clone(),
        sub_id: rng
            .random_bool(0.6)
            .then(|| SUB_IDS.choose(&mut rng).expect("non-empty").to_string()),
        advertiser_id: catalog.advertiser_id.clone(),
        campaign_id: link.campaign_id.clone(),
        influencer_id: link.influencer_id.clone(),
        visitor_key: hex::encode(rng.random::<[u8; 16]>()),
        user_agent: ua.to_string(),
        device_class: device_class(ua, bot).to_string(),
        referrer: rng
            .random_bool(0.5)
            .then(|| "https://www.instagram.com/".to_string()),
        ip_prefix: format!("198.51.{}.0/24", rng.random_range(0..=255)),
        country: None,
        is_bot: bot,
        bot_reason: bot.then(|| "crawler_user_agent".to_string()),
        not_live: false,
        promo: None,
    };
    let shopper = (!bot).then(|| Shopper {
        roll: rng.random::<f64>(),
    });
    (click, shopper)
}

/// The events a shopper of `click` sends later, none after `now`.
fn events_of(
    n: usize,
    click: &ClickRecord,
    s: &Shopper,
    catalog: &DemoCatalog,
    now: DateTime<Utc>,
) -> Vec<Value> {
    let later = |minutes: i64| {
        let t = click.at + Duration::minutes(minutes);
        (t < now).then(|| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    };
    let customer = format!("demo-history-{n}");
    let mut out = Vec::new();
    if s.roll < 0.30 {
        if let Some(t) = later(4) {
            out.push(json!({"action": "add_to_cart", "customer_id": customer, "click_id": click.click_id, "value": 49.9, "occurred_at": t}));
        }
        if s.roll < 0.12 {
            if let Some(t) = later(25) {
                let mut purchase = json!({"action": "purchase", "customer_id": customer,
                    "order_id": format!("demo-history-order-{n}"), "click_id": click.click_id,
                    "value": format!("{}.{:02}", 20 + n % 180, n % 100),
                    "currency": if n.is_multiple_of(7) { "EUR" } else { "USD" }, "occurred_at": t});
                if s.roll < 0.03 {
                    purchase["coupon_code"] = json!(catalog.coupons[n % catalog.coupons.len()]);
                }
                out.push(purchase);
            }
        } else if s.roll < 0.20
            && let Some(t) = later(9)
        {
            out.push(json!({"action": "drop_off", "customer_id": customer, "click_id": click.click_id, "occurred_at": t}));
        }
    } else if s.roll < 0.36
        && let Some(t) = later(2)
    {
        out.push(
            json!({"action": "signup", "customer_id": customer, "occurred_at": t,
            "landing_url": format!("https://shop.example/welcome?ref_code={}", click.code)}),
        );
    }
    out
}

async fn flush_clicks(
    producer: &dyn Producer,
    clicks: &mut Vec<ClickRecord>,
) -> anyhow::Result<usize> {
    let n = clicks.len();
    if n > 0 {
        producer.send_records(clicks).await?;
        clicks.clear();
    }
    Ok(n)
}

async fn flush_events(api: &Api, key: &str, events: &mut Vec<Value>) -> anyhow::Result<usize> {
    let n = events.len();
    for chunk in events.chunks(1_000) {
        api.send_events(key, chunk).await?;
    }
    events.clear();
    Ok(n)
}
