//! Exactly-once hand-over between two steps of the events chain.
//!
//! A step sends what it hands on before it checkpoints; restarted (or taken over by another
//! processor) it resumes from its checkpoint and sends those records again, identical and in
//! the same order per partition, because a step's decisions depend only on its checkpointed
//! state and its input. The receiving step keeps, per partition of the sending step's topic,
//! the highest offset it took ([`Forwarded::from`]) and drops every record at or below it.
//! That needs, per pair of partitions, records in the order of their `from` offsets: each step
//! sends a partition's records in offset order, and the producer keeps per-partition order
//! (the embedded log appends in order; on Kafka the idempotent producer does).
//!
//! Memory: one entry per partition of the sending topic. Checkpoint entries:
//! `r` + partition (u32 BE) → highest offset taken (u64 BE).

use crate::pipeline::StateChanges;
use clicktrail_schemas::metric_names::processor::REPLAYED_COPIES;
use clicktrail_schemas::wire::{Forwarded, Position};
use std::collections::{BTreeMap, BTreeSet};

const PREFIX: u8 = b'r';

/// The highest offset taken from each partition of the step before.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    taken: BTreeMap<u32, u64>,
    changed: BTreeSet<u32>,
}

impl ReplayGuard {
    /// Whether the record sent from `from` is new; a new one is taken.
    pub fn admit(&mut self, from: Position) -> bool {
        match self.taken.get(&from.partition) {
            Some(&max) if from.offset <= max => {
                metrics::counter!(REPLAYED_COPIES).increment(1);
                false
            }
            _ => {
                self.taken.insert(from.partition, from.offset);
                self.changed.insert(from.partition);
                true
            }
        }
    }

    /// [`ReplayGuard::admit`] for a forwarded record.
    pub fn admit_record(&mut self, f: &Forwarded) -> bool {
        self.admit(f.from)
    }

    /// Takes one checkpoint entry; false when the entry is not the guard's.
    ///
    /// Errors: a malformed entry of the guard.
    pub fn restore_entry(&mut self, key: &[u8], value: &[u8]) -> Result<bool, String> {
        let Some(part) = key.strip_prefix(&[PREFIX]) else {
            return Ok(false);
        };
        let part = <[u8; 4]>::try_from(part).map_err(|_| "bad replay guard key")?;
        let offset = <[u8; 8]>::try_from(value).map_err(|_| "bad replay guard entry")?;
        self.taken
            .insert(u32::from_be_bytes(part), u64::from_be_bytes(offset));
        Ok(true)
    }

    /// Entries changed since the last call.
    pub fn take_changes(&mut self) -> StateChanges {
        let puts = std::mem::take(&mut self.changed)
            .into_iter()
            .map(|p| {
                let key = [&[PREFIX][..], &p.to_be_bytes()].concat();
                (key, self.taken[&p].to_be_bytes().to_vec())
            })
            .collect();
        StateChanges {
            puts,
            deletes: Vec::new(),
        }
    }

    /// Bytes held.
    pub fn memory_bytes(&self) -> usize {
        (self.taken.len() + self.changed.len()) * 32
    }
}
