//! Event intake without the network: signature check over the raw body, JSON parse and field
//! validation of one event and of a batch of 100.

use chrono::Utc;
use clicktrail_api::auth::{SIGNATURE_HEADER, sign, verify_signature};
use clicktrail_ingest::validate;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

fn event(i: usize) -> Value {
    json!({"event_id": format!("evt-{i}"), "action": "purchase", "order_id": format!("order-{i}"), "value": "129.90",
        "currency": "EUR", "customer_id": format!("cust-{i}"), "coupon_code": "ANNA10",
        "click_id": "AQEAAAGh_knokQ0EGRtjhBhwbG5rX2Y5eHdleGt3NDY4Mmp6dmpqY98yE4rTiYbUblA",
        "landing_url": "https://shop.example/p/123?ref_code=bench-a", "properties": {"sku": "TRAIL-42", "size": 43}})
}

fn intake(body: &[u8], headers: &HeaderMap, now: chrono::DateTime<Utc>) -> usize {
    verify_signature(headers, "whsec_bench", body, now.timestamp()).unwrap();
    let value: Value = serde_json::from_slice(body).unwrap();
    let batch = validate::split_batch(value).unwrap();
    let mut errors = Vec::new();
    let n = batch
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            validate::event(
                e,
                format!("events[{i}]."),
                "adv_bench",
                None,
                now,
                &mut errors,
            )
        })
        .count();
    assert!(errors.is_empty());
    n
}

fn ingest(c: &mut Criterion) {
    let now = Utc::now();
    let mut g = c.benchmark_group("ingest_validate_signed");
    for n in [1usize, 100] {
        let body = if n == 1 {
            serde_json::to_vec(&event(0)).unwrap()
        } else {
            serde_json::to_vec(&(0..n).map(event).collect::<Vec<_>>()).unwrap()
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            SIGNATURE_HEADER,
            HeaderValue::from_str(&format!(
                "t={},v1={}",
                now.timestamp(),
                sign("whsec_bench", now.timestamp(), &body)
            ))
            .unwrap(),
        );
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("events_{n}"), |b| {
            b.iter(|| intake(&body, &headers, now))
        });
    }
    g.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
