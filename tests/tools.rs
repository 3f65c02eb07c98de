//! Standard tools read what clicktrail wrote: `kcat` reads every topic and each record matches
//! `docs/wire-format.md` (JSON, `v` 1, key and partition as documented); `clickhouse-client`
//! shows the store's tables.

mod common;

use clicktrail_schemas::topics::partition_for;
use common::Server;
use serde_json::{Value, json};
use std::process::Command;

fn kcat(broker: &str, topic: &str) -> Vec<(u32, String, Value)> {
    let out = Command::new("kcat")
        .args([
            "-C",
            "-b",
            broker,
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
        ])
        .args(["-f", "%p\t%k\t%s\n"])
        .output()
        .expect("kcat is installed by scripts/services");
    assert!(
        out.status.success(),
        "kcat {topic}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let mut parts = l.splitn(3, '\t');
            let p = parts.next().unwrap().parse().unwrap();
            let k = parts.next().unwrap().to_string();
            let v: Value = serde_json::from_str(parts.next().unwrap())
                .unwrap_or_else(|e| panic!("{topic}: not JSON ({e}): {l}"));
            (p, k, v)
        })
        .collect()
}

#[tokio::test]
async fn kcat_reads_every_topic_and_clickhouse_client_shows_the_tables() {
    let Some(svc) = common::services() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("tools_{}", std::process::id());
    let s = Server::cluster(dir.path(), &svc, &db).await;
    let shop = s.shop("Tools", "https://shop.example/t", &["Ana"]).await;
    let r = s
        .click(&format!("/r/{}", shop.codes[0]), "Mozilla/5.0 tools")
        .await;
    let click = common::click_id(&r);
    for attempt in 0..2 {
        // The second purchase of the order (a distinct event: its content differs) goes to
        // dead-letter.
        let r = s
            .post_events(
                &shop.key,
                &json!({"action": "purchase", "order_id": "o-1", "value": 12.5, "currency": "EUR", "click_id": click, "properties": {"attempt": attempt}}),
            )
            .await;
        assert!(r.status().is_success());
    }
    s.drain().await;

    let prefix = format!("{db}-");
    let partitions = 8; // role default `--partitions`
    let clicks = kcat(&svc.kafka, &format!("{prefix}clicks"));
    assert_eq!(clicks.len(), 1);
    let (p, key, c) = &clicks[0];
    assert_eq!(c["v"], json!(1));
    assert_eq!(c["click_id"], json!(click));
    assert_eq!(c["visitor_key"], json!(key), "clicks are keyed by visitor");
    assert_eq!(*p, partition_for(key.as_bytes(), partitions));
    for field in [
        "at",
        "link_id",
        "code",
        "advertiser_id",
        "campaign_id",
        "influencer_id",
        "user_agent",
        "device_class",
        "ip_prefix",
        "is_bot",
        "not_live",
    ] {
        assert!(c.get(field).is_some(), "clicks record has {field}: {c}");
    }

    let events = kcat(&svc.kafka, &format!("{prefix}events"));
    assert_eq!(events.len(), 2);
    for (p, key, e) in &events {
        assert_eq!(e["v"], json!(1));
        assert_eq!(
            key,
            &format!("{}:{}", shop.advertiser, e["event_id"].as_str().unwrap()),
            "advertiser:event_id"
        );
        assert_eq!(*p, partition_for(key.as_bytes(), partitions));
        assert_eq!(e["action"], json!("purchase"));
        assert_eq!(e["value_minor"], json!(1250));
        assert_eq!(e["currency"], json!("EUR"));
        assert!(e["event_id"].as_str().unwrap().starts_with("drv_"), "{e}");
    }
    // The processor's steps hand events on through their own topics: both purchases to the
    // order step, keyed by the order; the first on to attribution, keyed by the customer (here
    // the order, as there is no customer id).
    let order_key = format!("{}:o-1", shop.advertiser);
    for (topic, count) in [("events-by-order", 2), ("events-by-customer", 1)] {
        let handed = kcat(&svc.kafka, &format!("{prefix}{topic}"));
        assert_eq!(handed.len(), count, "{topic}");
        for (p, key, f) in &handed {
            assert_eq!(key, &order_key, "{topic} key");
            assert_eq!(*p, partition_for(key.as_bytes(), partitions));
            assert_eq!(f["v"], json!(1));
            assert!(
                f["from"]["offset"].is_u64() && f["source"]["partition"].is_u64(),
                "{f}"
            );
            assert!(
                events.iter().any(|(_, _, e)| *e == f["event"]),
                "{topic}: {f}"
            );
        }
    }

    let catalog = kcat(&svc.kafka, &format!("{prefix}catalog"));
    let ops: Vec<&str> = catalog
        .iter()
        .map(|(_, _, c)| c["op"].as_str().unwrap())
        .collect();
    for op in [
        "advertiser_upserted",
        "api_key_created",
        "campaign_upserted",
        "influencer_upserted",
        "influencer_assigned",
        "link_created",
    ] {
        assert!(ops.contains(&op), "catalog has {op}: {ops:?}");
    }
    assert!(
        catalog.iter().all(|(p, _, _)| *p == 0),
        "one catalog partition"
    );

    let dead = kcat(&svc.kafka, &format!("{prefix}dead-letter"));
    assert_eq!(dead.len(), 1);
    let d = &dead[0].2;
    assert_eq!(
        (
            d["v"].clone(),
            d["reason"].clone(),
            d["source_topic"].clone()
        ),
        (json!(1), json!("duplicate_order"), json!("events"))
    );
    let refused: Value = serde_json::from_str(d["payload"].as_str().unwrap()).unwrap();
    assert_eq!(
        d["source_key"],
        json!(format!(
            "{}:{}",
            shop.advertiser,
            refused["event_id"].as_str().unwrap()
        )),
        "a dead letter names the event's key on `events`"
    );
    assert!(kcat(&svc.kafka, &format!("{prefix}impressions")).is_empty());

    let tables = clickhouse_client(&format!("SHOW TABLES FROM {db}"));
    for t in ["clicks", "events", "schema_migrations"] {
        assert!(tables.lines().any(|l| l == t), "{t} in {tables}");
    }
    assert_eq!(
        clickhouse_client(&format!("SELECT count() FROM {db}.events FINAL")).trim(),
        "1"
    );
}

/// The answer of `clickhouse-client` to `query` against the test server.
fn clickhouse_client(query: &str) -> String {
    let port =
        std::env::var("CLICKTRAIL_TEST_CLICKHOUSE_TCP").expect("CLICKTRAIL_TEST_CLICKHOUSE_TCP");
    let out = Command::new("clickhouse-client")
        .args(["--host", "127.0.0.1", "--port", &port, "--query", query])
        .output()
        .expect("clickhouse-client is installed by scripts/services");
    assert!(
        out.status.success(),
        "{query}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
