//! The write step: a batch's dead letters to the bus, then its rows and the checkpoints of the
//! partitions that produced them to the store, in one store write.
//!
//! Nothing is dropped: a failed dead-letter write or a transient store failure pauses the
//! pipeline and retries with backoff (100 ms doubling to 5 s) until it succeeds, even during
//! shutdown, since accepted records must never be lost. Rows the store refuses as data (never
//! retried) become dead letters with their source position, partition key and record, and the
//! checkpoints are written alone, so the offsets still move on.

use crate::pipeline::Output;
use clicktrail_bus::{Producer, RecordProducer};
use clicktrail_schemas::Topic;
use clicktrail_schemas::metric_names::processor::{DEAD_LETTERS, ROWS_WRITTEN, STORE_RETRIES};
use clicktrail_schemas::record::Record;
use clicktrail_schemas::rows::Source;
use clicktrail_schemas::wire::DeadLetterRecord;
use clicktrail_store::{Checkpoint, Store, StoreError};
use std::time::Duration;

/// Writes `out` and `checkpoints`; returns once both are durable. `out` is left empty.
pub async fn write(
    topic: Topic,
    producer: &dyn Producer,
    store: &dyn Store,
    out: &mut Output,
    checkpoints: &[Checkpoint],
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if !out.dead.is_empty() {
            if let Err(e) = producer.send_records(&out.dead).await {
                tracing::warn!(error = %e, "dead-letter write failed; retrying");
                pause(&mut backoff).await;
                continue;
            }
            out.dead.clear();
        }
        let (clicks, events) = (out.rows.clicks.len(), out.rows.events.len());
        match store.write(&out.rows, checkpoints).await {
            Ok(()) => {
                metrics::counter!(ROWS_WRITTEN, "table" => "clicks").increment(clicks as u64);
                metrics::counter!(ROWS_WRITTEN, "table" => "events").increment(events as u64);
                out.rows = Default::default();
                return;
            }
            Err(StoreError::Data(reason)) => {
                tracing::error!(reason = %reason, "store refused a batch; its rows go to dead-letter");
                let rows = std::mem::take(&mut out.rows);
                for c in &rows.clicks {
                    out.dead.push(refused(topic, c.source, &reason, &c.click));
                }
                for e in &rows.events {
                    out.dead.push(refused(topic, e.source, &reason, &e.event));
                }
            }
            Err(e) => {
                metrics::counter!(STORE_RETRIES).increment(1);
                tracing::warn!(error = %e, "store write failed; pausing and retrying the same batch");
                pause(&mut backoff).await;
            }
        }
    }
}

async fn pause(backoff: &mut Duration) {
    tokio::time::sleep(*backoff).await;
    *backoff = (*backoff * 2).min(Duration::from_secs(5));
}

/// A row the store refused, as a dead letter: its source position and key, and the record it
/// was made from as its payload, so that it can be read and replayed like any other.
fn refused<R: Record>(topic: Topic, source: Source, reason: &str, record: &R) -> DeadLetterRecord {
    metrics::counter!(DEAD_LETTERS, "reason" => "store_refused").increment(1);
    let (key, payload) = record.encode();
    DeadLetterRecord {
        v: 1,
        source_topic: topic.name().to_string(),
        source_partition: source.partition,
        source_offset: source.offset,
        source_key: String::from_utf8_lossy(&key).into_owned(),
        reason: "store_refused".into(),
        detail: reason.to_string(),
        payload: String::from_utf8_lossy(&payload).into_owned(),
        at: chrono::Utc::now(),
    }
}
