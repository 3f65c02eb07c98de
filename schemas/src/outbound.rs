//! Webhooks and postbacks (`docs/integration.md`): the messages on the `outbound` topic and
//! the delivery log's rows (table `deliveries`).
//!
//! A message is produced by the step that decided it (the attribution step for conversions,
//! the ledger step for payouts) and names the position whose stored batch it follows
//! ([`OutboundRecord::after`]): the delivery worker sends nothing before the processor group
//! committed past it, so a receiver never hears of a conversion the store does not hold.

use crate::Topic;
use crate::catalog::WebhookEvent;
use crate::rows::Source;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A stored position: the processor group has committed past `offset` of `partition` of
/// `topic` only once the rows it produced are in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAt {
    /// The topic the deciding step reads.
    pub topic: Topic,
    /// Partition.
    pub partition: u32,
    /// Offset of the record that decided the message.
    pub offset: u64,
}

/// The values a postback URL's macros take, raw (each is URL-encoded when substituted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Macros {
    /// The credited click's token.
    pub click_id: Option<String>,
    /// The sub id the event carried.
    pub sub_id: Option<String>,
    /// The event.
    pub event_id: String,
    /// Its action (`purchase`, `signup`, …).
    pub action: String,
    /// Its amount as a decimal in the currency's unit (`49.90`); none without one.
    pub amount: Option<String>,
    /// ISO 4217 code.
    pub currency: String,
}

/// A replay of one delivery: the same message (same idempotency id), body and target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replay {
    /// The delivery replayed.
    pub delivery_id: String,
    /// `webhook` or `postback`.
    pub target_kind: String,
    /// Its endpoint or postback id.
    pub target_id: String,
    /// Its URL (the expanded one for a postback).
    pub url: String,
    /// Its body (empty for a postback).
    pub body: String,
}

/// One message for an advertiser's webhooks and postbacks (topic `outbound`, keyed by
/// advertiser).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundRecord {
    /// Wire version.
    pub v: u8,
    /// The idempotency id, `msg_…`: the same for every attempt and replay of this message,
    /// derived from what it reports, so that a step that runs again produces the same one.
    pub message_id: String,
    /// What it reports.
    pub event: WebhookEvent,
    /// The advertiser.
    pub advertiser_id: String,
    /// When what it reports happened.
    pub created_at: DateTime<Utc>,
    /// The webhook body's `data` object.
    pub data: serde_json::Value,
    /// For conversions credited to someone: (campaign id, influencer id) and the postback
    /// macros' values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credited: Option<(String, String, Macros)>,
    /// Delivered only once this position is stored; none for a replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<StoredAt>,
    /// A replay of one delivery rather than a new message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<Replay>,
}

/// One delivery attempt (table `deliveries`): what was sent where, and what came back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRow {
    /// The delivery: one message to one target (`dlv_…`); a replay is a delivery of its own.
    pub delivery_id: String,
    /// The message's idempotency id (`Idempotency-Key` header, body's `id`).
    pub message_id: String,
    /// The advertiser.
    pub advertiser_id: String,
    /// `webhook` or `postback`.
    pub target_kind: String,
    /// The endpoint or postback id.
    pub target_id: String,
    /// The message's event (`conversion.attributed`, …).
    pub event: String,
    /// Where it was sent.
    pub url: String,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// When the attempt was made.
    pub at: DateTime<Utc>,
    /// The HTTP status answered; none when no answer came (connection error, timeout).
    pub status: Option<i64>,
    /// `delivered` (2xx), `retrying` (another attempt at `next_attempt_at`) or `failed`
    /// (no attempt left).
    pub outcome: String,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// The first 512 bytes of the answer's body.
    pub response: Option<String>,
    /// When the next attempt is due, while retrying.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Whether this delivery is a replay.
    pub replay: bool,
    /// The body sent (empty for a postback), for replays and audits.
    pub body: String,
    /// The message's position on `outbound`.
    pub source: Source,
}
