//! Streamed CSV exports of raw clicks and attributed events.

use crate::filters::Filters;
use crate::scope::{Scope, session};
use crate::{QueryState, internal};
use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::get;
use clicktrail_api::error::ApiError;
use datafusion::arrow::csv::WriterBuilder;
use datafusion::prelude::{Expr, col};
use futures::StreamExt;
use std::collections::HashMap;

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
    let ctx = session(&state, &scope).await?;
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
    let stream = df.execute_stream().await.map_err(internal)?;
    let mut first = true;
    let body = stream.map(move |batch| {
        let batch = batch.map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut buf = Vec::new();
        {
            let mut w = WriterBuilder::new().with_header(first).build(&mut buf);
            w.write(&batch)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        first = false;
        Ok::<_, std::io::Error>(axum::body::Bytes::from(buf))
    });
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
