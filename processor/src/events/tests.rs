use super::*;
use clicktrail_schemas::Topic;
use clicktrail_schemas::catalog::Catalog;
use clicktrail_schemas::token::ClickKeys;
use std::collections::BTreeMap;
use std::sync::Arc;

const T0: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

fn ctx(windows: IdWindows) -> StepCtx {
    StepCtx {
        catalog: Arc::new(Catalog::default()),
        keys: ClickKeys::new(1, b"events-test-key".to_vec()),
        dedup: Default::default(),
        windows,
    }
}

fn windows(event_days: u64, order_days: u64) -> IdWindows {
    IdWindows {
        event_id: Duration::from_secs(event_days * 86_400),
        order: Duration::from_secs(order_days * 86_400),
    }
}

fn signup(event_id: &str, at_ms: i64) -> EventRecord {
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
    }
}

fn purchase(event_id: &str, order: &str, at_ms: i64) -> EventRecord {
    EventRecord {
        action: Action::Purchase,
        value_minor: Some(1000),
        order_id: Some(order.into()),
        ..signup(event_id, at_ms)
    }
}

/// What became of one record: `row`, `dropped`, or its dead-letter reason.
fn feed(s: &mut EventState, ctx: &StepCtx, e: &EventRecord) -> String {
    let msg = Message {
        topic: Topic::Events,
        partition: 0,
        offset: 0,
        key: e.key().into_bytes(),
        payload: serde_json::to_vec(e).unwrap(),
        timestamp_ms: 0,
    };
    let mut out = Output::default();
    s.process(&msg, ctx, &mut out);
    match (out.rows.events.len(), out.dead.first()) {
        (1, None) => "row".into(),
        (0, Some(d)) => d.reason.clone(),
        (0, None) => "dropped".into(),
        other => panic!("unexpected output {other:?}"),
    }
}

/// The partition's checkpoint as the store keeps it: puts, then deletes.
#[derive(Default, Clone)]
struct Stored(BTreeMap<Vec<u8>, Vec<u8>>);

impl Stored {
    fn apply(&mut self, s: &mut EventState) {
        let changes = s.take_changes();
        for (k, v) in changes.puts {
            self.0.insert(k, v);
        }
        for k in changes.deletes {
            self.0.remove(&k);
        }
    }

    fn restore(&self, ctx: &StepCtx) -> EventState {
        let entries = self.0.clone().into_iter().collect();
        EventState::restore(0, entries, ctx).unwrap()
    }
}

#[test]
fn a_duplicate_within_the_window_is_dropped_and_processed_again_after_it() {
    let ctx = ctx(windows(7, 90));
    let mut s = EventState::new(ctx.windows);
    assert_eq!(feed(&mut s, &ctx, &signup("e1", T0)), "row");
    assert_eq!(feed(&mut s, &ctx, &signup("e1", T0 + HOUR)), "dropped");
    assert_eq!(
        feed(&mut s, &ctx, &signup("e1", T0 + 7 * DAY - 1)),
        "dropped"
    );
    assert_eq!(feed(&mut s, &ctx, &signup("e2", T0 + 7 * DAY)), "row");
    // Past the window by record time: the id is processed again.
    assert_eq!(
        feed(&mut s, &ctx, &signup("e1", T0 + 7 * DAY + HOUR)),
        "row"
    );
    assert_eq!(
        feed(&mut s, &ctx, &signup("e1", T0 + 7 * DAY + 2 * HOUR)),
        "dropped"
    );
}

#[test]
fn expiry_is_by_the_partitions_stream_time() {
    let ctx = ctx(windows(1, 90));
    let mut s = EventState::new(ctx.windows);
    assert_eq!(feed(&mut s, &ctx, &signup("e1", T0)), "row");
    // A late copy (received earlier than stream time) is still within the window.
    assert_eq!(feed(&mut s, &ctx, &signup("e2", T0 + 2 * HOUR)), "row");
    assert_eq!(feed(&mut s, &ctx, &signup("e1", T0 - DAY)), "dropped");
    // Once another record moves stream time past the window, the id is forgotten even for a
    // copy stamped earlier.
    assert_eq!(
        feed(&mut s, &ctx, &signup("e3", T0 + DAY + 2 * HOUR)),
        "row"
    );
    assert_eq!(s.stream_ms(), Some(T0 + DAY + 2 * HOUR));
    assert_eq!(feed(&mut s, &ctx, &signup("e1", T0 + HOUR)), "row");
}

#[test]
fn a_second_purchase_of_an_order_is_a_duplicate_within_its_window_and_counted_after() {
    let ctx = ctx(windows(1, 30));
    let mut s = EventState::new(ctx.windows);
    assert_eq!(feed(&mut s, &ctx, &purchase("p1", "o1", T0)), "row");
    assert_eq!(
        feed(&mut s, &ctx, &purchase("p2", "o1", T0 + 29 * DAY)),
        "duplicate_order"
    );
    assert_eq!(
        feed(&mut s, &ctx, &purchase("p3", "o1", T0 + 30 * DAY + HOUR)),
        "row"
    );
    assert_eq!(
        feed(
            &mut s,
            &ctx,
            &purchase("p4", "o1", T0 + 30 * DAY + 2 * HOUR)
        ),
        "duplicate_order"
    );
    assert_eq!(s.orders(), 1);
}

#[test]
fn restore_after_a_checkpoint_rebuilds_the_same_verdicts() {
    let ctx = ctx(windows(2, 5));
    let mut live = EventState::new(ctx.windows);
    let mut stored = Stored::default();
    // Three days of traffic: an event every 20 minutes, a purchase every hour, checkpoints
    // every 5 records.
    let mut n = 0u64;
    let mut at = T0;
    while at < T0 + 3 * DAY {
        let e = if n.is_multiple_of(3) {
            purchase(&format!("e{n}"), &format!("o{}", n / 6), at)
        } else {
            signup(&format!("e{n}"), at)
        };
        feed(&mut live, &ctx, &e);
        if n % 5 == 4 {
            stored.apply(&mut live);
        }
        n += 1;
        at += 20 * 60_000;
    }
    stored.apply(&mut live);
    let mut restored = stored.restore(&ctx);
    assert_eq!(restored.stream_ms(), live.stream_ms());
    assert_eq!(restored.event_ids(), live.event_ids());
    assert_eq!(restored.orders(), live.orders());
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
                    feed(&mut live, &ctx, e),
                    feed(&mut restored, &ctx, e),
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
    let touch = FirstTouch {
        influencer_id: "inf".into(),
        campaign_id: "cmp".into(),
        link_id: None,
        coupon_id: None,
        by: clicktrail_schemas::attribution::TouchSource::RefCode,
        at: chrono::DateTime::from_timestamp_millis(T0).unwrap(),
    };
    let mut stored = Stored::default();
    stored.0.insert(b"e\0adv\0e1".to_vec(), Vec::new());
    stored.0.insert(b"o\0adv\0o1".to_vec(), Vec::new());
    stored
        .0
        .insert(b"f\0adv\0c1".to_vec(), serde_json::to_vec(&touch).unwrap());
    let mut s = stored.restore(&ctx);
    assert_eq!(feed(&mut s, &ctx, &signup("e1", T0)), "dropped");
    assert_eq!(
        feed(&mut s, &ctx, &purchase("p1", "o1", T0)),
        "duplicate_order"
    );
    stored.apply(&mut s);
    assert!(!stored.0.contains_key(b"e\0adv\0e1".as_slice()));
    assert!(!stored.0.contains_key(b"o\0adv\0o1".as_slice()));
    assert!(stored.0.contains_key(b"f\0adv\0c1".as_slice()));
    // The rewritten checkpoint keeps the verdicts, and the windows now run from T0.
    let mut again = stored.restore(&ctx);
    assert_eq!(feed(&mut again, &ctx, &signup("e1", T0 + HOUR)), "dropped");
    assert_eq!(
        feed(&mut again, &ctx, &signup("e1", T0 + DAY + HOUR)),
        "row"
    );
    assert_eq!(
        feed(&mut again, &ctx, &purchase("p2", "o1", T0 + DAY + HOUR)),
        "duplicate_order"
    );
    assert_eq!(
        feed(&mut again, &ctx, &purchase("p3", "o1", T0 + 2 * DAY + HOUR)),
        "row"
    );
}

#[test]
fn old_format_entries_count_from_the_stored_stream_time() {
    let ctx = ctx(windows(1, 1));
    let mut stored = Stored::default();
    stored.0.insert(b"e\0adv\0e1".to_vec(), Vec::new());
    stored.0.insert(b"t".to_vec(), T0.to_be_bytes().to_vec());
    let mut s = stored.restore(&ctx);
    assert_eq!(s.event_ids(), 1);
    assert_eq!(feed(&mut s, &ctx, &signup("e1", T0 + 23 * HOUR)), "dropped");
    assert_eq!(feed(&mut s, &ctx, &signup("e1", T0 + DAY + HOUR)), "row");
}

#[test]
fn the_checkpoint_stays_bounded_as_ids_keep_arriving() {
    let ctx = ctx(windows(1, 2));
    let mut s = EventState::new(ctx.windows);
    let mut stored = Stored::default();
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
        assert_eq!(feed(&mut s, &ctx, &e), "row");
        if n % 4 == 3 {
            stored.apply(&mut s);
            if minute > 5 * 24 * 60 {
                max_entries = max_entries.max(stored.0.len());
            }
        }
    }
    // Ids: a day (and an hour) of events, two days of orders. Entries: one per hour of each
    // window, the current hours' parts (3 checkpoints an hour) and the stream time.
    assert!(s.event_ids() <= 25 * 12, "{}", s.event_ids());
    assert!(s.orders() <= 49 * 4, "{}", s.orders());
    assert!(max_entries <= 25 + 49 + 2 * 4 + 1, "{max_entries} entries");
    let restored = stored.restore(&ctx);
    assert_eq!(restored.event_ids(), s.event_ids());
    assert_eq!(restored.orders(), s.orders());
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
