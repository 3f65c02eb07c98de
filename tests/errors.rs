//! Every refusal is JSON with an error code and a message, the framework's own rejections
//! (bad path or query parameters, a method a route does not take) included.

mod common;

use common::{ADMIN, Server};
use reqwest::{Method, StatusCode};
use serde_json::Value;

#[tokio::test]
async fn every_refusal_is_json() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let shop = s.shop("Errors", "https://e.example/", &["E creator"]).await;
    let cases = [
        (
            Method::GET,
            "/api/v1/admin/dead-letter?limit=-1",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::GET,
            "/api/v1/admin/dead-letter?limit=abc",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::DELETE,
            "/api/v1/stats/overview",
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::PUT,
            "/api/v1/events",
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::POST,
            &format!("/r/{}", shop.codes[0]),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::GET,
            "/api/v1/attribution/%3Cevent_id%3E",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            "/r/no-such-code",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (Method::GET, "/nowhere", StatusCode::NOT_FOUND, "not_found"),
    ];
    for (method, path, status, code) in cases {
        let r = s
            .http
            .request(method.clone(), s.url(path))
            .bearer_auth(ADMIN)
            .header("x-api-key", &shop.key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{method} {path}");
        let allow = r.headers().get("allow").is_some();
        let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(
            content_type.starts_with("application/json"),
            "{method} {path}: {content_type}"
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], code, "{method} {path}: {body}");
        assert!(
            !body["message"].as_str().unwrap().is_empty(),
            "{method} {path}: {body}"
        );
        if status == StatusCode::METHOD_NOT_ALLOWED {
            assert!(allow, "{method} {path}: the Allow header is kept");
        }
    }
}

/// A request head hyper cannot parse (a literal `<` in the path, as when a placeholder is
/// pasted from the docs; a space; a bad method) is answered with the JSON error, and the server
/// keeps serving.
#[tokio::test]
async fn a_malformed_request_line_gets_the_json_error() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    for head in [
        "GET /api/v1/attribution/<event_id> HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /api/v1/stats/overview?period=\"today\" HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
        "G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
    ] {
        let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
        conn.write_all(head.as_bytes()).await.unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).await.unwrap();
        let (status_line, rest) = answer.split_once("\r\n").unwrap();
        assert_eq!(
            status_line, "HTTP/1.1 400 Bad Request",
            "{head:?}: {answer}"
        );
        assert!(
            rest.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{answer}"
        );
        let body: Value = serde_json::from_str(rest.split_once("\r\n\r\n").unwrap().1).unwrap();
        assert_eq!(body["error"], "invalid_request", "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.starts_with("malformed request"), "{body}");
        // The percent-encoding hint only where the request line is at fault.
        assert_eq!(
            message.contains("percent-encoded"),
            !head.contains("Bad Header"),
            "{body}"
        );
    }
    // A head that arrives in pieces is still served.
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    conn.write_all(b"GET /health/li").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    conn.write_all(b"ve HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// An accepted event whose `click_id` or `ref_code` cannot attribute it is stored, and the
/// answer says which and why.
#[tokio::test]
async fn accepted_events_carry_warnings_for_ids_that_will_not_attribute() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let shop = s.shop("Warned", "https://w.example/", &["W creator"]).await;
    let other = s.shop("Other", "https://o.example/", &["O creator"]).await;
    let theirs = common::click_id(
        &s.click(
            &format!("/r/{}", other.codes[0]),
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/127.0",
        )
        .await,
    );
    let mine = common::click_id(
        &s.click(
            &format!("/r/{}", shop.codes[0]),
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/127.0",
        )
        .await,
    );
    let batch = serde_json::json!([
        {"action": "signup", "click_id": "<click_id>"},
        {"action": "signup", "click_id": theirs},
        {"action": "signup", "ref_code": other.codes[0]},
        {"action": "signup", "click_id": mine, "ref_code": shop.codes[0].to_uppercase()},
    ]);
    let r = s.post_events(&shop.key, &batch).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["accepted"], 4, "{body}");
    let warnings = body["warnings"].as_array().unwrap();
    let seen: Vec<(u64, &str)> = warnings
        .iter()
        .map(|w| (w["index"].as_u64().unwrap(), w["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [(0, "click_id"), (1, "click_id"), (2, "ref_code")],
        "{body}"
    );
    assert!(
        warnings[0]["message"]
            .as_str()
            .unwrap()
            .contains("not a click id"),
        "{body}"
    );
    // Nothing to say: no warnings field.
    let r = s
        .post_events(
            &shop.key,
            &serde_json::json!({"action": "signup", "click_id": mine}),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    assert!(body.get("warnings").is_none(), "{body}");
}

/// `wait` is checked like every parameter.
#[tokio::test]
async fn a_bad_wait_is_refused_with_its_field() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    for bad in ["0", "31", "2.5", "soon"] {
        let r = s
            .http
            .get(s.url(&format!("/api/v1/stats/overview?wait={bad}")))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "wait={bad}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["fields"][0]["field"], "wait", "{body}");
    }
    let r = s
        .http
        .get(s.url("/api/v1/stats/overview?wait=2"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-clicktrail-pending"], "0");
    // Without valid credentials nothing waits and nothing about the pipeline is told.
    let started = std::time::Instant::now();
    let r = s
        .http
        .get(s.url("/api/v1/export/events.csv?wait=5"))
        .header("x-api-key", "ct_nokey000_not-a-real-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get("x-clicktrail-pending").is_none());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "it did not wait"
    );
}

/// A campaign's live dates and trailing expiry can be set and cleared again with PATCH
/// (`null` clears; an absent field stays).
#[tokio::test]
async fn patch_sets_and_clears_campaign_dates() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let shop = s.shop("Dated", "https://d.example/", &["D creator"]).await;
    let patch = |body: Value| {
        let url = s.url(&format!("/api/v1/admin/campaigns/{}", shop.campaign));
        let http = s.http.clone();
        async move {
            let r = http
                .patch(url)
                .bearer_auth(ADMIN)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{body}");
            r.json::<Value>().await.unwrap()
        }
    };
    let set = patch(serde_json::json!({"starts_at": "2026-01-01T00:00:00Z", "ends_at": "2027-01-01T00:00:00Z", "trailing_expiry_secs": 3600})).await;
    assert_eq!(set["starts_at"], "2026-01-01T00:00:00Z", "{set}");
    assert_eq!(set["trailing_expiry_secs"], 3600, "{set}");
    let renamed = patch(serde_json::json!({"name": "Still dated"})).await;
    assert_eq!(
        renamed["ends_at"], "2027-01-01T00:00:00Z",
        "absent fields stay: {renamed}"
    );
    // Durations past ten years are refused (they once overflowed the attribution step).
    for body in [
        serde_json::json!({"attribution_window_secs": 9_223_372_036_854_775_807u64}),
        serde_json::json!({"attribution_window_secs": 18_446_744_073_709_551_615u64}),
        serde_json::json!({"trailing_expiry_secs": 18_446_744_073_709_551_615u64}),
    ] {
        let url = s.url(&format!("/api/v1/admin/campaigns/{}", shop.campaign));
        let r = s
            .http
            .patch(url)
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        let answer: Value = r.json().await.unwrap();
        let field = body.as_object().unwrap().keys().next().unwrap().clone();
        assert_eq!(
            answer["fields"][0]["field"],
            Value::String(field),
            "{answer}"
        );
    }
    let cleared = patch(
        serde_json::json!({"starts_at": null, "ends_at": null, "trailing_expiry_secs": null}),
    )
    .await;
    assert!(cleared["starts_at"].is_null(), "{cleared}");
    assert!(cleared["ends_at"].is_null(), "{cleared}");
    assert!(cleared["trailing_expiry_secs"].is_null(), "{cleared}");
    assert_eq!(cleared["name"], "Still dated");
}

/// A browser following an unknown link gets the HTML page, not JSON; an API client gets JSON.
#[tokio::test]
async fn a_browser_gets_the_html_page_for_an_unknown_link() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let r = s
        .http
        .get(s.url("/r/no-such-code"))
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(r.text().await.unwrap().contains("Link not found"));
}
