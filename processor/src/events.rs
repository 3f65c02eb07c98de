//! The events step: decode, idempotency by `event_id`, purchases once per order, attribution
//! with first touch per customer.
//!
//! State per partition (all of a customer's events share a partition, see the topic key):
//! event ids seen, purchase orders seen, and each customer's first touch. Every change is
//! checkpointed with the offsets it reflects.

use crate::attribution::{FirstTouch, attribute};
use crate::pipeline::{Output, PartitionState, StateChanges, StepCtx};
use clicktrail_bus::Message;
use clicktrail_schemas::metric_names::processor::DUPLICATE_EVENTS;
use clicktrail_schemas::rows::{EventRow, Source};
use clicktrail_schemas::wire::{Action, EventRecord};
use std::collections::{HashMap, HashSet};

const EVENT: u8 = b'e';
const ORDER: u8 = b'o';
const TOUCH: u8 = b'f';

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
#[derive(Default)]
pub struct EventState {
    seen: HashSet<Vec<u8>>,
    orders: HashSet<Vec<u8>>,
    touches: HashMap<Vec<u8>, FirstTouch>,
    puts: Vec<(Vec<u8>, Vec<u8>)>,
}

impl PartitionState for EventState {
    fn restore(
        _partition: u32,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        _ctx: &StepCtx,
    ) -> Result<Self, String> {
        let mut s = EventState::default();
        for (k, v) in entries {
            match k.first() {
                Some(&EVENT) => {
                    s.seen.insert(k);
                }
                Some(&ORDER) => {
                    s.orders.insert(k);
                }
                Some(&TOUCH) => {
                    let t = serde_json::from_slice(&v).map_err(|e| e.to_string())?;
                    s.touches.insert(k, t);
                }
                _ => return Err("unknown event state entry".into()),
            }
        }
        Ok(s)
    }

    fn process(&mut self, msg: &Message, ctx: &StepCtx, out: &mut Output) {
        let event: EventRecord = match serde_json::from_slice(&msg.payload) {
            Ok(e) => e,
            Err(e) => return out.dead_letter(msg, "undecodable", e.to_string()),
        };
        let ek = key(EVENT, &event.advertiser_id, &event.event_id);
        if self.seen.contains(&ek) {
            metrics::counter!(DUPLICATE_EVENTS).increment(1);
            return;
        }
        self.seen.insert(ek.clone());
        self.puts.push((ek, Vec::new()));
        if let (Action::Purchase, Some(order)) = (event.action, event.order_id.as_deref()) {
            let ok = key(ORDER, &event.advertiser_id, order);
            if !self.orders.insert(ok.clone()) {
                return out.dead_letter(
                    msg,
                    "duplicate_order",
                    format!("order {order} was already counted as a purchase"),
                );
            }
            self.puts.push((ok, Vec::new()));
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
        StateChanges {
            puts: std::mem::take(&mut self.puts),
            deletes: Vec::new(),
        }
    }

    fn memory_bytes(&self) -> usize {
        self.seen.iter().map(|k| k.len() + 32).sum::<usize>()
            + self.orders.iter().map(|k| k.len() + 32).sum::<usize>()
            + self.touches.keys().map(|k| k.len() + 160).sum::<usize>()
    }
}
