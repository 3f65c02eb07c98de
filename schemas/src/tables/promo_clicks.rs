//! The `promo_clicks` table: the clicks that came through a promo variation's link
//! (`crate::promo`).

use super::Get::{Bool, OptStr, Str, Time, U32, U64};
use super::{Column, Table};
use crate::promo::PromoClickRow;

/// Promo clicks, keyed by advertiser and click id, partitioned by click time.
pub static PROMO_CLICKS: Table<PromoClickRow> = Table {
    name: "promo_clicks",
    time: "at",
    key: &["advertiser_id", "click_id"],
    columns: &[
        Column::new("click_id", Str(|r| r.click_id.as_str())),
        Column::new("advertiser_id", Str(|r| r.advertiser_id.as_str())),
        Column::new("offer_id", Str(|r| r.offer_id.as_str())),
        Column::new("variation_id", Str(|r| r.variation_id.as_str())),
        Column::new("link_id", Str(|r| r.link_id.as_str())),
        Column::new("at", Time(|r| r.at)),
        Column::new("visitor_key", Str(|r| r.visitor_key.as_str())),
        Column::new("is_bot", Bool(|r| r.is_bot)),
        Column::new("bot_reason", OptStr(|r| r.bot_reason.as_deref())),
        Column::new("src_partition", U32(|r| r.source.partition)),
        Column::new("src_offset", U64(|r| r.source.offset)),
    ],
};
