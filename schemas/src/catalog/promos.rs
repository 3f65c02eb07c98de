//! Newsletter promos (`docs/promos.md`): offers, each pointing at one of its advertiser's
//! tracking links, and their text variations.
//!
//! A variation is shown to readers only when it is approved and its offer is active; the
//! redirector ties a click to a variation through `promo_var` only under the same conditions
//! and only on the offer's own link.

use super::Catalog;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A promo offer: what a newsletter issue promotes, through one tracking link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Offer {
    /// Id, `ofr_…`.
    pub id: String,
    /// The owner: the link's advertiser.
    pub advertiser_id: String,
    /// The tracking link readers follow.
    pub link_id: String,
    /// Display name.
    pub name: String,
    /// Relative weight for `weighted` selection among the advertiser's active offers (1 to
    /// 1,000).
    pub weight: u32,
    /// Whether it may be selected and recorded.
    pub active: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// One text of an offer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Variation {
    /// Id, `var_…`.
    pub id: String,
    /// Its offer.
    pub offer_id: String,
    /// The offer's advertiser.
    pub advertiser_id: String,
    /// Headline (1 to 200 characters).
    pub headline: String,
    /// Body text (at most 2,000 characters).
    pub body: String,
    /// Call-to-action text (1 to 80 characters).
    pub cta: String,
    /// Tone, free text such as `playful` or `formal` (at most 40 characters; may be empty).
    pub tone: String,
    /// Whether it may be shown; only approved variations are selected and recorded.
    pub approved: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl Catalog {
    /// The variation `variation_id` when it is approved and its offer active, with the offer.
    pub fn live_variation(&self, variation_id: &str) -> Option<(&Offer, &Variation)> {
        let v = self.variations.get(variation_id).filter(|v| v.approved)?;
        let o = self.offers.get(&v.offer_id).filter(|o| o.active)?;
        Some((o, v))
    }

    /// The approved variations of an offer, in creation order.
    pub fn approved_variations(&self, offer_id: &str) -> Vec<&Variation> {
        let mut list: Vec<&Variation> = self
            .variations
            .values()
            .filter(|v| v.offer_id == offer_id && v.approved)
            .collect();
        list.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        list
    }
}
