//! The SQL the ClickHouse store's read side sends: the query that merges a rollup's aggregate
//! states (migration 2's `AggregatingMergeTree` tables) into rows of its schema
//! (`crate::rollups::schema`), by every group key or, for a summed rollup, by the keys a scan
//! reads; literals; which translated filters are exact.

use crate::rollups::{CLICKS_HOURLY, EVENTS_HOURLY};
use datafusion::logical_expr::{Expr, Operator};
use datafusion::scalar::ScalarValue;

/// One column of a rollup as its merging query reads it: `select` gives the value (a group
/// key's expression, or a measure's merge of migration 2's aggregate states); `key` is the
/// stored column a group key groups by, `None` for a measure.
pub(super) struct RollupColumn {
    pub(super) name: &'static str,
    pub(super) select: &'static str,
    pub(super) key: Option<&'static str>,
}

const fn key(name: &'static str, select: &'static str, key: &'static str) -> RollupColumn {
    RollupColumn {
        name,
        select,
        key: Some(key),
    }
}

const fn measure(name: &'static str, select: &'static str) -> RollupColumn {
    RollupColumn {
        name,
        select,
        key: None,
    }
}

const CLICKS_ROLLUP: [RollupColumn; 8] = [
    key("hour", "hour", "hour"),
    key("advertiser_id", "advertiser_id", "advertiser_id"),
    key("campaign_id", "campaign_id", "campaign_id"),
    key("influencer_id", "influencer_id", "influencer_id"),
    key("link_id", "link_id", "link_id"),
    measure("clicks", "toInt64(uniqExactIfMerge(clicks))"),
    measure("unique_clicks", "toInt64(uniqExactIfMerge(unique_clicks))"),
    measure("bot_clicks", "toInt64(uniqExactIfMerge(bot_clicks))"),
];

const EVENTS_ROLLUP: [RollupColumn; 10] = [
    key("hour", "hour", "hour"),
    key("advertiser_id", "advertiser_id", "advertiser_id"),
    key("campaign_id", "nullIf(campaign, '')", "campaign"),
    key("influencer_id", "nullIf(influencer, '')", "influencer"),
    key("link_id", "nullIf(link, '')", "link"),
    key("action", "action", "action"),
    key("attributed", "attributed", "attributed"),
    key("currency", "currency", "currency"),
    measure("events", "toInt64(uniqExactMerge(events))"),
    measure(
        "amount_minor",
        "toInt64(arraySum(arrayMap(x -> tupleElement(x, 2), groupUniqArrayMerge(amounts))))",
    ),
];

/// The columns of rollup `table` (`crate::rollups::schema`'s, in its order); `None` for any
/// other table.
pub(super) fn rollup_columns(table: &str) -> Option<&'static [RollupColumn]> {
    match table {
        CLICKS_HOURLY => Some(&CLICKS_ROLLUP),
        EVENTS_HOURLY => Some(&EVENTS_ROLLUP),
        _ => None,
    }
}

/// The query that merges rollup `table`'s states (migration 2's `AggregatingMergeTree`
/// tables) into rows of the rollup's schema, grouped by every group key, or, given `only`, by
/// the keys among `only` with only the measures among `only` merged, of the stored rows where
/// every one of `conditions` (over the stored columns) holds; `None` for any other table.
/// The states are distinct ids (and distinct (event id, amount) pairs), so a merge over fewer
/// keys counts each id once, as the sum of the finer groups does: an id belongs to one hour
/// and one link.
pub(super) fn rollup_sql(
    table: &str,
    only: Option<&[&str]>,
    conditions: &[String],
) -> Option<String> {
    let columns = rollup_columns(table)?;
    let read: Vec<&RollupColumn> = columns
        .iter()
        .filter(|c| only.is_none_or(|o| o.contains(&c.name)))
        .collect();
    let select: Vec<String> = read
        .iter()
        .map(|c| match c.select == c.name {
            true => c.name.to_string(),
            false => format!("{} AS {}", c.select, c.name),
        })
        .collect();
    let keys: Vec<&str> = read.iter().filter_map(|c| c.key).collect();
    let mut sql = format!("SELECT {} FROM {table}", select.join(", "));
    if !conditions.is_empty() {
        sql.push_str(&format!(" WHERE {}", conditions.join(" AND ")));
    }
    if !keys.is_empty() {
        sql.push_str(&format!(" GROUP BY {}", keys.join(", ")));
    }
    Some(sql)
}

/// A string as a ClickHouse string literal, quotes and backslashes escaped.
pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A constant as a ClickHouse literal; `None` for a type not translated.
pub(super) fn literal(v: &ScalarValue) -> Option<String> {
    Some(match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => quote(s),
        ScalarValue::Boolean(Some(b)) => u8::from(*b).to_string(),
        ScalarValue::Int64(Some(i)) => i.to_string(),
        ScalarValue::Int32(Some(i)) => i.to_string(),
        ScalarValue::UInt64(Some(i)) => i.to_string(),
        ScalarValue::UInt32(Some(i)) => i.to_string(),
        ScalarValue::TimestampMicrosecond(Some(t), _) => t.to_string(),
        _ => return None,
    })
}

/// Whether a translated filter means in ClickHouse exactly what it means here: a conjunction
/// of comparisons, boolean columns and null tests, where a NULL operand drops the row in
/// both. `OR` and `NOT` over nullable values are left for DataFusion to apply again
/// (ClickHouse 18.16 gives NULL for `NULL OR 1`).
pub(super) fn exact(e: &Expr) -> bool {
    match e {
        Expr::BinaryExpr(b) if b.op == Operator::And => exact(&b.left) && exact(&b.right),
        Expr::BinaryExpr(b) => b.op != Operator::Or,
        // A boolean column (`attributed != 0`): NULL drops the row in both.
        Expr::IsNull(_) | Expr::IsNotNull(_) | Expr::Column(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summed_rollup_merges_by_the_columns_it_reads() {
        assert_eq!(
            rollup_sql(CLICKS_HOURLY, Some(&["hour", "clicks", "bot_clicks"]), &[]).as_deref(),
            Some(
                "SELECT hour, toInt64(uniqExactIfMerge(clicks)) AS clicks, \
                 toInt64(uniqExactIfMerge(bot_clicks)) AS bot_clicks FROM clicks_hourly \
                 GROUP BY hour"
            )
        );
        assert_eq!(
            rollup_sql(
                EVENTS_HOURLY,
                Some(&["campaign_id", "events"]),
                &["hour >= 0".into()]
            )
            .as_deref(),
            Some(
                "SELECT nullIf(campaign, '') AS campaign_id, toInt64(uniqExactMerge(events)) \
                 AS events FROM events_hourly WHERE hour >= 0 GROUP BY campaign"
            )
        );
        let all = rollup_sql(EVENTS_HOURLY, None, &[]).unwrap();
        assert!(
            all.ends_with(
                "GROUP BY hour, advertiser_id, campaign, influencer, link, action, attributed, \
                 currency"
            ),
            "{all}"
        );
        assert_eq!(rollup_sql("clicks", None, &[]), None);
    }
}
