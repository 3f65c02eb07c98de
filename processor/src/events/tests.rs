//! The events chain's rules, run in memory over partitioned logs ([`chain`]).

mod chain;

use super::*;
use crate::pipeline::PartitionState;
use chain::*;
use clicktrail_schemas::topics::partition_for;
use clicktrail_schemas::wire::{Action, EventRecord};

#[test]
fn a_duplicate_within_the_window_is_dropped_and_processed_again_after_it() {
    let mut c = Chain::new(windows(7, 90));
    assert_eq!(c.send(&signup("e1", T0)), "row");
    assert_eq!(c.send(&signup("e1", T0 + HOUR)), "dropped");
    assert_eq!(c.send(&signup("e1", T0 + 7 * DAY - 1)), "dropped");
    // Stream time is per partition of `events`: move the partition of e1 on.
    let later = (2..)
        .map(|i| format!("e{i}"))
        .find(|id| {
            let a = signup(id, 0).key();
            partition_for(a.as_bytes(), PARTS)
                == partition_for(signup("e1", 0).key().as_bytes(), PARTS)
        })
        .unwrap();
    assert_eq!(c.send(&signup(&later, T0 + 7 * DAY)), "row");
    // Past the window by record time: the id is processed again.
    assert_eq!(c.send(&signup("e1", T0 + 7 * DAY + HOUR)), "row");
    assert_eq!(c.send(&signup("e1", T0 + 7 * DAY + 2 * HOUR)), "dropped");
}

#[test]
fn expiry_is_by_the_partitions_stream_time() {
    let w = IdWindows {
        event_id: Duration::from_secs(86_400),
        order: Duration::from_secs(86_400),
    };
    let ctx = ctx(w);
    let mut s = IdStep::new(w.event_id);
    assert!(s.check_event_id("adv", "e1", T0));
    // A late copy (received earlier than stream time) is still within the window.
    assert!(s.check_event_id("adv", "e2", T0 + 2 * HOUR));
    assert!(!s.check_event_id("adv", "e1", T0 - DAY));
    // Once another record moves stream time past the window, the id is forgotten even for a
    // copy stamped earlier.
    assert!(s.check_event_id("adv", "e3", T0 + DAY + 2 * HOUR));
    assert_eq!(s.stream_ms(), Some(T0 + DAY + 2 * HOUR));
    assert!(s.check_event_id("adv", "e1", T0 + HOUR));
    drop(ctx);
}

/// Case 1 and its siblings: one event id sent in every shape its partition keys can take
/// (with and without customer, with and without order, as another action) counts once.
#[test]
fn an_event_id_counts_once_whatever_customer_order_or_action_its_copies_carry() {
    let shapes: Vec<EventRecord> = vec![
        signup("e1", T0),
        customer(signup("e1", T0), Some("c1")),
        customer(signup("e1", T0), Some("c2")),
        purchase("e1", "A-1", T0),
        customer(purchase("e1", "A-1", T0), Some("c1")),
        customer(purchase("e1", "A-2", T0), Some("c3")),
        EventRecord {
            action: Action::AddToCart,
            ..customer(signup("e1", T0), Some("c4"))
        },
    ];
    // Every shape first, then every other shape as a later copy.
    for first in 0..shapes.len() {
        let mut c = Chain::new(windows(7, 90));
        assert_eq!(c.send(&shapes[first]), "row", "first copy {first}");
        for (i, copy) in shapes.iter().enumerate() {
            let copy = EventRecord {
                received_at: copy.received_at + chrono::Duration::minutes(i as i64 + 1),
                ..copy.clone()
            };
            assert_eq!(c.send(&copy), "dropped", "copy {i} after {first}");
        }
        assert_eq!(c.rows.len(), 1);
        assert!(c.dead.is_empty());
    }
}

/// Case 2 and its siblings: one order bought under different event ids, with and without
/// customers, counts once; every later purchase of it is a dead letter.
#[test]
fn an_order_counts_once_whatever_customer_its_purchases_carry() {
    let shapes = [None, Some("c1"), Some("c2")];
    for first in shapes {
        let mut c = Chain::new(windows(7, 90));
        assert_eq!(c.send(&customer(purchase("p0", "A-1", T0), first)), "row");
        for (i, who) in shapes.iter().enumerate() {
            let e = customer(purchase(&format!("p{}", i + 1), "A-1", T0 + 1), *who);
            assert_eq!(c.send(&e), "duplicate_order", "{first:?} then {who:?}");
        }
        assert_eq!(c.rows.len(), 1);
        let letter = &c.dead[0];
        assert_eq!(letter.source_topic, "events");
        let payload: EventRecord = serde_json::from_str(&letter.payload).unwrap();
        assert_eq!(
            payload.event_id, "p1",
            "the dead letter holds the event as accepted"
        );
        assert_eq!(letter.source_key, payload.key());
        // Another order of the same customers is counted.
        assert_eq!(
            c.send(&customer(purchase("p9", "A-2", T0 + 2), first)),
            "row"
        );
    }
}

#[test]
fn a_second_purchase_of_an_order_is_a_duplicate_within_its_window_and_counted_after() {
    let mut c = Chain::new(windows(1, 30));
    assert_eq!(c.send(&purchase("p1", "o1", T0)), "row");
    assert_eq!(
        c.send(&purchase("p2", "o1", T0 + 29 * DAY)),
        "duplicate_order"
    );
    assert_eq!(c.send(&purchase("p3", "o1", T0 + 30 * DAY + HOUR)), "row");
    assert_eq!(
        c.send(&purchase("p4", "o1", T0 + 30 * DAY + 2 * HOUR)),
        "duplicate_order"
    );
    // A signup naming the order is no purchase of it.
    let mut s = signup("s1", T0 + 30 * DAY + 3 * HOUR);
    s.order_id = Some("o1".into());
    assert_eq!(c.send(&s), "row");
    let orders: usize = c.orders.states.iter().map(OrderStep::orders).sum();
    assert_eq!(orders, 1);
}

/// A step killed after handing records on but before its checkpoint sends them again when it
/// restarts; the next step drops the copies, whichever step restarts.
#[test]
fn a_step_restarted_from_its_checkpoint_hands_nothing_on_twice() {
    for crashed in ["ids", "orders", "customers", "all"] {
        let mut c = Chain::new(windows(7, 90));
        let mut n = 0;
        let mut batch = |c: &mut Chain, count: usize| {
            for _ in 0..count {
                let e = if n % 3 == 0 {
                    customer(
                        purchase(&format!("e{n}"), &format!("o{n}"), T0 + n),
                        Some("c1"),
                    )
                } else {
                    customer(
                        signup(&format!("e{n}"), T0 + n),
                        Some(["c1", "c2"][n as usize % 2]),
                    )
                };
                c.accept(&e);
                n += 1;
            }
            c.run();
        };
        batch(&mut c, 30);
        c.checkpoint();
        batch(&mut c, 30);
        match crashed {
            "ids" => c.ids.restart(&c.ctx),
            "orders" => c.orders.restart(&c.ctx),
            "customers" => {
                // Its rows of the lost batch were never written.
                c.customers.restart(&c.ctx);
                c.rows.truncate(30);
            }
            _ => {
                c.ids.restart(&c.ctx);
                c.orders.restart(&c.ctx);
                c.customers.restart(&c.ctx);
                c.rows.truncate(30);
            }
        }
        c.run();
        batch(&mut c, 30);
        let mut ids: Vec<&str> = c.rows.iter().map(|r| r.event.event_id.as_str()).collect();
        ids.sort();
        let before = ids.len();
        ids.dedup();
        assert_eq!(
            (before, ids.len()),
            (90, 90),
            "after a restart of {crashed}"
        );
        assert!(
            c.dead.is_empty(),
            "{crashed}: {:?}",
            c.dead.first().map(|d| &d.reason)
        );
    }
}

#[test]
fn restore_after_a_checkpoint_rebuilds_the_same_verdicts() {
    let mut live = Chain::new(windows(2, 5));
    // Three days of traffic: an event every 20 minutes, a purchase every hour, checkpoints
    // every 5 records.
    let mut n = 0i64;
    let mut at = T0;
    while at < T0 + 3 * DAY {
        let e = if n % 3 == 0 {
            purchase(&format!("e{n}"), &format!("o{}", n / 6), at)
        } else {
            signup(&format!("e{n}"), at)
        };
        live.send(&e);
        if n % 5 == 4 {
            live.checkpoint();
        }
        n += 1;
        at += 20 * 60_000;
    }
    live.checkpoint();
    let mut restored = Chain::new(windows(2, 5));
    for (to, from) in [
        (&mut restored.ids.stored, &live.ids.stored),
        (&mut restored.orders.stored, &live.orders.stored),
        (&mut restored.customers.stored, &live.customers.stored),
    ] {
        *to = from.clone();
    }
    restored.events.parts = live.events.parts.clone();
    restored.by_order.parts = live.by_order.parts.clone();
    restored.by_customer.parts = live.by_customer.parts.clone();
    restored.ids.restart(&restored.ctx);
    restored.orders.restart(&restored.ctx);
    restored.customers.restart(&restored.ctx);
    let count = |c: &Chain| {
        (
            c.ids.states.iter().map(IdStep::event_ids).sum::<usize>(),
            c.orders.states.iter().map(OrderStep::orders).sum::<usize>(),
            c.ids
                .states
                .iter()
                .map(IdStep::stream_ms)
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(count(&restored), count(&live));
    // Copies of every event and order, sent as stream time moves on: the same verdicts.
    for (step, later) in [0, DAY, 3 * DAY].into_iter().enumerate() {
        let t = at + later;
        for k in (0..n).step_by(2) {
            let copies = [
                signup(&format!("e{k}"), t),
                purchase(&format!("r{step}-{k}"), &format!("o{}", k / 6), t),
            ];
            for e in &copies {
                assert_eq!(
                    live.send(e),
                    restored.send(e),
                    "{} / {:?}",
                    e.event_id,
                    e.order_id
                );
            }
        }
    }
}

#[test]
fn old_format_entries_restore_and_are_rewritten() {
    let ctx = ctx(windows(1, 2));
    let entries = vec![
        (b"e\0adv\0e1".to_vec(), Vec::new()),
        (b"o\0adv\0o1".to_vec(), Vec::new()),
        (b"f\0adv\0c1".to_vec(), b"{}".to_vec()),
    ];
    let mut s = IdStep::restore(0, entries, &ctx).unwrap();
    assert!(!s.check_event_id("adv", "e1", T0));
    let changes = s.take_changes();
    let mut deleted = changes.deletes.clone();
    deleted.sort();
    assert_eq!(
        deleted,
        vec![
            b"e\0adv\0e1".to_vec(),
            b"f\0adv\0c1".to_vec(),
            b"o\0adv\0o1".to_vec()
        ]
    );
    // The rewritten checkpoint keeps the verdict, and the window now runs from T0.
    let mut again = IdStep::restore(0, changes.puts, &ctx).unwrap();
    assert!(!again.check_event_id("adv", "e1", T0 + HOUR));
    assert!(again.check_event_id("adv", "e1", T0 + DAY + HOUR));
}

#[test]
fn the_checkpoint_stays_bounded_as_ids_keep_arriving() {
    let mut c = Chain::new(windows(1, 2));
    // 40 simulated days, an event every 5 minutes (a purchase every 15), checkpoints every
    // 4 records.
    let mut max_entries = 0;
    for (n, minute) in (0..40 * 24 * 60).step_by(5).enumerate() {
        let at = T0 + minute * 60_000;
        let e = if n.is_multiple_of(3) {
            purchase(&format!("e{n}"), &format!("o{n}"), at)
        } else {
            signup(&format!("e{n}"), at)
        };
        assert_eq!(c.send(&e), "row");
        if n % 4 == 3 {
            c.checkpoint();
            if minute > 5 * 24 * 60 {
                let entries = |s: &[Stored]| s.iter().map(|s| s.entries.len()).sum::<usize>();
                max_entries = max_entries.max(entries(&c.ids.stored) + entries(&c.orders.stored));
            }
        }
    }
    let ids: usize = c.ids.states.iter().map(IdStep::event_ids).sum();
    let orders: usize = c.orders.states.iter().map(OrderStep::orders).sum();
    // Ids: a day (and an hour) of events, two days of orders. Entries per partition: one per
    // hour of each window, the current hours' parts (3 checkpoints an hour), the stream time
    // and the order step's replay guard.
    assert!(ids <= 25 * 12, "{ids}");
    assert!(orders <= 49 * 4, "{orders}");
    let per_part = 25 + 49 + 2 * 4 + 2 + PARTS as usize;
    assert!(
        max_entries <= PARTS as usize * per_part,
        "{max_entries} entries"
    );
}

#[test]
fn windows_shorter_than_an_hour_are_refused() {
    assert!(IdWindows::default().validate().is_ok());
    let err = IdWindows {
        event_id: Duration::from_secs(60),
        order: Duration::from_secs(0),
    }
    .validate()
    .unwrap_err();
    assert!(
        err.contains("event id window") && err.contains("order window"),
        "{err}"
    );
}
