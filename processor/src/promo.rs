//! The impressions step (`docs/promos.md`): reads `impressions`, counts each (variation,
//! newsletter send) once, and writes the counted sends to table `impressions`.
//!
//! Every record of one variation carries the same key on `impressions` (offer + variation), so
//! all copies of a send meet in one partition. A send is remembered for [`SEND_WINDOW`] of the
//! partition's stream time (`received_at`), with the memory of the events chain
//! ([`crate::events::StreamIds`]); the query side also counts each send once, so a copy beyond
//! the window cannot double a variation's recipients either.
//!
//! Checkpoint entries: `t` (stream time) and `S` + hour + part → sends first seen in that hour.

use crate::events::StreamIds;
use crate::id_window::hash_id;
use crate::pipeline::{Output, PartitionState, StateChanges, StepCtx};
use clicktrail_bus::Message;
use clicktrail_schemas::metric_names::processor::DUPLICATE_IMPRESSIONS;
use clicktrail_schemas::promo::{ImpressionRecord, ImpressionRow};
use clicktrail_schemas::rows::Source;
use std::time::Duration;

/// How long a (variation, newsletter send) is remembered: 90 days of stream time.
pub const SEND_WINDOW: Duration = Duration::from_secs(90 * 86_400);
/// Kind byte of a send in the hashed key.
const SEND: u8 = b's';
/// Checkpoint entries of the send window.
const SEND_IDS: u8 = b'S';

/// One partition of the impressions step.
pub struct ImpressionStep {
    sends: StreamIds,
}

impl ImpressionStep {
    /// An empty step.
    pub fn new() -> Self {
        ImpressionStep {
            sends: StreamIds::new(SEND_IDS, SEND_WINDOW),
        }
    }

    /// The step as its checkpoint entries left it.
    ///
    /// Errors: an entry that is not this step's, or a malformed one.
    pub fn from_entries(entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<Self, String> {
        let mut s = ImpressionStep::new();
        for (k, v) in entries {
            if !s.sends.restore_entry(&k, &v)? {
                return Err("unknown impressions step entry".into());
            }
        }
        s.sends.finish_restore();
        Ok(s)
    }

    /// Whether the impression's send is new, remembering it.
    pub fn check_send(&mut self, i: &ImpressionRecord) -> bool {
        self.sends.advance(i.received_at.timestamp_millis());
        self.sends
            .check_and_insert(hash_id(SEND, &i.advertiser_id, &i.send_key()))
    }
}

impl Default for ImpressionStep {
    fn default() -> Self {
        Self::new()
    }
}

impl PartitionState for ImpressionStep {
    fn restore(
        _partition: u32,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        _ctx: &StepCtx,
    ) -> Result<Self, String> {
        ImpressionStep::from_entries(entries)
    }

    fn process(&mut self, msg: &Message, _ctx: &StepCtx, out: &mut Output) {
        let Some(impression) = out.decode::<ImpressionRecord>(msg) else {
            return;
        };
        if !self.check_send(&impression) {
            metrics::counter!(DUPLICATE_IMPRESSIONS).increment(1);
            return;
        }
        out.rows.impressions.push(ImpressionRow {
            impression,
            source: Source {
                partition: msg.partition,
                offset: msg.offset,
            },
        });
    }

    fn take_changes(&mut self) -> StateChanges {
        self.sends.take_changes()
    }

    fn memory_bytes(&self) -> usize {
        self.sends.memory_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn impression(send: &str, variation: &str, secs: i64) -> ImpressionRecord {
        let at = Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap();
        ImpressionRecord {
            v: 1,
            advertiser_id: "adv_1".into(),
            offer_id: "ofr_1".into(),
            variation_id: variation.into(),
            newsletter_send_id: send.into(),
            recipients: 1000,
            sent_at: at,
            received_at: at,
        }
    }

    #[test]
    fn a_send_counts_once_per_variation_and_survives_a_checkpoint() {
        let mut s = ImpressionStep::new();
        assert!(s.check_send(&impression("send-1", "var_a", 0)));
        assert!(!s.check_send(&impression("send-1", "var_a", 5)));
        assert!(s.check_send(&impression("send-1", "var_b", 5)));
        assert!(s.check_send(&impression("send-2", "var_a", 6)));
        let changes = s.take_changes();
        let mut again = ImpressionStep::from_entries(changes.puts).unwrap();
        assert!(!again.check_send(&impression("send-1", "var_a", 10)));
        assert!(!again.check_send(&impression("send-2", "var_a", 10)));
        assert!(again.check_send(&impression("send-3", "var_a", 10)));
        // Forgotten after the window: the query side still counts the send once.
        let later = SEND_WINDOW.as_secs() as i64 + 7200;
        assert!(again.check_send(&impression("send-1", "var_a", later)));
    }
}
