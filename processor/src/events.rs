//! The events chain: three steps, each keyed by what it must remember, so that every guarantee
//! holds whatever fields an event carries (`docs/attribution.md`, "Idempotency").
//!
//! 1. [`ids::IdStep`] reads `events` (keyed by advertiser + event id) and drops a copy of an
//!    event id already seen within [`IdWindows::event_id`]; the rest go on to `events-by-order`.
//! 2. [`orders::OrderStep`] reads `events-by-order` (keyed by advertiser + order id for a
//!    purchase that carries one, else advertiser + event id) and sends a second purchase of an
//!    order seen within [`IdWindows::order`] to dead-letter (`duplicate_order`); the rest go on
//!    to `events-by-customer`.
//! 3. [`customers::AttributionStep`] reads `events-by-customer` (keyed by advertiser +
//!    customer) and attributes each event with the customer's first touch, writing the rows.
//!
//! A step hands its records on before it checkpoints, so a step restarted from its checkpoint
//! sends some again; the next step drops them by their position ([`replay::ReplayGuard`]).
//! Time is each partition's stream time (the largest `received_at` seen), so a replay decides
//! exactly as the first run did.

pub mod customers;
pub mod ids;
pub mod orders;
pub mod replay;

use crate::id_window::IdWindow;
use crate::pipeline::StateChanges;
use std::time::Duration;

pub use customers::AttributionStep;
pub use ids::IdStep;
pub use orders::OrderStep;

/// How long event ids are remembered by default: 7 days.
pub const DEFAULT_EVENT_ID_WINDOW: Duration = Duration::from_secs(7 * 86_400);
/// How long purchase orders are remembered by default: 90 days.
pub const DEFAULT_ORDER_WINDOW: Duration = Duration::from_secs(90 * 86_400);
/// The shortest window accepted: one hour.
pub const MIN_WINDOW: Duration = Duration::from_secs(3_600);

/// How long the events chain remembers ids, in stream time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdWindows {
    /// A copy of an `event_id` within this time of the first is dropped as a duplicate.
    /// Default [`DEFAULT_EVENT_ID_WINDOW`] (7 days); at least [`MIN_WINDOW`].
    pub event_id: Duration,
    /// A purchase of an `order_id` within this time of the first goes to dead-letter
    /// (`duplicate_order`). Default [`DEFAULT_ORDER_WINDOW`] (90 days); at least [`MIN_WINDOW`].
    pub order: Duration,
}

impl Default for IdWindows {
    fn default() -> Self {
        IdWindows {
            event_id: DEFAULT_EVENT_ID_WINDOW,
            order: DEFAULT_ORDER_WINDOW,
        }
    }
}

impl IdWindows {
    /// Checks both windows are at least [`MIN_WINDOW`]; the error names every one that is not.
    pub fn validate(&self) -> Result<(), String> {
        let short: Vec<&str> = [
            ("event id window", self.event_id),
            ("order window", self.order),
        ]
        .into_iter()
        .filter(|(_, w)| *w < MIN_WINDOW)
        .map(|(name, _)| name)
        .collect();
        if short.is_empty() {
            Ok(())
        } else {
            Err(format!("{} must be at least one hour", short.join(" and ")))
        }
    }
}

/// The checkpoint entry of a step's stream time.
const STREAM_TIME: &[u8] = b"t";

/// Ids remembered by one partition of a step, in the partition's stream time.
///
/// Checkpoint entries: `t` → stream time (i64 BE, ms since the Unix epoch), and the
/// [`IdWindow`]'s entries, which start with its kind byte.
pub struct StreamIds {
    stream_ms: Option<i64>,
    changed: bool,
    ids: IdWindow,
}

impl StreamIds {
    /// An empty memory whose checkpoint entries start with `kind`, forgetting ids `window`
    /// after they were first seen.
    pub fn new(kind: u8, window: Duration) -> Self {
        StreamIds {
            stream_ms: None,
            changed: false,
            ids: IdWindow::new(kind, window),
        }
    }

    /// The partition's stream time, ms since the Unix epoch; `None` before the first record.
    pub fn stream_ms(&self) -> Option<i64> {
        self.stream_ms
    }

    /// Ids remembered.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Moves stream time on to `received_ms` (a record's `received_at`, ms) when it is later.
    pub fn advance(&mut self, received_ms: i64) {
        if self.stream_ms.is_none_or(|s| received_ms > s) {
            self.stream_ms = Some(received_ms);
            self.changed = true;
        }
        self.ids.advance(self.stream_ms.unwrap_or(received_ms));
    }

    /// Whether `id` (a [`crate::id_window::hash_id`]) is new within the window; a new id is
    /// remembered as first seen now. Call [`StreamIds::advance`] with the record's time first.
    pub fn check_and_insert(&mut self, id: u128) -> bool {
        self.ids.check_and_insert(id)
    }

    /// Takes one checkpoint entry of this memory; false when the entry is not its own.
    ///
    /// Errors: a malformed entry of its own.
    pub fn restore_entry(&mut self, key: &[u8], value: &[u8]) -> Result<bool, String> {
        if key == STREAM_TIME {
            let ms = <[u8; 8]>::try_from(value).map_err(|_| "bad stream time entry")?;
            self.stream_ms = Some(i64::from_be_bytes(ms));
            return Ok(true);
        }
        match self.ids.parse_key(key) {
            Some((hour, part)) => self.ids.restore_part(hour, part, value).map(|()| true),
            None => Ok(false),
        }
    }

    /// Remembers an id of an earlier checkpoint format, as first seen at the restored stream
    /// time.
    pub fn restore_legacy(&mut self, id: u128) {
        self.ids.restore_legacy(id);
    }

    /// Ends a restore.
    pub fn finish_restore(&mut self) {
        self.ids.finish_restore(self.stream_ms);
    }

    /// Entries changed and removed since the last call.
    pub fn take_changes(&mut self) -> StateChanges {
        let mut changes = self.ids.take_changes();
        if std::mem::take(&mut self.changed)
            && let Some(ms) = self.stream_ms
        {
            changes
                .puts
                .push((STREAM_TIME.to_vec(), ms.to_be_bytes().to_vec()));
        }
        changes
    }

    /// Bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.ids.memory_bytes()
    }
}

#[cfg(test)]
mod tests;
