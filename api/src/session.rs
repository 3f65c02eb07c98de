//! Users' sessions: who is calling (the admin token, an advertiser's API key, or a logged-in
//! user), password hashing, session tokens and their cookies, protection against cross-site
//! request forgery, and the rate limits of the login and password routes.
//!
//! - **Passwords** are hashed with argon2id (the `argon2` crate) at m = 19,456 KiB, t = 2,
//!   p = 1, the first of the OWASP Password Storage Cheat Sheet's argon2id configurations, into
//!   a PHC string with a random 16-byte salt. A password has 10 to 256 characters.
//! - **Session tokens** are JWTs (the `jsonwebtoken` crate), HS256 under a key derived from the
//!   admin token (argon2id, so that a token cannot be used to guess it quickly), so every process that checks the
//!   admin token checks sessions too, and replacing the admin token ends every session. Claims:
//!   `sub` (user id), `epoch` (the user's session epoch), `csrf`, `iat`, `exp` (unix seconds).
//!   A token is accepted while it has not expired and the user is active with the same epoch.
//! - **Cookies**: `ct_session` holds the token (`HttpOnly; SameSite=Lax; Path=/`, `Secure` when
//!   the request arrived over HTTPS as a proxy's `X-Forwarded-Proto: https` says), `ct_csrf`
//!   holds the token's `csrf` claim for the page's scripts (not `HttpOnly`). Scripts send the
//!   same token as `Authorization: Bearer <token>` instead.
//! - **Cross-site request forgery**: a request authenticated by the cookie whose method changes
//!   state (anything but GET, HEAD and OPTIONS) must carry `X-CSRF-Token` equal to the token's
//!   `csrf` claim (the double-submit pattern of the OWASP CSRF Prevention Cheat Sheet) and, when
//!   it has an `Origin`, come from the same host; else 403. A bearer token needs neither.

use crate::error::ApiError;
pub use crate::logins::{
    ClientAddr, LOGIN_PER_ACCOUNT_PER_MINUTE, LOGIN_PER_ADDRESS_PER_MINUTE, LoginLimiter,
};
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use chrono::{DateTime, Utc};
use clicktrail_schemas::Catalog;
use clicktrail_schemas::catalog::{Status, User, UserRole};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "ct_session";
/// Name of the cookie holding the CSRF token for the page's scripts.
pub const CSRF_COOKIE: &str = "ct_csrf";
/// Header a cookie-authenticated state-changing request carries the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Default session lifetime: 12 hours.
pub const DEFAULT_SESSION_TTL_SECS: u64 = 12 * 3600;
/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest accepted password, in characters.
pub const MAX_PASSWORD_CHARS: usize = 256;
/// How long a set-password link (invitation or reset) works: 7 days.
pub const SET_PASSWORD_TTL_SECS: i64 = 7 * 86_400;

fn argon2() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks a new password's length. Errors: the message for the `password` field.
pub fn check_password(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        Err(format!("expected at least {MIN_PASSWORD_CHARS} characters"))
    } else if n > MAX_PASSWORD_CHARS {
        Err(format!("expected at most {MAX_PASSWORD_CHARS} characters"))
    } else {
        Ok(())
    }
}

/// The argon2id PHC string of `password`. Takes tens of milliseconds by design: call it from
/// a blocking task.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashes any password")
        .to_string()
}

/// Whether `password` matches the PHC string `phc`; `None` (an account without a password, or
/// an unknown account) checks against a fixed hash so that the answer takes as long.
pub fn verify_password(password: &str, phc: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("not a password of anyone"));
    let (phc, real) = match phc {
        Some(p) => (p, true),
        None => (dummy.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    argon2()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
        && real
}

/// Hex SHA-256 of a one-time set-password token, as kept in the catalog.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The claims of a session token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// The user's session epoch when the token was issued.
    pub epoch: u64,
    /// The CSRF token bound to this session.
    pub csrf: String,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Expires at, unix seconds.
    pub exp: i64,
}

/// Issues and checks session tokens under a key derived from the admin token.
#[derive(Clone)]
pub struct SessionKeys {
    key: Arc<[u8; 32]>,
}

impl SessionKeys {
    /// The session key of a deployment whose admin token is `admin_token`.
    ///
    /// The key is argon2id of the admin token (the parameters of the passwords, a fixed salt):
    /// a session token, which every user holds, cannot be used to test guesses of the admin
    /// token any faster than a password hash. Computed once per token in a process.
    pub fn derive(admin_token: &str) -> SessionKeys {
        use std::collections::HashMap;
        use std::sync::Mutex;
        static KEYS: std::sync::OnceLock<Mutex<HashMap<[u8; 32], SessionKeys>>> =
            std::sync::OnceLock::new();
        let id: [u8; 32] = Sha256::digest(admin_token.as_bytes()).into();
        let cache = KEYS.get_or_init(Mutex::default);
        if let Some(k) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
            return k.clone();
        }
        let mut key = [0u8; 32];
        argon2()
            .hash_password_into(
                admin_token.as_bytes(),
                b"clicktrail session key v1",
                &mut key,
            )
            .expect("argon2 derives a 32-byte key from any token");
        let keys = SessionKeys { key: Arc::new(key) };
        cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, keys.clone());
        keys
    }

    /// A token for `user` valid for `ttl_secs` from `now`, with a fresh CSRF token.
    pub fn issue(&self, user: &User, now: DateTime<Utc>, ttl_secs: u64) -> (String, Claims) {
        let claims = Claims {
            sub: user.id.clone(),
            epoch: user.session_epoch,
            csrf: random_token(24),
            iat: now.timestamp(),
            exp: now.timestamp() + ttl_secs.min(i64::MAX as u64 / 2) as i64,
        };
        let token = jsonwebtoken::encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(self.key.as_slice()),
        )
        .expect("HS256 signs any claims");
        (token, claims)
    }

    /// The claims of a token this deployment issued that has not expired.
    /// Errors: 401 saying whether it expired or is not valid.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        jsonwebtoken::decode::<Claims>(
            token,
            &DecodingKey::from_secret(self.key.as_slice()),
            &validation,
        )
        .map(|d| d.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                ApiError::Unauthorized("the session has expired: log in again".into())
            }
            _ => ApiError::Unauthorized("the session token is not valid".into()),
        })
    }
}

/// `len` random bytes as URL-safe text (hex).
pub fn random_token(len: usize) -> String {
    use argon2::password_hash::rand_core::RngCore;
    let mut bytes = vec![0u8; len];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A logged-in user as a request sees them: the catalog's current role and binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    /// User id.
    pub id: String,
    /// Email address.
    pub email: String,
    /// Role.
    pub role: UserRole,
    /// The advertiser of an advertiser user.
    pub advertiser_id: Option<String>,
    /// The influencer of an influencer user.
    pub influencer_id: Option<String>,
    /// The session's claims.
    pub claims: Claims,
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The deployment's admin bearer token.
    AdminToken,
    /// A logged-in user (cookie or bearer session token).
    User(SessionUser),
}

impl Principal {
    /// Whether this caller has the admin's rights.
    pub fn is_admin(&self) -> bool {
        match self {
            Principal::AdminToken => true,
            Principal::User(u) => u.role == UserRole::Admin,
        }
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The claims of the session token a request presents (bearer, else cookie with its CSRF
/// token), valid and unexpired, whether or not its session has ended since: what a logout needs
/// to end every session of the account even when this one ended a moment before.
pub fn presented_claims(headers: &HeaderMap, admin_token: &str) -> Option<Claims> {
    let (token, by_cookie) = match (bearer(headers), cookie(headers, SESSION_COOKIE)) {
        (Some(t), _) => (t, false),
        (None, Some(t)) => (t, true),
        (None, None) => return None,
    };
    let claims = SessionKeys::derive(admin_token).verify(token).ok()?;
    if by_cookie && check_csrf(headers, &claims).is_err() {
        return None;
    }
    Some(claims)
}

/// Who sent the request, from `Authorization: Bearer` (the admin token or a session token)
/// or the session cookie; `Ok(None)` when it carries neither.
/// Errors: 401 for a wrong token, an expired session, or a user that is disabled, removed or
/// logged out since; 403 for a cookie-authenticated state-changing request without its CSRF
/// token or from another origin.
pub fn authenticate(
    headers: &HeaderMap,
    method: &Method,
    catalog: &Catalog,
    admin_token: &str,
) -> Result<Option<Principal>, ApiError> {
    let (token, by_cookie) = match (bearer(headers), cookie(headers, SESSION_COOKIE)) {
        (Some(t), _) => (t, false),
        (None, Some(t)) => (t, true),
        (None, None) => {
            if headers.contains_key(header::AUTHORIZATION) {
                return Err(ApiError::Unauthorized(
                    "expected Authorization: Bearer <admin token or session token>".into(),
                ));
            }
            return Ok(None);
        }
    };
    if !by_cookie
        && !admin_token.is_empty()
        && bool::from(token.as_bytes().ct_eq(admin_token.as_bytes()))
    {
        return Ok(Some(Principal::AdminToken));
    }
    if token.matches('.').count() != 2 {
        return Err(ApiError::Unauthorized(if by_cookie {
            "the session cookie is not valid: log in again".into()
        } else {
            "the admin token is not valid".into()
        }));
    }
    let claims = SessionKeys::derive(admin_token).verify(token)?;
    let user = catalog
        .users
        .get(&claims.sub)
        .filter(|u| u.status == Status::Active && u.session_epoch == claims.epoch)
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "the session has ended (logged out, password changed or account disabled): log in again"
                    .into(),
            )
        })?;
    if by_cookie && !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        check_csrf(headers, &claims)?;
    }
    Ok(Some(Principal::User(SessionUser {
        id: user.id.clone(),
        email: user.email.clone(),
        role: user.role,
        advertiser_id: user.advertiser_id.clone(),
        influencer_id: user.influencer_id.clone(),
        claims,
    })))
}

fn check_csrf(headers: &HeaderMap, claims: &Claims) -> Result<(), ApiError> {
    let presented = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !bool::from(presented.as_bytes().ct_eq(claims.csrf.as_bytes())) {
        return Err(ApiError::Forbidden(
            "a request made with the session cookie must carry X-CSRF-Token (the value of the ct_csrf cookie)".into(),
        ));
    }
    same_origin(headers)
}

/// Refuses a request whose `Origin` (sent by browsers with every cross-site POST) names another
/// host than the one it was sent to (`Host`, or `X-Forwarded-Host` from a proxy in front).
/// Errors: 403.
pub fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    // Scheme and host with the scheme's default port left out, as browsers write `Origin`.
    let scheme = if is_https(headers) { "https" } else { "http" };
    let canonical = |host: &str| {
        let host = host.trim().to_ascii_lowercase();
        let default = if scheme == "https" { ":443" } else { ":80" };
        let host = host.strip_suffix(default).unwrap_or(&host).to_string();
        format!("{scheme}://{host}")
    };
    let origin_lc = origin.trim().to_ascii_lowercase();
    let ours = ["x-forwarded-host", "host"].iter().any(|name| {
        headers
            .get(*name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|h| canonical(h) == origin_lc)
    });
    if ours {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "cross-origin request from {origin} refused"
        )))
    }
}

/// Whether the request reached the deployment over HTTPS, as a proxy in front says with
/// `X-Forwarded-Proto: https`.
pub fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// The two `Set-Cookie` values of a new session (`max_age_secs` from now).
pub fn session_cookies(
    token: &str,
    csrf: &str,
    max_age_secs: i64,
    secure: bool,
) -> [HeaderValue; 2] {
    let secure = if secure { "; Secure" } else { "" };
    [
        format!("{SESSION_COOKIE}={token}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}"),
        format!("{CSRF_COOKIE}={csrf}; Path=/; Max-Age={max_age_secs}; SameSite=Lax{secure}"),
    ]
    .map(|v| HeaderValue::from_str(&v).expect("cookie values are ASCII"))
}

/// The two `Set-Cookie` values that end a session in the browser.
pub fn cleared_cookies(secure: bool) -> [HeaderValue; 2] {
    session_cookies("", "", 0, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            id: "usr_1".into(),
            email: "a@example.com".into(),
            name: "A".into(),
            role: UserRole::Influencer,
            advertiser_id: None,
            influencer_id: Some("inf_1".into()),
            password_hash: None,
            set_password_hash: None,
            set_password_expires_at: None,
            status: Status::Active,
            version: 0,
            session_epoch: 3,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn passwords_verify_only_themselves() {
        let phc = hash_password("correct horse battery");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse battery", Some(&phc)));
        assert!(!verify_password("correct horse batterY", Some(&phc)));
        assert!(!verify_password("correct horse battery", None));
        assert!(!verify_password("x", Some("not a phc string")));
        assert!(check_password("short").is_err());
        assert!(check_password("long enough!").is_ok());
    }

    #[test]
    fn tokens_expire_and_are_bound_to_their_key() {
        let keys = SessionKeys::derive("admin-token-1");
        let now = Utc::now();
        let (token, claims) = keys.issue(&user(), now, 60);
        assert_eq!(keys.verify(&token).unwrap(), claims);
        assert_eq!(claims.epoch, 3);
        assert!(SessionKeys::derive("admin-token-2").verify(&token).is_err());
        let (old, _) = keys.issue(&user(), now - chrono::Duration::seconds(120), 60);
        let err = keys.verify(&old).unwrap_err().to_string();
        assert!(err.contains("expired"), "{err}");
    }

    #[test]
    fn cookie_lookup() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; ct_session=abc.def.ghi; ct_csrf=x".parse().unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc.def.ghi"));
        assert_eq!(cookie(&h, CSRF_COOKIE), Some("x"));
        assert_eq!(cookie(&h, "nope"), None);
    }
}
