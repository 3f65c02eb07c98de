//! In-memory catalog state and the rules for applying a change to it.

use super::CatalogChange;
use super::entities::*;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Why a change was refused. Followers skip refused changes; the writer reports them as 409.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogConflict {
    /// A link code is already in use.
    #[error("link code `{0}` is already taken")]
    LinkCodeTaken(String),
    /// A coupon code is already in use for the advertiser.
    #[error("coupon code `{0}` already exists for this advertiser")]
    CouponCodeTaken(String),
    /// The entity changed since the version a change was made from.
    #[error("{0} `{1}` changed meanwhile: read it again and retry")]
    Changed(&'static str, String),
    /// Another user has this email address.
    #[error("a user with the email `{0}` already exists")]
    UserEmailTaken(String),
    /// The change names an entity that does not exist.
    #[error("{0} `{1}` does not exist")]
    Missing(&'static str, String),
}

/// A link joined with its campaign: everything a redirect needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedLink {
    /// The link.
    pub link: Link,
    /// Its campaign.
    pub campaign: Campaign,
}

/// The catalog as of some offset of the `catalog` topic.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    /// Advertisers by id.
    pub advertisers: HashMap<String, Advertiser>,
    /// API keys by id.
    pub api_keys: HashMap<String, ApiKey>,
    key_by_prefix: HashMap<String, String>,
    /// Campaigns by id.
    pub campaigns: HashMap<String, Campaign>,
    /// Influencers by id.
    pub influencers: HashMap<String, Influencer>,
    /// (campaign id, influencer id) pairs.
    pub assignments: HashSet<(String, String)>,
    /// Links by id.
    pub links: HashMap<String, Link>,
    link_by_code: HashMap<String, String>,
    /// Coupons by id.
    pub coupons: HashMap<String, Coupon>,
    coupon_by_code: HashMap<(String, String), String>,
    /// Users by id.
    pub users: HashMap<String, User>,
    user_by_email: HashMap<String, String>,
    /// Commission plans by (campaign id, influencer id or "" for the campaign's own).
    pub plans: HashMap<(String, String), super::CommissionPlan>,
    /// Promo offers by id.
    pub offers: HashMap<String, super::Offer>,
    /// Promo variations by id.
    pub variations: HashMap<String, super::Variation>,
    /// Publishable keys by key.
    pub publishable_keys: HashMap<String, super::PublishableKey>,
    /// Webhook endpoints by id.
    pub webhooks: HashMap<String, super::WebhookEndpoint>,
    /// Postbacks by id.
    pub postbacks: HashMap<String, super::Postback>,
    /// Number of changes applied (refused ones included).
    pub applied: u64,
}

/// Hex SHA-256 of an API key, as kept in the catalog.
pub fn hash_api_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The public prefix of an API key `ct_XXXXXXXX_secret`: `ct_XXXXXXXX`.
pub fn api_key_prefix(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("ct_")?;
    let idx = rest.find('_')?;
    Some(&key[..3 + idx])
}

impl Catalog {
    /// Applies one change. A refused change leaves the state as it was.
    pub fn apply(&mut self, change: &CatalogChange) -> Result<(), CatalogConflict> {
        self.applied += 1;
        match change {
            CatalogChange::AdvertiserUpserted { advertiser } => {
                self.advertisers
                    .insert(advertiser.id.clone(), advertiser.clone());
            }
            CatalogChange::ApiKeyCreated { key } => {
                self.key_by_prefix
                    .insert(key.prefix.clone(), key.id.clone());
                self.api_keys.insert(key.id.clone(), key.clone());
            }
            CatalogChange::ApiKeyRevoked { id, at } => {
                let key = self
                    .api_keys
                    .get_mut(id)
                    .ok_or_else(|| CatalogConflict::Missing("api key", id.clone()))?;
                // The earliest revocation wins: a key revoked stays revoked, and an explicit
                // revocation during a rotation's overlap ends the overlap.
                key.revoked_at = Some(key.revoked_at.map_or(*at, |t| t.min(*at)));
            }
            CatalogChange::CampaignUpserted { campaign } => {
                self.campaigns.insert(campaign.id.clone(), campaign.clone());
            }
            CatalogChange::InfluencerUpserted { influencer } => {
                self.influencers
                    .insert(influencer.id.clone(), influencer.clone());
            }
            CatalogChange::InfluencerAssigned {
                campaign_id,
                influencer_id,
            } => {
                self.assignments
                    .insert((campaign_id.clone(), influencer_id.clone()));
            }
            CatalogChange::InfluencerUnassigned {
                campaign_id,
                influencer_id,
            } => {
                self.assignments
                    .remove(&(campaign_id.clone(), influencer_id.clone()));
            }
            CatalogChange::LinkCreated { link } => {
                if self.link_by_code.contains_key(&code_key(&link.code)) {
                    return Err(CatalogConflict::LinkCodeTaken(link.code.clone()));
                }
                self.link_by_code
                    .insert(code_key(&link.code), link.id.clone());
                self.links.insert(link.id.clone(), link.clone());
            }
            CatalogChange::LinkCodeChanged { id, code } => {
                if self.link_by_code.contains_key(&code_key(code)) {
                    return Err(CatalogConflict::LinkCodeTaken(code.clone()));
                }
                let link = self
                    .links
                    .get_mut(id)
                    .ok_or_else(|| CatalogConflict::Missing("link", id.clone()))?;
                self.link_by_code.remove(&code_key(&link.code));
                link.code = code.clone();
                self.link_by_code.insert(code_key(code), id.clone());
            }
            CatalogChange::LinkDeactivated { id } => {
                self.links
                    .get_mut(id)
                    .ok_or_else(|| CatalogConflict::Missing("link", id.clone()))?
                    .active = false;
            }
            CatalogChange::CouponsCreated { coupons } => {
                let mut seen = HashSet::new();
                for c in coupons {
                    let k = (c.advertiser_id.clone(), c.code.to_ascii_uppercase());
                    if self.coupon_by_code.contains_key(&k) || !seen.insert(k) {
                        return Err(CatalogConflict::CouponCodeTaken(c.code.clone()));
                    }
                }
                for c in coupons {
                    self.coupon_by_code.insert(
                        (c.advertiser_id.clone(), c.code.to_ascii_uppercase()),
                        c.id.clone(),
                    );
                    self.coupons.insert(c.id.clone(), c.clone());
                }
            }
            CatalogChange::CouponCodeChanged { id, code } => {
                let coupon = self
                    .coupons
                    .get(id)
                    .ok_or_else(|| CatalogConflict::Missing("coupon", id.clone()))?;
                let k = (coupon.advertiser_id.clone(), code.to_ascii_uppercase());
                if self.coupon_by_code.contains_key(&k) {
                    return Err(CatalogConflict::CouponCodeTaken(code.clone()));
                }
                let old = (
                    coupon.advertiser_id.clone(),
                    coupon.code.to_ascii_uppercase(),
                );
                self.coupon_by_code.remove(&old);
                self.coupon_by_code.insert(k, id.clone());
                let coupon = self.coupons.get_mut(id).expect("checked above");
                coupon.code = code.clone();
            }
            CatalogChange::CouponInvalidated { id } => {
                self.coupons
                    .get_mut(id)
                    .ok_or_else(|| CatalogConflict::Missing("coupon", id.clone()))?
                    .active = false;
            }
            CatalogChange::UserUpserted {
                user,
                expected_version,
            } => {
                self.check_user(user, *expected_version)?;
                if let Some(old) = self.users.get(&user.id) {
                    self.user_by_email.remove(&email_key(&old.email));
                }
                self.user_by_email
                    .insert(email_key(&user.email), user.id.clone());
                self.users.insert(user.id.clone(), user.clone());
            }
            CatalogChange::UserRemoved { id } => {
                let user = self
                    .users
                    .remove(id)
                    .ok_or_else(|| CatalogConflict::Missing("user", id.clone()))?;
                self.user_by_email.remove(&email_key(&user.email));
            }
            CatalogChange::CommissionPlanSet { plan } => {
                let key = super::plan_key(&plan.campaign_id, plan.influencer_id.as_deref());
                self.plans.insert(key, plan.clone());
            }
            CatalogChange::CommissionPlanRemoved {
                campaign_id,
                influencer_id,
            } => {
                self.plans
                    .remove(&super::plan_key(campaign_id, influencer_id.as_deref()));
            }
            CatalogChange::OfferUpserted { offer } => {
                if !self.links.contains_key(&offer.link_id) {
                    return Err(CatalogConflict::Missing("link", offer.link_id.clone()));
                }
                self.offers.insert(offer.id.clone(), offer.clone());
            }
            CatalogChange::VariationUpserted { variation } => {
                if !self.offers.contains_key(&variation.offer_id) {
                    return Err(CatalogConflict::Missing(
                        "offer",
                        variation.offer_id.clone(),
                    ));
                }
                self.variations
                    .insert(variation.id.clone(), variation.clone());
            }
            CatalogChange::PublishableKeyUpserted { key } => {
                self.owned_by_advertiser(&key.advertiser_id)?;
                self.publishable_keys.insert(key.key.clone(), key.clone());
            }
            CatalogChange::WebhookUpserted { endpoint } => {
                self.owned_by_advertiser(&endpoint.advertiser_id)?;
                self.webhooks.insert(endpoint.id.clone(), endpoint.clone());
            }
            CatalogChange::PostbackUpserted { postback } => {
                self.owned_by_advertiser(&postback.advertiser_id)?;
                self.postbacks.insert(postback.id.clone(), postback.clone());
            }
        }
        Ok(())
    }

    /// Whether a change would be refused, without applying it.
    pub fn check(&self, change: &CatalogChange) -> Result<(), CatalogConflict> {
        match change {
            CatalogChange::LinkCreated { link }
                if self.link_by_code.contains_key(&code_key(&link.code)) =>
            {
                Err(CatalogConflict::LinkCodeTaken(link.code.clone()))
            }
            CatalogChange::LinkCodeChanged { code, .. }
                if self.link_by_code.contains_key(&code_key(code)) =>
            {
                Err(CatalogConflict::LinkCodeTaken(code.clone()))
            }
            CatalogChange::CouponsCreated { coupons } => {
                let mut seen = HashSet::new();
                for c in coupons {
                    let k = (c.advertiser_id.clone(), c.code.to_ascii_uppercase());
                    if self.coupon_by_code.contains_key(&k) || !seen.insert(k) {
                        return Err(CatalogConflict::CouponCodeTaken(c.code.clone()));
                    }
                }
                Ok(())
            }
            CatalogChange::UserUpserted {
                user,
                expected_version,
            } => self.check_user(user, *expected_version),
            _ => Ok(()),
        }
    }

    /// The link and campaign behind an active code, if it resolves.
    pub fn resolve_code(&self, code: &str) -> Option<ResolvedLink> {
        let link = self.links.get(self.link_by_code.get(&code_key(code))?)?;
        if !link.active {
            return None;
        }
        let campaign = self.campaigns.get(&link.campaign_id)?;
        let advertiser = self.advertisers.get(&link.advertiser_id)?;
        if advertiser.status != Status::Active {
            return None;
        }
        Some(ResolvedLink {
            link: link.clone(),
            campaign: campaign.clone(),
        })
    }

    /// The link with this code, active or not.
    pub fn link_by_code(&self, code: &str) -> Option<&Link> {
        self.links.get(self.link_by_code.get(&code_key(code))?)
    }

    /// The coupon with this code for an advertiser, matched case-insensitively.
    pub fn coupon(&self, advertiser_id: &str, code: &str) -> Option<&Coupon> {
        let id = self
            .coupon_by_code
            .get(&(advertiser_id.to_string(), code.trim().to_ascii_uppercase()))?;
        self.coupons.get(id)
    }

    /// The live key and its active advertiser for a presented API key, compared in constant
    /// time against the stored hash. A key is live until its revocation time, which a
    /// rotation sets in the future (the overlap).
    pub fn authenticate(
        &self,
        presented: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<(&ApiKey, &Advertiser)> {
        let prefix = api_key_prefix(presented)?;
        let key = self.api_keys.get(self.key_by_prefix.get(prefix)?)?;
        let hash = hash_api_key(presented);
        let same: bool = subtle::ConstantTimeEq::ct_eq(hash.as_bytes(), key.hash.as_bytes()).into();
        if !same || key.revoked_at.is_some_and(|at| at <= now) {
            return None;
        }
        let advertiser = self.advertisers.get(&key.advertiser_id)?;
        (advertiser.status == Status::Active).then_some((key, advertiser))
    }

    /// The user with this email address, compared case-insensitively.
    pub fn user_by_email(&self, email: &str) -> Option<&User> {
        self.users.get(self.user_by_email.get(&email_key(email))?)
    }

    fn check_user(&self, user: &User, expected: Option<u64>) -> Result<(), CatalogConflict> {
        if let Some(v) = expected
            && self.users.get(&user.id).map(|u| u.version) != Some(v)
        {
            return Err(CatalogConflict::Changed("user", user.id.clone()));
        }
        match self.user_by_email.get(&email_key(&user.email)) {
            Some(id) if *id != user.id => Err(CatalogConflict::UserEmailTaken(user.email.clone())),
            _ => Ok(()),
        }
    }

    /// Refuses a change whose advertiser does not exist.
    fn owned_by_advertiser(&self, advertiser_id: &str) -> Result<(), CatalogConflict> {
        if self.advertisers.contains_key(advertiser_id) {
            Ok(())
        } else {
            Err(CatalogConflict::Missing(
                "advertiser",
                advertiser_id.to_string(),
            ))
        }
    }

    /// Whether a prefix is already used by some key.
    pub fn key_prefix_taken(&self, prefix: &str) -> bool {
        self.key_by_prefix.contains_key(prefix)
    }
}

/// The form a link code is looked up and kept unique in: trimmed and lower-cased, because codes
/// are typed by people from printed material (`/r/ABC123` is the link `abc123`).
pub fn code_key(code: &str) -> String {
    code.trim().to_lowercase()
}

/// The form an email address is looked up and kept unique in: trimmed and lower-cased.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A catalog snapshot shared between threads.
pub type SharedCatalog = Arc<Catalog>;

#[cfg(test)]
mod tests;
