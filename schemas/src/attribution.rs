//! How an event was attributed, typed: where each candidate touch was found
//! ([`TouchSource`]), what became of it ([`TouchStatus`]), and the competing touches that were
//! not credited ([`Conflict`]). The wire names (snake case) are what the store, the audit and
//! `docs/attribution.md` show.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a touch was found, and so the rule that credited an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TouchSource {
    /// The event's `coupon_code`.
    Coupon,
    /// The event's `click_id`.
    ClickId,
    /// The event's `ref_code`.
    RefCode,
    /// A `ref_code` or `click_id` found in the event's `landing_url`.
    LandingUrl,
    /// A `ref_code` or `click_id` found in the event's `referrer`.
    Referrer,
    /// The customer's first attributed touch (only as the rule that credited an event).
    FirstTouch,
}

impl TouchSource {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TouchSource::Coupon => "coupon",
            TouchSource::ClickId => "click_id",
            TouchSource::RefCode => "ref_code",
            TouchSource::LandingUrl => "landing_url",
            TouchSource::Referrer => "referrer",
            TouchSource::FirstTouch => "first_touch",
        }
    }
}

/// What became of a candidate touch; as an event's `reason`, why it got no credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TouchStatus {
    /// It could credit the event.
    Eligible,
    /// It credited the event.
    Credited,
    /// Its click was longer ago than the campaign's attribution window.
    Expired,
    /// Its click came while the campaign was outside its live dates.
    CampaignNotLive,
    /// A coupon of no influencer.
    Generic,
    /// A deactivated coupon or link.
    Inactive,
    /// No such coupon, link or campaign.
    Unknown,
    /// A click token that does not verify.
    Invalid,
    /// A link or click of another advertiser.
    OtherAdvertiser,
    /// The campaign's attribution source excludes this kind of touch.
    NotAllowed,
    /// The event claims to precede its click by more than the tolerated skew.
    BeforeClick,
    /// No candidate at all (only as a `reason`).
    NoTouch,
}

impl TouchStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TouchStatus::Eligible => "eligible",
            TouchStatus::Credited => "credited",
            TouchStatus::Expired => "expired",
            TouchStatus::CampaignNotLive => "campaign_not_live",
            TouchStatus::Generic => "generic",
            TouchStatus::Inactive => "inactive",
            TouchStatus::Unknown => "unknown",
            TouchStatus::Invalid => "invalid",
            TouchStatus::OtherAdvertiser => "other_advertiser",
            TouchStatus::NotAllowed => "not_allowed",
            TouchStatus::BeforeClick => "before_click",
            TouchStatus::NoTouch => "no_touch",
        }
    }
}

/// One touch considered for an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Where it was found.
    pub source: TouchSource,
    /// What became of it.
    pub status: TouchStatus,
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
    /// The campaign's window in seconds, for click tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_secs: Option<i64>,
}

impl Candidate {
    /// A candidate with nothing known but where it was found and its status.
    pub fn new(source: TouchSource, status: TouchStatus) -> Self {
        Candidate {
            source,
            status,
            influencer_id: None,
            campaign_id: None,
            link_id: None,
            coupon_id: None,
            click_id: None,
            click_at: None,
            window_secs: None,
        }
    }

    /// Whether it could credit the event.
    pub fn eligible(&self) -> bool {
        self.status == TouchStatus::Eligible
    }
}

/// Why a competing touch was not credited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// A coupon of one influencer was credited over a click or code of another.
    CouponVsClick,
    /// An earlier candidate of the waterfall was credited over another influencer's touch.
    CompetingTouch,
    /// The customer's first touch owns them: the event's own winner was not credited.
    FirstTouch,
}

/// A touch that could have credited another influencer and did not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    /// Why it lost.
    #[serde(rename = "type")]
    pub kind: ConflictKind,
    /// The influencer credited instead.
    pub credited_influencer_id: Option<String>,
    /// The influencer of the touch that lost.
    pub influencer_id: Option<String>,
    /// Where the losing touch was found.
    pub source: TouchSource,
}

/// Serializes attribution lists (candidates, conflicts) as the store keeps them: a JSON array.
pub fn to_json<T: Serialize>(items: &[T]) -> String {
    // Candidates and conflicts hold only strings, numbers and times: they always serialize.
    serde_json::to_string(items).expect("attribution lists serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_the_serde_names() {
        for s in [
            TouchSource::Coupon,
            TouchSource::ClickId,
            TouchSource::RefCode,
            TouchSource::LandingUrl,
            TouchSource::Referrer,
            TouchSource::FirstTouch,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in [
            TouchStatus::Eligible,
            TouchStatus::CampaignNotLive,
            TouchStatus::OtherAdvertiser,
            TouchStatus::BeforeClick,
            TouchStatus::NoTouch,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        let c = Conflict {
            kind: ConflictKind::CouponVsClick,
            credited_influencer_id: Some("a".into()),
            influencer_id: Some("b".into()),
            source: TouchSource::ClickId,
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["type"], "coupon_vs_click");
        assert_eq!(v["source"], "click_id");
    }
}
