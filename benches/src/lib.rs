//! Fixtures shared by clicktrail's criterion benches: a small catalog and sample records.
//! The benches themselves are in `benches/`; run them with `cargo bench -p clicktrail-benches`.

pub mod history;

use chrono::Utc;
use clicktrail_schemas::catalog::*;
use clicktrail_schemas::token::ClickKeys;
use clicktrail_schemas::{Catalog, CatalogChange};

/// Click keys used by every bench.
pub fn keys() -> ClickKeys {
    ClickKeys::new(1, b"bench-click-key-0123456789".to_vec())
}

/// The catalog changes of one advertiser with two influencers, links `bench-a` / `bench-b`
/// and coupon `ANNA10`.
pub fn catalog_changes() -> Vec<CatalogChange> {
    let now = Utc::now();
    let link = |id: &str, inf: &str, code: &str| Link {
        id: id.into(),
        campaign_id: "cmp_bench".into(),
        influencer_id: inf.into(),
        advertiser_id: "adv_bench".into(),
        code: code.into(),
        active: true,
        created_at: now,
    };
    vec![
        CatalogChange::AdvertiserUpserted {
            advertiser: Advertiser {
                id: "adv_bench".into(),
                name: "Bench".into(),
                status: Status::Active,
                require_signature: true,
                browser_purchases_count: false,
                created_at: now,
            },
        },
        CatalogChange::CampaignUpserted {
            campaign: Campaign {
                id: "cmp_bench".into(),
                advertiser_id: "adv_bench".into(),
                name: "Bench".into(),
                destination_url: "https://shop.example/landing?src=bench".into(),
                starts_at: None,
                ends_at: None,
                attribution_source: AttributionSource::All,
                attribution_window_secs: DEFAULT_WINDOW_SECS,
                trailing_expiry_secs: None,
                status: Status::Active,
                created_at: now,
            },
        },
        CatalogChange::LinkCreated {
            link: link("lnk_a", "inf_a", "bench-a"),
        },
        CatalogChange::LinkCreated {
            link: link("lnk_b", "inf_b", "bench-b"),
        },
        CatalogChange::CouponsCreated {
            coupons: vec![Coupon {
                id: "cpn_a".into(),
                advertiser_id: "adv_bench".into(),
                campaign_id: "cmp_bench".into(),
                influencer_id: Some("inf_a".into()),
                code: "ANNA10".into(),
                active: true,
                created_at: now,
            }],
        },
    ]
}

/// The bench catalog.
pub fn catalog() -> Catalog {
    let mut c = Catalog::default();
    for ch in catalog_changes() {
        c.apply(&ch).expect("bench catalog applies");
    }
    c
}

/// One partition's events state filled with event ids for the memory figures: id `i` is
/// `evt-{i:012}` of advertiser `adv_bench`, received `i / per_hour` hours after a fixed start,
/// where `per_hour` spreads the fill over 167 hours so that none of the first `n` ids has left
/// the 7-day event id window when the last arrives. Used by the `event_ids` bench and the load
/// harness.
pub struct EventIdFill {
    /// The events state, as one partition of the events step holds it.
    pub state: clicktrail_processor::events::IdStep,
    per_hour: u64,
    id: String,
}

/// Milliseconds in an hour.
const HOUR_MS: i64 = 3_600_000;

impl EventIdFill {
    /// An empty state with the default windows, sized for `n` ids per 167 hours.
    pub fn new(n: u64) -> Self {
        EventIdFill {
            state: clicktrail_processor::events::IdStep::new(
                clicktrail_processor::events::IdWindows::default().event_id,
            ),
            per_hour: n.div_ceil(167).max(1),
            id: String::new(),
        }
    }

    /// Checks id `i` as the events step does (`true`: new), taking the checkpoint changes once
    /// per 5,000 ids as the pipeline does once per batch.
    pub fn check(&mut self, i: u64) -> bool {
        use clicktrail_processor::pipeline::PartitionState as _;
        use std::fmt::Write as _;
        if i.is_multiple_of(5_000) {
            drop(self.state.take_changes());
        }
        self.id.clear();
        write!(self.id, "evt-{i:012}").expect("writing to a String");
        let at = 1_700_000_000_000_i64 + (i / self.per_hour) as i64 * HOUR_MS;
        self.state.check_event_id("adv_bench", &self.id, at)
    }

    /// Fills a new state with ids `0..n`; returns it with the fill time and the growth of the
    /// process's resident memory meanwhile (bytes; `None` where `/proc` is missing).
    ///
    /// # Panics
    /// If an id is reported as a duplicate.
    pub fn filled(n: u64) -> (Self, std::time::Duration, Option<u64>) {
        let mut fill = EventIdFill::new(n);
        let before = rss_bytes();
        let started = std::time::Instant::now();
        for i in 0..n {
            assert!(fill.check(i), "id {i} is new");
        }
        let took = started.elapsed();
        let growth = rss_bytes()
            .zip(before)
            .map(|(after, before)| after.saturating_sub(before));
        (fill, took, growth)
    }
}

/// The body of a GET of `url` with `token` as bearer, which must answer 2xx; its length in
/// bytes. Used to time dashboard answers.
///
/// # Panics
/// If the server does not answer, or answers anything but 2xx (with the answer's text).
pub async fn get_ok(client: &reqwest::Client, url: reqwest::Url, token: &str) -> usize {
    let r = client
        .get(url.clone())
        .bearer_auth(token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = r.status();
    let body = r.bytes().await.expect("an answer");
    assert!(
        status.is_success(),
        "{url}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    body.len()
}

/// A streamed CSV answer read to its end (see [`stream_csv`]).
#[derive(Debug)]
pub struct Streamed {
    /// Lines after the header.
    pub rows: u64,
    /// Bytes of the body received.
    pub bytes: u64,
    /// From the request sent until the first bytes of the body arrived (the head alone may
    /// come before any row is read).
    pub first_byte: std::time::Duration,
    /// From the request sent until the body ended (or was cut).
    pub took: std::time::Duration,
    /// Why the body ended before the server finished it (the stream was cut mid-answer), if
    /// it did.
    pub cut: Option<String>,
}

/// GETs `url` with `token` as bearer and reads its CSV body chunk by chunk, as it streams,
/// counting lines and bytes without keeping them. Used to time exports.
///
/// # Errors
/// If the server does not answer, or answers anything but 2xx: the URL and the status with the
/// answer's text. A body cut after a 2xx head is not an error: it is reported in
/// [`Streamed::cut`] with the rows received until then.
pub async fn stream_csv(
    client: &reqwest::Client,
    url: reqwest::Url,
    token: &str,
) -> Result<Streamed, String> {
    let started = std::time::Instant::now();
    let mut r = client
        .get(url.clone())
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = r.status();
    if !status.is_success() {
        let text = r.text().await.unwrap_or_default();
        return Err(format!("{url}: {status} {text}"));
    }
    let (mut lines, mut bytes, mut cut, mut first_byte) = (0u64, 0u64, None, None);
    loop {
        match r.chunk().await {
            Ok(Some(chunk)) => {
                first_byte.get_or_insert_with(|| started.elapsed());
                lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
                bytes += chunk.len() as u64;
            }
            Ok(None) => break,
            Err(e) => {
                cut = Some(format!("{e:?}"));
                break;
            }
        }
    }
    Ok(Streamed {
        rows: lines.saturating_sub(1),
        bytes,
        first_byte: first_byte.unwrap_or_else(|| started.elapsed()),
        took: started.elapsed(),
        cut,
    })
}

/// The process's resident memory in bytes, from `/proc/self/status` (Linux); `None` elsewhere.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
