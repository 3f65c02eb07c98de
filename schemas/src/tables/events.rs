//! The `events` table: one row per accepted event, with its attribution and bus position.

use super::Get::{Bool, OptI64, OptStr, OptText, OptTime, Str, Text, Time, U32, U64};
use super::{Column, Table};
use crate::attribution::{TouchSource, TouchStatus, to_json};
use crate::rows::EventRow;

/// Attributed events, keyed by advertiser and event id, partitioned by occurrence time.
pub static EVENTS: Table<EventRow> = Table {
    name: "events",
    time: "occurred_at",
    key: &["advertiser_id", "event_id"],
    columns: &[
        Column::new("event_id", Str(|r| r.event.event_id.as_str())),
        Column::new("advertiser_id", Str(|r| r.event.advertiser_id.as_str())),
        Column::new("action", Str(|r| r.event.action.as_str())),
        Column::new("custom_name", OptStr(|r| r.event.custom_name.as_deref())),
        Column::new("occurred_at", Time(|r| r.event.occurred_at)),
        Column::new("received_at", Time(|r| r.event.received_at)),
        Column::new("value_minor", OptI64(|r| r.event.value_minor)),
        Column::new("currency", Str(|r| r.event.currency.as_str())),
        Column::new("order_id", OptStr(|r| r.event.order_id.as_deref())),
        Column::new("customer_id", OptStr(|r| r.event.customer_id.as_deref())),
        Column::new("properties", OptStr(|r| r.event.properties.as_deref())),
        Column::new("coupon_code", OptStr(|r| r.event.coupon_code.as_deref())),
        Column::new("ref_code", OptStr(|r| r.event.ref_code.as_deref())),
        Column::new("click_id", OptStr(|r| r.event.click_id.as_deref())),
        Column::new("landing_url", OptStr(|r| r.event.landing_url.as_deref())),
        Column::new("referrer", OptStr(|r| r.event.referrer.as_deref())),
        // Nullable: rows stored before the column existed read as null (server).
        Column::new("source", OptStr(|r| Some(r.event.source.as_str()))),
        Column::new("attributed", Bool(|r| r.attribution.attributed)),
        Column::new(
            "attributed_by",
            Str(|r| r.attribution.attributed_by.map_or("", TouchSource::as_str)),
        ),
        Column::new(
            "campaign_id",
            OptStr(|r| r.attribution.campaign_id.as_deref()),
        ),
        Column::new(
            "influencer_id",
            OptStr(|r| r.attribution.influencer_id.as_deref()),
        ),
        Column::new("link_id", OptStr(|r| r.attribution.link_id.as_deref())),
        Column::new("coupon_id", OptStr(|r| r.attribution.coupon_id.as_deref())),
        Column::new(
            "reason",
            OptStr(|r| r.attribution.reason.map(TouchStatus::as_str)),
        ),
        Column::new("candidates", Text(|r| to_json(&r.attribution.candidates))),
        Column::new(
            "credited_click_id",
            OptStr(|r| r.attribution.credited_click_id.as_deref()),
        ),
        Column::new("click_at", OptTime(|r| r.attribution.click_at)),
        Column::new("window_secs", OptI64(|r| r.attribution.window_secs)),
        Column::new(
            "conflict",
            OptText(|r| {
                let c = &r.attribution.conflicts;
                (!c.is_empty()).then(|| to_json(c))
            }),
        ),
        Column::new("src_partition", U32(|r| r.source.partition)),
        Column::new("src_offset", U64(|r| r.source.offset)),
    ],
};
