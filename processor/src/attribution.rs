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
use clicktrail_schemas::catalog::{AttributionSource, Campaign, Coupon, Link};
use clicktrail_schemas::rows::Attribution;
use clicktrail_schemas::token::ClickKeys;
use clicktrail_schemas::wire::EventRecord;
use serde::{Deserialize, Serialize};

/// Clock skew tolerated between a click and an event that claims to precede it.
const SKEW_MS: i64 = 5 * 60 * 1000;

/// One touch considered for an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Where it was found: `coupon`, `click_id`, `ref_code`, `landing_url`, `referrer`.
    pub source: String,
    /// `eligible`, `credited`, `expired`, `campaign_not_live`, `generic`, `inactive`,
    /// `unknown`, `invalid`, `other_advertiser`, `not_allowed`, `before_click`.
    pub status: String,
    /// The influencer it would credit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub influencer_id: Option<String>,
    /// Its campaign.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    /// Its link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_id: Option<String>,
    /// Its coupon.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coupon_id: Option<String>,
    /// The click token, for click candidates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub click_id: Option<String>,
    /// Click time, for click tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub click_at: Option<DateTime<Utc>>,
    /// The campaign's window, for click tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_secs: Option<i64>,
}

impl Candidate {
    fn new(source: &str, status: &str) -> Self {
        Candidate {
            source: source.into(),
            status: status.into(),
            influencer_id: None,
            campaign_id: None,
            link_id: None,
            coupon_id: None,
            click_id: None,
            click_at: None,
            window_secs: None,
        }
    }

    fn for_link(source: &str, status: &str, link: &Link) -> Self {
        Candidate {
            influencer_id: Some(link.influencer_id.clone()),
            campaign_id: Some(link.campaign_id.clone()),
            link_id: Some(link.id.clone()),
            ..Candidate::new(source, status)
        }
    }

    fn for_coupon(status: &str, coupon: &Coupon) -> Self {
        Candidate {
            influencer_id: coupon.influencer_id.clone(),
            campaign_id: Some(coupon.campaign_id.clone()),
            coupon_id: Some(coupon.id.clone()),
            ..Candidate::new("coupon", status)
        }
    }

    fn eligible(&self) -> bool {
        self.status == "eligible"
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
    pub by: String,
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
    fn link_candidate(&self, source: &str, link: &Link) -> Candidate {
        let campaign = self.catalog.campaigns.get(&link.campaign_id);
        let status = if link.advertiser_id != self.event.advertiser_id {
            "other_advertiser"
        } else if !campaign.is_some_and(|c| allows(c, false)) {
            "not_allowed"
        } else {
            "eligible"
        };
        Candidate::for_link(source, status, link)
    }

    fn coupon(&self, code: &str) -> Candidate {
        match self.catalog.coupon(&self.event.advertiser_id, code) {
            None => Candidate::new("coupon", "unknown"),
            Some(c) if !c.active => Candidate::for_coupon("inactive", c),
            Some(c) if c.influencer_id.is_none() => Candidate::for_coupon("generic", c),
            Some(c) => {
                let allowed = self
                    .catalog
                    .campaigns
                    .get(&c.campaign_id)
                    .is_some_and(|camp| allows(camp, true));
                Candidate::for_coupon(if allowed { "eligible" } else { "not_allowed" }, c)
            }
        }
    }

    fn click(&self, source: &str, token: &str) -> Candidate {
        let Ok(t) = self.keys.verify(token) else {
            return Candidate::new(source, "invalid");
        };
        let Some(link) = self.catalog.links.get(&t.link_id) else {
            return Candidate::new(source, "unknown");
        };
        let mut c = self.link_candidate(source, link);
        let click_at = DateTime::from_timestamp_millis(t.clicked_at_ms).unwrap_or_default();
        c.click_at = Some(click_at);
        c.click_id = Some(token.to_string());
        let Some(campaign) = self.catalog.campaigns.get(&link.campaign_id) else {
            c.status = "unknown".into();
            return c;
        };
        c.window_secs = Some(campaign.attribution_window_secs as i64);
        if !c.eligible() {
            return c;
        }
        let elapsed_ms = (self.event.occurred_at - click_at).num_milliseconds();
        if !campaign.is_live_at(click_at) {
            c.status = "campaign_not_live".into();
        } else if elapsed_ms < -SKEW_MS {
            c.status = "before_click".into();
        } else if elapsed_ms > campaign.attribution_window_secs as i64 * 1000 {
            c.status = "expired".into();
        }
        c
    }

    fn code(&self, source: &str, code: &str) -> Candidate {
        match self.catalog.link_by_code(code.trim()) {
            None => Candidate::new(source, "unknown"),
            Some(l) if !l.active => Candidate::for_link(source, "inactive", l),
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
        cands.push(ctx.click("click_id", token));
    }
    if let Some(code) = event.ref_code.as_deref() {
        cands.push(ctx.code("ref_code", code));
    }
    for (source, url) in [
        ("landing_url", &event.landing_url),
        ("referrer", &event.referrer),
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
        .filter(|c| c.status == "expired")
        .filter_map(|c| c.link_id.clone())
        .collect();
    for c in cands.iter_mut() {
        if c.eligible()
            && c.click_at.is_none()
            && c.link_id
                .as_ref()
                .is_some_and(|l| expired_links.contains(l))
        {
            c.status = "expired".into();
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
            let kind = if win.source == "coupon" {
                "coupon_vs_click"
            } else {
                "competing_touch"
            };
            conflicts.push(serde_json::json!({
                "type": kind,
                "credited_influencer_id": win.influencer_id,
                "influencer_id": other.influencer_id,
                "source": other.source,
            }));
        }
    }

    let live_owner = owner.filter(|o| {
        let expiry = catalog
            .campaigns
            .get(&o.campaign_id)
            .and_then(|c| c.trailing_expiry_secs);
        expiry.is_none_or(|secs| (event.occurred_at - o.at).num_seconds() <= secs as i64)
    });

    let mut a = Attribution::default();
    let mut new_first_touch = None;
    match (winner, live_owner) {
        (Some(w), Some(o))
            if cands[w].influencer_id.as_deref() != Some(o.influencer_id.as_str()) =>
        {
            conflicts.push(serde_json::json!({
                "type": "first_touch",
                "credited_influencer_id": o.influencer_id,
                "influencer_id": cands[w].influencer_id,
                "source": cands[w].source,
            }));
            credit_owner(&mut a, o, catalog);
        }
        (Some(w), _) => {
            let win = &mut cands[w];
            win.status = "credited".into();
            a.attributed = true;
            a.attributed_by = win.source.clone();
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
                    by: win.source.clone(),
                    at: event.occurred_at,
                });
            }
        }
        (None, Some(o)) => credit_owner(&mut a, o, catalog),
        (None, None) => {
            let expired = cands.iter().find(|c| c.status == "expired");
            let first = expired.or(cands.first());
            a.reason = Some(
                first
                    .map(|c| c.status.clone())
                    .unwrap_or_else(|| "no_touch".into()),
            );
            if let Some(c) = expired {
                a.click_at = c.click_at;
                a.window_secs = c.window_secs;
            }
        }
    }
    a.candidates = serde_json::to_string(&cands).expect("candidates serialize");
    if !conflicts.is_empty() {
        a.conflict = Some(serde_json::Value::Array(conflicts).to_string());
    }
    Decision {
        attribution: a,
        new_first_touch,
    }
}

fn credit_owner(a: &mut Attribution, o: &FirstTouch, catalog: &Catalog) {
    a.attributed = true;
    a.attributed_by = "first_touch".into();
    a.campaign_id = Some(o.campaign_id.clone());
    a.influencer_id = Some(o.influencer_id.clone());
    a.link_id = o.link_id.clone();
    a.coupon_id = o.coupon_id.clone();
    a.window_secs = catalog
        .campaigns
        .get(&o.campaign_id)
        .map(|c| c.attribution_window_secs as i64);
}

#[cfg(test)]
mod tests;
