//! Consumers of the embedded log, the group positions they commit, and the registration of
//! groups that retention respects.

use super::retention::GROUPS;
use super::{OFFSETS, Shared, messages, partition_table, storage, table_name};
#[cfg(doc)]
use crate::ConsumerFactory;
use crate::{BusError, Consumer, ConsumerEvent, Message};
use async_trait::async_trait;
use clicktrail_schemas::Topic;
use redb::{Database, ReadableDatabase, ReadableTable, WriteTransaction};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub(super) fn offsets_key(group: &str, topic: Topic, partition: u32) -> String {
    format!("{group}/{}/{partition}", topic.name())
}

pub(super) fn read_committed(
    db: &Database,
    group: &str,
    topic: Topic,
    p: u32,
) -> Result<Option<u64>, BusError> {
    let txn = db.begin_read().map_err(storage)?;
    let table = txn.open_table(OFFSETS).map_err(storage)?;
    Ok(table
        .get(offsets_key(group, topic, p).as_str())
        .map_err(storage)?
        .map(|v| v.value()))
}

/// Registers `group` as a reader of `topic` (retention then keeps what it has not committed
/// past) and returns its committed position per partition, 0 where it has none, in one
/// transaction.
///
/// Errors: [`BusError::Storage`] when the database fails.
pub(super) fn register_group(
    db: &Database,
    group: &str,
    topic: Topic,
    partitions: u32,
) -> Result<HashMap<u32, u64>, BusError> {
    let txn = db.begin_write().map_err(storage)?;
    let mut positions = HashMap::new();
    {
        let mut groups = txn.open_table(GROUPS).map_err(storage)?;
        if groups
            .get((topic.name(), group))
            .map_err(storage)?
            .is_none()
        {
            groups.insert((topic.name(), group), ()).map_err(storage)?;
        }
        let offsets = txn.open_table(OFFSETS).map_err(storage)?;
        for p in 0..partitions {
            let committed = offsets
                .get(offsets_key(group, topic, p).as_str())
                .map_err(storage)?
                .map(|v| v.value());
            positions.insert(p, committed.unwrap_or(0));
        }
    }
    txn.commit().map_err(storage)?;
    Ok(positions)
}

/// Registers every group that has committed a position, so that a log written before groups
/// were registered keeps protecting what they have not read.
///
/// Errors: [`BusError::Storage`] when the database fails.
pub(super) fn register_committed_groups(txn: &WriteTransaction) -> Result<(), BusError> {
    let mut found = Vec::new();
    for item in txn
        .open_table(OFFSETS)
        .map_err(storage)?
        .iter()
        .map_err(storage)?
    {
        let (k, _) = item.map_err(storage)?;
        // `{group}/{topic}/{partition}`: topic names hold no '/', group names may.
        let mut parts = k.value().rsplitn(3, '/');
        let (_, topic, group) = (parts.next(), parts.next(), parts.next());
        if let (Some(topic), Some(group)) = (topic.and_then(Topic::from_name), group) {
            found.push((topic, group.to_string()));
        }
    }
    let mut groups = txn.open_table(GROUPS).map_err(storage)?;
    for (topic, group) in found {
        if groups
            .get((topic.name(), group.as_str()))
            .map_err(storage)?
            .is_none()
        {
            groups
                .insert((topic.name(), group.as_str()), ())
                .map_err(storage)?;
        }
    }
    Ok(())
}

/// A consumer of the embedded log. The log has one process, so a consumer is assigned every
/// partition of its topic on its first poll.
pub(super) struct EmbeddedConsumer {
    pub(super) shared: Arc<Shared>,
    /// The log's writer: commits join its next group commit.
    pub(super) writer: tokio::sync::mpsc::Sender<super::writer::Request>,
    /// `None` for a reader outside any group.
    pub(super) group: Option<String>,
    pub(super) topic: Topic,
    pub(super) positions: HashMap<u32, u64>,
    pub(super) assigned: bool,
    pub(super) version: watch::Receiver<u64>,
}

impl EmbeddedConsumer {
    /// Moves positions below a partition's first retained offset up to it, so a consumer whose
    /// records were removed continues at the first record left.
    fn skip_removed(&mut self) {
        let starts = self.shared.starts.read();
        for (p, pos) in self.positions.iter_mut() {
            if let Some(&start) = starts.get(&(self.topic, *p)) {
                *pos = (*pos).max(start);
            }
        }
    }

    fn has_data(&self) -> bool {
        let ends = self.shared.ends.read();
        self.positions
            .iter()
            .any(|(p, pos)| ends.get(&(self.topic, *p)).copied().unwrap_or(0) > *pos)
    }

    async fn read(&self, max: usize) -> Result<Vec<Message>, BusError> {
        let shared = self.shared.clone();
        let topic = self.topic;
        let mut positions: Vec<(u32, u64)> = self.positions.iter().map(|(p, o)| (*p, *o)).collect();
        positions.sort();
        tokio::task::spawn_blocking(move || {
            let txn = shared.db.begin_read().map_err(storage)?;
            let mut out = Vec::new();
            let per = (max / positions.len().max(1)).max(1);
            for (p, pos) in positions {
                let name = table_name(topic, p);
                let table = txn.open_table(partition_table(&name)).map_err(storage)?;
                // Start at the block holding `pos`, if one does.
                let from = match table.range(..=pos).map_err(storage)?.next_back() {
                    Some(item) => item.map_err(storage)?.0.value(),
                    None => pos,
                };
                let mut left = per;
                for item in table.range(from..).map_err(storage)? {
                    let (k, v) = item.map_err(storage)?;
                    let first = k.value();
                    let m = messages(topic, p, first, v.value(), pos.saturating_sub(first), left)?;
                    left -= m.len();
                    out.extend(m);
                    if left == 0 {
                        break;
                    }
                }
            }
            Ok(out)
        })
        .await
        .map_err(storage)?
    }
}

#[async_trait]
impl Consumer for EmbeddedConsumer {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<ConsumerEvent, BusError> {
        if !self.assigned {
            self.assigned = true;
            let mut parts: Vec<u32> = self.positions.keys().copied().collect();
            parts.sort();
            return Ok(ConsumerEvent::Assigned(parts));
        }
        self.skip_removed();
        if !self.has_data() {
            self.version.mark_unchanged();
            let _ = tokio::time::timeout(wait, self.version.changed()).await;
            self.skip_removed();
            if !self.has_data() {
                return Ok(ConsumerEvent::Records(Vec::new()));
            }
        }
        let records = self.read(max).await?;
        for m in &records {
            self.positions.insert(m.partition, m.offset + 1);
        }
        Ok(ConsumerEvent::Records(records))
    }

    fn seek(&mut self, partition: u32, offset: u64) -> Result<(), BusError> {
        match self.positions.get_mut(&partition) {
            Some(pos) => {
                *pos = offset;
                Ok(())
            }
            None => Err(BusError::Invalid(format!(
                "partition {partition} of {} is not assigned",
                self.topic
            ))),
        }
    }

    /// Queues the positions for the writer's next group commit, with whatever appends wait for
    /// it, and returns without waiting for it (as on Kafka: a partition resumes from the store's
    /// checkpoint, so a commit lost in a crash only delays retention). The log's
    /// [`ConsumerFactory::committed`] and new consumers of the group wait for every commit
    /// queued before them. Errors: [`BusError::Closed`] once the log is closed.
    async fn commit(&mut self, offsets: &[(u32, u64)]) -> Result<(), BusError> {
        let Some(group) = &self.group else {
            return Err(BusError::Invalid(
                "a reader outside a group cannot commit".into(),
            ));
        };
        if offsets.is_empty() {
            return Ok(());
        }
        let keys: Vec<(String, u64)> = offsets
            .iter()
            .map(|(p, o)| (offsets_key(group, self.topic, *p), *o))
            .collect();
        self.writer
            .send(super::writer::Request::Append(super::writer::WriteReq {
                close: false,
                topic: self.topic,
                records: Vec::new(),
                offsets: keys,
                reply: None,
            }))
            .await
            .map_err(|_| BusError::Closed)
    }
}
