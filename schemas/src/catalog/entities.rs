//! Catalog entities as they travel on the `catalog` topic and are returned by the admin API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Active or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// In use.
    #[default]
    Active,
    /// Switched off: its keys stop authenticating, its links stop resolving.
    Inactive,
}

/// A brand that runs campaigns and sends events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Advertiser {
    /// Id, `adv_…`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Active or inactive.
    pub status: Status,
    /// Whether event requests must carry an HMAC signature.
    pub require_signature: bool,
    /// Whether purchases sent from web pages (publishable key, `source: browser`) count
    /// toward revenue and commissions; by default they count as events only, since anyone
    /// can send what a page sends.
    #[serde(default)]
    pub browser_purchases_count: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// An advertiser's API key. The secret is shown once; only its SHA-256 is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKey {
    /// Id, `key_…`.
    pub id: String,
    /// Owner.
    pub advertiser_id: String,
    /// Public prefix, the part of the key before the secret (`ct_XXXXXXXX`).
    pub prefix: String,
    /// Hex SHA-256 of the whole key.
    pub hash: String,
    /// A signing secret kept in the catalog by keys created before signing secrets were
    /// derived; empty for every newer key, whose secret is [`ApiKey::signing_secret`] and is
    /// never written anywhere.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub signing_secret: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Which touches a campaign credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttributionSource {
    /// Coupons and links.
    #[default]
    All,
    /// Tracking links only (click id, ref code, lazy extraction).
    Links,
    /// Coupon codes only.
    Coupons,
}

/// Default attribution window: 30 days.
pub const DEFAULT_WINDOW_SECS: u64 = 30 * 24 * 3600;

/// A campaign under an advertiser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Campaign {
    /// Id, `cmp_…`.
    pub id: String,
    /// Owner.
    pub advertiser_id: String,
    /// Display name.
    pub name: String,
    /// Where redirects go.
    pub destination_url: String,
    /// Live from (inclusive); none means always.
    pub starts_at: Option<DateTime<Utc>>,
    /// Live until (exclusive); none means forever.
    pub ends_at: Option<DateTime<Utc>>,
    /// Which touches are credited.
    pub attribution_source: AttributionSource,
    /// How long after a click an event is credited to it, in seconds (at least 1).
    pub attribution_window_secs: u64,
    /// How long a customer stays owned by their first touch, in seconds; none means forever.
    pub trailing_expiry_secs: Option<u64>,
    /// Active or inactive.
    pub status: Status,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl Campaign {
    /// Whether the campaign is live at `at`.
    pub fn is_live_at(&self, at: DateTime<Utc>) -> bool {
        self.status == Status::Active
            && self.starts_at.is_none_or(|s| at >= s)
            && self.ends_at.is_none_or(|e| at < e)
    }
}

/// A creator or affiliate who shares links and coupons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Influencer {
    /// Id, `inf_…`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Contact address.
    pub email: Option<String>,
    /// Active or inactive.
    pub status: Status,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A tracking link of one influencer in one campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Link {
    /// Id, `lnk_…`.
    pub id: String,
    /// Campaign.
    pub campaign_id: String,
    /// Influencer.
    pub influencer_id: String,
    /// The campaign's advertiser.
    pub advertiser_id: String,
    /// Unique short code used in `/r/{code}`.
    pub code: String,
    /// Whether the code resolves.
    pub active: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A coupon code; generic when it has no influencer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Coupon {
    /// Id, `cpn_…`.
    pub id: String,
    /// Owner (codes are unique per advertiser, case-insensitively).
    pub advertiser_id: String,
    /// Campaign.
    pub campaign_id: String,
    /// Who gets the credit; none for a generic coupon.
    pub influencer_id: Option<String>,
    /// The code as issued.
    pub code: String,
    /// Whether it still credits.
    pub active: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl ApiKey {
    /// The key's secret for request signatures (HMAC-SHA256 over timestamp and body):
    /// `whsec_` and 64 hex digits of HMAC-SHA256(`signing_key`, "clicktrail signing secret
    /// v1" NUL key id), so that the catalog (and the log or topic that holds it) never carries
    /// it. `signing_key` is the deployment's `--signing-key`; replacing it changes every
    /// key's signing secret. Keys from before carry their own, which is returned instead.
    pub fn signing_secret(&self, signing_key: &str) -> String {
        if !self.signing_secret.is_empty() {
            return self.signing_secret.clone();
        }
        derived_secret(signing_key, b"clicktrail signing secret v1\0", &self.id)
    }
}

/// `whsec_` and 64 hex digits of HMAC-SHA256(`signing_key`, `purpose` followed by `id`): a
/// secret of one entity that is never stored, derived again when needed.
pub(super) fn derived_secret(signing_key: &str, purpose: &[u8], id: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(signing_key.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(purpose);
    mac.update(id.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(6 + 64);
    out.push_str("whsec_");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// What a user of the web dashboards and the API may do and see (`docs/roles.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserRole {
    /// Everything, as the admin token.
    Admin,
    /// A member of one advertiser: what that advertiser's API key sees.
    Advertiser,
    /// Bound to one influencer: aggregates of their own links and credited events in the
    /// campaigns they are assigned to.
    Influencer,
}

/// A person who logs in. Never returned as is by the API: its password hash and pending
/// set-password token hash stay in the catalog (see `UserView` in the admin API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Id, `usr_…`.
    pub id: String,
    /// Login name: an email address, unique case-insensitively.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: UserRole,
    /// The advertiser of an `advertiser` user; none otherwise.
    pub advertiser_id: Option<String>,
    /// The influencer of an `influencer` user; none otherwise.
    pub influencer_id: Option<String>,
    /// PHC string of the password's argon2id hash (`$argon2id$v=19$m=19456,t=2,p=1$…`); none
    /// until the user sets a password through their set-password link.
    pub password_hash: Option<String>,
    /// Hex SHA-256 of the pending one-time set-password token (invitation or reset); none when
    /// there is none.
    pub set_password_hash: Option<String>,
    /// When the pending set-password token stops working.
    pub set_password_expires_at: Option<DateTime<Utc>>,
    /// Active, or `inactive` (disabled: cannot log in, its sessions end).
    pub status: Status,
    /// Grows by one with every change of the user; a change names the version it was made
    /// from, so that two changes made from the same version cannot both apply.
    #[serde(default)]
    pub version: u64,
    /// Sessions issued before the latest change of this number are no longer accepted; it
    /// grows when the password is set or reset, the user is disabled, their role changes, or
    /// they log out.
    pub session_epoch: u64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}
