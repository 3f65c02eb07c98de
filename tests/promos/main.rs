//! Newsletter promos over HTTP, on the embedded default and on Kafka + ClickHouse: offers and
//! variations, selection, impressions (the same send twice), clicks through the redirect from
//! people, a mail scanner, a HEAD request and a prefetch on delivery, a purchase through one
//! click; then the analytics equal figures worked out by hand and statistics computed
//! independently (mpmath at 30 digits), rounded to six decimals as the API answers them.

#[path = "../common/mod.rs"]
mod common;
mod refused;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashSet;

/// A browser's user agent.
pub const BROWSER: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";

/// Records impressions with `key`; answers the status and body.
pub async fn impressions(s: &Server, key: &str, body: Value) -> (StatusCode, String) {
    s.sync_catalog().await;
    let r = s
        .http
        .post(s.url("/api/v1/promo/impressions"))
        .header("x-api-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

/// A click through `code` with `promo_var`, as visitor `visitor` (the 32-hex `ct_vid` cookie
/// the redirector keys visitors by), with `method` and `user_agent`.
async fn promo_click(
    s: &Server,
    method: Method,
    code: &str,
    var: &str,
    visitor: u32,
    user_agent: &str,
) -> reqwest::Response {
    s.sync_catalog().await;
    let r = s
        .http
        .request(method, s.url(&format!("/r/{code}?promo_var={var}")))
        .header("user-agent", user_agent)
        .header("cookie", format!("ct_vid={visitor:032x}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    r
}

/// The offers A (variations A1, A2 approved, A3 not) and B (B1) of one shop, on two links.
pub struct Promos {
    /// The shop (two links: `letter` carries offer A, `other` offer B).
    pub shop: Shop,
    /// Offer A.
    pub a: String,
    /// A's first approved variation.
    pub a1: String,
    /// A's second approved variation.
    pub a2: String,
    /// A's variation not approved.
    pub a3: String,
    /// Offer B.
    pub b: String,
    /// B's variation.
    pub b1: String,
}

/// Creates the shop, its offers and their variations.
pub async fn promos(s: &Server, name: &str) -> Promos {
    let shop = s
        .shop(name, "https://shop.example/deal", &["letter", "other"])
        .await;
    let links = s
        .admin_get(&format!(
            "/api/v1/admin/links?campaign_id={}",
            shop.campaign
        ))
        .await;
    let link = |code: &str| {
        links["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["code"] == code)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let offer = |link: String, name: &str, weight: u32| json!({"link_id": link, "name": name, "weight": weight});
    let a = s
        .create(
            "/api/v1/admin/offers",
            offer(link(&shop.codes[0]), "Spring sale", 1),
        )
        .await;
    let b = s
        .create(
            "/api/v1/admin/offers",
            offer(link(&shop.codes[1]), "Gift cards", 3),
        )
        .await;
    let variation = |offer: &str, headline: &str, approved: bool| {
        (
            format!("/api/v1/admin/offers/{offer}/variations"),
            json!({"headline": headline, "body": "Up to 40 % off.", "cta": "Shop now",
                   "tone": "playful", "approved": approved}),
        )
    };
    let mut ids = Vec::new();
    for (offer, headline, approved) in [
        (&a, "Spring is here", true),
        (&a, "Last days of spring", true),
        (&a, "Draft", false),
        (&b, "Give a gift", true),
    ] {
        let (path, body) = variation(offer, headline, approved);
        ids.push(s.create(&path, body).await);
    }
    s.sync_catalog().await;
    Promos {
        shop,
        a,
        b,
        a1: ids[0].clone(),
        a2: ids[1].clone(),
        a3: ids[2].clone(),
        b1: ids[3].clone(),
    }
}

fn close(v: &Value, expected: f64) {
    let got = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert!((got - expected).abs() <= 1.5e-6, "{got} vs {expected}");
}

#[tokio::test]
async fn promos_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    end_to_end(&Server::start(dir.path()).await).await;
}

/// The same over the roles on Kafka and ClickHouse.
#[tokio::test]
async fn promos_end_to_end_on_kafka_and_clickhouse() {
    let Some(svc) = common::services() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("promos_{}", std::process::id());
    end_to_end(&Server::cluster(dir.path(), &svc, &db).await).await;
}

async fn end_to_end(s: &Server) {
    let p = promos(s, "Letter shop").await;
    let key = &p.shop.key;

    // The admin API: an offer with its variations, a changed weight.
    let a = s.admin_get(&format!("/api/v1/admin/offers/{}", p.a)).await;
    assert_eq!(a["variations"].as_array().unwrap().len(), 3);
    let r = s
        .http
        .patch(s.url(&format!("/api/v1/admin/offers/{}", p.b)))
        .bearer_auth(ADMIN)
        .json(&json!({"weight": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    s.sync_catalog().await;

    // Selection: reproducible by seed, approved variations of active offers only, the link
    // carries the variation.
    let select = |q: String| {
        let (s, key) = (&s, key.clone());
        async move {
            let r = s
                .get_with_key(&format!("/api/v1/promo/select?{q}"), &key)
                .await;
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()
        }
    };
    let first = select("seed=7".into()).await;
    assert_eq!(first, select("seed=7".into()).await);
    let mut seen = HashSet::new();
    for seed in 0..40 {
        for strategy in ["weighted", "adaptive"] {
            let v = select(format!("offer_id={}&strategy={strategy}&seed={seed}", p.a)).await;
            let var = v["variation_id"].as_str().unwrap().to_string();
            assert!(var == p.a1 || var == p.a2, "{v}");
            assert!(
                v["tracking_url"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("/r/{}?promo_var={var}", p.shop.codes[0])),
                "{v}"
            );
            seen.insert(var);
        }
    }
    assert_eq!(seen.len(), 2, "both approved variations are drawn");

    // Impressions: A1 1,000 (recorded twice: counts once), A2 1,000 + 500, all an hour ago.
    let hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    for (var, send, n) in [
        (&p.a1, "issue-1", 1000),
        (&p.a1, "issue-1", 1000),
        (&p.a2, "issue-1", 1000),
        (&p.a2, "issue-2", 500),
    ] {
        let (status, body) = impressions(
            s,
            key,
            json!({"offer_id": p.a, "variation_id": var, "newsletter_send_id": send,
                   "recipients": n, "sent_at": hour_ago}),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }

    // People: A1 by visitors 1, 2, 3 (1 twice), A2 by 4 and 5.
    let mut purchase_click = String::new();
    for (var, visitor) in [
        (&p.a1, 1),
        (&p.a1, 1),
        (&p.a1, 2),
        (&p.a1, 3),
        (&p.a2, 4),
        (&p.a2, 5),
    ] {
        let r = promo_click(s, Method::GET, &p.shop.codes[0], var, visitor, BROWSER).await;
        if visitor == 2 {
            purchase_click = click_id(&r);
        }
    }
    // Not people: a mail gateway's user agent, a HEAD request.
    let scanner = "Mozilla/5.0 (compatible; Barracuda Sentinel (EE))";
    promo_click(s, Method::GET, &p.shop.codes[0], &p.a1, 7, scanner).await;
    promo_click(s, Method::HEAD, &p.shop.codes[0], &p.a2, 8, BROWSER).await;
    // Not promo clicks: an unapproved variation, an unknown one, another offer's on this link.
    for var in [&p.a3, &"var_unknown".to_string(), &p.b1] {
        promo_click(s, Method::GET, &p.shop.codes[0], var, 9, BROWSER).await;
    }
    // A send delivered now (200 recipients of A1) and a click on it at once: a prefetch.
    let (status, body) = impressions(
        s,
        key,
        json!({"offer_id": p.a, "variation_id": p.a1, "newsletter_send_id": "issue-3",
               "recipients": 200}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    promo_click(s, Method::GET, &p.shop.codes[0], &p.a1, 6, BROWSER).await;

    // A purchase through visitor 2's click: 49.99 EUR.
    let r = s
        .post_events(
            key,
            &json!({"action": "purchase", "value": "49.99", "currency": "EUR",
                    "order_id": "o-1", "click_id": purchase_click}),
        )
        .await;
    assert!(r.status().is_success());
    refused::bad_impressions_store_nothing(s, &p).await;
    s.drain().await;

    let r = s
        .get_with_key(
            &format!(
                "/api/v1/promo/analytics?offer_id={}&period=all&include_timeline=true",
                p.a
            ),
            key,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();

    // A1: sends issue-1 (1,000) and issue-3 (200); 4 clicks, 3 visitors; a scanner and a
    // prefetch flagged; the purchase. A2: 1,500 recipients, 2 clicks of 2 visitors, a HEAD.
    let vars = v["variations"].as_array().unwrap();
    let ids: Vec<&str> = vars
        .iter()
        .map(|x| x["variation_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [p.a1.as_str(), p.a2.as_str(), p.a3.as_str()],
        "highest CTR first"
    );
    let (a1, a2, a3) = (&vars[0], &vars[1], &vars[2]);
    assert_eq!(
        (
            a1["sends"].clone(),
            a1["impressions"].clone(),
            a1["clicks"].clone(),
            a1["unique_clicks"].clone()
        ),
        (json!(2), json!(1200), json!(4), json!(3))
    );
    assert_eq!(
        a1["flagged_clicks"],
        json!({"mail_scanner_user_agent": 1, "prefetch_after_send": 1})
    );
    assert_eq!(a1["conversions"], json!(1));
    assert_eq!(a1["revenue"], json!({"EUR": 4999}));
    close(&a1["ctr"], 0.0025);
    close(&a1["ctr_low"], 0.000_850_581_899_388_771);
    close(&a1["ctr_high"], 0.007_324_463_700_332_479);
    close(&a1["conversion_rate"], 0.333_333);
    close(&a1["probability_best"], 0.754_014_046_507_252_7);
    assert_eq!(a1["vs_leader"], Value::Null);

    assert_eq!(
        (
            a2["sends"].clone(),
            a2["impressions"].clone(),
            a2["clicks"].clone(),
            a2["unique_clicks"].clone()
        ),
        (json!(2), json!(1500), json!(2), json!(2))
    );
    assert_eq!(a2["flagged_clicks"], json!({"head_request": 1}));
    assert_eq!(a2["conversions"], json!(0));
    close(&a2["ctr"], 0.001_333);
    close(&a2["ctr_low"], 0.000_365_724_275_584_126);
    close(&a2["ctr_high"], 0.004_848_561_296_010_212);
    close(&a2["probability_best"], 0.245_985_953_492_747_3);
    let vs = &a2["vs_leader"];
    assert_eq!(vs["leader_id"], json!(p.a1));
    close(&vs["z"], -0.700_649_049_745_370_7);
    close(&vs["p_value"], 0.483_522_059_868_048_9);
    assert_eq!(vs["significant"], json!(false));
    // Fleiss: 22,061.46… recipients each; A1 has 1,200 of them.
    assert_eq!(vs["recipients_needed"], json!(22062));
    assert_eq!(vs["more_recipients_needed"], json!(22062 - 1200));

    assert_eq!(
        (a3["impressions"].clone(), a3["approved"].clone()),
        (json!(0), json!(false))
    );
    assert_eq!(a3["probability_best"], Value::Null);

    let sum = &v["summary"];
    assert_eq!(
        (
            sum["sends"].clone(),
            sum["impressions"].clone(),
            sum["clicks"].clone(),
            sum["unique_clicks"].clone()
        ),
        (json!(4), json!(2700), json!(6), json!(5))
    );
    close(&sum["ctr"], 0.001_852);
    close(&sum["ctr_low"], 0.000_791_251_749_882_329_5);
    close(&sum["ctr_high"], 0.004_327_931_098_483_051);
    let offers = v["offers"].as_array().unwrap();
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0]["best_variation_id"], json!(p.a1));
    assert_eq!(offers[0]["name"], json!("Spring sale"));
    // One day: every send and click is today's or the last hour's.
    let days: u64 = v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["impressions"].as_u64().unwrap())
        .sum();
    assert_eq!(days, 2700);
    // Aggregate only: no visitor key, click id or order id.
    let text = v.to_string();
    assert!(
        !text.contains(&purchase_click)
            && !text.contains("o-1")
            && !text.contains(&format!("{:032x}", 2))
    );

    // Another advertiser sees none of it; an influencer may not ask.
    let other = s.shop("Other shop", "https://other.example/", &["x"]).await;
    s.sync_catalog().await;
    let r = s
        .get_with_key(
            &format!("/api/v1/promo/analytics?offer_id={}&period=all", p.a),
            &other.key,
        )
        .await;
    let o: Value = r.json().await.unwrap();
    assert_eq!(o["summary"]["impressions"], json!(0));
    assert_eq!(o["variations"], json!([]));
    let r = s
        .get_with_key(
            &format!("/api/v1/promo/select?offer_id={}", p.a),
            &other.key,
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (status, _) = impressions(
        s,
        &other.key,
        json!({"offer_id": p.a, "variation_id": p.a1, "newsletter_send_id": "x", "recipients": 5}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Texts with control characters are refused, naming the field.
    let r = s
        .http
        .patch(s.url(&format!("/api/v1/admin/variations/{}", p.a2)))
        .bearer_auth(ADMIN)
        .json(&json!({"headline": "Spring\u{0}\u{1b}[31m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("headline"));

    // Offer B's link deactivated: B is never selected (its link would 404), its impressions
    // are refused, and no new offer can point at that link.
    let links = s
        .admin_get(&format!(
            "/api/v1/admin/links?campaign_id={}",
            p.shop.campaign
        ))
        .await;
    let b_link = links["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["code"] == p.shop.codes[1].as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.admin_post(
        &format!("/api/v1/admin/links/{b_link}/deactivate"),
        json!({}),
    )
    .await;
    s.sync_catalog().await;
    let r = s
        .get_with_key(&format!("/api/v1/promo/select?offer_id={}", p.b), key)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    for seed in 0..10 {
        let r = s
            .get_with_key(&format!("/api/v1/promo/select?seed={seed}"), key)
            .await;
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["offer_id"], json!(p.a), "{v}");
    }
    let (status, body) = impressions(
        s,
        key,
        json!({"offer_id": p.b, "variation_id": p.b1, "newsletter_send_id": "b-1", "recipients": 5}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("offer_id"), "{body}");
    let r = s
        .http
        .post(s.url("/api/v1/admin/offers"))
        .bearer_auth(ADMIN)
        .json(&json!({"link_id": b_link, "name": "On a dead link"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}
