//! Metric names of ingest, `clicktrail_ingest_<noun>_<unit>[_total]`.

/// Events accepted (durable), by action.
pub const EVENTS_ACCEPTED: &str = "clicktrail_ingest_events_accepted_total";
/// Event requests refused, by status.
pub const REQUESTS_REFUSED: &str = "clicktrail_ingest_requests_refused_total";
/// Catalog changes written, by operation.
pub const CATALOG_WRITES: &str = "clicktrail_ingest_catalog_writes_total";
