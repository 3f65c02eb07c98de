//! `POST /api/v1/sql`: read-only analyst SQL over `clicks` and `events`, scoped like every
//! other query (an advertiser's key sees only its rows).

use crate::QueryState;
use crate::json::to_json;
use crate::limits::{QueryLimits, check_complexity};
use crate::scope::{Scope, session};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use clicktrail_api::error::ApiError;
use datafusion::error::DataFusionError;
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
    responses((status = 200, description = "{columns, rows, truncated}", body = crate::answers::SqlAnswer), (status = 400, description = "Not a valid read-only query")))]
pub async fn run_sql(
    State(state): State<QueryState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let scope = Scope::of_method(&headers, &axum::http::Method::POST, &state)?;
    let bytes = clicktrail_api::body::read_limited(body, 64 * 1024).await?;
    let req: SqlRequest = clicktrail_api::body::parse_json(&bytes)?;
    check_complexity(&req.query, state.limiter.limits())
        .map_err(|message| ApiError::field("query", message))?;
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
        .map_err(|e| run_error(e, &scope, state.limiter.limits()))?;
    let mut rows = to_json(&batches)?;
    let truncated = rows.len() > MAX_ROWS;
    rows.truncate(MAX_ROWS);
    Ok(Json(
        json!({"columns": columns, "rows": rows, "truncated": truncated}),
    ))
}

/// The answer to a query that failed while it ran. Errors raised while rows are read may quote
/// a value of a row that the tenant filter had not yet excluded (a failed cast evaluated
/// before it), so an advertiser's key gets the kind of error, never its text; the admin
/// token, which sees every row anyway, gets the text. Memory-pool and value-size limits are
/// always explained.
fn run_error(e: DataFusionError, scope: &Scope, limits: &QueryLimits) -> ApiError {
    let root = e.find_root();
    let message = match root {
        DataFusionError::ResourcesExhausted(_) => {
            metrics::counter!(
                clicktrail_schemas::metric_names::query::QUERIES_LIMITED,
                "reason" => "memory"
            )
            .increment(1);
            format!(
                "the query needs more memory than the limit of {} MiB (--query-memory-mb); \
                 aggregate over fewer rows or fewer distinct values",
                limits.memory_bytes / (1024 * 1024)
            )
        }
        DataFusionError::Execution(m) if m.contains("--query-max-value-bytes") => m.clone(),
        _ if scope.is_all() => e.to_string(),
        DataFusionError::ArrowError(a, _) => format!(
            "the query failed while it ran: {}; error details are not shown to API keys",
            arrow_kind(a)
        ),
        _ => "the query failed while it ran (a cast or computation on some row); error \
              details are not shown to API keys"
            .to_string(),
    };
    ApiError::field("query", message)
}

/// The kind of an Arrow error, without its text.
fn arrow_kind(e: &datafusion::arrow::error::ArrowError) -> &'static str {
    use datafusion::arrow::error::ArrowError as A;
    match e {
        A::CastError(_) => "a value could not be cast",
        A::DivideByZero => "division by zero",
        A::ArithmeticOverflow(_) => "arithmetic overflow",
        A::ParseError(_) => "a value could not be parsed",
        A::InvalidArgumentError(_) => "invalid argument",
        _ => "a computation failed",
    }
}
