//! The attribution step: reads `events-by-customer` and attributes each event
//! ([`crate::attribution`]) with its customer's first touch, writing one row per event. Every
//! purchase and refund, and every other conversion that earned a commission
//! ([`crate::ledger::booking`]), goes on to the commission step (`commissions`); every
//! conversion someone subscribed to goes on to the delivery worker (`outbound`,
//! [`crate::outbound`]).
//!
//! All of a customer's events carry the same key on `events-by-customer` (advertiser +
//! customer id, else order id, else event id), so the first touch lives here.
//!
//! Checkpoint entries: `f\0adv\0customer` → first touch (JSON), and the [`ReplayGuard`]'s `r`
//! entries.

use super::replay::ReplayGuard;
use crate::attribution::{FirstTouch, attribute};
use crate::outbound::messages::conversion;
use crate::pipeline::{Output, PartitionState, StateChanges, StepCtx};
use clicktrail_bus::Message;
use clicktrail_schemas::Topic;
use clicktrail_schemas::ledger::OrderEvent;
use clicktrail_schemas::outbound::StoredAt;
use clicktrail_schemas::rows::{EventRow, Source};
use clicktrail_schemas::wire::{Action, Forwarded, Position, WIRE_VERSION};
use std::collections::HashMap;

const TOUCH: u8 = b'f';

fn touch_key(advertiser: &str, customer: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + advertiser.len() + customer.len());
    k.push(TOUCH);
    k.push(0);
    k.extend_from_slice(advertiser.as_bytes());
    k.push(0);
    k.extend_from_slice(customer.as_bytes());
    k
}

/// One partition of the attribution step.
#[derive(Default)]
pub struct AttributionStep {
    touches: HashMap<Vec<u8>, FirstTouch>,
    guard: ReplayGuard,
    puts: Vec<(Vec<u8>, Vec<u8>)>,
}

impl AttributionStep {
    /// Customers with a first touch.
    pub fn customers(&self) -> usize {
        self.touches.len()
    }
}

impl PartitionState for AttributionStep {
    fn restore(
        _partition: u32,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        _ctx: &StepCtx,
    ) -> Result<Self, String> {
        let mut s = AttributionStep::default();
        for (k, v) in entries {
            if s.guard.restore_entry(&k, &v)? {
                continue;
            }
            if k.first() != Some(&TOUCH) {
                return Err("unknown attribution step entry".into());
            }
            let t = serde_json::from_slice(&v).map_err(|e| e.to_string())?;
            s.touches.insert(k, t);
        }
        Ok(s)
    }

    fn process(&mut self, msg: &Message, ctx: &StepCtx, out: &mut Output) {
        let Some(f) = out.decode::<Forwarded>(msg) else {
            return;
        };
        if !self.guard.admit_record(&f) {
            return;
        }
        let event = f.event;
        let tk = event
            .customer_id
            .as_deref()
            .map(|c| touch_key(&event.advertiser_id, c));
        let owner = tk.as_ref().and_then(|k| self.touches.get(k));
        let decision = attribute(&event, &ctx.catalog, &ctx.keys, owner);
        if let (Some(k), Some(t)) = (tk, decision.new_first_touch) {
            self.puts.push((
                k.clone(),
                serde_json::to_vec(&t).expect("first touch serializes"),
            ));
            self.touches.insert(k, t);
        }
        let booking = crate::ledger::booking(&event, &decision.attribution, &ctx.catalog);
        let claims_order = matches!(event.action, Action::Purchase | Action::Refund);
        if claims_order || booking.is_some() {
            let received_ms = event.received_at.timestamp_millis();
            let order = OrderEvent {
                v: WIRE_VERSION,
                from: Position {
                    partition: msg.partition,
                    offset: msg.offset,
                },
                source: f.source,
                event: event.clone(),
                booking,
            };
            out.forward(&order, msg.partition, received_ms);
        }
        let after = StoredAt {
            topic: Topic::EventsByCustomer,
            partition: msg.partition,
            offset: msg.offset,
        };
        if let Some(message) = conversion(&event, &decision.attribution, &ctx.catalog, after) {
            out.forward(
                &message,
                msg.partition,
                event.received_at.timestamp_millis(),
            );
        }
        out.rows.events.push(EventRow {
            event,
            attribution: decision.attribution,
            source: Source {
                partition: f.source.partition,
                offset: f.source.offset,
            },
        });
    }

    fn take_changes(&mut self) -> StateChanges {
        let mut changes = self.guard.take_changes();
        changes.puts.append(&mut self.puts);
        changes
    }

    fn memory_bytes(&self) -> usize {
        self.touches.keys().map(|k| k.len() + 160).sum::<usize>()
            + self.guard.memory_bytes()
            + crate::pipeline::pending_bytes(
                self.puts.iter().map(|(k, v)| (k, v)),
                std::iter::empty(),
            )
    }
}
