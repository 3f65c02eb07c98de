//! Flags of the production backends (Kafka and ClickHouse), used by the role commands.

use clap::Args;

/// Kafka, and the local spool that keeps redirects and events durable while it is unreachable.
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
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
}

impl KafkaArgs {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
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
    }
}

/// ClickHouse, the store of the processor and query roles.
#[derive(Debug, Clone, Args)]
pub struct ClickHouseArgs {
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
}

impl ClickHouseArgs {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if !(self.clickhouse_url.starts_with("http://")
            || self.clickhouse_url.starts_with("https://"))
        {
            problems.push("--clickhouse-url must start with http:// or https://".to_string());
        }
    }
}
