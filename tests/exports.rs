//! CSV exports: a header row even without rows, and no cell a spreadsheet would execute,
//! whatever text shoppers and advertisers sent.

mod common;

use common::Server;
use reqwest::{StatusCode, header};
use serde_json::json;

async fn csv(s: &Server, key: &str, table: &str) -> String {
    let r = s
        .get_with_key(&format!("/api/v1/export/{table}.csv"), key)
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{table}");
    r.text().await.unwrap()
}

#[tokio::test]
async fn an_empty_export_is_its_header_row() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let shop = s.shop("Empty", "https://e.example/", &["E creator"]).await;
    let events = csv(&s, &shop.key, "events").await;
    assert_eq!(events.lines().count(), 1, "{events}");
    assert!(
        events.starts_with("event_id,advertiser_id,action,"),
        "{events}"
    );
    let clicks = csv(&s, &shop.key, "clicks").await;
    assert_eq!(clicks.lines().count(), 1, "{clicks}");
    assert!(
        clicks.starts_with("click_id,at,link_id,code,sub_id,"),
        "{clicks}"
    );
}

#[tokio::test]
async fn cells_a_spreadsheet_would_execute_are_neutralised() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let shop = s.shop("Inject", "https://i.example/", &["I creator"]).await;
    s.sync_catalog().await;
    // A shopper's sub id, user agent and referrer.
    let r = s
        .http
        .get(s.url(&format!(
            "/r/{}/%3DHYPERLINK(%22http%3A%2F%2Fevil.example%22%2C%22x%22)",
            shop.codes[0]
        )))
        .header(header::USER_AGENT, "=1+1")
        .header(header::REFERER, "@SUM(1+1)")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    // An advertiser's order id, customer id, custom name and properties.
    let r = s
        .post_events(
            &shop.key,
            &json!({"action": "purchase", "value": 5, "order_id": "=1+2", "customer_id": "+cmd",
                    "landing_url": "-2+3", "properties": {"note": "=x"}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = s
        .post_events(&shop.key, &json!({"action": "custom", "name": "@calc"}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    s.drain().await;

    let clicks = csv(&s, &shop.key, "clicks").await;
    let events = csv(&s, &shop.key, "events").await;
    for (text, table) in [(&clicks, "clicks"), (&events, "events")] {
        for line in text.lines().skip(1) {
            for cell in line.split(',') {
                let cell = cell.trim_start_matches('"');
                assert!(
                    !cell.starts_with(['=', '+', '@', '\t', '\r']),
                    "{table}: a live cell `{cell}` in {line}"
                );
            }
        }
    }
    for neutral in ["'=HYPERLINK(", "'=1+1", "'@SUM(1+1)"] {
        assert!(
            clicks.contains(neutral),
            "clicks.csv: {neutral} in {clicks}"
        );
    }
    for neutral in ["'=1+2", "'+cmd", "'-2+3", "'@calc"] {
        assert!(
            events.contains(neutral),
            "events.csv: {neutral} in {events}"
        );
    }
}
