//! Diagnostics: the tail of the dead-letter topic.

use super::Admin;
use crate::IngestState;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use clicktrail_api::error::ApiError;
use clicktrail_schemas::Topic;
use clicktrail_schemas::wire::DeadLetterRecord;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
/// How much of the tail.
pub struct TailQuery {
    /// Filter.
    pub limit: Option<usize>,
}

pub(super) fn routes() -> Router<IngestState> {
    Router::new().route("/api/v1/admin/dead-letter", get(dead_letter))
}

/// The most recent records that could not be processed, newest last, with their reasons.
#[utoipa::path(get, path = "/api/v1/admin/dead-letter", tag = "admin", params(("limit" = Option<usize>, Query, description = "At most this many (default 50, up to 1000)")), responses((status = 200, description = "Dead letters")))]
pub async fn dead_letter(
    _: Admin,
    State(s): State<IngestState>,
    Query(q): Query<TailQuery>,
) -> Result<Json<Vec<DeadLetterRecord>>, ApiError> {
    let n = q.limit.unwrap_or(50).clamp(1, 1000);
    let tail = s.tail.tail(Topic::DeadLetter, n).await?;
    Ok(Json(
        tail.iter()
            .filter_map(|m| serde_json::from_slice(&m.payload).ok())
            .collect(),
    ))
}
