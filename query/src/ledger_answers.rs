//! The shapes of the ledger's and the affiliate figures' answers, for the OpenAPI document
//! (the handlers in [`crate::ledger`] and [`crate::affiliate`] build the same JSON). Amounts
//! are signed integer minor units of `currency` (ISO 4217); times are RFC 3339 in UTC.

use crate::answers::{Money, Period};
use serde::Serialize;
use utoipa::ToSchema;

/// The money of one influencer (and advertiser) in one currency, by status.
#[derive(Serialize, ToSchema)]
pub struct Balance {
    /// The influencer (absent in the influencer's own view).
    pub influencer_id: Option<String>,
    /// The advertiser who owes it (absent in the influencer's own view).
    pub advertiser_id: Option<String>,
    /// ISO 4217 code.
    pub currency: String,
    /// Within the hold period.
    pub pending: i64,
    /// Past the hold, not yet requested (clawbacks of paid commissions count here, negative).
    pub available: i64,
    /// Held by a fraud rule for review.
    pub review: i64,
    /// In a payout request.
    pub requested: i64,
    /// Paid out.
    pub paid: i64,
    /// Rejected on review.
    pub rejected: i64,
}

/// `/api/v1/ledger/balances`.
#[derive(Serialize, ToSchema)]
pub struct Balances {
    /// One row per influencer, advertiser and currency.
    pub balances: Vec<Balance>,
}

/// One movement of money between two statuses (a row of table `ledger`).
#[derive(Serialize, ToSchema)]
pub struct Entry {
    /// Stable id of the movement (`led_…`).
    pub entry_id: String,
    /// The advertiser who owes the money.
    pub advertiser_id: String,
    /// The influencer it is owed to.
    pub influencer_id: String,
    /// The commission's campaign ('' for none).
    pub campaign_id: String,
    /// The item moved: a commission (`com_…`) or a clawback (`clb_…`).
    pub item_id: String,
    /// The commission concerned.
    pub commission_id: String,
    /// `commission`, `refund`, `clawback`, `payout_request`, `payout_paid`,
    /// `payout_cancelled`, `payout_refused`, `approved` or `rejected`.
    pub kind: String,
    /// The status whose balance it changes.
    pub status: String,
    /// That status now (`pending` past its `available_at` is `available`).
    pub state: String,
    /// Signed amount.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// When it was booked.
    pub at: String,
    /// For `pending` movements, when the money becomes available.
    pub available_at: Option<String>,
    /// The payout concerned.
    pub payout_id: Option<String>,
    /// The converting or refund event.
    pub event_id: Option<String>,
    /// The order.
    pub order_id: Option<String>,
    /// The credited click.
    pub click_id: Option<String>,
    /// `purchase` or `signup`, for commissions.
    pub action: Option<String>,
    /// The fraud rule that held the commission.
    pub rule: Option<String>,
    /// Payment reference, cancellation or refusal reason, reviewer's note or rule detail.
    pub note: Option<String>,
}

/// `/api/v1/ledger/entries`.
#[derive(Serialize, ToSchema)]
pub struct Entries {
    /// Newest first.
    pub entries: Vec<Entry>,
}

/// A payout or payout request.
#[derive(Serialize, ToSchema)]
pub struct Payout {
    /// Its id.
    pub payout_id: String,
    /// The payee (absent in the influencer's own view).
    pub influencer_id: Option<String>,
    /// The payer.
    pub advertiser_id: String,
    /// ISO 4217 code.
    pub currency: Option<String>,
    /// `requested`, `paid`, `cancelled` or `refused`.
    pub status: String,
    /// The amount requested or paid (cancelled: what went back to available; refused: 0).
    pub amount_minor: i64,
    /// The request's id (its idempotency key).
    pub request_id: Option<String>,
    /// When it was requested.
    pub requested_at: Option<String>,
    /// When it was paid.
    pub paid_at: Option<String>,
    /// The payment's reference.
    pub reference: Option<String>,
    /// Why it was cancelled or refused.
    pub reason: Option<String>,
    /// How many commissions and clawbacks it holds.
    pub items: i64,
}

/// `/api/v1/ledger/payouts` and `/api/v1/me/payouts`.
#[derive(Serialize, ToSchema)]
pub struct Payouts {
    /// Newest first.
    pub payouts: Vec<Payout>,
}

/// A commission held for review.
#[derive(Serialize, ToSchema)]
pub struct Review {
    /// The commission.
    pub commission_id: String,
    /// Its influencer.
    pub influencer_id: String,
    /// Its advertiser.
    pub advertiser_id: String,
    /// Its campaign ('' for none).
    pub campaign_id: String,
    /// ISO 4217 code.
    pub currency: String,
    /// The amount still held.
    pub amount_minor: i64,
    /// The fraud rule (`click_injection` or `self_referral`).
    pub rule: Option<String>,
    /// What the rule saw.
    pub detail: Option<String>,
    /// The converting event.
    pub event_id: Option<String>,
    /// Its order.
    pub order_id: Option<String>,
    /// When it was booked.
    pub at: String,
}

/// `/api/v1/ledger/reviews`.
#[derive(Serialize, ToSchema)]
pub struct Reviews {
    /// Oldest first.
    pub reviews: Vec<Review>,
}

/// The figures of one sub id (null: clicks and sales without one).
#[derive(Serialize, ToSchema)]
pub struct SubIdFigures {
    /// The sub id.
    pub sub_id: Option<String>,
    /// Human clicks.
    pub clicks: i64,
    /// Unique clicks.
    pub unique_clicks: i64,
    /// Attributed purchases.
    pub conversions: i64,
    /// Commissions booked in the period, not rejected, net of refunds.
    pub earnings: Vec<Money>,
}

/// `/api/v1/me/affiliate`: the influencer's own figures, aggregate only.
#[derive(Serialize, ToSchema)]
pub struct AffiliateSummary {
    /// The period.
    pub period: Period,
    /// Human clicks.
    pub clicks: i64,
    /// Unique clicks.
    pub unique_clicks: i64,
    /// Attributed purchases.
    pub conversions: i64,
    /// Attributed signups.
    pub signups: i64,
    /// Commissions booked in the period by the status each is in now, per currency.
    pub earnings: Vec<Balance>,
    /// All-time balances per currency.
    pub balances: Vec<Balance>,
    /// Per sub id.
    pub per_sub_id: Vec<SubIdFigures>,
}

/// A recent commission as its influencer sees it.
#[derive(Serialize, ToSchema)]
pub struct MyConversion {
    /// The day it was booked (`YYYY-MM-DD`, UTC).
    pub date: String,
    /// `purchase` or `signup`.
    pub action: Option<String>,
    /// The commission net of refunds.
    pub commission_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// `pending`, `available`, `review`, `requested`, `paid`, `rejected` or `void` (refunded
    /// in full).
    pub status: String,
    /// The credited click's sub id.
    pub sub_id: Option<String>,
}

/// `/api/v1/me/conversions`.
#[derive(Serialize, ToSchema)]
pub struct MyConversions {
    /// Newest first.
    pub conversions: Vec<MyConversion>,
}
