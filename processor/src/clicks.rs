//! The clicks step: decode, then unique-click dedup per partition.

use crate::dedup::ClickDedup;
use crate::pipeline::{Output, PartitionState, StateChanges, StepCtx};
use clicktrail_bus::Message;
use clicktrail_schemas::promo::PromoClickRow;
use clicktrail_schemas::rows::{ClickRow, Source};
use clicktrail_schemas::wire::ClickRecord;

const BLOOM_PREFIX: &[u8] = b"bloom/";

/// One clicks partition's state: its dedup filters.
pub struct ClickState {
    dedup: ClickDedup,
}

impl PartitionState for ClickState {
    fn restore(
        partition: u32,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        ctx: &StepCtx,
    ) -> Result<Self, String> {
        let mut dedup = ClickDedup::new(partition, ctx.dedup);
        for (k, v) in entries {
            if let Some(bucket) = k.strip_prefix(BLOOM_PREFIX) {
                let bucket = i64::from_be_bytes(bucket.try_into().map_err(|_| "bad bloom key")?);
                dedup.restore(bucket, v)?;
            }
        }
        Ok(ClickState { dedup })
    }

    fn process(&mut self, msg: &Message, _ctx: &StepCtx, out: &mut Output) {
        let Some(click) = out.decode::<ClickRecord>(msg) else {
            return;
        };
        // Bots never enter the filters: they are counted apart and must not make a human's
        // first click look like a repeat.
        let is_unique = !click.is_bot
            && self.dedup.check_and_insert(
                &click.visitor_key,
                &click.link_id,
                click.at.timestamp_millis(),
            );
        let source = Source {
            partition: msg.partition,
            offset: msg.offset,
        };
        if let Some(promo) = PromoClickRow::of(&click, source) {
            out.rows.promo_clicks.push(promo);
        }
        out.rows.clicks.push(ClickRow {
            click,
            is_unique,
            source,
        });
    }

    fn take_changes(&mut self) -> StateChanges {
        let key = |b: i64| [BLOOM_PREFIX, &b.to_be_bytes()].concat();
        let (changed, evicted) = self.dedup.take_changes();
        StateChanges {
            puts: changed.into_iter().map(|(b, v)| (key(b), v)).collect(),
            deletes: evicted.into_iter().map(key).collect(),
        }
    }

    fn memory_bytes(&self) -> usize {
        self.dedup.memory_bytes()
    }
}
