//! The catalog: entities, the change records on the `catalog` topic, and the state machine.
//!
//! The `catalog` topic has one partition, so every follower applies the same changes in the
//! same order and reaches the same state. Uniqueness (link codes, coupon codes per advertiser)
//! is decided by [`Catalog::apply`]: the first change to claim a code wins and a later claim is
//! refused, so concurrent writers cannot both succeed.

mod entities;
mod integrations;
mod plans;
mod promos;
mod state;

pub use entities::*;
pub use integrations::{
    POSTBACK_MACROS, Postback, PublishableKey, WebhookEndpoint, WebhookEvent, normalize_origin,
};
pub use plans::{
    CommissionPlan, CommissionRate, DEFAULT_COOKIE_SECS, DEFAULT_HOLD_SECS, DEFAULT_MIN_CLICK_SECS,
    Earned, plan_key,
};
pub use promos::{Offer, Variation};
pub use state::{
    Catalog, CatalogConflict, ResolvedLink, SharedCatalog, api_key_prefix, email_key, hash_api_key,
};

use serde::{Deserialize, Serialize};

/// One change to the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CatalogChange {
    /// Created or updated an advertiser.
    AdvertiserUpserted {
        /// The advertiser as it now is.
        advertiser: Advertiser,
    },
    /// Created an API key.
    ApiKeyCreated {
        /// The key (hash only).
        key: ApiKey,
    },
    /// Revoked an API key.
    ApiKeyRevoked {
        /// Key id.
        id: String,
        /// When.
        at: chrono::DateTime<chrono::Utc>,
    },
    /// Created or updated a campaign.
    CampaignUpserted {
        /// The campaign as it now is.
        campaign: Campaign,
    },
    /// Created or updated an influencer.
    InfluencerUpserted {
        /// The influencer as it now is.
        influencer: Influencer,
    },
    /// Assigned an influencer to a campaign.
    InfluencerAssigned {
        /// Campaign.
        campaign_id: String,
        /// Influencer.
        influencer_id: String,
    },
    /// Removed an influencer from a campaign.
    InfluencerUnassigned {
        /// Campaign.
        campaign_id: String,
        /// Influencer.
        influencer_id: String,
    },
    /// Created a tracking link; refused if its code is taken.
    LinkCreated {
        /// The link.
        link: Link,
    },
    /// Gave a link a new code; the old code stops resolving.
    LinkCodeChanged {
        /// Link id.
        id: String,
        /// The new code.
        code: String,
    },
    /// Deactivated a link.
    LinkDeactivated {
        /// Link id.
        id: String,
    },
    /// Created coupons, all or none; refused if any code is taken for the advertiser.
    CouponsCreated {
        /// The coupons.
        coupons: Vec<Coupon>,
    },
    /// Gave a coupon a new code.
    CouponCodeChanged {
        /// Coupon id.
        id: String,
        /// The new code.
        code: String,
    },
    /// Invalidated a coupon.
    CouponInvalidated {
        /// Coupon id.
        id: String,
    },
    /// Created or changed a user; refused if another user has the email.
    UserUpserted {
        /// The user as it now is (its password only as an argon2id hash).
        user: User,
        /// The `version` of the user this change was made from: the change is refused when
        /// the user is at another version (changed or removed meanwhile); none for a new user.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected_version: Option<u64>,
    },
    /// Removed a user; their sessions end.
    UserRemoved {
        /// User id.
        id: String,
    },
    /// Set a campaign's commission plan, or an influencer's override in it (replacing any).
    CommissionPlanSet {
        /// The plan.
        plan: CommissionPlan,
    },
    /// Removed a campaign's plan or an influencer's override; conversions booked before keep
    /// their commissions.
    CommissionPlanRemoved {
        /// Campaign.
        campaign_id: String,
        /// The influencer of an override; none for the campaign's plan.
        influencer_id: Option<String>,
    },
    /// Created or changed a promo offer; refused when its link does not exist.
    OfferUpserted {
        /// The offer as it now is.
        offer: Offer,
    },
    /// Created or changed a variation of an offer; refused when the offer does not exist.
    VariationUpserted {
        /// The variation as it now is.
        variation: Variation,
    },
    /// Created or changed a publishable key; refused when its advertiser does not exist.
    PublishableKeyUpserted {
        /// The key as it now is.
        key: PublishableKey,
    },
    /// Created or changed a webhook endpoint; refused when its advertiser does not exist.
    WebhookUpserted {
        /// The endpoint as it now is.
        endpoint: WebhookEndpoint,
    },
    /// Created or changed a postback; refused when its advertiser does not exist.
    PostbackUpserted {
        /// The postback as it now is.
        postback: Postback,
    },
}

impl CatalogChange {
    /// Partition key: the id of the entity changed.
    pub fn key(&self) -> String {
        match self {
            CatalogChange::AdvertiserUpserted { advertiser } => advertiser.id.clone(),
            CatalogChange::ApiKeyCreated { key } => key.id.clone(),
            CatalogChange::CampaignUpserted { campaign } => campaign.id.clone(),
            CatalogChange::InfluencerUpserted { influencer } => influencer.id.clone(),
            CatalogChange::InfluencerAssigned { campaign_id, .. }
            | CatalogChange::InfluencerUnassigned { campaign_id, .. } => campaign_id.clone(),
            CatalogChange::LinkCreated { link } => link.id.clone(),
            CatalogChange::UserUpserted { user, .. } => user.id.clone(),
            CatalogChange::CommissionPlanSet { plan } => plan.campaign_id.clone(),
            CatalogChange::CommissionPlanRemoved { campaign_id, .. } => campaign_id.clone(),
            CatalogChange::OfferUpserted { offer } => offer.id.clone(),
            CatalogChange::VariationUpserted { variation } => variation.id.clone(),
            CatalogChange::PublishableKeyUpserted { key } => key.key.clone(),
            CatalogChange::WebhookUpserted { endpoint } => endpoint.id.clone(),
            CatalogChange::PostbackUpserted { postback } => postback.id.clone(),
            CatalogChange::CouponsCreated { coupons } => {
                coupons.first().map(|c| c.id.clone()).unwrap_or_default()
            }
            CatalogChange::ApiKeyRevoked { id, .. }
            | CatalogChange::LinkCodeChanged { id, .. }
            | CatalogChange::LinkDeactivated { id }
            | CatalogChange::CouponCodeChanged { id, .. }
            | CatalogChange::CouponInvalidated { id }
            | CatalogChange::UserRemoved { id } => id.clone(),
        }
    }
}
