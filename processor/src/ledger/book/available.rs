//! Announcing commissions whose hold ended: `commission.available`, once per commission, at
//! the wall-clock moment its `available_at` passes (about every second, see
//! [`crate::pipeline::TICK`]), for advertisers with an endpoint subscribed to it.
//!
//! Availability is a moment, not a record on any topic, so the step announces it on its tick;
//! the announcement is marked on the item and checkpointed with the batch, and a message sent
//! again after a crash carries the same idempotency id.

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
        let mut touched = Vec::new();
        for (inf, Account { items, .. }) in &mut self.accounts {
            for (id, item) in items.iter_mut() {
                let due = item.status == LedgerStatus::Pending
                    && !item.announced
                    && item.net > 0
                    && item.available_at.is_some_and(|a| a <= now);
                if !due {
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
        for (inf, id) in &touched {
            self.touch(super::ITEM, inf, id);
        }
        !touched.is_empty()
    }
}
