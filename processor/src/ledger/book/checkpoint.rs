//! The ledger step's checkpoint: restoring a partition's accounts from its entries, and the
//! entries changed since the last batch.

use super::*;
use crate::outbound::messages::payouts_paid;
use clicktrail_schemas::Topic;
use clicktrail_schemas::outbound::StoredAt;

impl PartitionState for LedgerStep {
    fn restore(
        _partition: u32,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        ctx: &StepCtx,
    ) -> Result<Self, String> {
        let mut s = LedgerStep::new(ctx.windows.order);
        for (k, v) in entries {
            if k == STREAM_TIME {
                let ms = <[u8; 8]>::try_from(v.as_slice()).map_err(|_| "bad stream time")?;
                s.stream_ms = Some(i64::from_be_bytes(ms));
                continue;
            }
            if s.guard.restore_entry(&k, &v)? {
                continue;
            }
            let (kind, inf, id) = parse_key(&k).ok_or("unknown ledger step entry")?;
            let acc = s.accounts.entry(inf).or_default();
            match kind {
                ITEM => {
                    let item = serde_json::from_slice(&v).map_err(|e| e.to_string())?;
                    acc.items.insert(id, item);
                }
                PAYOUT => {
                    let p = serde_json::from_slice(&v).map_err(|e| e.to_string())?;
                    acc.payouts.insert(id, p);
                }
                _ => return Err("unknown ledger step entry".into()),
            }
        }
        s.swept_ms = s.stream_ms.unwrap_or_default();
        Ok(s)
    }

    fn process(&mut self, msg: &Message, ctx: &StepCtx, out: &mut Output) {
        let Some(mut rec) = out.decode::<LedgerRecord>(msg) else {
            return;
        };
        if let Some(from) = rec.from
            && !self.guard.admit(from)
        {
            return;
        }
        self.advance(rec.op.at());
        let source = Source {
            partition: msg.partition,
            offset: msg.offset,
        };
        let booked = match &rec.op {
            LedgerOp::Book { booking, .. } => self
                .accounts
                .get(&rec.influencer_id)
                .is_some_and(|a| a.items.contains_key(&booking.commission_id)),
            _ => false,
        };
        // What the next announcement waits for: a new booking's hold, or an approval's.
        match &rec.op {
            LedgerOp::Book { booking, .. } => {
                self.next_announce = self.next_announce.map(|t| t.min(booking.available_at));
            }
            LedgerOp::Review { .. } => self.next_announce = None,
            _ => {}
        }
        // A copy of a booking (its refunds included) changes nothing.
        let early = if booked {
            Vec::new()
        } else {
            early_reversals(&mut rec)
        };
        let before = out.rows.ledger.len();
        self.apply(rec, source, &mut out.rows.ledger);
        for r in early {
            self.apply(r, source, &mut out.rows.ledger);
        }
        let after = StoredAt {
            topic: Topic::Ledger,
            partition: msg.partition,
            offset: msg.offset,
        };
        for paid in payouts_paid(&out.rows.ledger[before..], &ctx.catalog, after) {
            let at = paid.created_at.timestamp_millis();
            out.forward(&paid, msg.partition, at);
        }
    }

    fn tick(&mut self, now: DateTime<Utc>, ctx: &StepCtx, out: &mut Output) -> bool {
        self.announce(now, &ctx.catalog, out)
    }

    fn take_changes(&mut self) -> StateChanges {
        let mut changes = self.guard.take_changes();
        for (kind, inf, id) in std::mem::take(&mut self.dirty) {
            let acc = self.accounts.get(&inf);
            let value = match kind {
                ITEM => acc
                    .and_then(|a| a.items.get(&id))
                    .map(|i| serde_json::to_vec(i).expect("items serialize")),
                _ => acc
                    .and_then(|a| a.payouts.get(&id))
                    .map(|p| serde_json::to_vec(p).expect("payouts serialize")),
            };
            if let Some(v) = value {
                changes.puts.push((entry_key(kind, &inf, &id), v));
            }
        }
        for (kind, inf, id) in std::mem::take(&mut self.deleted) {
            changes.deletes.push(entry_key(kind, &inf, &id));
        }
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
        self.accounts
            .values()
            .map(|a| a.items.len() * 320 + a.payouts.len() * 160)
            .sum::<usize>()
            + self.guard.memory_bytes()
    }
}

/// The checkpoint key of an item or payout: kind, NUL, influencer, NUL, id.
fn entry_key(kind: u8, influencer: &str, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + influencer.len() + id.len());
    k.push(kind);
    k.push(0);
    k.extend_from_slice(influencer.as_bytes());
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

fn parse_key(k: &[u8]) -> Option<(u8, String, String)> {
    let (&kind, rest) = k.split_first()?;
    let rest = rest.strip_prefix(&[0])?;
    let sep = rest.iter().position(|b| *b == 0)?;
    let inf = std::str::from_utf8(&rest[..sep]).ok()?;
    let id = std::str::from_utf8(&rest[sep + 1..]).ok()?;
    Some((kind, inf.to_string(), id.to_string()))
}
