//! The events step: decode, idempotency by `event_id`, purchases once per order, attribution
//! with first touch per customer.
//!
//! State per partition (all of a customer's events share a partition, see the topic key): the
//! partition's stream time (the largest `received_at` seen), the event ids and purchase orders
//! seen within their windows ([`IdWindow`]), and each customer's first touch. Every change is
//! checkpointed with the offsets it reflects.
//!
//! Rule: an `event_id` is processed once per advertiser within [`IdWindows::event_id`] of its
//! first copy, and a purchase is counted once per (advertiser, `order_id`) within
//! [`IdWindows::order`]; a copy is forgotten less than one hour after its window ends. Time is
//! stream time, so a replay decides exactly as the first run did.
//!
//! Checkpoint entries: `t` → stream time (i64 BE, ms); `E`/`O` + hour + part → event ids /
//! orders first seen in that hour (see [`crate::id_window`]); `f\0adv\0customer` → first touch
//! (JSON). Entries of the previous format, `e\0adv\0id` and `o\0adv\0id`, are read as ids
//! first seen at the restored stream time (or the next record's, when none was stored) and are
//! replaced by the new format in the next checkpoint.

use crate::attribution::{FirstTouch, attribute};
use crate::id_window::{IdWindow, hash_id, hash_key};
use crate::pipeline::{Output, PartitionState, StateChanges, StepCtx};
use clicktrail_bus::Message;
use clicktrail_schemas::metric_names::processor::DUPLICATE_EVENTS;
use clicktrail_schemas::rows::{EventRow, Source};
use clicktrail_schemas::wire::{Action, EventRecord};
use std::collections::HashMap;
use std::time::Duration;

/// How long event ids are remembered by default: 7 days.
pub const DEFAULT_EVENT_ID_WINDOW: Duration = Duration::from_secs(7 * 86_400);
/// How long purchase orders are remembered by default: 90 days.
pub const DEFAULT_ORDER_WINDOW: Duration = Duration::from_secs(90 * 86_400);
/// The shortest window accepted: one hour.
pub const MIN_WINDOW: Duration = Duration::from_secs(3_600);

/// How long the events step remembers ids, in stream time.
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

/// Kind byte of an event id in the hashed key and in old-format entries.
const EVENT: u8 = b'e';
/// Kind byte of a purchase order in the hashed key and in old-format entries.
const ORDER: u8 = b'o';
const TOUCH: u8 = b'f';
/// Checkpoint entries of the event id window.
const EVENT_IDS: u8 = b'E';
/// Checkpoint entries of the order window.
const ORDERS: u8 = b'O';
/// The checkpoint entry of the stream time.
const STREAM_TIME: &[u8] = b"t";

fn key(kind: u8, advertiser: &str, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + advertiser.len() + id.len());
    k.push(kind);
    k.push(0);
    k.extend_from_slice(advertiser.as_bytes());
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

/// One events partition's state.
pub struct EventState {
    /// The largest `received_at` seen, ms since the Unix epoch.
    stream_ms: Option<i64>,
    stream_changed: bool,
    event_ids: IdWindow,
    orders: IdWindow,
    touches: HashMap<Vec<u8>, FirstTouch>,
    puts: Vec<(Vec<u8>, Vec<u8>)>,
    deletes: Vec<Vec<u8>>,
}

impl EventState {
    /// An empty state remembering ids for `windows`.
    pub fn new(windows: IdWindows) -> Self {
        EventState {
            stream_ms: None,
            stream_changed: false,
            event_ids: IdWindow::new(EVENT_IDS, windows.event_id),
            orders: IdWindow::new(ORDERS, windows.order),
            touches: HashMap::new(),
            puts: Vec::new(),
            deletes: Vec::new(),
        }
    }

    /// The partition's stream time, ms since the Unix epoch; `None` before the first record.
    pub fn stream_ms(&self) -> Option<i64> {
        self.stream_ms
    }

    /// Event ids remembered.
    pub fn event_ids(&self) -> usize {
        self.event_ids.len()
    }

    /// Purchase orders remembered.
    pub fn orders(&self) -> usize {
        self.orders.len()
    }

    /// Checks an event id of `advertiser` received at `received_ms` (ms since the Unix
    /// epoch), moving stream time on, and remembers it: true when it is new within the window,
    /// false for a duplicate. This is the first check of every record.
    pub fn check_event_id(&mut self, advertiser: &str, event_id: &str, received_ms: i64) -> bool {
        self.advance(received_ms);
        self.event_ids
            .check_and_insert(hash_id(EVENT, advertiser, event_id))
    }

    fn advance(&mut self, received_ms: i64) {
        if self.stream_ms.is_none_or(|s| received_ms > s) {
            self.stream_ms = Some(received_ms);
            self.stream_changed = true;
        }
        let now = self.stream_ms.unwrap_or(received_ms);
        self.event_ids.advance(now);
        self.orders.advance(now);
    }
}

impl PartitionState for EventState {
    fn restore(
        _partition: u32,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        ctx: &StepCtx,
    ) -> Result<Self, String> {
        let mut s = EventState::new(ctx.windows);
        s.stream_ms = entries
            .iter()
            .find(|(k, _)| k == STREAM_TIME)
            .map(|(_, v)| {
                <[u8; 8]>::try_from(v.as_slice())
                    .map(i64::from_be_bytes)
                    .map_err(|_| "bad stream time entry".to_string())
            })
            .transpose()?;
        for (k, v) in entries {
            match k.first() {
                Some(&EVENT_IDS) => {
                    let (hour, part) = s.event_ids.parse_key(&k).ok_or("bad event id entry")?;
                    s.event_ids.restore_part(hour, part, &v)?;
                }
                Some(&ORDERS) => {
                    let (hour, part) = s.orders.parse_key(&k).ok_or("bad order entry")?;
                    s.orders.restore_part(hour, part, &v)?;
                }
                Some(&EVENT) => {
                    s.event_ids.restore_legacy(hash_key(&k));
                    s.deletes.push(k);
                }
                Some(&ORDER) => {
                    s.orders.restore_legacy(hash_key(&k));
                    s.deletes.push(k);
                }
                Some(&TOUCH) => {
                    let t = serde_json::from_slice(&v).map_err(|e| e.to_string())?;
                    s.touches.insert(k, t);
                }
                _ if k == STREAM_TIME => {}
                _ => return Err("unknown event state entry".into()),
            }
        }
        s.event_ids.finish_restore(s.stream_ms);
        s.orders.finish_restore(s.stream_ms);
        Ok(s)
    }

    fn process(&mut self, msg: &Message, ctx: &StepCtx, out: &mut Output) {
        let Some(event) = out.decode::<EventRecord>(msg) else {
            return;
        };
        let received_ms = event.received_at.timestamp_millis();
        if !self.check_event_id(&event.advertiser_id, &event.event_id, received_ms) {
            metrics::counter!(DUPLICATE_EVENTS).increment(1);
            return;
        }
        if let (Action::Purchase, Some(order)) = (event.action, event.order_id.as_deref())
            && !self
                .orders
                .check_and_insert(hash_id(ORDER, &event.advertiser_id, order))
        {
            return out.dead_letter(
                msg,
                "duplicate_order",
                format!("order {order} was already counted as a purchase"),
            );
        }
        let tk = event
            .customer_id
            .as_deref()
            .map(|c| key(TOUCH, &event.advertiser_id, c));
        let owner = tk.as_ref().and_then(|k| self.touches.get(k));
        let decision = attribute(&event, &ctx.catalog, &ctx.keys, owner);
        if let (Some(k), Some(t)) = (tk, decision.new_first_touch) {
            self.puts.push((
                k.clone(),
                serde_json::to_vec(&t).expect("first touch serializes"),
            ));
            self.touches.insert(k, t);
        }
        out.rows.events.push(EventRow {
            event,
            attribution: decision.attribution,
            source: Source {
                partition: msg.partition,
                offset: msg.offset,
            },
        });
    }

    fn take_changes(&mut self) -> StateChanges {
        let mut puts = std::mem::take(&mut self.puts);
        let mut deletes = std::mem::take(&mut self.deletes);
        if std::mem::take(&mut self.stream_changed)
            && let Some(ms) = self.stream_ms
        {
            puts.push((STREAM_TIME.to_vec(), ms.to_be_bytes().to_vec()));
        }
        for w in [&mut self.event_ids, &mut self.orders] {
            let changes = w.take_changes();
            puts.extend(changes.puts);
            deletes.extend(changes.deletes);
        }
        StateChanges { puts, deletes }
    }

    fn memory_bytes(&self) -> usize {
        self.event_ids.memory_bytes()
            + self.orders.memory_bytes()
            + self.touches.keys().map(|k| k.len() + 160).sum::<usize>()
            + crate::pipeline::pending_bytes(
                self.puts.iter().map(|(k, v)| (k, v)),
                self.deletes.iter(),
            )
    }
}

#[cfg(test)]
mod tests;
