//! What an ordinary advertiser key must not be able to do to the server or to other tenants:
//! implausible times and amounts are refused, another advertiser's identifiers never show in
//! one's own rows, and query errors never carry another tenant's data.

mod common;

use common::{Server, click_id};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn sql(s: &Server, key: &str, query: &str) -> (StatusCode, Value) {
    let r = s
        .http
        .post(s.url("/api/v1/sql"))
        .header("x-api-key", key)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

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

/// Every hostile query of the kind an ordinary key can send is refused up front, stopped by a
/// limit, or answered; meanwhile redirects and events keep being answered.
#[tokio::test]
async fn hostile_queries_are_refused_or_stopped_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        dir.path(),
        &[
            "--query-timeout-secs",
            "3",
            "--query-memory-mb",
            "64",
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
            "more memory than the limit of 64 MiB",
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
    let mut served = 0;
    while !long.is_finished() {
        let started = std::time::Instant::now();
        let r = s
            .click(&format!("/r/{}", shop.codes[0]), "Mozilla/5.0 Shopper")
            .await;
        assert_eq!(r.status(), StatusCode::FOUND);
        let r = s.post_events(&shop.key, &json!({"action": "signup"})).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "a redirect and an event took {:?} while the query ran",
            started.elapsed()
        );
        served += 1;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, took, body) = long.await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("longer than 3 s"), "{body}");
    assert!(
        took < std::time::Duration::from_secs(10),
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

async fn admin(
    s: &Server,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = s
        .http
        .request(method, s.url(path))
        .bearer_auth(common::ADMIN);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn works(s: &Server, key: &str) -> bool {
    s.sync_catalog().await;
    match s
        .get_with_key("/api/v1/stats/overview?period=all", key)
        .await
        .status()
    {
        StatusCode::OK => true,
        StatusCode::UNAUTHORIZED => false,
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn a_revoked_key_stays_revoked_and_rotation_overlaps() {
    use reqwest::Method;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let shop = s.shop("R", "https://r.example/", &["R creator"]).await;
    let keys = s
        .admin_get(&format!(
            "/api/v1/admin/advertisers/{}/api-keys",
            shop.advertiser
        ))
        .await;
    let first = keys[0]["id"].as_str().unwrap().to_string();

    // Rotation with the default overlap: both keys work, the old one until a day from now.
    let (status, rotated) = admin(
        &s,
        Method::POST,
        &format!("/api/v1/admin/api-keys/{first}/rotate"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    let until: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(rotated["old_key_revoked_at"].clone()).unwrap();
    let overlap = until - chrono::Utc::now();
    assert!(
        overlap > chrono::Duration::hours(23) && overlap <= chrono::Duration::hours(24),
        "{overlap:?}"
    );
    let second_key = rotated["key"].as_str().unwrap().to_string();
    let second = rotated["id"].as_str().unwrap().to_string();
    assert!(
        works(&s, &shop.key).await,
        "the old key works during the overlap"
    );
    assert!(works(&s, &second_key).await);
    // Rotating the old key again would mint a second live successor: refused.
    let (status, body) = admin(
        &s,
        Method::POST,
        &format!("/api/v1/admin/api-keys/{first}/rotate"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // Revoking it ends the overlap at once, and it stays revoked.
    let (status, _) = admin(
        &s,
        Method::DELETE,
        &format!("/api/v1/admin/api-keys/{first}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!works(&s, &shop.key).await);
    let (status, body) = admin(
        &s,
        Method::POST,
        &format!("/api/v1/admin/api-keys/{first}/rotate"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("stays revoked"),
        "{body}"
    );
    assert!(!works(&s, &shop.key).await);

    // A revoked key is not revived by rotating it; a bad overlap is a field error.
    let (status, _) = admin(
        &s,
        Method::DELETE,
        &format!("/api/v1/admin/api-keys/{second}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = admin(
        &s,
        Method::POST,
        &format!("/api/v1/admin/api-keys/{second}/rotate"),
        Some(json!({"overlap_secs": 0})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(!works(&s, &second_key).await);
    let listed = s
        .admin_get(&format!(
            "/api/v1/admin/advertisers/{}/api-keys",
            shop.advertiser
        ))
        .await;
    assert_eq!(
        listed.as_array().unwrap().len(),
        2,
        "no key was minted: {listed}"
    );
    let fresh = s
        .admin_post(
            &format!("/api/v1/admin/advertisers/{}/api-keys", shop.advertiser),
            json!({}),
        )
        .await;
    let third = fresh["id"].as_str().unwrap();
    let (status, body) = admin(
        &s,
        Method::POST,
        &format!("/api/v1/admin/api-keys/{third}/rotate"),
        Some(json!({"overlap_secs": 9999999})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["fields"][0]["field"], json!("overlap_secs"));
}

/// A signed request replayed within its five-minute window carries the same body, so the
/// same events: each is stored once (by its `event_id`, or the id derived from its content).
#[tokio::test]
async fn a_replayed_signed_request_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let (api_key, secret) = s.advertiser_key("Signed", true).await;
    let (api_key, secret) = (api_key.as_str(), secret.as_str());
    let bodies = [
        r#"{"action":"signup","customer_id":"c-1"}"#,
        r#"{"action":"add_to_cart","event_id":"cart-1","value":"3.50"}"#,
        r#"[{"action":"custom","name":"share"},{"action":"drop_off","customer_id":"c-2"}]"#,
    ];
    for body in bodies {
        let signature = common::sign(secret, chrono::Utc::now().timestamp(), body);
        for attempt in 0..3 {
            let r = s
                .http
                .post(s.url("/api/v1/events"))
                .header("x-api-key", api_key)
                .header("x-clicktrail-signature", &signature)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{body} #{attempt}");
        }
    }
    s.drain().await;
    let (status, rows) = sql(
        &s,
        api_key,
        "SELECT action, count(*) AS n FROM events GROUP BY action ORDER BY action",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rows}");
    assert_eq!(
        rows["rows"],
        json!([
            {"action": "add_to_cart", "n": 1},
            {"action": "custom", "n": 1},
            {"action": "drop_off", "n": 1},
            {"action": "signup", "n": 1},
        ])
    );
}

/// One `serve` run without an admin token given: its stdout and stderr, read until the banner
/// ends, then stopped with SIGINT; returns everything it printed and its address.
struct Run {
    child: std::process::Child,
    base: String,
    printed: std::sync::Arc<std::sync::Mutex<String>>,
}

fn serve_plain(dir: &std::path::Path) -> Run {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_clicktrail"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let printed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    for (stream, tx) in [
        (Box::new(stdout) as Box<dyn std::io::Read + Send>, Some(tx)),
        (Box::new(stderr), None),
    ] {
        let printed = printed.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                printed.lock().unwrap().push_str(&format!("{line}\n"));
                if let (Some(tx), Some(addr)) =
                    (&tx, line.strip_prefix("clicktrail is listening on "))
                {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
    }
    let addr = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .unwrap();
    Run {
        child,
        base: format!("http://{addr}"),
        printed,
    }
}

impl Run {
    fn stop(mut self) -> String {
        std::process::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(self.child.wait().unwrap().success());
        std::thread::sleep(std::time::Duration::from_millis(200));
        self.printed.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn secrets_are_shown_once_and_kept_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let http = reqwest::Client::new();

    let first = serve_plain(&data);
    common::wait_ready(&http, &first.base).await;
    let token = std::fs::read_to_string(data.join("admin-token")).unwrap();
    let adv: Value = http
        .post(format!("{}/api/v1/admin/advertisers", first.base))
        .bearer_auth(&token)
        .json(&json!({"name": "Private", "require_signature": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key: Value = http
        .post(format!(
            "{}/api/v1/admin/advertisers/{}/api-keys",
            first.base,
            adv["id"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let signing_secret = key["signing_secret"].as_str().unwrap().to_string();
    assert!(signing_secret.starts_with("whsec_"), "{key}");
    let first_out = first.stop();

    let second = serve_plain(&data);
    common::wait_ready(&http, &second.base).await;
    // The same secret verifies signatures after the restart.
    let body = r#"{"action":"signup","event_id":"after-restart"}"#;
    let r = http
        .post(format!("{}/api/v1/events", second.base))
        .header("x-api-key", key["key"].as_str().unwrap())
        .header(
            "x-clicktrail-signature",
            common::sign(&signing_secret, chrono::Utc::now().timestamp(), body),
        )
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let second_out = second.stop();

    assert_eq!(
        first_out.matches(token.as_str()).count(),
        1,
        "the token is printed once, when created: {first_out}"
    );
    assert!(first_out.contains("shown this once"), "{first_out}");
    assert!(!second_out.contains(token.as_str()), "{second_out}");
    assert!(
        second_out.contains("admin-token"),
        "says where it is: {second_out}"
    );
    for out in [&first_out, &second_out] {
        assert!(
            !out.contains(&signing_secret),
            "a signing secret was printed: {out}"
        );
    }

    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data directory is private");
    for name in ["admin-token", "click-keys", "visitor-salt", "signing-key"] {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}");
    }
    // No file of the data directory (the log with its catalog topic, the store) holds the
    // signing secret.
    let mut stack = vec![data.clone()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&path).unwrap();
            let needle = signing_secret.as_bytes();
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds the signing secret",
                path.display()
            );
        }
    }
    assert!(
        files >= 5,
        "the log and the store were searched ({files} files)"
    );
}

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
