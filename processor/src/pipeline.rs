//! The chain of steps for one topic, assembled in one place:
//! poll → decode/validate/dedup/attribute (a [`PartitionState`] per partition) → batch →
//! write ([`crate::write`]: dead letters to the bus, rows and checkpoints to the store) →
//! commit offsets.
//!
//! A batch is written in the background while the next one is read and processed; the next
//! one is written only once it is durable, so at most one batch is in flight.
//! Offsets are committed only after the store acknowledged the rows and the checkpoints that
//! reflect them; on assignment a partition's state and position come from its checkpoint, so a
//! restart resumes exactly after the last stored batch. A transient store failure pauses the
//! pipeline (the same batch is retried with backoff; at most one more batch is read and waits
//! behind it); a data error sends the batch's rows to dead-letter and moves on.

mod wiring;

pub use wiring::{BatchLimits, PipelineError, Wiring};

use crate::write;
use clicktrail_bus::{ConsumerEvent, Message};
use clicktrail_schemas::Topic;
use clicktrail_schemas::catalog::Catalog;
use clicktrail_schemas::metric_names::processor::*;
use clicktrail_schemas::record::Record;
use clicktrail_schemas::token::ClickKeys;
use clicktrail_schemas::wire::{DeadLetterRecord, Forwarded};
use clicktrail_store::{Checkpoint, Rows};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What every step may read.
pub struct StepCtx {
    /// The catalog as of this batch.
    pub catalog: Arc<Catalog>,
    /// Click token keys.
    pub keys: ClickKeys,
    /// Dedup sizing.
    pub dedup: crate::dedup::DedupOptions,
    /// How long the events step remembers event ids and orders.
    pub windows: crate::events::IdWindows,
}

/// A record handed on to the next step of a chain.
#[derive(Debug)]
pub struct Forward {
    /// The next step's topic.
    pub topic: Topic,
    /// Partition key on that topic.
    pub key: Vec<u8>,
    /// The record, encoded.
    pub payload: Vec<u8>,
    /// The partition it was read from: records of one partition are sent in the order read.
    pub from_partition: u32,
    /// Its `received_at`, ms: records of different partitions are sent earliest first.
    pub at_ms: i64,
}

/// What a batch produced.
#[derive(Default)]
pub struct Output {
    /// Rows for the store.
    pub rows: Rows,
    /// Records set aside.
    pub dead: Vec<DeadLetterRecord>,
    /// Records for the next step, sent before the checkpoint.
    pub forward: Vec<Forward>,
}

impl Output {
    /// The decode step: the record `msg` carries, or `None` after setting the message aside
    /// as `undecodable` with the decoder's reason.
    pub fn decode<T: serde::de::DeserializeOwned>(&mut self, msg: &Message) -> Option<T> {
        match serde_json::from_slice(&msg.payload) {
            Ok(record) => Some(record),
            Err(e) => {
                self.dead_letter(msg, "undecodable", e.to_string());
                None
            }
        }
    }

    /// Sets a record aside with a reason.
    pub fn dead_letter(&mut self, msg: &Message, reason: &str, detail: String) {
        metrics::counter!(DEAD_LETTERS, "reason" => reason.to_string()).increment(1);
        self.dead.push(DeadLetterRecord {
            v: 1,
            source_topic: msg.topic.name().to_string(),
            source_partition: msg.partition,
            source_offset: msg.offset,
            source_key: String::from_utf8_lossy(&msg.key).into_owned(),
            reason: reason.to_string(),
            detail,
            payload: String::from_utf8_lossy(&msg.payload).into_owned(),
            at: chrono::Utc::now(),
        });
    }

    /// Hands `record` on to the next step: it was read from partition `from_partition` and
    /// received at `at_ms` (ms since the Unix epoch).
    pub fn forward<R: Record>(&mut self, record: &R, from_partition: u32, at_ms: i64) {
        let (key, payload) = record.encode();
        self.forward.push(Forward {
            topic: R::TOPIC,
            key,
            payload,
            from_partition,
            at_ms,
        });
    }

    /// Sets a forwarded event aside with a reason, as the record ingest accepted: its
    /// position and key on `events` and the event itself as the payload, so that it can be
    /// read and sent again like any other.
    pub fn dead_letter_event(&mut self, f: &Forwarded, reason: &str, detail: String) {
        metrics::counter!(DEAD_LETTERS, "reason" => reason.to_string()).increment(1);
        let (key, payload) = f.event.encode();
        self.dead.push(DeadLetterRecord {
            v: 1,
            source_topic: Topic::Events.name().to_string(),
            source_partition: f.source.partition,
            source_offset: f.source.offset,
            source_key: String::from_utf8_lossy(&key).into_owned(),
            reason: reason.to_string(),
            detail,
            payload: String::from_utf8_lossy(&payload).into_owned(),
            at: chrono::Utc::now(),
        });
    }

    fn len(&self) -> usize {
        self.rows.clicks.len()
            + self.rows.events.len()
            + self.rows.ledger.len()
            + self.dead.len()
            + self.forward.len()
    }
}

/// State entries changed and removed since the last checkpoint.
#[derive(Debug, Default)]
pub struct StateChanges {
    /// Entries to insert or overwrite.
    pub puts: Vec<(Vec<u8>, Vec<u8>)>,
    /// Entries to remove.
    pub deletes: Vec<Vec<u8>>,
}

/// Bytes held by state changes not yet checkpointed: the keys and values to put and the keys
/// to delete.
pub fn pending_bytes<'a>(
    puts: impl Iterator<Item = (&'a Vec<u8>, &'a Vec<u8>)>,
    deletes: impl Iterator<Item = &'a Vec<u8>>,
) -> usize {
    puts.map(|(k, v)| k.len() + v.len()).sum::<usize>() + deletes.map(Vec::len).sum::<usize>()
}

/// The state one partition keeps between records.
pub trait PartitionState: Send + Sized + 'static {
    /// Rebuilds the state from its checkpointed entries.
    fn restore(
        partition: u32,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        ctx: &StepCtx,
    ) -> Result<Self, String>;
    /// Processes one record.
    fn process(&mut self, msg: &Message, ctx: &StepCtx, out: &mut Output);
    /// Entries changed and removed since the last call.
    fn take_changes(&mut self) -> StateChanges;
    /// Approximate bytes held.
    fn memory_bytes(&self) -> usize;
    /// Called about every [`TICK`] of wall-clock time, records or not: what the step does
    /// at a moment rather than on a record (announcing a commission whose hold ended). Returns
    /// whether it changed its state or `out`, which then is written and checkpointed as a
    /// batch. Nothing by default.
    fn tick(
        &mut self,
        _now: chrono::DateTime<chrono::Utc>,
        _ctx: &StepCtx,
        _out: &mut Output,
    ) -> bool {
        false
    }
}

/// How often [`PartitionState::tick`] is called.
pub const TICK: Duration = Duration::from_secs(1);

struct Pipeline<S> {
    topic: Topic,
    wiring: Wiring,
    keys: ClickKeys,
    dedup: crate::dedup::DedupOptions,
    windows: crate::events::IdWindows,
    limits: BatchLimits,
    states: HashMap<u32, S>,
    /// Next offset per partition with processed, unwritten records.
    pending: BTreeMap<u32, u64>,
    /// Next offset of every assigned partition, for checkpoints of partitions that ticked
    /// without records.
    positions: HashMap<u32, u64>,
    /// Partitions whose tick changed something not yet written.
    ticked: BTreeSet<u32>,
    last_tick: Instant,
    out: Output,
    opened: Option<Instant>,
    /// Time the open batch spent polling and processing.
    polled: Duration,
    processed: Duration,
    /// The batch being written, if any.
    in_flight: Option<write::InFlight>,
}

fn stream(topic: Topic, partition: u32) -> String {
    format!("{}/{partition}", topic.name())
}

/// Runs the chain for `topic` until `stop` is cancelled; the open batch is written and
/// committed before returning. `dedup` sizes the clicks step, `windows` the events step.
pub async fn run<S: PartitionState>(
    topic: Topic,
    wiring: Wiring,
    keys: ClickKeys,
    dedup: crate::dedup::DedupOptions,
    windows: crate::events::IdWindows,
    limits: BatchLimits,
    stop: CancellationToken,
) -> Result<(), PipelineError> {
    let mut p = Pipeline::<S> {
        topic,
        wiring,
        keys,
        dedup,
        windows,
        limits,
        states: HashMap::new(),
        pending: BTreeMap::new(),
        positions: HashMap::new(),
        ticked: BTreeSet::new(),
        last_tick: Instant::now(),
        out: Output::default(),
        opened: None,
        polled: Duration::ZERO,
        processed: Duration::ZERO,
        in_flight: None,
    };
    loop {
        let room = p.limits.max_records.saturating_sub(p.out.len()).max(1);
        let wait = match p.opened {
            Some(t) => p.limits.max_wait.saturating_sub(t.elapsed()),
            None => Duration::from_millis(500),
        }
        // While a batch is being written, look back soon to commit it once it is durable.
        .min(
            p.in_flight
                .as_ref()
                .map_or(Duration::MAX, |_| IN_FLIGHT_POLL),
        );
        let polling = Instant::now();
        let polled = tokio::select! {
            _ = stop.cancelled() => {
                p.flush().await?;
                p.settle().await;
                return Ok(());
            }
            polled = p.wiring.consumer.poll(room, wait) => polled,
        };
        // A poll counts toward the batch it fills: one that brought records or ran while a
        // batch was open.
        if p.opened.is_some() || matches!(&polled, Ok(ConsumerEvent::Records(r)) if !r.is_empty()) {
            p.polled += polling.elapsed();
        }
        match polled {
            Ok(ConsumerEvent::Assigned(parts)) => {
                p.settle().await;
                p.assign(&parts).await?;
                p.report_partitions();
            }
            Ok(ConsumerEvent::Revoked(parts)) => {
                p.flush().await?;
                p.settle().await;
                for part in parts {
                    p.states.remove(&part);
                    p.positions.remove(&part);
                }
                p.report_partitions();
            }
            Ok(ConsumerEvent::Records(records)) => {
                let processing = Instant::now();
                p.process(&records);
                p.processed += processing.elapsed();
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!(topic = %topic, error = %e, "poll failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e.into()),
        }
        if p.last_tick.elapsed() >= TICK {
            p.tick();
        }
        let due = p.opened.is_some_and(|t| t.elapsed() >= p.limits.max_wait);
        if p.out.len() >= p.limits.max_records || due {
            p.flush().await?;
        } else if p
            .in_flight
            .as_ref()
            .is_some_and(write::InFlight::is_finished)
        {
            p.settle().await;
        }
    }
}

/// Longest poll while a batch is being written: its offsets are committed soon after.
const IN_FLIGHT_POLL: Duration = Duration::from_millis(5);

impl<S: PartitionState> Pipeline<S> {
    fn ctx(&self) -> StepCtx {
        StepCtx {
            catalog: self.wiring.catalog.snapshot(),
            keys: self.keys.clone(),
            dedup: self.dedup,
            windows: self.windows,
        }
    }

    fn report_partitions(&self) {
        metrics::gauge!(PARTITIONS, "topic" => self.topic.name()).set(self.states.len() as f64);
    }

    async fn assign(&mut self, parts: &[u32]) -> Result<(), PipelineError> {
        let ctx = self.ctx();
        let mut restored_at = Vec::new();
        for &part in parts {
            let name = stream(self.topic, part);
            let restored = loop {
                match self.wiring.store.restore(&name).await {
                    Ok(r) => break r,
                    Err(e) => {
                        tracing::warn!(stream = %name, error = %e, "restore failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            };
            let (offset, entries) = match restored {
                Some(r) => (r.next_offset, r.entries),
                None => (0, Vec::new()),
            };
            let state =
                S::restore(part, entries, &ctx).map_err(|reason| PipelineError::Restore {
                    stream: name.clone(),
                    reason,
                })?;
            self.wiring.consumer.seek(part, offset)?;
            tracing::info!(stream = %name, offset, "partition assigned");
            self.states.insert(part, state);
            self.positions.insert(part, offset);
            restored_at.push((part, offset));
        }
        // The group's position follows the checkpoint even when a commit was lost in the
        // hand-over and nothing new arrives.
        let restored_at: Vec<(u32, u64)> =
            restored_at.into_iter().filter(|(_, o)| *o > 0).collect();
        if let Err(e) = self.wiring.consumer.commit(&restored_at).await {
            tracing::warn!(error = %e, "offset commit failed");
        }
        Ok(())
    }

    fn process(&mut self, records: &[Message]) {
        if records.is_empty() {
            return;
        }
        let ctx = self.ctx();
        for m in records {
            let Some(state) = self.states.get_mut(&m.partition) else {
                continue;
            };
            state.process(m, &ctx, &mut self.out);
            self.pending.insert(m.partition, m.offset + 1);
            self.positions.insert(m.partition, m.offset + 1);
        }
        metrics::counter!(RECORDS, "topic" => self.topic.name()).increment(records.len() as u64);
        self.opened.get_or_insert_with(Instant::now);
    }

    /// Ticks every partition's state; a partition whose state changed joins the open batch.
    fn tick(&mut self) {
        self.last_tick = Instant::now();
        let ctx = self.ctx();
        let now = chrono::Utc::now();
        for (&part, state) in &mut self.states {
            if state.tick(now, &ctx, &mut self.out) {
                self.ticked.insert(part);
                self.opened.get_or_insert_with(Instant::now);
            }
        }
    }

    /// Starts writing the open batch (after the one in flight, if any, is durable).
    async fn flush(&mut self) -> Result<(), PipelineError> {
        for part in std::mem::take(&mut self.ticked) {
            if let Some(&at) = self.positions.get(&part) {
                self.pending.entry(part).or_insert(at);
            }
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        // One batch in flight at most, and batches durable in order.
        self.settle().await;
        let started = Instant::now();
        let records = self.out.len();
        let out = std::mem::take(&mut self.out);
        self.opened = None;

        let checkpoints: Vec<Checkpoint> = self
            .pending
            .iter()
            .map(|(&part, &next)| {
                let StateChanges { puts, deletes } = self
                    .states
                    .get_mut(&part)
                    .map(|s| s.take_changes())
                    .unwrap_or_default();
                Checkpoint {
                    stream: stream(self.topic, part),
                    next_offset: next,
                    puts,
                    deletes,
                }
            })
            .collect();

        self.in_flight = Some(write::InFlight::start(
            self.wiring.producer.clone(),
            self.wiring.store.clone(),
            out,
            checkpoints,
            write::Written {
                offsets: std::mem::take(&mut self.pending).into_iter().collect(),
                started,
                ended: None,
                records,
                polled: std::mem::take(&mut self.polled),
                processed: std::mem::take(&mut self.processed),
            },
        ));
        Ok(())
    }

    /// Waits for the batch in flight, if any, to be durable; then commits its offsets and
    /// reports its stages.
    async fn settle(&mut self) {
        let Some(in_flight) = self.in_flight.take() else {
            return;
        };
        let Some((times, batch)) = in_flight.finish().await else {
            return;
        };
        let committing = Instant::now();
        if let Err(e) = self.wiring.consumer.commit(&batch.offsets).await {
            // The checkpoint in the store already holds these positions; the group's commit
            // only serves lag monitoring and is retried with the next batch.
            tracing::warn!(error = %e, "offset commit failed");
        }
        let topic = self.topic.name();
        batch.report(topic, times, committing.elapsed());
        for (part, s) in &self.states {
            metrics::gauge!(STATE_BYTES, "topic" => topic, "partition" => part.to_string())
                .set(s.memory_bytes() as f64);
        }
    }
}
