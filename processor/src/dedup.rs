//! Unique-click dedup: bloom filters per partition, one generation per hour of click time.
//!
//! A click is unique when no click of the same visitor on the same link was seen in the hour
//! buckets covering the previous 24 hours (so repeats within 24 hours are always caught; a repeat
//! 24 to 25 hours later may be too). Buckets are keyed by click time, not wall-clock time, so a
//! replay decides exactly as the first run did; filters are seeded from (partition, bucket).
//!
//! Each generation is sized for `hourly_capacity` visitor-link pairs at a false-positive rate of
//! `fp_rate / 25`, so a new pair checked against all 25 generations is wrongly called a repeat
//! with probability at most `fp_rate`. At the default 1% that costs 16.3 bits (about 2 bytes)
//! per pair per generation. Only the current generation changes, so only it is checkpointed.

use bloomfilter::Bloom;
use std::collections::{BTreeMap, BTreeSet};

const HOUR_MS: i64 = 3_600_000;
/// Generations checked: the click's hour and the 24 before it.
pub const GENERATIONS: i64 = 25;

/// Sizing of the dedup filters.
#[derive(Debug, Clone, Copy)]
pub struct DedupOptions {
    /// Visitor-link pairs per partition per hour the stated rate holds for.
    pub hourly_capacity: usize,
    /// Probability that a new pair is taken for a repeat.
    pub fp_rate: f64,
}

impl Default for DedupOptions {
    fn default() -> Self {
        DedupOptions {
            hourly_capacity: 100_000,
            fp_rate: 0.01,
        }
    }
}

impl DedupOptions {
    /// Bits each pair costs in its generation.
    pub fn bits_per_pair(&self) -> f64 {
        let p = self.fp_rate / GENERATIONS as f64;
        -p.ln() / (std::f64::consts::LN_2 * std::f64::consts::LN_2)
    }
}

/// The dedup state of one partition.
pub struct ClickDedup {
    partition: u32,
    options: DedupOptions,
    generations: BTreeMap<i64, Bloom<[u8]>>,
    dirty: BTreeSet<i64>,
    evicted: BTreeSet<i64>,
}

impl ClickDedup {
    /// Empty state for a partition.
    pub fn new(partition: u32, options: DedupOptions) -> Self {
        ClickDedup {
            partition,
            options,
            generations: BTreeMap::new(),
            dirty: BTreeSet::new(),
            evicted: BTreeSet::new(),
        }
    }

    /// Restores a generation saved by [`ClickDedup::take_changes`].
    pub fn restore(&mut self, bucket: i64, bytes: Vec<u8>) -> Result<(), String> {
        let bloom = Bloom::from_bytes(bytes).map_err(|e| e.to_string())?;
        self.generations.insert(bucket, bloom);
        Ok(())
    }

    fn seed(&self, bucket: i64) -> [u8; 32] {
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&self.partition.to_be_bytes());
        seed[4..12].copy_from_slice(&bucket.to_be_bytes());
        seed[12..].copy_from_slice(b"clicktrail-dedup-gen");
        seed
    }

    fn pair_key(visitor: &str, link: &str) -> Vec<u8> {
        let mut key = Vec::with_capacity(visitor.len() + link.len() + 1);
        key.extend_from_slice(visitor.as_bytes());
        key.push(0);
        key.extend_from_slice(link.as_bytes());
        key
    }

    fn seen_key(&self, key: &[u8], bucket: i64) -> bool {
        self.generations
            .range(bucket - (GENERATIONS - 1)..=bucket)
            .any(|(_, g)| g.check(key))
    }

    /// Whether a click of `visitor` on `link` at `at_ms` would be a repeat, without recording it.
    pub fn seen(&self, visitor: &str, link: &str, at_ms: i64) -> bool {
        self.seen_key(&Self::pair_key(visitor, link), at_ms.div_euclid(HOUR_MS))
    }

    /// Records a click of `visitor` on `link` at `at_ms`; true when it is the first in 24 hours.
    pub fn check_and_insert(&mut self, visitor: &str, link: &str, at_ms: i64) -> bool {
        let bucket = at_ms.div_euclid(HOUR_MS);
        let key = Self::pair_key(visitor, link);
        if self.seen_key(&key, bucket) {
            return false;
        }
        if !self.generations.contains_key(&bucket) {
            let p = self.options.fp_rate / GENERATIONS as f64;
            let bloom = Bloom::new_for_fp_rate_with_seed(
                self.options.hourly_capacity,
                p,
                &self.seed(bucket),
            )
            .expect("dedup options are validated at start");
            self.generations.insert(bucket, bloom);
        }
        self.generations
            .get_mut(&bucket)
            .expect("inserted above")
            .set(&key[..]);
        self.dirty.insert(bucket);
        // Forget generations that can no longer match any click at or after the newest one.
        let newest = *self.generations.keys().next_back().expect("one generation");
        while let Some((&oldest, _)) = self.generations.first_key_value() {
            if oldest > newest - GENERATIONS {
                break;
            }
            self.generations.remove(&oldest);
            self.dirty.remove(&oldest);
            self.evicted.insert(oldest);
        }
        true
    }

    /// Generations changed and dropped since the last call, to checkpoint.
    pub fn take_changes(&mut self) -> (Vec<(i64, Vec<u8>)>, Vec<i64>) {
        let changed = std::mem::take(&mut self.dirty)
            .into_iter()
            .filter_map(|b| self.generations.get(&b).map(|g| (b, g.to_bytes())))
            .collect();
        let evicted = std::mem::take(&mut self.evicted).into_iter().collect();
        (changed, evicted)
    }

    /// Bytes held by the filters.
    pub fn memory_bytes(&self) -> usize {
        self.generations.values().map(|g| g.as_slice().len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000;

    #[test]
    fn repeats_within_24_hours_are_not_unique() {
        let mut d = ClickDedup::new(0, DedupOptions::default());
        assert!(d.check_and_insert("v1", "l1", T0));
        assert!(!d.check_and_insert("v1", "l1", T0 + 1000));
        assert!(!d.check_and_insert("v1", "l1", T0 + 23 * HOUR_MS));
        assert!(
            d.check_and_insert("v1", "l2", T0),
            "another link is another pair"
        );
        assert!(
            d.check_and_insert("v2", "l1", T0),
            "another visitor is another pair"
        );
        assert!(
            d.check_and_insert("v1", "l1", T0 + 26 * HOUR_MS),
            "a day later it counts again"
        );
    }

    #[test]
    fn state_survives_a_checkpoint_round_trip() {
        let mut d = ClickDedup::new(
            3,
            DedupOptions {
                hourly_capacity: 1000,
                fp_rate: 0.01,
            },
        );
        d.check_and_insert("v", "l", T0);
        let (changed, _) = d.take_changes();
        let mut restored = ClickDedup::new(
            3,
            DedupOptions {
                hourly_capacity: 1000,
                fp_rate: 0.01,
            },
        );
        for (b, bytes) in changed {
            restored.restore(b, bytes).unwrap();
        }
        assert!(!restored.check_and_insert("v", "l", T0 + 5));
    }

    #[test]
    fn measured_false_positive_rate_is_within_the_stated_rate() {
        let options = DedupOptions {
            hourly_capacity: 20_000,
            fp_rate: 0.01,
        };
        let mut d = ClickDedup::new(0, options);
        // Fill all 25 generations to capacity, then probe with pairs never seen.
        for h in 0..GENERATIONS {
            for i in 0..options.hourly_capacity {
                d.check_and_insert(&format!("v{h}-{i}"), "l", T0 + h * HOUR_MS);
            }
        }
        let probes = 50_000;
        let now = T0 + (GENERATIONS - 1) * HOUR_MS;
        let false_positives = (0..probes)
            .filter(|i| d.seen(&format!("new-{i}"), "l", now))
            .count();
        let rate = false_positives as f64 / probes as f64;
        assert!(rate <= options.fp_rate * 1.5, "measured {rate}");
        assert!((16.0..16.6).contains(&options.bits_per_pair()));
    }
}
