//! The newsletter promo pages in the browser test: the advertiser's `/promos` page against
//! the API, and the admin's offers and variations on `/admin/offers`.

use super::browser::{Browser, api, card, loaded};
use super::common::{ADMIN, Server};
use reqwest::{StatusCode, header};
use serde_json::json;

/// An offer with two variations on one of the advertiser's links, sends and clicks (one by a
/// mail scanner); then `/promos` shows what the API answers the same user.
pub async fn promos_page(b: &Browser, s: &Server, cookie: &str, tz: &str) {
    // Newsletter promos: an offer with two variations on one of the advertiser's links, sends
    // and clicks (one by a mail scanner), then the promos page shows what the API answers.
    let me = api(s, cookie, "/api/v1/me").await;
    let advertiser = me["advertiser_id"].as_str().unwrap().to_string();
    let links = s.admin_get("/api/v1/admin/links?limit=1000").await;
    let link = links["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["advertiser_id"] == advertiser.as_str() && l["active"] == json!(true))
        .unwrap()
        .clone();
    let offer = s
        .create(
            "/api/v1/admin/offers",
            json!({"link_id": link["id"], "name": "Winter letter"}),
        )
        .await;
    let mut variations = Vec::new();
    for headline in ["Warm up with 20 % off", "Your winter kit"] {
        variations.push(
            s.create(
                &format!("/api/v1/admin/offers/{offer}/variations"),
                json!({"headline": headline, "cta": "Shop", "approved": true}),
            )
            .await,
        );
    }
    s.sync_catalog().await;
    let hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    for (i, v) in variations.iter().enumerate() {
        let r = s
            .http
            .post(s.url("/api/v1/promo/impressions"))
            .bearer_auth(ADMIN)
            .json(
                &json!({"offer_id": offer, "variation_id": v, "newsletter_send_id": "winter-1",
                          "recipients": 400 * (i + 1), "sent_at": hour_ago}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        for (visitor, agent) in [
            (1, "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"),
            (2, "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"),
            (3, "Mimecast link scanner"),
        ] {
            let r = s
                .http
                .get(s.url(&format!(
                    "/r/{}?promo_var={v}",
                    link["code"].as_str().unwrap()
                )))
                .header(header::USER_AGENT, agent)
                .header(header::COOKIE, format!("ct_vid={:032x}", visitor + 10 * i))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::FOUND);
        }
    }
    s.drain().await;
    b.c.goto(&s.url("/promos")).await.unwrap();
    loaded(b).await;
    b.check_page("promos").await;
    let p = api(
        s,
        cookie,
        &format!("/api/v1/promo/analytics?period=30d&tz={tz}"),
    )
    .await;
    assert_eq!(p["summary"]["impressions"], json!(1200));
    assert_eq!(p["summary"]["unique_clicks"], json!(4));
    for metric in [
        "impressions",
        "clicks",
        "unique_clicks",
        "ctr",
        "conversions",
    ] {
        assert_eq!(
            card(b, metric).await,
            p["summary"][metric].as_f64().unwrap(),
            "promos: {metric} on the page and in the API"
        );
    }
    assert_eq!(
        card(b, "flagged").await,
        2.0,
        "the scanner's clicks are left out"
    );
    assert_eq!(
        b.js("return document.querySelectorAll('#promo-variations tbody tr').length;")
            .await,
        json!(2)
    );
    let first = b
        .text("#promo-variations tbody tr:first-child td[data-col=headline]")
        .await;
    assert_eq!(
        first, "Warm up with 20 % off",
        "the higher CTR first (2/400 against 2/800)"
    );
    assert!(
        b.js("return document.querySelector('#chart-ctr svg') !== null;")
            .await
            == json!(true),
        "the CTR chart is drawn"
    );
}

/// The admin creates a promo offer on the link `/r/browser-link`, adds a variation and
/// approves it through `/admin/offers`.
pub async fn admin_offers(b: &Browser, s: &Server) {
    // A promo offer on the new link, a variation, approved through the page.
    b.c.goto(&s.url("/admin/offers")).await.unwrap();
    b.until(
        "offers",
        "return document.querySelector('#list table, #list p') !== null;",
    )
    .await;
    let link_label = "/r/browser-link (Browser Campaign, Browser Influencer)";
    b.until("pickers", &format!("return Array.from(document.querySelectorAll('#f-link option')).some((o) => o.textContent === '{link_label}');")).await;
    b.select("#f-link", link_label).await;
    b.fill("#f-name", "Browser offer").await;
    b.click("#create-form button[type=submit]").await;
    b.until(
        "the new offer",
        "return document.querySelector('#list').textContent.includes('Browser offer');",
    )
    .await;
    b.until("the offer picker", "return Array.from(document.querySelectorAll('#v-offer option')).some((o) => o.textContent === 'Browser offer');").await;
    b.select("#v-offer", "Browser offer").await;
    b.fill("#v-headline", "Browser headline").await;
    b.fill("#v-cta", "Go").await;
    b.click("#variation-form button[type=submit]").await;
    b.until(
        "the new variation",
        "return document.querySelector('#variations').textContent.includes('Browser headline');",
    )
    .await;
    b.js("Array.from(document.querySelectorAll('#variations tbody tr')).find((r) => r.textContent.includes('Browser headline')).querySelectorAll('button').forEach((x) => { if (x.textContent === 'Approve') x.click(); });").await;
    b.until("the approval", "return Array.from(document.querySelectorAll('#variations tbody tr')).some((r) => r.textContent.includes('Browser headline') && r.textContent.includes('Withdraw'));").await;
    b.check_page("admin-offers").await;
    let offers = s.admin_get("/api/v1/admin/offers?limit=1000").await;
    let made = offers["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == json!("Browser offer"))
        .unwrap()
        .clone();
    let made = s
        .admin_get(&format!(
            "/api/v1/admin/offers/{}",
            made["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(made["variations"][0]["headline"], json!("Browser headline"));
    assert_eq!(made["variations"][0]["approved"], json!(true), "{made}");
}
