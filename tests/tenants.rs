//! One advertiser's key never reads another advertiser's data.

mod common;

use common::{Server, click_id};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn advertiser(s: &Server, name: &str) -> (String, String, String) {
    let shop = s
        .shop(name, "https://a.example/", &[&format!("{name} creator")])
        .await;
    (shop.advertiser, shop.key, shop.codes[0].clone())
}

#[tokio::test]
async fn advertiser_b_cannot_read_advertiser_a() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let (a_id, a_key, a_code) = advertiser(&s, "A").await;
    let (_b_id, b_key, _) = advertiser(&s, "B").await;

    let t = click_id(&s.click(&format!("/r/{a_code}"), "Mozilla/5.0 Tenant").await);
    let r = s.post_events(&a_key, &json!({"event_id": "a-1", "action": "purchase", "order_id": "1", "value": 42, "click_id": t})).await;
    assert_eq!(r.status(), StatusCode::OK);
    // B passes back A's click id and code: B's event is stored for B, credited to no one.
    let r = s.post_events(&b_key, &json!({"event_id": "b-1", "action": "purchase", "order_id": "1", "value": 7, "click_id": t, "ref_code": a_code})).await;
    assert_eq!(r.status(), StatusCode::OK);
    s.drain().await;

    let a: Value = s
        .get_with_key("/api/v1/stats/overview?period=all", &a_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            a["clicks"].clone(),
            a["purchases"].clone(),
            a["attributed_purchases"].clone()
        ),
        (json!(1), json!(1), json!(1))
    );
    let b: Value = s
        .get_with_key("/api/v1/stats/overview?period=all", &b_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            b["clicks"].clone(),
            b["purchases"].clone(),
            b["attributed_purchases"].clone()
        ),
        (json!(0), json!(1), json!(0)),
        "{b}"
    );
    let audit: Value = s
        .get_with_key("/api/v1/attribution/b-1", &b_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["candidates"][0]["status"], json!("other_advertiser"));

    for path in [
        "/api/v1/stats/per-influencer?period=all",
        "/api/v1/stats/per-link?period=all",
        "/api/v1/stats/per-campaign?period=all",
    ] {
        let v: Value = s.get_with_key(path, &b_key).await.json().await.unwrap();
        assert!(v["rows"].as_array().unwrap().is_empty(), "{path}: {v}");
    }
    let csv = s
        .get_with_key("/api/v1/export/events.csv", &b_key)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 2, "header and B's own event: {csv}");
    assert!(!csv.contains("a-1") && csv.contains("b-1"));
    let csv = s
        .get_with_key("/api/v1/export/clicks.csv", &b_key)
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.lines().count() <= 1, "no clicks of A: {csv}");
    assert_eq!(
        s.get_with_key("/api/v1/attribution/a-1", &b_key)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let r = s
        .get_with_key(
            &format!("/api/v1/stats/overview?advertiser_id={a_id}"),
            &b_key,
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "an advertiser cannot widen its scope"
    );
    // Analyst SQL is scoped the same way.
    let v: Value = s
        .http
        .post(s.url("/api/v1/sql"))
        .header("x-api-key", &b_key)
        .json(&json!({"query": "SELECT count(*) AS n FROM events"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["rows"][0]["n"], json!(1), "{v}");
    let r = s
        .http
        .post(s.url("/api/v1/sql"))
        .header("x-api-key", &b_key)
        .json(&json!({"query": "DROP TABLE events"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Keys are not admin tokens, and revoked keys stop working.
    let r = s
        .http
        .get(s.url("/api/v1/admin/advertisers"))
        .header("x-api-key", &b_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let keys = s
        .admin_get(&format!("/api/v1/admin/advertisers/{a_id}/api-keys"))
        .await["items"]
        .clone();
    assert!(
        keys[0].get("key").is_none() && keys[0].get("hash").is_none(),
        "listing never shows secrets: {keys}"
    );
    let key_id = keys[0]["id"].as_str().unwrap();
    let rotated = s
        .admin_post(
            &format!("/api/v1/admin/api-keys/{key_id}/rotate"),
            json!({"overlap_secs": 0}),
        )
        .await;
    assert_eq!(
        s.get_with_key("/api/v1/stats/overview", &a_key)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.get_with_key("/api/v1/stats/overview", rotated["key"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
}
