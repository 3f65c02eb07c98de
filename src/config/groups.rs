//! Groups of flags shared by several commands, each declared once and flattened into the
//! commands that use it, each with the checks of its own fields.

use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where a process listens and keeps its files, its secrets, and how it stops.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Directory for the data: the log, the store and generated secrets (serve), or the local
    /// spool (redirector, ingest).
    #[arg(long, env = "CLICKTRAIL_DATA_DIR", default_value = "clicktrail-data")]
    pub data_dir: PathBuf,
    /// Address to listen on; defaults: serve 127.0.0.1:8080 (every API and the redirector
    /// share it), redirector 8081, ingest 8082, processor 8083, query 8084.
    #[arg(long, env = "CLICKTRAIL_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Base URL shoppers reach the redirector at, for link URLs; default `http://<listen>`
    /// (serve) or `http://127.0.0.1:8081` (ingest).
    #[arg(long, env = "CLICKTRAIL_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Admin bearer token; serve generates one once and keeps it in the data directory when
    /// not given; required by ingest and query.
    #[arg(long, env = "CLICKTRAIL_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Click token keys `id:secret[,id:secret…]`, first one current; serve generates them once
    /// when not given; required by redirector and processor. The same in every role.
    #[arg(long, env = "CLICKTRAIL_CLICK_KEYS", hide_env_values = true)]
    pub click_keys: Option<String>,
    /// Salt of visitor keys, at least 16 characters, the same on every redirector; serve
    /// generates one once when not given; required by redirector.
    #[arg(long, env = "CLICKTRAIL_VISITOR_SALT", hide_env_values = true)]
    pub visitor_salt: Option<String>,
    /// Key from which every API key's and webhook endpoint's signing secret is derived, at
    /// least 32 characters, the same on every ingest and processor; serve generates one once
    /// when not given; required by ingest and processor. Replacing it changes every signing
    /// secret.
    #[arg(long, env = "CLICKTRAIL_SIGNING_KEY", hide_env_values = true)]
    pub signing_key: Option<String>,
    /// Longest a graceful shutdown may take, in seconds.
    #[arg(long, env = "CLICKTRAIL_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,
}

impl CommonArgs {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if let Some(t) = &self.admin_token
            && t.len() < 16
        {
            problems.push("--admin-token must be at least 16 characters".to_string());
        }
        if let Some(k) = &self.click_keys
            && let Err(e) = clicktrail_schemas::token::ClickKeys::parse(k)
        {
            problems.push(format!("--click-keys: {e}"));
        }
        if let Some(s) = &self.visitor_salt
            && s.len() < 16
        {
            problems.push("--visitor-salt must be at least 16 characters".to_string());
        }
        if let Some(k) = &self.signing_key
            && k.len() < 32
        {
            problems.push("--signing-key must be at least 32 characters".to_string());
        }
        if let Some(u) = &self.public_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            problems.push("--public-url must start with http:// or https://".to_string());
        }
    }
}

/// Adds a problem for each flag whose value is 0.
pub(super) fn at_least_one(problems: &mut Vec<String>, flags: &[(&str, u64)]) {
    for (flag, value) in flags {
        if *value == 0 {
            problems.push(format!("{flag} must be at least 1"));
        }
    }
}

/// The redirector's settings.
#[derive(Debug, Clone, Args)]
pub struct RedirectArgs {
    /// Take client addresses from X-Forwarded-For (only behind a proxy you trust).
    #[arg(long, env = "CLICKTRAIL_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,
    /// MaxMind-format country database for click geo lookup.
    #[arg(long, env = "CLICKTRAIL_GEO_DB")]
    pub geo_db: Option<PathBuf>,
    /// Networks (comma-separated addresses and CIDR ranges) whose clicks are flagged as mail
    /// scanners and left out of promo CTRs; the default is Microsoft Exchange Online
    /// Protection's ranges; an empty value flags none.
    #[arg(long, env = "CLICKTRAIL_SCANNER_NETWORKS",
        default_value = clicktrail_redirector::classify::DEFAULT_SCANNER_NETWORKS)]
    pub scanner_networks: String,
}

impl RedirectArgs {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if let Some(g) = &self.geo_db
            && !g.is_file()
        {
            problems.push(format!("--geo-db {} is not a file", g.display()));
        }
        if let Err(e) = clicktrail_api::client::AddressRanges::parse(&self.scanner_networks) {
            problems.push(format!("--scanner-networks: {e}"));
        }
    }
}

/// The events API's settings.
#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    /// Largest events request body, in bytes.
    #[arg(long, env = "CLICKTRAIL_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// How long a user's session lasts after login, in seconds (default 12 hours).
    #[arg(long, env = "CLICKTRAIL_SESSION_TTL_SECS", default_value_t = clicktrail_api::session::DEFAULT_SESSION_TTL_SECS)]
    pub session_ttl_secs: u64,
}

impl IngestArgs {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if self.max_body_bytes < 1024 {
            problems.push("--max-body-bytes must be at least 1024".to_string());
        }
        if !(1..=30 * 86_400).contains(&self.session_ttl_secs) {
            problems.push("--session-ttl-secs must be 1 to 2592000 (30 days)".to_string());
        }
    }
}

/// Bounds on the query service's requests (dashboards, exports, audits, analyst SQL); see
/// `clicktrail_query::limits`.
#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    /// Memory pool of one query request, in MiB; state beyond it fails the query (400).
    #[arg(long, env = "CLICKTRAIL_QUERY_MEMORY_MB", default_value_t = 256)]
    pub query_memory_mb: usize,
    /// Longest a query request may run, in seconds; it is then stopped (503).
    #[arg(long, env = "CLICKTRAIL_QUERY_TIMEOUT_SECS", default_value_t = 30)]
    pub query_timeout_secs: u64,
    /// Query requests of one caller (API key or admin token) running at once; more get 429.
    #[arg(long, env = "CLICKTRAIL_QUERY_PER_CALLER", default_value_t = 2)]
    pub query_per_caller: usize,
    /// Query requests running at once in all; more get 503.
    #[arg(long, env = "CLICKTRAIL_QUERY_TOTAL", default_value_t = 8)]
    pub query_total: usize,
    /// Worker threads that run queries, apart from those that answer redirects and events.
    #[arg(long, env = "CLICKTRAIL_QUERY_THREADS", default_value_t = 2)]
    pub query_threads: usize,
    /// Largest string value a query function may build, in bytes.
    #[arg(long, env = "CLICKTRAIL_QUERY_MAX_VALUE_BYTES", default_value_t = 1024 * 1024)]
    pub query_max_value_bytes: usize,
    /// Most operators (+, AND, =, CASE, …) in one analyst query.
    #[arg(long, env = "CLICKTRAIL_QUERY_MAX_OPERATORS", default_value_t = 500)]
    pub query_max_operators: usize,
    /// Deepest parenthesis nesting in one analyst query.
    #[arg(long, env = "CLICKTRAIL_QUERY_MAX_NESTING", default_value_t = 32)]
    pub query_max_nesting: usize,
}

impl QueryArgs {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        at_least_one(
            problems,
            &[
                ("--query-memory-mb", self.query_memory_mb as u64),
                ("--query-timeout-secs", self.query_timeout_secs),
                ("--query-per-caller", self.query_per_caller as u64),
                ("--query-total", self.query_total as u64),
                ("--query-threads", self.query_threads as u64),
                ("--query-max-value-bytes", self.query_max_value_bytes as u64),
                ("--query-max-operators", self.query_max_operators as u64),
                ("--query-max-nesting", self.query_max_nesting as u64),
            ],
        );
    }

    /// The limits these flags set.
    pub fn limits(&self) -> clicktrail_query::limits::QueryLimits {
        clicktrail_query::limits::QueryLimits {
            memory_bytes: self.query_memory_mb.saturating_mul(1024 * 1024),
            timeout: std::time::Duration::from_secs(self.query_timeout_secs),
            per_caller: self.query_per_caller,
            total: self.query_total,
            threads: self.query_threads,
            max_value_bytes: self.query_max_value_bytes,
            max_operators: self.query_max_operators,
            max_nesting: self.query_max_nesting,
        }
    }
}

/// The processor's settings.
#[derive(Debug, Clone, Args)]
pub struct ProcessorArgs {
    /// Consumer group of the processors (whose lag the pipeline view shows).
    #[arg(long, env = "CLICKTRAIL_PROCESSOR_GROUP", default_value = "processor")]
    pub group: String,
    /// Records per processor batch at most.
    #[arg(long, env = "CLICKTRAIL_BATCH_MAX_RECORDS", default_value_t = 5000)]
    pub batch_max_records: usize,
    /// Longest a record waits before its batch is written, in milliseconds.
    #[arg(long, env = "CLICKTRAIL_BATCH_MAX_WAIT_MS", default_value_t = 250)]
    pub batch_max_wait_ms: u64,
    /// Delay before a failed webhook or postback delivery is retried, in milliseconds; each
    /// later retry waits twice as long as the one before, at most 720 times this (15
    /// attempts: about 32 hours with the default).
    #[arg(
        long,
        env = "CLICKTRAIL_WEBHOOK_RETRY_BASE_MS",
        default_value_t = 30_000
    )]
    pub webhook_retry_base_ms: u64,
    /// Seconds a webhook or postback receiver has to answer.
    #[arg(long, env = "CLICKTRAIL_WEBHOOK_TIMEOUT_SECS", default_value_t = 10)]
    pub webhook_timeout_secs: u64,
    /// Visitor-link pairs per clicks partition per hour the dedup rate holds for.
    #[arg(
        long,
        env = "CLICKTRAIL_DEDUP_HOURLY_CAPACITY",
        default_value_t = 100_000
    )]
    pub dedup_hourly_capacity: usize,
    /// Probability that a new visitor-link pair is mistaken for a repeat.
    #[arg(long, env = "CLICKTRAIL_DEDUP_FP_RATE", default_value_t = 0.01)]
    pub dedup_fp_rate: f64,
    /// Days an `event_id` is remembered per advertiser (by the time events were received): a
    /// copy within this many days of the first is counted once.
    #[arg(long, env = "CLICKTRAIL_EVENT_ID_WINDOW_DAYS", default_value_t = 7)]
    pub event_id_window_days: u64,
    /// Days a purchase's (advertiser, order_id) is remembered: a second purchase of the order
    /// within this many days of the first goes to dead-letter.
    #[arg(long, env = "CLICKTRAIL_ORDER_WINDOW_DAYS", default_value_t = 90)]
    pub order_window_days: u64,
}

impl ProcessorArgs {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if self.group.trim().is_empty() {
            problems.push("--group must not be empty".to_string());
        }
        if self.batch_max_records == 0 {
            problems.push("--batch-max-records must be at least 1".to_string());
        }
        if self.webhook_retry_base_ms == 0 || self.webhook_timeout_secs == 0 {
            problems.push(
                "--webhook-retry-base-ms and --webhook-timeout-secs must be at least 1".to_string(),
            );
        }
        if self.batch_max_wait_ms == 0 {
            problems.push("--batch-max-wait-ms must be at least 1".to_string());
        }
        if !(self.dedup_fp_rate > 0.0 && self.dedup_fp_rate < 0.5) {
            problems.push("--dedup-fp-rate must be above 0 and below 0.5".to_string());
        }
        if self.dedup_hourly_capacity == 0 {
            problems.push("--dedup-hourly-capacity must be at least 1".to_string());
        }
        if !(1..=3650).contains(&self.event_id_window_days) {
            problems.push("--event-id-window-days must be between 1 and 3650".to_string());
        }
        if !(1..=3650).contains(&self.order_window_days) {
            problems.push("--order-window-days must be between 1 and 3650".to_string());
        }
    }
}

/// The embedded default's log and store (serve).
#[derive(Debug, Clone, Args)]
pub struct EmbeddedArgs {
    /// Longest a click waits in memory before the log makes it durable, in milliseconds.
    #[arg(long, env = "CLICKTRAIL_CLICK_FLUSH_MS", default_value_t = 100)]
    pub click_flush_ms: u64,
    /// How often small Parquet files are compacted, in seconds.
    #[arg(long, env = "CLICKTRAIL_COMPACT_EVERY_SECS", default_value_t = 60)]
    pub compact_every_secs: u64,
    /// Hours the log keeps records of every topic but `catalog` once the processor has
    /// committed past them; 0 keeps them forever.
    #[arg(long, env = "CLICKTRAIL_LOG_RETENTION_HOURS", default_value_t = 168)]
    pub log_retention_hours: u64,
    /// Megabytes per topic partition above which the oldest records the processor has
    /// committed past are removed; 0: no size limit.
    #[arg(long, env = "CLICKTRAIL_LOG_RETENTION_MB", default_value_t = 1024)]
    pub log_retention_mb: u64,
    /// Seconds between retention passes over the log.
    #[arg(
        long,
        env = "CLICKTRAIL_LOG_RETENTION_INTERVAL_SECS",
        default_value_t = 60
    )]
    pub log_retention_interval_secs: u64,
}

impl EmbeddedArgs {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if self.click_flush_ms == 0 || self.click_flush_ms > 1000 {
            problems.push("--click-flush-ms must be between 1 and 1000".to_string());
        }
        if self.log_retention_interval_secs == 0 {
            problems.push("--log-retention-interval-secs must be at least 1".to_string());
        }
    }
}
