//! The write step: a batch's records for the next step and its dead letters to the bus, then
//! its rows and the checkpoints of the partitions that produced them to the store, in one
//! store write. Records for the next step go first, so a checkpoint never covers a record that
//! was not handed on (the next step drops the copies a restart sends again, see
//! [`crate::events::replay`]).
//!
//! Nothing is dropped: a failed dead-letter write or a transient store failure pauses the
//! pipeline and retries with backoff (100 ms doubling to 5 s) until it succeeds, even during
//! shutdown, since accepted records must never be lost. Rows the store refuses as data (never
//! retried) become dead letters with their source position, partition key and record, and the
//! checkpoints are written alone, so the offsets still move on.

use crate::pipeline::{Forward, Output};
use clicktrail_bus::{Producer, RecordProducer};
use clicktrail_schemas::Topic;
use clicktrail_schemas::metric_names::processor::{
    BATCH_RECORDS, BATCH_STAGE_SECONDS, BATCH_WRITE_SECONDS, DEAD_LETTERS, FORWARDED, ROWS_WRITTEN,
    STORE_RETRIES,
};
use clicktrail_schemas::record::Record;
use clicktrail_schemas::rows::Source;
use clicktrail_schemas::wire::DeadLetterRecord;
use clicktrail_store::{Checkpoint, Store, StoreError};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// A record as the bus takes it: (key, payload).
type KeyedPayload = (Vec<u8>, Vec<u8>);

/// How long the two parts of one write took, retries included.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteTimes {
    /// Records for the next step and dead letters made durable on the bus.
    pub hand_on: Duration,
    /// Rows and checkpoints made durable in the store.
    pub store: Duration,
}

/// A batch being written in the background while the pipeline reads and processes the next
/// one. The pipeline waits for it ([`InFlight::finish`]) before it writes another batch or
/// commits the offsets this one's checkpoints hold, so batches become durable in order and
/// offsets are still committed only after the store.
/// Dropped before it is finished (a pipeline that stops on an error), it cancels the write,
/// as a pipeline's own write was cancelled with it: the batch's offsets are never committed,
/// and a restart writes it again from the checkpoint before it.
pub struct InFlight {
    /// The write; it answers its times and when it ended.
    task: JoinHandle<(WriteTimes, Instant)>,
    /// What to do and report once the batch is durable; taken by [`InFlight::finish`].
    batch: Option<Written>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A batch handed to [`InFlight::start`], as the pipeline reports it once durable.
pub struct Written {
    /// Partition offsets the batch's checkpoints hold, to commit once it is durable.
    pub offsets: Vec<(u32, u64)>,
    /// When the pipeline began writing the batch.
    pub started: Instant,
    /// When the batch was durable; set by [`InFlight::finish`].
    pub ended: Option<Instant>,
    /// Records the batch handed on and dead-lettered.
    pub records: usize,
    /// Time the batch spent polling before its write.
    pub polled: Duration,
    /// Time the batch spent in its steps before its write.
    pub processed: Duration,
}

impl Written {
    /// Records the batch's time per stage (`poll`, `process`, `hand_on`, `store`, `commit`:
    /// [`BATCH_STAGE_SECONDS`]), from the start of its write until it was durable plus its
    /// `commit` ([`BATCH_WRITE_SECONDS`]) and its records ([`BATCH_RECORDS`]).
    pub fn report(&self, topic: &'static str, times: WriteTimes, commit: Duration) {
        for (stage, took) in [
            ("poll", self.polled),
            ("process", self.processed),
            ("hand_on", times.hand_on),
            ("store", times.store),
            ("commit", commit),
        ] {
            metrics::histogram!(BATCH_STAGE_SECONDS, "topic" => topic, "stage" => stage)
                .record(took.as_secs_f64());
        }
        let written = self.ended.map_or(Duration::ZERO, |e| e - self.started);
        metrics::histogram!(BATCH_WRITE_SECONDS).record((written + commit).as_secs_f64());
        metrics::histogram!(BATCH_RECORDS, "topic" => topic).record(self.records as f64);
    }
}

impl InFlight {
    /// Starts writing `out` and `checkpoints` ([`write`]) on a task of its own.
    pub fn start(
        producer: Arc<dyn Producer>,
        store: Arc<dyn Store>,
        mut out: Output,
        checkpoints: Vec<Checkpoint>,
        batch: Written,
    ) -> Self {
        let task = tokio::spawn(async move {
            let times = write(producer.as_ref(), store.as_ref(), &mut out, &checkpoints).await;
            (times, Instant::now())
        });
        InFlight {
            task,
            batch: Some(batch),
        }
    }

    /// Whether the write has ended (waiting for it then returns at once).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits until the batch is durable and answers how long its parts took, with the batch.
    /// A write never gives up (see [`write`]); a panic of its task resumes here. `None` when
    /// the runtime shut down under it: the batch may not be durable, and its offsets must not
    /// be committed.
    pub async fn finish(mut self) -> Option<(WriteTimes, Written)> {
        match (&mut self.task).await {
            Ok((times, ended)) => {
                let mut batch = self.batch.take()?;
                batch.ended = Some(ended);
                Some((times, batch))
            }
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => None,
        }
    }
}

/// Writes `out` and `checkpoints`; returns once both are durable, with how long each part
/// took. `out` is left empty.
pub async fn write(
    producer: &dyn Producer,
    store: &dyn Store,
    out: &mut Output,
    checkpoints: &[Checkpoint],
) -> WriteTimes {
    let mut times = WriteTimes::default();
    let started = Instant::now();
    let mut backoff = Duration::from_millis(100);
    let forward = in_send_order(std::mem::take(&mut out.forward));
    let mut by_topic: Vec<(Topic, Vec<KeyedPayload>)> = Vec::new();
    for f in forward {
        match by_topic.iter_mut().find(|(t, _)| *t == f.topic) {
            Some((_, records)) => records.push((f.key, f.payload)),
            None => by_topic.push((f.topic, vec![(f.key, f.payload)])),
        }
    }
    for (next, records) in by_topic {
        let n = records.len();
        while let Err(e) = producer.send_batch(next, records.clone()).await {
            tracing::warn!(topic = %next, error = %e, "handing records on failed; retrying");
            pause(&mut backoff).await;
        }
        metrics::counter!(FORWARDED, "topic" => next.name()).increment(n as u64);
    }
    times.hand_on = started.elapsed();
    loop {
        if !out.dead.is_empty() {
            let sending = Instant::now();
            if let Err(e) = producer.send_records(&out.dead).await {
                tracing::warn!(error = %e, "dead-letter write failed; retrying");
                pause(&mut backoff).await;
                continue;
            }
            times.hand_on += sending.elapsed();
            out.dead.clear();
        }
        let storing = Instant::now();
        let (clicks, events, ledger) = (
            out.rows.clicks.len(),
            out.rows.events.len(),
            out.rows.ledger.len(),
        );
        let written = store.write(&out.rows, checkpoints).await;
        times.store += storing.elapsed();
        match written {
            Ok(()) => {
                metrics::counter!(ROWS_WRITTEN, "table" => "clicks").increment(clicks as u64);
                metrics::counter!(ROWS_WRITTEN, "table" => "events").increment(events as u64);
                metrics::counter!(ROWS_WRITTEN, "table" => "ledger").increment(ledger as u64);
                out.rows = Default::default();
                return times;
            }
            Err(StoreError::Data(reason)) => {
                tracing::error!(reason = %reason, "store refused a batch; its rows go to dead-letter");
                let rows = std::mem::take(&mut out.rows);
                for c in &rows.clicks {
                    out.dead.push(refused(c.source, &reason, &c.click));
                }
                for e in &rows.events {
                    out.dead.push(refused(e.source, &reason, &e.event));
                }
                for l in &rows.ledger {
                    out.dead.push(refused_movement(&reason, l));
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

/// Records in the order they are sent: each partition's in the order read, and across
/// partitions earliest `received_at` first (a merge of the partitions' sequences), so that a
/// customer's events reach the next step in about the order they were received.
fn in_send_order(forward: Vec<Forward>) -> Vec<Forward> {
    if forward.len() < 2 {
        return forward;
    }
    let mut parts: BTreeMap<u32, VecDeque<Forward>> = BTreeMap::new();
    let n = forward.len();
    for f in forward {
        parts.entry(f.from_partition).or_default().push_back(f);
    }
    let mut heads: BinaryHeap<Reverse<(i64, u32)>> = parts
        .iter()
        .filter_map(|(p, q)| q.front().map(|f| Reverse((f.at_ms, *p))))
        .collect();
    let mut sent = Vec::with_capacity(n);
    while let Some(Reverse((_, p))) = heads.pop() {
        let q = parts.get_mut(&p).expect("a head's partition has a queue");
        sent.push(q.pop_front().expect("a head's queue is not empty"));
        if let Some(f) = q.front() {
            heads.push(Reverse((f.at_ms, p)));
        }
    }
    sent
}

async fn pause(backoff: &mut Duration) {
    tokio::time::sleep(*backoff).await;
    *backoff = (*backoff * 2).min(Duration::from_secs(5));
}

/// A row the store refused, as a dead letter: its position and key on the topic its record
/// was accepted on (`clicks`, `events`), and that record as its payload, so that it can be
/// read and sent again like any other.
fn refused<R: Record>(source: Source, reason: &str, record: &R) -> DeadLetterRecord {
    metrics::counter!(DEAD_LETTERS, "reason" => "store_refused").increment(1);
    let (key, payload) = record.encode();
    DeadLetterRecord {
        v: 1,
        source_topic: R::TOPIC.name().to_string(),
        source_partition: source.partition,
        source_offset: source.offset,
        source_key: String::from_utf8_lossy(&key).into_owned(),
        reason: "store_refused".into(),
        detail: reason.to_string(),
        payload: String::from_utf8_lossy(&payload).into_owned(),
        at: chrono::Utc::now(),
    }
}

/// A ledger movement the store refused, as a dead letter: the position of its operation on
/// `ledger` and the movement itself (JSON) as the payload.
fn refused_movement(reason: &str, row: &clicktrail_schemas::ledger::LedgerRow) -> DeadLetterRecord {
    metrics::counter!(DEAD_LETTERS, "reason" => "store_refused").increment(1);
    DeadLetterRecord {
        v: 1,
        source_topic: Topic::Ledger.name().to_string(),
        source_partition: row.source.partition,
        source_offset: row.source.offset,
        source_key: row.influencer_id.clone(),
        reason: "store_refused".into(),
        detail: reason.to_string(),
        payload: serde_json::to_string(row).unwrap_or_default(),
        at: chrono::Utc::now(),
    }
}
