//! The affiliate programme over HTTP, on the embedded default: commission plans, the ledger's
//! hold, payouts, refunds before and after payment (with clawbacks), fraud holds, the `/ref/…`
//! landing and what affiliates may see. Every balance is compared with figures worked out by
//! hand in the comments.

#[path = "../common/mod.rs"]
mod common;
mod crash;
mod fraud;
mod ledger;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Hold period of the test plans, seconds: short enough to wait for.
pub const HOLD_SECS: u64 = 4;

/// A PUT with the admin token (2xx expected); answers the body.
pub async fn put(s: &Server, path: &str, body: Value) -> Value {
    let r = s
        .http
        .put(s.url(path))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

/// Sends one event (2xx expected).
pub async fn event(s: &Server, key: &str, e: Value) {
    let r = s.post_events(key, &e).await;
    assert!(r.status().is_success(), "{e}: {}", r.text().await.unwrap());
}

/// A 10 % plan with a short hold on `campaign`; `min_click_secs` 0 turns click injection off.
pub async fn ten_percent(s: &Server, campaign: &str, min_click_secs: u64) {
    put(
        s,
        &format!("/api/v1/admin/campaigns/{campaign}/commission-plan"),
        json!({"rate": {"type": "percent", "basis_points": 1000}, "hold_secs": HOLD_SECS,
               "min_click_secs": min_click_secs, "min_payout": {"EUR": 100}}),
    )
    .await;
    s.sync_catalog().await;
}

/// An influencer's balances in `currency` as `{status: amount}`, as the admin sees them.
pub async fn balances(s: &Server, influencer: &str, currency: &str) -> Value {
    s.drain().await;
    let b = s
        .admin_get(&format!(
            "/api/v1/ledger/balances?influencer_id={influencer}"
        ))
        .await;
    b["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["currency"] == json!(currency))
        .cloned()
        .unwrap_or(json!({}))
}

/// The non-zero statuses of a balance row.
pub fn nonzero(b: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for s in [
        "pending",
        "available",
        "review",
        "requested",
        "paid",
        "rejected",
    ] {
        if let Some(v) = b.get(s).and_then(Value::as_i64).filter(|v| *v != 0) {
            out.insert(s.into(), json!(v));
        }
    }
    Value::Object(out)
}

/// Waits until `f` holds of the influencer's payouts (admin view); returns them.
pub async fn payouts_until(
    s: &Server,
    influencer: &str,
    what: &str,
    f: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        s.drain().await;
        let p = s
            .admin_get(&format!(
                "/api/v1/ledger/payouts?influencer_id={influencer}"
            ))
            .await["payouts"]
            .as_array()
            .unwrap()
            .clone();
        if f(&p) {
            return p;
        }
        assert!(Instant::now() < deadline, "{what}: {p:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A GET with a session's bearer token.
pub async fn as_user(s: &Server, session: &Session, path: &str) -> (StatusCode, String) {
    let r = s
        .http
        .get(s.url(path))
        .bearer_auth(&session.token)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

/// A POST with a session's bearer token.
pub async fn post_as(
    s: &Server,
    session: &Session,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let r = s
        .http
        .post(s.url(path))
        .bearer_auth(&session.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A POST with the admin token, answering any status.
pub async fn admin_try(s: &Server, path: &str, body: Value) -> (StatusCode, Value) {
    let r = s
        .http
        .post(s.url(path))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn landing_cookies_and_code_validation() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let shop = s.shop("Landing", "https://shop.example/", &["Ann"]).await;
    put(
        &s,
        &format!("/api/v1/admin/campaigns/{}/commission-plan", shop.campaign),
        json!({"rate": {"type": "flat", "currency": "EUR", "purchase_minor": 500}, "cookie_secs": 172800}),
    )
    .await;
    s.sync_catalog().await;
    let code = &shop.codes[0];

    // The landing sets the attribution cookie for the plan's 2 days and the 24 h visitor
    // cookie; the redirect carries the same click id as the cookie.
    let r = s
        .click(
            &format!("/ref/{code}/spring"),
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        )
        .await;
    let id = click_id(&r);
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let ref_cookie = cookies
        .iter()
        .find(|c| c.starts_with("ct_ref="))
        .expect("ct_ref");
    assert!(
        ref_cookie.starts_with(&format!("ct_ref={id};")),
        "{ref_cookie}"
    );
    assert!(ref_cookie.contains("Max-Age=172800"), "{ref_cookie}");
    assert!(
        !ref_cookie.contains("HttpOnly"),
        "the site's own scripts read it: {ref_cookie}"
    );
    let vid = cookies
        .iter()
        .find(|c| c.starts_with("ct_vid="))
        .expect("ct_vid");
    assert!(
        vid.contains("Max-Age=86400") && vid.contains("HttpOnly"),
        "{vid}"
    );
    // A plain redirect sets no attribution cookie.
    let r = s
        .click(
            &format!("/r/{code}"),
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0",
        )
        .await;
    assert!(
        r.headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("ct_ref="))
    );

    // A repeat visit with the visitor cookie is the same visitor: one unique click of two.
    let visitor = vid.split(';').next().unwrap().to_string();
    let ua = "Mozilla/5.0 (Macintosh) Safari/605";
    for _ in 0..2 {
        let r = s
            .http
            .get(s.url(&format!("/ref/{code}")))
            .header("user-agent", ua)
            .header("cookie", &visitor)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FOUND);
    }
    s.drain().await;
    let o = s
        .get_with_key("/api/v1/stats/overview?period=all", &shop.key)
        .await
        .json::<Value>()
        .await
        .unwrap();
    // The first landing, the plain redirect (another visitor) and two repeats of the first.
    assert_eq!(o["clicks"], json!(4), "{o}");
    assert_eq!(o["unique_clicks"], json!(2), "{o}");

    // Validation for a checkout.
    let coupon = s
        .admin_post(
            &format!("/api/v1/admin/campaigns/{}/coupons", shop.campaign),
            json!({"influencer_id": shop.influencers[0], "code": "ANN10"}),
        )
        .await;
    let coupon_id = coupon[0]["id"]
        .as_str()
        .expect("the coupon's id")
        .to_string();
    s.sync_catalog().await;
    let check = |code: &str| {
        let code = code.to_string();
        let s = &s;
        let key = shop.key.clone();
        async move {
            let r = s
                .get_with_key(&format!("/api/v1/affiliate/validate?code={code}"), &key)
                .await;
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()
        }
    };
    let v = check(code).await;
    assert_eq!(
        (v["valid"].clone(), v["kind"].clone()),
        (json!(true), json!("link")),
        "{v}"
    );
    assert_eq!(v["influencer_name"], json!("Ann"));
    let v = check("ann10").await;
    assert_eq!(
        (v["valid"].clone(), v["kind"].clone()),
        (json!(true), json!("coupon")),
        "{v}"
    );
    let v = check("NOPE").await;
    assert_eq!(
        (v["valid"].clone(), v["reason"].clone()),
        (json!(false), json!("unknown")),
        "{v}"
    );
    s.admin_post(
        &format!("/api/v1/admin/coupons/{coupon_id}/invalidate"),
        json!({}),
    )
    .await;
    s.sync_catalog().await;
    let v = check("ANN10").await;
    assert_eq!(
        (v["valid"].clone(), v["reason"].clone()),
        (json!(false), json!("inactive")),
        "{v}"
    );
    // Another advertiser's key does not see this advertiser's codes; no key is 401.
    let other = s.shop("Other", "https://other.example/", &[]).await;
    s.sync_catalog().await;
    let r = s
        .get_with_key(
            &format!("/api/v1/affiliate/validate?code={code}"),
            &other.key,
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["reason"], json!("unknown"));
    let r = s
        .http
        .get(s.url("/api/v1/affiliate/validate?code=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = s
        .get_with_key("/api/v1/affiliate/validate", &shop.key)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}
