//! The operations people start on an influencer's ledger (`docs/commissions.md`): payout
//! requests, payments and cancellations of requested payouts, and reviews of commissions held
//! by a fraud rule.

use super::*;

/// A payout request: every available item of each (advertiser, currency), filtered by
/// `advertiser_id` and `currency` when given, moves into one `requested` payout when their sum
/// is above zero and reaches the largest minimum payout of their plans; otherwise a
/// `payout_refused` movement of 0 says why.
pub(super) fn request_payout(
    acc: &mut Account,
    m: &mut Moves<'_>,
    touched: &mut Vec<(u8, String)>,
    request_id: String,
    advertiser_id: Option<String>,
    currency: Option<String>,
    at: DateTime<Utc>,
) {
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
            announced: false,
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

/// A review of a held commission: approved back to `pending` (with its own `available_at`),
/// or rejected; nothing for an unknown commission or one no longer held.
pub(super) fn review(
    acc: &mut Account,
    m: &mut Moves<'_>,
    touched: &mut Vec<(u8, String)>,
    commission_id: String,
    approve: bool,
    note: String,
) {
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

/// Moves a requested payout's items to `to` and the payout to `state`; nothing when the
/// payout is unknown or no longer requested (a second payment of the same payout).
#[allow(clippy::too_many_arguments)]
pub(super) fn settle(
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
