//! The `impressions` table: one row per counted newsletter send of a variation
//! (`crate::promo`).

use super::Get::{Str, Time, U32, U64};
use super::{Column, Table};
use crate::promo::ImpressionRow;

/// Counted sends, keyed by advertiser, variation and send id, partitioned by send time.
pub static IMPRESSIONS: Table<ImpressionRow> = Table {
    name: "impressions",
    time: "sent_at",
    key: &["advertiser_id", "variation_id", "newsletter_send_id"],
    columns: &[
        Column::new(
            "advertiser_id",
            Str(|r| r.impression.advertiser_id.as_str()),
        ),
        Column::new("offer_id", Str(|r| r.impression.offer_id.as_str())),
        Column::new("variation_id", Str(|r| r.impression.variation_id.as_str())),
        Column::new(
            "newsletter_send_id",
            Str(|r| r.impression.newsletter_send_id.as_str()),
        ),
        Column::new("recipients", U64(|r| r.impression.recipients)),
        Column::new("sent_at", Time(|r| r.impression.sent_at)),
        Column::new("received_at", Time(|r| r.impression.received_at)),
        Column::new("src_partition", U32(|r| r.source.partition)),
        Column::new("src_offset", U64(|r| r.source.offset)),
    ],
};
