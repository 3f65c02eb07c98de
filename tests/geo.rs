//! The country breakdown: clicks located with the open country database that `scripts/geo-db`
//! fetches (`scripts/test` puts it in `CLICKTRAIL_TEST_GEO_DB`), and conversions credited
//! through those clicks.

mod common;

use common::{Server, click_id};
use reqwest::header;
use serde_json::{Value, json};

#[tokio::test]
async fn stats_break_clicks_and_conversions_down_by_country() {
    let Some(db) = std::env::var_os("CLICKTRAIL_TEST_GEO_DB") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CLICKTRAIL_TEST_GEO_DB is not set; scripts/test fetches the database"
        );
        eprintln!("skipped: no geo database");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = db.to_string_lossy().to_string();
    // The test client stands for shoppers behind a proxy on loopback.
    let s = Server::start_with(
        dir.path(),
        &["--geo-db", &db, "--trusted-proxies", "127.0.0.1/32"],
    )
    .await;
    let shop = s.shop("Geo", "https://geo.example/", &["G creator"]).await;
    s.sync_catalog().await;
    let mut clicks = Vec::new();
    // Google's resolver is in the US, Cloudflare's 1.1.1.0/24 in AU per the WHOIS data.
    for (i, ip) in ["8.8.8.8", "8.8.4.4", "1.1.1.1"].iter().enumerate() {
        let r = s
            .http
            .get(s.url(&format!("/r/{}", shop.codes[0])))
            .header(
                header::USER_AGENT,
                format!("Mozilla/5.0 (X11; Linux x86_64) Geo/{i}"),
            )
            .header("x-forwarded-for", *ip)
            .send()
            .await
            .unwrap();
        clicks.push(click_id(&r));
    }
    let r = s
        .post_events(
            &shop.key,
            &json!({"action": "purchase", "order_id": "g-1", "value": "10.00", "click_id": clicks[0]}),
        )
        .await;
    assert!(r.status().is_success());
    s.drain().await;
    let b: Value = s
        .get_with_key("/api/v1/stats/per-country?period=all&wait=10", &shop.key)
        .await
        .json()
        .await
        .unwrap();
    let rows = b["rows"].as_array().unwrap();
    let row = |c: &str| {
        rows.iter()
            .find(|r| r["id"] == c)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(row("US")["clicks"], 2, "{b}");
    assert_eq!(row("US")["purchases"], 1, "{b}");
    assert_eq!(row("AU")["clicks"], 1, "{b}");
    assert_eq!(row("AU")["purchases"], 0, "{b}");
}
