//! The events chain run in memory for the tests: three steps over partitioned logs, with
//! checkpoints and restarts, as the pipeline runs them.

use super::super::*;
use crate::pipeline::{Output, PartitionState, StepCtx};
use clicktrail_bus::Message;
use clicktrail_schemas::Topic;
use clicktrail_schemas::catalog::Catalog;
use clicktrail_schemas::rows::EventRow;
use clicktrail_schemas::token::ClickKeys;
use clicktrail_schemas::topics::partition_for;
use clicktrail_schemas::wire::{Action, DeadLetterRecord, EventRecord};
use std::collections::BTreeMap;
use std::sync::Arc;

pub(super) const T0: i64 = 1_700_000_000_000;
pub(super) const HOUR: i64 = 3_600_000;
pub(super) const DAY: i64 = 24 * HOUR;
pub(super) const PARTS: u32 = 4;

pub(super) fn ctx(windows: IdWindows) -> StepCtx {
    StepCtx {
        catalog: Arc::new(Catalog::default()),
        keys: ClickKeys::new(1, b"events-test-key".to_vec()),
        dedup: Default::default(),
        windows,
    }
}

pub(super) fn windows(event_days: u64, order_days: u64) -> IdWindows {
    IdWindows {
        event_id: Duration::from_secs(event_days * 86_400),
        order: Duration::from_secs(order_days * 86_400),
    }
}

pub(super) fn signup(event_id: &str, at_ms: i64) -> EventRecord {
    let at = chrono::DateTime::from_timestamp_millis(at_ms).unwrap();
    EventRecord {
        v: 1,
        event_id: event_id.into(),
        advertiser_id: "adv".into(),
        action: Action::Signup,
        custom_name: None,
        occurred_at: at,
        received_at: at,
        value_minor: None,
        currency: "USD".into(),
        order_id: None,
        customer_id: None,
        properties: None,
        coupon_code: None,
        ref_code: None,
        click_id: None,
        landing_url: None,
        referrer: None,
        sub_id: None,
        source: Default::default(),
        uncounted: false,
    }
}

pub(super) fn purchase(event_id: &str, order: &str, at_ms: i64) -> EventRecord {
    EventRecord {
        action: Action::Purchase,
        value_minor: Some(1000),
        order_id: Some(order.into()),
        ..signup(event_id, at_ms)
    }
}

pub(super) fn customer(e: EventRecord, c: Option<&str>) -> EventRecord {
    EventRecord {
        customer_id: c.map(Into::into),
        ..e
    }
}

/// One topic: its partitions' records.
pub(super) struct Log {
    pub(super) topic: Topic,
    pub(super) parts: Vec<Vec<Message>>,
}

impl Log {
    pub(super) fn new(topic: Topic) -> Self {
        Log {
            topic,
            parts: (0..PARTS).map(|_| Vec::new()).collect(),
        }
    }

    pub(super) fn append(&mut self, key: Vec<u8>, payload: Vec<u8>) {
        let partition = partition_for(&key, PARTS);
        let records = &mut self.parts[partition as usize];
        records.push(Message {
            topic: self.topic,
            partition,
            offset: records.len() as u64,
            key,
            payload,
            timestamp_ms: 0,
        });
    }
}

/// The partition's checkpoint as the store keeps it: puts, then deletes.
#[derive(Default, Clone)]
pub(super) struct Stored {
    pub(super) entries: BTreeMap<Vec<u8>, Vec<u8>>,
    pub(super) next: usize,
}

/// One step over all partitions of its topic.
pub(super) struct Step<S> {
    pub(super) states: Vec<S>,
    pub(super) next: Vec<usize>,
    pub(super) stored: Vec<Stored>,
}

impl<S: PartitionState> Step<S> {
    pub(super) fn new(ctx: &StepCtx) -> Self {
        let stored = vec![Stored::default(); PARTS as usize];
        Step {
            states: (0..PARTS)
                .map(|p| S::restore(p, Vec::new(), ctx).unwrap())
                .collect(),
            next: vec![0; PARTS as usize],
            stored,
        }
    }

    /// Processes everything not yet read.
    pub(super) fn pump(&mut self, log: &Log, ctx: &StepCtx, out: &mut Output) {
        for p in 0..PARTS as usize {
            while let Some(m) = log.parts[p].get(self.next[p]) {
                self.states[p].process(m, ctx, out);
                self.next[p] += 1;
            }
        }
    }

    pub(super) fn checkpoint(&mut self) {
        for (p, s) in self.states.iter_mut().enumerate() {
            let changes = s.take_changes();
            let stored = &mut self.stored[p];
            for (k, v) in changes.puts {
                stored.entries.insert(k, v);
            }
            for k in changes.deletes {
                stored.entries.remove(&k);
            }
            stored.next = self.next[p];
        }
    }

    /// A `kill -9` and restart: state and position from the last checkpoint.
    pub(super) fn restart(&mut self, ctx: &StepCtx) {
        for p in 0..PARTS as usize {
            let entries = self.stored[p].entries.clone().into_iter().collect();
            self.states[p] = S::restore(p as u32, entries, ctx).unwrap();
            self.next[p] = self.stored[p].next;
        }
    }
}

/// The three steps and their topics.
pub(super) struct Chain {
    pub(super) ctx: StepCtx,
    pub(super) events: Log,
    pub(super) by_order: Log,
    pub(super) by_customer: Log,
    pub(super) commissions: Log,
    pub(super) ids: Step<IdStep>,
    pub(super) orders: Step<OrderStep>,
    pub(super) customers: Step<AttributionStep>,
    pub(super) rows: Vec<EventRow>,
    pub(super) dead: Vec<DeadLetterRecord>,
}

impl Chain {
    pub(super) fn new(windows: IdWindows) -> Self {
        let ctx = ctx(windows);
        Chain {
            events: Log::new(Topic::Events),
            by_order: Log::new(Topic::EventsByOrder),
            by_customer: Log::new(Topic::EventsByCustomer),
            commissions: Log::new(Topic::Commissions),
            ids: Step::new(&ctx),
            orders: Step::new(&ctx),
            customers: Step::new(&ctx),
            rows: Vec::new(),
            dead: Vec::new(),
            ctx,
        }
    }

    /// Ingest appends an event to `events`.
    pub(super) fn accept(&mut self, e: &EventRecord) {
        let (key, payload) = clicktrail_schemas::record::Record::encode(e);
        self.events.append(key, payload);
    }

    /// Every step reads what it has not read; the output of each goes to the next.
    pub(super) fn run(&mut self) {
        let mut out = Output::default();
        self.ids.pump(&self.events, &self.ctx, &mut out);
        self.route(&mut out);
        self.orders.pump(&self.by_order, &self.ctx, &mut out);
        self.route(&mut out);
        self.customers.pump(&self.by_customer, &self.ctx, &mut out);
        self.route(&mut out);
    }

    pub(super) fn route(&mut self, out: &mut Output) {
        for f in std::mem::take(&mut out.forward) {
            match f.topic {
                Topic::EventsByOrder => self.by_order.append(f.key, f.payload),
                Topic::EventsByCustomer => self.by_customer.append(f.key, f.payload),
                // Purchases and refunds go on to the commission step (tested in `ledger`).
                Topic::Commissions => self.commissions.append(f.key, f.payload),
                other => panic!("forwarded to {other}"),
            }
        }
        self.rows.append(&mut out.rows.events);
        self.dead.append(&mut out.dead);
    }

    pub(super) fn checkpoint(&mut self) {
        self.ids.checkpoint();
        self.orders.checkpoint();
        self.customers.checkpoint();
    }

    /// Sends one event through the whole chain: `row`, `dropped` or its dead-letter reason.
    pub(super) fn send(&mut self, e: &EventRecord) -> String {
        let (rows, dead) = (self.rows.len(), self.dead.len());
        self.accept(e);
        self.run();
        match (self.rows.len() - rows, self.dead.get(dead)) {
            (1, None) => "row".into(),
            (0, Some(d)) => d.reason.clone(),
            (0, None) => "dropped".into(),
            other => panic!(
                "unexpected output {:?}",
                (other.0, other.1.map(|d| &d.reason))
            ),
        }
    }
}
