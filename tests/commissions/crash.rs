//! `kill -9` of the processor while purchases and refunds flow, on the embedded default and on
//! Kafka + ClickHouse: after the restart every influencer's balances, commissions and refunds
//! equal those of an uninterrupted run of the same stream. Refunds follow their purchases a few
//! orders later, so some of them overtake their purchase on the way through the partitions.

use super::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Mutex;

/// Orders in the stream; every second from the sixth on also refunds the order five before it.
const ORDERS: usize = 180;
const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0";

/// What the stream needs of a deployment: the advertiser's key, its influencers and the click
/// id of one landing per influencer.
struct Flow {
    shop: Shop,
    clicks: Vec<String>,
}

async fn prepare(s: &Server) -> Flow {
    let shop = s
        .shop(
            "Crash ledger",
            "https://shop.example/",
            &["Ann", "Ben", "Cy"],
        )
        .await;
    put(
        s,
        &format!("/api/v1/admin/campaigns/{}/commission-plan", shop.campaign),
        json!({"rate": {"type": "percent", "basis_points": 1000}, "hold_secs": 3600, "min_click_secs": 0}),
    )
    .await;
    for (n, inf) in shop.influencers.iter().enumerate() {
        s.admin_post(
            &format!("/api/v1/admin/campaigns/{}/coupons", shop.campaign),
            json!({"influencer_id": inf, "code": format!("CRASH{n}")}),
        )
        .await;
    }
    s.sync_catalog().await;
    let mut clicks = Vec::new();
    for code in &shop.codes {
        clicks.push(click_id(&s.click(&format!("/r/{code}"), UA).await));
    }
    s.drain().await;
    Flow { shop, clicks }
}

/// The events of order `i`: its purchase for influencer `i % 3` through a click, a coupon or a
/// code in turn, and from the sixth order on every second also refunds order `i − 5`, in part
/// (3.33) or in full.
fn batch(i: usize, flow: &Flow) -> Value {
    let inf = i % 3;
    let mut purchase = json!({
        "event_id": format!("p{i}"), "action": "purchase", "order_id": format!("o{i}"),
        "value": format!("{}.{:02}", 20 + i % 40, (i * 7) % 100), "currency": "EUR",
        "customer_id": format!("customer-{i}"),
    });
    match (i / 3) % 3 {
        0 => purchase["click_id"] = json!(flow.clicks[inf]),
        1 => purchase["coupon_code"] = json!(format!("CRASH{inf}")),
        _ => purchase["ref_code"] = json!(flow.shop.codes[inf]),
    }
    let mut events = vec![purchase];
    if i >= 6 && i.is_multiple_of(2) {
        let mut refund = json!({"event_id": format!("r{i}"), "action": "refund",
            "order_id": format!("o{}", i - 5), "currency": "EUR"});
        if i.is_multiple_of(4) {
            refund["value"] = json!("3.33");
        }
        events.push(refund);
    }
    Value::Array(events)
}

/// Sends every batch in turn to whatever `base` holds, each until it is acknowledged (a batch
/// sent again after a failure counts once: the events carry their ids); counts them in `sent`.
async fn stream(
    base: Arc<Mutex<String>>,
    key: String,
    batches: Vec<Value>,
    sent: Arc<AtomicUsize>,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for body in batches {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let url = format!("{}/api/v1/events", base.lock().await);
            let r = http
                .post(url)
                .header("x-api-key", &key)
                .json(&body)
                .send()
                .await;
            if r.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(Instant::now() < deadline, "never acknowledged: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        sent.fetch_add(1, Ordering::SeqCst);
    }
}

/// Per influencer, in the order of the shop's influencers: balances by status, the number of
/// commissions booked (and of distinct ones) and the minor units refunded.
async fn figures(s: &Server, flow: &Flow) -> Vec<Value> {
    s.drain().await;
    let mut out = Vec::new();
    for inf in &flow.shop.influencers {
        let b = nonzero(&balances(s, inf, "EUR").await);
        let e = s
            .admin_get(&format!(
                "/api/v1/ledger/entries?influencer_id={inf}&limit=1000"
            ))
            .await;
        let entries = e["entries"].as_array().unwrap();
        let booked: Vec<&str> = entries
            .iter()
            .filter(|e| e["kind"] == json!("commission"))
            .map(|e| e["commission_id"].as_str().unwrap())
            .collect();
        let distinct: std::collections::BTreeSet<&str> = booked.iter().copied().collect();
        let refunded: i64 = entries
            .iter()
            .filter(|e| e["kind"] == json!("refund"))
            .map(|e| e["amount_minor"].as_i64().unwrap())
            .sum();
        out.push(json!({"balances": b, "commissions": booked.len(),
            "distinct_commissions": distinct.len(), "refunded_minor": refunded}));
    }
    out
}

/// The stream without interruption; checks that every order earned its commission.
async fn reference(s: &Server) -> Vec<Value> {
    let flow = prepare(s).await;
    let base = Arc::new(Mutex::new(s.base.clone()));
    let batches = (0..ORDERS).map(|i| batch(i, &flow)).collect();
    stream(base, flow.shop.key.clone(), batches, Arc::default()).await;
    let want = figures(s, &flow).await;
    for f in &want {
        assert_eq!(f["commissions"], json!(ORDERS / 3), "{want:?}");
        assert!(f["refunded_minor"].as_i64().unwrap() < 0, "{want:?}");
    }
    want
}

/// Starts the stream on `s` and waits until half of it was acknowledged.
async fn half_way(s: &Server, flow: &Flow) -> (Arc<Mutex<String>>, tokio::task::JoinHandle<()>) {
    let base = Arc::new(Mutex::new(s.base.clone()));
    let sent = Arc::new(AtomicUsize::new(0));
    let batches = (0..ORDERS).map(|i| batch(i, flow)).collect();
    let task = tokio::spawn(stream(
        base.clone(),
        flow.shop.key.clone(),
        batches,
        sent.clone(),
    ));
    while sent.load(Ordering::SeqCst) < ORDERS / 2 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    (base, task)
}

#[tokio::test]
async fn kill_9_while_purchases_and_refunds_flow_books_each_commission_once_embedded() {
    let ref_dir = tempfile::tempdir().unwrap();
    let want = reference(&Server::start(ref_dir.path()).await).await;

    let dir = tempfile::tempdir().unwrap();
    let mut first = Server::start(dir.path()).await;
    let flow = prepare(&first).await;
    let (base, task) = half_way(&first, &flow).await;
    first.kill9();
    let second = Server::start(dir.path()).await;
    *base.lock().await = second.base.clone();
    task.await.unwrap();
    assert_eq!(figures(&second, &flow).await, want);
}

#[tokio::test]
async fn kill_9_of_the_processor_while_purchases_and_refunds_flow_books_each_commission_once_on_kafka_and_clickhouse()
 {
    let Some(svc) = common::services() else {
        return;
    };
    let db = |t: &str| format!("{t}_{}", std::process::id());
    let ref_dir = tempfile::tempdir().unwrap();
    let want = reference(&Server::cluster(ref_dir.path(), &svc, &db("ledgerref")).await).await;

    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::cluster(dir.path(), &svc, &db("ledgerkill")).await;
    let flow = prepare(&s).await;
    let (_, task) = half_way(&s, &flow).await;
    s.proc_mut("processor").kill9();
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.proc_mut("processor").restart().await;
    task.await.unwrap();
    assert_eq!(figures(&s, &flow).await, want);
}
