//! Announcing commissions whose hold ended: `commission.available`, once per commission, at
//! the wall-clock moment its `available_at` passes (about every second, see
//! [`crate::pipeline::TICK`]), for advertisers with an endpoint subscribed to it.
//!
//! Availability is a moment, not a record on any topic, so the step announces it on its tick;
//! the announcement is marked on the item and checkpointed with the batch, and a message sent
//! again after a crash carries the same idempotency id. The items are looked through only when
//! the earliest hold still to announce has ended (kept in memory; after a restore, and after a
//! review, it is not known and the first tick looks).

use super::{Account, LedgerStep};
use crate::outbound::messages::commission_available;
use crate::pipeline::Output;
use chrono::{DateTime, Utc};
use clicktrail_schemas::Catalog;
use clicktrail_schemas::ledger::LedgerStatus;

impl LedgerStep {
    /// Announces every pending commission past its hold at `now` that was not announced yet;
    /// whether any was.
    pub(super) fn announce(
        &mut self,
        now: DateTime<Utc>,
        catalog: &Catalog,
        out: &mut Output,
    ) -> bool {
        if self.next_announce.is_some_and(|t| now < t) {
            return false;
        }
        let mut touched = Vec::new();
        let mut next = DateTime::<Utc>::MAX_UTC;
        for (inf, Account { items, .. }) in &mut self.accounts {
            for (id, item) in items.iter_mut() {
                let waiting =
                    item.status == LedgerStatus::Pending && !item.announced && item.net > 0;
                let Some(at) = item.available_at.filter(|_| waiting) else {
                    continue;
                };
                if at > now {
                    next = next.min(at);
                    continue;
                }
                item.announced = true;
                touched.push((inf.clone(), id.clone()));
                if let Some(message) = commission_available(
                    &item.advertiser_id,
                    inf,
                    &item.commission_id,
                    &item.campaign_id,
                    item.net,
                    &item.currency,
                    item.available_at.unwrap_or(now),
                    catalog,
                ) {
                    let at = message.created_at.timestamp_millis();
                    out.forward(&message, 0, at);
                }
            }
        }
        self.next_announce = Some(next);
        for (inf, id) in &touched {
            self.touch(super::ITEM, inf, id);
        }
        !touched.is_empty()
    }
}
