//! Dashboards over the hourly rollups, `clicks_hourly` and `events_hourly`: which hours of a
//! period the rollups answer and which part-hours the raw tables do ([`register`]). The
//! rollups themselves (schemas, the ClickHouse tables merged on read, the aggregation of the
//! Parquet files) are the store's: `clicktrail_store::rollups`.

use crate::filters::Filters;
use chrono::{DateTime, TimeZone, Utc};
use clicktrail_schemas::arrow::{CLICKS_TABLE, EVENTS_TABLE};
use clicktrail_store::rollups::click_flags;
pub use clicktrail_store::rollups::{CLICKS_HOURLY, EVENTS_HOURLY};
use datafusion::dataframe::DataFrame;
use datafusion::error::Result;
use datafusion::prelude::{SessionContext, col, lit};

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
