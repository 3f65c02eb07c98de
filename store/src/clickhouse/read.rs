//! The ClickHouse store's read side: a DataFusion `TableProvider` per store table that pushes the
//! projection and the filters it can translate into ClickHouse SQL (inexact: DataFusion still
//! applies them) and streams the answer back as Arrow batches.
//!
//! The SQL reads `FINAL`, so rows replayed after a crash count once. The answer comes as
//! `JSONEachRow` (ClickHouse 18.16 has no Arrow format) decoded by arrow-json into the wire
//! types of the DDL (Int64 microseconds, UInt8 booleans) and cast to the table's Arrow schema.

use crate::rollups::{CLICKS_HOURLY, EVENTS_HOURLY};
use crate::source::{TableSource, schema_of};
use async_trait::async_trait;
use clickhouse::Client;
use datafusion::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::json::ReaderBuilder;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::scalar::ScalarValue;
use futures::TryStreamExt;
use std::sync::Arc;

/// Tables over the ClickHouse store.
pub struct ClickHouseSource {
    client: Client,
}

impl ClickHouseSource {
    /// A source over `client`, bound to the store's database.
    pub fn new(client: Client) -> Self {
        ClickHouseSource { client }
    }
}

#[async_trait]
impl TableSource for ClickHouseSource {
    async fn table(&self, table: &str) -> Result<Arc<dyn TableProvider>> {
        let from = match rollup_sql(table) {
            Some(rollup) => format!("({rollup})"),
            None => format!("{table} FINAL"),
        };
        Ok(Arc::new(ClickHouseTable {
            client: self.client.clone(),
            table: table.to_string(),
            from,
            schema: schema_of(table)?,
        }))
    }
}

/// The query that merges a rollup's states (migration 2's `AggregatingMergeTree` tables) into
/// the rollup's schema (`crate::rollups::schema`); `None` for any other table.
fn rollup_sql(table: &str) -> Option<&'static str> {
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

/// One store table in ClickHouse.
#[derive(Clone)]
pub struct ClickHouseTable {
    client: Client,
    table: String,
    /// What the scan reads: the table `FINAL`, or a rollup's merging subquery.
    from: String,
    schema: SchemaRef,
}

impl std::fmt::Debug for ClickHouseTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClickHouseTable({})", self.table)
    }
}

/// The type ClickHouse stores a column as, as JSON will carry it.
fn wire_type(dt: &DataType) -> DataType {
    match dt {
        DataType::Boolean => DataType::UInt8,
        DataType::Timestamp(_, _) => DataType::Int64,
        other => other.clone(),
    }
}

fn quote(s: &str) -> String {
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

fn literal(v: &ScalarValue) -> Option<String> {
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

impl ClickHouseTable {
    fn column(&self, e: &Expr) -> Option<String> {
        match e {
            Expr::Column(c) if self.schema.field_with_name(&c.name).is_ok() => Some(c.name.clone()),
            _ => None,
        }
    }

    /// ClickHouse SQL for a filter, when it can be translated exactly.
    fn translate(&self, e: &Expr) -> Option<String> {
        match e {
            Expr::BinaryExpr(b) => {
                let op = match b.op {
                    Operator::And => {
                        return Some(format!(
                            "({} AND {})",
                            self.translate(&b.left)?,
                            self.translate(&b.right)?
                        ));
                    }
                    Operator::Or => {
                        return Some(format!(
                            "({} OR {})",
                            self.translate(&b.left)?,
                            self.translate(&b.right)?
                        ));
                    }
                    Operator::Eq => "=",
                    Operator::NotEq => "!=",
                    Operator::Lt => "<",
                    Operator::LtEq => "<=",
                    Operator::Gt => ">",
                    Operator::GtEq => ">=",
                    _ => return None,
                };
                let (col, lit, op) = match (
                    self.column(&b.left),
                    &*b.right,
                    self.column(&b.right),
                    &*b.left,
                ) {
                    (Some(c), Expr::Literal(v, _), _, _) => (c, literal(v)?, op.to_string()),
                    (_, _, Some(c), Expr::Literal(v, _)) => {
                        let flipped = match op {
                            "<" => ">",
                            "<=" => ">=",
                            ">" => "<",
                            ">=" => "<=",
                            o => o,
                        };
                        (c, literal(v)?, flipped.to_string())
                    }
                    _ => return None,
                };
                Some(format!("{col} {op} {lit}"))
            }
            Expr::IsNull(inner) => Some(format!("isNull({})", self.column(inner)?)),
            Expr::IsNotNull(inner) => Some(format!("isNotNull({})", self.column(inner)?)),
            Expr::Not(inner) => Some(format!("NOT ({})", self.translate_bool(inner)?)),
            Expr::Column(_) => self.translate_bool(e),
            _ => None,
        }
    }

    fn translate_bool(&self, e: &Expr) -> Option<String> {
        match e {
            Expr::Column(_) => {
                let c = self.column(e)?;
                (self.schema.field_with_name(&c).ok()?.data_type() == &DataType::Boolean)
                    .then(|| format!("{c} != 0"))
            }
            other => self.translate(other),
        }
    }
}

#[async_trait]
impl TableProvider for ClickHouseTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| match self.translate(f) {
                Some(_) => TableProviderFilterPushDown::Inexact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let fields: Vec<Field> = match projection {
            Some(p) => p.iter().map(|i| self.schema.field(*i).clone()).collect(),
            None => self
                .schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect(),
        };
        let schema = Arc::new(Schema::new(fields));
        let conditions: Vec<String> = filters.iter().filter_map(|f| self.translate(f)).collect();
        let mut sql = if schema.fields().is_empty() {
            format!("SELECT count() AS n FROM {}", self.from)
        } else {
            let cols: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            format!("SELECT {} FROM {}", cols.join(", "), self.from)
        };
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        if let (Some(n), false) = (limit, schema.fields().is_empty()) {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        let partition = Arc::new(Scan {
            client: self.client.clone(),
            sql,
            schema: schema.clone(),
        });
        Ok(Arc::new(StreamingTableExec::try_new(
            schema,
            vec![partition],
            None,
            Vec::new(),
            false,
            None,
        )?))
    }
}

/// One ClickHouse query, streamed.
#[derive(Debug)]
struct Scan {
    client: Client,
    sql: String,
    schema: SchemaRef,
}

fn external(e: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

impl PartitionStream for Scan {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let schema = self.schema.clone();
        let client = self.client.clone();
        let sql = self.sql.clone();
        let stream = futures::stream::once(async move { fetch(client, sql, schema).await })
            .map_ok(|batches| futures::stream::iter(batches.into_iter().map(Ok)))
            .try_flatten();
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

async fn fetch(client: Client, sql: String, schema: SchemaRef) -> Result<Vec<RecordBatch>> {
    tracing::debug!(sql = %sql, "clickhouse scan");
    let mut cursor = client
        .query(&sql)
        .with_setting("output_format_json_quote_64bit_integers", "0")
        .fetch_bytes("JSONEachRow")
        .map_err(external)?;
    if schema.fields().is_empty() {
        let body = cursor.collect().await.map_err(external)?;
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(external)?;
        let n = v["n"].as_u64().unwrap_or(0) as usize;
        let batch = RecordBatch::try_new_with_options(
            schema,
            vec![],
            &RecordBatchOptions::new().with_row_count(Some(n)),
        )?;
        return Ok(vec![batch]);
    }
    let wire = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), wire_type(f.data_type()), true))
            .collect::<Vec<_>>(),
    ));
    let mut decoder = ReaderBuilder::new(wire)
        .with_batch_size(8192)
        .build_decoder()?;
    let mut out = Vec::new();
    while let Some(chunk) = cursor.next().await.map_err(external)? {
        let mut buf: &[u8] = &chunk;
        while !buf.is_empty() {
            let used = decoder.decode(buf)?;
            buf = &buf[used..];
            // The decoder stops early when a batch is full: flush it and go on.
            if !buf.is_empty() {
                match decoder.flush()? {
                    Some(b) => out.push(to_table(&b, &schema)?),
                    None if used == 0 => {
                        return Err(DataFusionError::Internal(
                            "JSON decoder made no progress".into(),
                        ));
                    }
                    None => {}
                }
            }
        }
    }
    if let Some(b) = decoder.flush()? {
        out.push(to_table(&b, &schema)?);
    }
    Ok(out)
}

fn to_table(b: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .zip(b.columns())
        .map(|(f, c)| cast(c, f.data_type()))
        .collect::<std::result::Result<_, _>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    fn table() -> ClickHouseTable {
        ClickHouseTable {
            client: Client::default(),
            table: "clicks".into(),
            from: "clicks FINAL".into(),
            schema: schema_of("clicks").unwrap(),
        }
    }

    #[test]
    fn filters_translate_to_clickhouse_sql() {
        let t = table();
        let ts = lit(ScalarValue::TimestampMicrosecond(
            Some(1_700_000_000_000_000),
            Some("UTC".into()),
        ));
        let scoped = col("advertiser_id")
            .eq(lit("adv'1"))
            .and(col("at").gt_eq(ts));
        assert_eq!(
            t.translate(&scoped).as_deref(),
            Some("(advertiser_id = 'adv\\'1' AND at >= 1700000000000000)")
        );
        assert_eq!(
            t.translate(&Expr::Not(Box::new(col("is_bot")))).as_deref(),
            Some("NOT (is_bot != 0)")
        );
        assert_eq!(
            t.translate(&lit(5).lt(col("src_offset"))).as_deref(),
            Some("src_offset > 5")
        );
        assert_eq!(
            t.translate(&col("country").is_null()).as_deref(),
            Some("isNull(country)")
        );
        // Unknown columns and functions stay with DataFusion.
        assert_eq!(t.translate(&col("nope").eq(lit(1))), None);
        assert_eq!(t.translate(&col("code").like(lit("a%"))), None);
    }
}
