//! Webhooks and postbacks against a local receiver: the receiver refuses the first deliveries,
//! and every message still arrives, signed with the endpoint's secret, after retries that back
//! off, each attempt in the delivery log; a postback carries every macro URL-encoded; a
//! `kill -9` while a delivery is in flight loses nothing (it is delivered after the restart,
//! with the same idempotency id); a replay arrives again under that id, marked as a replay.

mod common;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use common::{ADMIN, Server, click_id, sign};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

const SHOPPER: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Got {
    at: Instant,
    path: String,
    query: String,
    headers: HeaderMap,
    body: String,
    answered: u16,
}

#[derive(Default)]
struct Receiver {
    got: Vec<Got>,
    /// Webhook requests still to refuse with 503.
    refuse: usize,
    /// Holds each webhook request this long before answering.
    hold: Option<Duration>,
}

type Shared = Arc<Mutex<Receiver>>;

async fn receive(
    state: axum::extract::State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let path = uri.path().to_string();
    let hold = {
        let mut r = state.lock().await;
        let answered = if path == "/hook" && r.refuse > 0 {
            r.refuse -= 1;
            503
        } else {
            200
        };
        r.got.push(Got {
            at: Instant::now(),
            path: path.clone(),
            query: uri.query().unwrap_or_default().to_string(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            answered,
        });
        if answered == 503 {
            return (StatusCode::SERVICE_UNAVAILABLE, "try later");
        }
        if path == "/hook" { r.hold } else { None }
    };
    if let Some(h) = hold {
        tokio::time::sleep(h).await;
    }
    (StatusCode::OK, "ok")
}

async fn receiver() -> (String, Shared) {
    let shared: Shared = Arc::default();
    let app = Router::new().fallback(receive).with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, shared)
}

/// Waits (at most 60 s) until `done` holds of what the receiver got.
async fn until(r: &Shared, what: &str, done: impl Fn(&[Got]) -> bool) -> Vec<Got> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = r.lock().await.got.clone();
        if done(&got) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {got:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn id_of(g: &Got) -> String {
    g.headers["idempotency-key"].to_str().unwrap().to_string()
}

fn delivered(got: &[Got], message: &str) -> bool {
    got.iter()
        .any(|g| g.path == "/hook" && g.answered == 200 && id_of(g) == message)
}

/// The message ids of the webhook bodies of `event_id`.
fn message_of(got: &[Got], event_id: &str) -> Option<String> {
    got.iter().filter(|g| g.path == "/hook").find_map(|g| {
        let body: Value = serde_json::from_str(&g.body).ok()?;
        (body["data"]["event_id"] == json!(event_id))
            .then(|| body["id"].as_str().unwrap().to_string())
    })
}

async fn log(s: &Server, key: &str, query: &str) -> Vec<Value> {
    let v: Value = s
        .get_with_key(&format!("/api/v1/deliveries?{query}"), key)
        .await
        .json()
        .await
        .unwrap();
    v["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .clone()
}

/// Fast retries for the test: 300 ms, 600 ms, 1.2 s, …
const ARGS: [&str; 4] = [
    "--webhook-retry-base-ms",
    "300",
    "--webhook-timeout-secs",
    "10",
];

#[tokio::test]
async fn webhooks_and_postbacks_arrive_signed_retried_and_replayable() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &ARGS).await;
    scenario(s, Kill::Serve(dir.path())).await;
}

#[tokio::test]
async fn webhooks_and_postbacks_on_kafka_and_clickhouse() {
    let Some(svc) = common::services() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("hooks_{}", std::process::id());
    let s = Server::cluster_with(dir.path(), &svc, &db, &ARGS).await;
    scenario(s, Kill::Processor).await;
}

/// What is killed mid-delivery: `serve` (then started again on its data), or the processor
/// of a deployment of roles (then restarted).
enum Kill<'a> {
    Serve(&'a std::path::Path),
    Processor,
}

async fn scenario(mut s: Server, kill: Kill<'_>) {
    let (base, r) = receiver().await;
    r.lock().await.refuse = 3;

    let shop = s
        .shop(
            "Hooked shop",
            "https://shop.example/landing",
            &["Ana", "Ben"],
        )
        .await;
    let hook = s
        .admin_post(
            &format!("/api/v1/admin/advertisers/{}/webhooks", shop.advertiser),
            json!({"url": format!("{base}/hook"), "events": ["conversion.attributed", "conversion.unattributed"]}),
        )
        .await;
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{hook}");
    let postback = s
        .admin_post(
        &format!("/api/v1/admin/advertisers/{}/postbacks", shop.advertiser),
        json!({"campaign_id": shop.campaign, "url": format!("{base}/pb?c={{click_id}}&s={{sub_id}}&e={{event_id}}&a={{action}}&v={{amount}}&cur={{currency}}")}),
    )
    .await;
    // A template with an unknown macro is refused, naming it.
    let bad = s
        .http
        .post(s.url(&format!(
            "/api/v1/admin/advertisers/{}/postbacks",
            shop.advertiser
        )))
        .bearer_auth(ADMIN)
        .json(&json!({"url": format!("{base}/pb?x={{clickid}}")}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let bad: Value = bad.json().await.unwrap();
    assert!(
        bad["fields"][0]["message"]
            .as_str()
            .unwrap()
            .contains("{clickid}"),
        "{bad}"
    );

    // Commissions of 10 % held one second; a second endpoint hears when they become available.
    let hook2 = s
        .admin_post(
            &format!("/api/v1/admin/advertisers/{}/webhooks", shop.advertiser),
            json!({"url": format!("{base}/hook2"), "events": ["commission.available"]}),
        )
        .await;
    let plan = s
        .http
        .put(s.url(&format!(
            "/api/v1/admin/campaigns/{}/commission-plan",
            shop.campaign
        )))
        .bearer_auth(ADMIN)
        .json(&json!({"rate": {"type": "percent", "basis_points": 1000}, "hold_secs": 1, "min_click_secs": 0}))
        .send()
        .await
        .unwrap();
    assert!(plan.status().is_success(), "{:?}", plan.text().await);
    s.sync_catalog().await;

    // Ben's shopper buys; someone nobody referred signs up; an add to cart is no conversion.
    let click = click_id(&s.click(&format!("/r/{}", shop.codes[1]), SHOPPER).await);
    let r1 = s
        .post_events(
            &shop.key,
            &json!([
                {"event_id": "buy-1", "action": "purchase", "order_id": "o-1", "value": "49.90", "currency": "EUR", "click_id": click, "sub_id": "net 1&x/ü"},
                {"event_id": "join-1", "action": "signup", "customer_id": "c-9"},
                {"event_id": "cart-1", "action": "add_to_cart", "click_id": click},
            ]),
        )
        .await;
    assert_eq!(r1.status(), StatusCode::OK);

    // Both conversions arrive, after the first three webhook requests were refused.
    let got = until(&r, "both conversions", |got| {
        ["buy-1", "join-1"]
            .iter()
            .all(|e| message_of(got, e).is_some_and(|m| delivered(got, &m)))
    })
    .await;
    let hooks: Vec<&Got> = got.iter().filter(|g| g.path == "/hook").collect();
    assert!(
        hooks.iter().filter(|g| g.answered == 503).count() == 3,
        "{hooks:#?}"
    );
    for g in &hooks {
        // Every request is signed over its timestamp and body with the endpoint's secret.
        let sig = g.headers["x-clicktrail-signature"].to_str().unwrap();
        let t: i64 = sig
            .strip_prefix("t=")
            .and_then(|rest| rest.split(',').next())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(sig, sign(&secret, t, &g.body), "signature of {}", g.body);
        let body: Value = serde_json::from_str(&g.body).unwrap();
        assert_eq!(body["id"].as_str().unwrap(), id_of(g));
    }
    assert!(
        message_of(&got, "cart-1").is_none(),
        "an add to cart is no conversion"
    );
    let buy = message_of(&got, "buy-1").unwrap();
    let body: Value =
        serde_json::from_str(&hooks.iter().find(|g| id_of(g) == buy).unwrap().body).unwrap();
    assert_eq!(body["type"], json!("conversion.attributed"), "{body}");
    assert_eq!(body["data"]["influencer_id"], json!(shop.influencers[1]));
    assert_eq!(body["data"]["value_minor"], json!(4990));
    assert_eq!(body["data"]["amount"], json!("49.90"));
    let join = message_of(&got, "join-1").unwrap();
    let joined = hooks.iter().find(|g| id_of(g) == join).unwrap();
    assert!(
        joined.body.contains("\"conversion.unattributed\""),
        "{}",
        joined.body
    );

    // Retries back off: each wait before a retry of one message is longer than the last.
    let mut by_message: std::collections::BTreeMap<String, Vec<Instant>> = Default::default();
    for g in &hooks {
        by_message.entry(id_of(g)).or_default().push(g.at);
    }
    let retried = by_message
        .values()
        .filter(|a| a.len() >= 3)
        .collect::<Vec<_>>();
    assert!(!retried.is_empty(), "{by_message:?}");
    for attempts in retried {
        let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
        eprintln!("figure: gaps between attempts {gaps:?}");
        assert!(gaps[0] >= Duration::from_millis(250), "{gaps:?}");
        for w in gaps.windows(2) {
            assert!(w[1] > w[0], "each retry waits longer: {gaps:?}");
        }
    }

    // The postback: once, for the credited purchase only, every macro URL-encoded.
    // The purchase's commission, once its hold ended: announced, signed with that endpoint's
    // secret.
    let got = until(&r, "commission.available", |got| {
        got.iter().any(|g| g.path == "/hook2")
    })
    .await;
    let available = got.iter().find(|g| g.path == "/hook2").unwrap();
    let body: Value = serde_json::from_str(&available.body).unwrap();
    assert_eq!(body["type"], json!("commission.available"), "{body}");
    assert_eq!(body["data"]["amount_minor"], json!(499), "{body}");
    assert_eq!(body["data"]["currency"], json!("EUR"), "{body}");
    assert_eq!(body["data"]["influencer_id"], json!(shop.influencers[1]));
    let sig = available.headers["x-clicktrail-signature"]
        .to_str()
        .unwrap();
    let t: i64 = sig[2..sig.find(',').unwrap()].parse().unwrap();
    assert_eq!(
        sig,
        sign(hook2["secret"].as_str().unwrap(), t, &available.body)
    );
    let pbs: Vec<&Got> = got.iter().filter(|g| g.path == "/pb").collect();
    assert_eq!(pbs.len(), 1, "{pbs:#?}");
    assert_eq!(
        pbs[0].query,
        format!("c={click}&s=net%201%26x%2F%C3%BC&e=buy-1&a=purchase&v=49.90&cur=EUR")
    );

    // The log shows each attempt of the purchase's webhook with what was answered.
    let deadline = Instant::now() + Duration::from_secs(30);
    let rows = loop {
        let rows = log(
            &s,
            &shop.key,
            &format!(
                "message_id={buy}&target_id={}",
                hook["id"].as_str().unwrap()
            ),
        )
        .await;
        if rows.iter().any(|r| r["outcome"] == json!("delivered")) || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let requests = hooks.iter().filter(|g| id_of(g) == buy).count();
    assert_eq!(rows.len(), requests, "one log row per attempt: {rows:#?}");
    let mut attempts: Vec<(i64, Value, Value)> = rows
        .iter()
        .map(|r| {
            (
                r["attempt"].as_i64().unwrap(),
                r["status"].clone(),
                r["outcome"].clone(),
            )
        })
        .collect();
    attempts.sort_by_key(|a| a.0);
    assert_eq!(attempts.last().unwrap().1, json!(200));
    assert_eq!(attempts.last().unwrap().2, json!("delivered"));
    for a in &attempts[..attempts.len() - 1] {
        assert_eq!(
            (&a.1, &a.2),
            (&json!(503), &json!("retrying")),
            "{attempts:?}"
        );
    }
    // Another advertiser's key sees none of it.
    let (other_key, _) = s.advertiser_key("Other shop", false).await;
    assert!(log(&s, &other_key, "").await.is_empty());

    // kill -9 while a delivery is in flight: it arrives after the restart, same id.
    r.lock().await.hold = Some(Duration::from_secs(5));
    let r2 = s
        .post_events(
            &shop.key,
            &json!({"event_id": "buy-2", "action": "purchase", "order_id": "o-2", "value": "5.00", "currency": "EUR", "click_id": click}),
        )
        .await;
    assert_eq!(r2.status(), StatusCode::OK);
    let got = until(&r, "the held delivery", |got| {
        message_of(got, "buy-2").is_some()
    })
    .await;
    let held = message_of(&got, "buy-2").unwrap();
    match kill {
        Kill::Serve(dir) => {
            s.kill9();
            r.lock().await.hold = None;
            drop(s);
            s = Server::start_with(dir, &ARGS).await;
        }
        Kill::Processor => {
            s.proc_mut("processor").kill9();
            r.lock().await.hold = None;
            s.proc_mut("processor").restart().await;
        }
    }
    let got = until(&r, "the delivery after the restart", |got| {
        got.iter()
            .filter(|g| g.path == "/hook" && id_of(g) == held)
            .count()
            >= 2
    })
    .await;
    let copies: Vec<&Got> = got
        .iter()
        .filter(|g| g.path == "/hook" && id_of(g) == held)
        .collect();
    assert_eq!(
        copies[0].body, copies[1].body,
        "the same message, sent again"
    );

    // A replay of the first purchase's delivery: same id and body, marked as a replay.
    let delivery = rows[0]["delivery_id"].as_str().unwrap().to_string();
    let before = r.lock().await.got.len();
    let replayed = s
        .http
        .post(s.url(&format!("/api/v1/deliveries/{delivery}/replay")))
        .header("x-api-key", &shop.key)
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), StatusCode::ACCEPTED);
    let got = until(&r, "the replay", |got| {
        got[before..]
            .iter()
            .any(|g| g.path == "/hook" && id_of(g) == buy)
    })
    .await;
    let again = got[before..]
        .iter()
        .find(|g| g.path == "/hook" && id_of(g) == buy)
        .unwrap();
    assert_eq!(again.headers["x-clicktrail-replay"], "true");
    let original = hooks.iter().find(|g| id_of(g) == buy).unwrap();
    assert_eq!(again.body, original.body);
    let sig = again.headers["x-clicktrail-signature"].to_str().unwrap();
    let t: i64 = sig[2..sig.find(',').unwrap()].parse().unwrap();
    assert_eq!(sig, sign(&secret, t, &again.body));
    // Unknown deliveries, and other advertisers' ones, are not replayed.
    let r404 = s
        .http
        .post(s.url(&format!("/api/v1/deliveries/{delivery}/replay")))
        .header("x-api-key", &other_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r404.status(), StatusCode::NOT_FOUND);
    // A postback switched off is not called again, not even by a replay.
    let pb_id = postback["id"].as_str().unwrap();
    let pb_rows = log(&s, &shop.key, &format!("target_id={pb_id}")).await;
    let r = s
        .http
        .patch(s.url(&format!("/api/v1/admin/postbacks/{pb_id}")))
        .bearer_auth(ADMIN)
        .json(&json!({"active": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    s.sync_catalog().await;
    let r = s
        .http
        .post(s.url(&format!(
            "/api/v1/deliveries/{}/replay",
            pb_rows[0]["delivery_id"].as_str().unwrap()
        )))
        .header("x-api-key", &shop.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
}
