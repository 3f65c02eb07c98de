//! Retention of the embedded log: which records a pass removes, one bounded chunk at a time.
//!
//! Every topic but `catalog` is trimmed from its oldest record. A record goes once it is older
//! than the age limit, or while its partition holds more than the size limit, and only when every
//! consumer group registered for the topic has committed past it; a topic no group reads is
//! trimmed by age and size alone. Only a prefix of a partition is ever removed, so the first
//! retained offset (`log-starts`) says what is left; offsets themselves never change.
//!
//! A pass visits the partitions in order and removes at most [`CHUNK_RECORDS`] records per
//! write transaction; the writer task commits waiting appends between chunks.

use super::consumer::offsets_key;
use super::{OFFSETS, STARTS, Shared, block, partition_table, storage, table_name};
use crate::BusError;
use clicktrail_schemas::Topic;
use clicktrail_schemas::metric_names::bus::RETENTION_REMOVED;
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use std::collections::BTreeMap;
use tokio::sync::oneshot;

/// Consumer groups registered per topic: `(topic name, group)`. A group is registered when a
/// consumer of the topic is created for it, and from then on protects the records it has not
/// committed past.
pub(super) const GROUPS: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("consumer-groups");
/// Bytes of records held per partition table (see [`record_bytes`]).
pub(super) const BYTES: TableDefinition<&str, u64> = TableDefinition::new("log-bytes");
/// Most records one retention transaction removes, which bounds how long an append waits.
pub(super) const CHUNK_RECORDS: usize = 4096;

/// Bytes a stored record counts for against the size limit: its 8-byte offset plus its encoded
/// value (timestamp, key length, key, payload).
pub(super) fn record_bytes(value_len: usize) -> u64 {
    8 + value_len as u64
}

/// What one retention pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Records removed per (topic, partition); partitions that lost nothing are absent.
    pub removed: BTreeMap<(Topic, u32), u64>,
}

impl RetentionReport {
    /// Records removed from one partition.
    pub fn removed_from(&self, topic: Topic, partition: u32) -> u64 {
        self.removed.get(&(topic, partition)).copied().unwrap_or(0)
    }

    /// Records removed from every partition of a topic.
    pub fn removed_from_topic(&self, topic: Topic) -> u64 {
        self.removed
            .iter()
            .filter(|((t, _), _)| *t == topic)
            .map(|(_, n)| n)
            .sum()
    }

    /// Records removed in all.
    pub fn total(&self) -> u64 {
        self.removed.values().sum()
    }
}

/// The limits a pass applies.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Records appended more than this many ms before the pass's `now` are expired.
    pub max_age_ms: Option<i64>,
    /// Bytes of records a partition keeps.
    pub max_bytes: Option<u64>,
}

/// A retention pass in progress, advanced a chunk at a time by [`step`].
pub(super) struct Pass {
    /// The pass's notion of now, ms since the Unix epoch.
    now_ms: i64,
    /// Index of the partition being trimmed in [`targets`].
    cursor: usize,
    report: RetentionReport,
    /// Who waits for the report; `None` for a background pass.
    reply: Option<oneshot::Sender<Result<RetentionReport, BusError>>>,
}

impl Pass {
    /// A pass judging ages against `now_ms`, answering `reply` when it ends.
    pub(super) fn new(
        now_ms: i64,
        reply: Option<oneshot::Sender<Result<RetentionReport, BusError>>>,
    ) -> Self {
        Pass {
            now_ms,
            cursor: 0,
            report: RetentionReport::default(),
            reply,
        }
    }

    /// Ends the pass: logs what it removed and answers whoever waits with the report, or with
    /// `error` when the pass could not finish.
    pub(super) fn finish(self, error: Option<BusError>) {
        match error {
            None => {
                let total = self.report.total();
                if total > 0 {
                    tracing::info!(removed = total, "embedded log retention pass");
                }
                if let Some(reply) = self.reply {
                    let _ = reply.send(Ok(self.report));
                }
            }
            Some(e) => {
                if let Some(reply) = self.reply {
                    let _ = reply.send(Err(e));
                }
            }
        }
    }
}

/// The partitions a pass visits, in order: every partition of every topic but `catalog`.
fn targets(shared: &Shared) -> Vec<(Topic, u32)> {
    let mut topics: Vec<(Topic, u32)> = shared
        .partitions
        .iter()
        .filter(|(t, _)| **t != Topic::Catalog)
        .map(|(t, n)| (*t, *n))
        .collect();
    topics.sort();
    topics
        .into_iter()
        .flat_map(|(t, n)| (0..n).map(move |p| (t, p)))
        .collect()
}

/// Runs the next chunk of `pass`: removes up to [`CHUNK_RECORDS`] records from the partition
/// it is at, in one transaction. Returns whether the pass has visited every partition.
///
/// Errors: [`BusError::Storage`] when the database fails; the pass should then stop.
pub(super) fn step(shared: &Shared, limits: Limits, pass: &mut Pass) -> Result<bool, BusError> {
    let targets = targets(shared);
    let Some(&(topic, partition)) = targets.get(pass.cursor) else {
        return Ok(true);
    };
    let removed = trim_chunk(shared, limits, pass.now_ms, topic, partition)?;
    if removed > 0 {
        *pass.report.removed.entry((topic, partition)).or_default() += removed;
        metrics::counter!(RETENTION_REMOVED, "topic" => topic.name()).increment(removed);
    }
    if removed < CHUNK_RECORDS as u64 {
        pass.cursor += 1;
    }
    Ok(pass.cursor >= targets.len())
}

/// Removes, in one transaction, up to [`CHUNK_RECORDS`] records from the front of a partition
/// that are expired (too old, or the partition is over its size) and below the committed
/// position of every group registered for the topic. Returns the records removed.
fn trim_chunk(
    shared: &Shared,
    limits: Limits,
    now_ms: i64,
    topic: Topic,
    partition: u32,
) -> Result<u64, BusError> {
    let name = table_name(topic, partition);
    let txn = shared.db.begin_write().map_err(storage)?;
    let floor = protected_from(&txn, topic, partition)?.unwrap_or(u64::MAX);
    let mut bytes = txn
        .open_table(BYTES)
        .map_err(storage)?
        .get(name.as_str())
        .map_err(storage)?
        .map(|v| v.value())
        .unwrap_or(0);
    let cutoff = limits.max_age_ms.map(|age| now_ms.saturating_sub(age));
    let mut upto = None;
    {
        let table = txn.open_table(partition_table(&name)).map_err(storage)?;
        let mut seen = 0;
        'blocks: for item in table.iter().map_err(storage)? {
            let (k, v) = item.map_err(storage)?;
            let first = k.value();
            let raw = v.value();
            // A value that cannot be read counts as one record of unknown age: the size limit
            // still removes it, and it holds up no other partition.
            let (ts_ms, sizes): (Option<i64>, Vec<u64>) = match block::parse(raw) {
                Some(b) => (
                    Some(b.ts_ms),
                    b.records
                        .iter()
                        .map(|r| block::bytes(std::slice::from_ref(r)))
                        .collect(),
                ),
                None => (None, vec![record_bytes(raw.len())]),
            };
            let too_old = cutoff.is_some_and(|c| ts_ms.is_some_and(|ts| ts < c));
            for (i, size) in sizes.into_iter().enumerate() {
                let offset = first + i as u64;
                let too_big = limits.max_bytes.is_some_and(|max| bytes > max);
                if seen == CHUNK_RECORDS || offset >= floor || (!too_old && !too_big) {
                    break 'blocks;
                }
                bytes = bytes.saturating_sub(size);
                upto = Some(offset + 1);
                seen += 1;
            }
        }
    }
    let Some(upto) = upto else {
        txn.abort().map_err(storage)?;
        return Ok(0);
    };
    let removed = remove_prefix(&txn, &name, upto)?;
    txn.commit().map_err(storage)?;
    shared.note_start(topic, partition, upto);
    Ok(removed)
}

/// The lowest position any group registered for `topic` has committed on `partition` (0 for a
/// group that never committed), or `None` when no group reads the topic.
fn protected_from(
    txn: &WriteTransaction,
    topic: Topic,
    partition: u32,
) -> Result<Option<u64>, BusError> {
    let groups = txn.open_table(GROUPS).map_err(storage)?;
    let offsets = txn.open_table(OFFSETS).map_err(storage)?;
    let mut floor: Option<u64> = None;
    for item in groups.iter().map_err(storage)? {
        let (k, _) = item.map_err(storage)?;
        let (t, group) = k.value();
        if t != topic.name() {
            continue;
        }
        let committed = offsets
            .get(offsets_key(group, topic, partition).as_str())
            .map_err(storage)?
            .map(|v| v.value())
            .unwrap_or(0);
        floor = Some(floor.map_or(committed, |f| f.min(committed)));
    }
    Ok(floor)
}

/// Removes the records of partition table `name` before `upto` within `txn`, raises the
/// partition's first retained offset to `upto` and takes their bytes off its size. Returns the
/// records removed.
///
/// Errors: [`BusError::Storage`] when the database fails.
pub(super) fn remove_prefix(
    txn: &WriteTransaction,
    name: &str,
    upto: u64,
) -> Result<u64, BusError> {
    let mut removed = 0u64;
    let mut freed = 0u64;
    let mut table = txn.open_table(partition_table(name)).map_err(storage)?;
    // A block that holds records on both sides of `upto` keeps the later ones, re-keyed.
    let straddling = match table.range(..upto).map_err(storage)?.next_back() {
        Some(item) => {
            let (k, v) = item.map_err(storage)?;
            let first = k.value();
            let cut = usize::try_from(upto - first).unwrap_or(usize::MAX);
            // A value that cannot be read counts as one record, so it never straddles a cut.
            block::parse(v.value())
                .filter(|b| cut < b.records.len())
                .map(|b| {
                    let (gone, kept) = b.records.split_at(cut);
                    (
                        first,
                        block::encode(b.ts_ms, kept),
                        gone.len(),
                        block::bytes(gone),
                    )
                })
        }
        None => None,
    };
    if let Some((first, kept, gone, gone_bytes)) = straddling {
        table.remove(first).map_err(storage)?;
        table.insert(upto, kept.as_slice()).map_err(storage)?;
        removed += gone as u64;
        freed += gone_bytes;
    }
    table
        .retain_in(..upto, |_, v| {
            match block::parse(v) {
                Some(b) => {
                    removed += b.len();
                    freed += b.bytes();
                }
                None => {
                    removed += 1;
                    freed += record_bytes(v.len());
                }
            }
            false
        })
        .map_err(storage)?;
    drop(table);
    let mut starts = txn.open_table(STARTS).map_err(storage)?;
    let current = starts.get(name).map_err(storage)?.map(|v| v.value());
    if current.is_none_or(|c| upto > c) {
        starts.insert(name, upto).map_err(storage)?;
    }
    let mut bytes = txn.open_table(BYTES).map_err(storage)?;
    let held = bytes.get(name).map_err(storage)?.map(|v| v.value());
    bytes
        .insert(name, held.unwrap_or(0).saturating_sub(freed))
        .map_err(storage)?;
    Ok(removed)
}

/// Records in `BYTES` the size of every listed partition table that has no entry yet (a log
/// written before sizes were kept), by reading its records once.
///
/// Errors: [`BusError::Storage`] when the database fails.
pub(super) fn count_missing_bytes(
    txn: &WriteTransaction,
    names: &[String],
) -> Result<(), BusError> {
    let mut bytes = txn.open_table(BYTES).map_err(storage)?;
    for name in names {
        if bytes.get(name.as_str()).map_err(storage)?.is_some() {
            continue;
        }
        let table = txn.open_table(partition_table(name)).map_err(storage)?;
        let mut held = 0u64;
        for item in table.iter().map_err(storage)? {
            let (_, v) = item.map_err(storage)?;
            held += block::parse(v.value()).map_or(record_bytes(v.value().len()), |b| b.bytes());
        }
        bytes.insert(name.as_str(), held).map_err(storage)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
