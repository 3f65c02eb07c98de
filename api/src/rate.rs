//! Rate limits of every route class, with the `governor` crate (GCRA, one bucket per key):
//! a request over its limit is answered `429 Too Many Requests` with `Retry-After` (whole
//! seconds until the bucket has room) and counted in [`RATE_LIMITED`] by class.
//!
//! | class | routes | key | default |
//! |---|---|---|---|
//! | `redirect` | `/r/…`, `/ref/…` | client address | 500/s, bursts of 1,000 |
//! | `events` | `/api/v1/events…`, `/api/v1/affiliate/…` | API key | 1,000 requests/s, bursts of 2,000 |
//! | `query` | stats, exports, audits, the ledger, the delivery log | API key, admin token or session | 50/s, bursts of 100 |
//! | `sql` | `/api/v1/sql` | API key or admin token | 5/s, bursts of 25 |
//! | `admin` | `/api/v1/admin/…` | admin token or session | 100/s, bursts of 200 |
//! | `browser` | `/api/v1/browser/…` | publishable key (`key` in the query) | 200/s, bursts of 400 |
//! | `browser_client` | `/api/v1/browser/…` | client address | 20/s, bursts of 40 |
//! | `failed_auth` | any answer 401 | client address | 30 per minute |
//!
//! A request without credentials counts against its client address; an IPv6 client counts by
//! its /64. After `failed_auth` failures in a minute (a browser request's unknown publishable
//! key excepted), every request of that address is refused until the bucket refills
//! (guessing a token or key is thereby limited to 30 tries a minute per address). The client
//! address is the peer's, or, when the peer is a trusted proxy, taken from `X-Forwarded-For`
//! ([`crate::client`]). A limit of 0 turns the class's limit off.

use crate::client::{TrustedProxies, client_addr, limit_key};
use crate::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use clicktrail_schemas::metric_names::http::RATE_LIMITED;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A route class, each with its own limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Shoppers following links.
    Redirect,
    /// Events sent by advertisers.
    Events,
    /// Dashboards, exports and audits.
    Query,
    /// Analyst SQL.
    Sql,
    /// The management API.
    Admin,
    /// Events from web pages, per publishable key.
    Browser,
    /// Events from web pages, per client address (checked beside [`Class::Browser`]).
    BrowserClient,
}

impl Class {
    /// The class of a request path, if it has one (health and metrics have none).
    pub fn of(path: &str) -> Option<Class> {
        let under = |prefix: &str| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        if under("/r") || under("/ref") {
            Some(Class::Redirect)
        } else if under("/api/v1/events")
            || under("/api/v1/affiliate")
            || under("/api/v1/promo/impressions")
        {
            Some(Class::Events)
        } else if under("/api/v1/browser") {
            Some(Class::Browser)
        } else if under("/api/v1/sql") {
            Some(Class::Sql)
        } else if under("/api/v1/admin") {
            Some(Class::Admin)
        } else if under("/api/v1/stats")
            || under("/api/v1/export")
            || under("/api/v1/attribution")
            || under("/api/v1/ledger")
            || under("/api/v1/promo")
            || under("/api/v1/deliveries")
        {
            Some(Class::Query)
        } else {
            None
        }
    }

    /// The label in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Class::Redirect => "redirect",
            Class::Events => "events",
            Class::Query => "query",
            Class::Sql => "sql",
            Class::Admin => "admin",
            Class::Browser => "browser",
            Class::BrowserClient => "browser_client",
        }
    }
}

/// The limits, requests per second with a burst of the given size; 0 turns a limit off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// `(per second, burst)` of each class.
    pub classes: Vec<(Class, u32, u32)>,
    /// Failed authentications per minute and client address.
    pub failed_auth_per_minute: u32,
    /// Which peers may say who the client is.
    pub trusted: TrustedProxies,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            classes: vec![
                (Class::Redirect, 500, 1000),
                (Class::Events, 1000, 2000),
                (Class::Query, 50, 100),
                (Class::Sql, 5, 25),
                (Class::Admin, 100, 200),
                (Class::Browser, 200, 400),
                (Class::BrowserClient, 20, 40),
            ],
            failed_auth_per_minute: 30,
            trusted: TrustedProxies::none(),
        }
    }
}

fn quota(per_second: u32, burst: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(burst.max(per_second))?;
    Some(Quota::per_second(rate).allow_burst(burst))
}

/// Enforces [`RateLimits`] for a process; cheap to clone.
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    classes: HashMap<Class, DefaultKeyedRateLimiter<u64>>,
    failed: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Addresses refused until the given instant, after too many failed authentications.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    trusted: TrustedProxies,
    clock: DefaultClock,
}

/// Keys kept per class before idle ones are forgotten.
const PRUNE_ABOVE: usize = 100_000;

impl RateLimiter {
    /// A limiter enforcing `limits`.
    pub fn new(limits: RateLimits) -> Self {
        let classes = limits
            .classes
            .iter()
            .filter_map(|&(c, rate, burst)| {
                Some((c, DefaultKeyedRateLimiter::dashmap(quota(rate, burst)?)))
            })
            .collect();
        let failed = NonZeroU32::new(limits.failed_auth_per_minute)
            .map(|n| DefaultKeyedRateLimiter::dashmap(Quota::per_minute(n)));
        RateLimiter {
            inner: Arc::new(Inner {
                classes,
                failed,
                blocked: Mutex::default(),
                trusted: limits.trusted,
                clock: DefaultClock::default(),
            }),
        }
    }

    /// The proxies trusted to name the client.
    pub fn trusted(&self) -> &TrustedProxies {
        &self.inner.trusted
    }

    /// Whether `key` may make one more request of `class`; else how long to wait.
    fn check(&self, class: Class, key: u64) -> Result<(), Duration> {
        let Some(limiter) = self.inner.classes.get(&class) else {
            return Ok(());
        };
        if limiter.len() > PRUNE_ABOVE {
            limiter.retain_recent();
        }
        limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(self.inner.clock.now()))
    }

    /// How long `addr` is still refused after failed authentications.
    fn blocked_for(&self, addr: IpAddr) -> Option<Duration> {
        let addr = limit_key(addr);
        let blocked = self.inner.blocked.lock().unwrap_or_else(|e| e.into_inner());
        let until = *blocked.get(&addr)?;
        until.checked_duration_since(Instant::now())
    }

    /// Counts a failed authentication of `addr`; past the limit, blocks it until the bucket
    /// has room again.
    fn failed(&self, addr: IpAddr) {
        let addr = limit_key(addr);
        let Some(failed) = &self.inner.failed else {
            return;
        };
        if failed.len() > PRUNE_ABOVE {
            failed.retain_recent();
        }
        if let Err(not_until) = failed.check_key(&addr) {
            let wait = not_until.wait_time_from(self.inner.clock.now());
            let mut blocked = self.inner.blocked.lock().unwrap_or_else(|e| e.into_inner());
            if blocked.len() > PRUNE_ABOVE {
                let now = Instant::now();
                blocked.retain(|_, until| *until > now);
            }
            blocked.insert(addr, Instant::now() + wait);
        }
    }
}

/// Who a request speaks for: a hash of its credential (`X-API-KEY`, else `Authorization`,
/// else the session cookie), so that no credential is kept in clear; `None` without one. Used
/// by every per-caller limit.
pub fn credential_hash(headers: &axum::http::HeaderMap) -> Option<u64> {
    let value = ["x-api-key", "authorization"]
        .iter()
        .find_map(|name| headers.get(*name).map(|v| v.as_bytes()))
        .or_else(|| {
            crate::session::cookie(headers, crate::session::SESSION_COOKIE).map(str::as_bytes)
        })?;
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    Some(h.finish())
}

/// The key a request counts against: its credential's hash, else its client address's.
fn caller_key(req: &Request, addr: IpAddr) -> u64 {
    credential_hash(req.headers()).unwrap_or_else(|| address_key(addr))
}

/// The publishable key a browser request names (the first `key` of its query, decoded as the
/// route decodes it, so that no spelling of one key gets a bucket of its own), hashed; else
/// its client address's key.
fn publishable_key(req: &Request, addr: IpAddr) -> u64 {
    let named = req.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(name, _)| name == "key")
            .map(|(_, value)| value.into_owned())
            .filter(|k| !k.is_empty())
    });
    match named {
        Some(k) => {
            let mut h = DefaultHasher::new();
            ("publishable", k).hash(&mut h);
            h.finish()
        }
        None => address_key(addr),
    }
}

/// The key of a client address: an IPv6 client counts by its /64 ([`limit_key`]).
fn address_key(addr: IpAddr) -> u64 {
    let mut h = DefaultHasher::new();
    limit_key(addr).hash(&mut h);
    h.finish()
}

fn too_many(class: &'static str, wait: Duration, why: &str) -> Response {
    metrics::counter!(RATE_LIMITED, "class" => class).increment(1);
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    ApiError::TooMany {
        message: format!("{why}; retry in {secs} s"),
        retry_after_secs: secs,
    }
    .into_response()
}

/// The middleware of every port: refuses addresses blocked after failed authentications,
/// applies the request's class limit, and counts a 401 answer as a failed authentication.
pub async fn enforce(State(limiter): State<RateLimiter>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let addr = client_addr(peer, req.headers(), &limiter.inner.trusted);
    req.extensions_mut().insert(crate::logins::ClientAddr(addr));
    if let Some(wait) = limiter.blocked_for(addr) {
        return too_many(
            "failed_auth",
            wait,
            "too many failed authentications from this address",
        );
    }
    let class = Class::of(req.uri().path());
    if let Some(class) = class {
        let key = match class {
            Class::Redirect | Class::BrowserClient => address_key(addr),
            Class::Browser => publishable_key(&req, addr),
            _ => caller_key(&req, addr),
        };
        if class == Class::Browser
            && let Err(wait) = limiter.check(Class::BrowserClient, address_key(addr))
        {
            return too_many(
                Class::BrowserClient.name(),
                wait,
                "too many browser requests from this address",
            );
        }
        if let Err(wait) = limiter.check(class, key) {
            return too_many(
                class.name(),
                wait,
                &format!("too many {} requests", class.name()),
            );
        }
    }
    let browser = class == Some(Class::Browser);
    let resp = next.run(req).await;
    // A page's unknown publishable key is its shop's mistake, not a visitor guessing
    // credentials: it does not block the visitor's address.
    if resp.status() == StatusCode::UNAUTHORIZED && !browser {
        limiter.failed(addr);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_their_class() {
        assert_eq!(Class::of("/r/abc"), Some(Class::Redirect));
        assert_eq!(Class::of("/ref/abc/x"), Some(Class::Redirect));
        assert_eq!(Class::of("/api/v1/events"), Some(Class::Events));
        assert_eq!(Class::of("/api/v1/events/purchase"), Some(Class::Events));
        assert_eq!(Class::of("/api/v1/sql"), Some(Class::Sql));
        assert_eq!(Class::of("/api/v1/browser/events"), Some(Class::Browser));
        assert_eq!(Class::of("/t.js"), None);
        assert_eq!(Class::of("/api/v1/stats/overview"), Some(Class::Query));
        assert_eq!(Class::of("/api/v1/attribution/e1"), Some(Class::Query));
        assert_eq!(Class::of("/api/v1/admin/advertisers"), Some(Class::Admin));
        assert_eq!(Class::of("/health/ready"), None);
        assert_eq!(Class::of("/metrics"), None);
        assert_eq!(Class::of("/rx"), None);
    }

    #[test]
    fn a_class_refuses_past_its_burst_and_keys_are_separate() {
        let limiter = RateLimiter::new(RateLimits {
            classes: vec![(Class::Sql, 1, 3)],
            ..RateLimits::default()
        });
        for _ in 0..3 {
            assert!(limiter.check(Class::Sql, 1).is_ok());
        }
        let wait = limiter.check(Class::Sql, 1).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(
            limiter.check(Class::Sql, 2).is_ok(),
            "another key has its own bucket"
        );
        assert!(
            limiter.check(Class::Events, 1).is_ok(),
            "a class without limit"
        );
    }

    #[test]
    fn failed_authentications_block_an_address_for_a_while() {
        let limiter = RateLimiter::new(RateLimits {
            failed_auth_per_minute: 5,
            ..RateLimits::default()
        });
        let addr = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..5 {
            limiter.failed(addr);
            assert!(limiter.blocked_for(addr).is_none());
        }
        limiter.failed(addr);
        let wait = limiter.blocked_for(addr).expect("blocked");
        assert!(
            wait > Duration::from_secs(5) && wait <= Duration::from_secs(12),
            "{wait:?}"
        );
        assert!(limiter.blocked_for(IpAddr::from([10, 0, 0, 2])).is_none());
    }
}
