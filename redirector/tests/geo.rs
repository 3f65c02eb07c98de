//! Country lookup from a MaxMind-format database (the CC BY 4.0 `geo-whois-asn-country` file
//! that `scripts/test` fetches from the npm registry and names in `CLICKTRAIL_TEST_GEO_DB`).
//! Under `CI=true` a missing database fails the test instead of skipping it.

mod common;

use clicktrail_redirector::{Redirector, RedirectorConfig};
use clicktrail_schemas::token::ClickKeys;
use http::{HeaderMap, HeaderValue, Method};
use std::sync::Arc;

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
    let log = common::log(dir.path());
    let r = Redirector::new(
        RedirectorConfig {
            click_keys: ClickKeys::new(1, b"geo-test-key-0123456".to_vec()),
            visitor_salt: "s".into(),
            trusted_proxies: clicktrail_api::client::TrustedProxies::everyone(),
            geo_db: Some(db.into()),
            scanner_networks: clicktrail_api::client::AddressRanges::parse(
                clicktrail_redirector::classify::DEFAULT_SCANNER_NETWORKS,
            )
            .unwrap(),
        },
        common::catalog("https://d.example/", "geo", None),
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
    let clicks = common::clicks(&log).await;
    assert_eq!(clicks[0].country.as_deref(), Some("US"));
    assert_eq!(clicks[0].ip_prefix, "8.8.8.0/24");
}
