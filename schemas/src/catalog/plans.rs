//! Commission plans: what an attributed conversion earns its influencer, how long it is held,
//! and the fraud rules that hold it for review (`docs/commissions.md`).
//!
//! A campaign has at most one plan; an influencer may have an override in a campaign, which
//! replaces the campaign's plan for their conversions there. A campaign without a plan earns
//! nothing (its conversions are still attributed and counted).

use super::Catalog;
use crate::money::{BASIS_POINTS, share_half_even};
use crate::wire::Action;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Default hold period: 30 days, in seconds.
pub const DEFAULT_HOLD_SECS: u64 = 30 * 86_400;
/// Default life of the `/ref/…` attribution cookie: 7 days, in seconds.
pub const DEFAULT_COOKIE_SECS: u64 = 7 * 86_400;
/// Default click-injection threshold: a conversion less than 10 seconds after its click is
/// held for review.
pub const DEFAULT_MIN_CLICK_SECS: u64 = 10;

/// How a conversion's commission is computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CommissionRate {
    /// A share of the purchase value, in the purchase's currency: `basis_points` / 10,000
    /// (1,000 is 10 %), rounded half to even to the currency's minor unit. Purchases only.
    Percent {
        /// Hundredths of a percent, 1 to 10,000.
        basis_points: u32,
    },
    /// A fixed amount per action, in `currency`'s minor units.
    Flat {
        /// ISO 4217 code of the amounts.
        currency: String,
        /// Per purchase, minor units; none earns nothing.
        #[serde(default)]
        purchase_minor: Option<i64>,
        /// Per signup, minor units; none earns nothing.
        #[serde(default)]
        signup_minor: Option<i64>,
    },
}

/// A campaign's commission plan, or an influencer's override in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommissionPlan {
    /// The campaign.
    pub campaign_id: String,
    /// The influencer of an override; none for the campaign's plan.
    pub influencer_id: Option<String>,
    /// The campaign's advertiser.
    pub advertiser_id: String,
    /// What a conversion earns.
    pub rate: CommissionRate,
    /// How long a commission stays `pending` after its conversion, seconds (default 30 days).
    pub hold_secs: u64,
    /// The smallest payout per currency (ISO 4217 code → minor units); a currency not listed
    /// has no minimum.
    #[serde(default)]
    pub min_payout: BTreeMap<String, i64>,
    /// Life of the `/ref/…` attribution cookie, seconds (default 7 days). Read from the
    /// campaign's plan only.
    pub cookie_secs: u64,
    /// A conversion less than this many seconds after its click is held for review as click
    /// injection (default 10; 0 turns the rule off).
    pub min_click_secs: u64,
    /// When it was last set.
    pub updated_at: DateTime<Utc>,
}

/// What one conversion earns under a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Earned {
    /// Minor units of `currency`.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
}

impl CommissionPlan {
    /// What a conversion of `action` worth `value_minor` of `currency` earns; none when the
    /// plan pays nothing for it (another action, a zero amount).
    pub fn earned(
        &self,
        action: Action,
        value_minor: Option<i64>,
        currency: &str,
    ) -> Option<Earned> {
        let (amount_minor, currency) = match (&self.rate, action) {
            (CommissionRate::Percent { basis_points }, Action::Purchase) => (
                share_half_even(value_minor?, i64::from(*basis_points), BASIS_POINTS),
                currency.to_string(),
            ),
            (
                CommissionRate::Flat {
                    currency,
                    purchase_minor,
                    ..
                },
                Action::Purchase,
            ) => ((*purchase_minor)?, currency.clone()),
            (
                CommissionRate::Flat {
                    currency,
                    signup_minor,
                    ..
                },
                Action::Signup,
            ) => ((*signup_minor)?, currency.clone()),
            _ => return None,
        };
        (amount_minor > 0).then_some(Earned {
            amount_minor,
            currency,
        })
    }
}

/// The catalog key of a plan: (campaign, influencer or "").
pub fn plan_key(campaign_id: &str, influencer_id: Option<&str>) -> (String, String) {
    (
        campaign_id.to_string(),
        influencer_id.unwrap_or_default().to_string(),
    )
}

impl Catalog {
    /// The plan that applies to `influencer_id`'s conversions in `campaign_id`: their override,
    /// else the campaign's plan.
    pub fn plan_for(&self, campaign_id: &str, influencer_id: &str) -> Option<&CommissionPlan> {
        self.plans
            .get(&plan_key(campaign_id, Some(influencer_id)))
            .or_else(|| self.plans.get(&plan_key(campaign_id, None)))
    }

    /// The campaign's own plan.
    pub fn campaign_plan(&self, campaign_id: &str) -> Option<&CommissionPlan> {
        self.plans.get(&plan_key(campaign_id, None))
    }

    /// Whether `identity` (a customer id or e-mail address from an event) is the influencer's
    /// own: their contact address or the login of a user bound to them, compared trimmed and
    /// case-insensitively. Used by the self-referral rule.
    pub fn is_influencers_own(&self, influencer_id: &str, identity: &str) -> bool {
        let identity = identity.trim();
        if identity.is_empty() {
            return false;
        }
        let same = |s: &str| s.trim().eq_ignore_ascii_case(identity);
        self.influencers
            .get(influencer_id)
            .and_then(|i| i.email.as_deref())
            .is_some_and(same)
            || self
                .users
                .values()
                .any(|u| u.influencer_id.as_deref() == Some(influencer_id) && same(&u.email))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(rate: CommissionRate) -> CommissionPlan {
        CommissionPlan {
            campaign_id: "cmp_1".into(),
            influencer_id: None,
            advertiser_id: "adv_1".into(),
            rate,
            hold_secs: DEFAULT_HOLD_SECS,
            min_payout: BTreeMap::new(),
            cookie_secs: DEFAULT_COOKIE_SECS,
            min_click_secs: DEFAULT_MIN_CLICK_SECS,
            updated_at: DateTime::from_timestamp(0, 0).unwrap(),
        }
    }

    #[test]
    fn percent_plans_pay_a_half_even_share_of_purchases() {
        let p = plan(CommissionRate::Percent {
            basis_points: 1_000,
        });
        let e = p.earned(Action::Purchase, Some(12_345), "EUR").unwrap();
        assert_eq!(
            e.amount_minor, 1_234,
            "1,234.5 cents: the tie goes to the even 1,234"
        );
        assert_eq!(e.currency, "EUR");
        assert_eq!(
            p.earned(Action::Purchase, Some(12_355), "EUR")
                .unwrap()
                .amount_minor,
            1_236
        );
        assert_eq!(p.earned(Action::Signup, None, "EUR"), None);
        assert_eq!(
            p.earned(Action::Purchase, Some(4), "EUR"),
            None,
            "0.4 cent is nothing"
        );
    }

    #[test]
    fn flat_plans_pay_per_action_in_their_currency() {
        let p = plan(CommissionRate::Flat {
            currency: "USD".into(),
            purchase_minor: Some(500),
            signup_minor: Some(100),
        });
        let e = p.earned(Action::Purchase, Some(99_999), "EUR").unwrap();
        assert_eq!((e.amount_minor, e.currency.as_str()), (500, "USD"));
        assert_eq!(
            p.earned(Action::Signup, None, "EUR").unwrap().amount_minor,
            100
        );
        assert_eq!(p.earned(Action::AddToCart, None, "EUR"), None);
    }
}
