//! Waiting for the pipeline: a stats, export, audit or SQL request with `wait=<seconds>` (1 to
//! 30) is answered once the processor has stored everything the bus held when the request
//! arrived, or when the wait runs out, whichever is first. The answer's `X-Clicktrail-Pending`
//! header says how many records were still on their way (0: the answer includes everything
//! accepted before the request).
//!
//! "Stored" is read from the processor group's committed positions, which move only after the
//! store acknowledged a batch. The topics are checked in chain order (`clicks`, then
//! `events`, `events-by-order`, `events-by-customer`): a step commits only after it handed its
//! records on, so once a topic is committed up to the end it had at the start of its check, the
//! next topic's end already holds what that step handed on.

use crate::QueryState;
use crate::scope::Scope;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use clicktrail_api::error::{ApiError, FieldError};
use clicktrail_bus::ConsumerFactory;
use clicktrail_schemas::Topic;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest wait a request may ask for, in seconds.
pub const MAX_WAIT_SECS: u64 = 30;
/// The answer header with the records still on their way.
pub const PENDING_HEADER: &str = "x-clicktrail-pending";

/// Where the processor's progress is read.
#[derive(Clone)]
pub struct Pipeline {
    /// The bus.
    pub consumers: Arc<dyn ConsumerFactory>,
    /// The processor's consumer group.
    pub group: String,
}

impl Pipeline {
    /// Records on the processed topics the group has not committed yet.
    async fn pending(&self, topic: Topic) -> Result<u64, String> {
        let ends = self
            .consumers
            .end_offsets(topic)
            .await
            .map_err(|e| e.to_string())?;
        let committed = self
            .consumers
            .committed(&self.group, topic)
            .await
            .map_err(|e| e.to_string())?;
        Ok(ends
            .iter()
            .enumerate()
            .map(|(p, end)| end.saturating_sub(committed.get(p).copied().flatten().unwrap_or(0)))
            .sum())
    }

    /// Waits up to `limit` for every record on the bus now to be stored; the records still
    /// pending when it returns.
    pub async fn wait_stored(&self, limit: Duration) -> Result<u64, String> {
        let deadline = Instant::now() + limit;
        for topic in Topic::PROCESSED {
            // The end now: for a later topic of the chain, it already holds what the earlier
            // steps handed on from the records waited for.
            let target = self
                .consumers
                .end_offsets(topic)
                .await
                .map_err(|e| e.to_string())?;
            loop {
                let committed = self
                    .consumers
                    .committed(&self.group, topic)
                    .await
                    .map_err(|e| e.to_string())?;
                let behind = target
                    .iter()
                    .enumerate()
                    .any(|(p, end)| committed.get(p).copied().flatten().unwrap_or(0) < *end);
                if !behind {
                    break;
                }
                if Instant::now() >= deadline {
                    let mut pending = 0;
                    for t in Topic::PROCESSED {
                        pending += self.pending(t).await?;
                    }
                    return Ok(pending);
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        Ok(0)
    }
}

/// The `wait` parameter of a query string, in seconds.
///
/// Errors: not a whole number from 1 to [`MAX_WAIT_SECS`].
pub fn wait_param(query: Option<&str>) -> Result<Option<Duration>, ApiError> {
    let Some(raw) = query.into_iter().flat_map(|q| q.split('&')).find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == "wait").then_some(v)
    }) else {
        return Ok(None);
    };
    match raw.parse::<u64>() {
        Ok(s) if (1..=MAX_WAIT_SECS).contains(&s) => Ok(Some(Duration::from_secs(s))),
        _ => Err(ApiError::fields(vec![FieldError::new(
            "wait",
            format!("expected whole seconds from 1 to {MAX_WAIT_SECS}"),
        )])),
    }
}

/// Middleware: honours `wait` before the request is answered and reports what is pending.
///
/// It runs inside the query limits (a waiting request holds one of its caller's query slots)
/// and only for a caller with valid credentials: anyone else is refused at once, and learns
/// nothing about the pipeline.
pub async fn honour_wait(State(state): State<QueryState>, req: Request, next: Next) -> Response {
    let wait = match wait_param(req.uri().query()) {
        Ok(w) => w,
        Err(e) => return e.into_response(),
    };
    let pending = match (wait, &state.pipeline) {
        (Some(limit), Some(p)) => {
            if let Err(e) = Scope::caller(req.headers(), &state) {
                return e.into_response();
            }
            match p.wait_stored(limit).await {
                Ok(n) => Some(n),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the processor's progress");
                    None
                }
            }
        }
        _ => None,
    };
    let mut resp = next.run(req).await;
    if let Some(n) = pending
        && resp.status().is_success()
    {
        resp.headers_mut().insert(PENDING_HEADER, n.into());
    }
    resp
}
