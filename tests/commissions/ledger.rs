//! The ledger end to end: plan, purchases through click, coupon and code, the hold, a payout
//! requested and paid, a partial refund before payout and a full one after it, and what the
//! influencer's own routes show. Fraud holds are in `fraud.rs`.

use super::*;

/// The password of the test users.
pub const PASSWORD: &str = "correct horse battery staple";

fn purchase(order: &str, value: &str, touch: (&str, &str), n: u32) -> Value {
    let mut e = json!({
        "action": "purchase", "value": value, "currency": "EUR", "order_id": order,
        "customer_id": format!("cust-{n}-secret"),
        "properties": {"email": format!("shopper{n}@private.example")},
    });
    e[touch.0] = json!(touch.1);
    e
}

#[tokio::test]
async fn commissions_are_held_paid_refunded_and_clawed_back_as_written_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let shop = s
        .shop("Ledger shop", "https://shop.example/", &["Alice", "Bob"])
        .await;
    let (alice, bob) = (shop.influencers[0].clone(), shop.influencers[1].clone());
    // Click injection off here: these purchases follow their clicks within milliseconds.
    ten_percent(&s, &shop.campaign, 0).await;
    s.admin_post(
        &format!("/api/v1/admin/campaigns/{}/coupons", shop.campaign),
        json!({"influencer_id": alice, "code": "ALICE10"}),
    )
    .await;
    s.user(
        "alice@creators.example",
        "influencer",
        json!({"influencer_id": alice}),
        PASSWORD,
    )
    .await;
    let alice_session = s.login("alice@creators.example", PASSWORD).await;

    let ua = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0";
    let alice_click = click_id(
        &s.click(&format!("/r/{}/newsletter", shop.codes[0]), ua)
            .await,
    );
    let bob_click = click_id(&s.click(&format!("/r/{}", shop.codes[1]), ua).await);
    // 10 % rounded half to even, in cents:
    // O1 100.00 by Alice's click → 10.00; O2 50.05 by her coupon → 5.005 → 5.00;
    // O3 123.45 by Bob's code → 12.345 → 12.34; O4 20.15 by Bob's click → 2.015 → 2.02.
    event(
        &s,
        &shop.key,
        purchase("O1", "100.00", ("click_id", &alice_click), 1),
    )
    .await;
    event(
        &s,
        &shop.key,
        purchase("O2", "50.05", ("coupon_code", "ALICE10"), 2),
    )
    .await;
    event(
        &s,
        &shop.key,
        purchase("O3", "123.45", ("ref_code", &shop.codes[1]), 3),
    )
    .await;
    event(
        &s,
        &shop.key,
        purchase("O4", "20.15", ("click_id", &bob_click), 4),
    )
    .await;
    assert_eq!(
        nonzero(&balances(&s, &alice, "EUR").await),
        json!({"pending": 1500})
    );
    assert_eq!(
        nonzero(&balances(&s, &bob, "EUR").await),
        json!({"pending": 1436})
    );

    // Within the hold nothing can be requested: the request is recorded with its reason.
    let (st, v) = post_as(&s, &alice_session, "/api/v1/me/payout-requests", json!({})).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let first_request = v["request_id"].as_str().unwrap().to_string();
    let p = payouts_until(&s, &alice, "the early request", |p| !p.is_empty()).await;
    assert_eq!(p[0]["status"], json!("refused"), "{p:?}");
    assert_eq!(p[0]["request_id"], json!(first_request));
    assert_eq!(p[0]["reason"], json!("nothing is available to pay yet"));

    // A partial refund before payout: 40.00 of O3's 123.45 takes back
    // 12.34 × 40.00 / 123.45 = 3.9984 → 4.00 of Bob's commission.
    event(&s, &shop.key, json!({"action": "refund", "order_id": "O3", "value": "40.00", "currency": "EUR", "event_id": "refund-O3-1"})).await;
    // The same refund sent again (same event id) counts once.
    event(&s, &shop.key, json!({"action": "refund", "order_id": "O3", "value": "40.00", "currency": "EUR", "event_id": "refund-O3-1"})).await;
    assert_eq!(
        nonzero(&balances(&s, &bob, "EUR").await),
        json!({"pending": 1036})
    );

    // The hold passes: everything pending becomes available.
    tokio::time::sleep(Duration::from_secs(HOLD_SECS + 1)).await;
    assert_eq!(
        nonzero(&balances(&s, &alice, "EUR").await),
        json!({"available": 1500})
    );
    assert_eq!(
        nonzero(&balances(&s, &bob, "EUR").await),
        json!({"available": 1036})
    );

    // Alice requests her payout; the admin pays it with a reference.
    let (st, _) = post_as(
        &s,
        &alice_session,
        "/api/v1/me/payout-requests",
        json!({"currency": "EUR"}),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let p = payouts_until(&s, &alice, "Alice's request", |p| {
        p.iter().any(|p| p["status"] == json!("requested"))
    })
    .await;
    let payout = p
        .iter()
        .find(|p| p["status"] == json!("requested"))
        .unwrap()
        .clone();
    assert_eq!(payout["amount_minor"], json!(1500), "{payout}");
    assert_eq!(payout["items"], json!(2), "{payout}");
    assert_eq!(
        nonzero(&balances(&s, &alice, "EUR").await),
        json!({"requested": 1500})
    );
    let pid = payout["payout_id"].as_str().unwrap();
    let (st, v) = admin_try(
        &s,
        &format!("/api/v1/admin/influencers/{alice}/payouts/{pid}/paid"),
        json!({"reference": "SEPA-2026-0001"}),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    payouts_until(&s, &alice, "the payment", |p| {
        p.iter().any(|p| p["status"] == json!("paid"))
    })
    .await;
    assert_eq!(
        nonzero(&balances(&s, &alice, "EUR").await),
        json!({"paid": 1500})
    );

    // The admin requests Bob's payout for him; it stays requested.
    let (st, _) = admin_try(
        &s,
        &format!("/api/v1/admin/influencers/{bob}/payouts"),
        json!({}),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    payouts_until(&s, &bob, "Bob's request", |p| {
        p.iter().any(|p| p["status"] == json!("requested"))
    })
    .await;
    assert_eq!(
        nonzero(&balances(&s, &bob, "EUR").await),
        json!({"requested": 1036})
    );

    // O1 refunded in full after its payout: a clawback of 10.00 against Alice's next payout;
    // what was paid stays paid.
    event(
        &s,
        &shop.key,
        json!({"action": "refund", "order_id": "O1", "currency": "EUR"}),
    )
    .await;
    assert_eq!(
        nonzero(&balances(&s, &alice, "EUR").await),
        json!({"available": -1000, "paid": 1500})
    );
    // Nothing to pay while the clawback exceeds what is available.
    let (st, _) = post_as(&s, &alice_session, "/api/v1/me/payout-requests", json!({})).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let p = payouts_until(&s, &alice, "the netted request", |p| {
        p.iter().filter(|p| p["status"] == json!("refused")).count() == 2
    })
    .await;
    assert!(
        p.iter()
            .any(|p| p["reason"] == json!("the available balance is -10.00 EUR after clawbacks")),
        "{p:?}"
    );

    // A new sale (200.00 by coupon → 20.00) nets against the clawback: the next payout is
    // 20.00 − 10.00 = 10.00.
    event(
        &s,
        &shop.key,
        purchase("O5", "200.00", ("coupon_code", "ALICE10"), 5),
    )
    .await;
    assert_eq!(
        nonzero(&balances(&s, &alice, "EUR").await),
        json!({"pending": 2000, "available": -1000, "paid": 1500})
    );
    tokio::time::sleep(Duration::from_secs(HOLD_SECS + 1)).await;
    post_as(&s, &alice_session, "/api/v1/me/payout-requests", json!({})).await;
    let p = payouts_until(&s, &alice, "the netted payout", |p| {
        p.iter().any(|p| p["status"] == json!("requested"))
    })
    .await;
    let netted = p
        .iter()
        .find(|p| p["status"] == json!("requested"))
        .unwrap();
    assert_eq!(netted["amount_minor"], json!(1000), "{netted}");
    assert_eq!(
        nonzero(&balances(&s, &alice, "EUR").await),
        json!({"requested": 1000, "paid": 1500})
    );

    // A refund of an order no one bought goes to dead-letter with its reason.
    event(
        &s,
        &shop.key,
        json!({"action": "refund", "order_id": "NO-SUCH-ORDER", "currency": "EUR"}),
    )
    .await;
    s.drain().await;
    let dl = s.admin_get("/api/v1/admin/dead-letter?limit=1000").await;
    let unknown: Vec<&Value> = dl
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["reason"] == json!("unknown_order"))
        .collect();
    assert_eq!(unknown.len(), 1, "{dl}");
    assert!(
        unknown[0]["detail"]
            .as_str()
            .unwrap()
            .contains("NO-SUCH-ORDER")
    );

    // The payouts CSV has one row per payout with its amount and reference.
    let csv = s
        .admin_text(&format!(
            "/api/v1/ledger/payouts.csv?influencer_id={alice}&status=paid"
        ))
        .await;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(
        lines[0].starts_with("payout_id,influencer_id,advertiser_id,currency,status,amount_minor"),
        "{csv}"
    );
    assert!(
        lines[1].contains(",paid,1500,") && lines[1].contains("SEPA-2026-0001"),
        "{csv}"
    );

    // What Alice sees of herself.
    let (st, body) = as_user(&s, &alice_session, "/api/v1/me/affiliate?period=all").await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let a: Value = serde_json::from_str(&body).unwrap();
    let eur = a["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["currency"] == json!("EUR"))
        .unwrap();
    assert_eq!(
        nonzero(eur),
        json!({"requested": 1000, "paid": 1500}),
        "{a}"
    );
    let (st, conv) = as_user(&s, &alice_session, "/api/v1/me/conversions").await;
    assert_eq!(st, StatusCode::OK);
    let conv: Value = serde_json::from_str(&conv).unwrap();
    let statuses: Vec<(i64, &str)> = conv["conversions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["commission_minor"].as_i64().unwrap(),
                c["status"].as_str().unwrap(),
            )
        })
        .collect();
    // Newest first: O5 (requested), O2 (paid), O1 (paid; its clawback is booked apart).
    assert_eq!(
        statuses,
        [(2000, "requested"), (500, "paid"), (1000, "paid")],
        "{conv}"
    );
    let subs: Vec<Value> = conv["conversions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sub_id"].clone())
        .collect();
    assert_eq!(subs, [Value::Null, Value::Null, json!("newsletter")]);

    // Privacy: nothing an affiliate route answers carries an order id, customer id or e-mail
    // address that the events held.
    let mut seen = String::new();
    for path in [
        "/api/v1/me/affiliate?period=all",
        "/api/v1/me/affiliate?period=7d",
        "/api/v1/me/conversions?limit=200",
        "/api/v1/me/payouts",
        "/api/v1/me/stats/overview?period=all",
        "/api/v1/me/stats/per-sub-id?period=all",
        "/api/v1/me/stats/per-link?period=all",
        "/api/v1/me/stats/chart?period=7d",
        "/api/v1/me",
    ] {
        let (st, body) = as_user(&s, &alice_session, path).await;
        assert_eq!(st, StatusCode::OK, "{path}: {body}");
        seen.push_str(&body);
    }
    for secret in [
        "O1",
        "O2",
        "O5",
        "cust-",
        "secret",
        "@private.example",
        "shopper",
    ] {
        assert!(!seen.contains(secret), "{secret} leaked to the affiliate");
    }
    // And the ledger's own routes are not theirs.
    let (st, _) = as_user(&s, &alice_session, "/api/v1/ledger/entries").await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = as_user(
        &s,
        &alice_session,
        &format!("/api/v1/ledger/balances?influencer_id={bob}"),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}
