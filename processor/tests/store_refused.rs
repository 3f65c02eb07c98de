//! Rows the store refuses as data go to `dead-letter` with everything needed to read and replay
//! them: their source position, their partition key and the record they were made from.

use async_trait::async_trait;
use chrono::Utc;
use clicktrail_bus::embedded::{EmbeddedLog, LogOptions};
use clicktrail_bus::{CatalogView, RecordProducer, TailReader};
use clicktrail_processor::dedup::DedupOptions;
use clicktrail_processor::{ProcessorConfig, ProcessorDeps};
use clicktrail_schemas::Topic;
use clicktrail_schemas::token::ClickKeys;
use clicktrail_schemas::wire::{Action, DeadLetterRecord, EventRecord};
use clicktrail_store::{Checkpoint, Restored, Rows, Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A store that refuses every row as data it cannot hold (as ClickHouse does with a value out
/// of a column's range) and takes checkpoints alone.
struct RefusingStore;

#[async_trait]
impl Store for RefusingStore {
    async fn write(&self, rows: &Rows, _checkpoints: &[Checkpoint]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        Err(StoreError::Data("Code: 70, value out of range".into()))
    }

    async fn restore(&self, _stream: &str) -> Result<Option<Restored>, StoreError> {
        Ok(None)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_row_keeps_its_key_and_record_in_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log.redb"), LogOptions::default()).unwrap();
    let now = Utc::now();
    let event = EventRecord {
        v: 1,
        event_id: "evt-1".into(),
        advertiser_id: "adv_1".into(),
        action: Action::Signup,
        custom_name: None,
        occurred_at: now,
        received_at: now,
        value_minor: None,
        currency: "USD".into(),
        order_id: None,
        customer_id: Some("c1".into()),
        properties: None,
        coupon_code: None,
        ref_code: None,
        click_id: None,
        landing_url: None,
        referrer: None,
        sub_id: None,
        source: Default::default(),
        uncounted: false,
    };
    log.send_record(&event).await.unwrap();

    let stop = CancellationToken::new();
    let processor = tokio::spawn(clicktrail_processor::run(
        ProcessorConfig {
            group: "processor".into(),
            batch_max_records: 100,
            batch_max_wait: Duration::from_millis(20),
            click_keys: ClickKeys::new(1, b"refused-test-key-0123".to_vec()),
            dedup: DedupOptions::default(),
            event_id_window: clicktrail_processor::events::DEFAULT_EVENT_ID_WINDOW,
            order_window: clicktrail_processor::events::DEFAULT_ORDER_WINDOW,
            outbound: clicktrail_processor::outbound::OutboundSettings::new(
                "processor",
                "test-signing-key",
            ),
        },
        ProcessorDeps {
            consumers: Arc::new(log.clone()),
            producer: Arc::new(log.clone()),
            store: Arc::new(RefusingStore),
            catalog: CatalogView::new(),
        },
        stop.clone(),
    ));

    let mut dead = Vec::new();
    for _ in 0..200 {
        dead = log.tail(Topic::DeadLetter, 10).await.unwrap();
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    processor.await.unwrap().unwrap();

    assert_eq!(dead.len(), 1, "one refused row, one dead letter");
    // Its key on `events`, where ingest accepted it: advertiser + event id.
    assert_eq!(
        dead[0].key, b"adv_1:evt-1",
        "the bus key of the dead letter"
    );
    let letter: DeadLetterRecord = serde_json::from_slice(&dead[0].payload).unwrap();
    assert_eq!(letter.reason, "store_refused");
    assert_eq!(letter.source_topic, "events");
    assert_eq!(letter.source_key, "adv_1:evt-1");
    assert_eq!(letter.source_offset, 0);
    assert!(letter.detail.contains("out of range"), "{}", letter.detail);
    let original: EventRecord = serde_json::from_slice(letter.payload.as_bytes()).unwrap();
    assert_eq!(
        original, event,
        "the payload is the record the row was made from"
    );
}
