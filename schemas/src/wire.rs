//! One record type per topic, each with its partition key. JSON, versioned by `v`; see
//! `docs/wire-format.md`. Readers accept unknown fields so producers can add optional ones.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The longest URL clicktrail takes or makes, in bytes: `landing_url` and `referrer` of
/// events, and every redirect `Location` (which is therefore always accepted back as a
/// `landing_url`).
pub const MAX_URL_LEN: usize = 2048;

/// The longest campaign destination, in bytes: [`MAX_URL_LEN`] less room for the `ref_code`
/// and `click_id` a redirect appends (at most about 150 bytes).
pub const MAX_DESTINATION_LEN: usize = 1800;

/// The wire format version written by this build.
pub const WIRE_VERSION: u8 = 1;

fn v1() -> u8 {
    WIRE_VERSION
}

/// One redirect, on the `clicks` topic. Bots and HEAD requests are included, flagged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClickRecord {
    /// Wire version.
    #[serde(default = "v1")]
    pub v: u8,
    /// The click token, also handed to the shopper as `click_id`.
    pub click_id: String,
    /// When the redirect was answered.
    pub at: DateTime<Utc>,
    /// The tracking link.
    pub link_id: String,
    /// The link's short code as requested.
    pub code: String,
    /// Free-form sub id from `/r/{code}/{sub_id}`.
    pub sub_id: Option<String>,
    /// Owner of the campaign.
    pub advertiser_id: String,
    /// The link's campaign.
    pub campaign_id: String,
    /// The link's influencer.
    pub influencer_id: String,
    /// First-party cookie value, else a salted hash of truncated IP and user agent.
    pub visitor_key: String,
    /// `User-Agent` header, cut to 512 bytes.
    pub user_agent: String,
    /// `desktop`, `mobile`, `bot` or `other`.
    pub device_class: String,
    /// `Referer` header.
    pub referrer: Option<String>,
    /// IPv4 /24 or IPv6 /48 network; the full address is never recorded.
    pub ip_prefix: String,
    /// ISO 3166 country when a geo database is configured.
    pub country: Option<String>,
    /// Whether the request looked automated.
    pub is_bot: bool,
    /// Why: `head_request` or `crawler_user_agent`.
    pub bot_reason: Option<String>,
    /// The campaign was outside its live dates: redirected, never credited.
    pub not_live: bool,
    /// The newsletter promo variation the link carried (`promo_var`), when it is a live
    /// variation of an offer on this link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promo: Option<crate::promo::PromoTouch>,
}

impl ClickRecord {
    /// Partition key: the visitor, so one visitor's repeats meet in one partition's dedup state.
    pub fn key(&self) -> &str {
        &self.visitor_key
    }
}

/// The funnel actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A completed order.
    Purchase,
    /// Item added to cart.
    AddToCart,
    /// Account created.
    Signup,
    /// Left the funnel.
    DropOff,
    /// Anything else, with a name.
    Custom,
    /// An order refunded, whole or in part (`order_id`, optional `value`): reduces or voids
    /// the order's commission, or books a clawback once it was paid.
    Refund,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 6] = [
        Action::Purchase,
        Action::AddToCart,
        Action::Signup,
        Action::DropOff,
        Action::Custom,
        Action::Refund,
    ];

    /// The action's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Purchase => "purchase",
            Action::AddToCart => "add_to_cart",
            Action::Signup => "signup",
            Action::DropOff => "drop_off",
            Action::Custom => "custom",
            Action::Refund => "refund",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// An accepted advertiser event, on the `events` topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Wire version.
    #[serde(default = "v1")]
    pub v: u8,
    /// Idempotency key: given by the advertiser, or derived from the event's content.
    pub event_id: String,
    /// The authenticated advertiser.
    pub advertiser_id: String,
    /// Funnel action.
    pub action: Action,
    /// Name of a custom action.
    pub custom_name: Option<String>,
    /// When it happened (default: when received).
    pub occurred_at: DateTime<Utc>,
    /// When ingest accepted it.
    pub received_at: DateTime<Utc>,
    /// Amount in minor units of `currency`.
    pub value_minor: Option<i64>,
    /// ISO 4217 code.
    pub currency: String,
    /// Advertiser's order id.
    pub order_id: Option<String>,
    /// Advertiser's customer id.
    pub customer_id: Option<String>,
    /// Free-form JSON object, serialized.
    pub properties: Option<String>,
    /// Coupon code used.
    pub coupon_code: Option<String>,
    /// Link code passed back by the advertiser.
    pub ref_code: Option<String>,
    /// Click token passed back by the advertiser.
    pub click_id: Option<String>,
    /// The sub id the affiliate or network tracks the click by (as it came to the landing
    /// page, `sub_id`), passed back for postbacks' `{sub_id}`. At most 200 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_id: Option<String>,
    /// Landing page URL, searched for attribution parameters.
    pub landing_url: Option<String>,
    /// Referrer URL, searched for attribution parameters.
    pub referrer: Option<String>,
    /// Where it was sent from: an advertiser's backend (API key) or a web page (publishable
    /// key, through `t.js`). Absent on the wire for `server`.
    #[serde(default, skip_serializing_if = "EventSource::is_server")]
    pub source: EventSource,
    /// A browser purchase its advertiser does not count toward revenue and commissions
    /// (`browser_purchases_count` off, the default): it is stored as a purchase event with
    /// no amount (the amount the page gave is kept in `properties`), claims no order and earns
    /// no commission. Absent on the wire when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub uncounted: bool,
}

/// Where an event was sent from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    /// An advertiser's backend, authenticated by its API key.
    #[default]
    Server,
    /// A web page, through the browser tracker and a publishable key.
    Browser,
}

impl EventSource {
    /// The name stored in the `source` column: `server` or `browser`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventSource::Server => "server",
            EventSource::Browser => "browser",
        }
    }

    /// Whether this is [`EventSource::Server`].
    pub fn is_server(&self) -> bool {
        *self == EventSource::Server
    }
}

impl EventRecord {
    /// Key on `events`: advertiser + event id, so that every copy of an event id meets the
    /// same partition of the event id step whatever else it carries.
    pub fn key(&self) -> String {
        format!("{}:{}", self.advertiser_id, self.event_id)
    }

    /// The purchase order this event claims: its `order_id` when it is a purchase.
    /// An uncounted browser purchase claims none, so that the backend's purchase of the same
    /// order is not taken for its duplicate.
    pub fn purchase_order(&self) -> Option<&str> {
        match self.action {
            Action::Purchase if !self.uncounted => self.order_id.as_deref(),
            _ => None,
        }
    }

    /// Key on `events-by-order`: advertiser + order id for a purchase that carries one, else
    /// advertiser + event id, so that every purchase of an order meets the same partition of
    /// the order step.
    pub fn order_key(&self) -> String {
        let id = self.purchase_order().unwrap_or(&self.event_id);
        format!("{}:{}", self.advertiser_id, id)
    }

    /// Key on `events-by-customer`: advertiser + customer (customer id, else order id, else
    /// event id), so that a customer's first touch lives in one partition of the attribution
    /// step.
    pub fn customer_key(&self) -> String {
        let who = self
            .customer_id
            .as_deref()
            .or(self.order_id.as_deref())
            .unwrap_or(&self.event_id);
        format!("{}:{}", self.advertiser_id, who)
    }
}

/// A position on the bus: partition and offset of one record of a known topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Partition.
    pub partition: u32,
    /// Offset within the partition.
    pub offset: u64,
}

/// An event passed from one step of the events chain to the next (`events-by-order`,
/// `events-by-customer`): the event unchanged, where the step that sent it read it, and
/// where it was first accepted on `events`.
///
/// `from` makes the hand-over exactly once: a step that restarts from its checkpoint sends
/// again what it had sent after that checkpoint, in the same order; the receiving step keeps
/// the highest `from.offset` it took from each partition of the step before and drops
/// anything at or below it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forwarded {
    /// Wire version.
    #[serde(default = "v1")]
    pub v: u8,
    /// Position in the topic the sending step read.
    pub from: Position,
    /// Position on `events`, where ingest appended it.
    pub source: Position,
    /// The event.
    pub event: EventRecord,
}

/// What could not be processed, on the `dead-letter` topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeadLetterRecord {
    /// Wire version.
    #[serde(default = "v1")]
    pub v: u8,
    /// Where the record came from.
    pub source_topic: String,
    /// Its partition.
    pub source_partition: u32,
    /// Its offset.
    pub source_offset: u64,
    /// Its key.
    pub source_key: String,
    /// Why it was set aside, machine-readable (`undecodable`, `duplicate_order`, …).
    pub reason: String,
    /// Human-readable detail.
    pub detail: String,
    /// The original payload, as text (lossy for binary).
    pub payload: String,
    /// When it was set aside.
    pub at: DateTime<Utc>,
}

impl DeadLetterRecord {
    /// Partition key: the source key.
    pub fn key(&self) -> &str {
        &self.source_key
    }
}
