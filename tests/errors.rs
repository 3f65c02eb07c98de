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
