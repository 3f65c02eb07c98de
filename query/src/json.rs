//! Query results as JSON rows.

use crate::internal;
use clicktrail_api::error::ApiError;
use datafusion::arrow::json::ArrayWriter;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use serde_json::{Map, Value};

/// Runs trusted SQL (no caller text in it) and returns its rows.
pub async fn rows(ctx: &SessionContext, sql: &str) -> Result<Vec<Map<String, Value>>, ApiError> {
    let batches = ctx
        .sql(sql)
        .await
        .map_err(internal)?
        .collect()
        .await
        .map_err(internal)?;
    to_json(&batches)
}

/// Record batches as JSON objects (null columns left out).
pub fn to_json(batches: &[RecordBatch]) -> Result<Vec<Map<String, Value>>, ApiError> {
    let mut writer = ArrayWriter::new(Vec::new());
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    writer.write_batches(&refs).map_err(internal)?;
    writer.finish().map_err(internal)?;
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&bytes).map_err(internal)
}

/// An integer column of a row (0 when null or absent).
pub fn int(row: &Map<String, Value>, key: &str) -> i64 {
    row.get(key).and_then(Value::as_i64).unwrap_or(0)
}

/// The `amount_minor` of a row, a sum in minor units, as the number it is: 128-bit sums above
/// `i64::MAX` stay numbers instead of wrapping (0 when null or absent).
pub fn amount(row: &Map<String, Value>) -> Value {
    row.get("amount_minor")
        .filter(|v| v.is_number())
        .cloned()
        .unwrap_or(Value::from(0))
}
