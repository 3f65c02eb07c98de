//! The `clicks` table: one row per redirect, with its dedup verdict and bus position.

use super::Get::{Bool, OptStr, Str, Time, U32, U64};
use super::{Column, Table};
use crate::rows::ClickRow;

/// Raw clicks, keyed by advertiser and click token, partitioned by click time.
pub static CLICKS: Table<ClickRow> = Table {
    name: "clicks",
    time: "at",
    key: &["advertiser_id", "click_id"],
    columns: &[
        Column::new("click_id", Str(|r| r.click.click_id.as_str())),
        Column::new("at", Time(|r| r.click.at)),
        Column::new("link_id", Str(|r| r.click.link_id.as_str())),
        Column::new("code", Str(|r| r.click.code.as_str())),
        Column::new("sub_id", OptStr(|r| r.click.sub_id.as_deref())),
        Column::new("advertiser_id", Str(|r| r.click.advertiser_id.as_str())),
        Column::new("campaign_id", Str(|r| r.click.campaign_id.as_str())),
        Column::new("influencer_id", Str(|r| r.click.influencer_id.as_str())),
        Column::new("visitor_key", Str(|r| r.click.visitor_key.as_str())),
        Column::new("user_agent", Str(|r| r.click.user_agent.as_str())),
        Column::new("device_class", Str(|r| r.click.device_class.as_str())),
        Column::new("referrer", OptStr(|r| r.click.referrer.as_deref())),
        Column::new("ip_prefix", Str(|r| r.click.ip_prefix.as_str())),
        Column::new("country", OptStr(|r| r.click.country.as_deref())),
        Column::new("is_bot", Bool(|r| r.click.is_bot)),
        Column::new("bot_reason", OptStr(|r| r.click.bot_reason.as_deref())),
        Column::new("not_live", Bool(|r| r.click.not_live)),
        Column::new("is_unique", Bool(|r| r.is_unique)),
        Column::new("src_partition", U32(|r| r.source.partition)),
        Column::new("src_offset", U64(|r| r.source.offset)),
    ],
};
