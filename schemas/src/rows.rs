//! Store rows: what the processor writes and the query service reads.

use crate::attribution::{Candidate, Conflict, TouchSource, TouchStatus};
use crate::wire::{ClickRecord, EventRecord};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a row came from on the bus; used to make replays idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Source {
    /// Partition of the source topic.
    pub partition: u32,
    /// Offset within it.
    pub offset: u64,
}

/// A raw click with its dedup verdict (table `clicks`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClickRow {
    /// The click as redirected.
    pub click: ClickRecord,
    /// First click of this visitor on this link within 24 hours.
    pub is_unique: bool,
    /// Bus position.
    pub source: Source,
}

/// How an event was attributed (or why not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Attribution {
    /// Whether some influencer was credited.
    pub attributed: bool,
    /// The rule that decided; `None` when unattributed (stored as an empty string).
    pub attributed_by: Option<TouchSource>,
    /// Credited campaign.
    pub campaign_id: Option<String>,
    /// Credited influencer.
    pub influencer_id: Option<String>,
    /// Credited link, when a link decided.
    pub link_id: Option<String>,
    /// Credited coupon, when a coupon decided.
    pub coupon_id: Option<String>,
    /// Why no credit: the status of the first candidate (`expired` first), or `no_touch`.
    pub reason: Option<TouchStatus>,
    /// Every candidate touch considered, in waterfall order (stored as a JSON array).
    pub candidates: Vec<Candidate>,
    /// The click token that decided, when a click did (joins to `clicks.click_id`).
    pub credited_click_id: Option<String>,
    /// Click time of the deciding click, when one decided or expired.
    pub click_at: Option<DateTime<Utc>>,
    /// Attribution window applied, in seconds.
    pub window_secs: Option<i64>,
    /// Competing touches that were not credited (stored as a JSON array, null when none).
    pub conflicts: Vec<Conflict>,
}

/// An event with its attribution (table `events`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    /// The event as accepted.
    pub event: EventRecord,
    /// How it was attributed.
    pub attribution: Attribution,
    /// Bus position.
    pub source: Source,
}
