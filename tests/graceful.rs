//! Ctrl-C right after traffic loses nothing, not even clicks still in the flush interval; and
//! the OpenAPI document describes every route the process serves.

mod common;

use common::{Server, click_id};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn ctrl_c_flushes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path()).await;
    let shop = s.shop("G", "https://g.example/", &["I"]).await;
    let (key, code) = (shop.key, shop.codes[0].clone());

    let mut ids = Vec::new();
    for n in 0..40 {
        let t = click_id(
            &s.click(&format!("/r/{code}"), &format!("Mozilla/5.0 Graceful/{n}"))
                .await,
        );
        let r = s.post_events(&key, &json!({"event_id": format!("g{n}"), "action": "purchase", "order_id": format!("g{n}"), "value": 1, "click_id": t})).await;
        assert_eq!(r.status(), StatusCode::OK);
        ids.push(t);
    }
    // Stop at once: the last clicks are still waiting for their flush.
    s.stop();

    let s = Server::start(dir.path()).await;
    s.drain().await;
    let o = s.admin_get("/api/v1/stats/overview?period=all").await;
    assert_eq!(
        (
            o["clicks"].clone(),
            o["unique_clicks"].clone(),
            o["purchases"].clone(),
            o["attributed_purchases"].clone()
        ),
        (json!(40), json!(40), json!(40), json!(40)),
        "{o}"
    );
    let csv = s.admin_text("/api/v1/export/clicks.csv").await;
    for t in ids {
        assert!(csv.contains(&t), "click {t} lost on a graceful stop");
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let doc: Value = s
        .http
        .get(s.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/r/{code}", "get"),
        ("/r/{code}/{sub_id}", "get"),
        ("/api/v1/events", "post"),
        ("/event/{action}", "post"),
        ("/api/v1/admin/advertisers", "post"),
        ("/api/v1/admin/advertisers", "get"),
        ("/api/v1/admin/advertisers/{id}", "patch"),
        ("/api/v1/admin/advertisers/{id}/api-keys", "post"),
        ("/api/v1/admin/api-keys/{id}/rotate", "post"),
        ("/api/v1/admin/api-keys/{id}", "delete"),
        ("/api/v1/admin/advertisers/{id}/campaigns", "post"),
        ("/api/v1/admin/campaigns/{id}", "patch"),
        ("/api/v1/admin/campaigns/{id}/influencers", "post"),
        ("/api/v1/admin/influencers", "post"),
        ("/api/v1/admin/links", "post"),
        ("/api/v1/admin/links/{id}/regenerate", "post"),
        ("/api/v1/admin/links/{id}/deactivate", "post"),
        ("/api/v1/admin/campaigns/{id}/coupons", "post"),
        ("/api/v1/admin/coupons/{id}/invalidate", "post"),
        ("/api/v1/admin/coupons/{id}/regenerate", "post"),
        ("/api/v1/admin/dead-letter", "get"),
        ("/api/v1/admin/pipeline", "get"),
        ("/api/v1/stats/overview", "get"),
        ("/api/v1/stats/chart", "get"),
        ("/api/v1/stats/per-influencer", "get"),
        ("/api/v1/stats/per-campaign", "get"),
        ("/api/v1/stats/per-link", "get"),
        ("/api/v1/stats/per-sub-id", "get"),
        ("/api/v1/stats/funnel", "get"),
        ("/api/v1/export/events.csv", "get"),
        ("/api/v1/export/clicks.csv", "get"),
        ("/api/v1/attribution/{event_id}", "get"),
        ("/api/v1/sql", "post"),
        ("/ref/{code}", "get"),
        ("/ref/{code}/{sub_id}", "get"),
        ("/api/v1/admin/campaigns/{id}/commission-plan", "put"),
        ("/api/v1/admin/campaigns/{id}/commission-plan", "get"),
        ("/api/v1/admin/campaigns/{id}/commission-plan", "delete"),
        (
            "/api/v1/admin/campaigns/{id}/commission-plan/influencers/{influencer_id}",
            "put",
        ),
        ("/api/v1/admin/influencers/{id}/payouts", "post"),
        (
            "/api/v1/admin/influencers/{id}/payouts/{payout_id}/paid",
            "post",
        ),
        (
            "/api/v1/admin/influencers/{id}/payouts/{payout_id}/cancel",
            "post",
        ),
        (
            "/api/v1/admin/influencers/{id}/commissions/{commission_id}/review",
            "post",
        ),
        ("/api/v1/me/payout-requests", "post"),
        ("/api/v1/affiliate/validate", "get"),
        ("/api/v1/ledger/balances", "get"),
        ("/api/v1/ledger/entries", "get"),
        ("/api/v1/ledger/payouts", "get"),
        ("/api/v1/ledger/payouts.csv", "get"),
        ("/api/v1/ledger/reviews", "get"),
        ("/api/v1/me/affiliate", "get"),
        ("/api/v1/me/conversions", "get"),
        ("/api/v1/me/payouts", "get"),
        ("/api/v1/admin/offers", "post"),
        ("/api/v1/admin/offers", "get"),
        ("/api/v1/admin/offers/{id}", "get"),
        ("/api/v1/admin/offers/{id}", "patch"),
        ("/api/v1/admin/offers/{id}/variations", "post"),
        ("/api/v1/admin/variations/{id}", "patch"),
        ("/api/v1/promo/impressions", "post"),
        ("/api/v1/promo/select", "get"),
        ("/api/v1/promo/analytics", "get"),
        ("/t.js", "get"),
        ("/api/v1/browser/events", "post"),
        ("/api/v1/admin/advertisers/{id}/publishable-keys", "post"),
        ("/api/v1/admin/publishable-keys/{key}", "patch"),
        ("/api/v1/admin/advertisers/{id}/webhooks", "post"),
        ("/api/v1/admin/webhooks/{id}", "patch"),
        ("/api/v1/admin/advertisers/{id}/postbacks", "post"),
        ("/api/v1/admin/postbacks/{id}", "patch"),
        ("/api/v1/deliveries", "get"),
        ("/api/v1/deliveries/{delivery_id}/replay", "post"),
        ("/health/live", "get"),
        ("/health/ready", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    // Metrics are exposed with bounded labels (route templates, not raw paths).
    s.click("/r/some-unknown-code", "Mozilla/5.0").await;
    let metrics = common::metrics(&s.http, &s.base).await;
    assert!(
        metrics.contains("clicktrail_http_requests_total{route=\"/r/{*rest}\",status=\"404\"}"),
        "{metrics}"
    );
    assert!(!metrics.contains("some-unknown-code"));
}
