//! Metric names of the processor, `clicktrail_processor_<noun>_<unit>[_total]`.

/// Records consumed, by topic.
pub const RECORDS: &str = "clicktrail_processor_records_total";
/// Rows written to the store, by table.
pub const ROWS_WRITTEN: &str = "clicktrail_processor_rows_written_total";
/// Records set aside to dead-letter, by reason.
pub const DEAD_LETTERS: &str = "clicktrail_processor_dead_letters_total";
/// Events dropped as duplicates of an `event_id` already processed.
pub const DUPLICATE_EVENTS: &str = "clicktrail_processor_duplicate_events_total";
/// Store write attempts that failed and will be retried.
pub const STORE_RETRIES: &str = "clicktrail_processor_store_retries_total";
/// Time to write a batch and its checkpoint.
pub const BATCH_WRITE_SECONDS: &str = "clicktrail_processor_batch_write_seconds";
/// Records per written batch.
pub const BATCH_RECORDS: &str = "clicktrail_processor_batch_records";
/// Bytes held by click dedup filters, by partition.
pub const DEDUP_BYTES: &str = "clicktrail_processor_dedup_filter_bytes";
/// Partitions this processor holds, by topic.
pub const PARTITIONS: &str = "clicktrail_processor_partitions";
