//! HTTP plumbing shared by every role: the error type and its JSON body ([`error`]), bounded
//! body reading and JSON parsing that names the failing field ([`body`]), authentication by
//! admin token, API key and request signature ([`auth`]), readiness and shutdown of a process
//! ([`lifecycle`]), the operations routes, request metrics and serving of a port ([`http`]),
//! connection limits and timeouts ([`conn`]), rate limits ([`rate`]), the browsable API
//! reference ([`reference`]) and users' sessions, passwords and CSRF protection ([`session`]).

pub mod auth;
pub mod body;
pub mod client;
pub mod conn;
pub mod error;
pub mod http;
pub mod lifecycle;
pub mod logins;
pub mod rate;
pub mod reference;
pub mod session;

pub use error::{ApiError, ErrorBody, FieldError};
pub use lifecycle::Lifecycle;
