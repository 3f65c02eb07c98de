//! Every metric name clicktrail emits, in one place: `clicktrail_<component>_<noun>_<unit>[_total]`
//! (Prometheus conventions). Labels are bounded: route templates, topics, tables, reasons,
//! statuses, partitions; never raw paths or ids. Metrics are emitted per batch where there is one.
//!
//! Requests are counted once, by the HTTP layer ([`http::HTTP_REQUESTS`]), whatever the role.

/// HTTP requests of every role.
pub mod http {
    /// Requests per route template and status, on every role's HTTP port (redirects included).
    pub const HTTP_REQUESTS: &str = "clicktrail_http_requests_total";
    /// Request latency per route template.
    pub const HTTP_SECONDS: &str = "clicktrail_http_request_duration_seconds";
    /// Connections refused because the port had `--http-max-connections` open.
    pub const CONNECTIONS_REFUSED: &str = "clicktrail_http_connections_refused_total";
    /// Requests answered 429 by a rate limit, labelled by route `class` (`redirect`,
    /// `events`, `query`, `sql`, `admin`, `failed_auth`).
    pub const RATE_LIMITED: &str = "clicktrail_http_rate_limited_total";
}

/// The bus: the embedded log, the Kafka producer and its spool, the catalog follower.
pub mod bus {
    /// Records appended, labelled by topic.
    pub const RECORDS_APPENDED: &str = "clicktrail_bus_records_appended_total";
    /// Commits of the embedded log (each one fsync).
    pub const LOG_COMMITS: &str = "clicktrail_bus_log_commits_total";
    /// Records refused because the producer queue was full, labelled by topic.
    pub const QUEUE_FULL: &str = "clicktrail_bus_queue_full_total";
    /// Catalog changes applied by the follower.
    pub const CATALOG_APPLIED: &str = "clicktrail_bus_catalog_changes_applied_total";
    /// Enqueued records the broker never acknowledged and no spool could take, by topic.
    pub const UNDELIVERED: &str = "clicktrail_bus_undelivered_total";
    /// Records waiting on the local spool, by topic.
    pub const SPOOL_PENDING: &str = "clicktrail_bus_spool_records";
    /// Records replayed from the spool to the broker, by topic.
    pub const SPOOL_REPLAYED: &str = "clicktrail_bus_spool_replayed_total";
    /// Clicks dropped because the spool was past twice its bound, by topic.
    pub const SPOOL_DROPPED: &str = "clicktrail_bus_spool_dropped_total";
    /// Kafka producer clients replaced after failed deliveries or repeated refusals.
    pub const PRODUCER_RENEWED: &str = "clicktrail_bus_producer_renewed_total";
    /// Records removed from the embedded log by retention, by topic.
    pub const RETENTION_REMOVED: &str = "clicktrail_bus_retention_removed_total";
}

/// The redirector.
pub mod redirector {
    /// Clicks that could not be queued for the bus (the redirect was still answered).
    pub const CLICKS_DROPPED: &str = "clicktrail_redirector_clicks_dropped_total";
}

/// The events and admin APIs.
pub mod ingest {
    /// Events accepted (durable), by action.
    pub const EVENTS_ACCEPTED: &str = "clicktrail_ingest_events_accepted_total";
    /// Event requests refused, by status.
    pub const REQUESTS_REFUSED: &str = "clicktrail_ingest_requests_refused_total";
    /// Catalog changes written, by operation.
    pub const CATALOG_WRITES: &str = "clicktrail_ingest_catalog_writes_total";
    /// Newsletter promo impression records accepted (durable).
    pub const IMPRESSIONS_ACCEPTED: &str = "clicktrail_ingest_impressions_accepted_total";
}

/// The processor.
pub mod processor {
    /// Records consumed, by topic.
    pub const RECORDS: &str = "clicktrail_processor_records_total";
    /// Rows written to the store, by table.
    pub const ROWS_WRITTEN: &str = "clicktrail_processor_rows_written_total";
    /// Records set aside to dead-letter, by reason.
    pub const DEAD_LETTERS: &str = "clicktrail_processor_dead_letters_total";
    /// Events dropped as duplicates of an `event_id` already processed.
    pub const DUPLICATE_EVENTS: &str = "clicktrail_processor_duplicate_events_total";
    /// Impressions dropped because their (variation, newsletter send) was already counted.
    pub const DUPLICATE_IMPRESSIONS: &str = "clicktrail_processor_duplicate_impressions_total";
    /// Records one step of the events chain handed on to the next, by topic.
    pub const FORWARDED: &str = "clicktrail_processor_forwarded_total";
    /// Copies a step of the events chain sent again after a restart, dropped by the next step.
    pub const REPLAYED_COPIES: &str = "clicktrail_processor_replayed_copies_total";
    /// Store write attempts that failed and will be retried.
    pub const STORE_RETRIES: &str = "clicktrail_processor_store_retries_total";
    /// Time to write a batch and its checkpoint.
    pub const BATCH_WRITE_SECONDS: &str = "clicktrail_processor_batch_write_seconds";
    /// Records per written batch, by topic.
    pub const BATCH_RECORDS: &str = "clicktrail_processor_batch_records";
    /// Seconds one batch spent in each stage, by topic and `stage`: `poll` (waiting for and
    /// reading its records from the bus), `process` (decode, dedup, attribution), `hand_on`
    /// (records for the next step of the chain and dead letters made durable on the bus),
    /// `store` (rows and checkpoint durable in the store), `commit` (the group's offsets).
    pub const BATCH_STAGE_SECONDS: &str = "clicktrail_processor_batch_stage_seconds";
    /// Bytes of state one partition holds (click dedup filters; remembered event ids, orders
    /// and first touches), by topic and partition.
    pub const STATE_BYTES: &str = "clicktrail_processor_partition_state_bytes";
    /// Partitions this processor holds, by topic.
    pub const PARTITIONS: &str = "clicktrail_processor_partitions";
}

/// The analytics store.
pub mod store {
    /// Seconds one store write spent in each stage, by `stage`: `encode` (rows to Arrow or
    /// ClickHouse's row format), `files` (Parquet files written and fsynced), `manifest` (the
    /// Parquet manifest transaction with the checkpoint, fsynced), `insert` (ClickHouse
    /// inserts of the rows), `checkpoint` (ClickHouse inserts of the state and checkpoint).
    pub const WRITE_STAGE_SECONDS: &str = "clicktrail_store_write_stage_seconds";
}

/// The query service.
pub mod query {
    /// Queries refused or stopped by a limit, labelled by `reason`: `caller_busy` (the caller's
    /// concurrency limit), `capacity` (all query slots busy), `timeout`, `too_complex`,
    /// `memory`, `value_too_large`.
    pub const QUERIES_LIMITED: &str = "clicktrail_query_limited_total";
}
