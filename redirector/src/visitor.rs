//! Who clicked, without keeping who they are: truncated IPs, the visitor key and its cookie.

use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// Name of the first-party session cookie.
pub const COOKIE: &str = "ct_vid";
/// Lifetime of the cookie: the dedup window.
pub const COOKIE_MAX_AGE_SECS: u64 = 24 * 3600;

/// The network part kept of an address: IPv4 /24, IPv6 /48.
pub fn truncate_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return truncate_ip(IpAddr::V4(v4));
            }
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

/// The salt of hashed visitor keys on `day`: the configured salt and the UTC date, so a
/// cookie-less visitor's key changes every day at 00:00 UTC and keys of different days cannot
/// be linked without the configured salt.
pub fn daily_salt(salt: &str, day: chrono::NaiveDate) -> String {
    format!("{salt}\u{1f}{day}")
}

/// A salted hash of the truncated address and user agent: 32 hex characters.
pub fn hashed_key(salt: &str, ip_prefix: &str, user_agent: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0]);
    h.update(ip_prefix.as_bytes());
    h.update([0]);
    h.update(user_agent.as_bytes());
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The visitor key carried by a `Cookie` header, if well-formed.
pub fn from_cookie(header: &str) -> Option<&str> {
    header.split(';').find_map(|part| {
        let (name, value) = part.trim().split_once('=')?;
        (name == COOKIE && value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit()))
            .then_some(value)
    })
}

/// The `Set-Cookie` value that keeps the visitor key for 24 hours.
pub fn set_cookie(key: &str) -> String {
    format!("{COOKIE}={key}; Max-Age={COOKIE_MAX_AGE_SECS}; Path=/; HttpOnly; SameSite=Lax")
}

/// Name of the `/ref/…` attribution cookie.
pub const REF_COOKIE: &str = "ct_ref";

/// The `Set-Cookie` value of the attribution cookie: the click id, for `max_age_secs`,
/// first-party (no `Domain`), readable by the site's own scripts (not `HttpOnly`), `Secure`
/// when the request came over HTTPS.
pub fn ref_cookie(click_id: &str, max_age_secs: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{REF_COOKIE}={click_id}; Max-Age={max_age_secs}; Path=/; SameSite=Lax{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_only_the_network() {
        assert_eq!(
            truncate_ip("203.0.113.77".parse().unwrap()),
            "203.0.113.0/24"
        );
        assert_eq!(
            truncate_ip("2001:db8:abcd:12::1".parse().unwrap()),
            "2001:db8:abcd::/48"
        );
        assert_eq!(
            truncate_ip("::ffff:10.1.2.3".parse().unwrap()),
            "10.1.2.0/24"
        );
    }

    #[test]
    fn cookie_round_trip() {
        let k = hashed_key("salt", "1.2.3.0/24", "ua");
        assert_eq!(k.len(), 32);
        let header = format!("a=b; {}", set_cookie(&k).split(';').next().unwrap());
        assert_eq!(from_cookie(&header), Some(k.as_str()));
        assert_eq!(from_cookie("ct_vid=short"), None);
    }
}
