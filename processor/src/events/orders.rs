//! The order step: reads `events-by-order`, sends a second purchase of an order already
//! counted for this advertiser within [`IdWindows::order`](super::IdWindows) to dead-letter
//! (`duplicate_order`), and hands the rest on to the attribution step (`events-by-customer`).
//!
//! Every purchase of an order carries the same key on `events-by-order` (advertiser + order
//! id), so they all meet here whatever event id or customer they carry; events that claim no
//! order pass through.
//!
//! Checkpoint entries: `t` (stream time), `O` + hour + part → orders first counted in that
//! hour ([`crate::id_window`]), and the [`ReplayGuard`]'s `r` entries.

use super::StreamIds;
use super::replay::ReplayGuard;
use crate::id_window::hash_id;
use crate::pipeline::{Output, PartitionState, StateChanges, StepCtx};
use clicktrail_bus::Message;
use clicktrail_schemas::record::ToAttribution;
use clicktrail_schemas::wire::{Forwarded, Position};

/// Kind byte of a purchase order in the hashed key.
const ORDER: u8 = b'o';
/// Checkpoint entries of the order window.
const ORDERS: u8 = b'O';

/// One partition of the order step.
pub struct OrderStep {
    orders: StreamIds,
    guard: ReplayGuard,
}

impl OrderStep {
    /// An empty step remembering orders for `window`.
    pub fn new(window: std::time::Duration) -> Self {
        OrderStep {
            orders: StreamIds::new(ORDERS, window),
            guard: ReplayGuard::default(),
        }
    }

    /// Purchase orders remembered.
    pub fn orders(&self) -> usize {
        self.orders.len()
    }
}

impl PartitionState for OrderStep {
    fn restore(
        _partition: u32,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        ctx: &StepCtx,
    ) -> Result<Self, String> {
        let mut s = OrderStep::new(ctx.windows.order);
        for (k, v) in entries {
            if !s.orders.restore_entry(&k, &v)? && !s.guard.restore_entry(&k, &v)? {
                return Err("unknown order step entry".into());
            }
        }
        s.orders.finish_restore();
        Ok(s)
    }

    fn process(&mut self, msg: &Message, _ctx: &StepCtx, out: &mut Output) {
        let Some(f) = out.decode::<Forwarded>(msg) else {
            return;
        };
        if !self.guard.admit_record(&f) {
            return;
        }
        let received_ms = f.event.received_at.timestamp_millis();
        self.orders.advance(received_ms);
        if let Some(order) = f.event.purchase_order()
            && !self
                .orders
                .check_and_insert(hash_id(ORDER, &f.event.advertiser_id, order))
        {
            let detail = format!("order {order} was already counted as a purchase");
            return out.dead_letter_event(&f, "duplicate_order", detail);
        }
        out.forward(
            &ToAttribution(Forwarded {
                from: Position {
                    partition: msg.partition,
                    offset: msg.offset,
                },
                ..f
            }),
            msg.partition,
            received_ms,
        );
    }

    fn take_changes(&mut self) -> StateChanges {
        let mut changes = self.orders.take_changes();
        let guard = self.guard.take_changes();
        changes.puts.extend(guard.puts);
        changes
    }

    fn memory_bytes(&self) -> usize {
        self.orders.memory_bytes() + self.guard.memory_bytes()
    }
}
