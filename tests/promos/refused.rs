//! Bad impression requests: each answered with its documented 4xx naming the field, and none
//! of them stored (the end-to-end test's totals include nothing they sent).

use super::Promos;
use crate::common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn refused(s: &Server, key: &str, body: &str, status: StatusCode, field: &str) {
    s.sync_catalog().await;
    let r = s
        .http
        .post(s.url("/api/v1/promo/impressions"))
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), status, "{body}");
    let v: Value = r.json().await.unwrap();
    let fields: Vec<&str> = v["fields"]
        .as_array()
        .map(|f| f.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        field.is_empty() || fields.contains(&field),
        "{body}: expected {field} in {v}"
    );
}

/// Sends every kind of bad request for offer A; the caller checks afterwards that the totals
/// hold only the good sends.
pub async fn bad_impressions_store_nothing(s: &Server, p: &Promos) {
    let key = &p.shop.key;
    let ok = |var: &str| json!({"offer_id": p.a, "variation_id": var, "newsletter_send_id": "bad", "recipients": 100});
    let with = |k: &str, v: Value| {
        let mut b = ok(&p.a1);
        b[k] = v;
        b.to_string()
    };
    let bad = StatusCode::BAD_REQUEST;
    refused(
        s,
        key,
        &with("offer_id", json!("ofr_nope")),
        bad,
        "offer_id",
    )
    .await;
    refused(
        s,
        key,
        &with("variation_id", json!("var_nope")),
        bad,
        "variation_id",
    )
    .await;
    // Unapproved, and a variation of another offer.
    refused(s, key, &ok(&p.a3).to_string(), bad, "variation_id").await;
    refused(s, key, &ok(&p.b1).to_string(), bad, "variation_id").await;
    refused(s, key, &with("recipients", json!(-5)), bad, "recipients").await;
    refused(s, key, &with("recipients", json!(0)), bad, "recipients").await;
    refused(s, key, &with("recipients", json!("100")), bad, "recipients").await;
    refused(s, key, &with("recipients", json!(1.5)), bad, "recipients").await;
    refused(
        s,
        key,
        &with("newsletter_send_id", json!("")),
        bad,
        "newsletter_send_id",
    )
    .await;
    refused(
        s,
        key,
        &with("newsletter_send_id", json!("x".repeat(129))),
        bad,
        "newsletter_send_id",
    )
    .await;
    refused(s, key, &with("sent_at", json!("yesterday")), bad, "sent_at").await;
    refused(
        s,
        key,
        &with("sent_at", json!("2999-01-01T00:00:00Z")),
        bad,
        "sent_at",
    )
    .await;
    refused(s, key, &with("extra", json!(1)), bad, "").await;
    let mut missing = ok(&p.a1);
    missing
        .as_object_mut()
        .unwrap()
        .remove("newsletter_send_id");
    refused(s, key, &missing.to_string(), bad, "").await;
    refused(s, key, "{\"offer_id\": ", bad, "body").await;
    refused(s, key, "[]", bad, "").await;
    let huge = with("newsletter_send_id", json!("y".repeat(20_000)));
    refused(s, key, &huge, StatusCode::PAYLOAD_TOO_LARGE, "").await;
    refused(
        s,
        "ct_bogus_key",
        &ok(&p.a1).to_string(),
        StatusCode::UNAUTHORIZED,
        "",
    )
    .await;
}
