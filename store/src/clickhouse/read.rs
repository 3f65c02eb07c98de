//! The ClickHouse store's read side: a DataFusion `TableProvider` per store table that pushes the
//! projection and the filters it can translate into ClickHouse SQL (inexact: DataFusion still
//! applies them) and streams the answer back as Arrow batches.
//!
//! The SQL reads `FINAL`, so rows replayed after a crash count once. The answer comes as
//! `JSONEachRow` (ClickHouse 18.16 has no Arrow format) decoded by arrow-json into the wire
//! types of the DDL (Int64 microseconds, UInt8 booleans) and cast to the table's Arrow schema.

use super::merge::{exact, literal, rollup_columns, rollup_sql};
use crate::source::{TableSource, schema_of};
use async_trait::async_trait;
use clickhouse::Client;
use datafusion::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::json::ReaderBuilder;
use datafusion::arrow::json::reader::Decoder;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
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
        self.provider(table, false)
    }

    /// A rollup whose scan merges its states only by the columns it reads: the dashboards'
    /// sums then get one row per hour (or per hour and influencer, …) from ClickHouse, not one
    /// per hour and link to be decoded and summed again here.
    async fn summed(&self, table: &str) -> Result<Arc<dyn TableProvider>> {
        self.provider(table, rollup_columns(table).is_some())
    }
}

impl ClickHouseSource {
    fn provider(&self, table: &str, summed: bool) -> Result<Arc<dyn TableProvider>> {
        Ok(Arc::new(ClickHouseTable {
            client: self.client.clone(),
            table: table.to_string(),
            summed,
            schema: schema_of(table)?,
        }))
    }
}

/// One store table in ClickHouse.
#[derive(Clone)]
pub struct ClickHouseTable {
    client: Client,
    table: String,
    /// A rollup read for sums only ([`TableSource::summed`]): merged by the columns a scan
    /// reads.
    summed: bool,
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

/// Where a filter is translated to: over the table's (or rollup's) columns by name, or, for a
/// summed rollup, over the stored group keys before the merge.
#[derive(Clone, Copy, PartialEq)]
enum Over {
    Columns,
    Keys,
}

impl ClickHouseTable {
    /// The column `e` names (if one of the table's) and its SQL: its name, or over
    /// [`Over::Keys`] a group key's expression over the stored columns (`None` for a measure).
    fn column<'a>(&'a self, e: &Expr, over: Over) -> Option<(&'a Field, String)> {
        let Expr::Column(c) = e else { return None };
        let field = self.schema.field_with_name(&c.name).ok()?;
        match over {
            Over::Columns => Some((field, c.name.clone())),
            Over::Keys => {
                let column = rollup_columns(&self.table)?
                    .iter()
                    .find(|r| r.name == c.name)?;
                column.key.map(|_| (field, column.select.to_string()))
            }
        }
    }

    /// ClickHouse SQL for a filter over `over`, when it can be translated exactly.
    fn translate_over(&self, e: &Expr, over: Over) -> Option<String> {
        match e {
            Expr::BinaryExpr(b) => {
                let op = match b.op {
                    Operator::And => {
                        return Some(format!(
                            "({} AND {})",
                            self.translate_over(&b.left, over)?,
                            self.translate_over(&b.right, over)?
                        ));
                    }
                    Operator::Or => {
                        return Some(format!(
                            "({} OR {})",
                            self.translate_over(&b.left, over)?,
                            self.translate_over(&b.right, over)?
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
                    self.column(&b.left, over),
                    &*b.right,
                    self.column(&b.right, over),
                    &*b.left,
                ) {
                    (Some((_, c)), Expr::Literal(v, _), _, _) => (c, literal(v)?, op.to_string()),
                    (_, _, Some((_, c)), Expr::Literal(v, _)) => {
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
            Expr::IsNull(inner) => Some(format!("isNull({})", self.column(inner, over)?.1)),
            Expr::IsNotNull(inner) => Some(format!("isNotNull({})", self.column(inner, over)?.1)),
            Expr::Not(inner) => Some(format!("NOT ({})", self.translate_bool(inner, over)?)),
            Expr::Column(_) => self.translate_bool(e, over),
            _ => None,
        }
    }

    fn translate_bool(&self, e: &Expr, over: Over) -> Option<String> {
        match e {
            Expr::Column(_) => {
                let (field, c) = self.column(e, over)?;
                (field.data_type() == &DataType::Boolean).then(|| format!("{c} != 0"))
            }
            other => self.translate_over(other, over),
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
        // A summed rollup takes filters over its group keys before it merges (exactly, where
        // they mean the same): it need not then read the columns they filter, and merges by
        // fewer. A filter over a measure applies to the merged rows, here.
        let over = match self.summed {
            true => Over::Keys,
            false => Over::Columns,
        };
        Ok(filters
            .iter()
            .map(|f| match self.translate_over(f, over) {
                Some(_) if over == Over::Keys && exact(f) => TableProviderFilterPushDown::Exact,
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
        let cols: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        // A summed rollup merges by the keys this scan reads, after its filters.
        let summed = self.summed && !cols.is_empty();
        let over = match summed {
            true => Over::Keys,
            false => Over::Columns,
        };
        let mut conditions: Vec<String> = filters
            .iter()
            .filter_map(|f| self.translate_over(f, over))
            .collect();
        let from = match summed {
            // The filters go before the merge, over the stored keys.
            true => rollup_sql(&self.table, Some(&cols), &std::mem::take(&mut conditions)),
            false => rollup_sql(&self.table, None, &[]),
        };
        let from = match from {
            Some(rollup) => format!("({rollup})"),
            None => format!("{} FINAL", self.table),
        };
        let mut sql = if schema.fields().is_empty() {
            format!("SELECT count() AS n FROM {from}")
        } else {
            format!("SELECT {} FROM {from}", cols.join(", "))
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

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let schema = self.schema.clone();
        let client = self.client.clone();
        let sql = self.sql.clone();
        // Batches of the session's size, as every other scan hands on: a sort beyond its
        // memory share spills batch by batch, and one batch must fit beside what it reserved
        // for merging its spilled runs.
        let rows = ctx.session_config().batch_size();
        let stream = futures::stream::once(async move { fetch(client, sql, schema, rows).await })
            .try_flatten();
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

/// The answer to `sql` as a stream of batches of `schema`, each decoded as its bytes arrive
/// (at most `rows` rows), so that an export of millions of rows holds one batch at a time and
/// its first rows go out while ClickHouse still sends the rest.
async fn fetch(client: Client, sql: String, schema: SchemaRef, rows: usize) -> Result<Batches> {
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
        return Ok(Box::pin(futures::stream::iter([Ok(batch)])));
    }
    let wire = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), wire_type(f.data_type()), true))
            .collect::<Vec<_>>(),
    ));
    let decoder = ReaderBuilder::new(wire)
        .with_batch_size(rows.max(1))
        .build_decoder()?;
    // One step per chunk of the answer: the batches it completed (often none), then, once the
    // answer ends, the rows left in the decoder.
    let steps = futures::stream::try_unfold(Some((cursor, decoder)), move |state| {
        let schema = schema.clone();
        async move {
            let Some((mut cursor, mut decoder)) = state else {
                return Ok::<_, DataFusionError>(None);
            };
            let mut out = Vec::new();
            match cursor.next().await.map_err(external)? {
                Some(chunk) => {
                    decode(&mut decoder, &chunk, &schema, &mut out)?;
                    Ok(Some((out, Some((cursor, decoder)))))
                }
                None => {
                    if let Some(b) = decoder.flush()? {
                        out.push(to_table(&b, &schema)?);
                    }
                    Ok(Some((out, None)))
                }
            }
        }
    });
    Ok(Box::pin(
        steps
            .map_ok(|batches| futures::stream::iter(batches.into_iter().map(Ok)))
            .try_flatten(),
    ))
}

/// Batches of a scan as they are decoded.
type Batches = std::pin::Pin<Box<dyn futures::Stream<Item = Result<RecordBatch>> + Send>>;

/// Feeds `chunk` to `decoder`, pushing every batch it fills (cast to `schema`) onto `out`.
fn decode(
    decoder: &mut Decoder,
    chunk: &[u8],
    schema: &SchemaRef,
    out: &mut Vec<RecordBatch>,
) -> Result<()> {
    let mut buf = chunk;
    while !buf.is_empty() {
        let used = decoder.decode(buf)?;
        buf = &buf[used..];
        // The decoder stops early when a batch is full: flush it and go on.
        if !buf.is_empty() {
            match decoder.flush()? {
                Some(b) => out.push(to_table(&b, schema)?),
                None if used == 0 => {
                    return Err(DataFusionError::Internal(
                        "JSON decoder made no progress".into(),
                    ));
                }
                None => {}
            }
        }
    }
    Ok(())
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
mod tests;
