//! Command-line and environment configuration. Every flag has an environment variable
//! (`CLICKTRAIL_…`) and a default; cross-field rules are checked at start, all at once.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// clicktrail: influencer and affiliate tracking.
#[derive(Debug, Parser)]
#[command(name = "clicktrail", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every role in one process on the embedded log and the Parquet store.
    Serve(ServeArgs),
    /// Run the redirector role on Kafka: `/r/…` and `/ref/…`.
    Redirector(RoleArgs),
    /// Run the ingest role on Kafka: the events API and the admin API.
    Ingest(RoleArgs),
    /// Run the processor role on Kafka and ClickHouse (a member of the processor group).
    Processor(RoleArgs),
    /// Run the query role on ClickHouse: stats, exports, audits and SQL.
    Query(RoleArgs),
}

/// Settings of a role process (`clicktrail redirector|ingest|processor|query`). Settings a
/// role does not use are ignored; the secrets must be the same for every role of a deployment.
#[derive(Debug, Clone, Args)]
pub struct RoleArgs {
    /// Address to listen on; defaults: redirector 8081, ingest 8082, processor 8083, query 8084.
    #[arg(long, env = "CLICKTRAIL_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the local spool (redirector, ingest).
    #[arg(long, env = "CLICKTRAIL_DATA_DIR", default_value = "clicktrail-data")]
    pub data_dir: PathBuf,
    /// Kafka brokers, `host:port[,host:port…]`.
    #[arg(
        long,
        env = "CLICKTRAIL_KAFKA_BROKERS",
        default_value = "127.0.0.1:9092"
    )]
    pub brokers: String,
    /// Prefix of every topic name, so several deployments can share one Kafka cluster.
    #[arg(long, env = "CLICKTRAIL_KAFKA_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,
    /// Partitions of `clicks`, `events` and `impressions` when they are created.
    #[arg(long, env = "CLICKTRAIL_KAFKA_PARTITIONS", default_value_t = 8)]
    pub partitions: u32,
    /// Replication factor of topics created at start.
    #[arg(long, env = "CLICKTRAIL_KAFKA_REPLICATION", default_value_t = 1)]
    pub replication: i32,
    /// How long the producer waits to fill a batch, in milliseconds.
    #[arg(long, env = "CLICKTRAIL_KAFKA_LINGER_MS", default_value_t = 5)]
    pub kafka_linger_ms: u64,
    /// Records per producer batch at most.
    #[arg(long, env = "CLICKTRAIL_KAFKA_BATCH_RECORDS", default_value_t = 10_000)]
    pub kafka_batch_records: usize,
    /// How long a record waits for the broker's acknowledgement before it is spooled, in ms.
    #[arg(
        long,
        env = "CLICKTRAIL_KAFKA_DELIVERY_TIMEOUT_MS",
        default_value_t = 5000
    )]
    pub kafka_delivery_timeout_ms: u64,
    /// Consumer group session timeout (how soon a dead processor is replaced), in ms.
    #[arg(
        long,
        env = "CLICKTRAIL_KAFKA_SESSION_TIMEOUT_MS",
        default_value_t = 45000
    )]
    pub kafka_session_timeout_ms: u64,
    /// A stable name for this processor in its group (Kafka static membership, e.g. the
    /// pod or host name): restarted under the same name, it takes its partitions back at
    /// once. Unique per running processor; unset, a restart waits for a rebalance.
    #[arg(long, env = "CLICKTRAIL_KAFKA_INSTANCE_ID")]
    pub kafka_instance_id: Option<String>,
    /// Further librdkafka settings, `key=value`, repeatable.
    #[arg(long = "kafka-setting", value_name = "KEY=VALUE")]
    pub kafka_settings: Vec<String>,
    /// Records the local spool holds before ingest answers 503 (redirects keep working).
    #[arg(
        long,
        env = "CLICKTRAIL_SPOOL_MAX_RECORDS",
        default_value_t = 1_000_000
    )]
    pub spool_max_records: u64,
    /// ClickHouse HTTP endpoint (processor, query).
    #[arg(
        long,
        env = "CLICKTRAIL_CLICKHOUSE_URL",
        default_value = "http://127.0.0.1:8123"
    )]
    pub clickhouse_url: String,
    /// ClickHouse database, created if missing.
    #[arg(
        long,
        env = "CLICKTRAIL_CLICKHOUSE_DATABASE",
        default_value = "clicktrail"
    )]
    pub clickhouse_database: String,
    /// ClickHouse user.
    #[arg(long, env = "CLICKTRAIL_CLICKHOUSE_USER")]
    pub clickhouse_user: Option<String>,
    /// ClickHouse password.
    #[arg(long, env = "CLICKTRAIL_CLICKHOUSE_PASSWORD", hide_env_values = true)]
    pub clickhouse_password: Option<String>,
    /// Admin bearer token (ingest, query, and the pipeline view).
    #[arg(long, env = "CLICKTRAIL_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Click token keys `id:secret[,id:secret…]` (redirector, processor).
    #[arg(long, env = "CLICKTRAIL_CLICK_KEYS", hide_env_values = true)]
    pub click_keys: Option<String>,
    /// Salt of visitor keys, the same on every redirector (redirector).
    #[arg(long, env = "CLICKTRAIL_VISITOR_SALT", hide_env_values = true)]
    pub visitor_salt: Option<String>,
    /// Base URL shoppers reach the redirectors at (ingest, for link URLs).
    #[arg(long, env = "CLICKTRAIL_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Take client addresses from X-Forwarded-For (redirector; only behind a trusted proxy).
    #[arg(long, env = "CLICKTRAIL_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,
    /// MaxMind-format country database (redirector).
    #[arg(long, env = "CLICKTRAIL_GEO_DB")]
    pub geo_db: Option<PathBuf>,
    /// Largest events request body, in bytes (ingest).
    #[arg(long, env = "CLICKTRAIL_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Consumer group of the processors.
    #[arg(long, env = "CLICKTRAIL_PROCESSOR_GROUP", default_value = "processor")]
    pub group: String,
    /// Records per processor batch at most.
    #[arg(long, env = "CLICKTRAIL_BATCH_MAX_RECORDS", default_value_t = 5000)]
    pub batch_max_records: usize,
    /// Longest a record waits before its batch is written, in milliseconds.
    #[arg(long, env = "CLICKTRAIL_BATCH_MAX_WAIT_MS", default_value_t = 250)]
    pub batch_max_wait_ms: u64,
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
    /// Longest a graceful shutdown may take, in seconds.
    #[arg(long, env = "CLICKTRAIL_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,
}

/// Which role a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `clicktrail redirector`.
    Redirector,
    /// `clicktrail ingest`.
    Ingest,
    /// `clicktrail processor`.
    Processor,
    /// `clicktrail query`.
    Query,
}

impl Role {
    /// The role's name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Redirector => "redirector",
            Role::Ingest => "ingest",
            Role::Processor => "processor",
            Role::Query => "query",
        }
    }

    /// The role's default port.
    pub fn default_port(self) -> u16 {
        match self {
            Role::Redirector => 8081,
            Role::Ingest => 8082,
            Role::Processor => 8083,
            Role::Query => 8084,
        }
    }
}

impl RoleArgs {
    /// Checks what `role` needs and reports every problem at once.
    pub fn validate(&self, role: Role) -> Result<(), String> {
        let mut problems = Vec::new();
        let needs_admin = matches!(role, Role::Ingest | Role::Query | Role::Processor);
        let needs_keys = matches!(role, Role::Redirector | Role::Processor);
        if needs_admin && self.admin_token.is_none() {
            problems.push(format!(
                "--admin-token (CLICKTRAIL_ADMIN_TOKEN) is required by {}",
                role.name()
            ));
        }
        if needs_keys && self.click_keys.is_none() {
            problems.push(format!(
                "--click-keys (CLICKTRAIL_CLICK_KEYS) is required by {}",
                role.name()
            ));
        }
        if role == Role::Redirector && self.visitor_salt.as_deref().is_none_or(|s| s.len() < 16) {
            problems.push(
                "--visitor-salt (CLICKTRAIL_VISITOR_SALT) of at least 16 characters is required by redirector"
                    .to_string(),
            );
        }
        if self.brokers.trim().is_empty() {
            problems.push("--brokers must name at least one broker".to_string());
        }
        if !self
            .topic_prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            problems
                .push("--topic-prefix may hold only letters, digits, '.', '_' and '-'".to_string());
        }
        if self.partitions == 0 {
            problems.push("--partitions must be at least 1".to_string());
        }
        if self.replication < 1 {
            problems.push("--replication must be at least 1".to_string());
        }
        if self.kafka_delivery_timeout_ms < 100 {
            problems.push("--kafka-delivery-timeout-ms must be at least 100".to_string());
        }
        if let Some(id) = &self.kafka_instance_id
            && (id.is_empty() || id.chars().any(char::is_whitespace))
        {
            problems.push(format!(
                "--kafka-instance-id `{id}` must be a non-empty name without spaces"
            ));
        }
        for s in &self.kafka_settings {
            if !s.contains('=') {
                problems.push(format!("--kafka-setting `{s}` must be key=value"));
            }
        }
        if !(self.clickhouse_url.starts_with("http://")
            || self.clickhouse_url.starts_with("https://"))
        {
            problems.push("--clickhouse-url must start with http:// or https://".to_string());
        }
        SharedChecks {
            admin_token: self.admin_token.as_deref(),
            click_keys: self.click_keys.as_deref(),
            public_url: self.public_url.as_deref(),
            geo_db: self.geo_db.as_deref(),
            batch_max_records: self.batch_max_records,
            batch_max_wait_ms: self.batch_max_wait_ms,
            dedup_fp_rate: self.dedup_fp_rate,
            dedup_hourly_capacity: self.dedup_hourly_capacity,
            max_body_bytes: self.max_body_bytes,
        }
        .check(&mut problems);
        outcome(problems)
    }
}

/// `clicktrail serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Directory holding the log, the store and generated secrets.
    #[arg(long, env = "CLICKTRAIL_DATA_DIR", default_value = "clicktrail-data")]
    pub data_dir: PathBuf,
    /// Address to listen on (every API and the redirector share it).
    #[arg(long, env = "CLICKTRAIL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Base URL shoppers reach the redirector at; default `http://<listen>`.
    #[arg(long, env = "CLICKTRAIL_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Admin bearer token; generated once and kept in the data directory when not given.
    #[arg(long, env = "CLICKTRAIL_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Click token keys `id:secret[,id:secret…]`, first one current; generated once when not given.
    #[arg(long, env = "CLICKTRAIL_CLICK_KEYS", hide_env_values = true)]
    pub click_keys: Option<String>,
    /// Take client addresses from X-Forwarded-For (only behind a proxy you trust).
    #[arg(long, env = "CLICKTRAIL_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,
    /// MaxMind-format country database for click geo lookup.
    #[arg(long, env = "CLICKTRAIL_GEO_DB")]
    pub geo_db: Option<PathBuf>,
    /// Longest a click waits in memory before the log makes it durable, in milliseconds.
    #[arg(long, env = "CLICKTRAIL_CLICK_FLUSH_MS", default_value_t = 100)]
    pub click_flush_ms: u64,
    /// Records per processor batch at most.
    #[arg(long, env = "CLICKTRAIL_BATCH_MAX_RECORDS", default_value_t = 5000)]
    pub batch_max_records: usize,
    /// Longest a record waits before its batch is written, in milliseconds.
    #[arg(long, env = "CLICKTRAIL_BATCH_MAX_WAIT_MS", default_value_t = 250)]
    pub batch_max_wait_ms: u64,
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
    /// Largest events request body, in bytes.
    #[arg(long, env = "CLICKTRAIL_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// How often small Parquet files are compacted, in seconds.
    #[arg(long, env = "CLICKTRAIL_COMPACT_EVERY_SECS", default_value_t = 60)]
    pub compact_every_secs: u64,
    /// Longest a graceful shutdown may take, in seconds.
    #[arg(long, env = "CLICKTRAIL_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,
    /// Create a demo advertiser, campaigns, influencers, links and coupons, and drive
    /// synthetic traffic through the HTTP endpoints (implies --trust-forwarded-for).
    #[arg(long)]
    pub demo: bool,
    /// Visitors the demo simulates.
    #[arg(long, env = "CLICKTRAIL_DEMO_VISITORS", default_value_t = 400)]
    pub demo_visitors: usize,
}

impl ServeArgs {
    /// Checks cross-field rules and reports every problem at once.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.click_flush_ms == 0 || self.click_flush_ms > 1000 {
            problems.push("--click-flush-ms must be between 1 and 1000".to_string());
        }
        SharedChecks {
            admin_token: self.admin_token.as_deref(),
            click_keys: self.click_keys.as_deref(),
            public_url: self.public_url.as_deref(),
            geo_db: self.geo_db.as_deref(),
            batch_max_records: self.batch_max_records,
            batch_max_wait_ms: self.batch_max_wait_ms,
            dedup_fp_rate: self.dedup_fp_rate,
            dedup_hourly_capacity: self.dedup_hourly_capacity,
            max_body_bytes: self.max_body_bytes,
        }
        .check(&mut problems);
        outcome(problems)
    }
}

/// Settings `serve` and the roles share, checked the same way.
struct SharedChecks<'a> {
    admin_token: Option<&'a str>,
    click_keys: Option<&'a str>,
    public_url: Option<&'a str>,
    geo_db: Option<&'a std::path::Path>,
    batch_max_records: usize,
    batch_max_wait_ms: u64,
    dedup_fp_rate: f64,
    dedup_hourly_capacity: usize,
    max_body_bytes: usize,
}

impl SharedChecks<'_> {
    fn check(&self, problems: &mut Vec<String>) {
        if self.batch_max_records == 0 {
            problems.push("--batch-max-records must be at least 1".to_string());
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
        if self.max_body_bytes < 1024 {
            problems.push("--max-body-bytes must be at least 1024".to_string());
        }
        if let Some(t) = self.admin_token
            && t.len() < 16
        {
            problems.push("--admin-token must be at least 16 characters".to_string());
        }
        if let Some(k) = self.click_keys
            && let Err(e) = clicktrail_schemas::token::ClickKeys::parse(k)
        {
            problems.push(format!("--click-keys: {e}"));
        }
        if let Some(u) = self.public_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            problems.push("--public-url must start with http:// or https://".to_string());
        }
        if let Some(g) = self.geo_db
            && !g.is_file()
        {
            problems.push(format!("--geo-db {} is not a file", g.display()));
        }
    }
}

fn outcome(problems: Vec<String>) -> Result<(), String> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}
