//! Country lookup from a MaxMind-format database (the CC BY 4.0 `geo-whois-asn-country` file
//! that `scripts/test` fetches from the npm registry and names in `CLICKTRAIL_TEST_GEO_DB`).
//! Under `CI=true` a missing database fails the test instead of skipping it.

use clicktrail_bus::embedded::{EmbeddedLog, LogOptions};
use clicktrail_bus::{CatalogView, ConsumerEvent, ConsumerFactory};
use clicktrail_redirector::{Redirector, RedirectorConfig};
use clicktrail_schemas::catalog::*;
use clicktrail_schemas::token::ClickKeys;
use clicktrail_schemas::wire::ClickRecord;
use clicktrail_schemas::{CatalogChange, Topic};
use http::{HeaderMap, HeaderValue, Method};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn clicks_carry_the_country_of_the_client_address() {
    let Some(db) = std::env::var_os("CLICKTRAIL_TEST_GEO_DB") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CLICKTRAIL_TEST_GEO_DB is not set; scripts/test fetches the database"
        );
        eprintln!("skipped: CLICKTRAIL_TEST_GEO_DB is not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(
        &dir.path().join("log.redb"),
        LogOptions {
            linger: Duration::from_millis(5),
            ..LogOptions::default()
        },
    )
    .unwrap();
    let now = chrono::Utc::now();
    let view = CatalogView::new();
    view.apply(&[
        (
            0,
            Some(CatalogChange::AdvertiserUpserted {
                advertiser: Advertiser {
                    id: "adv".into(),
                    name: "A".into(),
                    status: Status::Active,
                    require_signature: false,
                    created_at: now,
                },
            }),
        ),
        (
            1,
            Some(CatalogChange::CampaignUpserted {
                campaign: Campaign {
                    id: "cmp".into(),
                    advertiser_id: "adv".into(),
                    name: "C".into(),
                    destination_url: "https://d.example/".into(),
                    starts_at: None,
                    ends_at: None,
                    attribution_source: AttributionSource::All,
                    attribution_window_secs: 60,
                    trailing_expiry_secs: None,
                    status: Status::Active,
                    created_at: now,
                },
            }),
        ),
        (
            2,
            Some(CatalogChange::LinkCreated {
                link: Link {
                    id: "lnk".into(),
                    campaign_id: "cmp".into(),
                    influencer_id: "inf".into(),
                    advertiser_id: "adv".into(),
                    code: "geo".into(),
                    active: true,
                    created_at: now,
                },
            }),
        ),
    ]);
    let r = Redirector::new(
        RedirectorConfig {
            click_keys: ClickKeys::new(1, b"geo-test-key-0123456".to_vec()),
            visitor_salt: "s".into(),
            trust_forwarded_for: true,
            geo_db: Some(db.into()),
        },
        view,
        Arc::new(log.clone()),
    )
    .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("user-agent", HeaderValue::from_static("Mozilla/5.0 Geo"));
    headers.insert("x-forwarded-for", HeaderValue::from_static("8.8.8.8"));
    let resp = r.handle(
        &Method::GET,
        &"/r/geo".parse().unwrap(),
        &headers,
        "127.0.0.1".parse().unwrap(),
    );
    assert_eq!(resp.status(), 302);
    let mut consumer = log.consumer("t", Topic::Clicks).await.unwrap();
    consumer.poll(1, Duration::ZERO).await.unwrap();
    let ConsumerEvent::Records(records) = consumer.poll(10, Duration::from_secs(5)).await.unwrap()
    else {
        panic!()
    };
    let click: ClickRecord = serde_json::from_slice(&records[0].payload).unwrap();
    assert_eq!(click.country.as_deref(), Some("US"));
    assert_eq!(click.ip_prefix, "8.8.8.0/24");
}
