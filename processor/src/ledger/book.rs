//! The ledger step: reads `ledger` (keyed by influencer) and keeps each influencer's account,
//! their open ledger items (commissions and clawbacks) and payouts, writing one
//! [`LedgerRow`] per movement of money between two statuses.
//!
//! Rules (`docs/commissions.md`):
//! - a booking enters `pending` until its `available_at` (or `review` when a fraud rule held it);
//! - a reversal (refund) takes money out of the status the commission is in (`pending`,
//!   `available`, `review` or `requested`, which lowers the payout); once the commission was
//!   paid it books a negative `clawback` item into `available` instead, netted from the next
//!   payout;
//! - a payout request moves every available item of each (advertiser, currency) into one
//!   `requested` payout, when their sum is above zero and at least the largest minimum payout
//!   of their plans; otherwise it records why nothing was requested;
//! - a payment moves a requested payout into `paid`, a cancellation back into `available`;
//! - a review approves (`review` → `pending`) or rejects (`review` → `rejected`).
//!
//! Time is each operation's own (`received_at` of the event, or when ingest took the request):
//! a replay decides exactly as the first run did. Paid, rejected and emptied items, and paid
//! or cancelled payouts, are forgotten an order window after they were booked.
//!
//! Checkpoint entries: `t` → stream time, `i\0influencer\0item` → item (JSON),
//! `p\0influencer\0payout` → payout (JSON), and the [`ReplayGuard`]'s `r` entries.

use crate::events::replay::ReplayGuard;
use crate::pipeline::{Output, PartitionState, StateChanges, StepCtx};
use chrono::{DateTime, Utc};
use clicktrail_bus::Message;
use clicktrail_schemas::ledger::stable_id;
use clicktrail_schemas::ledger::{EntryKind, LedgerOp, LedgerRecord, LedgerRow, LedgerStatus};
use clicktrail_schemas::money::format_minor;
use clicktrail_schemas::rows::Source;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

mod available;
mod checkpoint;
mod operations;

use operations::{request_payout, review, settle};

const STREAM_TIME: &[u8] = b"t";
const ITEM: u8 = b'i';
const PAYOUT: u8 = b'p';
/// How often (in stream time) forgotten items are swept: hourly.
const SWEEP_MS: i64 = 3_600_000;

/// One commission or clawback of an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Item {
    commission_id: String,
    advertiser_id: String,
    campaign_id: String,
    currency: String,
    /// What is left of it: minor units, negative for a clawback.
    net: i64,
    status: LedgerStatus,
    available_at: Option<DateTime<Utc>>,
    payout_id: Option<String>,
    min_payout: Option<i64>,
    click_id: Option<String>,
    at: DateTime<Utc>,
    /// Whether `commission.available` was announced for it (`available`).
    #[serde(default)]
    announced: bool,
}

impl Item {
    /// Its status at `t`: `pending` past its `available_at` is `available`.
    fn status_at(&self, t: DateTime<Utc>) -> LedgerStatus {
        match (self.status, self.available_at) {
            (LedgerStatus::Pending, Some(a)) if a <= t => LedgerStatus::Available,
            (s, _) => s,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum PayoutState {
    Requested,
    Paid,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Payout {
    state: PayoutState,
    items: Vec<String>,
    at: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct Account {
    items: BTreeMap<String, Item>,
    payouts: BTreeMap<String, Payout>,
}

/// One partition of the ledger step.
#[derive(Default)]
pub struct LedgerStep {
    accounts: HashMap<String, Account>,
    stream_ms: Option<i64>,
    swept_ms: i64,
    window_ms: i64,
    guard: ReplayGuard,
    dirty: BTreeSet<(u8, String, String)>,
    deleted: BTreeSet<(u8, String, String)>,
    time_changed: bool,
    /// No commission becomes available to announce before this; none: not known (look).
    next_announce: Option<DateTime<Utc>>,
}

/// The movements of one operation.
struct Moves<'a> {
    op: String,
    influencer: &'a str,
    at: DateTime<Utc>,
    source: Source,
    rows: &'a mut Vec<LedgerRow>,
}

/// A movement's details beyond its item, kind, status and amount.
#[derive(Default)]
struct Extra {
    available_at: Option<DateTime<Utc>>,
    payout_id: Option<String>,
    event_id: Option<String>,
    order_id: Option<String>,
    click_id: Option<String>,
    action: Option<String>,
    rule: Option<String>,
    note: Option<String>,
}

impl Moves<'_> {
    fn push(
        &mut self,
        item_id: &str,
        item: &Item,
        kind: EntryKind,
        status: LedgerStatus,
        amount: i64,
        extra: Extra,
    ) {
        if amount == 0 && kind != EntryKind::PayoutRefused {
            return;
        }
        let sign = if amount < 0 { "-" } else { "+" };
        self.rows.push(LedgerRow {
            entry_id: stable_id("led", &[&self.op, item_id, status.as_str(), sign]),
            advertiser_id: item.advertiser_id.clone(),
            influencer_id: self.influencer.to_string(),
            campaign_id: item.campaign_id.clone(),
            item_id: item_id.to_string(),
            commission_id: item.commission_id.clone(),
            kind,
            status,
            amount_minor: amount,
            currency: item.currency.clone(),
            at: self.at,
            available_at: extra.available_at,
            payout_id: extra.payout_id,
            event_id: extra.event_id,
            order_id: extra.order_id,
            click_id: extra.click_id,
            action: extra.action,
            rule: extra.rule,
            note: extra.note,
            source: self.source,
        });
    }

    /// Moves `item`'s whole net amount from where it is to `to` (with `to_extra`).
    fn transfer(
        &mut self,
        id: &str,
        item: &Item,
        kind: EntryKind,
        to: LedgerStatus,
        to_extra: Extra,
    ) {
        let from = Extra {
            available_at: (item.status == LedgerStatus::Pending)
                .then_some(item.available_at)
                .flatten(),
            payout_id: item.payout_id.clone(),
            note: to_extra.note.clone(),
            event_id: to_extra.event_id.clone(),
            ..Extra::default()
        };
        self.push(id, item, kind, item.status, -item.net, from);
        self.push(id, item, kind, to, item.net, to_extra);
    }
}

impl LedgerStep {
    /// An empty step forgetting settled items an order window (`window`) after booking.
    pub fn new(window: std::time::Duration) -> Self {
        LedgerStep {
            window_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX),
            ..Default::default()
        }
    }

    /// Open items (commissions and clawbacks) remembered, over every account.
    pub fn items(&self) -> usize {
        self.accounts.values().map(|a| a.items.len()).sum()
    }

    fn touch(&mut self, kind: u8, influencer: &str, id: &str) {
        let k = (kind, influencer.to_string(), id.to_string());
        self.deleted.remove(&k);
        self.dirty.insert(k);
    }

    fn advance(&mut self, at: DateTime<Utc>) {
        let ms = at.timestamp_millis();
        if self.stream_ms.is_none_or(|s| ms > s) {
            self.stream_ms = Some(ms);
            self.time_changed = true;
        }
        let now = self.stream_ms.unwrap_or(ms);
        if now - self.swept_ms < SWEEP_MS {
            return;
        }
        self.swept_ms = now;
        let horizon = now.saturating_sub(self.window_ms);
        let settled = |i: &Item| {
            matches!(i.status, LedgerStatus::Paid | LedgerStatus::Rejected)
                || (i.net == 0 && i.status != LedgerStatus::Requested)
        };
        let mut gone = Vec::new();
        for (inf, acc) in &mut self.accounts {
            acc.items.retain(|id, i| {
                let keep = !(settled(i) && i.at.timestamp_millis() < horizon);
                if !keep {
                    gone.push((ITEM, inf.clone(), id.clone()));
                }
                keep
            });
            acc.payouts.retain(|id, p| {
                let keep = p.state == PayoutState::Requested || p.at.timestamp_millis() >= horizon;
                if !keep {
                    gone.push((PAYOUT, inf.clone(), id.clone()));
                }
                keep
            });
        }
        self.accounts
            .retain(|_, a| !a.items.is_empty() || !a.payouts.is_empty());
        for k in gone {
            self.dirty.remove(&k);
            self.deleted.insert(k);
        }
    }

    fn apply(&mut self, rec: LedgerRecord, source: Source, rows: &mut Vec<LedgerRow>) {
        let inf = rec.influencer_id;
        let at = rec.op.at();
        let acc = self.accounts.entry(inf.clone()).or_default();
        let mut touched: Vec<(u8, String)> = Vec::new();
        let mut m = Moves {
            op: String::new(),
            influencer: &inf,
            at,
            source,
            rows,
        };
        match rec.op {
            LedgerOp::Book {
                booking: b,
                advertiser_id,
                event_id,
                order_id,
                action,
                ..
            } => {
                if acc.items.contains_key(&b.commission_id) {
                    return;
                }
                let status = if b.hold.is_some() {
                    LedgerStatus::Review
                } else {
                    LedgerStatus::Pending
                };
                let item = Item {
                    commission_id: b.commission_id.clone(),
                    advertiser_id,
                    campaign_id: b.campaign_id.clone(),
                    currency: b.currency.clone(),
                    net: b.amount_minor,
                    status,
                    available_at: Some(b.available_at),
                    payout_id: None,
                    min_payout: b.min_payout_minor,
                    click_id: b.click_id.clone(),
                    at,
                    announced: false,
                };
                m.op = format!("book\0{}", b.commission_id);
                m.push(
                    &b.commission_id,
                    &item,
                    EntryKind::Commission,
                    status,
                    b.amount_minor,
                    Extra {
                        available_at: Some(b.available_at),
                        event_id: Some(event_id),
                        order_id,
                        click_id: b.click_id.clone(),
                        action: Some(action.as_str().to_string()),
                        rule: b.hold.map(|r| r.as_str().to_string()),
                        note: b.hold_detail.clone(),
                        ..Extra::default()
                    },
                );
                touched.push((ITEM, b.commission_id.clone()));
                acc.items.insert(b.commission_id, item);
            }
            LedgerOp::Reverse {
                commission_id,
                amount_minor,
                event_id,
                order_id,
                ..
            } => {
                m.op = format!("reverse\0{event_id}\0{commission_id}");
                let Some(item) = acc.items.get_mut(&commission_id) else {
                    tracing::warn!(commission = %commission_id, "reversal of a commission no longer remembered");
                    return;
                };
                let amount = amount_minor.min(item.net);
                if amount <= 0 {
                    return;
                }
                let extra = Extra {
                    event_id: Some(event_id.clone()),
                    order_id: Some(order_id),
                    ..Extra::default()
                };
                match item.status {
                    LedgerStatus::Rejected => return,
                    LedgerStatus::Paid => {
                        let id = stable_id("clb", &[&event_id, &commission_id]);
                        let claw = Item {
                            net: -amount,
                            status: LedgerStatus::Available,
                            available_at: None,
                            payout_id: None,
                            min_payout: None,
                            at,
                            ..item.clone()
                        };
                        item.net -= amount;
                        m.push(
                            &id,
                            &claw,
                            EntryKind::Clawback,
                            LedgerStatus::Available,
                            -amount,
                            extra,
                        );
                        touched.push((ITEM, id.clone()));
                        acc.items.insert(id, claw);
                    }
                    status => {
                        let extra = Extra {
                            available_at: (status == LedgerStatus::Pending)
                                .then_some(item.available_at)
                                .flatten(),
                            payout_id: item.payout_id.clone(),
                            ..extra
                        };
                        m.push(
                            &commission_id,
                            item,
                            EntryKind::Refund,
                            status,
                            -amount,
                            extra,
                        );
                        item.net -= amount;
                    }
                }
                touched.push((ITEM, commission_id));
            }
            LedgerOp::RequestPayout {
                request_id,
                advertiser_id,
                currency,
                ..
            } => {
                request_payout(
                    acc,
                    &mut m,
                    &mut touched,
                    request_id,
                    advertiser_id,
                    currency,
                    at,
                );
            }
            LedgerOp::MarkPaid {
                payout_id,
                reference,
                ..
            } => {
                m.op = format!("paid\0{payout_id}");
                let (kind, to, state) =
                    (EntryKind::PayoutPaid, LedgerStatus::Paid, PayoutState::Paid);
                settle(
                    acc,
                    &mut m,
                    &mut touched,
                    &payout_id,
                    kind,
                    to,
                    state,
                    reference,
                );
            }
            LedgerOp::CancelPayout {
                payout_id, reason, ..
            } => {
                m.op = format!("cancel\0{payout_id}");
                let (kind, to, state) = (
                    EntryKind::PayoutCancelled,
                    LedgerStatus::Available,
                    PayoutState::Cancelled,
                );
                settle(
                    acc,
                    &mut m,
                    &mut touched,
                    &payout_id,
                    kind,
                    to,
                    state,
                    reason,
                );
            }
            LedgerOp::Review {
                commission_id,
                approve,
                note,
                ..
            } => {
                review(acc, &mut m, &mut touched, commission_id, approve, note);
            }
        }
        for (kind, id) in touched {
            self.touch(kind, &inf, &id);
        }
    }
}

/// The refunds a booking carries (those that overtook their purchase), as reversals of the
/// booked commission timed at the booking: they are applied right after it.
fn early_reversals(rec: &mut LedgerRecord) -> Vec<LedgerRecord> {
    let LedgerOp::Book {
        booking,
        advertiser_id,
        order_id,
        received_at,
        early_refunds,
        ..
    } = &mut rec.op
    else {
        return Vec::new();
    };
    std::mem::take(early_refunds)
        .into_iter()
        .map(|r| LedgerRecord {
            v: rec.v,
            influencer_id: rec.influencer_id.clone(),
            from: None,
            op: LedgerOp::Reverse {
                commission_id: booking.commission_id.clone(),
                advertiser_id: advertiser_id.clone(),
                amount_minor: r.amount_minor,
                event_id: r.event_id,
                order_id: order_id.clone().unwrap_or_default(),
                at: r.at.max(*received_at),
            },
        })
        .collect()
}
