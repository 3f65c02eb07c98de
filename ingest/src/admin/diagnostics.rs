//! Diagnostics: the tail of the dead-letter topic and the processor's lag per partition.

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
    Router::new()
        .route("/api/v1/admin/dead-letter", get(dead_letter))
        .route("/api/v1/admin/pipeline", get(pipeline))
}

/// The most recent records that could not be processed, newest last, with their reasons.
///
/// A processor that restarts from its checkpoint may set the same record aside again; such a
/// copy (same source topic, partition, offset and reason) is shown once, as its latest.
#[utoipa::path(get, path = "/api/v1/admin/dead-letter", tag = "admin", params(("limit" = Option<usize>, Query, description = "At most this many (default 50, up to 1000)")), responses((status = 200, description = "Dead letters, newest last", body = Vec<DeadLetterRecord>)))]
pub async fn dead_letter(
    _: Admin,
    State(s): State<IngestState>,
    Query(q): Query<TailQuery>,
) -> Result<Json<Vec<DeadLetterRecord>>, ApiError> {
    let n = q.limit.unwrap_or(50).clamp(1, 1000);
    let tail = s
        .tail
        .tail(Topic::DeadLetter, n)
        .await
        .map_err(ApiError::bus_unreadable)?;
    let letters: Vec<DeadLetterRecord> = tail
        .iter()
        .filter_map(|m| serde_json::from_slice(&m.payload).ok())
        .collect();
    Ok(Json(once_each(letters)))
}

/// The letters without earlier copies of the same (source topic, partition, offset, reason),
/// in their order.
fn once_each(letters: Vec<DeadLetterRecord>) -> Vec<DeadLetterRecord> {
    let mut seen = std::collections::HashSet::new();
    let mut latest_first: Vec<DeadLetterRecord> = letters
        .into_iter()
        .rev()
        .filter(|d| {
            seen.insert((
                d.source_topic.clone(),
                d.source_partition,
                d.source_offset,
                d.reason.clone(),
            ))
        })
        .collect();
    latest_first.reverse();
    latest_first
}

/// Processor progress: the group and, per topic it reads, each partition's position.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct PipelineLag {
    /// The processor's consumer group.
    pub group: String,
    /// Records not yet stored, over every topic and partition.
    pub lag: u64,
    /// Per topic (`clicks`, `events`, `events-by-order`, `events-by-customer`), its partitions.
    pub topics: std::collections::BTreeMap<String, Vec<TopicPartitionLag>>,
}

/// One partition's position.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TopicPartitionLag {
    /// Partition.
    pub partition: u32,
    /// Next offset to be written.
    pub end_offset: u64,
    /// Next offset the processor will read.
    pub committed: u64,
    /// `end_offset - committed`.
    pub lag: u64,
}

/// Processor progress per topic it reads (`clicks` and the three topics of the events
/// chain): end offset, committed offset and lag per partition.
#[utoipa::path(get, path = "/api/v1/admin/pipeline", tag = "admin", responses((status = 200, description = "Lag per topic partition", body = PipelineLag), (status = 401, description = "Not admin")))]
pub async fn pipeline(
    _: Admin,
    State(s): State<IngestState>,
) -> Result<Json<PipelineLag>, ApiError> {
    let group = &s.config.processor_group;
    let mut topics = std::collections::BTreeMap::new();
    let mut total = 0u64;
    // In chain order, so that a total of zero means every step is done (see
    // `Topic::PROCESSED`).
    for topic in Topic::PROCESSED {
        let ends = s
            .consumers
            .end_offsets(topic)
            .await
            .map_err(ApiError::bus_unreadable)?;
        let committed = s
            .consumers
            .committed(group, topic)
            .await
            .map_err(ApiError::bus_unreadable)?;
        let mut parts = Vec::new();
        for (p, end) in ends.iter().enumerate() {
            let committed = committed.get(p).copied().flatten().unwrap_or(0);
            let lag = end.saturating_sub(committed);
            total += lag;
            parts.push(TopicPartitionLag {
                partition: p as u32,
                end_offset: *end,
                committed,
                lag,
            });
        }
        topics.insert(topic.name().to_string(), parts);
    }
    Ok(Json(PipelineLag {
        group: group.clone(),
        lag: total,
        topics,
    }))
}
