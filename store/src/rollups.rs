//! Hourly rollups as the store serves them: `clicks_hourly` and `events_hourly`, what the
//! dashboards read.
//!
//! On ClickHouse they are the materialized views' `AggregatingMergeTree` tables (migration 2),
//! merged on read by [`crate::clickhouse::read`]: counts are distinct ids and amounts sums over
//! distinct events, so a batch written twice after a crash counts once. On the Parquet store
//! the same tables are aggregated from the raw files when read ([`aggregate`]). Either way a
//! rollup row is one hour of one advertiser, campaign, influencer and link (and, for events,
//! action, attribution and currency), with its count and, for events, its amount in minor
//! units.

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::TableProvider;
use datafusion::error::{DataFusionError, Result};
use datafusion::functions::datetime::expr_fn::date_trunc;
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::logical_expr::{Expr, when};
use datafusion::prelude::{SessionContext, coalesce, col, lit};
use std::sync::{Arc, LazyLock};

/// Clicks per hour.
pub const CLICKS_HOURLY: &str = "clicks_hourly";
/// Events per hour.
pub const EVENTS_HOURLY: &str = "events_hourly";

/// The dimensions every rollup is grouped by, hour first.
const KEY: [&str; 5] = [
    "hour",
    "advertiser_id",
    "campaign_id",
    "influencer_id",
    "link_id",
];

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

static CLICKS: LazyLock<SchemaRef> = LazyLock::new(|| {
    use DataType::*;
    Arc::new(Schema::new(vec![
        Field::new("hour", ts(), false),
        Field::new("advertiser_id", Utf8, false),
        Field::new("campaign_id", Utf8, false),
        Field::new("influencer_id", Utf8, false),
        Field::new("link_id", Utf8, false),
        Field::new("clicks", Int64, false),
        Field::new("unique_clicks", Int64, false),
        Field::new("bot_clicks", Int64, false),
    ]))
});

static EVENTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    use DataType::*;
    Arc::new(Schema::new(vec![
        Field::new("hour", ts(), false),
        Field::new("advertiser_id", Utf8, false),
        Field::new("campaign_id", Utf8, true),
        Field::new("influencer_id", Utf8, true),
        Field::new("link_id", Utf8, true),
        Field::new("action", Utf8, false),
        Field::new("attributed", Boolean, false),
        Field::new("currency", Utf8, false),
        Field::new("events", Int64, false),
        Field::new("amount_minor", Int64, false),
    ]))
});

/// The schema of a rollup, or `None` for any other table.
pub fn schema(table: &str) -> Option<SchemaRef> {
    match table {
        CLICKS_HOURLY => Some(CLICKS.clone()),
        EVENTS_HOURLY => Some(EVENTS.clone()),
        _ => None,
    }
}

/// A rollup aggregated from its raw table's provider (`clicks` for `clicks_hourly`, `events`
/// for `events_hourly`), with the rollup's own column order and types, as ClickHouse gives
/// them. Errors: a plan error for a name that is not a rollup.
pub fn aggregate(table: &str, raw: Arc<dyn TableProvider>) -> Result<Arc<dyn TableProvider>> {
    let schema =
        schema(table).ok_or_else(|| DataFusionError::Plan(format!("no rollup `{table}`")))?;
    let ctx = SessionContext::new();
    let df = ctx.read_table(raw)?;
    let (time, extra, aggregates) = match table {
        CLICKS_HOURLY => (
            "at",
            vec![],
            click_flags().map(|(n, e)| sum(e).alias(n)).to_vec(),
        ),
        _ => (
            "occurred_at",
            vec!["action", "attributed", "currency"],
            vec![
                count(lit(1)).alias("events"),
                sum(coalesce(vec![col("value_minor"), lit(0i64)])).alias("amount_minor"),
            ],
        ),
    };
    let mut group = vec![date_trunc(lit("hour"), col(time)).alias("hour")];
    group.extend(KEY[1..].iter().chain(&extra).map(|c| col(*c)));
    let df = df.aggregate(group, aggregates)?;
    let df = df.select(
        schema
            .fields()
            .iter()
            .map(|f| {
                datafusion::logical_expr::cast(col(f.name()), f.data_type().clone()).alias(f.name())
            })
            .collect::<Vec<_>>(),
    )?;
    Ok(df.into_view())
}

/// A raw click's contribution to `clicks_hourly`'s counts (`clicks`, `unique_clicks`,
/// `bot_clicks`): an Int64 expression over the `clicks` columns, 1 or 0 each.
pub fn click_flags() -> [(&'static str, Expr); 3] {
    let flag = |e: Expr| {
        when(e, lit(1i64))
            .otherwise(lit(0i64))
            .expect("a CASE expression")
    };
    [
        ("clicks", flag(!col("is_bot"))),
        (
            "unique_clicks",
            flag((!col("is_bot")).and(col("is_unique"))),
        ),
        ("bot_clicks", flag(col("is_bot"))),
    ]
}
