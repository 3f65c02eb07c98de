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
}

fn entry_key(kind: u8, influencer: &str, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + influencer.len() + id.len());
    k.push(kind);
    k.push(0);
    k.extend_from_slice(influencer.as_bytes());
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

fn parse_key(k: &[u8]) -> Option<(u8, String, String)> {
    let (&kind, rest) = k.split_first()?;
    let rest = rest.strip_prefix(&[0])?;
    let sep = rest.iter().position(|b| *b == 0)?;
    let inf = std::str::from_utf8(&rest[..sep]).ok()?;
    let id = std::str::from_utf8(&rest[sep + 1..]).ok()?;
    Some((kind, inf.to_string(), id.to_string()))
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
                m.op = format!("request\0{request_id}");
                let mut groups: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
                for (id, item) in &acc.items {
                    if item.status_at(at) == LedgerStatus::Available
                        && item.net != 0
                        && advertiser_id
                            .as_ref()
                            .is_none_or(|a| *a == item.advertiser_id)
                        && currency.as_ref().is_none_or(|c| *c == item.currency)
                    {
                        groups
                            .entry((item.advertiser_id.clone(), item.currency.clone()))
                            .or_default()
                            .push(id.clone());
                    }
                }
                if groups.is_empty() {
                    let nothing = Item {
                        commission_id: String::new(),
                        advertiser_id: advertiser_id.unwrap_or_default(),
                        campaign_id: String::new(),
                        currency: currency.unwrap_or_default(),
                        net: 0,
                        status: LedgerStatus::Available,
                        available_at: None,
                        payout_id: None,
                        min_payout: None,
                        click_id: None,
                        at,
                    };
                    let pid = stable_id(
                        "pay",
                        &[&request_id, &nothing.advertiser_id, &nothing.currency],
                    );
                    m.push(
                        "",
                        &nothing,
                        EntryKind::PayoutRefused,
                        LedgerStatus::Available,
                        0,
                        Extra {
                            payout_id: Some(pid),
                            event_id: Some(request_id.clone()),
                            note: Some("nothing is available to pay yet".into()),
                            ..Extra::default()
                        },
                    );
                }
                for ((adv, cur), ids) in groups {
                    let payout_id = stable_id("pay", &[&request_id, &adv, &cur]);
                    let sum: i64 = ids.iter().map(|i| acc.items[i].net).sum();
                    let min = ids.iter().filter_map(|i| acc.items[i].min_payout).max();
                    let refusal = if sum <= 0 {
                        Some(format!(
                            "the available balance is {} {cur} after clawbacks",
                            format_minor(sum, &cur)
                        ))
                    } else if min.is_some_and(|min| sum < min) {
                        Some(format!(
                            "the available {} {cur} is below the minimum payout of {} {cur}",
                            format_minor(sum, &cur),
                            format_minor(min.unwrap_or_default(), &cur)
                        ))
                    } else {
                        None
                    };
                    if let Some(note) = refusal {
                        let first = acc.items[&ids[0]].clone();
                        let probe = Item {
                            net: 0,
                            campaign_id: String::new(),
                            commission_id: String::new(),
                            ..first
                        };
                        m.push(
                            "",
                            &probe,
                            EntryKind::PayoutRefused,
                            LedgerStatus::Available,
                            0,
                            Extra {
                                payout_id: Some(payout_id),
                                event_id: Some(request_id.clone()),
                                note: Some(note),
                                ..Extra::default()
                            },
                        );
                        continue;
                    }
                    for id in &ids {
                        let item = acc.items.get_mut(id).expect("grouped items exist");
                        m.transfer(
                            id,
                            item,
                            EntryKind::PayoutRequest,
                            LedgerStatus::Requested,
                            Extra {
                                payout_id: Some(payout_id.clone()),
                                event_id: Some(request_id.clone()),
                                ..Extra::default()
                            },
                        );
                        item.status = LedgerStatus::Requested;
                        item.available_at = None;
                        item.payout_id = Some(payout_id.clone());
                        touched.push((ITEM, id.clone()));
                    }
                    touched.push((PAYOUT, payout_id.clone()));
                    acc.payouts.insert(
                        payout_id,
                        Payout {
                            state: PayoutState::Requested,
                            items: ids,
                            at,
                        },
                    );
                }
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
                m.op = format!("review\0{commission_id}");
                let Some(item) = acc.items.get_mut(&commission_id) else {
                    tracing::warn!(commission = %commission_id, "review of an unknown commission");
                    return;
                };
                if item.status != LedgerStatus::Review {
                    return;
                }
                let (kind, to) = if approve {
                    (EntryKind::Approved, LedgerStatus::Pending)
                } else {
                    (EntryKind::Rejected, LedgerStatus::Rejected)
                };
                let keep_at = item.available_at;
                m.transfer(
                    &commission_id,
                    item,
                    kind,
                    to,
                    Extra {
                        available_at: approve.then_some(keep_at).flatten(),
                        note: Some(note),
                        ..Extra::default()
                    },
                );
                item.status = to;
                touched.push((ITEM, commission_id));
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

/// Moves a requested payout's items to `to` and the payout to `state`; nothing when the
/// payout is unknown or no longer requested (a second payment of the same payout).
#[allow(clippy::too_many_arguments)]
fn settle(
    acc: &mut Account,
    m: &mut Moves<'_>,
    touched: &mut Vec<(u8, String)>,
    payout_id: &str,
    kind: EntryKind,
    to: LedgerStatus,
    state: PayoutState,
    note: String,
) {
    let Some(p) = acc.payouts.get_mut(payout_id) else {
        tracing::warn!(payout = %payout_id, "payout not known to the ledger");
        return;
    };
    if p.state != PayoutState::Requested {
        return;
    }
    for id in &p.items {
        let Some(item) = acc.items.get_mut(id) else {
            continue;
        };
        let paid = to == LedgerStatus::Paid;
        m.transfer(
            id,
            item,
            kind,
            to,
            Extra {
                payout_id: paid.then(|| payout_id.to_string()),
                note: Some(note.clone()),
                ..Extra::default()
            },
        );
        item.status = to;
        if !paid {
            item.payout_id = None;
        }
        touched.push((ITEM, id.clone()));
    }
    p.state = state;
    touched.push((PAYOUT, payout_id.to_string()));
}

impl PartitionState for LedgerStep {
    fn restore(
        _partition: u32,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        ctx: &StepCtx,
    ) -> Result<Self, String> {
        let mut s = LedgerStep::new(ctx.windows.order);
        for (k, v) in entries {
            if k == STREAM_TIME {
                let ms = <[u8; 8]>::try_from(v.as_slice()).map_err(|_| "bad stream time")?;
                s.stream_ms = Some(i64::from_be_bytes(ms));
                continue;
            }
            if s.guard.restore_entry(&k, &v)? {
                continue;
            }
            let (kind, inf, id) = parse_key(&k).ok_or("unknown ledger step entry")?;
            let acc = s.accounts.entry(inf).or_default();
            match kind {
                ITEM => {
                    let item = serde_json::from_slice(&v).map_err(|e| e.to_string())?;
                    acc.items.insert(id, item);
                }
                PAYOUT => {
                    let p = serde_json::from_slice(&v).map_err(|e| e.to_string())?;
                    acc.payouts.insert(id, p);
                }
                _ => return Err("unknown ledger step entry".into()),
            }
        }
        s.swept_ms = s.stream_ms.unwrap_or_default();
        Ok(s)
    }

    fn process(&mut self, msg: &Message, _ctx: &StepCtx, out: &mut Output) {
        let Some(mut rec) = out.decode::<LedgerRecord>(msg) else {
            return;
        };
        if let Some(from) = rec.from
            && !self.guard.admit(from)
        {
            return;
        }
        self.advance(rec.op.at());
        let source = Source {
            partition: msg.partition,
            offset: msg.offset,
        };
        let booked = match &rec.op {
            LedgerOp::Book { booking, .. } => self
                .accounts
                .get(&rec.influencer_id)
                .is_some_and(|a| a.items.contains_key(&booking.commission_id)),
            _ => false,
        };
        // A copy of a booking (its refunds included) changes nothing.
        let early = if booked {
            Vec::new()
        } else {
            early_reversals(&mut rec)
        };
        self.apply(rec, source, &mut out.rows.ledger);
        for r in early {
            self.apply(r, source, &mut out.rows.ledger);
        }
    }

    fn take_changes(&mut self) -> StateChanges {
        let mut changes = self.guard.take_changes();
        for (kind, inf, id) in std::mem::take(&mut self.dirty) {
            let acc = self.accounts.get(&inf);
            let value = match kind {
                ITEM => acc
                    .and_then(|a| a.items.get(&id))
                    .map(|i| serde_json::to_vec(i).expect("items serialize")),
                _ => acc
                    .and_then(|a| a.payouts.get(&id))
                    .map(|p| serde_json::to_vec(p).expect("payouts serialize")),
            };
            if let Some(v) = value {
                changes.puts.push((entry_key(kind, &inf, &id), v));
            }
        }
        for (kind, inf, id) in std::mem::take(&mut self.deleted) {
            changes.deletes.push(entry_key(kind, &inf, &id));
        }
        if std::mem::take(&mut self.time_changed)
            && let Some(ms) = self.stream_ms
        {
            changes
                .puts
                .push((STREAM_TIME.to_vec(), ms.to_be_bytes().to_vec()));
        }
        changes
    }

    fn memory_bytes(&self) -> usize {
        self.accounts
            .values()
            .map(|a| a.items.len() * 320 + a.payouts.len() * 160)
            .sum::<usize>()
            + self.guard.memory_bytes()
    }
}
