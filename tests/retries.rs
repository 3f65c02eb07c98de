//! A client that retries an event it sent without `event_id` (after a timeout, say) has it
//! counted once: the derived id comes from the advertiser and the event's own content, never
//! from the time it was received. Distinct content stays distinct.

mod common;

use common::Server;
use serde_json::{Value, json};

#[tokio::test]
async fn a_retried_event_without_event_id_is_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let shop = s.shop("Retry", "https://shop.example/r", &["Ana"]).await;

    let body = json!({"action": "signup", "customer_id": "c-1"});
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = s.post_events(&shop.key, &body).await;
        assert!(r.status().is_success());
        let a: Value = r.json().await.unwrap();
        ids.push(a["event_ids"][0].as_str().unwrap().to_string());
        // A retry comes later than the first attempt.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    assert_eq!(ids[0], ids[1], "the same content is the same event");
    let timed =
        json!({"action": "signup", "customer_id": "c-2", "occurred_at": "2026-01-02T03:04:05Z"});
    for _ in 0..2 {
        assert!(s.post_events(&shop.key, &timed).await.status().is_success());
    }
    // Another customer's signup is another event.
    let other = json!({"action": "signup", "customer_id": "c-3"});
    assert!(s.post_events(&shop.key, &other).await.status().is_success());
    s.drain().await;

    let sql = s
        .http
        .post(s.url("/api/v1/sql"))
        .header("x-api-key", &shop.key)
        .json(&json!({"query": "SELECT customer_id, count(*) AS n FROM events GROUP BY customer_id ORDER BY customer_id"}))
        .send()
        .await
        .unwrap();
    assert!(sql.status().is_success());
    let rows: Value = sql.json().await.unwrap();
    assert_eq!(
        rows["rows"],
        json!([
            {"customer_id": "c-1", "n": 1},
            {"customer_id": "c-2", "n": 1},
            {"customer_id": "c-3", "n": 1}
        ]),
        "{rows}"
    );
}
