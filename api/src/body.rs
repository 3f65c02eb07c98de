//! Reading request bodies: a size limit answered with 413, JSON errors answered with 400 naming
//! the field and what was expected.

use crate::error::ApiError;
use axum::body::{Body, Bytes};
use serde::de::DeserializeOwned;

/// Reads the whole body, refusing more than `limit` bytes with 413.
pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::TooLarge(format!("the request body is larger than {limit} bytes"))
    })
}

/// Parses JSON into `T`, naming the failing field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::field("body", "expected a JSON object, got an empty body"));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::field("body", format!("malformed JSON: {inner}"))
        } else {
            let field = if path == "." { "body".to_string() } else { path };
            ApiError::field(field, inner.to_string())
        }
    })
}
