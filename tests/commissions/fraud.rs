//! Fraud holds over HTTP: a conversion too soon after its click (click injection) and one by
//! the influencer themselves (self-referral) are held for review; the audit shows the rule;
//! an admin approves or rejects.

use super::*;
use crate::ledger::PASSWORD;

#[tokio::test]
async fn click_injection_and_self_referral_are_held_for_review() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let shop = s
        .shop("Fraud shop", "https://shop.example/", &["Carol"])
        .await;
    let carol = shop.influencers[0].clone();
    // The default click-injection threshold (10 s) applies.
    ten_percent(&s, &shop.campaign, 10).await;
    s.admin_post(
        &format!("/api/v1/admin/campaigns/{}/coupons", shop.campaign),
        json!({"influencer_id": carol, "code": "CAROL"}),
    )
    .await;
    s.user(
        "carol@creators.example",
        "influencer",
        json!({"influencer_id": carol}),
        PASSWORD,
    )
    .await;

    let ua = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0";
    let click = click_id(&s.click(&format!("/r/{}", shop.codes[0]), ua).await);
    // 1: converted within milliseconds of its click.
    event(&s, &shop.key, json!({"event_id": "F1-ev", "action": "purchase", "value": "80.00", "currency": "EUR", "order_id": "F1", "click_id": click})).await;
    // 2: the customer is Carol (her login address, any case).
    event(&s, &shop.key, json!({"event_id": "F2-ev", "action": "purchase", "value": "30.00", "currency": "EUR", "order_id": "F2", "coupon_code": "CAROL", "properties": {"email": "Carol@Creators.example"}})).await;
    // 3: an ordinary coupon sale, booked pending.
    event(&s, &shop.key, json!({"action": "purchase", "value": "10.00", "currency": "EUR", "order_id": "F3", "coupon_code": "CAROL", "customer_id": "someone-else"})).await;
    // 4: a click that converts after the threshold is not held.
    let late_click = click_id(&s.click(&format!("/r/{}", shop.codes[0]), ua).await);
    let occurred = (chrono::Utc::now() + chrono::Duration::seconds(11)).to_rfc3339();
    event(&s, &shop.key, json!({"action": "purchase", "value": "50.00", "currency": "EUR", "order_id": "F4", "click_id": late_click, "occurred_at": occurred})).await;
    // 8.00 + 3.00 held; 1.00 + 5.00 pending.
    assert_eq!(
        nonzero(&balances(&s, &carol, "EUR").await),
        json!({"pending": 600, "review": 1100})
    );

    let reviews = s
        .admin_get(&format!("/api/v1/ledger/reviews?influencer_id={carol}"))
        .await;
    let held: Vec<(String, i64, String)> = reviews["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["rule"].as_str().unwrap().to_string(),
                r["amount_minor"].as_i64().unwrap(),
                r["commission_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut rules: Vec<(&str, i64)> = held.iter().map(|(r, a, _)| (r.as_str(), *a)).collect();
    rules.sort();
    assert_eq!(
        rules,
        [("click_injection", 800), ("self_referral", 300)],
        "{reviews}"
    );
    let detail = reviews["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == json!("click_injection"))
        .unwrap()["detail"]
        .clone();
    assert!(detail.as_str().unwrap().contains("under 10 s"), "{detail}");
    // The event's audit shows the commission it booked, the rule that holds it and where it is.
    for (event_id, rule, amount) in [
        ("F1-ev", "click_injection", 800),
        ("F2-ev", "self_referral", 300),
    ] {
        let a = s
            .admin_get(&format!("/api/v1/attribution/{event_id}"))
            .await;
        let c = &a["commission"];
        assert_eq!(
            (
                c["hold_rule"].clone(),
                c["booked_minor"].clone(),
                c["now"].clone()
            ),
            (json!(rule), json!(amount), json!({"review": amount})),
            "{a}"
        );
        assert_eq!(c["influencer_id"], json!(carol));
    }

    // The admin approves the click (it becomes pending, then available) and rejects the
    // self-referral (never paid).
    let id_of = |rule: &str| held.iter().find(|(r, _, _)| r == rule).unwrap().2.clone();
    let (st, v) = admin_try(
        &s,
        &format!(
            "/api/v1/admin/influencers/{carol}/commissions/{}/review",
            id_of("click_injection")
        ),
        json!({"decision": "approve", "note": "checked the order"}),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    admin_try(
        &s,
        &format!(
            "/api/v1/admin/influencers/{carol}/commissions/{}/review",
            id_of("self_referral")
        ),
        json!({"decision": "reject", "note": "own order"}),
    )
    .await;
    assert_eq!(
        nonzero(&balances(&s, &carol, "EUR").await),
        json!({"pending": 1400, "rejected": 300})
    );
    assert!(
        s.admin_get(&format!("/api/v1/ledger/reviews?influencer_id={carol}"))
            .await["reviews"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // The audit trail: each decision is a movement with its note.
    let entries = s
        .admin_get(&format!(
            "/api/v1/ledger/entries?influencer_id={carol}&kind=rejected"
        ))
        .await;
    assert!(
        entries["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["note"] == json!("own order")),
        "{entries}"
    );

    // Bad review input: the field is named, nothing is written.
    let (st, v) = admin_try(
        &s,
        &format!(
            "/api/v1/admin/influencers/{carol}/commissions/{}/review",
            id_of("self_referral")
        ),
        json!({"decision": "maybe"}),
    )
    .await;
    assert_eq!(
        (st, v["fields"][0]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("decision")),
        "{v}"
    );
    let (st, v) = admin_try(
        &s,
        &format!("/api/v1/admin/influencers/{carol}/commissions/nope/review"),
        json!({"decision": "approve"}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, _) = admin_try(
        &s,
        "/api/v1/admin/influencers/inf_unknown/payouts",
        json!({}),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, v) = admin_try(
        &s,
        &format!("/api/v1/admin/influencers/{carol}/payouts"),
        json!({"currency": "EURO"}),
    )
    .await;
    assert_eq!(
        (st, v["fields"][0]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("currency")),
        "{v}"
    );
    let r = s
        .http
        .put(s.url(&format!(
            "/api/v1/admin/campaigns/{}/commission-plan",
            shop.campaign
        )))
        .bearer_auth(ADMIN)
        .json(
            &json!({"rate": {"type": "percent", "basis_points": 20000}, "min_payout": {"XYZ": 5}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    let fields: Vec<&str> = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["rate.basis_points", "min_payout.XYZ"], "{v}");
    // A refund without an order id is refused at the door, naming the field.
    let r = s
        .post_events(&shop.key, &json!({"action": "refund", "currency": "EUR"}))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("order_id"));
}
