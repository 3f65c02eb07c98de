//! Fixtures of the redirector tests: a one-link catalog, a real embedded log, the first click.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use clicktrail_bus::embedded::{EmbeddedLog, LogOptions};
use clicktrail_bus::{CatalogView, ConsumerEvent, ConsumerFactory};
use clicktrail_schemas::catalog::*;
use clicktrail_schemas::wire::ClickRecord;
use clicktrail_schemas::{CatalogChange, Topic};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A catalog of one advertiser `adv`, campaign `cmp` to `destination` (live until `ends_at`)
/// and link `lnk` with `code`.
pub fn catalog(destination: &str, code: &str, ends_at: Option<DateTime<Utc>>) -> Arc<CatalogView> {
    let now = Utc::now();
    let changes = vec![
        CatalogChange::AdvertiserUpserted {
            advertiser: Advertiser {
                id: "adv".into(),
                name: "A".into(),
                status: Status::Active,
                require_signature: false,
                browser_purchases_count: false,
                created_at: now,
            },
        },
        CatalogChange::CampaignUpserted {
            campaign: Campaign {
                id: "cmp".into(),
                advertiser_id: "adv".into(),
                name: "C".into(),
                destination_url: destination.into(),
                starts_at: None,
                ends_at,
                attribution_source: AttributionSource::All,
                attribution_window_secs: 60,
                trailing_expiry_secs: None,
                status: Status::Active,
                created_at: now,
            },
        },
        CatalogChange::LinkCreated {
            link: Link {
                id: "lnk".into(),
                campaign_id: "cmp".into(),
                influencer_id: "inf".into(),
                advertiser_id: "adv".into(),
                code: code.into(),
                active: true,
                created_at: now,
            },
        },
    ];
    let view = CatalogView::new();
    view.apply(
        &changes
            .into_iter()
            .enumerate()
            .map(|(i, c)| (i as u64, Some(c)))
            .collect::<Vec<_>>(),
    );
    view
}

/// A real embedded log in `dir` with a short flush interval.
pub fn log(dir: &Path) -> EmbeddedLog {
    EmbeddedLog::open(
        &dir.join("log.redb"),
        LogOptions {
            linger: Duration::from_millis(5),
            ..LogOptions::default()
        },
    )
    .unwrap()
}

/// Every click record on the log, waiting up to five seconds for the first.
pub async fn clicks(log: &EmbeddedLog) -> Vec<ClickRecord> {
    let mut consumer = log.consumer("test", Topic::Clicks).await.unwrap();
    consumer.poll(1, Duration::ZERO).await.unwrap();
    let ConsumerEvent::Records(records) = consumer.poll(100, Duration::from_secs(5)).await.unwrap()
    else {
        panic!("expected records")
    };
    records
        .iter()
        .map(|m| serde_json::from_slice(&m.payload).unwrap())
        .collect()
}
