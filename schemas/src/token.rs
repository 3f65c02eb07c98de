//! The self-verifying click token carried as `click_id` on every redirect.
//!
//! Layout before base64url (no padding):
//! `version (1) | key id (1) | click time, ms since epoch (8, big endian) | random (8) |
//! link id (utf-8, rest) | truncated HMAC-SHA256 (12)`.
//! The MAC covers every byte before it. Any process holding the key set can check a token and
//! read its link and click time without a lookup; keys rotate by id, and old ids keep verifying
//! as long as they stay in the set.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::collections::BTreeMap;

const VERSION: u8 = 1;
const MAC_LEN: usize = 12;
const HEADER_LEN: usize = 1 + 1 + 8 + 8;

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickToken {
    /// The tracking link that was followed.
    pub link_id: String,
    /// When the redirect happened, in milliseconds since the Unix epoch.
    pub clicked_at_ms: i64,
    /// The key id that signed it.
    pub key_id: u8,
}

/// Why a token was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not base64url, too short or of an unknown version.
    #[error("click_id is malformed")]
    Malformed,
    /// Signed with a key id this process does not hold.
    #[error("click_id was signed with unknown key {0}")]
    UnknownKey(u8),
    /// The MAC does not match: forged or altered.
    #[error("click_id signature does not match")]
    BadSignature,
}

/// The signing keys: one current key id used to mint, all ids accepted to verify.
#[derive(Clone)]
pub struct ClickKeys {
    current: u8,
    keys: BTreeMap<u8, Vec<u8>>,
}

impl std::fmt::Debug for ClickKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickKeys")
            .field("current", &self.current)
            .field("ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ClickKeys {
    /// A key set with one key.
    pub fn new(id: u8, secret: impl Into<Vec<u8>>) -> Self {
        let mut keys = BTreeMap::new();
        keys.insert(id, secret.into());
        ClickKeys { current: id, keys }
    }

    /// Adds a key that still verifies but no longer mints (or becomes current when `current`).
    pub fn with_key(mut self, id: u8, secret: impl Into<Vec<u8>>, current: bool) -> Self {
        self.keys.insert(id, secret.into());
        if current {
            self.current = id;
        }
        self
    }

    /// Parses `id:secret[,id:secret…]`; the first entry is current.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut out: Option<ClickKeys> = None;
        for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
            let (id, secret) = part
                .split_once(':')
                .ok_or_else(|| format!("click key `{part}` must be `id:secret`"))?;
            let id: u8 = id
                .trim()
                .parse()
                .map_err(|_| format!("click key id `{id}` must be a number 0-255"))?;
            if secret.len() < 16 {
                return Err(format!("click key {id} must be at least 16 characters"));
            }
            out = Some(match out {
                None => ClickKeys::new(id, secret.as_bytes()),
                Some(k) => k.with_key(id, secret.as_bytes(), false),
            });
        }
        out.ok_or_else(|| "no click key given".to_string())
    }

    /// The key id used to mint new tokens.
    pub fn current_id(&self) -> u8 {
        self.current
    }

    fn mac(&self, id: u8, data: &[u8]) -> Option<[u8; MAC_LEN]> {
        let key = self.keys.get(&id)?;
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).ok()?;
        mac.update(data);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        Some(out)
    }

    /// A new token for a click on `link_id` at `clicked_at_ms`, with 8 random bytes.
    pub fn mint(&self, link_id: &str, clicked_at_ms: i64, random: [u8; 8]) -> String {
        let mut buf = Vec::with_capacity(HEADER_LEN + link_id.len() + MAC_LEN);
        buf.push(VERSION);
        buf.push(self.current);
        buf.extend_from_slice(&clicked_at_ms.to_be_bytes());
        buf.extend_from_slice(&random);
        buf.extend_from_slice(link_id.as_bytes());
        let mac = self
            .mac(self.current, &buf)
            .expect("the current key is always in the set");
        buf.extend_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(buf)
    }

    /// Checks a token and reads it.
    pub fn verify(&self, token: &str) -> Result<ClickToken, TokenError> {
        let (read, body, mac) = parse(token)?;
        let expected = self
            .mac(read.key_id, body.as_slice())
            .ok_or(TokenError::UnknownKey(read.key_id))?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], mac.as_slice())) {
            return Err(TokenError::BadSignature);
        }
        Ok(read)
    }
}

/// Reads a token's parts without checking its signature: for telling a caller early that a
/// `click_id` cannot be a click id ([`TokenError::Malformed`]) or names a link it does not own.
/// Never a reason to credit anyone; only [`ClickKeys::verify`] is.
pub fn read_unverified(token: &str) -> Result<ClickToken, TokenError> {
    parse(token).map(|(read, _, _)| read)
}

/// The token read, its signed bytes and its MAC.
fn parse(token: &str) -> Result<(ClickToken, Vec<u8>, Vec<u8>), TokenError> {
    if token.len() > 256 {
        return Err(TokenError::Malformed);
    }
    let mut raw = URL_SAFE_NO_PAD
        .decode(token.as_bytes())
        .map_err(|_| TokenError::Malformed)?;
    if raw.len() <= HEADER_LEN + MAC_LEN || raw[0] != VERSION {
        return Err(TokenError::Malformed);
    }
    let key_id = raw[1];
    let mac = raw.split_off(raw.len() - MAC_LEN);
    let clicked_at_ms = i64::from_be_bytes(raw[2..10].try_into().expect("8 bytes"));
    let link_id =
        String::from_utf8(raw[HEADER_LEN..].to_vec()).map_err(|_| TokenError::Malformed)?;
    Ok((
        ClickToken {
            link_id,
            clicked_at_ms,
            key_id,
        },
        raw,
        mac,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ClickKeys {
        ClickKeys::new(1, b"0123456789abcdef0123".to_vec())
    }

    #[test]
    fn round_trip() {
        let t = keys().mint("lnk_abc", 1_700_000_000_123, [7; 8]);
        let v = keys().verify(&t).unwrap();
        assert_eq!(v.link_id, "lnk_abc");
        assert_eq!(v.clicked_at_ms, 1_700_000_000_123);
        assert_eq!(v.key_id, 1);
    }

    #[test]
    fn altered_tokens_are_rejected() {
        let t = keys().mint("lnk_abc", 1_700_000_000_123, [7; 8]);
        let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        raw[5] ^= 1; // change the click time
        let altered = URL_SAFE_NO_PAD.encode(&raw);
        assert_eq!(keys().verify(&altered), Err(TokenError::BadSignature));
        assert_eq!(keys().verify("not a token"), Err(TokenError::Malformed));
        let other = ClickKeys::new(1, b"another-secret-value".to_vec());
        assert_eq!(other.verify(&t), Err(TokenError::BadSignature));
    }

    #[test]
    fn rotated_keys_still_verify() {
        let old = keys().mint("lnk_1", 5, [1; 8]);
        let rotated = keys().with_key(2, b"second-secret-0123456".to_vec(), true);
        assert_eq!(rotated.verify(&old).unwrap().key_id, 1);
        let new = rotated.mint("lnk_1", 5, [1; 8]);
        assert_eq!(rotated.verify(&new).unwrap().key_id, 2);
        assert_eq!(keys().verify(&new), Err(TokenError::UnknownKey(2)));
    }

    #[test]
    fn parse_spec() {
        let k = ClickKeys::parse("3:abcdefghijklmnopq,1:0123456789abcdef0123").unwrap();
        assert_eq!(k.current_id(), 3);
        assert!(ClickKeys::parse("x:short").is_err());
        assert!(ClickKeys::parse("1:short").is_err());
    }
}
