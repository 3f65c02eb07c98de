//! The commission step: reads `commissions` (keyed by advertiser + order id), remembers each
//! purchase order with its commission for the order window, and turns refunds into reversals.
//!
//! A refund of `value` takes back the same share of the commission as of the purchase:
//! cumulatively, `commission × refunded ÷ purchase value` rounded half to even, so that
//! partial refunds add up to exactly the whole commission when the whole order is refunded
//! (a refund without a value, or reaching the purchase value, takes back all that is left).
//!
//! Dead letters: `unknown_order` (no purchase of the order within the window),
//! `currency_mismatch` (a refund value in another currency than the purchase),
//! `already_refunded` (the order was refunded in full before).
//!
//! Checkpoint entries: `t` → stream time (i64 BE ms), `o` + 16-byte order hash → the order
//! (JSON), and the [`ReplayGuard`]'s `r` entries.

use crate::events::replay::ReplayGuard;
use crate::id_window::hash_id;
use crate::pipeline::{Output, PartitionState, StateChanges, StepCtx};
use clicktrail_bus::Message;
use clicktrail_schemas::ledger::{LedgerOp, LedgerRecord, OrderEvent};
use clicktrail_schemas::money::share_half_even;
use clicktrail_schemas::wire::{Action, Forwarded, Position, WIRE_VERSION};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

const STREAM_TIME: &[u8] = b"t";
const ORDER: u8 = b'o';
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

/// One partition of the commission step.
#[derive(Default)]
pub struct CommissionStep {
    stream_ms: Option<i64>,
    orders: HashMap<u128, OrderState>,
    by_age: BTreeSet<(i64, u128)>,
    window_ms: i64,
    guard: ReplayGuard,
    puts: HashMap<u128, ()>,
    deletes: Vec<u128>,
    time_changed: bool,
}

fn key_of(hash: u128) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(ORDER);
    k.extend_from_slice(&hash.to_be_bytes());
    k
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
            self.deletes.push(hash);
        }
    }

    fn remember(&mut self, hash: u128, order: OrderState) {
        self.deletes.retain(|h| *h != hash);
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
            let detail = format!(
                "no purchase of order {order_id} is known for this advertiser within the order window"
            );
            return dead(out, "unknown_order", detail);
        };
        if order.refunded_minor >= order.value_minor {
            let detail = format!("order {order_id} was already refunded in full");
            return dead(out, "already_refunded", detail);
        }
        let refunded = match event.value_minor {
            Some(_) if event.currency != order.currency => {
                let detail = format!(
                    "the refund is in {}, order {order_id} was paid in {}",
                    event.currency, order.currency
                );
                return dead(out, "currency_mismatch", detail);
            }
            Some(v) => order
                .refunded_minor
                .saturating_add(v)
                .min(order.value_minor),
            None => order.value_minor,
        };
        order.refunded_minor = refunded;
        let value = order.value_minor;
        let mut reverse = None;
        if let Some(c) = order.commission.as_mut() {
            let due = if refunded >= value {
                c.amount_minor
            } else {
                share_half_even(c.amount_minor, refunded, value)
            };
            let amount = due - c.reversed_minor;
            if amount > 0 {
                c.reversed_minor = due;
                reverse = Some(LedgerRecord {
                    v: WIRE_VERSION,
                    influencer_id: c.influencer_id.clone(),
                    from: Some(at),
                    op: LedgerOp::Reverse {
                        commission_id: c.commission_id.clone(),
                        advertiser_id: event.advertiser_id.clone(),
                        amount_minor: amount,
                        event_id: event.event_id.clone(),
                        order_id: order_id.to_string(),
                        at: event.received_at,
                    },
                });
            }
        }
        self.puts.insert(hash, ());
        if let Some(r) = reverse {
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
            } else if let Some(h) = k.strip_prefix(&[ORDER]) {
                let h = <[u8; 16]>::try_from(h).map_err(|_| "bad order key")?;
                let order: OrderState = serde_json::from_slice(&v).map_err(|e| e.to_string())?;
                let hash = u128::from_be_bytes(h);
                s.by_age.insert((order.first_ms, hash));
                s.orders.insert(hash, order);
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
                changes.puts.push((key_of(hash), v));
            }
        }
        changes.deletes.extend(self.deletes.drain(..).map(key_of));
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
        self.orders.len() * 256 + self.guard.memory_bytes()
    }
}
