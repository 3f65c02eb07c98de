//! The commission ledger as it travels and is stored (`docs/commissions.md`).
//!
//! - [`OrderEvent`], on `commissions` (keyed by advertiser + order id): a purchase after
//!   attribution with the commission it earned ([`Booking`]), or a refund to match to one.
//! - [`LedgerRecord`], on `ledger` (keyed by influencer): one [`LedgerOp`], from the commission
//!   step (book, reverse) or from ingest (payout request, payment, cancellation, review).
//! - [`LedgerRow`], table `ledger`: one movement of money between two statuses. The ledger is
//!   append-only and double-entry: a commission books `+amount` into `pending` (or `review`);
//!   a payout request moves it out of `available` (`-amount`) into `requested` (`+amount`);
//!   a payment from `requested` into `paid`. The balance of a status is the sum of its
//!   movements, with `pending` counted as `available` once its `available_at` has passed.

use crate::attribution::TouchSource;
use crate::rows::Source;
use crate::wire::{Action, EventRecord, Position};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

fn v1() -> u8 {
    crate::wire::WIRE_VERSION
}

/// A status of ledger money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerStatus {
    /// Booked, within its hold period.
    Pending,
    /// Past its hold: may be requested as a payout.
    Available,
    /// Held for review by a fraud rule.
    Review,
    /// Rejected on review: never paid.
    Rejected,
    /// In a payout request.
    Requested,
    /// Paid out.
    Paid,
}

impl LedgerStatus {
    /// Every status, in the order balances list them.
    pub const ALL: [LedgerStatus; 6] = [
        LedgerStatus::Pending,
        LedgerStatus::Available,
        LedgerStatus::Review,
        LedgerStatus::Requested,
        LedgerStatus::Paid,
        LedgerStatus::Rejected,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerStatus::Pending => "pending",
            LedgerStatus::Available => "available",
            LedgerStatus::Review => "review",
            LedgerStatus::Rejected => "rejected",
            LedgerStatus::Requested => "requested",
            LedgerStatus::Paid => "paid",
        }
    }
}

/// What a ledger movement records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A commission booked (`+` into `pending` or `review`).
    Commission,
    /// A refund reducing an unpaid commission (`-` from the status it is in).
    Refund,
    /// A refund of a paid commission: `-` into `available`, netted from the next payout.
    Clawback,
    /// A payout request: `-` from `available`, `+` into `requested`.
    PayoutRequest,
    /// A payment: `-` from `requested`, `+` into `paid`.
    PayoutPaid,
    /// A cancelled request: `-` from `requested`, `+` back into `available`.
    PayoutCancelled,
    /// A payout request that found nothing to pay (amount 0; `note` says why).
    PayoutRefused,
    /// A held commission approved: `-` from `review`, `+` into `pending`.
    Approved,
    /// A held commission rejected: `-` from `review`, `+` into `rejected`.
    Rejected,
}

impl EntryKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Commission => "commission",
            EntryKind::Refund => "refund",
            EntryKind::Clawback => "clawback",
            EntryKind::PayoutRequest => "payout_request",
            EntryKind::PayoutPaid => "payout_paid",
            EntryKind::PayoutCancelled => "payout_cancelled",
            EntryKind::PayoutRefused => "payout_refused",
            EntryKind::Approved => "approved",
            EntryKind::Rejected => "rejected",
        }
    }
}

/// A fraud rule that holds a commission for review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FraudRule {
    /// The conversion came less than the plan's `min_click_secs` after its click.
    ClickInjection,
    /// The customer is the influencer.
    SelfReferral,
}

impl FraudRule {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            FraudRule::ClickInjection => "click_injection",
            FraudRule::SelfReferral => "self_referral",
        }
    }
}

/// A commission as the attribution step computed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Booking {
    /// `com_` and 24 hex digits of SHA-256(advertiser, event id): the same on every replay.
    pub commission_id: String,
    /// Who earned it.
    pub influencer_id: String,
    /// The credited campaign.
    pub campaign_id: String,
    /// The rule that credited the conversion.
    pub attributed_by: TouchSource,
    /// The credited click, when a click decided (its sub id is the click's).
    pub click_id: Option<String>,
    /// Minor units of `currency`, above zero.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// When the hold ends: the conversion's time plus the plan's hold.
    pub available_at: DateTime<Utc>,
    /// The fraud rule that holds it for review, if one does.
    pub hold: Option<FraudRule>,
    /// What the rule saw, for the audit.
    pub hold_detail: Option<String>,
    /// The plan's minimum payout in `currency`, if it has one.
    pub min_payout_minor: Option<i64>,
}

/// A stable id from parts: `prefix` and 24 hex digits of SHA-256 over the NUL-joined parts.
pub fn stable_id(prefix: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    let mut id = String::with_capacity(prefix.len() + 25);
    id.push_str(prefix);
    id.push('_');
    for b in &digest[..12] {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// A purchase or refund after attribution, on `commissions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderEvent {
    /// Wire version.
    #[serde(default = "v1")]
    pub v: u8,
    /// Position on `events-by-customer` (see `Forwarded::from`).
    pub from: Position,
    /// Position on `events`, where ingest appended it.
    pub source: Position,
    /// The event.
    pub event: EventRecord,
    /// The commission a purchase earned; none for a refund or a purchase that earned none.
    pub booking: Option<Booking>,
}

impl OrderEvent {
    /// Key on `commissions`: advertiser + order id (event id when it has none), so that a
    /// refund meets its purchase.
    pub fn key(&self) -> String {
        let id = self
            .event
            .order_id
            .as_deref()
            .unwrap_or(&self.event.event_id);
        format!("{}:{}", self.event.advertiser_id, id)
    }
}

/// A refund that arrived before its purchase, applied when the purchase is booked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarlyRefund {
    /// The refund event.
    pub event_id: String,
    /// Minor units of the commission to take back, above zero.
    pub amount_minor: i64,
    /// When the refund was received.
    pub at: DateTime<Utc>,
}

/// One operation on an influencer's ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LedgerOp {
    /// Book a commission.
    Book {
        /// The commission.
        booking: Booking,
        /// The advertiser who owes it.
        advertiser_id: String,
        /// The converting event.
        event_id: String,
        /// Its order, for a purchase.
        order_id: Option<String>,
        /// `purchase` or `signup`.
        action: Action,
        /// When the conversion happened.
        occurred_at: DateTime<Utc>,
        /// When it was received: the ledger's time for this operation.
        received_at: DateTime<Utc>,
        /// Refunds of this order that reached the commission step before the purchase did
        /// (events of one order may travel different partitions), taken back right after the
        /// commission is booked, in the order they arrived.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        early_refunds: Vec<EarlyRefund>,
    },
    /// Take back part or all of a commission for a refund.
    Reverse {
        /// The commission.
        commission_id: String,
        /// Its advertiser.
        advertiser_id: String,
        /// Minor units to take back, above zero.
        amount_minor: i64,
        /// The refund event.
        event_id: String,
        /// The refunded order.
        order_id: String,
        /// When the refund was received.
        at: DateTime<Utc>,
    },
    /// Request a payout of everything available.
    RequestPayout {
        /// Request id (`prq_…`); each payout made from it has a stable id derived from it.
        request_id: String,
        /// Only this advertiser's commissions; none for every advertiser.
        advertiser_id: Option<String>,
        /// Only this currency; none for every currency.
        currency: Option<String>,
        /// Who asked: a user id, or `admin-token`.
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Record a requested payout as paid.
    MarkPaid {
        /// The payout.
        payout_id: String,
        /// The payment's reference (bank transfer, PayPal id, …).
        reference: String,
        /// Who recorded it.
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Cancel a requested payout: its money is available again.
    CancelPayout {
        /// The payout.
        payout_id: String,
        /// Why.
        reason: String,
        /// Who cancelled it.
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Decide on a commission held for review.
    Review {
        /// The commission.
        commission_id: String,
        /// Approve (it becomes pending, then available) or reject (never paid).
        approve: bool,
        /// The reviewer's note.
        note: String,
        /// Who decided.
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
}

impl LedgerOp {
    /// The operation's time: when it was received.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            LedgerOp::Book { received_at, .. } => *received_at,
            LedgerOp::Reverse { at, .. }
            | LedgerOp::RequestPayout { at, .. }
            | LedgerOp::MarkPaid { at, .. }
            | LedgerOp::CancelPayout { at, .. }
            | LedgerOp::Review { at, .. } => *at,
        }
    }
}

/// An operation on `ledger`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerRecord {
    /// Wire version.
    #[serde(default = "v1")]
    pub v: u8,
    /// Whose ledger.
    pub influencer_id: String,
    /// Position on `commissions` for operations the commission step sent (copies a restart
    /// sends again are dropped by it); none for operations from ingest.
    pub from: Option<Position>,
    /// The operation.
    #[serde(flatten)]
    pub op: LedgerOp,
}

/// One movement of the ledger (table `ledger`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerRow {
    /// Stable id of the movement (`led_…`): a replay writes the same ids.
    pub entry_id: String,
    /// The advertiser who owes the money.
    pub advertiser_id: String,
    /// The influencer it is owed to.
    pub influencer_id: String,
    /// The commission's campaign ('' for none).
    pub campaign_id: String,
    /// The ledger item moved: a commission (`com_…`) or a clawback (`clb_…`).
    pub item_id: String,
    /// The commission concerned.
    pub commission_id: String,
    /// What the movement records.
    pub kind: EntryKind,
    /// The status whose balance it changes.
    pub status: LedgerStatus,
    /// Signed minor units of `currency`.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// When it was booked (the operation's time).
    pub at: DateTime<Utc>,
    /// For `pending` movements, when the money becomes available.
    pub available_at: Option<DateTime<Utc>>,
    /// The payout, for payout movements and money in one.
    pub payout_id: Option<String>,
    /// The converting or refund event.
    pub event_id: Option<String>,
    /// The order (never shown to influencers).
    pub order_id: Option<String>,
    /// The credited click.
    pub click_id: Option<String>,
    /// `purchase` or `signup`, for commission movements.
    pub action: Option<String>,
    /// The fraud rule that held the commission.
    pub rule: Option<String>,
    /// Reference of a payment, reason of a cancellation or refusal, reviewer's note, rule detail.
    pub note: Option<String>,
    /// Position of the operation on `ledger`.
    pub source: Source,
}
