//! Rate limits of every route class, and connections held by slow or silent clients.

use crate::common::{self, Server};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// `n` rapid requests built by `req`, `concurrent` at a time; their statuses, and the first
/// 429's `Retry-After` and error code. Sent concurrently, a burst outruns a budget however
/// long each answer takes on a busy machine (an event is answered once durable).
async fn burst(
    n: usize,
    concurrent: usize,
    req: impl Fn() -> reqwest::RequestBuilder,
) -> (Vec<StatusCode>, Option<(u64, Value)>) {
    use futures::StreamExt;
    let answers: Vec<(StatusCode, Option<(u64, Value)>)> =
        futures::stream::iter((0..n).map(|_| req()))
            .map(|r| async move {
                let r = r.send().await.unwrap();
                let status = r.status();
                if status != StatusCode::TOO_MANY_REQUESTS {
                    return (status, None);
                }
                let after: u64 = r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                (status, Some((after, r.json().await.unwrap())))
            })
            .buffered(concurrent)
            .collect()
            .await;
    let first = answers.iter().find_map(|(_, f)| f.clone());
    (answers.into_iter().map(|(s, _)| s).collect(), first)
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
        // Queries take longer to answer, so fewer suffice to outrun their budget; they go one
        // at a time, since a caller's concurrent queries are refused for another reason.
        let (n, concurrent) = if matches!(*class, "query" | "sql") {
            (40, 1)
        } else {
            (300, 16)
        };
        let (statuses, first) = burst(n, concurrent, req).await;
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
    let (statuses, first) = burst(300, 1, from("198.51.100.1", "wrong-token-0123456789")).await;
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
    let (statuses, _) = burst(1, 1, from("198.51.100.1", common::ADMIN)).await;
    assert_eq!(statuses, [StatusCode::TOO_MANY_REQUESTS]);
    let (statuses, _) = burst(1, 1, from("198.51.100.2", common::ADMIN)).await;
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
    let (statuses, _) = burst(300, 1, wrong_key).await;
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

/// A flood of browser events on one publishable key is refused (429) while another
/// advertiser's pages are served; each client address has its own budget beside the key's.
#[tokio::test]
async fn a_flood_on_one_publishable_key_leaves_other_advertisers_served() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        dir.path(),
        &[
            "--rate-browser-key",
            "20",
            "--rate-browser-client",
            "10",
            "--trusted-proxies",
            "127.0.0.1",
        ],
    )
    .await;
    let mut keys = Vec::new();
    for (name, origin) in [
        ("Flooded", "https://a.example"),
        ("Calm", "https://b.example"),
    ] {
        let shop = s
            .shop(name, &format!("{origin}/"), &[&format!("{name} creator")])
            .await;
        let pk = s
            .admin_post(
                &format!(
                    "/api/v1/admin/advertisers/{}/publishable-keys",
                    shop.advertiser
                ),
                json!({"allowed_origins": [origin]}),
            )
            .await;
        keys.push((pk["key"].as_str().unwrap().to_string(), origin, shop));
    }
    s.sync_catalog().await;
    let sent = std::sync::atomic::AtomicUsize::new(0);
    let send = |key: &str, origin: &str, client: String| {
        let n = sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        s.http
            .post(s.url(&format!("/api/v1/browser/events?key={key}")))
            .header("origin", origin)
            .header("content-type", "text/plain")
            .header("x-forwarded-for", client)
            .body(format!(r#"{{"action":"add_to_cart","event_id":"e{n}"}}"#))
    };
    // The flood comes from many addresses, so only the key's own budget runs out; the other
    // advertiser's pages are served all along.
    let (flooded, origin_a, _) = &keys[0];
    let (calm, origin_b, calm_shop) = &keys[1];
    let mut statuses = Vec::new();
    let mut first = None;
    let mut calm_served = 0;
    for i in 0..300 {
        let r = send(flooded, origin_a, format!("203.0.113.{}", i % 100))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS && first.is_none() {
            let after: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let body: Value = r.json().await.unwrap();
            first = Some((after, body));
            statuses.push(StatusCode::TOO_MANY_REQUESTS);
        } else {
            statuses.push(r.status());
        }
        if i % 30 == 29 {
            let r = send(calm, origin_b, format!("198.51.100.{i}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
            calm_served += 1;
        }
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(ok >= 40, "the key's burst is served first ({ok})");
    assert!(limited > 0 && ok + limited == 300, "{statuses:?}");
    let (after, body) = first.unwrap();
    assert!((1..=2).contains(&after), "Retry-After {after}");
    assert_eq!(body["error"], json!("too_many_requests"), "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("browser"),
        "{body}"
    );
    let mut again = Vec::new();
    for i in 0..5 {
        again.push(
            send(flooded, origin_a, format!("198.51.100.{}", 200 + i))
                .send()
                .await
                .unwrap()
                .status(),
        );
    }
    assert!(
        again.contains(&StatusCode::TOO_MANY_REQUESTS),
        "still flooded: {again:?}"
    );
    // One address sending a lot on the calm key runs out of its own budget only.
    let mut from_one = Vec::new();
    for _ in 0..30 {
        from_one.push(
            send(calm, origin_b, "192.0.2.9".into())
                .send()
                .await
                .unwrap()
                .status(),
        );
    }
    assert!(
        from_one.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{from_one:?}"
    );
    let r = send(calm, origin_b, "192.0.2.10".into())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The served events of the calm advertiser are stored, as browser events.
    s.drain().await;
    let rows = s
        .sql(
            &calm_shop.key,
            "SELECT count(*) AS n, min(source) AS source FROM events",
        )
        .await;
    let served = calm_served + from_one.iter().filter(|s| **s == StatusCode::OK).count() + 1;
    assert_eq!(rows[0]["n"], json!(served), "{rows:?}");
    assert_eq!(rows[0]["source"], json!("browser"), "{rows:?}");
    let metrics = common::metrics(&s.http, &s.base).await;
    for class in ["browser", "browser_client"] {
        assert!(
            metrics.contains(&format!(
                "clicktrail_http_rate_limited_total{{class=\"{class}\"}}"
            )),
            "{class} counted"
        );
    }
}
