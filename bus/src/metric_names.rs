//! Metric names of the bus, `clicktrail_bus_<noun>_<unit>[_total]`.

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
