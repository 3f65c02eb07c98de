//! What connects an advertiser's own pages and systems (`docs/integration.md`): publishable
//! keys for the browser tracker, webhook endpoints and postbacks.

use super::{Catalog, Status};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A publishable key: `pk_` and 24 characters, safe to put in a web page. It authenticates
/// nothing secret: it names its advertiser for browser events, which are accepted only from
/// the origins on its allow-list (checked against the request's `Origin` header and answered
/// with CORS for those origins only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PublishableKey {
    /// The key itself, `pk_…` (also its id).
    pub key: String,
    /// Owner.
    pub advertiser_id: String,
    /// Origins whose pages may send with it, each `scheme://host[:port]` in lower case,
    /// without path (as browsers send `Origin`). At least one.
    pub allowed_origins: Vec<String>,
    /// Whether it is accepted.
    pub active: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl PublishableKey {
    /// Whether a request's `Origin` header value is on the allow-list (compared in lower case).
    pub fn allows(&self, origin: &str) -> bool {
        let origin = origin.trim().to_ascii_lowercase();
        self.allowed_origins.contains(&origin)
    }
}

/// The canonical form of an origin for an allow-list, as browsers send it in `Origin` (RFC
/// 6454, section 6.1: `scheme://host[:port]`, lower case, no default port), or what is wrong
/// with it: `http` or `https`, a host (a domain name of letters, digits and hyphens, or an IP
/// address), an optional port, nothing else (no path, query, user or fragment; a trailing `/`
/// is dropped).
pub fn normalize_origin(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    let not_origin = || {
        format!(
            "`{raw}` is not an origin: expected scheme://host[:port] with no path, query or user"
        )
    };
    let rest = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://"))
        .or_else(|| {
            raw.get(..8)
                .filter(|p| p.eq_ignore_ascii_case("https://"))
                .map(|_| &raw[8..])
        })
        .or_else(|| {
            raw.get(..7)
                .filter(|p| p.eq_ignore_ascii_case("http://"))
                .map(|_| &raw[7..])
        })
        .ok_or("expected an origin starting with http:// or https://")?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', '\\']) {
        return Err(not_origin());
    }
    let u = url::Url::parse(raw).map_err(|_| not_origin())?;
    let host_ok = match u.host() {
        Some(url::Host::Domain(d)) => d.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        }),
        Some(_) => true,
        None => false,
    };
    if !host_ok || u.port() == Some(0) {
        return Err(not_origin());
    }
    Ok(u.origin().ascii_serialization())
}

/// What a webhook endpoint subscribes to; its name is the webhook body's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum WebhookEvent {
    /// A purchase or signup credited to an influencer.
    #[serde(rename = "conversion.attributed")]
    ConversionAttributed,
    /// A purchase or signup credited to no one.
    #[serde(rename = "conversion.unattributed")]
    ConversionUnattributed,
    /// A commission's hold ended: it may be paid out.
    #[serde(rename = "commission.available")]
    CommissionAvailable,
    /// An influencer was paid (a payout marked paid).
    #[serde(rename = "payout.paid")]
    PayoutPaid,
}

impl WebhookEvent {
    /// The name, as in the body's `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::ConversionAttributed => "conversion.attributed",
            WebhookEvent::ConversionUnattributed => "conversion.unattributed",
            WebhookEvent::CommissionAvailable => "commission.available",
            WebhookEvent::PayoutPaid => "payout.paid",
        }
    }
}

/// An advertiser's webhook endpoint: clicktrail POSTs the events it subscribes to, signed
/// with its secret ([`WebhookEndpoint::secret`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookEndpoint {
    /// Id, `whk_…`.
    pub id: String,
    /// Owner.
    pub advertiser_id: String,
    /// Where deliveries go (`http` or `https`).
    pub url: String,
    /// The events it receives (at least one).
    pub events: Vec<WebhookEvent>,
    /// Whether new messages are delivered to it.
    pub active: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl WebhookEndpoint {
    /// The secret its deliveries are signed with: `whsec_` and 64 hex digits of
    /// HMAC-SHA256(`signing_key`, "clicktrail webhook secret v1" NUL endpoint id), so that
    /// it is never stored; `signing_key` is the deployment's `--signing-key`.
    pub fn secret(&self, signing_key: &str) -> String {
        super::entities::derived_secret(signing_key, b"clicktrail webhook secret v1\0", &self.id)
    }
}

/// A postback: a URL template called (GET) on attribution for one campaign, one influencer,
/// or one influencer in one campaign. Macros `{click_id}`, `{sub_id}`, `{event_id}`,
/// `{action}`, `{amount}` (decimal, in the currency's unit), `{currency}` are replaced by the
/// conversion's values, URL-encoded (empty when absent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Postback {
    /// Id, `pbk_…`.
    pub id: String,
    /// Owner.
    pub advertiser_id: String,
    /// The campaign whose conversions it reports; none for any of the advertiser's.
    pub campaign_id: Option<String>,
    /// The influencer whose conversions it reports; none for any.
    pub influencer_id: Option<String>,
    /// The URL template (`http` or `https`).
    pub url: String,
    /// Whether it is called.
    pub active: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// The macros a postback URL may hold.
pub const POSTBACK_MACROS: [&str; 6] = [
    "click_id", "sub_id", "event_id", "action", "amount", "currency",
];

impl Catalog {
    /// The active key `key` of an active advertiser.
    pub fn publishable_key(&self, key: &str) -> Option<&PublishableKey> {
        let pk = self.publishable_keys.get(key).filter(|k| k.active)?;
        let advertiser = self.advertisers.get(&pk.advertiser_id)?;
        (advertiser.status == Status::Active).then_some(pk)
    }
}

impl Catalog {
    /// The active endpoints of `advertiser_id` subscribed to `event`.
    pub fn webhook_targets(
        &self,
        advertiser_id: &str,
        event: WebhookEvent,
    ) -> Vec<&WebhookEndpoint> {
        let mut list: Vec<&WebhookEndpoint> = self
            .webhooks
            .values()
            .filter(|w| w.active && w.advertiser_id == advertiser_id && w.events.contains(&event))
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }

    /// The active postbacks of `advertiser_id` matching a conversion credited in `campaign_id`
    /// to `influencer_id`.
    pub fn postback_targets(
        &self,
        advertiser_id: &str,
        campaign_id: &str,
        influencer_id: &str,
    ) -> Vec<&Postback> {
        let mut list: Vec<&Postback> = self
            .postbacks
            .values()
            .filter(|p| {
                p.active
                    && p.advertiser_id == advertiser_id
                    && p.campaign_id.as_deref().is_none_or(|c| c == campaign_id)
                    && p.influencer_id
                        .as_deref()
                        .is_none_or(|i| i == influencer_id)
            })
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalized_or_refused() {
        assert_eq!(
            normalize_origin(" HTTPS://Shop.Example.com/ ").unwrap(),
            "https://shop.example.com"
        );
        assert_eq!(
            normalize_origin("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        // Default ports are dropped, as browsers drop them.
        assert_eq!(
            normalize_origin("https://x.com:443").unwrap(),
            "https://x.com"
        );
        assert_eq!(normalize_origin("http://[::1]:80").unwrap(), "http://[::1]");
        for bad in [
            "shop.example.com",
            "ftp://x",
            "https://x.com/path",
            "https://x.com?q=1",
            "https://u@x.com",
            "https://x.com:0",
            "https://x.com:99999",
            "https://",
            "*",
            "https://[::1",
            "https://..",
            "https://-",
            "https://a]:[b",
            "https://x.com.",
        ] {
            assert!(normalize_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_key_allows_its_origins_only() {
        let k = PublishableKey {
            key: "pk_x".into(),
            advertiser_id: "adv".into(),
            allowed_origins: vec!["https://shop.example.com".into()],
            active: true,
            created_at: Utc::now(),
        };
        assert!(k.allows("https://SHOP.example.com"));
        assert!(!k.allows("https://evil.example.com"));
        assert!(!k.allows("http://shop.example.com"));
        assert!(!k.allows("null"));
    }
}
