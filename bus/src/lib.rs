//! How data moves: producers and consumers over the bus, behind one interface with Kafka's
//! semantics (topics, partitions, keys, offsets, consumer positions, commit after
//! acknowledgement), and the catalog follower that keeps a service's view of the catalog current.
//!
//! - [`Producer`] / [`Consumer`]: the interface every role uses.
//! - [`embedded`]: the single-node backend, a durable log in the data directory on `redb`.
//!   A durable send returns only after the write is fsynced; enqueued records (clicks) are
//!   group-committed at least every `linger` interval. Retention removes old records of every
//!   topic but `catalog`, by age and size, never past a registered group's committed position.
//! - [`kafka`]: the production backend over rdkafka, with the local spool that keeps
//!   redirects and ingest durable while the broker is unreachable.
//! - [`records`]: typed sending of the record of each topic.
//! - [`follower`]: reads `catalog` to its end before the role reports ready, then follows it.

pub mod embedded;
pub mod follower;
pub mod kafka;
pub mod records;

pub use follower::{CatalogView, CatalogWriteError};
pub use records::RecordProducer;

use async_trait::async_trait;
use clicktrail_schemas::Topic;
use std::time::Duration;

/// One record read from the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Topic it was read from.
    pub topic: Topic,
    /// Partition within the topic.
    pub partition: u32,
    /// Offset within the partition.
    pub offset: u64,
    /// Partition key.
    pub key: Vec<u8>,
    /// Payload (JSON, see `docs/wire-format.md`).
    pub payload: Vec<u8>,
    /// Append time, ms since the Unix epoch.
    pub timestamp_ms: i64,
}

/// Where an acknowledged record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Partition.
    pub partition: u32,
    /// Offset; for a spooled record, its offset in the local spool.
    pub offset: u64,
    /// The broker was unreachable and the record is durable on the local spool instead; it
    /// is replayed, in order, when the broker returns.
    pub spooled: bool,
}

/// Bus failures, with what the caller should do about them.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The producer queue is full: retry later (HTTP 503 with Retry-After).
    #[error("the producer queue is full")]
    QueueFull,
    /// The bus is shutting down or gone: retry against another instance.
    #[error("the bus is closed")]
    Closed,
    /// Storage failed: retryable after the operator looks.
    #[error("bus storage error: {0}")]
    Storage(String),
    /// A caller error: unknown topic or partition, or a bad position.
    #[error("invalid bus request: {0}")]
    Invalid(String),
}

impl BusError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, BusError::Invalid(_))
    }
}

/// Writes records. Implementations decide partitions from keys exactly as
/// [`clicktrail_schemas::topics::partition_for`] does.
#[async_trait]
pub trait Producer: Send + Sync + 'static {
    /// Appends records to a topic and returns once all of them are durable.
    async fn send_batch(
        &self,
        topic: Topic,
        records: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Vec<Delivery>, BusError>;

    /// Appends one record and returns once it is durable.
    async fn send(
        &self,
        topic: Topic,
        key: Vec<u8>,
        payload: Vec<u8>,
    ) -> Result<Delivery, BusError> {
        let mut out = self.send_batch(topic, vec![(key, payload)]).await?;
        out.pop()
            .ok_or_else(|| BusError::Storage("no delivery report".into()))
    }

    /// Queues a record without waiting; it becomes durable within the producer's linger
    /// interval. Never blocks: a full queue is an error.
    fn enqueue(&self, topic: Topic, key: Vec<u8>, payload: Vec<u8>) -> Result<(), BusError>;

    /// Makes everything queued so far durable.
    async fn flush(&self) -> Result<(), BusError>;
}

/// What a poll returned.
#[derive(Debug)]
pub enum ConsumerEvent {
    /// These partitions are now this consumer's; restore their state and seek.
    Assigned(Vec<u32>),
    /// These partitions are no longer this consumer's; commit and drop their state.
    Revoked(Vec<u32>),
    /// Records in offset order per partition (possibly none when the wait ran out).
    Records(Vec<Message>),
}

/// Reads one topic as a member of a consumer group.
#[async_trait]
pub trait Consumer: Send + Sync {
    /// The next assignment change or batch of records, waiting up to `wait` for records.
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<ConsumerEvent, BusError>;

    /// Moves the read position of an assigned partition.
    fn seek(&mut self, partition: u32, offset: u64) -> Result<(), BusError>;

    /// Commits the group's positions: each offset is the next one to read. Never moves a
    /// position backwards. On Kafka the commit is sent without waiting for the broker's answer
    /// (a failed one is logged and superseded by the next); on the embedded log it is queued
    /// for the writer's next group commit. A partition resumes from the store's checkpoint, so
    /// commits serve monitoring, retention and tools.
    async fn commit(&mut self, offsets: &[(u32, u64)]) -> Result<(), BusError>;
}

/// Makes consumers; one per topic and group.
#[async_trait]
pub trait ConsumerFactory: Send + Sync + 'static {
    /// A consumer of `topic` in `group`, positioned at the group's committed offsets (or the
    /// beginning).
    async fn consumer(&self, group: &str, topic: Topic) -> Result<Box<dyn Consumer>, BusError>;

    /// A reader of every partition of `topic` outside any group, from the positions the caller
    /// seeks to when it is assigned (the beginning otherwise). It cannot commit.
    async fn reader(&self, topic: Topic) -> Result<Box<dyn Consumer>, BusError>;

    /// The end offset (next offset to be written) of each partition, indexed by partition.
    async fn end_offsets(&self, topic: Topic) -> Result<Vec<u64>, BusError>;

    /// The group's committed position per partition, indexed by partition, without joining
    /// the group.
    async fn committed(&self, group: &str, topic: Topic) -> Result<Vec<Option<u64>>, BusError>;
}

/// Reading without a group: the last records of a topic (the admin's dead-letter view).
#[async_trait]
pub trait TailReader: Send + Sync + 'static {
    /// Up to `n` last records of every partition of `topic`, newest last.
    async fn tail(&self, topic: Topic, n: usize) -> Result<Vec<Message>, BusError>;
}
