//! Idempotency whatever the partition key: one event id sent in several shapes, one order
//! bought by a browser pixel and a server postback, a client retry without an event id. Each
//! counts once on the embedded default and on Kafka + ClickHouse, with a `kill -9` of the
//! processor after the first copies were processed and another right after the second copies
//! were acknowledged (while the chain may be handing them on).

mod common;

use common::{Server, Shop};
use serde_json::{Value, json};
use std::path::Path;

/// The copies of every case, in the order they are sent: step 0, then a `kill -9` after the
/// processor caught up, step 1, a `kill -9` at once, step 2.
struct Case {
    name: &'static str,
    steps: [Vec<Value>; 3],
}

fn cases() -> Vec<Case> {
    let signup = |customer: Option<&str>| {
        let mut e = json!({"event_id": "e-1", "action": "signup"});
        if let Some(c) = customer {
            e["customer_id"] = json!(c);
        }
        e
    };
    let purchase = |event_id: Option<&str>, customer: Option<&str>| {
        let mut e =
            json!({"action": "purchase", "order_id": "A-1", "value": "25.00", "currency": "USD"});
        if let Some(id) = event_id {
            e["event_id"] = json!(id);
        }
        if let Some(c) = customer {
            e["customer_id"] = json!(c);
        }
        e
    };
    let retry =
        json!({"action": "signup", "customer_id": "c9", "occurred_at": "2026-11-30T10:00:00Z"});
    let retry_now = json!({"action": "add_to_cart", "properties": {"sku": "S-1"}});
    vec![
        // Case 1: keyed by nothing, then by customer c1, then by c2.
        Case {
            name: "event id in three shapes",
            steps: [
                vec![signup(None)],
                vec![signup(Some("c1"))],
                vec![signup(Some("c2"))],
            ],
        },
        // Case 1's siblings: a purchase event id repeated with and without its order and
        // customer, and as another action.
        Case {
            name: "purchase event id in other shapes",
            steps: [
                vec![
                    json!({"event_id": "p-7", "action": "purchase", "order_id": "B-7", "value": "5.00", "currency": "USD", "customer_id": "c1"}),
                ],
                vec![
                    json!({"event_id": "p-7", "action": "purchase", "value": "5.00", "currency": "USD"}),
                ],
                vec![
                    json!({"event_id": "p-7", "action": "signup", "order_id": "B-8", "customer_id": "c2"}),
                ],
            ],
        },
        // Case 2: a pixel without customer, a postback with c1, another with c2 and no id.
        Case {
            name: "order from pixel and postback",
            steps: [
                vec![purchase(Some("pixel-1"), None)],
                vec![purchase(Some("postback-1"), Some("c1"))],
                vec![purchase(None, Some("c2"))],
            ],
        },
        // Case 3: the same body without an event id, posted again after a timeout; with and
        // without its own `occurred_at`.
        Case {
            name: "client retry without event id",
            steps: [
                vec![retry.clone(), retry_now.clone()],
                vec![retry.clone(), retry_now.clone()],
                vec![retry, retry_now],
            ],
        },
    ]
}

/// What each case must come to: (signups, add-to-carts, purchases, revenue in minor units).
fn expected(name: &str) -> (u64, u64, u64, u64) {
    match name {
        "event id in three shapes" => (1, 0, 0, 0),
        "purchase event id in other shapes" => (0, 0, 1, 500),
        "order from pixel and postback" => (0, 0, 1, 2500),
        "client retry without event id" => (1, 1, 0, 0),
        other => panic!("no expectation for {other}"),
    }
}

/// `kill -9` of the process that runs the processor, and a restart on the same data.
async fn kill9_processor(s: &mut Server, dir: &Path) {
    if s.procs.len() == 1 {
        s.kill9();
        *s = Server::start(dir).await;
    } else {
        let p = s.proc_mut("processor");
        p.kill9();
        p.restart().await;
    }
}

async fn send(s: &Server, shop: &Shop, body: &Value) {
    let r = s.post_events(&shop.key, body).await;
    let status = r.status();
    assert!(status.is_success(), "{status}: {}", r.text().await.unwrap());
}

async fn run(mut s: Server, dir: &Path) {
    let cases = cases();
    let mut shops = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        shops.push(
            s.shop(&format!("idem{i}"), "https://shop.example/p", &["Ana"])
                .await,
        );
        eprintln!("case {i}: {}", c.name);
    }
    for step in 0..3 {
        for (c, shop) in cases.iter().zip(&shops) {
            for body in &c.steps[step] {
                send(&s, shop, body).await;
            }
        }
        match step {
            0 => {
                s.drain().await;
                kill9_processor(&mut s, dir).await;
            }
            1 => kill9_processor(&mut s, dir).await,
            _ => s.drain().await,
        }
    }
    for (c, shop) in cases.iter().zip(&shops) {
        let o: Value = s
            .get_with_key("/api/v1/stats/overview?period=all", &shop.key)
            .await
            .json()
            .await
            .unwrap();
        let (signups, carts, purchases, revenue) = expected(c.name);
        assert_eq!(o["signups"], json!(signups), "{}: {o}", c.name);
        assert_eq!(o["add_to_carts"], json!(carts), "{}: {o}", c.name);
        assert_eq!(o["purchases"], json!(purchases), "{}: {o}", c.name);
        let revenue_now = o["revenue"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["amount_minor"].as_u64().unwrap())
            .sum::<u64>();
        assert_eq!(revenue_now, revenue, "{}: {o}", c.name);
    }
    // The second and third purchases of order A-1 are in dead-letter with the reason, each as
    // the event ingest accepted, at its position on `events`.
    let dead: Vec<Value> = s
        .admin_get("/api/v1/admin/dead-letter?limit=1000")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            let payload: Value = serde_json::from_str(d["payload"].as_str().unwrap()).unwrap();
            payload["advertiser_id"] == json!(shops[2].advertiser)
        })
        .cloned()
        .collect();
    assert_eq!(dead.len(), 2, "{dead:?}");
    for d in &dead {
        assert_eq!(d["reason"], json!("duplicate_order"), "{d}");
        assert_eq!(d["source_topic"], json!("events"), "{d}");
    }
}

#[tokio::test]
async fn every_shape_counts_once_on_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    run(s, dir.path()).await;
}

#[tokio::test]
async fn every_shape_counts_once_on_kafka_and_clickhouse() {
    let Some(svc) = common::services() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let database = format!("idem_{}", std::process::id());
    let s = Server::cluster(dir.path(), &svc, &database).await;
    run(s, dir.path()).await;
}
