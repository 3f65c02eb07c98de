//! The `ledger` table: one row per movement of commission money (`crate::ledger`).

use super::Get::{I64, OptStr, OptTime, Str, Time, U32, U64};
use super::{Column, Table};
use crate::ledger::LedgerRow;

/// Ledger movements, keyed by advertiser and entry id, partitioned by booking time.
pub static LEDGER: Table<LedgerRow> = Table {
    name: "ledger",
    time: "at",
    key: &["advertiser_id", "entry_id"],
    columns: &[
        Column::new("entry_id", Str(|r| r.entry_id.as_str())),
        Column::new("advertiser_id", Str(|r| r.advertiser_id.as_str())),
        Column::new("influencer_id", Str(|r| r.influencer_id.as_str())),
        Column::new("campaign_id", Str(|r| r.campaign_id.as_str())),
        Column::new("item_id", Str(|r| r.item_id.as_str())),
        Column::new("commission_id", Str(|r| r.commission_id.as_str())),
        Column::new("kind", Str(|r| r.kind.as_str())),
        Column::new("status", Str(|r| r.status.as_str())),
        Column::new("amount_minor", I64(|r| r.amount_minor)),
        Column::new("currency", Str(|r| r.currency.as_str())),
        Column::new("at", Time(|r| r.at)),
        Column::new("available_at", OptTime(|r| r.available_at)),
        Column::new("payout_id", OptStr(|r| r.payout_id.as_deref())),
        Column::new("event_id", OptStr(|r| r.event_id.as_deref())),
        Column::new("order_id", OptStr(|r| r.order_id.as_deref())),
        Column::new("click_id", OptStr(|r| r.click_id.as_deref())),
        Column::new("action", OptStr(|r| r.action.as_deref())),
        Column::new("rule", OptStr(|r| r.rule.as_deref())),
        Column::new("note", OptStr(|r| r.note.as_deref())),
        Column::new("src_partition", U32(|r| r.source.partition)),
        Column::new("src_offset", U64(|r| r.source.offset)),
    ],
};
