//! The attribution waterfall, as `docs/attribution.md` states it. A pure function of the event,
//! the catalog, the click keys and the customer's current first touch.
//!
//! 1. `coupon_code`: an active coupon of this advertiser owned by an influencer is credited; a
//!    generic coupon credits no one and falls through.
//! 2. `click_id`: a valid token of this advertiser's link, within the campaign's window.
//! 3. `ref_code`: the link code's owner.
//! 4. lazy extraction: `click_id` / `ref_code` found in `landing_url`, then `referrer`.
//!
//! An expired click also disqualifies the same link's code (it is the same touch). With a
//! `customer_id`, the first attributed touch owns the customer within its campaign's trailing
//! expiry: later events are credited to it, and a different winner is recorded as a conflict.

use crate::extract;
use chrono::{DateTime, Utc};
use clicktrail_schemas::Catalog;
use clicktrail_schemas::attribution::{
    Candidate, Conflict, ConflictKind, TouchSource, TouchStatus,
};
use clicktrail_schemas::catalog::{AttributionSource, Campaign, Coupon, Link};
use clicktrail_schemas::rows::Attribution;
use clicktrail_schemas::token::ClickKeys;
use clicktrail_schemas::wire::EventRecord;
use serde::{Deserialize, Serialize};

/// A duration in seconds from the catalog as i64, saturating: a window too long to represent
/// is as good as forever, never negative (the admin API refuses such values; this guards
/// catalog records written before it did).
fn secs_i64(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// Clock skew tolerated between a click and an event that claims to precede it.
const SKEW_MS: i64 = 5 * 60 * 1000;

fn for_link(source: TouchSource, status: TouchStatus, link: &Link) -> Candidate {
    Candidate {
        influencer_id: Some(link.influencer_id.clone()),
        campaign_id: Some(link.campaign_id.clone()),
        link_id: Some(link.id.clone()),
        ..Candidate::new(source, status)
    }
}

fn for_coupon(status: TouchStatus, coupon: &Coupon) -> Candidate {
    Candidate {
        influencer_id: coupon.influencer_id.clone(),
        campaign_id: Some(coupon.campaign_id.clone()),
        coupon_id: Some(coupon.id.clone()),
        ..Candidate::new(TouchSource::Coupon, status)
    }
}

/// The customer's owner: the first attributed touch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FirstTouch {
    /// Owning influencer.
    pub influencer_id: String,
    /// Campaign of the touch.
    pub campaign_id: String,
    /// Link of the touch, when a link decided.
    pub link_id: Option<String>,
    /// Coupon of the touch, when a coupon decided.
    pub coupon_id: Option<String>,
    /// Rule that decided.
    pub by: TouchSource,
    /// When the owning event happened.
    pub at: DateTime<Utc>,
}

/// The outcome for one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// What is stored with the event.
    pub attribution: Attribution,
    /// The customer's new owner, when this event set one.
    pub new_first_touch: Option<FirstTouch>,
}

fn allows(campaign: &Campaign, coupon: bool) -> bool {
    match campaign.attribution_source {
        AttributionSource::All => true,
        AttributionSource::Links => !coupon,
        AttributionSource::Coupons => coupon,
    }
}

struct Ctx<'a> {
    event: &'a EventRecord,
    catalog: &'a Catalog,
    keys: &'a ClickKeys,
}

impl Ctx<'_> {
    /// The candidate of a link found in the event. A link of another advertiser is only that:
    /// none of its identifiers (campaign, influencer, link, click time) are kept, so that
    /// nothing of another tenant reaches this advertiser's rows.
    fn link_candidate(&self, source: TouchSource, link: &Link) -> Candidate {
        if link.advertiser_id != self.event.advertiser_id {
            return Candidate::new(source, TouchStatus::OtherAdvertiser);
        }
        let campaign = self.catalog.campaigns.get(&link.campaign_id);
        let status = if !campaign.is_some_and(|c| allows(c, false)) {
            TouchStatus::NotAllowed
        } else {
            TouchStatus::Eligible
        };
        for_link(source, status, link)
    }

    fn coupon(&self, code: &str) -> Candidate {
        match self.catalog.coupon(&self.event.advertiser_id, code) {
            None => Candidate::new(TouchSource::Coupon, TouchStatus::Unknown),
            Some(c) if !c.active => for_coupon(TouchStatus::Inactive, c),
            Some(c) if c.influencer_id.is_none() => for_coupon(TouchStatus::Generic, c),
            Some(c) => {
                let allowed = self
                    .catalog
                    .campaigns
                    .get(&c.campaign_id)
                    .is_some_and(|camp| allows(camp, true));
                let status = if allowed {
                    TouchStatus::Eligible
                } else {
                    TouchStatus::NotAllowed
                };
                for_coupon(status, c)
            }
        }
    }

    fn click(&self, source: TouchSource, token: &str) -> Candidate {
        let Ok(t) = self.keys.verify(token) else {
            return Candidate::new(source, TouchStatus::Invalid);
        };
        let Some(link) = self.catalog.links.get(&t.link_id) else {
            return Candidate::new(source, TouchStatus::Unknown);
        };
        let mut c = self.link_candidate(source, link);
        if c.status == TouchStatus::OtherAdvertiser {
            return c;
        }
        let click_at = DateTime::from_timestamp_millis(t.clicked_at_ms).unwrap_or_default();
        c.click_at = Some(click_at);
        c.click_id = Some(token.to_string());
        let Some(campaign) = self.catalog.campaigns.get(&link.campaign_id) else {
            c.status = TouchStatus::Unknown;
            return c;
        };
        c.window_secs = Some(secs_i64(campaign.attribution_window_secs));
        if !c.eligible() {
            return c;
        }
        let elapsed_ms = (self.event.occurred_at - click_at).num_milliseconds();
        if !campaign.is_live_at(click_at) {
            c.status = TouchStatus::CampaignNotLive;
        } else if elapsed_ms < -SKEW_MS {
            c.status = TouchStatus::BeforeClick;
        } else if elapsed_ms > secs_i64(campaign.attribution_window_secs).saturating_mul(1000) {
            c.status = TouchStatus::Expired;
        }
        c
    }

    fn code(&self, source: TouchSource, code: &str) -> Candidate {
        match self.catalog.link_by_code(code.trim()) {
            None => Candidate::new(source, TouchStatus::Unknown),
            Some(l) if !l.active => for_link(source, TouchStatus::Inactive, l),
            Some(l) => self.link_candidate(source, l),
        }
    }
}

/// Decides the credit for one event.
pub fn attribute(
    event: &EventRecord,
    catalog: &Catalog,
    keys: &ClickKeys,
    owner: Option<&FirstTouch>,
) -> Decision {
    let ctx = Ctx {
        event,
        catalog,
        keys,
    };
    let mut cands: Vec<Candidate> = Vec::new();
    if let Some(code) = event
        .coupon_code
        .as_deref()
        .filter(|c| !c.trim().is_empty())
    {
        cands.push(ctx.coupon(code));
    }
    if let Some(token) = event.click_id.as_deref() {
        cands.push(ctx.click(TouchSource::ClickId, token));
    }
    if let Some(code) = event.ref_code.as_deref() {
        cands.push(ctx.code(TouchSource::RefCode, code));
    }
    for (source, url) in [
        (TouchSource::LandingUrl, &event.landing_url),
        (TouchSource::Referrer, &event.referrer),
    ] {
        if let Some(url) = url {
            let found = extract::from_url(url);
            if let Some(token) = found.click_id {
                cands.push(ctx.click(source, &token));
            }
            if let Some(code) = found.ref_code {
                cands.push(ctx.code(source, &code));
            }
        }
    }
    // An expired click disqualifies its link's code too: the code is the same touch.
    let expired_links: Vec<String> = cands
        .iter()
        .filter(|c| c.status == TouchStatus::Expired)
        .filter_map(|c| c.link_id.clone())
        .collect();
    for c in cands.iter_mut() {
        if c.eligible()
            && c.click_at.is_none()
            && c.link_id
                .as_ref()
                .is_some_and(|l| expired_links.contains(l))
        {
            c.status = TouchStatus::Expired;
        }
    }

    let winner = cands.iter().position(Candidate::eligible);
    let mut conflicts = Vec::new();
    if let Some(w) = winner {
        let win = &cands[w];
        if let Some(other) = cands
            .iter()
            .skip(w + 1)
            .find(|c| c.eligible() && c.influencer_id != win.influencer_id)
        {
            let kind = if win.source == TouchSource::Coupon {
                ConflictKind::CouponVsClick
            } else {
                ConflictKind::CompetingTouch
            };
            conflicts.push(Conflict {
                kind,
                credited_influencer_id: win.influencer_id.clone(),
                influencer_id: other.influencer_id.clone(),
                source: other.source,
            });
        }
    }

    let live_owner = owner.filter(|o| {
        let expiry = catalog
            .campaigns
            .get(&o.campaign_id)
            .and_then(|c| c.trailing_expiry_secs);
        expiry.is_none_or(|secs| (event.occurred_at - o.at).num_seconds() <= secs_i64(secs))
    });

    let mut a = Attribution::default();
    let mut new_first_touch = None;
    match (winner, live_owner) {
        (Some(w), Some(o))
            if cands[w].influencer_id.as_deref() != Some(o.influencer_id.as_str()) =>
        {
            conflicts.push(Conflict {
                kind: ConflictKind::FirstTouch,
                credited_influencer_id: Some(o.influencer_id.clone()),
                influencer_id: cands[w].influencer_id.clone(),
                source: cands[w].source,
            });
            credit_owner(&mut a, o, catalog);
        }
        (Some(w), _) => {
            let win = &mut cands[w];
            win.status = TouchStatus::Credited;
            a.attributed = true;
            a.attributed_by = Some(win.source);
            a.campaign_id = win.campaign_id.clone();
            a.influencer_id = win.influencer_id.clone();
            a.link_id = win.link_id.clone();
            a.coupon_id = win.coupon_id.clone();
            a.click_at = win.click_at;
            a.credited_click_id = win.click_id.clone();
            a.window_secs = win.window_secs;
            if event.customer_id.is_some() && live_owner.is_none() {
                new_first_touch = Some(FirstTouch {
                    influencer_id: win.influencer_id.clone().unwrap_or_default(),
                    campaign_id: win.campaign_id.clone().unwrap_or_default(),
                    link_id: win.link_id.clone(),
                    coupon_id: win.coupon_id.clone(),
                    by: win.source,
                    at: event.occurred_at,
                });
            }
        }
        (None, Some(o)) => credit_owner(&mut a, o, catalog),
        (None, None) => {
            let expired = cands.iter().find(|c| c.status == TouchStatus::Expired);
            let first = expired.or(cands.first());
            a.reason = Some(first.map_or(TouchStatus::NoTouch, |c| c.status));
            if let Some(c) = expired {
                a.click_at = c.click_at;
                a.window_secs = c.window_secs;
            }
        }
    }
    a.candidates = cands;
    a.conflicts = conflicts;
    Decision {
        attribution: a,
        new_first_touch,
    }
}

fn credit_owner(a: &mut Attribution, o: &FirstTouch, catalog: &Catalog) {
    a.attributed = true;
    a.attributed_by = Some(TouchSource::FirstTouch);
    a.campaign_id = Some(o.campaign_id.clone());
    a.influencer_id = Some(o.influencer_id.clone());
    a.link_id = o.link_id.clone();
    a.coupon_id = o.coupon_id.clone();
    a.window_secs = catalog
        .campaigns
        .get(&o.campaign_id)
        .map(|c| secs_i64(c.attribution_window_secs));
}

#[cfg(test)]
mod tests;
