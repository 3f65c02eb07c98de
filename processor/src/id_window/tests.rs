use super::*;
use std::collections::BTreeMap;

const T0: i64 = 1_700_000_000_000;
const DAY: i64 = 24 * HOUR_MS;

fn id(n: u64) -> u128 {
    hash_id(b'e', "adv", &format!("evt-{n}"))
}

/// The checkpoint as the store keeps it: puts, then deletes.
#[derive(Default)]
struct Stored(BTreeMap<Vec<u8>, Vec<u8>>);

impl Stored {
    fn apply(&mut self, w: &mut IdWindow) {
        let StateChanges { puts, deletes } = w.take_changes();
        let put_keys: BTreeSet<&Vec<u8>> = puts.iter().map(|(k, _)| k).collect();
        assert!(
            deletes.iter().all(|k| !put_keys.contains(k)),
            "a key is both put and deleted"
        );
        for (k, v) in puts {
            self.0.insert(k, v);
        }
        for k in deletes {
            self.0.remove(&k);
        }
    }

    fn restore(&self, window: Duration, stream_ms: i64) -> IdWindow {
        let mut w = IdWindow::new(b'E', window);
        for (k, v) in &self.0 {
            let (hour, part) = w.parse_key(k).expect("an id window key");
            w.restore_part(hour, part, v).unwrap();
        }
        w.finish_restore(Some(stream_ms));
        w
    }
}

#[test]
fn an_id_is_remembered_for_its_window_and_forgotten_within_the_hour_after() {
    let window = Duration::from_secs(2 * 86_400);
    let mut w = IdWindow::new(b'E', window);
    w.advance(T0);
    assert!(w.check_and_insert(id(1)));
    assert!(!w.check_and_insert(id(1)), "a copy at once is a duplicate");
    w.advance(T0 + 2 * DAY - 1);
    assert!(w.contains(id(1)));
    assert!(!w.check_and_insert(id(1)), "a copy just inside the window");
    w.advance(T0 + 2 * DAY + HOUR_MS);
    assert!(
        !w.contains(id(1)),
        "forgotten within an hour after the window"
    );
    assert!(w.check_and_insert(id(1)), "counted again after the window");
    assert!(!w.check_and_insert(id(1)), "and remembered again from then");
    assert_eq!(w.len(), 1);
}

#[test]
fn expiry_follows_stream_time_not_the_wall_clock() {
    let mut w = IdWindow::new(b'E', Duration::from_secs(3_600));
    // Record times far in the past: nothing expires until stream time moves.
    w.advance(0);
    assert!(w.check_and_insert(id(1)));
    assert!(!w.check_and_insert(id(1)));
    w.advance(2 * HOUR_MS);
    assert!(w.check_and_insert(id(1)));
}

#[test]
fn restore_rebuilds_the_same_verdicts() {
    let window = Duration::from_secs(3 * 86_400);
    let mut live = IdWindow::new(b'E', window);
    let mut stored = Stored::default();
    let mut now = T0;
    // Five days of ids, 40 a day, a checkpoint every 7 ids: hours end, compact and expire.
    for n in 0..200u64 {
        now = T0 + n as i64 * DAY / 40;
        live.advance(now);
        assert!(live.check_and_insert(id(n)));
        if n % 7 == 6 {
            stored.apply(&mut live);
        }
    }
    stored.apply(&mut live);
    let mut restored = stored.restore(window, now);
    assert_eq!(restored.len(), live.len());
    // Probe old, borderline and recent ids, then let time pass and probe again.
    for t in [now, now + DAY, now + 3 * DAY] {
        live.advance(t);
        restored.advance(t);
        for n in (0..220u64).step_by(3) {
            assert_eq!(
                live.check_and_insert(id(n)),
                restored.check_and_insert(id(n)),
                "verdict for id {n} at {t}"
            );
        }
    }
}

#[test]
fn ended_hours_are_stored_as_whole_chunks_and_forgotten_hours_deleted() {
    let window = Duration::from_secs(86_400);
    let mut w = IdWindow::new(b'E', window);
    let mut stored = Stored::default();
    // One hour of ids in 50 checkpoints: 50 parts while the hour runs.
    let start = T0 / HOUR_MS * HOUR_MS;
    for n in 0..500u64 {
        w.advance(start + n as i64 * 7_000);
        w.check_and_insert(id(n));
        if n % 10 == 9 {
            stored.apply(&mut w);
        }
    }
    assert!(stored.0.len() > 1);
    // The next hour begins: the ended hour becomes one chunk.
    let next = start + HOUR_MS;
    w.advance(next + 1);
    stored.apply(&mut w);
    let hours: BTreeSet<u32> = stored.0.keys().map(|k| w.parse_key(k).unwrap().0).collect();
    assert_eq!(stored.0.len(), hours.len(), "one entry per ended hour");
    assert_eq!(
        stored.0.values().map(|v| v.len()).sum::<usize>(),
        500 * 12,
        "each id stored once"
    );
    // A day and an hour later every hour is forgotten, in memory and in the checkpoint.
    w.advance(next + DAY + HOUR_MS);
    stored.apply(&mut w);
    assert!(stored.0.is_empty(), "left: {:?}", stored.0.keys());
    assert_eq!(w.len(), 0);
}

#[test]
fn memory_and_checkpoint_stay_bounded_while_ids_keep_coming() {
    let window = Duration::from_secs(86_400);
    let mut w = IdWindow::new(b'E', window);
    let mut stored = Stored::default();
    let per_day = 2_400u64;
    let mut day5_bytes = 0;
    for n in 0..30 * per_day {
        w.advance(T0 + (n as i64 * DAY) / per_day as i64);
        assert!(w.check_and_insert(id(n)));
        if n % 20 == 19 {
            stored.apply(&mut w);
        }
        if n == 5 * per_day {
            day5_bytes = w.memory_bytes();
        }
        if n >= 5 * per_day {
            // A day and at most an hour of ids, and an entry per hour plus the current
            // hour's parts.
            assert!(
                w.len() <= (per_day + per_day / 24 + 1) as usize,
                "{}",
                w.len()
            );
            assert!(stored.0.len() <= 26 + 6, "{} entries", stored.0.len());
        }
    }
    // Memory after 30 days is about what it was after 5: forgotten ids are swept out.
    assert!(
        w.memory_bytes() <= 2 * day5_bytes,
        "{} > 2 x {day5_bytes}",
        w.memory_bytes()
    );
    assert!(w.table.len() <= w.len() * 4 / 3 + per_day as usize / 24);
}

#[test]
fn old_format_ids_count_as_first_seen_at_the_next_stream_time() {
    let mut w = IdWindow::new(b'E', Duration::from_secs(3_600));
    w.restore_legacy(hash_key(b"e\0adv\0evt-1"));
    w.finish_restore(None);
    w.advance(T0);
    assert!(
        !w.check_and_insert(id(1)),
        "same hash as the joined old key"
    );
    let puts = w.take_changes().puts;
    assert_eq!(puts.len(), 1, "migrated into the current hour");
    w.advance(T0 + 2 * HOUR_MS);
    assert!(w.check_and_insert(id(1)));
}

#[test]
fn memory_bytes_is_the_tables_allocation() {
    let mut w = IdWindow::new(b'E', Duration::from_secs(86_400));
    w.advance(T0);
    for n in 0..100_000 {
        w.check_and_insert(id(n));
    }
    let bytes = w.memory_bytes();
    // 16-byte slots plus a control byte each, 44% to 87.5% full; plus this hour's list.
    assert!(bytes >= 100_000 * (17 * 8 / 7 + 16), "{bytes}");
    assert!(bytes <= 100_000 * (39 + 32) + 4096, "{bytes}");
}
