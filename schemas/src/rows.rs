//! Store rows: what the processor writes and the query service reads.

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
    /// The rule that decided: `coupon`, `click_id`, `ref_code`, `landing_url`, `referrer`,
    /// `first_touch`; empty when unattributed.
    pub attributed_by: String,
    /// Credited campaign.
    pub campaign_id: Option<String>,
    /// Credited influencer.
    pub influencer_id: Option<String>,
    /// Credited link, when a link decided.
    pub link_id: Option<String>,
    /// Credited coupon, when a coupon decided.
    pub coupon_id: Option<String>,
    /// Why no credit (`no_touch`, `expired`, `campaign_not_live`, …), or a note.
    pub reason: Option<String>,
    /// Every candidate touch considered, as JSON.
    pub candidates: String,
    /// The click token that decided, when a click did (joins to `clicks.click_id`).
    pub credited_click_id: Option<String>,
    /// Click time of the deciding click, when one decided or expired.
    pub click_at: Option<DateTime<Utc>>,
    /// Attribution window applied, in seconds.
    pub window_secs: Option<i64>,
    /// A competing touch that was not credited, as JSON.
    pub conflict: Option<String>,
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
