//! The tenant matrix: every stats, export, attribution, ledger, promo, SQL and `/api/v1/me` route, for each
//! kind of caller (an advertiser's user, its API key, an influencer's user) and with another
//! tenant's ids, answers 403/404 (400 for a filter only admins may use) or an answer without a
//! single row, id or name of anyone else; an influencer's answers hold aggregates of their own
//! links and credited events only.

mod common;

use common::{Server, click_id};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

const PW: &str = "correct horse battery";

struct Caller {
    name: &'static str,
    auth: Vec<(header::HeaderName, String)>,
    influencer: bool,
}

#[tokio::test]
async fn no_caller_reads_another_tenants_rows() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let a = s
        .shop(
            "Alpha Outdoor",
            "https://alpha.example/",
            &["Ann Alpha", "Bob Alpha"],
        )
        .await;
    let b = s
        .shop("Beta Foods", "https://beta.example/", &["Cid Beta"])
        .await;
    // A second campaign of Alpha that Ann is not assigned to, with a link of Bob's.
    let a2 = s
        .create(
            &format!("/api/v1/admin/advertisers/{}/campaigns", a.advertiser),
            json!({"name": "Alpha hidden campaign", "destination_url": "https://alpha.example/2"}),
        )
        .await;
    s.admin_post(
        &format!("/api/v1/admin/campaigns/{a2}/influencers"),
        json!({"influencer_id": a.influencers[1]}),
    )
    .await;
    let hidden = s
        .admin_post(
            "/api/v1/admin/links",
            json!({"campaign_id": a2, "influencer_id": a.influencers[1]}),
        )
        .await["code"]
        .as_str()
        .unwrap()
        .to_string();
    let coupon_b = s
        .admin_post(
            &format!("/api/v1/admin/campaigns/{}/coupons", b.campaign),
            json!({"influencer_id": b.influencers[0], "code": "CIDSECRET"}),
        )
        .await;
    assert!(coupon_b.is_array());

    // A commission plan for each advertiser: every attributed purchase books a commission.
    for campaign in [&a.campaign, &b.campaign] {
        let r = s
            .http
            .put(s.url(&format!(
                "/api/v1/admin/campaigns/{campaign}/commission-plan"
            )))
            .bearer_auth(common::ADMIN)
            .json(&json!({"rate": {"type": "percent", "basis_points": 1000}, "min_click_secs": 0}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }

    // Traffic and purchases of everyone. An influencer sees up to the last whole hour: Ann's
    // sale through her coupon three hours ago shows, this hour's click and sale not yet.
    let t0 = chrono::Utc::now();
    s.admin_post(
        &format!("/api/v1/admin/campaigns/{}/coupons", a.campaign),
        json!({"influencer_id": a.influencers[0], "code": "ANNPAST"}),
    )
    .await;
    let past = (t0 - chrono::Duration::hours(3)).to_rfc3339();
    let r = s
        .post_events(&a.key, &json!({"event_id": "ev-ann-coupon", "action": "purchase", "order_id": "order-past", "value": 25, "currency": "EUR", "coupon_code": "ANNPAST", "occurred_at": past}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut clicks = Vec::new();
    for (code, sub) in [
        (&a.codes[0], "ann-sub"),
        (&a.codes[1], "bob-sub"),
        (&b.codes[0], "cid-sub"),
        (&hidden, "hidden-sub"),
    ] {
        let r = s
            .http
            .get(s.url(&format!("/r/{code}/{sub}")))
            .header(header::USER_AGENT, "Mozilla/5.0 Matrix")
            .header(header::REFERER, "https://referrer-secret.example/")
            .send()
            .await
            .unwrap();
        clicks.push(click_id(&r));
    }
    for (key, event, click, customer) in [
        (&a.key, "ev-ann", &clicks[0], "cust-ann-secret"),
        (&a.key, "ev-bob", &clicks[1], "cust-bob-secret"),
        (&b.key, "ev-cid", &clicks[2], "cust-cid-secret"),
    ] {
        let r = s
            .post_events(key, &json!({"event_id": event, "action": "purchase", "order_id": format!("order-{event}-secret"), "customer_id": customer, "value": 10, "currency": "EUR", "click_id": click}))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    // A newsletter promo of Beta's, with a send and a click through it.
    let beta_link = s
        .admin_get(&format!("/api/v1/admin/links?campaign_id={}", b.campaign))
        .await["items"][0]["id"]
        .clone();
    let beta_offer = s
        .create(
            "/api/v1/admin/offers",
            json!({"link_id": beta_link, "name": "Beta secret offer"}),
        )
        .await;
    let beta_var = s
        .create(
            &format!("/api/v1/admin/offers/{beta_offer}/variations"),
            json!({"headline": "BETAHEADLINE", "cta": "Eat", "approved": true}),
        )
        .await;
    s.sync_catalog().await;
    let r = s
        .http
        .post(s.url("/api/v1/promo/impressions"))
        .header("x-api-key", &b.key)
        .json(&json!({"offer_id": beta_offer, "variation_id": beta_var,
                      "newsletter_send_id": "beta-send-secret", "recipients": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    s.click(
        &format!("/r/{}?promo_var={beta_var}", b.codes[0]),
        "Mozilla/5.0 Matrix",
    )
    .await;
    s.drain().await;

    s.user(
        "adv@alpha.example",
        "advertiser",
        json!({"advertiser_id": a.advertiser}),
        PW,
    )
    .await;
    s.user(
        "ann@alpha.example",
        "influencer",
        json!({"influencer_id": a.influencers[0]}),
        PW,
    )
    .await;
    let adv = s.login("adv@alpha.example", PW).await;
    let ann = s.login("ann@alpha.example", PW).await;

    let callers = [
        Caller {
            name: "Alpha's user (cookie)",
            auth: vec![
                (header::COOKIE, adv.cookie.clone()),
                (
                    header::HeaderName::from_static("x-csrf-token"),
                    adv.csrf.clone(),
                ),
            ],
            influencer: false,
        },
        Caller {
            name: "Alpha's key",
            auth: vec![(header::HeaderName::from_static("x-api-key"), a.key.clone())],
            influencer: false,
        },
        Caller {
            name: "Ann's user (bearer)",
            auth: vec![(header::AUTHORIZATION, format!("Bearer {}", ann.token))],
            influencer: true,
        },
        Caller {
            name: "Ann's user (cookie)",
            auth: vec![
                (header::COOKIE, ann.cookie.clone()),
                (
                    header::HeaderName::from_static("x-csrf-token"),
                    ann.csrf.clone(),
                ),
            ],
            influencer: true,
        },
    ];
    // Everything of Beta, for every caller.
    let beta: Vec<String> = vec![
        b.advertiser.clone(),
        b.campaign.clone(),
        b.influencers[0].clone(),
        b.codes[0].clone(),
        "Beta Foods".into(),
        "Cid Beta".into(),
        "ev-cid".into(),
        "cust-cid-secret".into(),
        "order-ev-cid-secret".into(),
        "cid-sub".into(),
        "CIDSECRET".into(),
        beta_offer.clone(),
        beta_var.clone(),
        "Beta secret offer".into(),
        "BETAHEADLINE".into(),
        "beta-send-secret".into(),
    ];
    // What an influencer never sees: other influencers, the campaign they are not in, and
    // anything personal or single-event of their own conversions.
    let not_for_ann: Vec<String> = vec![
        a.influencers[1].clone(),
        "Bob Alpha".into(),
        a.codes[1].clone(),
        hidden.clone(),
        a2.clone(),
        "Alpha hidden campaign".into(),
        "bob-sub".into(),
        "hidden-sub".into(),
        "ev-bob".into(),
        "ev-ann".into(),
        "cust-ann-secret".into(),
        "order-ev-ann-secret".into(),
        "referrer-secret".into(),
        "customer_id".into(),
        "order_id".into(),
        "referrer".into(),
        "\"country\":\"".into(),
        "\"ip".into(),
    ];

    let filters = [
        String::new(),
        format!("&campaign_id={}", b.campaign),
        format!("&influencer_id={}", b.influencers[0]),
        format!("&advertiser_id={}", b.advertiser),
        format!("&campaign_id={a2}"),
        format!("&influencer_id={}", a.influencers[1]),
    ];
    let shared = [
        "/api/v1/stats/overview",
        "/api/v1/stats/chart",
        "/api/v1/stats/funnel",
        "/api/v1/stats/per-influencer",
        "/api/v1/stats/per-campaign",
        "/api/v1/stats/per-link",
        "/api/v1/stats/per-sub-id",
        "/api/v1/stats/per-country",
        "/api/v1/stats/recent-events",
        "/api/v1/stats/chart.svg",
        "/api/v1/export/events.csv",
        "/api/v1/export/clicks.csv",
        "/api/v1/ledger/balances",
        "/api/v1/ledger/entries",
        "/api/v1/ledger/payouts",
        "/api/v1/ledger/payouts.csv",
        "/api/v1/ledger/reviews",
    ];
    let mine = [
        "/api/v1/me/stats/overview",
        "/api/v1/me/stats/chart",
        "/api/v1/me/stats/funnel",
        "/api/v1/me/stats/per-campaign",
        "/api/v1/me/stats/per-link",
        "/api/v1/me/stats/per-sub-id",
        "/api/v1/me/stats/chart.svg",
        "/api/v1/me/affiliate",
        "/api/v1/me/conversions",
        "/api/v1/me/payouts",
    ];
    let mut checked = 0;
    for c in &callers {
        let send = |method: Method, path: String, body: Option<Value>| {
            let mut req = s.http.request(method, s.url(&path));
            for (k, v) in &c.auth {
                req = req.header(k, v);
            }
            if let Some(b) = body {
                req = req.json(&b);
            }
            async move {
                let r = req.send().await.unwrap();
                let status = r.status();
                (status, r.text().await.unwrap())
            }
        };
        let mut paths: Vec<String> = Vec::new();
        for route in shared.iter().chain(mine.iter()) {
            for f in &filters {
                paths.push(format!("{route}?period=all{f}"));
            }
        }
        for p in [
            "/api/v1/me",
            "/api/v1/me/links",
            "/api/v1/me/coupons",
            "/api/v1/attribution/ev-cid",
            "/api/v1/attribution/ev-bob",
            "/api/v1/attribution/ev-ann",
        ] {
            paths.push(p.to_string());
        }
        for q in [
            String::new(),
            format!("&offer_id={beta_offer}"),
            format!("&variation_id={beta_var}"),
            format!("&advertiser_id={}", b.advertiser),
        ] {
            paths.push(format!(
                "/api/v1/promo/analytics?period=all&include_timeline=true{q}"
            ));
            paths.push(format!("/api/v1/promo/select?seed=1{q}"));
        }
        for path in paths {
            let (status, body) = send(Method::GET, path.clone(), None).await;
            checked += 1;
            let who = format!("{} GET {path}: {status} {body}", c.name);
            assert!(!status.is_server_error(), "{who}");
            if status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND {
                continue;
            }
            if status == StatusCode::BAD_REQUEST {
                let foreign_offer = path.starts_with("/api/v1/promo/select")
                    && body.contains("offer_id")
                    && body.contains("no such offer");
                let unknown_for_select =
                    path.starts_with("/api/v1/promo/select") && path.contains("variation_id=");
                assert!(
                    (path.contains("advertiser_id=") && body.contains("advertiser_id"))
                        || foreign_offer
                        || unknown_for_select,
                    "{who}"
                );
                continue;
            }
            assert_eq!(status, StatusCode::OK, "{who}");
            for secret in &beta {
                assert!(!body.contains(secret.as_str()), "{who}: shows {secret}");
            }
            if c.influencer {
                // Influencers reach only their own routes.
                assert!(path.starts_with("/api/v1/me"), "{who}");
                for secret in &not_for_ann {
                    assert!(!body.contains(secret.as_str()), "{who}: shows {secret}");
                }
            } else {
                assert!(!path.starts_with("/api/v1/me/"), "{who}");
            }
        }
        // Analyst SQL, whatever it asks for.
        for q in [
            "SELECT * FROM events",
            "SELECT * FROM clicks",
            &format!(
                "SELECT * FROM events WHERE advertiser_id = '{}'",
                b.advertiser
            ),
            "SELECT * FROM clicks_hourly",
            "SELECT * FROM events_hourly",
            "SELECT * FROM ledger",
            "SELECT * FROM impressions",
            "SELECT * FROM promo_clicks",
        ] {
            let (status, body) = send(
                Method::POST,
                "/api/v1/sql".into(),
                Some(json!({"query": q})),
            )
            .await;
            checked += 1;
            let who = format!("{} SQL {q}: {status} {body}", c.name);
            if c.influencer {
                assert_eq!(status, StatusCode::FORBIDDEN, "{who}");
                continue;
            }
            assert_eq!(status, StatusCode::OK, "{who}");
            for secret in &beta {
                assert!(!body.contains(secret.as_str()), "{who}: shows {secret}");
            }
        }
    }

    // An expression that fails on one value cannot tell whether another tenant holds it: no
    // expression of a caller's query runs on another tenant's rows (`query/src/sealed.rs`).
    let mut answers = Vec::new();
    for probe in ["cust-cid-secret", "nobody-has-this"] {
        let q = format!(
            "SELECT count(*) AS n FROM events WHERE CASE WHEN customer_id = '{probe}' THEN CAST(concat('x', customer_id) AS INT) ELSE 1 END = 1"
        );
        let r = s
            .http
            .post(s.url("/api/v1/sql"))
            .header("x-api-key", &a.key)
            .json(&json!({"query": q}))
            .send()
            .await
            .unwrap();
        answers.push((r.status(), r.text().await.unwrap()));
    }
    assert_eq!(
        answers[0], answers[1],
        "the probe for Beta's customer answers as one for no one"
    );
    assert_eq!(answers[0].0, StatusCode::OK, "{answers:?}");

    // And what each does see: exactly their own figures.
    let ann_get = |path: &'static str| {
        let s = &s;
        let token = ann.token.clone();
        async move {
            let r = s
                .http
                .get(s.url(path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            r.json::<Value>().await.unwrap()
        }
    };
    let o = ann_get("/api/v1/me/stats/overview?period=all").await;
    // This hour's figures show once the hour is over (the test may cross an hour).
    let hour = |t: chrono::DateTime<chrono::Utc>| t.timestamp() / 3600;
    let rolled = hour(chrono::Utc::now()) > hour(t0);
    let (clicks, purchases, revenue) = if rolled { (1, 2, 3500) } else { (0, 1, 2500) };
    assert_eq!(
        (
            o["clicks"].clone(),
            o["purchases"].clone(),
            o["revenue"].clone()
        ),
        (
            json!(clicks),
            json!(purchases),
            json!([{"currency": "EUR", "amount_minor": revenue}])
        ),
        "{o}"
    );
    let to = chrono::DateTime::parse_from_rfc3339(o["period"]["to"].as_str().unwrap()).unwrap();
    assert_eq!(to.timestamp() % 3600, 0, "ends at a whole hour: {o}");
    assert!(
        to.timestamp() <= chrono::Utc::now().timestamp(),
        "not after now: {o}"
    );
    let links = ann_get("/api/v1/me/links").await;
    assert_eq!(links.as_array().unwrap().len(), 1, "{links}");
    assert_eq!(links[0]["code"], json!(a.codes[0]));
    let subs = ann_get("/api/v1/me/stats/per-sub-id?period=all").await;
    let rows = subs["rows"].as_array().unwrap();
    if rolled {
        assert_eq!(rows.len(), 1, "{subs}");
        assert_eq!(rows[0]["id"], json!("ann-sub"));
    } else {
        assert!(
            rows.is_empty(),
            "this hour's click is not shown yet: {subs}"
        );
    }
    let adv_o: Value = s
        .http
        .get(s.url("/api/v1/stats/overview?period=all"))
        .header(header::COOKIE, &adv.cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (adv_o["clicks"].clone(), adv_o["purchases"].clone()),
        (json!(3), json!(3)),
        "{adv_o}"
    );
    eprintln!("tenant matrix: {checked} requests checked");
}
