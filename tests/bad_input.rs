//! Bad input never crashes anything: each case gets its documented status and a message that
//! names the field, and the server keeps serving.

mod common;

use common::{ADMIN, Server, sign};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn raw(
    s: &Server,
    key: Option<&str>,
    body: &str,
    extra: &[(&str, String)],
) -> (StatusCode, Value) {
    let mut req = s
        .http
        .post(s.url("/api/v1/events"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    for (h, v) in extra {
        req = req.header(*h, v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn fields(v: &Value) -> Vec<String> {
    v["fields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| f["field"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let (key, _) = s.advertiser_key("Shop", false).await;

    // Malformed JSON.
    let (st, v) = raw(&s, Some(&key), "{\"action\": \"purchase\",", &[]).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], json!("invalid_request"));
    assert_eq!(fields(&v), vec!["body"]);
    assert!(
        v["message"].as_str().unwrap().contains("malformed JSON"),
        "{v}"
    );

    // Wrong types and missing fields, all reported at once.
    let (st, v) = raw(
        &s,
        Some(&key),
        r#"{"value": true, "currency": 5, "customer_id": ["x"], "occurred_at": 12}"#,
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let f = fields(&v);
    for want in ["action", "value", "currency", "customer_id", "occurred_at"] {
        assert!(f.contains(&want.to_string()), "{want} in {f:?}");
    }
    assert!(
        v["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["message"] == json!("expected a number, got a boolean")),
        "{v}"
    );

    // Batch errors name the event.
    let (st, v) = raw(
        &s,
        Some(&key),
        r#"[{"action": "signup"}, {"action": "purchase", "value": "9.999"}, {"action": "refund"}, {"action": "chargeback"}]"#,
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(
        fields(&v),
        vec!["events[1].value", "events[2].order_id", "events[3].action"]
    );
    assert_eq!(
        v["fields"][0]["message"],
        json!("expected at most 2 decimal places")
    );

    // A purchase needs a value; the future is refused; unknown currencies are refused.
    let (_, v) = raw(&s, Some(&key), r#"{"action": "purchase", "value": 0}"#, &[]).await;
    assert_eq!(
        v["fields"][0]["message"],
        json!("a purchase needs a value above zero")
    );
    let (_, v) = raw(
        &s,
        Some(&key),
        r#"{"action": "signup", "occurred_at": "2999-01-01T00:00:00Z"}"#,
        &[],
    )
    .await;
    assert_eq!(fields(&v), vec!["occurred_at"]);
    let (_, v) = raw(
        &s,
        Some(&key),
        r#"{"action": "purchase", "value": 5, "currency": "XXQ"}"#,
        &[],
    )
    .await;
    assert_eq!(fields(&v), vec!["currency"]);

    // Oversize body and oversize batch.
    let big = format!(
        "{{\"action\": \"signup\", \"properties\": {{\"pad\": \"{}\"}}}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let (st, v) = raw(&s, Some(&key), &big, &[]).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(v["error"], json!("payload_too_large"));
    let many = serde_json::to_string(&vec![json!({"action": "signup"}); 1001]).unwrap();
    let (st, _) = raw(&s, Some(&key), &many, &[]).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);

    // Missing and wrong keys.
    let (st, v) = raw(&s, None, r#"{"action": "signup"}"#, &[]).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(v["message"].as_str().unwrap().contains("X-API-KEY"));
    let (st, _) = raw(
        &s,
        Some("ct_nope1234_notakey"),
        r#"{"action": "signup"}"#,
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = raw(&s, Some(&format!("{key}x")), r#"{"action": "signup"}"#, &[]).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // Signatures, for an advertiser that requires them.
    let (skey, secret) = s.advertiser_key("Shop", true).await;
    let body = r#"{"action": "signup", "event_id": "signed-1"}"#;
    let now = chrono::Utc::now().timestamp();
    let (st, v) = raw(&s, Some(&skey), body, &[]).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("requires signed requests"),
        "{v}"
    );
    let (st, _) = raw(
        &s,
        Some(&skey),
        body,
        &[("x-clicktrail-signature", sign("wrong-secret", now, body))],
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, v) = raw(
        &s,
        Some(&skey),
        body,
        &[("x-clicktrail-signature", sign(&secret, now - 600, body))],
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(
        v["message"].as_str().unwrap().contains("300 seconds"),
        "{v}"
    );
    let (st, _) = raw(
        &s,
        Some(&skey),
        &body.replace("signup", "drop_off"),
        &[("x-clicktrail-signature", sign(&secret, now, body))],
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "a signature covers the body");
    let (st, v) = raw(
        &s,
        Some(&skey),
        body,
        &[("x-clicktrail-signature", sign(&secret, now, body))],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    // Unknown codes and routes.
    let r = s.click("/r/zzzzzzzz", "Mozilla/5.0").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = s
        .http
        .post(s.url("/event/chargeback"))
        .header("x-api-key", &key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = s.http.post(s.url("/r/abc")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);

    // The admin API: no token, wrong token, invalid fields, unknown ids.
    let r = s
        .http
        .post(s.url("/api/v1/admin/advertisers"))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = s
        .http
        .get(s.url("/api/v1/admin/advertisers"))
        .bearer_auth("wrong-token-wrong-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let adv = s
        .admin_post("/api/v1/admin/advertisers", json!({"name": "Other"}))
        .await;
    let r = s
        .http
        .post(s.url(&format!(
            "/api/v1/admin/advertisers/{}/campaigns",
            adv["id"].as_str().unwrap()
        )))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "", "destination_url": "ftp://x", "attribution_window_secs": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        fields(&v),
        vec!["name", "destination_url", "attribution_window_secs"]
    );
    let r = s
        .http
        .post(s.url("/api/v1/admin/advertisers"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": 7}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(fields(&v), vec!["name"], "{v}");
    let r = s
        .http
        .post(s.url("/api/v1/admin/links"))
        .bearer_auth(ADMIN)
        .json(&json!({"campaign_id": "cmp_nope", "influencer_id": "inf_nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = s
        .http
        .get(s.url("/api/v1/stats/overview?period=yesterday"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Still serving: ready, and a good event goes through to the store.
    assert_eq!(
        s.http
            .get(s.url("/health/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let (st, _) = raw(
        &s,
        Some(&key),
        r#"{"action": "signup", "event_id": "after"}"#,
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    s.drain().await;
    let o = s.admin_get("/api/v1/stats/overview?period=all").await;
    assert_eq!(
        o["signups"],
        json!(2),
        "the signed signup and the last one; nothing refused was stored: {o}"
    );
}
