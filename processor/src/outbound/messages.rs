//! The messages the processor's steps decide: one per conversion (a purchase or signup that
//! counts) for an advertiser with a webhook subscribed to its kind or, when it is credited, a
//! matching postback; one per payout marked paid, and one per commission whose hold ended, for
//! an advertiser subscribed to it.

use clicktrail_schemas::Catalog;
use clicktrail_schemas::catalog::WebhookEvent;
use clicktrail_schemas::ledger::{EntryKind, LedgerRow, LedgerStatus};
use clicktrail_schemas::money::format_minor;
use clicktrail_schemas::outbound::{Macros, OutboundRecord, StoredAt};
use clicktrail_schemas::rows::Attribution;
use clicktrail_schemas::wire::{Action, EventRecord, WIRE_VERSION};
use serde_json::json;
use sha2::{Digest, Sha256};

/// The idempotency id of the message reporting `subject` as `event` for `advertiser_id`:
/// `msg_` and 24 hex digits of a SHA-256 of the three, so a step that runs a record again
/// produces the same id.
pub fn message_id(event: WebhookEvent, advertiser_id: &str, subject: &str) -> String {
    let mut h = Sha256::new();
    for part in [event.as_str(), advertiser_id, subject] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("msg_{hex}")
}

/// The message reporting a conversion, if anyone is to hear of it: `after` is the position of
/// the record that decided it. None for events that are not conversions (anything but a
/// purchase or signup), for browser purchases that do not count, and when the advertiser has
/// no active webhook for its kind and (credited) no matching postback.
pub fn conversion(
    event: &EventRecord,
    attribution: &Attribution,
    catalog: &Catalog,
    after: StoredAt,
) -> Option<OutboundRecord> {
    if !matches!(event.action, Action::Purchase | Action::Signup) || event.uncounted {
        return None;
    }
    let kind = if attribution.attributed {
        WebhookEvent::ConversionAttributed
    } else {
        WebhookEvent::ConversionUnattributed
    };
    let credited = match (&attribution.campaign_id, &attribution.influencer_id) {
        (Some(c), Some(i)) if attribution.attributed => Some((c.clone(), i.clone())),
        _ => None,
    };
    let heard = !catalog
        .webhook_targets(&event.advertiser_id, kind)
        .is_empty()
        || credited.as_ref().is_some_and(|(c, i)| {
            !catalog
                .postback_targets(&event.advertiser_id, c, i)
                .is_empty()
        });
    if !heard {
        return None;
    }
    let amount = event.value_minor.map(|v| format_minor(v, &event.currency));
    let click_id = attribution
        .credited_click_id
        .clone()
        .or_else(|| event.click_id.clone());
    let data = json!({
        "event_id": event.event_id,
        "action": event.action.as_str(),
        "occurred_at": event.occurred_at,
        "value_minor": event.value_minor,
        "amount": amount,
        "currency": event.currency,
        "order_id": event.order_id,
        "customer_id": event.customer_id,
        "source": event.source.as_str(),
        "attributed": attribution.attributed,
        "attributed_by": attribution.attributed_by.map(|b| b.as_str()),
        "reason": attribution.reason.map(|r| r.as_str()),
        "campaign_id": attribution.campaign_id,
        "influencer_id": attribution.influencer_id,
        "link_id": attribution.link_id,
        "coupon_id": attribution.coupon_id,
        "click_id": click_id,
        "sub_id": event.sub_id,
    });
    let macros = Macros {
        click_id,
        sub_id: event.sub_id.clone(),
        event_id: event.event_id.clone(),
        action: event.action.as_str().to_string(),
        amount,
        currency: event.currency.clone(),
    };
    Some(OutboundRecord {
        v: WIRE_VERSION,
        message_id: message_id(kind, &event.advertiser_id, &event.event_id),
        event: kind,
        advertiser_id: event.advertiser_id.clone(),
        created_at: event.occurred_at,
        data,
        credited: credited.map(|(c, i)| (c, i, macros)),
        after: Some(after),
        replay: None,
    })
}

/// The `payout.paid` messages of the ledger movements one operation produced: one per payout
/// whose items moved to `paid` (amount: what moved, in the payout's currency), when the
/// advertiser has an endpoint subscribed.
pub fn payouts_paid(
    moved: &[LedgerRow],
    catalog: &Catalog,
    after: StoredAt,
) -> Vec<OutboundRecord> {
    let mut payouts: Vec<(&LedgerRow, i64, usize)> = Vec::new();
    for row in moved.iter().filter(|r| {
        r.kind == EntryKind::PayoutPaid && r.status == LedgerStatus::Paid && r.amount_minor > 0
    }) {
        match payouts
            .iter_mut()
            .find(|(first, ..)| first.payout_id == row.payout_id)
        {
            Some((_, amount, items)) => {
                *amount += row.amount_minor;
                *items += 1;
            }
            None => payouts.push((row, row.amount_minor, 1)),
        }
    }
    payouts
        .into_iter()
        .filter(|(first, ..)| {
            !catalog
                .webhook_targets(&first.advertiser_id, WebhookEvent::PayoutPaid)
                .is_empty()
        })
        .map(|(first, amount, items)| {
            let payout_id = first.payout_id.clone().unwrap_or_default();
            OutboundRecord {
                v: WIRE_VERSION,
                message_id: message_id(WebhookEvent::PayoutPaid, &first.advertiser_id, &payout_id),
                event: WebhookEvent::PayoutPaid,
                advertiser_id: first.advertiser_id.clone(),
                created_at: first.at,
                data: json!({
                    "payout_id": payout_id,
                    "influencer_id": first.influencer_id,
                    "amount_minor": amount,
                    "amount": format_minor(amount, &first.currency),
                    "currency": first.currency,
                    "commissions": items,
                    "reference": first.note,
                    "paid_at": first.at,
                }),
                credited: None,
                after: Some(after),
                replay: None,
            }
        })
        .collect()
}

/// The `commission.available` message of a commission whose hold ended, when its advertiser
/// has an endpoint subscribed: `amount_minor` is what is left of it (net of refunds).
#[allow(clippy::too_many_arguments)]
pub fn commission_available(
    advertiser_id: &str,
    influencer_id: &str,
    commission_id: &str,
    campaign_id: &str,
    amount_minor: i64,
    currency: &str,
    available_at: chrono::DateTime<chrono::Utc>,
    catalog: &Catalog,
) -> Option<OutboundRecord> {
    let event = WebhookEvent::CommissionAvailable;
    if catalog.webhook_targets(advertiser_id, event).is_empty() {
        return None;
    }
    Some(OutboundRecord {
        v: WIRE_VERSION,
        message_id: message_id(event, advertiser_id, commission_id),
        event,
        advertiser_id: advertiser_id.to_string(),
        created_at: available_at,
        data: json!({
            "commission_id": commission_id,
            "influencer_id": influencer_id,
            "campaign_id": campaign_id,
            "amount_minor": amount_minor,
            "amount": format_minor(amount_minor, currency),
            "currency": currency,
            "available_at": available_at,
        }),
        credited: None,
        after: None,
        replay: None,
    })
}
