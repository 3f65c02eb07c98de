//! The commission step: reads `commissions` (keyed by advertiser + order id), remembers each
//! purchase order with its commission for the order window, and turns refunds into reversals.
//!
//! A refund of `value` takes back the same share of the commission as of the purchase:
//! cumulatively, `commission × refunded ÷ purchase value` rounded half to even, so that
//! partial refunds add up to exactly the whole commission when the whole order is refunded
//! (a refund without a value, or reaching the purchase value, takes back all that is left).
//!
//! Events of one order travel different partitions before they meet here, so a refund sent
//! right after its purchase may arrive first. Such a refund is dead-lettered `unknown_order`
//! (an admin sees it at once) and also kept for the order window: if the purchase arrives
//! within it, the refund is applied to it then, as if it had come second, so the ledger does
//! not depend on the order in which partitions were read.
//!
//! Dead letters: `unknown_order` (no purchase of the order yet),
//! `currency_mismatch` (a refund value in another currency than the purchase),
//! `already_refunded` (the order was refunded in full before).
//!
//! Checkpoint entries: `t` → stream time (i64 BE ms), `o` + the order's receipt time (8 bytes,
//! ordered as ms) + 16-byte order hash → the order (JSON), `e` + 16-byte order hash → the
//! refunds waiting for that order (JSON), and the [`ReplayGuard`]'s `r` entries. Order entries
//! are keyed by time first so that each batch's new orders land together at the end of the
//! store's state table and expired ones leave from its front: keyed by hash alone, every batch
//! rewrote thousands of scattered pages of a table holding the whole order window. Entries
//! keyed `o` + hash alone (written before) are read and rewritten under the new key.

use crate::events::replay::ReplayGuard;
use crate::id_window::hash_id;
use crate::pipeline::{Output, PartitionState, StateChanges, StepCtx};
use chrono::{DateTime, Utc};
use clicktrail_bus::Message;
use clicktrail_schemas::ledger::{EarlyRefund, LedgerOp, LedgerRecord, OrderEvent};
use clicktrail_schemas::money::share_half_even;
use clicktrail_schemas::wire::{Action, Forwarded, Position, WIRE_VERSION};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};

const STREAM_TIME: &[u8] = b"t";
const ORDER: u8 = b'o';
const WAITING: u8 = b'e';
/// Kind byte of an order in the hashed key.
const ORDER_KIND: u8 = b'c';

/// A purchase order as the step remembers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OrderState {
    /// When the purchase was received, ms: the order is forgotten a window later.
    first_ms: i64,
    currency: String,
    value_minor: i64,
    refunded_minor: i64,
    commission: Option<OrderCommission>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OrderCommission {
    commission_id: String,
    influencer_id: String,
    amount_minor: i64,
    reversed_minor: i64,
}

/// A refund that arrived before its purchase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Waiting {
    event_id: String,
    value_minor: Option<i64>,
    currency: String,
    received_at: DateTime<Utc>,
}

/// One partition of the commission step.
#[derive(Default)]
pub struct CommissionStep {
    stream_ms: Option<i64>,
    orders: HashMap<u128, OrderState>,
    by_age: BTreeSet<(i64, u128)>,
    /// Refunds waiting for their purchase, by order; forgotten a window after the first.
    waiting: HashMap<u128, Vec<Waiting>>,
    waiting_by_age: BTreeSet<(i64, u128)>,
    window_ms: i64,
    guard: ReplayGuard,
    puts: HashMap<u128, ()>,
    /// Orders forgotten since the last checkpoint: (receipt ms, hash).
    deletes: HashSet<(i64, u128)>,
    /// Entries of the older key layout to remove once rewritten under the new one.
    legacy_deletes: Vec<Vec<u8>>,
    waiting_changed: BTreeSet<u128>,
    time_changed: bool,
}

/// The checkpoint key of an order received at `first_ms`: time first, so keys follow arrival.
fn order_key(first_ms: i64, hash: u128) -> Vec<u8> {
    let mut k = Vec::with_capacity(25);
    k.push(ORDER);
    // Flipping the sign bit makes the big-endian bytes sort as the signed value does.
    k.extend_from_slice(&((first_ms as u64) ^ (1 << 63)).to_be_bytes());
    k.extend_from_slice(&hash.to_be_bytes());
    k
}

fn key_of(kind: u8, hash: u128) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(kind);
    k.extend_from_slice(&hash.to_be_bytes());
    k
}

/// How a refund changes an order, or why it cannot: (dead-letter reason, detail).
type RefundOutcome = Result<Option<i64>, (&'static str, String)>;

/// Applies a refund of `value_minor` (all that is left when none) in `currency` to `order`;
/// answers the minor units of commission to take back now, if any.
fn refund_order(
    order: &mut OrderState,
    order_id: &str,
    value_minor: Option<i64>,
    currency: &str,
) -> RefundOutcome {
    if order.refunded_minor >= order.value_minor {
        let detail = format!("order {order_id} was already refunded in full");
        return Err(("already_refunded", detail));
    }
    let refunded = match value_minor {
        Some(_) if currency != order.currency => {
            let detail = format!(
                "the refund is in {currency}, order {order_id} was paid in {}",
                order.currency
            );
            return Err(("currency_mismatch", detail));
        }
        Some(v) => order
            .refunded_minor
            .saturating_add(v)
            .min(order.value_minor),
        None => order.value_minor,
    };
    order.refunded_minor = refunded;
    let value = order.value_minor;
    let Some(c) = order.commission.as_mut() else {
        return Ok(None);
    };
    let due = if refunded >= value {
        c.amount_minor
    } else {
        share_half_even(c.amount_minor, refunded, value)
    };
    let amount = due - c.reversed_minor;
    if amount <= 0 {
        return Ok(None);
    }
    c.reversed_minor = due;
    Ok(Some(amount))
}

impl CommissionStep {
    /// An empty step remembering orders for `window`.
    pub fn new(window: std::time::Duration) -> Self {
        CommissionStep {
            window_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX),
            ..Default::default()
        }
    }

    /// Orders remembered.
    pub fn orders(&self) -> usize {
        self.orders.len()
    }

    fn advance(&mut self, ms: i64) {
        if self.stream_ms.is_none_or(|s| ms > s) {
            self.stream_ms = Some(ms);
            self.time_changed = true;
        }
        let horizon = self.stream_ms.unwrap_or(ms).saturating_sub(self.window_ms);
        while let Some(&(first, hash)) = self.by_age.first() {
            if first >= horizon {
                break;
            }
            self.by_age.pop_first();
            self.orders.remove(&hash);
            self.puts.remove(&hash);
            self.deletes.insert((first, hash));
        }
        while let Some(&(first, hash)) = self.waiting_by_age.first() {
            if first >= horizon {
                break;
            }
            self.waiting_by_age.pop_first();
            self.waiting.remove(&hash);
            self.waiting_changed.insert(hash);
        }
    }

    /// Keeps a refund whose purchase has not arrived yet.
    fn wait(&mut self, hash: u128, w: Waiting) {
        let list = self.waiting.entry(hash).or_default();
        if list.is_empty() {
            self.waiting_by_age
                .insert((w.received_at.timestamp_millis(), hash));
        }
        list.push(w);
        self.waiting_changed.insert(hash);
    }

    /// Applies the refunds that waited for `hash`'s purchase; answers the reversals.
    fn take_waiting(&mut self, hash: u128, order_id: &str) -> Vec<EarlyRefund> {
        let Some(list) = self.waiting.remove(&hash) else {
            return Vec::new();
        };
        if let Some(first) = list.first() {
            self.waiting_by_age
                .remove(&(first.received_at.timestamp_millis(), hash));
        }
        self.waiting_changed.insert(hash);
        let Some(order) = self.orders.get_mut(&hash) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for w in list {
            match refund_order(order, order_id, w.value_minor, &w.currency) {
                Ok(Some(amount_minor)) => out.push(EarlyRefund {
                    event_id: w.event_id,
                    amount_minor,
                    at: w.received_at,
                }),
                Ok(None) => {}
                // Already dead-lettered as unknown_order when it arrived.
                Err((reason, detail)) => {
                    tracing::warn!(%reason, %detail, "a refund that waited for its purchase does not apply")
                }
            }
        }
        out
    }

    fn remember(&mut self, hash: u128, order: OrderState) {
        self.deletes.remove(&(order.first_ms, hash));
        self.by_age.insert((order.first_ms, hash));
        self.orders.insert(hash, order);
        self.puts.insert(hash, ());
    }

    fn refund(&mut self, f: &OrderEvent, at: Position, out: &mut Output) {
        let event = &f.event;
        let dead = |out: &mut Output, reason: &str, detail: String| {
            let fwd = Forwarded {
                v: WIRE_VERSION,
                from: f.from,
                source: f.source,
                event: event.clone(),
            };
            out.dead_letter_event(&fwd, reason, detail);
        };
        let Some(order_id) = event.order_id.as_deref() else {
            return dead(out, "unknown_order", "a refund names no order_id".into());
        };
        let hash = hash_id(ORDER_KIND, &event.advertiser_id, order_id);
        let Some(order) = self.orders.get_mut(&hash) else {
            let days = self.window_ms / 86_400_000;
            let detail = format!(
                "no purchase of order {order_id} is known for this advertiser yet; if it arrives \
                 within the order window ({days} days) the refund is applied to it then"
            );
            self.wait(
                hash,
                Waiting {
                    event_id: event.event_id.clone(),
                    value_minor: event.value_minor,
                    currency: event.currency.clone(),
                    received_at: event.received_at,
                },
            );
            return dead(out, "unknown_order", detail);
        };
        let commission = order.commission.clone();
        let amount = match refund_order(order, order_id, event.value_minor, &event.currency) {
            Ok(amount) => amount,
            Err((reason, detail)) => return dead(out, reason, detail),
        };
        self.puts.insert(hash, ());
        if let (Some(amount_minor), Some(c)) = (amount, commission) {
            let r = LedgerRecord {
                v: WIRE_VERSION,
                influencer_id: c.influencer_id,
                from: Some(at),
                op: LedgerOp::Reverse {
                    commission_id: c.commission_id,
                    advertiser_id: event.advertiser_id.clone(),
                    amount_minor,
                    event_id: event.event_id.clone(),
                    order_id: order_id.to_string(),
                    at: event.received_at,
                },
            };
            out.forward(&r, at.partition, event.received_at.timestamp_millis());
        }
    }
}

impl PartitionState for CommissionStep {
    fn restore(
        _partition: u32,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        ctx: &StepCtx,
    ) -> Result<Self, String> {
        let mut s = CommissionStep::new(ctx.windows.order);
        for (k, v) in entries {
            if k == STREAM_TIME {
                let ms = <[u8; 8]>::try_from(v.as_slice()).map_err(|_| "bad stream time")?;
                s.stream_ms = Some(i64::from_be_bytes(ms));
            } else if let Some(rest) = k.strip_prefix(&[ORDER]) {
                let h = match rest.len() {
                    24 => &rest[8..],
                    _ => rest,
                };
                let h = <[u8; 16]>::try_from(h).map_err(|_| "bad order key")?;
                let order: OrderState = serde_json::from_slice(&v).map_err(|e| e.to_string())?;
                let hash = u128::from_be_bytes(h);
                if rest.len() == 16 {
                    s.puts.insert(hash, ());
                    s.legacy_deletes.push(k.clone());
                }
                s.by_age.insert((order.first_ms, hash));
                s.orders.insert(hash, order);
            } else if let Some(h) = k.strip_prefix(&[WAITING]) {
                let h = <[u8; 16]>::try_from(h).map_err(|_| "bad waiting refund key")?;
                let list: Vec<Waiting> = serde_json::from_slice(&v).map_err(|e| e.to_string())?;
                let hash = u128::from_be_bytes(h);
                if let Some(first) = list.first() {
                    s.waiting_by_age
                        .insert((first.received_at.timestamp_millis(), hash));
                }
                s.waiting.insert(hash, list);
            } else if !s.guard.restore_entry(&k, &v)? {
                return Err("unknown commission step entry".into());
            }
        }
        Ok(s)
    }

    fn process(&mut self, msg: &Message, _ctx: &StepCtx, out: &mut Output) {
        let Some(f) = out.decode::<OrderEvent>(msg) else {
            return;
        };
        if !self.guard.admit(f.from) {
            return;
        }
        let at = Position {
            partition: msg.partition,
            offset: msg.offset,
        };
        let received_ms = f.event.received_at.timestamp_millis();
        self.advance(received_ms);
        if f.event.action == Action::Refund {
            return self.refund(&f, at, out);
        }
        let event = &f.event;
        let mut early_refunds = Vec::new();
        if let (Action::Purchase, Some(order_id), Some(value)) =
            (event.action, event.order_id.as_deref(), event.value_minor)
        {
            let hash = hash_id(ORDER_KIND, &event.advertiser_id, order_id);
            if !self.orders.contains_key(&hash) {
                let commission = f.booking.as_ref().map(|b| OrderCommission {
                    commission_id: b.commission_id.clone(),
                    influencer_id: b.influencer_id.clone(),
                    amount_minor: b.amount_minor,
                    reversed_minor: 0,
                });
                self.remember(
                    hash,
                    OrderState {
                        first_ms: received_ms,
                        currency: event.currency.clone(),
                        value_minor: value,
                        refunded_minor: 0,
                        commission,
                    },
                );
                early_refunds = self.take_waiting(hash, order_id);
            }
        }
        if let Some(b) = f.booking {
            let record = LedgerRecord {
                v: WIRE_VERSION,
                influencer_id: b.influencer_id.clone(),
                from: Some(at),
                op: LedgerOp::Book {
                    booking: b,
                    advertiser_id: f.event.advertiser_id.clone(),
                    event_id: f.event.event_id.clone(),
                    order_id: f.event.order_id.clone(),
                    action: f.event.action,
                    occurred_at: f.event.occurred_at,
                    received_at: f.event.received_at,
                    early_refunds,
                },
            };
            out.forward(&record, msg.partition, received_ms);
        }
    }

    fn take_changes(&mut self) -> StateChanges {
        let mut changes = self.guard.take_changes();
        for (hash, ()) in self.puts.drain() {
            if let Some(o) = self.orders.get(&hash) {
                let v = serde_json::to_vec(o).expect("orders serialize");
                changes.puts.push((order_key(o.first_ms, hash), v));
            }
        }
        changes
            .deletes
            .extend(self.deletes.drain().map(|(first, h)| order_key(first, h)));
        changes.deletes.append(&mut self.legacy_deletes);
        for hash in std::mem::take(&mut self.waiting_changed) {
            match self.waiting.get(&hash) {
                Some(list) => {
                    let v = serde_json::to_vec(list).expect("waiting refunds serialize");
                    changes.puts.push((key_of(WAITING, hash), v));
                }
                None => changes.deletes.push(key_of(WAITING, hash)),
            }
        }
        if std::mem::take(&mut self.time_changed)
            && let Some(ms) = self.stream_ms
        {
            changes
                .puts
                .push((STREAM_TIME.to_vec(), ms.to_be_bytes().to_vec()));
        }
        changes
    }

    fn memory_bytes(&self) -> usize {
        self.orders.len() * 256
            + self
                .waiting
                .values()
                .map(|l| 64 + l.len() * 160)
                .sum::<usize>()
            + self.guard.memory_bytes()
    }
}
