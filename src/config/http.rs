//! Flags of every HTTP port: connection limits and timeouts, trusted proxies and rate limits
//! (see `clicktrail_api::conn` and `clicktrail_api::rate`).

use clap::Args;
use clicktrail_api::client::TrustedProxies;
use clicktrail_api::conn::ConnLimits;
use clicktrail_api::rate::{Class, RateLimits};
use std::time::Duration;

/// How every port of the process bounds its connections and requests.
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Open connections at most per port; more are answered 503 and closed.
    #[arg(
        long,
        env = "CLICKTRAIL_HTTP_MAX_CONNECTIONS",
        default_value_t = 10_000
    )]
    pub http_max_connections: usize,
    /// Seconds a client has to send a request's line and headers.
    #[arg(
        long,
        env = "CLICKTRAIL_HTTP_HEADER_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub http_header_timeout_secs: u64,
    /// Seconds a client has to send a request's body (then 408).
    #[arg(long, env = "CLICKTRAIL_HTTP_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub http_body_timeout_secs: u64,
    /// Seconds a connection may stay open with no request and no traffic.
    #[arg(long, env = "CLICKTRAIL_HTTP_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub http_idle_timeout_secs: u64,
    /// Proxies whose X-Forwarded-For names the client (addresses and CIDR ranges,
    /// comma-separated); by default no one's.
    #[arg(long, env = "CLICKTRAIL_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// Redirects per second per client address (0: no limit).
    #[arg(long, env = "CLICKTRAIL_RATE_REDIRECTS", default_value_t = 500)]
    pub rate_redirects: u32,
    /// Event requests per second per API key (0: no limit).
    #[arg(long, env = "CLICKTRAIL_RATE_EVENTS", default_value_t = 1000)]
    pub rate_events: u32,
    /// Stats, export and audit requests per second per caller (0: no limit).
    #[arg(long, env = "CLICKTRAIL_RATE_QUERIES", default_value_t = 50)]
    pub rate_queries: u32,
    /// SQL requests per second per caller, in bursts of five times as many (0: no limit).
    #[arg(long, env = "CLICKTRAIL_RATE_SQL", default_value_t = 5)]
    pub rate_sql: u32,
    /// Management API requests per second per caller (0: no limit).
    #[arg(long, env = "CLICKTRAIL_RATE_ADMIN", default_value_t = 100)]
    pub rate_admin: u32,
    /// Browser event requests per second per publishable key (0: no limit).
    #[arg(long, env = "CLICKTRAIL_RATE_BROWSER_KEY", default_value_t = 200)]
    pub rate_browser_key: u32,
    /// Browser event requests per second per client address (0: no limit).
    #[arg(long, env = "CLICKTRAIL_RATE_BROWSER_CLIENT", default_value_t = 20)]
    pub rate_browser_client: u32,
    /// Failed authentications per minute per client address before it is refused (0: no
    /// limit).
    #[arg(long, env = "CLICKTRAIL_RATE_FAILED_AUTH", default_value_t = 30)]
    pub rate_failed_auth: u32,
}

impl HttpArgs {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if let Err(e) = TrustedProxies::parse(&self.trusted_proxies) {
            problems.push(format!("--trusted-proxies: {e}"));
        }
        super::groups::at_least_one(
            problems,
            &[
                ("--http-max-connections", self.http_max_connections as u64),
                ("--http-header-timeout-secs", self.http_header_timeout_secs),
                ("--http-body-timeout-secs", self.http_body_timeout_secs),
                ("--http-idle-timeout-secs", self.http_idle_timeout_secs),
            ],
        );
    }

    /// The connection limits.
    pub fn conn_limits(&self) -> ConnLimits {
        ConnLimits {
            max_connections: self.http_max_connections,
            header_read_timeout: Duration::from_secs(self.http_header_timeout_secs),
            body_read_timeout: Duration::from_secs(self.http_body_timeout_secs),
            idle_timeout: Duration::from_secs(self.http_idle_timeout_secs),
        }
    }

    /// The trusted proxies: everyone when `trust_all` (`--trust-forwarded-for`), else the
    /// listed ones (checked by [`HttpArgs::check`]).
    pub fn trusted(&self, trust_all: bool) -> TrustedProxies {
        if trust_all {
            TrustedProxies::everyone()
        } else {
            TrustedProxies::parse(&self.trusted_proxies).unwrap_or_default()
        }
    }

    /// The rate limits; bursts are twice the rate (five times for SQL).
    pub fn rate_limits(&self, trusted: TrustedProxies) -> RateLimits {
        RateLimits {
            classes: vec![
                (
                    Class::Redirect,
                    self.rate_redirects,
                    self.rate_redirects.saturating_mul(2),
                ),
                (
                    Class::Events,
                    self.rate_events,
                    self.rate_events.saturating_mul(2),
                ),
                (
                    Class::Query,
                    self.rate_queries,
                    self.rate_queries.saturating_mul(2),
                ),
                (Class::Sql, self.rate_sql, self.rate_sql.saturating_mul(5)),
                (
                    Class::Admin,
                    self.rate_admin,
                    self.rate_admin.saturating_mul(2),
                ),
                (
                    Class::Browser,
                    self.rate_browser_key,
                    self.rate_browser_key.saturating_mul(2),
                ),
                (
                    Class::BrowserClient,
                    self.rate_browser_client,
                    self.rate_browser_client.saturating_mul(2),
                ),
            ],
            failed_auth_per_minute: self.rate_failed_auth,
            trusted,
        }
    }
}
