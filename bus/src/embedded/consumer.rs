//! Consumers of the embedded log and the group positions they commit.

use super::{OFFSETS, Shared, decode, storage, table_name};
use crate::{BusError, Consumer, ConsumerEvent, Message};
use async_trait::async_trait;
use clicktrail_schemas::Topic;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
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

/// A consumer of the embedded log. The log has one process, so a consumer is assigned every
/// partition of its topic on its first poll.
pub(super) struct EmbeddedConsumer {
    pub(super) shared: Arc<Shared>,
    /// `None` for a reader outside any group.
    pub(super) group: Option<String>,
    pub(super) topic: Topic,
    pub(super) positions: HashMap<u32, u64>,
    pub(super) assigned: bool,
    pub(super) version: watch::Receiver<u64>,
}

impl EmbeddedConsumer {
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
                let table = txn
                    .open_table(TableDefinition::<u64, &[u8]>::new(&name))
                    .map_err(storage)?;
                for item in table.range(pos..).map_err(storage)?.take(per) {
                    let (k, v) = item.map_err(storage)?;
                    out.push(decode(topic, p, k.value(), v.value())?);
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
        if !self.has_data() {
            self.version.mark_unchanged();
            let _ = tokio::time::timeout(wait, self.version.changed()).await;
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

    async fn commit(&mut self, offsets: &[(u32, u64)]) -> Result<(), BusError> {
        let Some(group) = &self.group else {
            return Err(BusError::Invalid(
                "a reader outside a group cannot commit".into(),
            ));
        };
        let shared = self.shared.clone();
        let keys: Vec<(String, u64)> = offsets
            .iter()
            .map(|(p, o)| (offsets_key(group, self.topic, *p), *o))
            .collect();
        tokio::task::spawn_blocking(move || {
            let txn = shared.db.begin_write().map_err(storage)?;
            {
                let mut table = txn.open_table(OFFSETS).map_err(storage)?;
                for (k, o) in keys {
                    let current = table.get(k.as_str()).map_err(storage)?.map(|v| v.value());
                    if current.is_none_or(|c| o > c) {
                        table.insert(k.as_str(), o).map_err(storage)?;
                    }
                }
            }
            txn.commit().map_err(storage)
        })
        .await
        .map_err(storage)?
    }
}
