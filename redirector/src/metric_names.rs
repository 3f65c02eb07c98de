//! Metric names of the redirector, `clicktrail_redirector_<noun>_<unit>[_total]`.

/// Redirect requests answered, by status class (`302`, `404`, `405`).
pub const REQUESTS: &str = "clicktrail_redirector_requests_total";
/// Clicks that could not be queued for the bus (the redirect was still answered).
pub const CLICKS_DROPPED: &str = "clicktrail_redirector_clicks_dropped_total";
