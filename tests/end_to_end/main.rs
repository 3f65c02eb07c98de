//! The whole pipeline through the HTTP API only: catalog, redirects, every attribution rule,
//! dedup, then every stats endpoint and export checked against exact figures.

#[path = "../common/mod.rs"]
mod common;
mod world;

use world::*;

use common::{Server, click_id, param};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use std::time::Duration;

async fn event(s: &Server, key: &str, body: Value) -> Value {
    let r = s.post_events(key, &body).await;
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body} → {v}");
    v
}

async fn stats(s: &Server, path: &str) -> Value {
    s.admin_get(path).await
}

fn row<'a>(rows: &'a Value, id: &str) -> &'a Value {
    rows["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == json!(id))
        .unwrap_or_else(|| panic!("no row {id} in {rows}"))
}

fn money(v: &Value) -> Vec<(String, i64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["currency"].as_str().unwrap().to_string(),
                r["amount_minor"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_whole_pipeline_adds_up() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    scenario(&s).await;
}

/// The same scenario on one process per role over Kafka and ClickHouse gives every figure of
/// every endpoint exactly as on the embedded default (the assertions are exact values).
#[tokio::test]
async fn the_same_figures_on_kafka_and_clickhouse() {
    let Some(svc) = common::services() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::cluster(dir.path(), &svc, &format!("parity_{}", std::process::id())).await;
    scenario(&s).await;
}

async fn scenario(s: &Server) {
    let w = catalog(s).await;

    // Redirects: V1 twice on L1 (one unique), V2 on L2 with a sub id and a query, V3 on the
    // short-window link, a crawler and a HEAD request, V4 twice with the same cookie but
    // different user agents (one unique, by cookie).
    let r1 = s.click(&format!("/r/{}", w.l1.1), UA1).await;
    let t1 = click_id(&r1);
    let cookie = r1.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.starts_with("ct_vid=") && cookie.contains("Max-Age=86400"),
        "{cookie}"
    );
    s.click(&format!("/r/{}", w.l1.1), UA1).await;
    let r2 = s
        .click(&format!("/r/{}/yt?utm_campaign=spring", w.l2.1), UA2)
        .await;
    let t2 = click_id(&r2);
    let loc = r2.headers()[header::LOCATION].to_str().unwrap();
    assert!(loc.starts_with("https://shop.example/landing?"), "{loc}");
    assert_eq!(param(loc, "src").as_deref(), Some("ig"));
    assert_eq!(param(loc, "utm_campaign").as_deref(), Some("spring"));
    assert_eq!(param(loc, "ref_code").as_deref(), Some(w.l2.1.as_str()));
    let t3 = click_id(&s.click(&format!("/ref/{}", w.l3.1), UA3).await);
    let t3_at = std::time::Instant::now();
    assert_eq!(
        s.click(&format!("/r/{}", w.l1.1), BOT).await.status(),
        StatusCode::FOUND
    );
    let head = s
        .http
        .head(s.url(&format!("/r/{}", w.l1.1)))
        .header(header::USER_AGENT, UA2)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::FOUND);
    for ua in [UA4, "Mozilla/5.0 (Macintosh) Visitor/4b"] {
        let r = s
            .http
            .get(s.url(&format!("/r/{}", w.l1.1)))
            .header(header::USER_AGENT, ua)
            .header(header::COOKIE, "ct_vid=0123456789abcdef0123456789abcdef")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FOUND);
        assert!(
            r.headers().get(header::SET_COOKIE).is_none(),
            "a known visitor keeps their cookie"
        );
    }
    let unknown = s.click("/r/no-such-code", UA1).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(unknown.text().await.unwrap().contains("Link not found"));

    // Events: every waterfall rule, duplicates, conflicts, lazy extraction.
    let forged = format!("{}AA", &t1[..t1.len() - 2]);
    let e1 = json!({"event_id": "e1", "action": "purchase", "order_id": "O1", "value": 100, "click_id": t1, "customer_id": "c1"});
    event(s, &w.key, e1.clone()).await;
    // A later purchase of the same order, sent once the first is stored (two purchases of one
    // order under different event ids sent within a batch interval may count in either order:
    // docs/attribution.md, "Idempotency").
    s.drain().await;
    event(s, &w.key, json!({"event_id": "e2", "action": "purchase", "order_id": "O1", "value": 100, "customer_id": "c1"})).await;
    event(s, &w.key, e1).await; // the same event_id again
    event(s, &w.key, json!({"event_id": "e4", "action": "purchase", "order_id": "O4", "value": "50.00", "coupon_code": "anna10", "click_id": t2, "customer_id": "c4"})).await;
    event(s, &w.key, json!({"event_id": "e5", "action": "purchase", "order_id": "O5", "value": 20, "coupon_code": "WELCOME", "ref_code": w.l2.1})).await;
    event(
        s,
        &w.key,
        json!({"event_id": "e6", "action": "add_to_cart", "customer_id": "c1", "ref_code": w.l2.1}),
    )
    .await;
    let waited = Duration::from_millis(2600).saturating_sub(t3_at.elapsed());
    tokio::time::sleep(waited).await;
    event(
        s,
        &w.key,
        json!({"event_id": "e7", "action": "add_to_cart", "customer_id": "c7", "click_id": t3}),
    )
    .await;
    let batch = json!([
        {"event_id": "e8", "action": "signup", "landing_url": format!("https://shop.example/?ref_code={}", w.l2.1)},
        {"event_id": "e9", "action": "signup", "referrer": format!("https://blog.example/post?click_id={t1}")},
        {"event_id": "e10", "action": "drop_off", "customer_id": "c10"},
    ]);
    let accepted = event(s, &w.key, batch).await;
    assert_eq!(accepted["accepted"], json!(3));
    event(s, &w.key, json!({"event_id": "e11", "action": "purchase", "order_id": "O11", "value": 30, "currency": "EUR", "coupon_code": "BobSave"})).await;
    let r = s
        .http
        .post(s.url("/event/purchase"))
        .header("x-api-key", &w.key)
        .json(&json!({"event_id": "e13", "order_id": "O13", "value": 10, "click_id": forged}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    event(
        s,
        &w.key,
        json!({"event_id": "e12", "action": "custom", "name": "newsletter_optin", "click_id": t2}),
    )
    .await;
    s.drain().await;

    // Overview.
    let o = stats(s, "/api/v1/stats/overview?period=all").await;
    for (k, v) in [
        ("clicks", 6),
        ("unique_clicks", 4),
        ("bot_clicks", 2),
        ("purchases", 5),
        ("attributed_purchases", 4),
        ("add_to_carts", 2),
        ("signups", 2),
        ("drop_offs", 1),
        ("custom_events", 1),
    ] {
        assert_eq!(o[k], json!(v), "overview {k}: {o}");
    }
    assert_eq!(
        money(&o["revenue"]),
        vec![("EUR".into(), 3000), ("USD".into(), 18000)]
    );
    assert_eq!(
        money(&o["attributed_revenue"]),
        vec![("EUR".into(), 3000), ("USD".into(), 17000)]
    );
    assert_eq!(o["conversion_rate"], json!(1.0));
    let o1 = stats(
        s,
        &format!("/api/v1/stats/overview?period=today&influencer_id={}", w.i1),
    )
    .await;
    assert_eq!(
        (o1["clicks"].clone(), o1["purchases"].clone()),
        (json!(5), json!(2)),
        "{o1}"
    );

    // Per influencer.
    let p = stats(s, "/api/v1/stats/per-influencer?period=all").await;
    let a = row(&p, &w.i1);
    assert_eq!(a["name"], json!("Anna"));
    for (k, v) in [
        ("clicks", 5),
        ("unique_clicks", 3),
        ("bot_clicks", 2),
        ("purchases", 2),
        ("add_to_carts", 1),
        ("signups", 1),
        ("custom_events", 0),
    ] {
        assert_eq!(a[k], json!(v), "Anna {k}: {a}");
    }
    assert_eq!(money(&a["revenue"]), vec![("USD".into(), 15000)]);
    assert_eq!(a["conversion_rate"], json!(0.6667));
    let b = row(&p, &w.i2);
    for (k, v) in [
        ("clicks", 1),
        ("unique_clicks", 1),
        ("purchases", 2),
        ("signups", 1),
        ("custom_events", 1),
        ("add_to_carts", 0),
    ] {
        assert_eq!(b[k], json!(v), "Bob {k}: {b}");
    }
    assert_eq!(
        money(&b["revenue"]),
        vec![("EUR".into(), 3000), ("USD".into(), 2000)]
    );
    assert_eq!(p["rows"].as_array().unwrap().len(), 2);

    // Per campaign.
    let p = stats(s, "/api/v1/stats/per-campaign?period=all").await;
    let c1 = row(&p, &w.c1);
    for (k, v) in [
        ("clicks", 5),
        ("unique_clicks", 3),
        ("bot_clicks", 2),
        ("purchases", 4),
        ("add_to_carts", 1),
        ("signups", 2),
        ("custom_events", 1),
    ] {
        assert_eq!(c1[k], json!(v), "C1 {k}: {c1}");
    }
    let c2 = row(&p, &w.c2);
    for (k, v) in [
        ("clicks", 1),
        ("unique_clicks", 1),
        ("purchases", 0),
        ("add_to_carts", 0),
    ] {
        assert_eq!(c2[k], json!(v), "C2 {k}: {c2}");
    }

    // Per link.
    let p = stats(s, "/api/v1/stats/per-link?period=all").await;
    let l1 = row(&p, &w.l1.0);
    assert_eq!(l1["name"], json!(w.l1.1));
    for (k, v) in [
        ("clicks", 4),
        ("unique_clicks", 2),
        ("bot_clicks", 2),
        ("purchases", 1),
        ("add_to_carts", 1),
        ("signups", 1),
    ] {
        assert_eq!(l1[k], json!(v), "L1 {k}: {l1}");
    }
    assert_eq!(money(&l1["revenue"]), vec![("USD".into(), 10000)]);
    let l2 = row(&p, &w.l2.0);
    for (k, v) in [
        ("clicks", 1),
        ("purchases", 1),
        ("signups", 1),
        ("custom_events", 1),
    ] {
        assert_eq!(l2[k], json!(v), "L2 {k}: {l2}");
    }
    let l3 = row(&p, &w.l3.0);
    assert_eq!(
        (l3["clicks"].clone(), l3["purchases"].clone()),
        (json!(1), json!(0))
    );

    // Per sub id: conversions are joined through the credited click.
    let p = stats(s, "/api/v1/stats/per-sub-id?period=all").await;
    assert_eq!(p["rows"].as_array().unwrap().len(), 1, "{p}");
    let yt = row(&p, "yt");
    for (k, v) in [
        ("clicks", 1),
        ("unique_clicks", 1),
        ("purchases", 0),
        ("custom_events", 1),
    ] {
        assert_eq!(yt[k], json!(v), "yt {k}: {yt}");
    }

    // Funnel and chart.
    let f = stats(s, "/api/v1/stats/funnel?period=all").await;
    let counts: Vec<(String, i64)> = f["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap().into(),
                s["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        vec![
            ("landing".into(), 4),
            ("add_to_cart".into(), 2),
            ("purchase".into(), 5)
        ]
    );
    assert_eq!(f["drop_offs"], json!(1));
    assert_eq!(f["signups"], json!(2));
    let ch = stats(s, "/api/v1/stats/chart?period=all&interval=day").await;
    let series = ch["series"].as_array().unwrap();
    let total = |k: &str| series.iter().map(|b| b[k].as_i64().unwrap()).sum::<i64>();
    assert_eq!(
        (
            total("clicks"),
            total("unique_clicks"),
            total("bot_clicks"),
            total("conversions")
        ),
        (6, 4, 2, 5),
        "{ch}"
    );
    let hourly = stats(s, "/api/v1/stats/chart?period=today&interval=hour").await;
    assert!(
        hourly["series"][0]["bucket"]
            .as_str()
            .unwrap()
            .ends_with(":00:00Z")
    );

    // Attribution audits.
    let audit = |id: &'static str| {
        let s = &s;
        async move { stats(s, &format!("/api/v1/attribution/{id}")).await }
    };
    let a = audit("e1").await;
    assert_eq!(
        (
            a["attributed_by"].clone(),
            a["influencer_id"].clone(),
            a["click_id"].clone()
        ),
        (json!("click_id"), json!(w.i1), json!(t1))
    );
    assert_eq!(a["window_secs"], json!(30 * 86400));
    let a = audit("e4").await;
    assert_eq!(
        (a["attributed_by"].clone(), a["influencer_id"].clone()),
        (json!("coupon"), json!(w.i1))
    );
    assert_eq!(a["conflicts"][0]["type"], json!("coupon_vs_click"));
    assert_eq!(a["conflicts"][0]["influencer_id"], json!(w.i2));
    let a = audit("e5").await;
    assert_eq!(
        (a["attributed_by"].clone(), a["influencer_id"].clone()),
        (json!("ref_code"), json!(w.i2))
    );
    assert_eq!(a["candidates"][0]["status"], json!("generic"));
    let a = audit("e6").await;
    assert_eq!(
        (a["attributed_by"].clone(), a["influencer_id"].clone()),
        (json!("first_touch"), json!(w.i1))
    );
    assert_eq!(a["conflicts"][0]["type"], json!("first_touch"));
    assert_eq!(a["conflicts"][0]["influencer_id"], json!(w.i2));
    let a = audit("e7").await;
    assert_eq!(
        (
            a["attributed"].clone(),
            a["reason"].clone(),
            a["window_secs"].clone()
        ),
        (json!(false), json!("expired"), json!(2))
    );
    assert_eq!(audit("e8").await["attributed_by"], json!("landing_url"));
    let a = audit("e9").await;
    assert_eq!(
        (a["attributed_by"].clone(), a["influencer_id"].clone()),
        (json!("referrer"), json!(w.i1))
    );
    assert_eq!(audit("e10").await["reason"], json!("no_touch"));
    assert_eq!(audit("e11").await["attributed_by"], json!("coupon"));
    assert_eq!(audit("e12").await["attributed_by"], json!("click_id"));
    let a = audit("e13").await;
    assert_eq!(
        (a["attributed"].clone(), a["reason"].clone()),
        (json!(false), json!("invalid"))
    );
    let missing = s
        .http
        .get(s.url("/api/v1/attribution/e2"))
        .bearer_auth(common::ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        missing.status(),
        StatusCode::NOT_FOUND,
        "a duplicate order is not stored as an event"
    );

    // The duplicate order is visible to admins in the dead-letter tail.
    let dl = s.admin_get("/api/v1/admin/dead-letter").await;
    let reasons: Vec<&str> = dl
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, vec!["duplicate_order"]);

    // Exports: every stored row, with a header.
    let csv = s
        .http
        .get(s.url("/api/v1/export/events.csv"))
        .bearer_auth(common::ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        csv.headers()[header::CONTENT_TYPE],
        "text/csv; charset=utf-8"
    );
    let csv = csv.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("event_id,advertiser_id,action,"));
    assert_eq!(lines.len(), 1 + 11, "{csv}");
    let clicks = s.admin_text("/api/v1/export/clicks.csv").await;
    assert_eq!(clicks.lines().count(), 1 + 8);
    assert!(clicks.contains("head_request") && clicks.contains("crawler_user_agent"));
    assert!(
        clicks.contains("127.0.0.0/24") && !clicks.contains("127.0.0.1"),
        "only the truncated address is stored"
    );
}
