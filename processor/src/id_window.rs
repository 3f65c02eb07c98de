//! A bounded memory of ids seen in one partition, forgotten a window of record time after they
//! were first seen.
//!
//! Time is the partition's stream time (the largest `received_at` seen so far, in ms since the
//! Unix epoch), never the wall clock, so a replay decides exactly as the first run did. An id is
//! first seen at the stream time of its first copy and belongs to that hour (the hour bucket).
//! Hour `h` is forgotten once stream time reaches `(h + 1) hours + window`: an id is remembered
//! for at least `window` and less than `window + 1 hour` of stream time.
//!
//! Memory: one hash table of `u128` entries, each the hour (high 32 bits) and a 96-bit SHA-256
//! prefix of the id (low 96 bits). A slot costs 16 bytes plus one control byte and the table is
//! kept between 7/16 and 7/8 full, so an id costs 19.4 to 38.9 bytes. A lookup is one probe
//! whatever the window; an entry of a forgotten hour reads as absent, and such entries are
//! swept out in one pass once they are a quarter of the table (amortized O(1) per id, nothing
//! per record). The ids of the current hour are also listed (16 bytes each) for the checkpoint.
//!
//! Checkpoint: entries `kind, hour (u32 BE), part (u32 BE)` → concatenated 12-byte id hashes.
//! Each batch appends one part to the current hour; when the hour ends its parts are rewritten
//! as chunks of [`CHUNK_IDS`] ids, and a forgotten hour's parts are deleted. The live entries
//! are therefore about one per hour of the window, plus one per batch of the current hour.

use crate::pipeline::StateChanges;
use hashbrown::HashTable;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// One hour, the width of a time bucket, in ms.
pub const HOUR_MS: i64 = 3_600_000;
/// Ids per checkpoint entry of an hour that has ended (12 bytes each: 768 KiB).
pub const CHUNK_IDS: usize = 65_536;
/// Bytes of one id in a checkpoint entry.
const ID_BYTES: usize = 12;
const HASH_MASK: u128 = (1 << 96) - 1;

/// The 96-bit id of `(kind, advertiser, id)`: the first 12 bytes of SHA-256 over
/// `kind, 0, advertiser, 0, id`, as the low 96 bits of a `u128`.
///
/// SHA-256 is stable across processes and versions (the value is checkpointed) and nobody can
/// craft an id whose hash matches another advertiser's, which would silently drop that event.
pub fn hash_id(kind: u8, advertiser: &str, id: &str) -> u128 {
    let digest = Sha256::new()
        .chain_update([kind, 0])
        .chain_update(advertiser.as_bytes())
        .chain_update([0])
        .chain_update(id.as_bytes())
        .finalize();
    prefix96(&digest)
}

/// The 96-bit id of an already joined key `kind, 0, advertiser, 0, id` (as [`hash_id`]).
pub fn hash_key(key: &[u8]) -> u128 {
    prefix96(&Sha256::digest(key))
}

fn prefix96(digest: &[u8]) -> u128 {
    digest[..ID_BYTES]
        .iter()
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b))
}

/// The hour bucket of a time in ms since the Unix epoch (times before 1970 fall in hour 0).
pub fn hour_of(ms: i64) -> u32 {
    u32::try_from(ms.div_euclid(HOUR_MS).max(0)).unwrap_or(u32::MAX)
}

fn entry(hour: u32, id: u128) -> u128 {
    (u128::from(hour) << 96) | (id & HASH_MASK)
}

fn entry_hour(e: u128) -> u32 {
    (e >> 96) as u32
}

fn slot_hash(e: &u128) -> u64 {
    *e as u64
}

#[derive(Debug, Default, Clone, Copy)]
struct Hour {
    /// Ids first seen in this hour.
    ids: usize,
    /// Parts of this hour in the checkpoint.
    parts: u32,
}

/// The ids of one kind remembered by one partition.
pub struct IdWindow {
    kind: u8,
    window_ms: i64,
    table: HashTable<u128>,
    hours: BTreeMap<u32, Hour>,
    /// Entries of the table whose hour is forgotten.
    dead: usize,
    /// Hours before this one are forgotten.
    min_live: i64,
    now_hour: u32,
    /// The current hour's ids, in order; `saved` of them are in the checkpoint.
    open: Option<u32>,
    open_ids: Vec<u128>,
    saved: usize,
    /// Ids of an old-format checkpoint, taken as first seen at the next stream time.
    legacy: Vec<u128>,
    puts: BTreeMap<Vec<u8>, Vec<u8>>,
    deletes: BTreeSet<Vec<u8>>,
}

impl IdWindow {
    /// An empty memory whose checkpoint entries start with the byte `kind`, forgetting ids
    /// `window` after they were first seen.
    pub fn new(kind: u8, window: Duration) -> Self {
        IdWindow {
            kind,
            window_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX),
            table: HashTable::new(),
            hours: BTreeMap::new(),
            dead: 0,
            min_live: i64::MIN,
            now_hour: 0,
            open: None,
            open_ids: Vec::new(),
            saved: 0,
            legacy: Vec::new(),
            puts: BTreeMap::new(),
            deletes: BTreeSet::new(),
        }
    }

    /// The checkpoint key of part `part` of hour `hour`.
    pub fn part_key(&self, hour: u32, part: u32) -> Vec<u8> {
        let mut k = Vec::with_capacity(9);
        k.push(self.kind);
        k.extend_from_slice(&hour.to_be_bytes());
        k.extend_from_slice(&part.to_be_bytes());
        k
    }

    /// Parses a checkpoint key of this kind into `(hour, part)`; `None` for another key.
    pub fn parse_key(&self, key: &[u8]) -> Option<(u32, u32)> {
        let rest = key.strip_prefix(&[self.kind])?;
        let hour: [u8; 4] = rest.get(..4)?.try_into().ok()?;
        let part: [u8; 4] = rest.get(4..)?.try_into().ok()?;
        Some((u32::from_be_bytes(hour), u32::from_be_bytes(part)))
    }

    /// Restores one checkpoint part, before [`IdWindow::finish_restore`].
    ///
    /// Errors when the value is not a whole number of 12-byte ids.
    pub fn restore_part(&mut self, hour: u32, part: u32, value: &[u8]) -> Result<(), String> {
        if !value.len().is_multiple_of(ID_BYTES) {
            return Err(format!("id part of {} bytes", value.len()));
        }
        let h = self.hours.entry(hour).or_default();
        h.parts = h.parts.max(part + 1);
        for chunk in value.chunks_exact(ID_BYTES) {
            let id = prefix96(chunk);
            let e = entry(hour, id);
            match self.table.find_mut(slot_hash(&e), |x| x & HASH_MASK == id) {
                Some(x) if entry_hour(*x) >= hour => {}
                Some(x) => {
                    // Listed twice: the later hour is the one in force.
                    let old = entry_hour(*x);
                    *x = e;
                    if let Some(o) = self.hours.get_mut(&old) {
                        o.ids = o.ids.saturating_sub(1);
                    }
                    self.hours.entry(hour).or_default().ids += 1;
                }
                None => {
                    self.table.insert_unique(slot_hash(&e), e, slot_hash);
                    self.hours.entry(hour).or_default().ids += 1;
                }
            }
        }
        Ok(())
    }

    /// Remembers an id of an old-format checkpoint, as first seen at the stream time in force
    /// when [`IdWindow::advance`] or [`IdWindow::finish_restore`] next knows one.
    pub fn restore_legacy(&mut self, id: u128) {
        self.legacy.push(id);
    }

    /// Ends a restore at the checkpointed stream time (`None` when none was stored): forgets
    /// what that time already expires, reopens the current hour and takes in old-format ids.
    pub fn finish_restore(&mut self, stream_ms: Option<i64>) {
        let Some(ms) = stream_ms else {
            return;
        };
        let hour = hour_of(ms);
        if let Some(h) = self.hours.get(&hour) {
            self.open = Some(hour);
            self.open_ids = self
                .table
                .iter()
                .copied()
                .filter(|e| entry_hour(*e) == hour)
                .map(|e| e & HASH_MASK)
                .collect();
            self.saved = self.open_ids.len();
            debug_assert_eq!(self.open_ids.len(), h.ids);
        }
        self.advance(ms);
    }

    /// Moves stream time to `stream_ms` (the caller passes the partition's stream time, which
    /// never decreases): ends the current hour when a later one begins and forgets the hours
    /// that time expires.
    pub fn advance(&mut self, stream_ms: i64) {
        let hour = hour_of(stream_ms);
        if self.open.is_some_and(|h| h < hour) {
            self.close_open_hour();
        }
        self.now_hour = hour;
        let min_live = stream_ms.saturating_sub(self.window_ms).div_euclid(HOUR_MS);
        if min_live > self.min_live {
            self.min_live = min_live;
            while let Some((&h, &info)) = self.hours.first_key_value() {
                if i64::from(h) >= min_live {
                    break;
                }
                self.hours.remove(&h);
                self.dead += info.ids;
                for p in 0..info.parts {
                    self.delete(self.part_key(h, p));
                }
                if self.open == Some(h) {
                    self.open = None;
                    self.open_ids.clear();
                    self.saved = 0;
                }
            }
            if self.dead > 0 && self.dead * 4 >= self.table.len() {
                self.sweep();
            }
        }
        for id in std::mem::take(&mut self.legacy) {
            self.check_and_insert(id);
        }
    }

    /// Whether `id` is remembered; when it is not, remembers it as first seen now. True when
    /// the id is new (or its earlier copy is forgotten).
    pub fn check_and_insert(&mut self, id: u128) -> bool {
        let id = id & HASH_MASK;
        let e = entry(self.now_hour, id);
        match self.table.find_mut(slot_hash(&e), |x| x & HASH_MASK == id) {
            Some(x) if i64::from(entry_hour(*x)) >= self.min_live => return false,
            Some(x) => {
                *x = e;
                self.dead = self.dead.saturating_sub(1);
            }
            None => {
                self.table.insert_unique(slot_hash(&e), e, slot_hash);
            }
        }
        self.hours.entry(self.now_hour).or_default().ids += 1;
        if self.open != Some(self.now_hour) {
            self.close_open_hour();
            self.open = Some(self.now_hour);
        }
        self.open_ids.push(id);
        true
    }

    /// Whether `id` is remembered, without recording it.
    pub fn contains(&self, id: u128) -> bool {
        let id = id & HASH_MASK;
        self.table
            .find(slot_hash(&id), |x| x & HASH_MASK == id)
            .is_some_and(|x| i64::from(entry_hour(*x)) >= self.min_live)
    }

    /// Ids remembered.
    pub fn len(&self) -> usize {
        self.table.len() - self.dead
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checkpoint entries changed and removed since the last call: the current hour's new ids
    /// as one more part, rewritten hours, forgotten hours' parts.
    pub fn take_changes(&mut self) -> StateChanges {
        if let Some(h) = self.open
            && self.open_ids.len() > self.saved
        {
            let info = self.hours.entry(h).or_default();
            let part = info.parts;
            info.parts += 1;
            let value = encode(&self.open_ids[self.saved..]);
            self.saved = self.open_ids.len();
            self.put(self.part_key(h, part), value);
        }
        StateChanges {
            puts: std::mem::take(&mut self.puts).into_iter().collect(),
            deletes: std::mem::take(&mut self.deletes).into_iter().collect(),
        }
    }

    /// Bytes held: the table's allocation, the current hour's list, the hour index and the
    /// changes not yet taken.
    pub fn memory_bytes(&self) -> usize {
        self.table.allocation_size()
            + (self.open_ids.capacity() + self.legacy.capacity()) * size_of::<u128>()
            // The hour index: each entry plus an estimate of its share of B-tree nodes.
            + self.hours.len() * (size_of::<(u32, Hour)>() + 16)
            + crate::pipeline::pending_bytes(self.puts.iter(), self.deletes.iter())
    }

    /// Writes the ended current hour as whole chunks when that takes fewer entries than the
    /// parts it was saved in, else saves its unsaved ids as one more part.
    fn close_open_hour(&mut self) {
        let Some(h) = self.open.take() else {
            return;
        };
        let ids = std::mem::take(&mut self.open_ids);
        let saved = std::mem::take(&mut self.saved);
        let Some(info) = self.hours.get(&h).copied() else {
            return;
        };
        let unsaved = ids.len() > saved;
        let chunks = ids.len().div_ceil(CHUNK_IDS) as u32;
        if info.parts + u32::from(unsaved) > chunks {
            for (i, chunk) in ids.chunks(CHUNK_IDS).enumerate() {
                self.put(self.part_key(h, i as u32), encode(chunk));
            }
            for p in chunks..info.parts {
                self.delete(self.part_key(h, p));
            }
            self.hours.entry(h).or_default().parts = chunks;
        } else if unsaved {
            self.put(self.part_key(h, info.parts), encode(&ids[saved..]));
            self.hours.entry(h).or_default().parts += 1;
        }
    }

    fn sweep(&mut self) {
        let min_live = self.min_live;
        self.table.retain(|e| i64::from(entry_hour(*e)) >= min_live);
        self.dead = 0;
        if self.table.len() < self.table.capacity() / 4 {
            self.table.shrink_to(self.table.len() * 2, slot_hash);
        }
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.deletes.remove(&key);
        self.puts.insert(key, value);
    }

    fn delete(&mut self, key: Vec<u8>) {
        self.puts.remove(&key);
        self.deletes.insert(key);
    }
}

fn encode(ids: &[u128]) -> Vec<u8> {
    let mut v = Vec::with_capacity(ids.len() * ID_BYTES);
    for id in ids {
        v.extend_from_slice(&id.to_be_bytes()[16 - ID_BYTES..]);
    }
    v
}

#[cfg(test)]
mod tests;
