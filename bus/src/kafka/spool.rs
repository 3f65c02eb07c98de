//! The local spool: where `clicks` and `events` go while the broker is unreachable.
//!
//! It is an embedded log ([`EmbeddedLog`]) in the role's data directory, with the broker's
//! partition counts. Once a record of a topic could not be delivered, that topic is
//! *spooling*: every later record of it goes to the spool too, so nothing overtakes what is
//! waiting. [`replay`] sends spooled records to the broker in offset order per partition,
//! commits its position after each acknowledged chunk and removes what was replayed; when the
//! spool of a topic is empty again, the topic goes straight to the broker again.
//!
//! The spool is bounded: past `max_records` waiting records, durable sends (ingest) are
//! refused with [`BusError::QueueFull`] (HTTP 503 with Retry-After). Clicks are never
//! refused, a redirect must not fail; past twice the bound they are counted and dropped.

use super::KafkaProducer;
use crate::embedded::{EmbeddedLog, LogOptions};
use crate::{BusError, ConsumerEvent, ConsumerFactory, Delivery, Producer};
use clicktrail_schemas::Topic;
use clicktrail_schemas::metric_names::bus::{SPOOL_DROPPED, SPOOL_PENDING, SPOOL_REPLAYED};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Topics that may be spooled.
pub const SPOOLED: [Topic; 2] = [Topic::Clicks, Topic::Events];

const REPLAY_GROUP: &str = "replay";
const REPLAY_CHUNK: usize = 2000;

fn index(topic: Topic) -> Option<usize> {
    SPOOLED.iter().position(|t| *t == topic)
}

/// The spool of one process.
pub struct Spool {
    log: EmbeddedLog,
    spooling: [AtomicBool; 2],
    /// Records waiting per topic.
    waiting: [AtomicU64; 2],
    max_records: u64,
}

impl Spool {
    /// Opens (or creates) the spool in `dir` with the broker's partition counts; a spool left
    /// non-empty by an earlier run starts spooling and is replayed first.
    pub async fn open(
        dir: &Path,
        partitions: &HashMap<Topic, u32>,
        max_records: u64,
    ) -> Result<Arc<Spool>, BusError> {
        std::fs::create_dir_all(dir).map_err(|e| BusError::Storage(e.to_string()))?;
        let log = EmbeddedLog::open(
            &dir.join("spool.redb"),
            LogOptions {
                partitions: SPOOLED
                    .into_iter()
                    .map(|t| (t, partitions.get(&t).copied().unwrap_or(1)))
                    .collect(),
                linger: Duration::from_millis(20),
                // Room for the producer's whole queue, failed in one go, and then some.
                queue_capacity: super::PRODUCER_QUEUE_MESSAGES + 100_000,
                // Spooled records wait for the broker however long it takes; replay removes
                // them once they are delivered.
                retention_age: None,
                retention_bytes: None,
                retention_interval: Duration::ZERO,
            },
        )?;
        let spool = Spool {
            log,
            spooling: Default::default(),
            waiting: Default::default(),
            max_records,
        };
        for (i, topic) in SPOOLED.into_iter().enumerate() {
            let ends = spool.log.end_offsets(topic).await?;
            let done = spool.log.committed(REPLAY_GROUP, topic).await?;
            let waiting: u64 = ends
                .iter()
                .zip(done)
                .map(|(e, d)| e.saturating_sub(d.unwrap_or(0)))
                .sum();
            spool.waiting[i].store(waiting, Ordering::SeqCst);
            spool.spooling[i].store(waiting > 0, Ordering::SeqCst);
        }
        let spool = Arc::new(spool);
        spool.report();
        Ok(spool)
    }

    /// Whether records of `topic` can be spooled.
    pub fn covers(&self, topic: Topic) -> bool {
        index(topic).is_some()
    }

    /// Whether records of `topic` currently go to the spool.
    pub fn is_spooling(&self, topic: Topic) -> bool {
        index(topic).is_some_and(|i| self.spooling[i].load(Ordering::SeqCst))
    }

    /// Records waiting to be replayed, all topics.
    pub fn waiting(&self) -> u64 {
        self.waiting.iter().map(|w| w.load(Ordering::SeqCst)).sum()
    }

    fn report(&self) {
        for (i, topic) in SPOOLED.into_iter().enumerate() {
            metrics::gauge!(SPOOL_PENDING, "topic" => topic.name())
                .set(self.waiting[i].load(Ordering::SeqCst) as f64);
        }
    }

    /// Appends records durably; refused once the spool holds `max_records`.
    pub async fn append(
        &self,
        topic: Topic,
        records: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Vec<Delivery>, BusError> {
        let i = index(topic).ok_or_else(|| BusError::Invalid(format!("{topic} is not spooled")))?;
        if self.waiting() + records.len() as u64 > self.max_records {
            return Err(BusError::QueueFull);
        }
        let n = records.len() as u64;
        self.spooling[i].store(true, Ordering::SeqCst);
        let mut out = self.log.send_batch(topic, records).await?;
        self.waiting[i].fetch_add(n, Ordering::SeqCst);
        self.report();
        for d in &mut out {
            d.spooled = true;
        }
        Ok(out)
    }

    /// Queues a record (a click); durable within the spool's linger interval.
    pub fn enqueue(&self, topic: Topic, key: Vec<u8>, payload: Vec<u8>) {
        let Some(i) = index(topic) else { return };
        self.spooling[i].store(true, Ordering::SeqCst);
        if self.waiting() >= self.max_records.saturating_mul(2) {
            metrics::counter!(SPOOL_DROPPED, "topic" => topic.name()).increment(1);
            return;
        }
        match self.log.enqueue(topic, key, payload) {
            Ok(()) => {
                self.waiting[i].fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => {
                metrics::counter!(SPOOL_DROPPED, "topic" => topic.name()).increment(1);
                tracing::error!(%topic, error = %e, "spool refused a record");
            }
        }
    }

    /// Makes every queued record durable.
    pub async fn flush(&self) -> Result<(), BusError> {
        self.log.flush().await
    }

    /// Makes everything durable and closes the spool file.
    pub async fn close(&self) -> Result<(), BusError> {
        self.log.close().await
    }
}

/// Replays spooled records to the broker until `stop`, then once more (so a graceful stop
/// with a reachable broker leaves the spool empty).
pub async fn replay(spool: Arc<Spool>, producer: KafkaProducer, stop: CancellationToken) {
    let mut readers = Vec::new();
    for topic in SPOOLED {
        match spool.log.consumer(REPLAY_GROUP, topic).await {
            Ok(c) => readers.push((topic, c)),
            Err(e) => {
                tracing::error!(%topic, error = %e, "cannot read the spool");
                return;
            }
        }
    }
    let mut backoff = Duration::from_millis(200);
    let mut failed_rounds = 0u32;
    loop {
        let stopping = stop.is_cancelled();
        let mut failed = false;
        for (i, (topic, reader)) in readers.iter_mut().enumerate() {
            if spool.waiting[i].load(Ordering::SeqCst) == 0 {
                if spool.spooling[i].load(Ordering::SeqCst) {
                    let _ = spool.log.flush().await;
                    if spool.waiting[i].load(Ordering::SeqCst) == 0 {
                        spool.spooling[i].store(false, Ordering::SeqCst);
                        tracing::info!(%topic, "spool drained; sending straight to the broker");
                    }
                }
                continue;
            }
            let _ = spool.log.flush().await;
            match replay_chunk(&spool, &producer, *topic, i, reader.as_mut()).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(%topic, error = %e, waiting = spool.waiting(), "spool replay paused");
                    failed = true;
                }
            }
        }
        spool.report();
        if stopping {
            return;
        }
        if failed {
            failed_rounds += 1;
            // The broker keeps refusing this client with errors that do not mark it stale
            // themselves (see `clients`): start over with a new client all the same.
            if failed_rounds.is_multiple_of(5) {
                producer.reset();
            }
        } else {
            failed_rounds = 0;
        }
        backoff = if failed {
            (backoff * 2).min(Duration::from_secs(2))
        } else {
            Duration::from_millis(200)
        };
        let busy = !failed && spool.waiting() > 0;
        if !busy {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tokio::time::sleep(backoff) => {}
            }
        }
    }
}

async fn replay_chunk(
    spool: &Spool,
    producer: &KafkaProducer,
    topic: Topic,
    i: usize,
    reader: &mut dyn crate::Consumer,
) -> Result<(), BusError> {
    let records = loop {
        match reader.poll(REPLAY_CHUNK, Duration::ZERO).await? {
            ConsumerEvent::Records(r) => break r,
            _ => continue,
        }
    };
    if records.is_empty() {
        return Ok(());
    }
    let batch: Vec<(Vec<u8>, Vec<u8>)> = records
        .iter()
        .map(|m| (m.key.clone(), m.payload.clone()))
        .collect();
    let results = producer.send_direct(topic, &batch).await;
    // Per spool partition: the acknowledged prefix is done; replay resumes at the first
    // record the broker did not take.
    let mut done: BTreeMap<u32, u64> = BTreeMap::new();
    let mut retry_from: BTreeMap<u32, u64> = BTreeMap::new();
    let mut first_error = None;
    let mut replayed = 0u64;
    for (m, r) in records.iter().zip(results) {
        if retry_from.contains_key(&m.partition) {
            continue;
        }
        match r {
            Ok(_) => {
                done.insert(m.partition, m.offset + 1);
                replayed += 1;
            }
            Err(e) => {
                first_error.get_or_insert(e);
                retry_from.insert(m.partition, m.offset);
            }
        }
    }
    if !done.is_empty() {
        let offsets: Vec<(u32, u64)> = done.iter().map(|(p, o)| (*p, *o)).collect();
        reader.commit(&offsets).await?;
        for (p, o) in &offsets {
            spool.log.truncate(topic, *p, *o).await?;
        }
        spool.waiting[i].fetch_sub(replayed, Ordering::SeqCst);
        metrics::counter!(SPOOL_REPLAYED, "topic" => topic.name()).increment(replayed);
    }
    for (p, o) in &retry_from {
        reader.seek(*p, *o)?;
    }
    match first_error {
        Some(e) => Err(BusError::Storage(format!(
            "broker did not take replayed records: {e}"
        ))),
        None => Ok(()),
    }
}
