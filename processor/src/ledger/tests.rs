//! The ledger's rules, run in memory: bookings, holds, payouts, refunds and clawbacks.

use super::*;
use crate::events::IdWindows;
use crate::pipeline::{Output, PartitionState, StepCtx};
use chrono::{DateTime, Utc};
use clicktrail_bus::Message;
use clicktrail_schemas::Topic;
use clicktrail_schemas::attribution::TouchSource;
use clicktrail_schemas::ledger::{LedgerOp, LedgerRecord, LedgerRow, LedgerStatus, OrderEvent};
use clicktrail_schemas::record::Record;
use clicktrail_schemas::token::ClickKeys;
use clicktrail_schemas::wire::{Action, EventRecord, Position};
use std::collections::BTreeMap;
use std::sync::Arc;

const T0: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

fn t(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

fn ctx() -> StepCtx {
    StepCtx {
        catalog: Arc::new(clicktrail_schemas::Catalog::default()),
        keys: ClickKeys::new(1, b"ledger-test-key".to_vec()),
        dedup: Default::default(),
        windows: IdWindows::default(),
    }
}

fn msg<R: Record>(r: &R, offset: u64) -> Message {
    let (key, payload) = r.encode();
    Message {
        topic: R::TOPIC,
        partition: 0,
        offset,
        key,
        payload,
        timestamp_ms: 0,
    }
}

fn booking(id: &str, amount: i64, at: i64, hold: Option<FraudRule>) -> Booking {
    Booking {
        commission_id: id.into(),
        influencer_id: "inf".into(),
        campaign_id: "cmp".into(),
        attributed_by: TouchSource::Coupon,
        click_id: None,
        amount_minor: amount,
        currency: "EUR".into(),
        available_at: t(at + DAY),
        hold,
        hold_detail: None,
        min_payout_minor: Some(100),
    }
}

fn op(op: LedgerOp) -> LedgerRecord {
    LedgerRecord {
        v: 1,
        influencer_id: "inf".into(),
        from: None,
        op,
    }
}

fn book(b: Booking, at: i64) -> LedgerRecord {
    op(LedgerOp::Book {
        advertiser_id: "adv".into(),
        event_id: format!("e-{}", b.commission_id),
        order_id: Some(format!("o-{}", b.commission_id)),
        action: Action::Purchase,
        occurred_at: t(at),
        received_at: t(at),
        booking: b,
        early_refunds: Vec::new(),
    })
}

fn reverse(id: &str, amount: i64, at: i64) -> LedgerRecord {
    op(LedgerOp::Reverse {
        commission_id: id.into(),
        advertiser_id: "adv".into(),
        amount_minor: amount,
        event_id: format!("refund-{id}-{at}"),
        order_id: format!("o-{id}"),
        at: t(at),
    })
}

fn request(id: &str, at: i64) -> LedgerRecord {
    op(LedgerOp::RequestPayout {
        request_id: id.into(),
        advertiser_id: None,
        currency: None,
        by: "usr".into(),
        at: t(at),
    })
}

/// The ledger step over one partition, with its rows and checkpoint.
struct Ledger {
    step: LedgerStep,
    log: Vec<LedgerRecord>,
    read: usize,
    rows: BTreeMap<String, LedgerRow>,
    stored: BTreeMap<Vec<u8>, Vec<u8>>,
    stored_read: usize,
}

impl Ledger {
    fn new() -> Self {
        Ledger {
            step: LedgerStep::restore(0, Vec::new(), &ctx()).unwrap(),
            log: Vec::new(),
            read: 0,
            rows: BTreeMap::new(),
            stored: BTreeMap::new(),
            stored_read: 0,
        }
    }

    fn send(&mut self, r: LedgerRecord) {
        self.log.push(r);
        self.pump();
    }

    fn pump(&mut self) {
        let ctx = ctx();
        let mut out = Output::default();
        while self.read < self.log.len() {
            self.step
                .process(&msg(&self.log[self.read], self.read as u64), &ctx, &mut out);
            self.read += 1;
        }
        for r in out.rows.ledger {
            // Stored by entry id: a movement written again replaces itself.
            self.rows.insert(r.entry_id.clone(), r);
        }
    }

    fn checkpoint(&mut self) {
        let c = self.step.take_changes();
        for (k, v) in c.puts {
            self.stored.insert(k, v);
        }
        for k in c.deletes {
            self.stored.remove(&k);
        }
        self.stored_read = self.read;
    }

    fn restart(&mut self) {
        let entries = self.stored.clone().into_iter().collect();
        self.step = LedgerStep::restore(0, entries, &ctx()).unwrap();
        self.read = self.stored_read;
        self.pump();
    }

    /// Balance per status at `at`, as the query service computes it.
    fn balances(&self, at: i64) -> BTreeMap<&'static str, i64> {
        let mut b = BTreeMap::new();
        for r in self.rows.values() {
            let status = match (r.status, r.available_at) {
                (LedgerStatus::Pending, Some(a)) if a <= t(at) => LedgerStatus::Available,
                (s, _) => s,
            };
            *b.entry(status.as_str()).or_insert(0) += r.amount_minor;
        }
        b.retain(|_, v| *v != 0);
        b
    }

    fn notes(&self, kind: &str) -> Vec<String> {
        self.rows
            .values()
            .filter(|r| r.kind.as_str() == kind)
            .filter_map(|r| r.note.clone())
            .collect()
    }

    fn payouts(&self) -> Vec<String> {
        let mut p: Vec<String> = self
            .rows
            .values()
            .filter(|r| r.status == LedgerStatus::Requested && r.amount_minor > 0)
            .filter_map(|r| r.payout_id.clone())
            .collect();
        p.dedup();
        p
    }
}

fn bal(pairs: &[(&'static str, i64)]) -> BTreeMap<&'static str, i64> {
    pairs.iter().copied().collect()
}

#[test]
fn commissions_are_held_then_requested_paid_refunded_and_clawed_back() {
    let mut l = Ledger::new();
    l.send(book(booking("c1", 1_000, T0, None), T0));
    l.send(book(
        booking("c2", 500, T0, Some(FraudRule::ClickInjection)),
        T0,
    ));
    assert_eq!(l.balances(T0), bal(&[("pending", 1_000), ("review", 500)]));
    // Within the hold: nothing to request.
    l.send(request("r1", T0 + HOUR));
    assert_eq!(
        l.notes("payout_refused"),
        ["nothing is available to pay yet"]
    );
    assert!(l.payouts().is_empty());
    // Past the hold the commission is available, and a request takes all of it.
    assert_eq!(
        l.balances(T0 + 2 * DAY),
        bal(&[("available", 1_000), ("review", 500)])
    );
    l.send(request("r2", T0 + 2 * DAY));
    assert_eq!(
        l.balances(T0 + 2 * DAY),
        bal(&[("requested", 1_000), ("review", 500)])
    );
    let payout = l.payouts().pop().unwrap();
    // A refund before payment lowers the requested payout.
    l.send(reverse("c1", 400, T0 + 2 * DAY + 1));
    assert_eq!(
        l.balances(T0 + 2 * DAY),
        bal(&[("requested", 600), ("review", 500)])
    );
    l.send(op(LedgerOp::MarkPaid {
        payout_id: payout.clone(),
        reference: "SEPA-1".into(),
        by: "admin".into(),
        at: t(T0 + 3 * DAY),
    }));
    assert_eq!(
        l.balances(T0 + 3 * DAY),
        bal(&[("paid", 600), ("review", 500)])
    );
    // Paying twice changes nothing.
    l.send(op(LedgerOp::MarkPaid {
        payout_id: payout,
        reference: "SEPA-2".into(),
        by: "admin".into(),
        at: t(T0 + 3 * DAY + 1),
    }));
    assert_eq!(
        l.balances(T0 + 3 * DAY),
        bal(&[("paid", 600), ("review", 500)])
    );
    // A refund after payment books a clawback: negative available, paid stays paid.
    l.send(reverse("c1", 10_000, T0 + 4 * DAY));
    assert_eq!(
        l.balances(T0 + 4 * DAY),
        bal(&[("available", -600), ("paid", 600), ("review", 500)])
    );
    // The held commission approved becomes pending, then available.
    l.send(op(LedgerOp::Review {
        commission_id: "c2".into(),
        approve: true,
        note: "checked".into(),
        by: "admin".into(),
        at: t(T0 + 4 * DAY),
    }));
    assert_eq!(
        l.balances(T0 + 4 * DAY),
        bal(&[("available", -100), ("paid", 600)])
    );
    // Below the plan's minimum of 1.00 EUR after netting the clawback: refused.
    l.send(book(booking("c3", 150, T0 + 4 * DAY, None), T0 + 4 * DAY));
    l.send(request("r3", T0 + 5 * DAY + 1));
    assert_eq!(l.notes("payout_refused").len(), 2);
    assert!(l.notes("payout_refused")[1].contains("below the minimum payout of 1.00 EUR"));
    l.send(book(booking("c4", 1_000, T0 + 4 * DAY, None), T0 + 4 * DAY));
    l.send(request("r4", T0 + 5 * DAY + 2));
    assert_eq!(
        l.balances(T0 + 6 * DAY),
        bal(&[("paid", 600), ("requested", 1_050)])
    );
}

#[test]
fn a_rejected_commission_is_never_paid_and_a_replay_writes_the_same_movements() {
    let mut l = Ledger::new();
    l.send(book(
        booking("c1", 700, T0, Some(FraudRule::SelfReferral)),
        T0,
    ));
    l.send(book(booking("c2", 300, T0, None), T0));
    l.checkpoint();
    l.send(op(LedgerOp::Review {
        commission_id: "c1".into(),
        approve: false,
        note: "own order".into(),
        by: "admin".into(),
        at: t(T0 + HOUR),
    }));
    l.send(request("r1", T0 + 2 * DAY));
    let before = l.rows.clone();
    let balances = l.balances(T0 + 2 * DAY);
    assert_eq!(balances, bal(&[("rejected", 700), ("requested", 300)]));
    // A crash after the checkpoint: the operations since are read again.
    l.restart();
    assert_eq!(
        l.rows, before,
        "a replay writes the same movements, nothing more"
    );
    assert_eq!(l.balances(T0 + 2 * DAY), balances);
    // A booking sent again (the step before restarted) books nothing.
    l.send(book(booking("c2", 300, T0, None), T0));
    assert_eq!(l.rows, before);
}

fn purchase(event_id: &str, order: &str, value: i64, at: i64) -> EventRecord {
    EventRecord {
        v: 1,
        event_id: event_id.into(),
        advertiser_id: "adv".into(),
        action: Action::Purchase,
        custom_name: None,
        occurred_at: t(at),
        received_at: t(at),
        value_minor: Some(value),
        currency: "EUR".into(),
        order_id: Some(order.into()),
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

fn refund(event_id: &str, order: &str, value: Option<i64>, at: i64) -> EventRecord {
    EventRecord {
        action: Action::Refund,
        value_minor: value,
        ..purchase(event_id, order, 0, at)
    }
}

fn order_event(e: EventRecord, booking: Option<Booking>, offset: u64) -> OrderEvent {
    OrderEvent {
        v: 1,
        from: Position {
            partition: 0,
            offset,
        },
        source: Position {
            partition: 0,
            offset,
        },
        event: e,
        booking,
    }
}

/// Runs the commission step over `events`; returns the reversal amounts and dead letters.
fn reversals(events: Vec<OrderEvent>) -> (Vec<i64>, Vec<String>) {
    let ctx = ctx();
    let mut s = CommissionStep::new(std::time::Duration::from_secs(90 * 86_400));
    let mut out = Output::default();
    for (i, e) in events.iter().enumerate() {
        s.process(&msg(e, i as u64), &ctx, &mut out);
    }
    let amounts = out
        .forward
        .iter()
        .filter(|f| f.topic == Topic::Ledger)
        .filter_map(|f| serde_json::from_slice::<LedgerRecord>(&f.payload).ok())
        .filter_map(|r| match r.op {
            LedgerOp::Reverse { amount_minor, .. } => Some(amount_minor),
            _ => None,
        })
        .collect();
    (amounts, out.dead.iter().map(|d| d.reason.clone()).collect())
}

#[test]
fn partial_refunds_take_back_exactly_the_whole_commission_in_the_end() {
    // 10 % of 123.45 is 12.345 → 12.34 (half to even).
    let b = booking("c1", 1_234, T0, None);
    let (amounts, dead) = reversals(vec![
        order_event(purchase("p1", "A", 12_345, T0), Some(b), 0),
        order_event(refund("r1", "A", Some(1_000), T0 + 1), None, 1),
        order_event(refund("r2", "A", Some(2_345), T0 + 2), None, 2),
        order_event(refund("r3", "A", Some(9_000), T0 + 3), None, 3),
        order_event(refund("r4", "A", None, T0 + 4), None, 4),
        order_event(refund("r5", "B", None, T0 + 5), None, 5),
    ]);
    // 1,234 × 1,000 / 12,345 = 99.96 → 100; × 3,345 / 12,345 = 334.36 → 334 (234 more);
    // the rest of the order refunds the rest: 900.
    assert_eq!(amounts, [100, 234, 900]);
    assert_eq!(amounts.iter().sum::<i64>(), 1_234);
    assert_eq!(dead, ["already_refunded", "unknown_order"]);
}

#[test]
fn a_refund_of_an_unattributed_order_is_known_and_books_nothing() {
    let (amounts, dead) = reversals(vec![
        order_event(purchase("p1", "A", 5_000, T0), None, 0),
        order_event(refund("r1", "A", None, T0 + 1), None, 1),
        order_event(
            EventRecord {
                currency: "USD".into(),
                ..refund("r2", "C", Some(10), T0 + 2)
            },
            None,
            2,
        ),
    ]);
    assert!(amounts.is_empty());
    assert_eq!(dead, ["unknown_order"]);
}

#[test]
fn a_refund_that_overtakes_its_purchase_is_applied_when_the_purchase_arrives_even_after_a_restart()
{
    let ctx = ctx();
    let mut s = CommissionStep::new(std::time::Duration::from_secs(90 * 86_400));
    let mut out = Output::default();
    let early = order_event(refund("r1", "A", Some(1_000), T0), None, 0);
    s.process(&msg(&early, 0), &ctx, &mut out);
    assert_eq!(
        out.dead
            .iter()
            .map(|d| d.reason.as_str())
            .collect::<Vec<_>>(),
        ["unknown_order"]
    );
    // The waiting refund is in the checkpoint: a restarted step still knows it.
    let changes = s.take_changes();
    let mut s = CommissionStep::restore(0, changes.puts, &ctx).unwrap();
    let b = booking("c1", 1_234, T0 + 5, None);
    let p = order_event(purchase("p1", "A", 12_345, T0 + 5), Some(b), 1);
    s.process(&msg(&p, 1), &ctx, &mut out);
    let late = order_event(refund("r2", "A", None, T0 + 9), None, 2);
    s.process(&msg(&late, 2), &ctx, &mut out);
    let ops: Vec<LedgerOp> = out
        .forward
        .iter()
        .filter(|f| f.topic == Topic::Ledger)
        .map(|f| {
            serde_json::from_slice::<LedgerRecord>(&f.payload)
                .unwrap()
                .op
        })
        .collect();
    // 1,234 × 1,000 / 12,345 = 99.96 → 100 rides on the booking; the rest, 1,134, follows.
    match &ops[..] {
        [
            LedgerOp::Book { early_refunds, .. },
            LedgerOp::Reverse { amount_minor, .. },
        ] => {
            assert_eq!(
                early_refunds
                    .iter()
                    .map(|r| (r.event_id.as_str(), r.amount_minor))
                    .collect::<Vec<_>>(),
                [("r1", 100)]
            );
            assert_eq!(*amount_minor, 1_134);
        }
        other => panic!("{other:?}"),
    }
    // Once applied, the waiting refund is gone from the checkpoint.
    let changes = s.take_changes();
    assert!(changes.deletes.iter().any(|k| k.first() == Some(&b'e')));
}

#[test]
fn the_ledger_books_a_commission_with_its_early_refunds_as_if_they_came_second() {
    let mut l = Ledger::new();
    let mut rec = book(booking("c1", 1_234, T0, None), T0);
    if let LedgerOp::Book { early_refunds, .. } = &mut rec.op {
        early_refunds.push(clicktrail_schemas::ledger::EarlyRefund {
            event_id: "r1".into(),
            amount_minor: 100,
            at: t(T0 - 1_000),
        });
    }
    l.send(rec.clone());
    assert_eq!(l.balances(T0 + 1), bal(&[("pending", 1_134)]));
    // A copy of the same booking, refunds and all, changes nothing.
    l.send(rec);
    assert_eq!(l.balances(T0 + 1), bal(&[("pending", 1_134)]));
}

mod order_keys;
