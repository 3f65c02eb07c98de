//! Logging in and out, setting a password from a one-time link, changing one's own password.
//!
//! Every route here is rate limited per account and per client address
//! ([`clicktrail_api::session::LoginLimiter`]) and answers a failed login with the same 401
//! whether or not the account exists (an unknown account is checked against a fixed hash, so it
//! takes as long). A successful login answers the session token in the body (for scripts:
//! `Authorization: Bearer`) and in the `ct_session` cookie (for the browser), with `ct_csrf`.

use crate::IngestState;
use crate::admin::JsonIn;
use crate::admin::users::{UserView, save};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use chrono::{DateTime, TimeZone, Utc};
use clicktrail_api::error::{ApiError, FieldError};
use clicktrail_api::session::{
    ClientAddr, Principal, SessionKeys, authenticate, check_password, cleared_cookies,
    hash_password, hash_token, is_https, presented_claims, same_origin, session_cookies,
    verify_password,
};
use clicktrail_schemas::catalog::{Status, User};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Email address and password.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// Login email address.
    pub email: String,
    /// Password.
    pub password: String,
}

/// A one-time set-password token and the new password.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    /// The token from the set-password link (after `#token=`).
    pub token: String,
    /// The new password, 10 to 256 characters.
    pub password: String,
}

/// The current password and a new one.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    /// The current password.
    pub current_password: String,
    /// The new password, 10 to 256 characters.
    pub new_password: String,
}

/// A new session.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Session {
    /// The session token: send it as `Authorization: Bearer <token>`.
    pub token: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// The CSRF token a page sends as `X-CSRF-Token` with the cookie (also in `ct_csrf`).
    pub csrf_token: String,
    /// Who is logged in.
    pub user: UserView,
}

pub(crate) fn routes() -> Router<IngestState> {
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/auth/set-password", post(set_password))
        .route("/api/v1/me/password", post(change_password))
}

fn addr(a: Option<Extension<ClientAddr>>) -> IpAddr {
    a.map(|Extension(ClientAddr(ip))| ip)
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// Answers a fresh session for `user`: the body and both cookies.
fn session_response(s: &IngestState, user: &User, headers: &HeaderMap) -> Response {
    let ttl = s.config.session_ttl_secs;
    let (token, claims) = SessionKeys::derive(&s.config.admin_token).issue(user, Utc::now(), ttl);
    let cookies = session_cookies(&token, &claims.csrf, ttl as i64, is_https(headers));
    let body = Session {
        token,
        expires_at: Utc
            .timestamp_opt(claims.exp, 0)
            .single()
            .unwrap_or_default(),
        csrf_token: claims.csrf,
        user: UserView::from(user),
    };
    let mut resp = Json(body).into_response();
    for c in cookies {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    resp
}

/// Password hashes computed at once: each takes 19 MiB and tens of milliseconds, so a flood of
/// logins from many addresses queues here instead of taking every blocking thread and their
/// memory (at most this many × 19 MiB).
fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        tokio::sync::Semaphore::new(cores.clamp(1, 8))
    })
}

/// Runs one password hash or verification on a blocking thread, within [`hashing_slots`].
async fn hashing<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    let _slot = hashing_slots()
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
}

async fn hash_blocking(password: String) -> Result<String, ApiError> {
    hashing(move || hash_password(&password)).await
}

async fn verify_blocking(password: String, phc: Option<String>) -> Result<bool, ApiError> {
    hashing(move || verify_password(&password, phc.as_deref())).await
}

fn used_link() -> ApiError {
    ApiError::fields(vec![FieldError::new(
        "token",
        "this set-password link is not valid, was used already or has expired: ask an admin for a new one",
    )])
}

fn wrong_login() -> ApiError {
    ApiError::Unauthorized("the email address or the password is wrong".into())
}

/// Log in with email address and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "accounts", request_body = Login,
    responses((status = 200, description = "Logged in; also sets the ct_session and ct_csrf cookies", body = Session),
        (status = 401, description = "Wrong email address or password (the same answer for an unknown account)"),
        (status = 403, description = "Sent by a page of another site (Origin)"),
        (status = 429, description = "Too many attempts for this account or from this address; see Retry-After")))]
pub async fn login(
    State(s): State<IngestState>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    JsonIn(req): JsonIn<Login>,
) -> Result<Response, ApiError> {
    // A page of another site must not log this browser in (to an account of its choosing).
    same_origin(&headers)?;
    s.logins.check(Some(&req.email), addr(client))?;
    let user = s.catalog.snapshot().user_by_email(&req.email).cloned();
    let phc = user
        .as_ref()
        .filter(|u| u.status == Status::Active)
        .and_then(|u| u.password_hash.clone());
    if !verify_blocking(req.password, phc).await? {
        return Err(wrong_login());
    }
    let user = user.ok_or_else(wrong_login)?;
    tracing::info!(user = %user.id, "logged in");
    Ok(session_response(&s, &user, &headers))
}

/// Log out: ends every session of the account and clears the cookies.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "accounts",
    responses((status = 204, description = "Logged out; the cookies are cleared"), (status = 403, description = "Cookie without X-CSRF-Token")))]
pub async fn logout(
    State(s): State<IngestState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    same_origin(&headers)?;
    let catalog = s.catalog.snapshot();
    let account = match authenticate(&headers, &method, &catalog, &s.config.admin_token) {
        Ok(Some(Principal::User(me))) => Some(me.id),
        // A cookie without its CSRF token (another site asking): nothing happens.
        Err(e @ ApiError::Forbidden(_)) => return Err(e),
        // A session ended a moment ago (a password change of the same account racing this
        // logout): the account's newer sessions end all the same.
        Err(ApiError::Unauthorized(_)) => {
            presented_claims(&headers, &s.config.admin_token).map(|c| c.sub)
        }
        _ => None,
    };
    // Ends every session of the account (retried when the user changed meanwhile); without a
    // session (expired, or none), only the cookies go.
    if let Some(id) = account {
        for attempt in 0.. {
            let Some(before) = s.catalog.snapshot().users.get(&id).cloned() else {
                break;
            };
            let mut after = before.clone();
            after.session_epoch += 1;
            match save(&s, &before, after).await {
                Ok(_) => break,
                Err(ApiError::Conflict(_)) if attempt < 3 => continue,
                Err(e) => return Err(e),
            }
        }
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    for c in cleared_cookies(is_https(&headers)) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(resp)
}

/// Set a password with the token of a set-password link (invitation or reset), and log in.
#[utoipa::path(post, path = "/api/v1/auth/set-password", tag = "accounts", request_body = SetPassword,
    responses((status = 200, description = "Password set; logged in", body = Session),
        (status = 400, description = "The password is too short or too long, or the link is not valid or has expired"),
        (status = 429, description = "Too many attempts from this address")))]
pub async fn set_password(
    State(s): State<IngestState>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    JsonIn(req): JsonIn<SetPassword>,
) -> Result<Response, ApiError> {
    same_origin(&headers)?;
    s.logins.check(None, addr(client))?;
    check_password(&req.password).map_err(|m| ApiError::field("password", m))?;
    let hash = hash_token(req.token.trim());
    let user_id = req.token.split('.').next().unwrap_or_default();
    let now = Utc::now();
    let mut user = s
        .catalog
        .snapshot()
        .users
        .get(user_id)
        .filter(|u| {
            u.status == Status::Active
                && u.set_password_expires_at.is_some_and(|t| t > now)
                && u.set_password_hash.as_deref().is_some_and(|h| {
                    bool::from(subtle::ConstantTimeEq::ct_eq(h.as_bytes(), hash.as_bytes()))
                })
        })
        .cloned()
        .ok_or_else(used_link)?;
    let before = user.clone();
    user.password_hash = Some(hash_blocking(req.password).await?);
    user.set_password_hash = None;
    user.set_password_expires_at = None;
    user.session_epoch += 1;
    // A link used twice at once: only the first use applies.
    let user = save(&s, &before, user).await.map_err(|e| match e {
        ApiError::Conflict(_) => used_link(),
        e => e,
    })?;
    Ok(session_response(&s, &user, &headers))
}

/// Change one's own password; every other session of the account ends.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "accounts", request_body = ChangePassword,
    security(("session" = [])),
    responses((status = 200, description = "Changed; a new session for this browser", body = Session),
        (status = 400, description = "The new password is too short or too long"),
        (status = 401, description = "Not logged in, or the current password is wrong"),
        (status = 403, description = "Cookie without X-CSRF-Token"),
        (status = 429, description = "Too many attempts")))]
pub async fn change_password(
    State(s): State<IngestState>,
    client: Option<Extension<ClientAddr>>,
    method: Method,
    headers: HeaderMap,
    JsonIn(req): JsonIn<ChangePassword>,
) -> Result<Response, ApiError> {
    let catalog = s.catalog.snapshot();
    let Some(Principal::User(me)) =
        authenticate(&headers, &method, &catalog, &s.config.admin_token)?
    else {
        return Err(ApiError::Unauthorized(
            "log in first: this changes the password of a user's own account".into(),
        ));
    };
    s.logins.check(Some(&me.email), addr(client))?;
    check_password(&req.new_password).map_err(|m| ApiError::field("new_password", m))?;
    let mut user = catalog.users.get(&me.id).cloned().ok_or_else(wrong_login)?;
    if !verify_blocking(req.current_password, user.password_hash.clone()).await? {
        return Err(ApiError::Unauthorized(
            "the current password is wrong".into(),
        ));
    }
    let before = user.clone();
    user.password_hash = Some(hash_blocking(req.new_password).await?);
    user.session_epoch += 1;
    // Refused when an admin changed, disabled or removed the user meanwhile.
    let user = save(&s, &before, user).await?;
    Ok(session_response(&s, &user, &headers))
}
