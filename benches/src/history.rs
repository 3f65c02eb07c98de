//! Generated history for the dashboards at scale (the load harness) and the dashboards bench:
//! clicks and events of one advertiser's links spread over the 90 days before a moment, the
//! same in every run, written through a store's own writer as the processor writes it.

use chrono::{DateTime, Duration as Span, Utc};
use clicktrail_schemas::attribution::{TouchSource, TouchStatus};
use clicktrail_schemas::rows::{Attribution, ClickRow, EventRow, Source};
use clicktrail_schemas::wire::{Action, ClickRecord, EventRecord};
use clicktrail_store::{Rows, Store};
use std::time::{Duration, Instant};

/// Days of generated history, ending at the history's `end`.
pub const DAYS: i64 = 90;
/// Rows per store write: both at or above the Parquet store's small-file threshold (200,000
/// rows), so the written files are not compacted while they are read.
const CLICKS_PER_WRITE: u64 = 500_000;
const EVENTS_PER_WRITE: u64 = 250_000;

/// One link of the advertiser, with its campaign and influencer.
#[derive(Debug, Clone)]
pub struct Link {
    /// Link id.
    pub id: String,
    /// Its code.
    pub code: String,
    /// Its campaign.
    pub campaign: String,
    /// Its influencer.
    pub influencer: String,
}

/// SplitMix64 (Steele, Lea, Flood: "Fast splittable pseudorandom number generators", OOPSLA
/// 2014), so that the history is the same in every run.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// `true` with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const DEVICES: [&str; 3] = ["mobile", "desktop", "tablet"];
const COUNTRIES: [&str; 6] = ["US", "DE", "FR", "GB", "BR", "JP"];

/// The generator of one advertiser's rows. Clicks: 3% bots, three in four human clicks
/// unique, three in ten with a sub id. Events: 45% add to cart, 30% purchases (10 to 200 USD,
/// in cents), 10% signups, 15% drop-offs; seven in ten attributed through a click. Links are
/// drawn by a square law, so the first influencers have the most traffic.
pub struct History {
    links: Vec<Link>,
    advertiser: String,
    start: DateTime<Utc>,
    mix: Mix,
}

impl History {
    /// A history of `advertiser`'s `links` (at least one) over the 90 days before `end`.
    pub fn new(links: Vec<Link>, advertiser: String, end: DateTime<Utc>) -> Self {
        assert!(!links.is_empty(), "a history needs a link");
        History {
            links,
            advertiser,
            start: end - Span::days(DAYS),
            mix: Mix(0x5eed),
        }
    }

    /// A time within the 90 days.
    fn at(&mut self) -> DateTime<Utc> {
        self.start + Span::milliseconds((self.mix.next() % (DAYS as u64 * 86_400_000)) as i64)
    }

    fn link(&mut self) -> Link {
        let u = (self.mix.next() % 1_000_000) as f64 / 1e6;
        let i = ((u * u) * self.links.len() as f64) as usize;
        self.links[i.min(self.links.len() - 1)].clone()
    }

    /// Click number `n` (click id `sc-{n:010x}`).
    pub fn click(&mut self, n: u64) -> ClickRow {
        let link = self.link();
        let is_bot = self.mix.chance(3);
        let r = self.mix.next();
        ClickRow {
            click: ClickRecord {
                v: 1,
                click_id: format!("sc-{n:010x}"),
                at: self.at(),
                link_id: link.id,
                code: link.code,
                sub_id: (r % 10 < 3).then(|| format!("story-{}", r % 7)),
                advertiser_id: self.advertiser.clone(),
                campaign_id: link.campaign,
                influencer_id: link.influencer,
                visitor_key: format!("{:032x}", self.mix.next() % 8_000_000),
                user_agent: "Mozilla/5.0 (Linux; Android 14) scale".into(),
                device_class: DEVICES[(r % 3) as usize].into(),
                referrer: None,
                ip_prefix: "203.0.113.0/24".into(),
                country: Some(COUNTRIES[(r / 7 % 6) as usize].into()),
                is_bot,
                bot_reason: is_bot.then(|| "user_agent".into()),
                not_live: false,
                promo: None,
            },
            is_unique: !is_bot && self.mix.chance(75),
            source: Source {
                partition: 0,
                offset: n,
            },
        }
    }

    /// Event number `n` (event id `se-{n:010x}`, the order id of a purchase too).
    pub fn event(&mut self, n: u64) -> EventRow {
        let action = match self.mix.next() % 100 {
            0..45 => Action::AddToCart,
            45..75 => Action::Purchase,
            75..85 => Action::Signup,
            _ => Action::DropOff,
        };
        let purchase = action == Action::Purchase;
        let at = self.at();
        let id = format!("se-{n:010x}");
        let attribution = if self.mix.chance(70) {
            let link = self.link();
            Attribution {
                attributed: true,
                attributed_by: Some(TouchSource::ClickId),
                campaign_id: Some(link.campaign),
                influencer_id: Some(link.influencer),
                link_id: Some(link.id),
                credited_click_id: Some(format!("sc-{:010x}", self.mix.next() % (n * 3 + 1))),
                click_at: Some(at - Span::hours(2)),
                window_secs: Some(30 * 86_400),
                ..Attribution::default()
            }
        } else {
            Attribution {
                reason: Some(TouchStatus::NoTouch),
                ..Attribution::default()
            }
        };
        EventRow {
            event: EventRecord {
                v: 1,
                event_id: id.clone(),
                advertiser_id: self.advertiser.clone(),
                action,
                custom_name: None,
                occurred_at: at,
                received_at: at,
                value_minor: purchase.then(|| 1_000 + (self.mix.next() % 19_000) as i64),
                currency: "USD".into(),
                order_id: purchase.then(|| id.clone()),
                customer_id: Some(format!("cust-{}", self.mix.next() % 3_000_000)),
                properties: None,
                coupon_code: None,
                ref_code: None,
                click_id: None,
                sub_id: None,
                landing_url: None,
                referrer: None,
                source: Default::default(),
                uncounted: false,
            },
            attribution,
            source: Source {
                partition: 1,
                offset: n,
            },
        }
    }

    /// One purchase as the bus carries it (JSON), about the size of a real one.
    pub fn sample_purchase() -> Vec<u8> {
        let link = Link {
            id: "lnk_0123456789abcdef".into(),
            code: "scale-0001".into(),
            campaign: "cmp_0123456789abcdef".into(),
            influencer: "inf_0123456789abcdef".into(),
        };
        let mut history = History::new(vec![link], "adv_0123456789abcdef".into(), Utc::now());
        loop {
            let row = history.event(0);
            if row.event.action == Action::Purchase {
                return serde_json::to_vec(&row.event).expect("JSON");
            }
        }
    }
}

/// Writes `clicks` clicks and `events` events of `history` through `store`, in writes of
/// 500,000 clicks or 250,000 events (generated on a thread of their own meanwhile), the table
/// furthest behind its share first. Returns the time spent in the store's writes.
///
/// # Panics
/// If the store refuses a write.
pub async fn write(store: &dyn Store, mut history: History, clicks: u64, events: u64) -> Duration {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Rows>(2);
    let generator = tokio::task::spawn_blocking(move || {
        let (mut c, mut e) = (0u64, 0u64);
        while c < clicks || e < events {
            let mut rows = Rows::default();
            if e >= events || (c < clicks && c as f64 / clicks as f64 <= e as f64 / events as f64) {
                let n = CLICKS_PER_WRITE.min(clicks - c);
                rows.clicks = (c..c + n).map(|i| history.click(i)).collect();
                c += n;
            } else {
                let n = EVENTS_PER_WRITE.min(events - e);
                rows.events = (e..e + n).map(|i| history.event(i)).collect();
                e += n;
            }
            if tx.blocking_send(rows).is_err() {
                return;
            }
        }
    });
    let mut writing = Duration::ZERO;
    while let Some(rows) = rx.recv().await {
        let w = Instant::now();
        store
            .write(&rows, &[])
            .await
            .expect("the store takes the history");
        writing += w.elapsed();
    }
    generator.await.expect("the generator");
    writing
}
