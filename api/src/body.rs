//! Reading request bodies: a size limit answered with 413, JSON errors answered with 400 naming
//! the field and what was expected.

use crate::error::ApiError;
use axum::body::{Body, Bytes};
use serde::de::DeserializeOwned;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Over-limit bytes read and thrown away so the client can read the 413 before the
/// connection closes; past this the connection is simply closed.
const DISCARD_CAP: usize = 64 * 1024 * 1024;

/// How long reading one body may take, in milliseconds (see [`set_read_timeout`]).
static READ_TIMEOUT_MS: AtomicU64 = AtomicU64::new(30_000);

/// Sets how long [`read_limited`] waits for a whole body, for every port of the process
/// (`--http-body-timeout-secs`).
pub fn set_read_timeout(timeout: Duration) {
    READ_TIMEOUT_MS.store(timeout.as_millis() as u64, Ordering::Relaxed);
}

/// Reads the whole body, refusing more than `limit` bytes with 413 and a body that takes
/// longer than the read timeout (default 30 s) with 408.
pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let timeout = Duration::from_millis(READ_TIMEOUT_MS.load(Ordering::Relaxed));
    tokio::time::timeout(timeout, read(body, limit))
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::Timeout(format!(
                "the request body did not arrive within {} s",
                timeout.as_secs_f64()
            )))
        })
}

async fn read(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::field("body", format!("could not read the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen <= limit {
                buf.extend_from_slice(&data);
            } else if seen > DISCARD_CAP {
                break;
            }
        }
    }
    if seen > limit {
        return Err(ApiError::TooLarge(format!(
            "the request body is larger than {limit} bytes"
        )));
    }
    Ok(Bytes::from(buf))
}

/// Parses JSON into `T`, naming the failing field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::field(
            "body",
            "expected a JSON object, got an empty body",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::field("body", format!("malformed JSON: {inner}"))
        } else {
            let field = if path == "." {
                "body".to_string()
            } else {
                path
            };
            ApiError::field(field, inner.to_string())
        }
    })
}
