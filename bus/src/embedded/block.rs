//! How records are laid out in a partition table: each value is a block of records appended in
//! the same commit, keyed by the offset of its first record.
//!
//! A block is `0x01`, the append time (i64 ms since the Unix epoch, big-endian), the record
//! count (u32 BE), then per record its key length and payload length (u32 BE each), key and
//! payload. One B-tree entry per block instead of one per record is what lets the single
//! writer keep up with batched appends: a 5,000-record request costs one insert per partition.
//!
//! Logs written before blocks hold one record per value: its append time (i64 BE), key length
//! (u32 BE), key and payload. Such a value starts with `0x00` (any time before the year
//! 2,200,000), so both layouts are read, and a log keeps working across the upgrade.

use super::retention::record_bytes;

/// First byte of a block; a value of the older layout starts with 0.
const BLOCK_TAG: u8 = 0x01;
/// Most records in one block.
pub(super) const BLOCK_MAX_RECORDS: usize = 4_096;
/// Bytes past which a block takes no further record (a single larger record gets its own).
pub(super) const BLOCK_MAX_BYTES: usize = 1 << 20;

/// Records parsed from one stored value, borrowing from it.
pub(super) struct Block<'a> {
    /// When the records were appended, ms since the Unix epoch.
    pub ts_ms: i64,
    /// Key and payload of each record, in offset order.
    pub records: Vec<(&'a [u8], &'a [u8])>,
}

impl Block<'_> {
    /// Records in the block.
    pub fn len(&self) -> u64 {
        self.records.len() as u64
    }

    /// Bytes the records count for against the size limit: each as if stored alone (see
    /// [`record_bytes`]), so limits mean the same whatever the blocks.
    pub fn bytes(&self) -> u64 {
        bytes(&self.records)
    }
}

/// Bytes records count for against the size limit, each as if stored alone: [`record_bytes`]
/// of its 12 bytes of time and key length, key and payload.
pub(super) fn bytes(records: &[(&[u8], &[u8])]) -> u64 {
    records
        .iter()
        .map(|(k, p)| record_bytes(12 + k.len() + p.len()))
        .sum()
}

/// Encodes `records` appended at `ts_ms` as one block.
pub(super) fn encode(ts_ms: i64, records: &[(&[u8], &[u8])]) -> Vec<u8> {
    let size: usize = records.iter().map(|(k, p)| 8 + k.len() + p.len()).sum();
    let mut v = Vec::with_capacity(13 + size);
    v.push(BLOCK_TAG);
    v.extend_from_slice(&ts_ms.to_be_bytes());
    v.extend_from_slice(&(records.len() as u32).to_be_bytes());
    for (k, p) in records {
        v.extend_from_slice(&(k.len() as u32).to_be_bytes());
        v.extend_from_slice(&(p.len() as u32).to_be_bytes());
        v.extend_from_slice(k);
        v.extend_from_slice(p);
    }
    v
}

/// Splits records into runs that each make one block: at most [`BLOCK_MAX_RECORDS`] records,
/// and no record added once a run holds [`BLOCK_MAX_BYTES`].
pub(super) fn runs<'r, 'a>(
    records: &'r [(&'a [u8], &'a [u8])],
) -> impl Iterator<Item = &'r [(&'a [u8], &'a [u8])]> {
    let mut rest = records;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let mut n = 0;
        while n < rest.len() && n < BLOCK_MAX_RECORDS && bytes < BLOCK_MAX_BYTES {
            bytes += 8 + rest[n].0.len() + rest[n].1.len();
            n += 1;
        }
        let (run, tail) = rest.split_at(n);
        rest = tail;
        Some(run)
    })
}

fn u32_at(raw: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_be_bytes(raw.get(at..at + 4)?.try_into().ok()?) as usize)
}

fn i64_at(raw: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_be_bytes(raw.get(at..at + 8)?.try_into().ok()?))
}

/// Parses a stored value of either layout. `None` when it is truncated or malformed.
pub(super) fn parse(raw: &[u8]) -> Option<Block<'_>> {
    if raw.first() != Some(&BLOCK_TAG) {
        let ts_ms = i64_at(raw, 0)?;
        let klen = u32_at(raw, 8)?;
        let key = raw.get(12..12 + klen)?;
        let payload = raw.get(12 + klen..)?;
        return Some(Block {
            ts_ms,
            records: vec![(key, payload)],
        });
    }
    let ts_ms = i64_at(raw, 1)?;
    let count = u32_at(raw, 9)?;
    // Every record takes at least its 8 bytes of lengths: a count beyond that is corrupt.
    if count > raw.len() / 8 {
        return None;
    }
    let mut records = Vec::with_capacity(count);
    let mut at = 13;
    for _ in 0..count {
        let klen = u32_at(raw, at)?;
        let plen = u32_at(raw, at + 4)?;
        let key_end = (at + 8).checked_add(klen)?;
        let end = key_end.checked_add(plen)?;
        records.push((raw.get(at + 8..key_end)?, raw.get(key_end..end)?));
        at = end;
    }
    (at == raw.len()).then_some(Block { ts_ms, records })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A value of the layout written before blocks.
    pub(in crate::embedded) fn legacy(ts_ms: i64, key: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut v = ts_ms.to_be_bytes().to_vec();
        v.extend_from_slice(&(key.len() as u32).to_be_bytes());
        v.extend_from_slice(key);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn a_block_reads_back_what_was_encoded() {
        let records: Vec<(&[u8], &[u8])> = vec![(b"k1", b"one"), (b"", b""), (b"key", b"3")];
        let raw = encode(1_700_000_000_000, &records);
        let block = parse(&raw).unwrap();
        assert_eq!(block.ts_ms, 1_700_000_000_000);
        assert_eq!(block.records, records);
        assert_eq!(block.len(), 3);
        // Each counted as stored alone: 8 + 12 + key + payload.
        assert_eq!(block.bytes(), (20 + 5) + 20 + (20 + 4));
    }

    #[test]
    fn a_value_of_the_older_layout_is_one_record() {
        let raw = legacy(1_700_000_000_000, b"key", b"payload");
        let block = parse(&raw).unwrap();
        assert_eq!(block.ts_ms, 1_700_000_000_000);
        assert_eq!(block.records, vec![(&b"key"[..], &b"payload"[..])]);
        assert_eq!(block.bytes(), record_bytes(raw.len()));
    }

    #[test]
    fn truncated_or_inconsistent_values_are_refused() {
        let raw = encode(5, &[(b"k", b"payload")]);
        for cut in 0..raw.len() {
            assert!(parse(&raw[..cut]).is_none(), "cut at {cut}");
        }
        let mut long = raw.clone();
        long.push(0);
        assert!(parse(&long).is_none());
        let mut huge = raw;
        huge[9..13].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(parse(&huge).is_none());
        assert!(parse(&legacy(5, b"key", b"")[..10]).is_none());
    }

    #[test]
    fn runs_respect_the_record_and_byte_limits() {
        let small = [0u8; 10];
        let records: Vec<(&[u8], &[u8])> = (0..10_000).map(|_| (&b"k"[..], &small[..])).collect();
        let sizes: Vec<usize> = runs(&records).map(<[_]>::len).collect();
        assert_eq!(sizes, vec![4_096, 4_096, 1_808]);

        let big = vec![0u8; 600 << 10];
        let records: Vec<(&[u8], &[u8])> = (0..3).map(|_| (&b"k"[..], &big[..])).collect();
        let sizes: Vec<usize> = runs(&records).map(<[_]>::len).collect();
        assert_eq!(sizes, vec![2, 1]);
        assert_eq!(runs(&[]).count(), 0);
    }
}
