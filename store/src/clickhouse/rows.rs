//! Store rows as ClickHouse rows, column for column in the order of the DDL (RowBinary is
//! positional). Field names and meanings are those of the columns in `migrations.rs`.
#![allow(missing_docs)]

use clicktrail_schemas::rows::{ClickRow, EventRow};
use serde::{Deserialize, Serialize};

/// A `clicks` row.
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize, Deserialize)]
pub struct ChClick {
    pub click_id: String,
    pub at: i64,
    pub link_id: String,
    pub code: String,
    pub sub_id: Option<String>,
    pub advertiser_id: String,
    pub campaign_id: String,
    pub influencer_id: String,
    pub visitor_key: String,
    pub user_agent: String,
    pub device_class: String,
    pub referrer: Option<String>,
    pub ip_prefix: String,
    pub country: Option<String>,
    pub is_bot: u8,
    pub bot_reason: Option<String>,
    pub not_live: u8,
    pub is_unique: u8,
    pub src_partition: u32,
    pub src_offset: u64,
}

impl From<&ClickRow> for ChClick {
    fn from(r: &ClickRow) -> Self {
        let c = &r.click;
        ChClick {
            click_id: c.click_id.clone(),
            at: c.at.timestamp_micros(),
            link_id: c.link_id.clone(),
            code: c.code.clone(),
            sub_id: c.sub_id.clone(),
            advertiser_id: c.advertiser_id.clone(),
            campaign_id: c.campaign_id.clone(),
            influencer_id: c.influencer_id.clone(),
            visitor_key: c.visitor_key.clone(),
            user_agent: c.user_agent.clone(),
            device_class: c.device_class.clone(),
            referrer: c.referrer.clone(),
            ip_prefix: c.ip_prefix.clone(),
            country: c.country.clone(),
            is_bot: c.is_bot.into(),
            bot_reason: c.bot_reason.clone(),
            not_live: c.not_live.into(),
            is_unique: r.is_unique.into(),
            src_partition: r.source.partition,
            src_offset: r.source.offset,
        }
    }
}

/// An `events` row.
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize, Deserialize)]
pub struct ChEvent {
    pub event_id: String,
    pub advertiser_id: String,
    pub action: String,
    pub custom_name: Option<String>,
    pub occurred_at: i64,
    pub received_at: i64,
    pub value_minor: Option<i64>,
    pub currency: String,
    pub order_id: Option<String>,
    pub customer_id: Option<String>,
    pub properties: Option<String>,
    pub coupon_code: Option<String>,
    pub ref_code: Option<String>,
    pub click_id: Option<String>,
    pub landing_url: Option<String>,
    pub referrer: Option<String>,
    pub attributed: u8,
    pub attributed_by: String,
    pub campaign_id: Option<String>,
    pub influencer_id: Option<String>,
    pub link_id: Option<String>,
    pub coupon_id: Option<String>,
    pub reason: Option<String>,
    pub candidates: String,
    pub credited_click_id: Option<String>,
    pub click_at: Option<i64>,
    pub window_secs: Option<i64>,
    pub conflict: Option<String>,
    pub src_partition: u32,
    pub src_offset: u64,
}

impl From<&EventRow> for ChEvent {
    fn from(r: &EventRow) -> Self {
        let (e, a) = (&r.event, &r.attribution);
        ChEvent {
            event_id: e.event_id.clone(),
            advertiser_id: e.advertiser_id.clone(),
            action: e.action.as_str().to_string(),
            custom_name: e.custom_name.clone(),
            occurred_at: e.occurred_at.timestamp_micros(),
            received_at: e.received_at.timestamp_micros(),
            value_minor: e.value_minor,
            currency: e.currency.clone(),
            order_id: e.order_id.clone(),
            customer_id: e.customer_id.clone(),
            properties: e.properties.clone(),
            coupon_code: e.coupon_code.clone(),
            ref_code: e.ref_code.clone(),
            click_id: e.click_id.clone(),
            landing_url: e.landing_url.clone(),
            referrer: e.referrer.clone(),
            attributed: a.attributed.into(),
            attributed_by: a.attributed_by.clone(),
            campaign_id: a.campaign_id.clone(),
            influencer_id: a.influencer_id.clone(),
            link_id: a.link_id.clone(),
            coupon_id: a.coupon_id.clone(),
            reason: a.reason.clone(),
            candidates: a.candidates.clone(),
            credited_click_id: a.credited_click_id.clone(),
            click_at: a.click_at.map(|t| t.timestamp_micros()),
            window_secs: a.window_secs,
            conflict: a.conflict.clone(),
            src_partition: r.source.partition,
            src_offset: r.source.offset,
        }
    }
}

/// A `checkpoints` row.
#[derive(Debug, Clone, clickhouse::Row, Serialize, Deserialize)]
pub struct ChCheckpoint {
    pub stream: String,
    pub next_offset: u64,
}

/// A `processor_state` row.
#[derive(Debug, Clone, clickhouse::Row, Serialize, Deserialize)]
pub struct ChState {
    pub stream: String,
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    pub seq: u64,
    pub deleted: u8,
}
