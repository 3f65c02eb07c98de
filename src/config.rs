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
        if let Some(u) = &self.public_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            problems.push("--public-url must start with http:// or https://".to_string());
        }
        if let Some(g) = &self.geo_db
            && !g.is_file()
        {
            problems.push(format!("--geo-db {} is not a file", g.display()));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}
