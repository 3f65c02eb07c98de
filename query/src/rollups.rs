//! Hourly rollups: `clicks_hourly` and `events_hourly`, what the dashboards read.
//!
//! On ClickHouse they are the materialized views' `AggregatingMergeTree` tables (see the
//! store's migrations), merged on read: counts are distinct ids and amounts sums over distinct
//! events, so a batch written twice after a crash counts once. On the embedded default the
//! same tables are aggregated from the Parquet files when read. Either way a rollup row is one
//! hour of one advertiser, campaign, influencer and link (and, for events, action, attribution
//! and currency), with its count and, for events, its amount in minor units.

use crate::filters::Filters;
use chrono::{DateTime, TimeZone, Utc};
use clicktrail_schemas::arrow::{CLICKS_TABLE, EVENTS_TABLE};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::TableProvider;
use datafusion::dataframe::DataFrame;
use datafusion::error::Result;
use datafusion::functions::datetime::expr_fn::date_trunc;
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::logical_expr::{Expr, when};
use datafusion::prelude::{SessionContext, coalesce, col, lit};
use std::sync::{Arc, LazyLock};

/// Clicks per hour.
pub const CLICKS_HOURLY: &str = "clicks_hourly";
/// Events per hour.
pub const EVENTS_HOURLY: &str = "events_hourly";

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

/// The ClickHouse query that merges a rollup's states into the rollup's schema.
pub fn clickhouse_sql(table: &str) -> Option<&'static str> {
    match table {
        CLICKS_HOURLY => Some(
            "SELECT hour, advertiser_id, campaign_id, influencer_id, link_id, \
             toInt64(uniqExactIfMerge(clicks)) AS clicks, \
             toInt64(uniqExactIfMerge(unique_clicks)) AS unique_clicks, \
             toInt64(uniqExactIfMerge(bot_clicks)) AS bot_clicks \
             FROM clicks_hourly \
             GROUP BY hour, advertiser_id, campaign_id, influencer_id, link_id",
        ),
        EVENTS_HOURLY => Some(
            "SELECT hour, advertiser_id, nullIf(campaign, '') AS campaign_id, \
             nullIf(influencer, '') AS influencer_id, nullIf(link, '') AS link_id, \
             action, attributed, currency, toInt64(uniqExactMerge(events)) AS events, \
             toInt64(arraySum(arrayMap(x -> tupleElement(x, 2), groupUniqArrayMerge(amounts)))) \
             AS amount_minor \
             FROM events_hourly \
             GROUP BY hour, advertiser_id, campaign, influencer, link, action, attributed, currency",
        ),
        _ => None,
    }
}

/// A rollup aggregated from its raw table's provider (the embedded default's Parquet files).
pub fn aggregate(table: &str, raw: Arc<dyn TableProvider>) -> Result<Arc<dyn TableProvider>> {
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
    let schema = schema(table).expect("a rollup");
    // The rollup's own column order and types, as ClickHouse gives them.
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

const HOUR_MICROS: i64 = 3_600_000_000;

fn at_micros(m: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(m).single().expect("a valid time")
}

/// The first full hour at or after `t`.
pub fn hour_ceil(t: DateTime<Utc>) -> DateTime<Utc> {
    let m = t.timestamp_micros();
    let rem = m.rem_euclid(HOUR_MICROS);
    at_micros(if rem == 0 { m } else { m - rem + HOUR_MICROS })
}

/// The start of the hour holding `t`.
pub fn hour_floor(t: DateTime<Utc>) -> DateTime<Utc> {
    let m = t.timestamp_micros();
    at_micros(m - m.rem_euclid(HOUR_MICROS))
}

/// Registers `c` (clicks) and `e` (events) for the dashboards, from the rollups for the whole
/// hours of the filters' period and from the raw tables for the part-hours at its edges. A row
/// of `c` holds counts (`clicks`, `unique_clicks`, `bot_clicks`); a row of `e` stands for `n`
/// events worth `amount` minor units. With `raw_only` (a breakdown the rollups do not hold,
/// such as sub ids) both come from the raw tables alone, every column included.
pub async fn register(ctx: &SessionContext, f: &Filters, raw_only: bool) -> Result<()> {
    let (first, last) = (f.from.map(hour_ceil), f.to.map(hour_floor));
    let use_rollups = !raw_only
        && match (first, last) {
            (Some(a), Some(b)) => a < b,
            _ => true,
        };
    // The raw part-hours before the first whole hour and after the last one.
    let mut edges = Vec::new();
    if let (Some(from), Some(h)) = (f.from, first)
        && from < h
    {
        edges.push((from, h));
    }
    if let (Some(h), Some(to)) = (last, f.to)
        && h < to
    {
        edges.push((h, to));
    }
    for (name, raw, rollup, time, columns) in [
        ("c", CLICKS_TABLE, CLICKS_HOURLY, "at", &CLICK_COLUMNS[..]),
        (
            "e",
            EVENTS_TABLE,
            EVENTS_HOURLY,
            "occurred_at",
            &EVENT_COLUMNS[..],
        ),
    ] {
        let raw_rows = |df: DataFrame| -> Result<DataFrame> {
            if raw == EVENTS_TABLE {
                df.with_column("n", lit(1i64))?
                    .with_column("amount", col("value_minor"))
            } else {
                click_flags()
                    .into_iter()
                    .try_fold(df, |df, (name, e)| df.with_column(name, e))
            }
        };
        if !use_rollups {
            let df = raw_rows(f.apply(ctx.table(raw).await?, time)?)?;
            ctx.register_table(name, df.into_view())?;
            continue;
        }
        let whole = Filters {
            from: first,
            to: last,
            ..f.clone()
        };
        let mut out = whole.apply(ctx.table(rollup).await?, "hour")?.select(
            columns
                .iter()
                .map(|c| match *c {
                    "n" => col("events").alias("n"),
                    "amount" => col("amount_minor").alias("amount"),
                    c if c == time => col("hour").alias(time),
                    c => col(c),
                })
                .collect::<Vec<_>>(),
        )?;
        for &(from, to) in &edges {
            let part = Filters {
                from: Some(from),
                to: Some(to),
                ..f.clone()
            };
            let df = raw_rows(part.apply(ctx.table(raw).await?, time)?)?;
            out = out.union(df.select_columns(columns)?)?;
        }
        ctx.register_table(name, out.into_view())?;
    }
    Ok(())
}

/// A raw click's contribution to the rollup's counts: 1 or 0 each.
fn click_flags() -> [(&'static str, Expr); 3] {
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

/// The columns of `c` the dashboards read when it comes from the rollups.
const CLICK_COLUMNS: [&str; 8] = [
    "at",
    "advertiser_id",
    "campaign_id",
    "influencer_id",
    "link_id",
    "clicks",
    "unique_clicks",
    "bot_clicks",
];

/// The columns of `e` the dashboards read when it comes from the rollups.
const EVENT_COLUMNS: [&str; 10] = [
    "occurred_at",
    "advertiser_id",
    "campaign_id",
    "influencer_id",
    "link_id",
    "action",
    "attributed",
    "currency",
    "n",
    "amount",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_round_to_their_boundaries() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(
            hour_ceil(t("2026-01-31T10:00:00Z")),
            t("2026-01-31T10:00:00Z")
        );
        assert_eq!(
            hour_ceil(t("2026-01-31T10:00:00.000001Z")),
            t("2026-01-31T11:00:00Z")
        );
        assert_eq!(
            hour_ceil(t("2026-01-31T23:59:59Z")),
            t("2026-02-01T00:00:00Z")
        );
        assert_eq!(
            hour_floor(t("2026-01-31T10:59:59.999999Z")),
            t("2026-01-31T10:00:00Z")
        );
        assert_eq!(
            hour_floor(t("2026-01-31T10:00:00Z")),
            t("2026-01-31T10:00:00Z")
        );
    }
}
