//! The `deliveries` table: one row per webhook or postback delivery attempt
//! (`crate::outbound`), the admins' delivery log.

use super::Get::{Bool, OptI64, OptStr, OptTime, Str, Time, U32, U64};
use super::{Column, Table};
use crate::outbound::DeliveryRow;

/// Delivery attempts, keyed by advertiser, delivery and attempt, partitioned by attempt time.
pub static DELIVERIES: Table<DeliveryRow> = Table {
    name: "deliveries",
    time: "at",
    key: &["advertiser_id", "delivery_id", "attempt"],
    columns: &[
        Column::new("delivery_id", Str(|r| r.delivery_id.as_str())),
        Column::new("message_id", Str(|r| r.message_id.as_str())),
        Column::new("advertiser_id", Str(|r| r.advertiser_id.as_str())),
        Column::new("target_kind", Str(|r| r.target_kind.as_str())),
        Column::new("target_id", Str(|r| r.target_id.as_str())),
        Column::new("event", Str(|r| r.event.as_str())),
        Column::new("url", Str(|r| r.url.as_str())),
        Column::new("attempt", U32(|r| r.attempt)),
        Column::new("at", Time(|r| r.at)),
        Column::new("status", OptI64(|r| r.status)),
        Column::new("outcome", Str(|r| r.outcome.as_str())),
        Column::new("error", OptStr(|r| r.error.as_deref())),
        Column::new("response", OptStr(|r| r.response.as_deref())),
        Column::new("next_attempt_at", OptTime(|r| r.next_attempt_at)),
        Column::new("replay", Bool(|r| r.replay)),
        Column::new("body", Str(|r| r.body.as_str())),
        Column::new("src_partition", U32(|r| r.source.partition)),
        Column::new("src_offset", U64(|r| r.source.offset)),
    ],
};
