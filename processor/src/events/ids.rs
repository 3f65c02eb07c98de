//! The event id step: reads `events`, drops a copy of an event id already seen by this
//! advertiser within [`IdWindows::event_id`](super::IdWindows), and hands the rest on to the
//! order step (`events-by-order`).
//!
//! Every copy of an event id carries the same key on `events` (advertiser + event id), so they
//! all meet here whatever customer, order or action they carry.
//!
//! Checkpoint entries: `t` (stream time) and `E` + hour + part → event ids first seen in that
//! hour ([`crate::id_window`]). Entries of earlier formats: `e\0adv\0id` is read as an event id
//! first seen at the restored stream time and rewritten; `o…` (orders) and `f…` (first
//! touches), which now live in the later steps, are deleted.

use super::StreamIds;
use crate::id_window::{hash_id, hash_key};
use crate::pipeline::{Output, PartitionState, StateChanges, StepCtx};
use clicktrail_bus::Message;
use clicktrail_schemas::metric_names::processor::DUPLICATE_EVENTS;
use clicktrail_schemas::record::ToOrderStep;
use clicktrail_schemas::wire::{EventRecord, Forwarded, Position};

/// Kind byte of an event id in the hashed key and in old-format entries.
const EVENT: u8 = b'e';
/// Checkpoint entries of the event id window.
const EVENT_IDS: u8 = b'E';

/// One partition of the event id step.
pub struct IdStep {
    ids: StreamIds,
    deletes: Vec<Vec<u8>>,
}

impl IdStep {
    /// An empty step remembering event ids for `window`.
    pub fn new(window: std::time::Duration) -> Self {
        IdStep {
            ids: StreamIds::new(EVENT_IDS, window),
            deletes: Vec::new(),
        }
    }

    /// The partition's stream time, ms since the Unix epoch.
    pub fn stream_ms(&self) -> Option<i64> {
        self.ids.stream_ms()
    }

    /// Event ids remembered.
    pub fn event_ids(&self) -> usize {
        self.ids.len()
    }

    /// Checks an event id of `advertiser` received at `received_ms` (ms since the Unix
    /// epoch), moving stream time on, and remembers it: true when it is new within the window,
    /// false for a duplicate.
    pub fn check_event_id(&mut self, advertiser: &str, event_id: &str, received_ms: i64) -> bool {
        self.ids.advance(received_ms);
        self.ids
            .check_and_insert(hash_id(EVENT, advertiser, event_id))
    }
}

impl PartitionState for IdStep {
    fn restore(
        _partition: u32,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        ctx: &StepCtx,
    ) -> Result<Self, String> {
        let mut s = IdStep::new(ctx.windows.event_id);
        let mut dropped = 0usize;
        for (k, v) in entries {
            if s.ids.restore_entry(&k, &v)? {
                continue;
            }
            match k.first() {
                Some(&EVENT) => {
                    s.ids.restore_legacy(hash_key(&k));
                    s.deletes.push(k);
                }
                Some(b'o' | b'O' | b'f') => {
                    dropped += 1;
                    s.deletes.push(k);
                }
                _ => return Err("unknown event id step entry".into()),
            }
        }
        if dropped > 0 {
            tracing::warn!(
                entries = dropped,
                "orders and first touches of an earlier checkpoint format are not carried over"
            );
        }
        s.ids.finish_restore();
        Ok(s)
    }

    fn process(&mut self, msg: &Message, _ctx: &StepCtx, out: &mut Output) {
        let Some(event) = out.decode::<EventRecord>(msg) else {
            return;
        };
        let received_ms = event.received_at.timestamp_millis();
        if !self.check_event_id(&event.advertiser_id, &event.event_id, received_ms) {
            metrics::counter!(DUPLICATE_EVENTS).increment(1);
            return;
        }
        let at = Position {
            partition: msg.partition,
            offset: msg.offset,
        };
        out.forward(
            &ToOrderStep(Forwarded {
                v: 1,
                from: at,
                source: at,
                event,
            }),
            msg.partition,
            received_ms,
        );
    }

    fn take_changes(&mut self) -> StateChanges {
        let mut changes = self.ids.take_changes();
        changes.deletes.append(&mut self.deletes);
        changes
    }

    fn memory_bytes(&self) -> usize {
        self.ids.memory_bytes()
    }
}
