//! The commission programme on the stream (`docs/commissions.md`): two steps after
//! attribution, each keyed by what it must remember.
//!
//! 1. The attribution step computes what an attributed conversion earns under its plan
//!    ([`booking`]) and hands every purchase and refund on to `commissions`, keyed by
//!    advertiser + order id.
//! 2. [`orders::CommissionStep`] remembers each order's purchase and commission for the order
//!    window, matches refunds to them (a refund of an unknown order goes to dead-letter,
//!    `unknown_order`) and sends bookings and reversals on to `ledger`, keyed by influencer.
//! 3. [`book::LedgerStep`] keeps each influencer's open commissions and payouts, applies
//!    bookings, reversals, payout requests, payments and reviews in the order of their
//!    partition, and writes the ledger's movements ([`clicktrail_schemas::ledger::LedgerRow`]).
//!
//! Exactly once: every decision depends only on a step's checkpointed state and its input,
//! every movement has a stable id, and copies a restarted step sends again are dropped by the
//! next step's replay guard ([`crate::events::replay`]).

pub mod book;
pub mod orders;

use chrono::{DateTime, Utc};
use clicktrail_schemas::Catalog;
use clicktrail_schemas::ledger::{Booking, FraudRule, stable_id};
use clicktrail_schemas::rows::Attribution;
use clicktrail_schemas::wire::EventRecord;

pub use book::LedgerStep;
pub use orders::CommissionStep;

fn secs(d: u64) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(d).unwrap_or(i64::MAX / 1_000_000))
}

/// The customer identities an event carries that the self-referral rule compares with the
/// influencer's: its `customer_id`, and `email` / `customer_email` among its properties.
fn customer_identities(event: &EventRecord) -> Vec<String> {
    let mut out: Vec<String> = event.customer_id.iter().cloned().collect();
    if let Some(props) = event.properties.as_deref()
        && let Ok(serde_json::Value::Object(map)) = serde_json::from_str(props)
    {
        for key in ["email", "customer_email"] {
            if let Some(serde_json::Value::String(s)) = map.get(key) {
                out.push(s.clone());
            }
        }
    }
    out
}

/// The commission an attributed conversion earns, if its campaign (or the influencer's
/// override there) has a plan that pays for it; none otherwise, and none for a browser
/// purchase its advertiser does not count (`uncounted`).
///
/// Fraud rules, checked in this order, hold the commission for review instead of letting it
/// become available after its hold:
/// - `click_injection`: a click decided and the conversion happened less than the plan's
///   `min_click_secs` after it (or before it);
/// - `self_referral`: the event's customer id or e-mail property is the influencer's contact
///   address or the login of a user bound to them.
pub fn booking(
    event: &EventRecord,
    attribution: &Attribution,
    catalog: &Catalog,
) -> Option<Booking> {
    if !attribution.attributed || event.uncounted {
        return None;
    }
    let influencer = attribution.influencer_id.as_deref()?;
    let campaign = attribution.campaign_id.as_deref()?;
    let plan = catalog.plan_for(campaign, influencer)?;
    let earned = plan.earned(event.action, event.value_minor, &event.currency)?;
    let mut hold = None;
    let mut hold_detail = None;
    if let (Some(_), Some(click_at)) = (&attribution.credited_click_id, attribution.click_at)
        && plan.min_click_secs > 0
    {
        let gap = event.occurred_at - click_at;
        if gap < secs(plan.min_click_secs) {
            hold = Some(FraudRule::ClickInjection);
            hold_detail = Some(format!(
                "converted {} ms after its click; the plan holds conversions under {} s",
                gap.num_milliseconds(),
                plan.min_click_secs
            ));
        }
    }
    if hold.is_none()
        && customer_identities(event)
            .iter()
            .any(|id| catalog.is_influencers_own(influencer, id))
    {
        hold = Some(FraudRule::SelfReferral);
        hold_detail = Some("the customer is the influencer".into());
    }
    let available_at: DateTime<Utc> = event
        .occurred_at
        .checked_add_signed(secs(plan.hold_secs))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    Some(Booking {
        commission_id: stable_id("com", &[&event.advertiser_id, &event.event_id]),
        influencer_id: influencer.to_string(),
        campaign_id: campaign.to_string(),
        attributed_by: attribution.attributed_by?,
        click_id: attribution.credited_click_id.clone(),
        min_payout_minor: plan.min_payout.get(&earned.currency).copied(),
        amount_minor: earned.amount_minor,
        currency: earned.currency,
        available_at,
        hold,
        hold_detail,
    })
}

#[cfg(test)]
mod tests;
