//! Newsletter promos as they travel and are stored (`docs/promos.md`).
//!
//! - [`ImpressionRecord`], on `impressions` (keyed by offer + variation): one variation sent in
//!   one newsletter send to a number of recipients. The processor counts each
//!   (variation, `newsletter_send_id`) once.
//! - [`ImpressionRow`], table `impressions`: a counted send.
//! - [`PromoClickRow`], table `promo_clicks`: a click that came through a variation's link
//!   (`promo_var`), with its visitor key and its bot or scanner flag.

use crate::rows::Source;
use crate::wire::ClickRecord;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

fn v1() -> u8 {
    crate::wire::WIRE_VERSION
}

/// The variation a click came through (`promo_var` on the link).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromoTouch {
    /// The offer.
    pub offer_id: String,
    /// The variation.
    pub variation_id: String,
}

/// One variation sent in one newsletter send (topic `impressions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImpressionRecord {
    /// Wire version.
    #[serde(default = "v1")]
    pub v: u8,
    /// The offer's advertiser.
    pub advertiser_id: String,
    /// The offer.
    pub offer_id: String,
    /// The variation sent.
    pub variation_id: String,
    /// The publisher's id of the send (1 to 128 bytes): a send recorded twice counts once.
    pub newsletter_send_id: String,
    /// How many recipients the send went to (at least 1).
    pub recipients: u64,
    /// When the send was delivered (the publisher's time, else when it was recorded).
    pub sent_at: DateTime<Utc>,
    /// When ingest accepted it.
    pub received_at: DateTime<Utc>,
}

impl ImpressionRecord {
    /// Partition key: offer and variation, so every record of one send meets in one partition.
    pub fn key(&self) -> String {
        format!("{}/{}", self.offer_id, self.variation_id)
    }

    /// The idempotency key within a partition: variation and send.
    pub fn send_key(&self) -> String {
        format!("{}\u{1f}{}", self.variation_id, self.newsletter_send_id)
    }
}

/// A counted send (table `impressions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImpressionRow {
    /// The record as accepted.
    pub impression: ImpressionRecord,
    /// Position on `impressions`.
    pub source: Source,
}

/// A click through a variation's link (table `promo_clicks`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromoClickRow {
    /// The click id (joins to `clicks.click_id` and `events.credited_click_id`).
    pub click_id: String,
    /// The offer's advertiser.
    pub advertiser_id: String,
    /// The offer.
    pub offer_id: String,
    /// The variation.
    pub variation_id: String,
    /// The offer's tracking link.
    pub link_id: String,
    /// When the redirect was answered.
    pub at: DateTime<Utc>,
    /// The visitor key of the click (a cookie's random value, else a salted hash whose salt
    /// changes every UTC day).
    pub visitor_key: String,
    /// Whether a rule of the redirector flagged it as automated (crawler, mail scanner, scanner
    /// network, HEAD request).
    pub is_bot: bool,
    /// Which rule.
    pub bot_reason: Option<String>,
    /// Position on `clicks`.
    pub source: Source,
}

impl PromoClickRow {
    /// The promo row of a click that carries a variation.
    pub fn of(click: &ClickRecord, source: Source) -> Option<PromoClickRow> {
        let promo = click.promo.as_ref()?;
        Some(PromoClickRow {
            click_id: click.click_id.clone(),
            advertiser_id: click.advertiser_id.clone(),
            offer_id: promo.offer_id.clone(),
            variation_id: promo.variation_id.clone(),
            link_id: click.link_id.clone(),
            at: click.at,
            visitor_key: click.visitor_key.clone(),
            is_bot: click.is_bot,
            bot_reason: click.bot_reason.clone(),
            source,
        })
    }
}
