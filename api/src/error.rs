//! API errors: every failure maps to one status and a JSON body that says what to do.
//!
//! Body: `{"error": "<code>", "message": "<text>", "fields": [{"field", "message"}]}`;
//! `fields` lists every field error at once (400 only).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use clicktrail_bus::{BusError, CatalogWriteError};
use serde::Serialize;

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Path of the field, such as `events[2].value`.
    pub field: String,
    /// What was expected.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An error answered to an API caller.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or fields are invalid.
    #[error("{message}")]
    Invalid {
        /// Summary.
        message: String,
        /// Every field error.
        fields: Vec<FieldError>,
    },
    /// 401: missing or wrong credentials or signature.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such resource.
    #[error("{0}")]
    NotFound(String),
    /// 409: conflicts with the current state (a taken code).
    #[error("{0}")]
    Conflict(String),
    /// 413: body or batch too large.
    #[error("{0}")]
    TooLarge(String),
    /// 408: the request did not arrive in time; the connection is closed.
    #[error("{0}")]
    Timeout(String),
    /// 429: the caller sent too much too fast; `Retry-After` says when to try again.
    #[error("{message}")]
    TooMany {
        /// Which limit, and how to stay under it.
        message: String,
        /// Seconds until a retry may succeed (at least 1).
        retry_after_secs: u64,
    },
    /// 503: try again shortly.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a fault of ours; the message is logged, not shown.
    #[error("internal error")]
    Internal(String),
}

/// The JSON error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code: `invalid_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `payload_too_large`, `request_timeout`, `too_many_requests`, `unavailable`,
    /// `internal`.
    pub error: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// Field errors (400 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

impl ApiError {
    /// A 400 with field errors.
    pub fn fields(fields: Vec<FieldError>) -> Self {
        let message = match fields.len() {
            1 => format!("{}: {}", fields[0].field, fields[0].message),
            n => format!("{n} fields are invalid"),
        };
        ApiError::Invalid { message, fields }
    }

    /// A 400 for one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::fields(vec![FieldError::new(field, message)])
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Timeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::TooMany { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(detail = %detail, "internal error");
        }
        let (status, error) = self.status_and_code();
        let message = self.to_string();
        let retry_after = match &self {
            ApiError::TooMany {
                retry_after_secs, ..
            } => (*retry_after_secs).max(1),
            _ => 1,
        };
        let fields = match self {
            ApiError::Invalid { fields, .. } => fields,
            _ => Vec::new(),
        };
        let mut resp = (
            status,
            Json(ErrorBody {
                error,
                message,
                fields,
            }),
        )
            .into_response();
        match status {
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            StatusCode::REQUEST_TIMEOUT => {
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            StatusCode::UNAUTHORIZED => {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        resp
    }
}

impl ApiError {
    /// A write to the bus that failed: the record is not durable and the caller should send it
    /// again (503 with `Retry-After`).
    pub fn not_durable(e: BusError) -> Self {
        tracing::warn!(error = %e, "bus write failed");
        ApiError::Unavailable(format!(
            "the record could not be made durable ({e}); retry shortly"
        ))
    }

    /// A read from the bus that failed (a tail, offsets, positions): nothing was written, the
    /// caller may ask again (503 with `Retry-After`).
    pub fn bus_unreadable(e: BusError) -> Self {
        tracing::warn!(error = %e, "bus read failed");
        ApiError::Unavailable(format!("the bus could not be read ({e}); retry shortly"))
    }
}

impl From<CatalogWriteError> for ApiError {
    fn from(e: CatalogWriteError) -> Self {
        match e {
            CatalogWriteError::Conflict(c) => ApiError::Conflict(c.to_string()),
            CatalogWriteError::Bus(b) => ApiError::not_durable(b),
            CatalogWriteError::Timeout(_) => ApiError::Unavailable(e.to_string()),
        }
    }
}
