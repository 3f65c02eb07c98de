//! The embedded durable log: the single-node bus, in one `redb` file in the data directory.
//!
//! Each topic partition is a table from the offset of a block's first record to the block: the
//! records appended to that partition in one commit ([`block`]); consumer group positions live
//! in their own table. One writer task owns every append: it drains whatever requests are waiting
//! and commits them in one transaction (group commit), fsynced before any caller is answered.
//! Enqueued records (clicks) wait at most `linger` for company, so a record enqueued at time t is
//! durable by t + linger + one commit. Offsets are dense and start at 0, as in Kafka.
//!
//! Retention ([`retention`]) removes old records of every topic but `catalog`, by age and by
//! size, never past the committed position of a group registered for the topic; the writer runs
//! it a bounded chunk at a time between appends. Removing records never changes offsets: a
//! partition's first retained offset is kept (`log-starts`) and consumers below it continue
//! there.

use crate::{BusError, Consumer, ConsumerFactory, Delivery, Message, Producer, TailReader};
use async_trait::async_trait;
use clicktrail_schemas::Topic;
use clicktrail_schemas::metric_names::bus::QUEUE_FULL;
use parking_lot::RwLock;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

mod block;
mod consumer;
pub mod retention;
mod writer;

use consumer::{EmbeddedConsumer, read_committed, register_group};
pub use retention::RetentionReport;
use writer::{Request, WriteReq, WriterConfig};

/// Bytes of the log file's pages the process keeps in memory: 64 MiB. redb's own default is
/// 1 GiB, which a log written and read at its tail never needs (consumers read what was just
/// appended) and which made a long-running `serve` hold that much memory for cold pages.
pub const CACHE_BYTES: usize = 64 << 20;

/// Default [`LogOptions::retention_age`]: 7 days.
pub const DEFAULT_RETENTION_AGE: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Default [`LogOptions::retention_bytes`]: 1 GiB per topic partition.
pub const DEFAULT_RETENTION_BYTES: u64 = 1 << 30;
/// Default [`LogOptions::retention_interval`]: 60 s.
pub const DEFAULT_RETENTION_INTERVAL: Duration = Duration::from_secs(60);

const OFFSETS: TableDefinition<&str, u64> = TableDefinition::new("consumer-offsets");
/// First retained offset per partition table, once records before it were removed.
const STARTS: TableDefinition<&str, u64> = TableDefinition::new("log-starts");

fn storage(e: impl std::fmt::Display) -> BusError {
    BusError::Storage(e.to_string())
}

fn table_name(topic: Topic, partition: u32) -> String {
    format!("log/{}/{}", topic.name(), partition)
}

/// The table of one partition: offset → encoded record.
fn partition_table(name: &str) -> TableDefinition<'_, u64, &'static [u8]> {
    TableDefinition::new(name)
}

/// The records of one stored block from `first` on, as messages of the partition; `skip`
/// leading records are left out and at most `take` are returned.
///
/// Errors: [`BusError::Storage`] when the value is truncated or malformed.
fn messages(
    topic: Topic,
    partition: u32,
    first: u64,
    raw: &[u8],
    skip: u64,
    take: usize,
) -> Result<Vec<Message>, BusError> {
    let block = block::parse(raw).ok_or_else(|| {
        storage(format!(
            "the block at {topic}/{partition}/{first} is truncated or malformed"
        ))
    })?;
    Ok(block
        .records
        .iter()
        .enumerate()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(take)
        .map(|(i, (key, payload))| Message {
            topic,
            partition,
            offset: first + i as u64,
            key: key.to_vec(),
            payload: payload.to_vec(),
            timestamp_ms: block.ts_ms,
        })
        .collect())
}

/// Records in the stored block `raw`; a malformed block counts as one.
fn block_len(raw: &[u8]) -> u64 {
    block::parse(raw).map_or(1, |b| b.len())
}

/// Options of the embedded log.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Partitions per topic.
    pub partitions: HashMap<Topic, u32>,
    /// Longest an enqueued record waits before its commit.
    pub linger: Duration,
    /// Requests the writer queue holds before `enqueue` refuses.
    pub queue_capacity: usize,
    /// Records appended longer ago than this are removed, once every consumer group reading
    /// the topic has committed past them. `None`: no age limit. Default 7 days
    /// ([`DEFAULT_RETENTION_AGE`]). Never applies to `catalog`.
    pub retention_age: Option<Duration>,
    /// Bytes of records one topic partition keeps, counted as 8 per record plus its
    /// timestamp, key and payload (12 bytes + key + payload); past it the oldest records are
    /// removed, once every consumer group reading the topic has committed past them. `None`: no
    /// size limit. Default 1 GiB ([`DEFAULT_RETENTION_BYTES`]). Never applies to `catalog`.
    pub retention_bytes: Option<u64>,
    /// Time between background retention passes. `Duration::ZERO`: no background passes
    /// ([`EmbeddedLog::apply_retention`] still runs one). Default 60 s
    /// ([`DEFAULT_RETENTION_INTERVAL`]).
    pub retention_interval: Duration,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            partitions: Topic::ALL
                .into_iter()
                .map(|t| (t, t.default_partitions()))
                .collect(),
            linger: Duration::from_millis(100),
            queue_capacity: 65_536,
            retention_age: Some(DEFAULT_RETENTION_AGE),
            retention_bytes: Some(DEFAULT_RETENTION_BYTES),
            retention_interval: DEFAULT_RETENTION_INTERVAL,
        }
    }
}

struct Shared {
    db: Arc<Database>,
    partitions: HashMap<Topic, u32>,
    /// Next offset to write per (topic, partition): the end offsets.
    ends: RwLock<HashMap<(Topic, u32), u64>>,
    /// First retained offset per (topic, partition) that lost records to retention or
    /// truncation; consumers below it continue there.
    starts: RwLock<HashMap<(Topic, u32), u64>>,
    /// Bumped after every commit; consumers wait on it.
    version: watch::Sender<u64>,
}

impl Shared {
    /// Records that the partition's records before `start` are gone (it never moves back).
    fn note_start(&self, topic: Topic, partition: u32, start: u64) {
        let mut starts = self.starts.write();
        let s = starts.entry((topic, partition)).or_insert(0);
        *s = (*s).max(start);
    }
}

/// The embedded log: a [`Producer`], a [`ConsumerFactory`] and a [`TailReader`].
#[derive(Clone)]
pub struct EmbeddedLog {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Request>,
}

impl EmbeddedLog {
    /// Opens (or creates) the log at `path` and starts its writer task, which also runs the
    /// background retention passes. Must be called within a Tokio runtime.
    ///
    /// Errors: [`BusError::Storage`] when the file cannot be opened or read (for example
    /// because another process has it open).
    pub fn open(path: &Path, options: LogOptions) -> Result<Self, BusError> {
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(storage)?;
        let mut ends = HashMap::new();
        let mut starts = HashMap::new();
        {
            let txn = db.begin_write().map_err(storage)?;
            consumer::register_committed_groups(&txn)?;
            let mut names = Vec::new();
            {
                let stored_starts = txn.open_table(STARTS).map_err(storage)?;
                for (&topic, &n) in &options.partitions {
                    for p in 0..n {
                        let name = table_name(topic, p);
                        let table = txn.open_table(partition_table(&name)).map_err(storage)?;
                        let start = stored_starts
                            .get(name.as_str())
                            .map_err(storage)?
                            .map(|v| v.value());
                        let end = table
                            .last()
                            .map_err(storage)?
                            .map(|(k, v)| k.value() + block_len(v.value()))
                            .unwrap_or(start.unwrap_or(0));
                        ends.insert((topic, p), end);
                        if let Some(start) = start {
                            starts.insert((topic, p), start);
                        }
                        names.push(name);
                    }
                }
            }
            retention::count_missing_bytes(&txn, &names)?;
            txn.commit().map_err(storage)?;
        }
        let (version, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            db: Arc::new(db),
            partitions: options.partitions,
            ends: RwLock::new(ends),
            starts: RwLock::new(starts),
            version,
        });
        let (tx, rx) = mpsc::channel(options.queue_capacity);
        let config = WriterConfig {
            linger: options.linger,
            limits: retention::Limits {
                max_age_ms: options
                    .retention_age
                    .map(|a| i64::try_from(a.as_millis()).unwrap_or(i64::MAX)),
                max_bytes: options.retention_bytes,
            },
            retention_interval: options.retention_interval,
        };
        tokio::spawn(writer::run(shared.clone(), rx, config));
        Ok(EmbeddedLog { shared, tx })
    }

    /// Makes everything queued durable and stops the writer, and with it retention (a pass
    /// under way stops between two chunks). Appends and retention passes after this fail with
    /// [`BusError::Closed`]; the file is released once every consumer is dropped too.
    pub async fn close(&self) -> Result<(), BusError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Append(WriteReq {
                close: true,
                topic: Topic::Clicks,
                records: Vec::new(),
                offsets: Vec::new(),
                reply: Some(reply),
            }))
            .await
            .map_err(|_| BusError::Closed)?;
        rx.await.map_err(|_| BusError::Closed)?.map(|_| ())
    }

    /// Partitions of a topic.
    pub fn partitions(&self, topic: Topic) -> u32 {
        self.shared.partitions.get(&topic).copied().unwrap_or(1)
    }

    /// Runs one retention pass now, as the background passes do, judging record ages against
    /// `now`, and returns the records it removed per partition. The pass runs on the writer,
    /// a chunk at a time between appends.
    ///
    /// Errors: [`BusError::Closed`] once the log is closed; [`BusError::Storage`] when the
    /// database fails (what earlier chunks removed stays removed).
    pub async fn apply_retention(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<RetentionReport, BusError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Retain {
                now_ms: now.timestamp_millis(),
                reply,
            })
            .await
            .map_err(|_| BusError::Closed)?;
        rx.await.map_err(|_| BusError::Closed)?
    }

    /// Removes the records of a partition before `offset` (at most up to its end offset);
    /// offsets of later records and of records appended afterwards do not change.
    ///
    /// Errors: [`BusError::Storage`] when the database fails.
    pub async fn truncate(
        &self,
        topic: Topic,
        partition: u32,
        offset: u64,
    ) -> Result<(), BusError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let name = table_name(topic, partition);
            let txn = shared.db.begin_write().map_err(storage)?;
            let end = shared.ends.read().get(&(topic, partition)).copied();
            let upto = offset.min(end.unwrap_or(0));
            retention::remove_prefix(&txn, &name, upto)?;
            txn.commit().map_err(storage)?;
            shared.note_start(topic, partition, upto);
            Ok(())
        })
        .await
        .map_err(storage)?
    }

    async fn new_consumer(
        &self,
        group: Option<&str>,
        topic: Topic,
    ) -> Result<Box<dyn Consumer>, BusError> {
        let n = self.partitions(topic);
        let positions = match group {
            Some(g) => {
                // Commits are queued without waiting: let the ones queued so far land first.
                self.flush().await?;
                let shared = self.shared.clone();
                let g = g.to_string();
                tokio::task::spawn_blocking(move || register_group(&shared.db, &g, topic, n))
                    .await
                    .map_err(storage)??
            }
            None => (0..n).map(|p| (p, 0)).collect(),
        };
        Ok(Box::new(EmbeddedConsumer {
            shared: self.shared.clone(),
            writer: self.tx.clone(),
            group: group.map(str::to_string),
            topic,
            positions,
            assigned: false,
            version: self.shared.version.subscribe(),
        }))
    }
}

#[async_trait]
impl Producer for EmbeddedLog {
    async fn send_batch(
        &self,
        topic: Topic,
        records: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Vec<Delivery>, BusError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Append(WriteReq {
                close: false,
                topic,
                records,
                offsets: Vec::new(),
                reply: Some(reply),
            }))
            .await
            .map_err(|_| BusError::Closed)?;
        rx.await.map_err(|_| BusError::Closed)?
    }

    fn enqueue(&self, topic: Topic, key: Vec<u8>, payload: Vec<u8>) -> Result<(), BusError> {
        self.tx
            .try_send(Request::Append(WriteReq {
                close: false,
                topic,
                records: vec![(key, payload)],
                offsets: Vec::new(),
                reply: None,
            }))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => {
                    metrics::counter!(QUEUE_FULL, "topic" => topic.name()).increment(1);
                    BusError::QueueFull
                }
                mpsc::error::TrySendError::Closed(_) => BusError::Closed,
            })
    }

    async fn flush(&self) -> Result<(), BusError> {
        self.send_batch(Topic::Clicks, Vec::new()).await.map(|_| ())
    }
}

#[async_trait]
impl ConsumerFactory for EmbeddedLog {
    /// Also registers `group` for `topic`, durably: from then on retention keeps every record
    /// the group has not committed past (everything, until its first commit).
    async fn consumer(&self, group: &str, topic: Topic) -> Result<Box<dyn Consumer>, BusError> {
        self.new_consumer(Some(group), topic).await
    }

    async fn reader(&self, topic: Topic) -> Result<Box<dyn Consumer>, BusError> {
        self.new_consumer(None, topic).await
    }

    async fn end_offsets(&self, topic: Topic) -> Result<Vec<u64>, BusError> {
        let ends = self.shared.ends.read();
        Ok((0..self.partitions(topic))
            .map(|p| ends.get(&(topic, p)).copied().unwrap_or(0))
            .collect())
    }

    async fn committed(&self, group: &str, topic: Topic) -> Result<Vec<Option<u64>>, BusError> {
        // Commits are queued without waiting: let the ones queued so far land first.
        self.flush().await?;
        (0..self.partitions(topic))
            .map(|p| read_committed(&self.shared.db, group, topic, p))
            .collect()
    }
}

#[async_trait]
impl TailReader for EmbeddedLog {
    async fn tail(&self, topic: Topic, n: usize) -> Result<Vec<Message>, BusError> {
        let shared = self.shared.clone();
        let parts = self.partitions(topic);
        tokio::task::spawn_blocking(move || {
            let txn = shared.db.begin_read().map_err(storage)?;
            let mut out = Vec::new();
            for p in 0..parts {
                let name = table_name(topic, p);
                let table = txn.open_table(partition_table(&name)).map_err(storage)?;
                // The last `n` records of the partition, newest block first.
                let mut blocks = Vec::new();
                let mut held = 0;
                for item in table.iter().map_err(storage)?.rev() {
                    let (k, v) = item.map_err(storage)?;
                    let m = messages(topic, p, k.value(), v.value(), 0, usize::MAX)?;
                    held += m.len();
                    blocks.push(m);
                    if held >= n {
                        break;
                    }
                }
                let mut records: Vec<Message> = blocks.into_iter().rev().flatten().collect();
                out.extend(records.split_off(records.len().saturating_sub(n)));
            }
            out.sort_by_key(|m| m.timestamp_ms);
            let skip = out.len().saturating_sub(n);
            Ok(out.split_off(skip))
        })
        .await
        .map_err(storage)?
    }
}

#[cfg(test)]
mod tests;
