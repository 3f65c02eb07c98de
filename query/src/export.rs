//! Streamed CSV exports of raw clicks and attributed events.

use crate::filters::Filters;
use crate::scope::{Scope, scoped};
use crate::{QueryState, internal};
use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::get;
use clicktrail_api::error::ApiError;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::{Expr, col};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) fn routes() -> Router<QueryState> {
    Router::new()
        .route("/api/v1/export/events.csv", get(events_csv))
        .route("/api/v1/export/clicks.csv", get(clicks_csv))
}

async fn export(
    state: QueryState,
    headers: HeaderMap,
    q: HashMap<String, String>,
    table: &'static str,
    time: &'static str,
) -> Result<Response, ApiError> {
    let scope = Scope::of(&headers, &state)?;
    let mut q = q;
    // Exports default to everything; a period narrows them.
    if !q.contains_key("period") && !q.contains_key("from") && !q.contains_key("to") {
        q.insert("period".into(), "all".into());
    }
    let filters = Filters::parse(&q, chrono::Utc::now())?;
    if filters.advertiser_id.is_some() && scope != Scope::All {
        return Err(ApiError::field(
            "advertiser_id",
            "only the admin token may filter by advertiser",
        ));
    }
    // The sort in time order spills beyond the memory pool instead of failing mid-stream.
    let ctx = scoped(state.limiter.export_context()?, &state, &scope).await?;
    let df = filters
        .apply(ctx.table(table).await.map_err(internal)?, time)
        .map_err(internal)?;
    let columns: Vec<Expr> = df
        .schema()
        .fields()
        .iter()
        .filter(|f| !f.name().starts_with("src_"))
        .map(|f| col(f.name()))
        .collect();
    let df = df
        .select(columns)
        .map_err(internal)?
        .sort(vec![col(time).sort(true, false)])
        .map_err(internal)?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let stream = df.execute_stream().await.map_err(internal)?;
    // The header goes with the first batch; an export without rows is the header alone.
    let wrote = Arc::new(AtomicBool::new(false));
    let header_only = {
        let wrote = wrote.clone();
        futures::stream::once(async move {
            if wrote.load(Ordering::Relaxed) {
                return Ok(axum::body::Bytes::new());
            }
            csv_bytes(&RecordBatch::new_empty(schema), true)
        })
    };
    let body = stream
        .map(move |batch| {
            let batch = batch.and_then(|b| Ok(neutralize(&b)?)).map_err(|e| {
                // The answer has begun: the client sees the body end early, the log says why.
                tracing::warn!(%table, error = %e, "export stopped mid-stream");
                std::io::Error::other(e.to_string())
            })?;
            let first = !wrote.swap(true, Ordering::Relaxed);
            csv_bytes(&batch, first)
        })
        .chain(header_only);
    let mut resp = Response::new(Body::from_stream(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    resp.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{table}.csv\"")).expect("ascii"),
    );
    Ok(resp)
}

/// Every event with its attribution as CSV, streamed, oldest first (default: all time).
#[utoipa::path(get, path = "/api/v1/export/events.csv", tag = "export",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query), ("period" = Option<String>, Query), ("campaign_id" = Option<String>, Query), ("influencer_id" = Option<String>, Query)),
    responses((status = 200, description = "CSV with a header row", content_type = "text/csv")))]
pub async fn events_csv(
    State(state): State<QueryState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    export(state, headers, q, "events", "occurred_at").await
}

/// Every raw click as CSV, streamed, oldest first (default: all time).
#[utoipa::path(get, path = "/api/v1/export/clicks.csv", tag = "export",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query), ("period" = Option<String>, Query), ("campaign_id" = Option<String>, Query), ("influencer_id" = Option<String>, Query)),
    responses((status = 200, description = "CSV with a header row", content_type = "text/csv")))]
pub async fn clicks_csv(
    State(state): State<QueryState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    export(state, headers, q, "clicks", "at").await
}

/// `batch` as CSV, with the header row when `header`.
pub(crate) fn csv_bytes(
    batch: &RecordBatch,
    header: bool,
) -> Result<axum::body::Bytes, std::io::Error> {
    let mut buf = Vec::new();
    {
        let mut w = WriterBuilder::new().with_header(header).build(&mut buf);
        w.write(batch)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
    }
    Ok(axum::body::Bytes::from(buf))
}

/// The first characters that make a spreadsheet read a cell as a formula: `=`, `+`, `-`, `@`,
/// tab and carriage return (OWASP, "CSV Injection").
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A cell that a spreadsheet would not execute: text starting like a formula gets a leading
/// single quote, as OWASP's CSV injection guidance advises; other text is unchanged.
pub fn neutralize_cell(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(FORMULA_STARTS) {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// `batch` with every text cell neutralized ([`neutralize_cell`]); other columns unchanged.
/// Errors: only if Arrow refuses the rebuilt columns, which a same-shaped batch rules out.
pub(crate) fn neutralize(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| -> Result<ArrayRef, ArrowError> {
            let text = match c.data_type() {
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                    datafusion::arrow::compute::cast(c, &DataType::Utf8)?
                }
                _ => return Ok(c.clone()),
            };
            let cells: StringArray = text
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(neutralize_cell))
                .collect();
            datafusion::arrow::compute::cast(&cells, c.data_type())
        })
        .collect::<Result<_, _>>()?;
    RecordBatch::try_new(batch.schema(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_execute_are_quoted() {
        for bad in [
            "=1+1",
            "=HYPERLINK(\"http://evil.example\",\"x\")",
            "+1",
            "-2+3",
            "@SUM(A1)",
            "\tx",
            "\rx",
        ] {
            assert_eq!(neutralize_cell(bad), format!("'{bad}"));
        }
        for fine in ["Mozilla/5.0", "o-1", "", "1=1", " =x"] {
            assert_eq!(neutralize_cell(fine), fine);
        }
        let batch = RecordBatch::try_from_iter([
            (
                "s",
                Arc::new(StringArray::from(vec![Some("=1+2"), None, Some("ok")])) as ArrayRef,
            ),
            (
                "n",
                Arc::new(datafusion::arrow::array::Int64Array::from(vec![-1, 2, 3])) as ArrayRef,
            ),
        ])
        .unwrap();
        let out = neutralize(&batch).unwrap();
        let s = out.column(0).as_string::<i32>();
        assert_eq!(
            (s.value(0), s.is_null(1), s.value(2)),
            ("'=1+2", true, "ok")
        );
        assert_eq!(
            out.column(1).as_ref(),
            batch.column(1).as_ref(),
            "numbers untouched"
        );
    }
}
