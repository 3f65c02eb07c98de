//! HTTP API plumbing shared by the API roles (ingest and query): the error type and its JSON
//! body ([`error`]), bounded body reading and JSON parsing that names the failing field
//! ([`body`]), and authentication by admin token, API key and request signature ([`auth`]).

pub mod auth;
pub mod body;
pub mod error;

pub use error::{ApiError, ErrorBody, FieldError};
