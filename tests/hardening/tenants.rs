//! Another tenant's identifiers, values and broken rows never reach one's own answers.

use crate::common::{Server, click_id};
use crate::sql;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn another_advertisers_identifiers_never_reach_ones_rows() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let a = s.shop("A", "https://a.example/", &["A creator"]).await;
    let b = s.shop("B", "https://b.example/", &["B creator"]).await;

    let token = click_id(
        &s.click(&format!("/r/{}", a.codes[0]), "Mozilla/5.0 A")
            .await,
    );
    let r = s.post_events(&a.key, &json!({"event_id": "a-1", "action": "purchase", "order_id": "1", "value": 42, "click_id": token})).await;
    assert_eq!(r.status(), StatusCode::OK);
    // B posts A's click id, A's public code and a landing URL carrying A's code.
    for (id, extra) in [
        ("b-click", json!({"click_id": token})),
        ("b-ref", json!({"ref_code": a.codes[0]})),
        (
            "b-landing",
            json!({"landing_url": format!("https://b.example/?ref={}", a.codes[0])}),
        ),
    ] {
        let mut body = json!({"event_id": id, "action": "signup"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let r = s.post_events(&b.key, &body).await;
        assert_eq!(r.status(), StatusCode::OK, "{id}");
    }
    s.drain().await;

    let own: Value = s
        .get_with_key("/api/v1/attribution/a-1", &a.key)
        .await
        .json()
        .await
        .unwrap();
    let link_id = own["link_id"]
        .as_str()
        .expect("A's purchase credits A's link");
    let secrets = [
        a.campaign.as_str(),
        a.influencers[0].as_str(),
        link_id,
        a.advertiser.as_str(),
    ];
    let leaks = |what: &str, text: &str| {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{what} shows A's `{secret}`: {text}"
            );
        }
    };

    for id in ["b-click", "b-ref", "b-landing"] {
        let audit: Value = s
            .get_with_key(&format!("/api/v1/attribution/{id}"), &b.key)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(audit["attributed"], json!(false), "{id}: {audit}");
        let candidates = audit["candidates"].as_array().unwrap();
        assert!(
            candidates
                .iter()
                .any(|c| c["status"] == json!("other_advertiser")),
            "{id}: {audit}"
        );
        for c in candidates {
            if c["status"] == json!("other_advertiser") {
                let keys: Vec<&String> = c.as_object().unwrap().keys().collect();
                assert_eq!(keys, ["source", "status"], "{id}: only where and what: {c}");
            }
        }
        leaks(&format!("audit of {id}"), &audit.to_string());
        assert!(
            audit["click_at"].is_null(),
            "no click time of A's click: {audit}"
        );
    }
    let csv = s
        .get_with_key("/api/v1/export/events.csv", &b.key)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    leaks("events.csv", &csv);
    let (status, rows) = sql(&s, &b.key, "SELECT * FROM events").await;
    assert_eq!(status, StatusCode::OK, "{rows}");
    assert_eq!(rows["rows"].as_array().unwrap().len(), 3, "{rows}");
    leaks("SQL", &rows.to_string());
    assert!(
        rows["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r.get("click_at").is_none()),
        "{rows}"
    );
}

#[tokio::test]
async fn implausible_times_and_amounts_are_refused_and_others_keep_their_figures() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let x = s.shop("X", "https://x.example/", &["X creator"]).await;
    let y = s.shop("Y", "https://y.example/", &["Y creator"]).await;

    for (body, field) in [
        (
            json!({"action": "signup", "occurred_at": "1600-01-01T00:00:00Z"}),
            "occurred_at",
        ),
        (
            json!({"action": "signup", "occurred_at": "1969-07-20T20:17:00Z"}),
            "occurred_at",
        ),
        (
            json!({"action": "signup", "occurred_at": "2999-01-01T00:00:00Z"}),
            "occurred_at",
        ),
        (
            json!({"action": "purchase", "order_id": "big", "value": "92233720368547758.07"}),
            "value",
        ),
        (
            json!({"action": "purchase", "order_id": "big2", "value": "10000000000.01", "currency": "USD"}),
            "value",
        ),
    ] {
        let r = s.post_events(&x.key, &body).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        let err: Value = r.json().await.unwrap();
        assert_eq!(err["fields"][0]["field"], json!(field), "{err}");
    }
    // The largest amount accepted, twice, plus an ordinary one: sums stay exact and positive.
    for (order, value) in [("m1", "10000000000"), ("m2", "10000000000"), ("s", "1.00")] {
        let r = s
            .post_events(
                &x.key,
                &json!({"action": "purchase", "order_id": order, "value": value, "occurred_at": "2000-01-01T00:00:00Z"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{order}");
    }
    let r = s
        .post_events(&y.key, &json!({"action": "signup", "event_id": "y-1"}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    s.drain().await;

    let overview: Value = s
        .get_with_key("/api/v1/stats/overview?period=all", &x.key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        overview["revenue"],
        json!([{"currency": "USD", "amount_minor": 2_000_000_000_100i64}]),
        "{overview}"
    );
    let (status, rows) = sql(
        &s,
        &x.key,
        "SELECT sum(value_minor) AS total FROM events WHERE action = 'purchase'",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rows}");
    assert_eq!(rows["rows"][0]["total"], json!(2_000_000_000_100i64));
    for path in [
        "/api/v1/stats/overview?period=all",
        "/api/v1/stats/funnel?period=all",
        "/api/v1/stats/chart?period=30d",
    ] {
        let r = s.get_with_key(path, &y.key).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let text = r.text().await.unwrap();
        assert!(!text.contains("2000-01-01"), "{path}: {text}");
    }
}

#[tokio::test]
async fn query_errors_never_carry_another_tenants_values() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let a = s.shop("A", "https://a.example/", &["A creator"]).await;
    let b = s.shop("B", "https://b.example/", &["B creator"]).await;
    for (key, id) in [(&a.key, "secret-of-a-7731"), (&b.key, "42")] {
        let r = s
            .post_events(key, &json!({"action": "signup", "event_id": id}))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    s.drain().await;
    for query in [
        "SELECT CAST(event_id AS BIGINT) AS n FROM events",
        "SELECT * FROM events WHERE CAST(event_id AS BIGINT) > 0",
        "SELECT arrow_cast(event_id, 'Int64') FROM events",
    ] {
        let (status, body) = sql(&s, &b.key, query).await;
        let text = body.to_string();
        assert!(!text.contains("secret-of-a"), "{query}: {status} {text}");
        assert!(
            status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
            "{query}: {status} {text}"
        );
    }
}

/// A page (anyone holding the shop's public key) can neither take a backend event's id first,
/// which would make the backend's event a duplicate, nor a backend customer's first touch.
#[tokio::test]
async fn a_page_cannot_take_a_backend_events_id_or_customer() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let shop = s
        .shop("Paged", "https://paged.example/", &["Honest", "Forger"])
        .await;
    let pk = s
        .admin_post(
            &format!(
                "/api/v1/admin/advertisers/{}/publishable-keys",
                shop.advertiser
            ),
            json!({"allowed_origins": ["https://paged.example"]}),
        )
        .await;
    s.sync_catalog().await;
    let honest = click_id(
        &s.click(&format!("/r/{}", shop.codes[0]), "Mozilla/5.0 H")
            .await,
    );
    let forged = click_id(
        &s.click(&format!("/r/{}", shop.codes[1]), "Mozilla/5.0 F")
            .await,
    );
    // The page goes first, with the backend's next event id and customer.
    let r = s
        .http
        .post(s.url(&format!(
            "/api/v1/browser/events?key={}",
            pk["key"].as_str().unwrap()
        )))
        .header("origin", "https://paged.example")
        .body(json!({"action": "signup", "event_id": "order-77", "customer_id": "c-77", "click_id": forged}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["event_ids"], json!(["web:order-77"]), "{answer}");
    s.drain().await;
    // The backend's customer signs up through the honest link, then buys with no click.
    for event in [
        json!({"action": "signup", "event_id": "order-76", "customer_id": "c-77", "click_id": honest}),
        json!({"action": "purchase", "event_id": "order-77", "customer_id": "c-77", "order_id": "77", "value": 20}),
    ] {
        let r = s.post_events(&shop.key, &event).await;
        assert_eq!(r.status(), StatusCode::OK);
        s.drain().await;
    }
    let (status, v) = sql(
        &s,
        &shop.key,
        "SELECT event_id, action, source, influencer_id FROM events ORDER BY event_id",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let rows: Vec<(Value, Value, Value, Value)> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["event_id"].clone(),
                r["action"].clone(),
                r["source"].clone(),
                r["influencer_id"].clone(),
            )
        })
        .collect();
    let (h, f) = (json!(shop.influencers[0]), json!(shop.influencers[1]));
    assert_eq!(
        rows,
        vec![
            (
                json!("order-76"),
                json!("signup"),
                json!("server"),
                h.clone()
            ),
            (json!("order-77"), json!("purchase"), json!("server"), h),
            (json!("web:order-77"), json!("signup"), json!("browser"), f),
        ],
        "the backend's purchase is stored and credited to its own customer's first touch"
    );
}
