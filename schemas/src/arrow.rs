//! Arrow schemas of the store tables and the conversion of rows into record batches.

use crate::rows::{ClickRow, EventRow};
use arrow_array::builder::{
    BooleanBuilder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder, UInt32Builder,
    UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, Utc};
use std::sync::{Arc, LazyLock};

/// Name of the raw clicks table.
pub const CLICKS_TABLE: &str = "clicks";
/// Name of the attributed events table.
pub const EVENTS_TABLE: &str = "events";

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn f(name: &str, dt: DataType, nullable: bool) -> Field {
    Field::new(name, dt, nullable)
}

static CLICKS: LazyLock<SchemaRef> = LazyLock::new(|| {
    use DataType::*;
    Arc::new(Schema::new(vec![
        f("click_id", Utf8, false),
        f("at", ts(), false),
        f("link_id", Utf8, false),
        f("code", Utf8, false),
        f("sub_id", Utf8, true),
        f("advertiser_id", Utf8, false),
        f("campaign_id", Utf8, false),
        f("influencer_id", Utf8, false),
        f("visitor_key", Utf8, false),
        f("user_agent", Utf8, false),
        f("device_class", Utf8, false),
        f("referrer", Utf8, true),
        f("ip_prefix", Utf8, false),
        f("country", Utf8, true),
        f("is_bot", Boolean, false),
        f("bot_reason", Utf8, true),
        f("not_live", Boolean, false),
        f("is_unique", Boolean, false),
        f("src_partition", UInt32, false),
        f("src_offset", UInt64, false),
    ]))
});

static EVENTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    use DataType::*;
    Arc::new(Schema::new(vec![
        f("event_id", Utf8, false),
        f("advertiser_id", Utf8, false),
        f("action", Utf8, false),
        f("custom_name", Utf8, true),
        f("occurred_at", ts(), false),
        f("received_at", ts(), false),
        f("value_minor", Int64, true),
        f("currency", Utf8, false),
        f("order_id", Utf8, true),
        f("customer_id", Utf8, true),
        f("properties", Utf8, true),
        f("coupon_code", Utf8, true),
        f("ref_code", Utf8, true),
        f("click_id", Utf8, true),
        f("landing_url", Utf8, true),
        f("referrer", Utf8, true),
        f("attributed", Boolean, false),
        f("attributed_by", Utf8, false),
        f("campaign_id", Utf8, true),
        f("influencer_id", Utf8, true),
        f("link_id", Utf8, true),
        f("coupon_id", Utf8, true),
        f("reason", Utf8, true),
        f("candidates", Utf8, false),
        f("credited_click_id", Utf8, true),
        f("click_at", ts(), true),
        f("window_secs", Int64, true),
        f("conflict", Utf8, true),
        f("src_partition", UInt32, false),
        f("src_offset", UInt64, false),
    ]))
});

/// Schema of the `clicks` table.
pub fn clicks_schema() -> SchemaRef {
    CLICKS.clone()
}

/// Schema of the `events` table.
pub fn events_schema() -> SchemaRef {
    EVENTS.clone()
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn strings<'a>(n: usize, it: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    let mut b = StringBuilder::with_capacity(n, n * 16);
    for v in it {
        b.append_option(v);
    }
    Arc::new(b.finish())
}

fn times(n: usize, it: impl Iterator<Item = Option<DateTime<Utc>>>) -> ArrayRef {
    let mut b = TimestampMicrosecondBuilder::with_capacity(n);
    for v in it {
        b.append_option(v.map(micros));
    }
    Arc::new(b.finish().with_timezone("UTC"))
}

fn bools(n: usize, it: impl Iterator<Item = bool>) -> ArrayRef {
    let mut b = BooleanBuilder::with_capacity(n);
    for v in it {
        b.append_value(v);
    }
    Arc::new(b.finish())
}

fn ints(n: usize, it: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    let mut b = Int64Builder::with_capacity(n);
    for v in it {
        b.append_option(v);
    }
    Arc::new(b.finish())
}

fn sources(n: usize, it: impl Iterator<Item = crate::rows::Source> + Clone) -> [ArrayRef; 2] {
    let mut p = UInt32Builder::with_capacity(n);
    let mut o = UInt64Builder::with_capacity(n);
    for s in it {
        p.append_value(s.partition);
        o.append_value(s.offset);
    }
    [Arc::new(p.finish()), Arc::new(o.finish())]
}

/// Clicks as a record batch of [`clicks_schema`].
pub fn clicks_to_batch(rows: &[ClickRow]) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let c = || rows.iter().map(|r| &r.click);
    let [p, o] = sources(n, rows.iter().map(|r| r.source));
    RecordBatch::try_new(
        clicks_schema(),
        vec![
            strings(n, c().map(|c| Some(c.click_id.as_str()))),
            times(n, c().map(|c| Some(c.at))),
            strings(n, c().map(|c| Some(c.link_id.as_str()))),
            strings(n, c().map(|c| Some(c.code.as_str()))),
            strings(n, c().map(|c| c.sub_id.as_deref())),
            strings(n, c().map(|c| Some(c.advertiser_id.as_str()))),
            strings(n, c().map(|c| Some(c.campaign_id.as_str()))),
            strings(n, c().map(|c| Some(c.influencer_id.as_str()))),
            strings(n, c().map(|c| Some(c.visitor_key.as_str()))),
            strings(n, c().map(|c| Some(c.user_agent.as_str()))),
            strings(n, c().map(|c| Some(c.device_class.as_str()))),
            strings(n, c().map(|c| c.referrer.as_deref())),
            strings(n, c().map(|c| Some(c.ip_prefix.as_str()))),
            strings(n, c().map(|c| c.country.as_deref())),
            bools(n, c().map(|c| c.is_bot)),
            strings(n, c().map(|c| c.bot_reason.as_deref())),
            bools(n, c().map(|c| c.not_live)),
            bools(n, rows.iter().map(|r| r.is_unique)),
            p,
            o,
        ],
    )
}

/// Events as a record batch of [`events_schema`].
pub fn events_to_batch(rows: &[EventRow]) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let e = || rows.iter().map(|r| &r.event);
    let a = || rows.iter().map(|r| &r.attribution);
    let [p, o] = sources(n, rows.iter().map(|r| r.source));
    RecordBatch::try_new(
        events_schema(),
        vec![
            strings(n, e().map(|e| Some(e.event_id.as_str()))),
            strings(n, e().map(|e| Some(e.advertiser_id.as_str()))),
            strings(n, e().map(|e| Some(e.action.as_str()))),
            strings(n, e().map(|e| e.custom_name.as_deref())),
            times(n, e().map(|e| Some(e.occurred_at))),
            times(n, e().map(|e| Some(e.received_at))),
            ints(n, e().map(|e| e.value_minor)),
            strings(n, e().map(|e| Some(e.currency.as_str()))),
            strings(n, e().map(|e| e.order_id.as_deref())),
            strings(n, e().map(|e| e.customer_id.as_deref())),
            strings(n, e().map(|e| e.properties.as_deref())),
            strings(n, e().map(|e| e.coupon_code.as_deref())),
            strings(n, e().map(|e| e.ref_code.as_deref())),
            strings(n, e().map(|e| e.click_id.as_deref())),
            strings(n, e().map(|e| e.landing_url.as_deref())),
            strings(n, e().map(|e| e.referrer.as_deref())),
            bools(n, a().map(|a| a.attributed)),
            strings(n, a().map(|a| Some(a.attributed_by.as_str()))),
            strings(n, a().map(|a| a.campaign_id.as_deref())),
            strings(n, a().map(|a| a.influencer_id.as_deref())),
            strings(n, a().map(|a| a.link_id.as_deref())),
            strings(n, a().map(|a| a.coupon_id.as_deref())),
            strings(n, a().map(|a| a.reason.as_deref())),
            strings(n, a().map(|a| Some(a.candidates.as_str()))),
            strings(n, a().map(|a| a.credited_click_id.as_deref())),
            times(n, a().map(|a| a.click_at)),
            ints(n, a().map(|a| a.window_secs)),
            strings(n, a().map(|a| a.conflict.as_deref())),
            p,
            o,
        ],
    )
}
