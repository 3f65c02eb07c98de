//! How the commission step keys its orders in the checkpoint: by receipt time first, and
//! entries of the older hash-only layout rewritten.

use super::*;
use crate::pipeline::StateChanges;

fn order_puts(changes: &StateChanges) -> Vec<(Vec<u8>, Vec<u8>)> {
    changes
        .puts
        .iter()
        .filter(|(k, _)| k.first() == Some(&b'o'))
        .cloned()
        .collect()
}

#[test]
fn orders_are_keyed_in_the_order_they_arrived() {
    let ctx = ctx();
    // A window long enough to keep an order received before 1970.
    let mut s = CommissionStep::new(std::time::Duration::MAX);
    let mut out = Output::default();
    // Hashes of the order ids decide nothing: keys follow receipt times, also before 1970.
    for (i, (order, at)) in [("zz", T0 + 2), ("aa", T0 + 1), ("mm", -5), ("bb", T0 + 3)]
        .into_iter()
        .enumerate()
    {
        let e = order_event(purchase(&format!("p{i}"), order, 1_000, at), None, i as u64);
        s.process(&msg(&e, i as u64), &ctx, &mut out);
    }
    let mut puts = order_puts(&s.take_changes());
    assert!(puts.iter().all(|(k, _)| k.len() == 25));
    puts.sort();
    let firsts: Vec<i64> = puts
        .iter()
        .map(|(_, v)| {
            serde_json::from_slice::<serde_json::Value>(v).unwrap()["first_ms"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(firsts, [-5, T0 + 1, T0 + 2, T0 + 3]);
}

#[test]
fn an_order_checkpointed_under_its_hash_alone_is_rewritten_and_still_refunded() {
    let ctx = ctx();
    let mut s = CommissionStep::new(std::time::Duration::from_secs(90 * 86_400));
    let mut out = Output::default();
    let b = booking("c1", 1_000, T0, None);
    let p = order_event(purchase("p1", "A", 10_000, T0), Some(b), 0);
    s.process(&msg(&p, 0), &ctx, &mut out);
    let (key, value) = order_puts(&s.take_changes()).remove(0);
    // The older layout: `o` + the 16-byte hash.
    let mut legacy = vec![b'o'];
    legacy.extend_from_slice(&key[9..]);
    let mut s = CommissionStep::restore(0, vec![(legacy.clone(), value.clone())], &ctx).unwrap();
    let changes = s.take_changes();
    assert_eq!(order_puts(&changes), [(key.clone(), value)]);
    assert_eq!(changes.deletes, [legacy]);

    let r = order_event(refund("r1", "A", Some(5_000), T0 + 1), None, 1);
    s.process(&msg(&r, 1), &ctx, &mut out);
    let reversed: Vec<i64> = out
        .forward
        .iter()
        .filter_map(|f| serde_json::from_slice::<LedgerRecord>(&f.payload).ok())
        .filter_map(|r| match r.op {
            LedgerOp::Reverse { amount_minor, .. } => Some(amount_minor),
            _ => None,
        })
        .collect();
    assert_eq!(reversed, [500]);
    // Forgotten a window later: the delete names the new key.
    let late = order_event(purchase("p2", "B", 1, T0 + 91 * DAY), None, 2);
    s.process(&msg(&late, 2), &ctx, &mut out);
    assert!(s.take_changes().deletes.contains(&key));
}
