//! Hostile analyst SQL is refused or stopped, and the server keeps serving meanwhile.

use crate::common::Server;
use crate::sql;
use reqwest::StatusCode;
use serde_json::json;

/// Every hostile query of the kind an ordinary key can send is refused up front, stopped by a
/// limit, or answered; meanwhile redirects and events keep being answered.
#[tokio::test]
async fn hostile_queries_are_refused_or_stopped_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        dir.path(),
        &[
            "--query-timeout-secs",
            "8",
            "--query-memory-mb",
            "16",
            "--query-per-caller",
            "2",
        ],
    )
    .await;
    let shop = s.shop("S", "https://s.example/", &["S creator"]).await;

    let sum = format!("SELECT {} AS n", vec!["1"; 1000].join("+"));
    let ors = format!(
        "SELECT count(*) FROM events WHERE {}",
        vec!["action = 'x'"; 3000].join(" OR ")
    );
    let nested = format!("SELECT {}1{} AS n", "(".repeat(500), ")".repeat(500));
    let refused = [
        (sum.as_str(), "operators"),
        (ors.as_str(), "operators"),
        (nested.as_str(), "nests"),
        ("SELECT repeat('x', 2000000000) AS s", "bytes are allowed"),
        ("SELECT lpad('x', 2000000000) AS s", "bytes are allowed"),
        (
            "SELECT count(DISTINCT (value * 7919) % 3000000019) AS n FROM range(3000000000)",
            "more memory than the limit of 16 MiB",
        ),
    ];
    for (query, why) in refused {
        let (status, body) = sql(&s, &shop.key, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query:.80}: {body}");
        assert_eq!(body["fields"][0]["field"], json!("query"), "{body}");
        let message = body["fields"][0]["message"].as_str().unwrap();
        assert!(message.contains(why), "{query:.80}: {message}");
    }

    // A query that would run for minutes is stopped at the time limit; meanwhile the same
    // caller's third query is refused, and redirects and events are answered.
    let slow = "SELECT count(*) AS n FROM range(100000000000)";
    let long = tokio::spawn({
        let (http, url, key) = (s.http.clone(), s.url("/api/v1/sql"), shop.key.clone());
        async move {
            let started = std::time::Instant::now();
            let r = http
                .post(url)
                .header("x-api-key", key)
                .json(&json!({ "query": slow }))
                .send()
                .await
                .unwrap();
            (r.status(), started.elapsed(), r.text().await.unwrap())
        }
    });
    let second = tokio::spawn({
        let (http, url, key) = (s.http.clone(), s.url("/api/v1/sql"), shop.key.clone());
        async move {
            http.post(url)
                .header("x-api-key", key)
                .json(&json!({ "query": slow }))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    // Once both run, a third query of the same caller is refused at once.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let busy = loop {
        let r = s
            .http
            .get(s.url("/api/v1/stats/overview?period=all"))
            .header("x-api-key", &shop.key)
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS || long.is_finished() {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(busy.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(busy.headers()["retry-after"], "1");
    // Round trips of a redirect and an event while the query runs. None waits for the query
    // to be stopped (at 8 s), and they are typically quick; one may be slow when the machine is
    // busy with other work, so the typical one is the median.
    let mut took = Vec::new();
    while !long.is_finished() {
        let started = std::time::Instant::now();
        let r = s
            .click(&format!("/r/{}", shop.codes[0]), "Mozilla/5.0 Shopper")
            .await;
        assert_eq!(r.status(), StatusCode::FOUND);
        let r = s.post_events(&shop.key, &json!({"action": "signup"})).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(8),
            "a redirect and an event took {:?} while the query ran",
            started.elapsed()
        );
        took.push(started.elapsed());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let served = took.len();
    took.sort();
    assert!(
        took.get(served / 2)
            .is_some_and(|t| *t < std::time::Duration::from_secs(2)),
        "a redirect and an event took {took:?} while the query ran"
    );
    let (status, took, body) = long.await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("longer than 8 s"), "{body}");
    assert!(
        took < std::time::Duration::from_secs(20),
        "stopped at {took:?}"
    );
    assert_eq!(second.await.unwrap(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(served >= 5, "only {served} redirects while the query ran");

    // The process is whole: its health, and an ordinary query.
    let live = s.http.get(s.url("/health/live")).send().await.unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    let (status, body) = sql(&s, &shop.key, "SELECT count(*) AS n FROM range(10)").await;
    assert_eq!(
        (status, body["rows"][0]["n"].clone()),
        (StatusCode::OK, json!(10))
    );
}
