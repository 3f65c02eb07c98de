//! Authentication: the admin bearer token, advertiser API keys (`X-API-KEY`) and request
//! signatures.
//!
//! Signature header: `X-Clicktrail-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` where the
//! MAC is computed with the key's signing secret over `"<t>.<raw body>"`. It must be within
//! five minutes of the server's clock and is compared in constant time.

use crate::error::ApiError;
use axum::http::HeaderMap;
use clicktrail_schemas::Catalog;
use clicktrail_schemas::catalog::{Advertiser, ApiKey};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Header carrying the API key.
pub const API_KEY_HEADER: &str = "x-api-key";
/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-clicktrail-signature";
/// Allowed clock difference for signatures, in seconds.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// Checks `Authorization: Bearer <admin token>`.
pub fn require_admin(headers: &HeaderMap, admin_token: &str) -> Result<(), ApiError> {
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::Unauthorized("missing Authorization: Bearer <admin token>".into())
        })?;
    if bool::from(presented.trim().as_bytes().ct_eq(admin_token.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized(
            "the admin token is not valid".into(),
        ))
    }
}

/// The key and advertiser behind `X-API-KEY`.
pub fn api_key<'a>(
    headers: &HeaderMap,
    catalog: &'a Catalog,
) -> Result<(&'a ApiKey, &'a Advertiser), ApiError> {
    let presented = headers
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::Unauthorized("missing X-API-KEY header".into()))?;
    catalog
        .authenticate(presented.trim(), chrono::Utc::now())
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "the API key is not valid, revoked, or its advertiser is inactive".into(),
            )
        })
}

/// The hex signature of `body` at `timestamp` under `secret`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks the signature header over `body` at `now` (unix seconds).
pub fn verify_signature(
    headers: &HeaderMap,
    secret: &str,
    body: &[u8],
    now: i64,
) -> Result<(), ApiError> {
    let header = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "this advertiser requires signed requests: missing X-Clicktrail-Signature header"
                    .into(),
            )
        })?;
    let mut ts = None;
    let mut sig = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => ts = v.parse::<i64>().ok(),
            Some(("v1", v)) => sig = Some(v),
            _ => {}
        }
    }
    let (Some(ts), Some(sig)) = (ts, sig) else {
        return Err(ApiError::Unauthorized(
            "X-Clicktrail-Signature must be `t=<unix seconds>,v1=<hex>`".into(),
        ));
    };
    if (now - ts).abs() > SIGNATURE_TOLERANCE_SECS {
        return Err(ApiError::Unauthorized(format!(
            "the signature timestamp is more than {SIGNATURE_TOLERANCE_SECS} seconds from the server's clock"
        )));
    }
    let expected = sign(secret, ts, body);
    if bool::from(expected.as_bytes().ct_eq(sig.trim().as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized(
            "the signature does not match the body".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE_HEADER, v.parse().unwrap());
        h
    }

    #[test]
    fn signatures() {
        let now = 1_700_000_000;
        let sig = sign("s3cret", now, b"{}");
        assert!(
            verify_signature(
                &headers(&format!("t={now},v1={sig}")),
                "s3cret",
                b"{}",
                now + 10
            )
            .is_ok()
        );
        assert!(
            verify_signature(
                &headers(&format!("t={now},v1={sig}")),
                "s3cret",
                b"{ }",
                now
            )
            .is_err()
        );
        assert!(
            verify_signature(
                &headers(&format!("t={now},v1={sig}")),
                "s3cret",
                b"{}",
                now + 301
            )
            .is_err()
        );
        assert!(verify_signature(&headers("garbage"), "s3cret", b"{}", now).is_err());
        assert!(verify_signature(&HeaderMap::new(), "s3cret", b"{}", now).is_err());
    }
}
