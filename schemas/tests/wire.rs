//! Snapshot tests of the wire format and the record → row mapping: the examples in
//! `schemas/examples/` must read, and write back unchanged. A breaking wire change fails here.

use clicktrail_schemas::CatalogChange;
use clicktrail_schemas::attribution::TouchSource;
use clicktrail_schemas::ledger::{LedgerOp, LedgerRecord, OrderEvent};
use clicktrail_schemas::promo::ImpressionRecord;
use clicktrail_schemas::record::{Record, ToAttribution, ToOrderStep};
use clicktrail_schemas::rows::{Attribution, EventRow, Source};
use clicktrail_schemas::tables::EVENTS;
use clicktrail_schemas::wire::{ClickRecord, DeadLetterRecord, EventRecord, Forwarded};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn example(name: &str) -> Value {
    // The runner's value, not the one compiled in: a test binary reused from a shared target
    // directory may have been built in another checkout.
    let dir =
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    let path = format!("{dir}/examples/{name}");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn round_trip<T: Serialize + DeserializeOwned>(name: &str) -> T {
    let original = example(name);
    let parsed: T = serde_json::from_value(original.clone())
        .unwrap_or_else(|e| panic!("{name} no longer reads: {e}"));
    let written = serde_json::to_value(&parsed).unwrap();
    assert_eq!(
        written, original,
        "{name} is no longer written the same way"
    );
    parsed
}

#[test]
fn every_example_reads_and_writes_back_unchanged() {
    let click: ClickRecord = round_trip("click.json");
    assert_eq!(click.key(), "0f3c9a1b2d4e5f60718293a4b5c6d7e8");
    let event: EventRecord = round_trip("event.json");
    assert_eq!(event.key(), "adv_cjm4vi2tj5h4c35t:order-1001-purchase");
    assert_eq!(event.order_key(), "adv_cjm4vi2tj5h4c35t:1001");
    assert_eq!(event.customer_key(), "adv_cjm4vi2tj5h4c35t:cust-77");
    let forwarded: Forwarded = round_trip("forwarded.json");
    assert_eq!(forwarded.event, event);
    assert_eq!(
        ToOrderStep(forwarded.clone()).partition_key(),
        event.order_key()
    );
    assert_eq!(
        ToAttribution(forwarded).partition_key(),
        event.customer_key()
    );
    assert_eq!(click.promo, None);
    let scanned: ClickRecord = round_trip("promo-click.json");
    let promo = scanned.promo.expect("a promo click");
    assert_eq!(promo.variation_id, "var_c6t9h2n4b8v3r7ym");
    let impression: ImpressionRecord = round_trip("impression.json");
    assert_eq!(
        impression.partition_key(),
        "ofr_w8d2k4m9p3x7q5zt/var_c6t9h2n4b8v3r7ym"
    );
    assert_eq!(impression.variation_id, promo.variation_id);
    let browser: EventRecord = round_trip("browser-event.json");
    assert_eq!(
        browser.source,
        clicktrail_schemas::wire::EventSource::Browser
    );
    assert!(browser.uncounted);
    assert_eq!(
        browser.purchase_order(),
        None,
        "an uncounted purchase claims no order"
    );
    assert_eq!(event.source, clicktrail_schemas::wire::EventSource::Server);
    let message: clicktrail_schemas::outbound::OutboundRecord = round_trip("outbound.json");
    assert_eq!(message.partition_key(), "adv_cjm4vi2tj5h4c35t");
    assert_eq!(
        message.after.map(|a| a.topic),
        Some(clicktrail_schemas::Topic::EventsByCustomer)
    );
    let change: CatalogChange = round_trip("catalog-change.json");
    assert_eq!(change.key(), "lnk_f9xwexkw4682jzvj");
    let dead: DeadLetterRecord = round_trip("dead-letter.json");
    assert_eq!(dead.key(), "adv_cjm4vi2tj5h4c35t:order-1002-purchase");
    let order: OrderEvent = round_trip("order-event.json");
    assert_eq!(order.partition_key(), "adv_cjm4vi2tj5h4c35t:1001");
    let op: LedgerRecord = round_trip("ledger-record.json");
    assert_eq!(op.partition_key(), "inf_maya7kq2zp4x9w3t");
    let LedgerOp::Book {
        booking,
        early_refunds,
        ..
    } = op.op
    else {
        panic!("a booking")
    };
    assert_eq!(Some(booking), order.booking);
    assert_eq!(early_refunds[0].amount_minor, 100);
}

#[test]
fn version_one_records_without_the_version_field_still_read() {
    let mut v = example("event.json");
    v.as_object_mut().unwrap().remove("v");
    v.as_object_mut()
        .unwrap()
        .insert("added_later".into(), Value::Bool(true));
    let e: EventRecord = serde_json::from_value(v).unwrap();
    assert_eq!(e.v, 1);
}

#[test]
fn event_rows_map_to_the_events_table() {
    let event: EventRecord = serde_json::from_value(example("event.json")).unwrap();
    let row = EventRow {
        event,
        attribution: Attribution {
            attributed: true,
            attributed_by: Some(TouchSource::Coupon),
            influencer_id: Some("inf_mdgcvgz882fg5j7u".into()),
            ..Attribution::default()
        },
        source: Source {
            partition: 2,
            offset: 40,
        },
    };
    let batch = EVENTS.to_batch(&[row]).unwrap();
    let names: Vec<String> = EVENTS
        .arrow_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names.join(","),
        "event_id,advertiser_id,action,custom_name,occurred_at,received_at,value_minor,currency,order_id,customer_id,\
         properties,coupon_code,ref_code,click_id,landing_url,referrer,source,attributed,attributed_by,campaign_id,\
         influencer_id,link_id,coupon_id,reason,candidates,credited_click_id,click_at,window_secs,conflict,\
         src_partition,src_offset"
    );
    assert_eq!(batch.num_rows(), 1);
    let value = batch
        .column_by_name("value_minor")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow_array::Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(value, 5990);
}
