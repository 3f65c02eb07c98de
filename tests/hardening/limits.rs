//! Rate limits of every route class, and connections held by slow or silent clients.

use crate::common::{self, Server};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// `n` rapid requests built by `req`; their statuses, and the first 429's `Retry-After` and
/// error code.
async fn burst(
    n: usize,
    req: impl Fn() -> reqwest::RequestBuilder,
) -> (Vec<StatusCode>, Option<(u64, Value)>) {
    let mut statuses = Vec::new();
    let mut first = None;
    for _ in 0..n {
        let r = req().send().await.unwrap();
        let status = r.status();
        if status == StatusCode::TOO_MANY_REQUESTS && first.is_none() {
            let after: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            first = Some((after, r.json().await.unwrap()));
        }
        statuses.push(status);
    }
    (statuses, first)
}

#[tokio::test]
async fn every_route_class_is_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        dir.path(),
        &[
            "--rate-redirects",
            "50",
            "--rate-events",
            "50",
            "--rate-queries",
            "1",
            "--rate-sql",
            "1",
            "--rate-admin",
            "50",
            "--trusted-proxies",
            "127.0.0.1",
        ],
    )
    .await;
    let shop = s.shop("L", "https://l.example/", &["L creator"]).await;
    s.sync_catalog().await;
    let event = json!({"action": "signup"});
    type Request<'a> = Box<dyn Fn() -> reqwest::RequestBuilder + 'a>;
    let classes: Vec<(&str, Request)> = vec![
        (
            "redirect",
            Box::new(|| {
                s.http
                    .get(s.url(&format!("/r/{}", shop.codes[0])))
                    .header("user-agent", "Mozilla/5.0 Burst")
            }),
        ),
        (
            "events",
            Box::new(|| {
                s.http
                    .post(s.url("/api/v1/events"))
                    .header("x-api-key", &shop.key)
                    .json(&event)
            }),
        ),
        (
            "query",
            Box::new(|| {
                s.http
                    .get(s.url("/api/v1/stats/overview"))
                    .header("x-api-key", &shop.key)
            }),
        ),
        (
            "sql",
            Box::new(|| {
                s.http
                    .post(s.url("/api/v1/sql"))
                    .header("x-api-key", &shop.key)
                    .json(&json!({"query": "SELECT 1 AS one"}))
            }),
        ),
        (
            "admin",
            Box::new(|| {
                s.http
                    .get(s.url("/api/v1/admin/advertisers"))
                    .bearer_auth(common::ADMIN)
            }),
        ),
    ];
    for (class, req) in &classes {
        // Queries take longer to answer, so fewer suffice to outrun their budget.
        let n = if matches!(*class, "query" | "sql") {
            40
        } else {
            300
        };
        let (statuses, first) = burst(n, req).await;
        let ok = statuses
            .iter()
            .filter(|s| s.is_success() || s.is_redirection())
            .count();
        let limited = statuses
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count();
        assert!(
            ok >= 2,
            "{class}: the burst is served first ({ok} answered)"
        );
        assert!(limited > 0, "{class}: {n} rapid requests see a 429");
        assert_eq!(ok + limited, n, "{class}: {statuses:?}");
        let (after, body) = first.unwrap();
        assert!((1..=2).contains(&after), "{class}: Retry-After {after}");
        assert_eq!(body["error"], json!("too_many_requests"), "{class}: {body}");
    }
    // Another key has its own budget while the first is spent (the admin budget refills).
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let other = s.shop("M", "https://m.example/", &["M creator"]).await;
    s.sync_catalog().await;
    let r = s.post_events(&other.key, &event).await;
    assert_eq!(r.status(), StatusCode::OK);
    let metrics = common::metrics(&s.http, &s.base).await;
    for class in ["redirect", "events", "query", "sql", "admin"] {
        assert!(
            metrics.contains(&format!(
                "clicktrail_http_rate_limited_total{{class=\"{class}\"}}"
            )),
            "{class} counted"
        );
    }

    // Failed authentications (wrong admin token, then wrong API key): 30 a minute per client
    // address, which behind the trusted proxy is the one it names.
    let from = |addr: &'static str, token: &'static str| {
        let s = &s;
        move || {
            s.http
                .get(s.url("/api/v1/admin/advertisers"))
                .bearer_auth(token)
                .header("x-forwarded-for", addr)
        }
    };
    let (statuses, first) = burst(300, from("198.51.100.1", "wrong-token-0123456789")).await;
    let unauthorized = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert!(
        (30..=32).contains(&unauthorized),
        "{unauthorized} tries before the block"
    );
    let (after, body) = first.expect("a 429");
    assert!(after >= 1, "{after}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("failed authentications"),
        "{body}"
    );
    // The blocked address is refused even with the right token; another address is not.
    let (statuses, _) = burst(1, from("198.51.100.1", common::ADMIN)).await;
    assert_eq!(statuses, [StatusCode::TOO_MANY_REQUESTS]);
    let (statuses, _) = burst(1, from("198.51.100.2", common::ADMIN)).await;
    assert_eq!(statuses, [StatusCode::OK]);
    let wrong_key = || {
        s.http
            .get(s.url("/api/v1/stats/overview"))
            .header(
                "x-api-key",
                "ct_abcdefgh_wrongwrongwrongwrongwrongwrongwrongwr",
            )
            .header("x-forwarded-for", "198.51.100.3")
    };
    let (statuses, _) = burst(300, wrong_key).await;
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "wrong API keys are limited"
    );
}

/// Reads from `stream` until it closes or `limit` passes; what arrived, and when it closed.
async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    limit: std::time::Duration,
) -> (String, Option<std::time::Duration>) {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (
                    String::from_utf8_lossy(&got).into(),
                    Some(started.elapsed()),
                );
            }
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into(), None),
        }
    }
}

#[tokio::test]
async fn slow_and_silent_clients_are_cut_off_and_connections_are_capped() {
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        dir.path(),
        &[
            "--http-header-timeout-secs",
            "2",
            "--http-body-timeout-secs",
            "2",
            "--http-idle-timeout-secs",
            "3",
            "--http-max-connections",
            "40",
        ],
    )
    .await;
    let shop = s.shop("T", "https://t.example/", &["T creator"]).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let connect = || tokio::net::TcpStream::connect(addr.clone());

    // Headers trickled one line a second: closed at the header timeout.
    let mut c = connect().await.unwrap();
    c.write_all(b"GET /health/live HTTP/1.1\r\n").await.unwrap();
    let trickle = tokio::spawn(async move {
        for i in 0..10 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if c.write_all(format!("x-slow-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                return (i, c);
            }
        }
        (10, c)
    });
    let (lines, mut c) = trickle.await.unwrap();
    let (_, closed) = read_until_closed(&mut c, Duration::from_secs(5)).await;
    assert!(
        lines < 6 && closed.is_some(),
        "slow headers held the connection ({lines} lines)"
    );

    // A body trickled a few bytes at a time: 408 at the body timeout.
    let mut c = connect().await.unwrap();
    let head = format!(
        "POST /api/v1/events HTTP/1.1\r\nhost: x\r\nx-api-key: {}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n",
        shop.key
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let (mut reader, mut writer) = c.into_split();
    let feeder = tokio::spawn(async move {
        for _ in 0..20 {
            if writer.write_all(b"          ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let mut answer = String::new();
    {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 2048];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(8), reader.read(&mut buf)).await
        {
            answer = String::from_utf8_lossy(&buf[..n]).into();
        }
    }
    feeder.abort();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );

    // A keep-alive connection left silent after a request: closed at the idle timeout.
    let mut c = connect().await.unwrap();
    c.write_all(b"GET /health/live HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let (first, closed) = read_until_closed(&mut c, Duration::from_secs(8)).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let closed = closed.expect("closed when idle");
    assert!(
        closed >= Duration::from_millis(2500),
        "closed too early: {closed:?}"
    );

    // Past the connection limit a new connection is answered 503 at once and closed.
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(connect().await.unwrap());
    }
    let mut extra = connect().await.unwrap();
    let (answer, closed) = read_until_closed(&mut extra, Duration::from_secs(2)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(closed.is_some());
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Everyone else is served again.
    let r = s
        .click(&format!("/r/{}", shop.codes[0]), "Mozilla/5.0 After")
        .await;
    assert_eq!(r.status(), StatusCode::FOUND);
}
