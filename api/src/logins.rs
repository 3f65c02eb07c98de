//! Rate limits of the login, set-password and password-change routes, and the client address
//! the rate-limit middleware found for a request.

use crate::error::ApiError;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

/// Rate limits of the login and password routes (the `governor` crate): per account (the
/// email address, lower-cased) and per client address, counting every attempt.
#[derive(Clone)]
pub struct LoginLimiter {
    per_account: Arc<DefaultKeyedRateLimiter<String>>,
    per_address: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

/// Attempts per account per minute (bursts of as many).
pub const LOGIN_PER_ACCOUNT_PER_MINUTE: u32 = 5;
/// Attempts per client address per minute (bursts of as many).
pub const LOGIN_PER_ADDRESS_PER_MINUTE: u32 = 20;

impl Default for LoginLimiter {
    fn default() -> Self {
        let q = |n: u32| Quota::per_minute(NonZeroU32::new(n).expect("non-zero"));
        LoginLimiter {
            per_account: Arc::new(DefaultKeyedRateLimiter::dashmap(q(
                LOGIN_PER_ACCOUNT_PER_MINUTE,
            ))),
            per_address: Arc::new(DefaultKeyedRateLimiter::dashmap(q(
                LOGIN_PER_ADDRESS_PER_MINUTE,
            ))),
        }
    }
}

impl LoginLimiter {
    /// Counts one attempt for `account` (if known from the request) from `addr`.
    /// Errors: 429 with `Retry-After` once either is over its limit.
    pub fn check(&self, account: Option<&str>, addr: IpAddr) -> Result<(), ApiError> {
        let clock = DefaultClock::default();
        let too_many = |wait: std::time::Duration, what: &str| {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            metrics::counter!(clicktrail_schemas::metric_names::http::RATE_LIMITED, "class" => "login")
                .increment(1);
            ApiError::TooMany {
                message: format!("too many login or password attempts {what}; retry in {secs} s"),
                retry_after_secs: secs,
            }
        };
        if self.per_account.len() > 100_000 {
            self.per_account.retain_recent();
        }
        if self.per_address.len() > 100_000 {
            self.per_address.retain_recent();
        }
        // An IPv6 client holds a whole /64: it counts as one address.
        let addr = crate::client::limit_key(addr);
        self.per_address
            .check_key(&addr)
            .map_err(|n| too_many(n.wait_time_from(clock.now()), "from this address"))?;
        if let Some(account) = account {
            self.per_account
                .check_key(&clicktrail_schemas::catalog::email_key(account))
                .map_err(|n| too_many(n.wait_time_from(clock.now()), "for this account"))?;
        }
        Ok(())
    }
}

/// The client address the rate-limit middleware found for a request (the peer, or the
/// trusted proxy's `X-Forwarded-For`), as a request extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);
