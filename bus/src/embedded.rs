//! The embedded durable log: the single-node bus, in one `redb` file in the data directory.
//!
//! Each topic partition is a table from offset to record; consumer group positions live in
//! their own table. One writer task owns every append: it drains whatever requests are waiting
//! and commits them in one transaction (group commit), fsynced before any caller is answered.
//! Enqueued records (clicks) wait at most `linger` for company, so a record enqueued at time t is
//! durable by t + linger + one commit. Offsets are dense and start at 0, as in Kafka.

use crate::{BusError, Consumer, ConsumerFactory, Delivery, Message, Producer, TailReader};
use async_trait::async_trait;
use clicktrail_schemas::Topic;
use clicktrail_schemas::metric_names::bus::{LOG_COMMITS, QUEUE_FULL, RECORDS_APPENDED};
use clicktrail_schemas::topics::partition_for;
use parking_lot::RwLock;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

mod consumer;

use consumer::{EmbeddedConsumer, read_committed};

const OFFSETS: TableDefinition<&str, u64> = TableDefinition::new("consumer-offsets");
/// First retained offset per partition table, once records before it were removed.
const STARTS: TableDefinition<&str, u64> = TableDefinition::new("log-starts");

fn storage(e: impl std::fmt::Display) -> BusError {
    BusError::Storage(e.to_string())
}

fn table_name(topic: Topic, partition: u32) -> String {
    format!("log/{}/{}", topic.name(), partition)
}

fn encode(ts_ms: i64, key: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(12 + key.len() + payload.len());
    v.extend_from_slice(&ts_ms.to_be_bytes());
    v.extend_from_slice(&(key.len() as u32).to_be_bytes());
    v.extend_from_slice(key);
    v.extend_from_slice(payload);
    v
}

fn decode(topic: Topic, partition: u32, offset: u64, raw: &[u8]) -> Result<Message, BusError> {
    if raw.len() < 12 {
        return Err(storage(format!(
            "record {topic}/{partition}/{offset} is truncated"
        )));
    }
    let ts = i64::from_be_bytes(raw[0..8].try_into().expect("8 bytes"));
    let klen = u32::from_be_bytes(raw[8..12].try_into().expect("4 bytes")) as usize;
    if raw.len() < 12 + klen {
        return Err(storage(format!(
            "record {topic}/{partition}/{offset} is truncated"
        )));
    }
    Ok(Message {
        topic,
        partition,
        offset,
        key: raw[12..12 + klen].to_vec(),
        payload: raw[12 + klen..].to_vec(),
        timestamp_ms: ts,
    })
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
        }
    }
}

struct WriteReq {
    /// Stop the writer once this request is answered.
    close: bool,
    topic: Topic,
    records: Vec<(Vec<u8>, Vec<u8>)>,
    /// `None` for enqueued records; a flush request has no records.
    reply: Option<oneshot::Sender<Result<Vec<Delivery>, BusError>>>,
}

struct Shared {
    db: Arc<Database>,
    partitions: HashMap<Topic, u32>,
    /// Next offset to write per (topic, partition): the end offsets.
    ends: RwLock<HashMap<(Topic, u32), u64>>,
    /// Bumped after every commit; consumers wait on it.
    version: watch::Sender<u64>,
}

/// The embedded log: a [`Producer`], a [`ConsumerFactory`] and a [`TailReader`].
#[derive(Clone)]
pub struct EmbeddedLog {
    shared: Arc<Shared>,
    tx: mpsc::Sender<WriteReq>,
}

impl EmbeddedLog {
    /// Opens (or creates) the log at `path` and starts its writer task.
    pub fn open(path: &Path, options: LogOptions) -> Result<Self, BusError> {
        let db = Database::create(path).map_err(storage)?;
        let mut ends = HashMap::new();
        {
            let txn = db.begin_write().map_err(storage)?;
            txn.open_table(OFFSETS).map_err(storage)?;
            let starts = txn.open_table(STARTS).map_err(storage)?;
            for (&topic, &n) in &options.partitions {
                for p in 0..n {
                    let name = table_name(topic, p);
                    let table = txn
                        .open_table(TableDefinition::<u64, &[u8]>::new(&name))
                        .map_err(storage)?;
                    let start = starts
                        .get(name.as_str())
                        .map_err(storage)?
                        .map(|v| v.value())
                        .unwrap_or(0);
                    let end = table
                        .last()
                        .map_err(storage)?
                        .map(|(k, _)| k.value() + 1)
                        .unwrap_or(start);
                    ends.insert((topic, p), end);
                }
            }
            drop(starts);
            txn.commit().map_err(storage)?;
        }
        let (version, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            db: Arc::new(db),
            partitions: options.partitions,
            ends: RwLock::new(ends),
            version,
        });
        let (tx, rx) = mpsc::channel(options.queue_capacity);
        tokio::spawn(writer(shared.clone(), rx, options.linger));
        Ok(EmbeddedLog { shared, tx })
    }

    /// Makes everything queued durable and stops the writer. Appends after this fail with
    /// [`BusError::Closed`]; the file is released once every consumer is dropped too.
    pub async fn close(&self) -> Result<(), BusError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(WriteReq {
                close: true,
                topic: Topic::Clicks,
                records: Vec::new(),
                reply: Some(reply),
            })
            .await
            .map_err(|_| BusError::Closed)?;
        rx.await.map_err(|_| BusError::Closed)?.map(|_| ())
    }

    /// Partitions of a topic.
    pub fn partitions(&self, topic: Topic) -> u32 {
        self.shared.partitions.get(&topic).copied().unwrap_or(1)
    }

    /// Removes the records of a partition before `offset`; offsets of later records and of
    /// records appended afterwards do not change.
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
            {
                let mut table = txn
                    .open_table(TableDefinition::<u64, &[u8]>::new(&name))
                    .map_err(storage)?;
                table.retain_in(..offset, |_, _| false).map_err(storage)?;
                let mut starts = txn.open_table(STARTS).map_err(storage)?;
                let current = starts
                    .get(name.as_str())
                    .map_err(storage)?
                    .map(|v| v.value());
                if current.is_none_or(|c| offset > c) {
                    starts.insert(name.as_str(), offset).map_err(storage)?;
                }
            }
            txn.commit().map_err(storage)
        })
        .await
        .map_err(storage)?
    }

    fn new_consumer(
        &self,
        group: Option<&str>,
        topic: Topic,
    ) -> Result<Box<dyn Consumer>, BusError> {
        let n = self.partitions(topic);
        let mut positions = HashMap::new();
        for p in 0..n {
            let committed = match group {
                Some(g) => read_committed(&self.shared.db, g, topic, p)?,
                None => None,
            };
            positions.insert(p, committed.unwrap_or(0));
        }
        Ok(Box::new(EmbeddedConsumer {
            shared: self.shared.clone(),
            group: group.map(str::to_string),
            topic,
            positions,
            assigned: false,
            version: self.shared.version.subscribe(),
        }))
    }
}

async fn writer(shared: Arc<Shared>, mut rx: mpsc::Receiver<WriteReq>, linger: Duration) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        if batch[0].reply.is_none() {
            // Only enqueued records so far: wait for company, but not past the linger interval
            // and not once someone is waiting for an answer.
            let deadline = tokio::time::sleep(linger);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = &mut deadline => break,
                    next = rx.recv() => match next {
                        Some(req) => {
                            let urgent = req.reply.is_some();
                            batch.push(req);
                            if urgent { break; }
                        }
                        None => break,
                    },
                }
            }
        }
        while let Ok(req) = rx.try_recv() {
            batch.push(req);
            if batch.len() >= 4096 {
                break;
            }
        }
        let closing = batch.iter().any(|r| r.close);
        let shared2 = shared.clone();
        let (batch, result) = tokio::task::spawn_blocking(move || {
            let result = commit(&shared2, &batch);
            (batch, result)
        })
        .await
        .expect("log commit task panicked");
        match result {
            Ok(deliveries) => {
                shared.version.send_modify(|v| *v += 1);
                for (req, d) in batch.into_iter().zip(deliveries) {
                    if let Some(reply) = req.reply {
                        let _ = reply.send(Ok(d));
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "embedded log commit failed");
                for req in batch {
                    if let Some(reply) = req.reply {
                        let _ = reply.send(Err(storage(&e)));
                    }
                }
            }
        }
        if closing {
            rx.close();
            while let Ok(req) = rx.try_recv() {
                if let Some(reply) = req.reply {
                    let _ = reply.send(Err(BusError::Closed));
                }
            }
            return;
        }
    }
}

fn commit(shared: &Shared, batch: &[WriteReq]) -> Result<Vec<Vec<Delivery>>, BusError> {
    let now = chrono::Utc::now().timestamp_millis();
    let txn = shared.db.begin_write().map_err(storage)?;
    let mut ends = shared.ends.read().clone();
    let mut out = Vec::with_capacity(batch.len());
    let mut appended: HashMap<Topic, u64> = HashMap::new();
    {
        let mut tables = HashMap::new();
        for req in batch {
            let n = shared.partitions.get(&req.topic).copied().unwrap_or(1);
            let mut deliveries = Vec::with_capacity(req.records.len());
            for (key, payload) in &req.records {
                let partition = partition_for(key, n);
                let end = ends.entry((req.topic, partition)).or_insert(0);
                let offset = *end;
                *end += 1;
                let table = match tables.entry((req.topic, partition)) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        let name = table_name(req.topic, partition);
                        v.insert(
                            txn.open_table(TableDefinition::<u64, &[u8]>::new(&name))
                                .map_err(storage)?,
                        )
                    }
                };
                table
                    .insert(offset, encode(now, key, payload).as_slice())
                    .map_err(storage)?;
                deliveries.push(Delivery {
                    partition,
                    offset,
                    spooled: false,
                });
            }
            *appended.entry(req.topic).or_default() += req.records.len() as u64;
            out.push(deliveries);
        }
    }
    txn.commit().map_err(storage)?;
    *shared.ends.write() = ends;
    metrics::counter!(LOG_COMMITS).increment(1);
    for (topic, n) in appended {
        metrics::counter!(RECORDS_APPENDED, "topic" => topic.name()).increment(n);
    }
    Ok(out)
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
            .send(WriteReq {
                close: false,
                topic,
                records,
                reply: Some(reply),
            })
            .await
            .map_err(|_| BusError::Closed)?;
        rx.await.map_err(|_| BusError::Closed)?
    }

    fn enqueue(&self, topic: Topic, key: Vec<u8>, payload: Vec<u8>) -> Result<(), BusError> {
        self.tx
            .try_send(WriteReq {
                close: false,
                topic,
                records: vec![(key, payload)],
                reply: None,
            })
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
    async fn consumer(&self, group: &str, topic: Topic) -> Result<Box<dyn Consumer>, BusError> {
        self.new_consumer(Some(group), topic)
    }

    async fn reader(&self, topic: Topic) -> Result<Box<dyn Consumer>, BusError> {
        self.new_consumer(None, topic)
    }

    async fn end_offsets(&self, topic: Topic) -> Result<Vec<u64>, BusError> {
        let ends = self.shared.ends.read();
        Ok((0..self.partitions(topic))
            .map(|p| ends.get(&(topic, p)).copied().unwrap_or(0))
            .collect())
    }

    async fn committed(&self, group: &str, topic: Topic) -> Result<Vec<Option<u64>>, BusError> {
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
                let table = txn
                    .open_table(TableDefinition::<u64, &[u8]>::new(&name))
                    .map_err(storage)?;
                let len = table.len().map_err(storage)? as usize;
                for item in table.iter().map_err(storage)?.skip(len.saturating_sub(n)) {
                    let (k, v) = item.map_err(storage)?;
                    out.push(decode(topic, p, k.value(), v.value())?);
                }
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
