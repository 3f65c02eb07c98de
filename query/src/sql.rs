//! `POST /api/v1/sql`: read-only analyst SQL over `clicks` and `events`, scoped like every
//! other query (an advertiser's key sees only its rows).

use crate::QueryState;
use crate::json::to_json;
use crate::scope::{Scope, session};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use clicktrail_api::error::ApiError;
use datafusion::execution::context::SQLOptions;
use serde::Deserialize;
use serde_json::{Value, json};

/// Most rows returned.
pub const MAX_ROWS: usize = 10_000;

/// An analyst query.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlRequest {
    /// One SELECT statement over `clicks` and `events`.
    pub query: String,
}

pub(crate) fn routes() -> Router<QueryState> {
    Router::new().route("/api/v1/sql", post(run_sql))
}

/// Run a read-only query; at most 10,000 rows are returned.
#[utoipa::path(post, path = "/api/v1/sql", tag = "sql", request_body = SqlRequest,
    responses((status = 200, description = "{columns, rows, truncated}"), (status = 400, description = "Not a valid read-only query")))]
pub async fn run_sql(
    State(state): State<QueryState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let scope = Scope::of(&headers, &state)?;
    let bytes = clicktrail_api::body::read_limited(body, 64 * 1024).await?;
    let req: SqlRequest = clicktrail_api::body::parse_json(&bytes)?;
    let ctx = session(&state, &scope).await?;
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let df = ctx
        .sql_with_options(&req.query, options)
        .await
        .map_err(|e| ApiError::field("query", e.to_string()))?;
    let columns: Vec<String> = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let batches = df
        .limit(0, Some(MAX_ROWS + 1))
        .map_err(|e| ApiError::field("query", e.to_string()))?
        .collect()
        .await
        .map_err(|e| ApiError::field("query", e.to_string()))?;
    let mut rows = to_json(&batches)?;
    let truncated = rows.len() > MAX_ROWS;
    rows.truncate(MAX_ROWS);
    Ok(Json(
        json!({"columns": columns, "rows": rows, "truncated": truncated}),
    ))
}
