//! Users: invite (a one-time set-password link, shown to the admin once), change role and
//! binding, disable, reset (a new set-password link; the old password and every session end),
//! remove. Roles and what each sees: `docs/roles.md`.

use super::page::{Page, PageQuery, paginate};
use super::{Admin, JsonIn, check};
use crate::IngestState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use clicktrail_api::error::{ApiError, FieldError};
use clicktrail_api::session::{SET_PASSWORD_TTL_SECS, hash_token, is_https, random_token};
use clicktrail_schemas::CatalogChange;
use clicktrail_schemas::catalog::{Catalog, Status, User, UserRole};
use clicktrail_schemas::ids::new_id;
use serde::{Deserialize, Serialize};

/// A user as the API shows them: never their password hash or set-password token.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// Id, `usr_…`.
    pub id: String,
    /// Login email address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// `admin`, `advertiser` or `influencer`.
    pub role: UserRole,
    /// The advertiser of an advertiser user.
    pub advertiser_id: Option<String>,
    /// The influencer of an influencer user.
    pub influencer_id: Option<String>,
    /// `active` or `inactive` (disabled).
    pub status: Status,
    /// Whether a password is set.
    pub has_password: bool,
    /// Whether a set-password link is pending (and until when it works).
    pub set_password_expires_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            role: u.role,
            advertiser_id: u.advertiser_id.clone(),
            influencer_id: u.influencer_id.clone(),
            status: u.status,
            has_password: u.password_hash.is_some(),
            set_password_expires_at: u.set_password_hash.as_ref().and(u.set_password_expires_at),
            created_at: u.created_at,
        }
    }
}

/// A new user, invited.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Login email address (unique, case-insensitively).
    pub email: String,
    /// Display name; the part of the email address before `@` when absent.
    pub name: Option<String>,
    /// `admin`, `advertiser` (with `advertiser_id`) or `influencer` (with `influencer_id`).
    pub role: UserRole,
    /// The advertiser of an advertiser user.
    pub advertiser_id: Option<String>,
    /// The influencer of an influencer user.
    pub influencer_id: Option<String>,
}

/// Changes to a user. A change of role, binding or status ends the user's sessions.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// Display name.
    pub name: Option<String>,
    /// Login email address.
    pub email: Option<String>,
    /// New role; give the binding that goes with it.
    pub role: Option<UserRole>,
    /// The advertiser (advertiser users).
    pub advertiser_id: Option<String>,
    /// The influencer (influencer users).
    pub influencer_id: Option<String>,
    /// `active`, or `inactive` to disable.
    #[schema(value_type = Option<String>)]
    pub status: Option<Status>,
}

/// A user with a fresh one-time set-password link, shown only in this answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Invitation {
    /// The user.
    pub user: UserView,
    /// Give this link to the user: it sets their password once, until it expires.
    pub set_password_url: String,
    /// When the link stops working (7 days).
    pub expires_at: DateTime<Utc>,
}

pub(super) fn routes() -> Router<IngestState> {
    Router::new()
        .route("/api/v1/admin/users", post(create).get(list))
        .route(
            "/api/v1/admin/users/{id}",
            get(show).patch(update).delete(remove),
        )
        .route("/api/v1/admin/users/{id}/reset", post(reset))
}

/// Characters that do not show as themselves: controls, and the Unicode bidirectional
/// formatting characters (U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069) that reorder the
/// text around them.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Whether `email` looks like an address: one `@` with text on both sides, at most 254
/// characters, no spaces, nothing that does not show as itself.
pub(crate) fn valid_email(email: &str) -> bool {
    let email = email.trim();
    email.len() <= 254
        && !email.contains(char::is_whitespace)
        && !email.chars().any(hidden)
        && email
            .split_once('@')
            .is_some_and(|(a, b)| !a.is_empty() && b.contains('.') && !b.contains('@'))
}

fn validate(u: &User, catalog: &Catalog, errors: &mut Vec<FieldError>) {
    if !valid_email(&u.email) {
        errors.push(FieldError::new("email", "expected an email address"));
    }
    if u.name.trim().is_empty() || u.name.chars().count() > 200 {
        errors.push(FieldError::new("name", "expected 1 to 200 characters"));
    } else if u.name.chars().any(hidden) {
        errors.push(FieldError::new(
            "name",
            "must not contain control or bidirectional formatting characters",
        ));
    }
    let adv = u.advertiser_id.as_deref();
    let inf = u.influencer_id.as_deref();
    match u.role {
        UserRole::Admin => {
            if adv.is_some() {
                errors.push(FieldError::new(
                    "advertiser_id",
                    "an admin has no advertiser",
                ));
            }
            if inf.is_some() {
                errors.push(FieldError::new(
                    "influencer_id",
                    "an admin has no influencer",
                ));
            }
        }
        UserRole::Advertiser => {
            match adv {
                None => errors.push(FieldError::new(
                    "advertiser_id",
                    "an advertiser user needs the id of its advertiser",
                )),
                Some(a) if !catalog.advertisers.contains_key(a) => errors.push(FieldError::new(
                    "advertiser_id",
                    format!("advertiser `{a}` does not exist"),
                )),
                _ => {}
            }
            if inf.is_some() {
                errors.push(FieldError::new(
                    "influencer_id",
                    "an advertiser user has no influencer",
                ));
            }
        }
        UserRole::Influencer => {
            match inf {
                None => errors.push(FieldError::new(
                    "influencer_id",
                    "an influencer user needs the id of its influencer",
                )),
                Some(i) if !catalog.influencers.contains_key(i) => errors.push(FieldError::new(
                    "influencer_id",
                    format!("influencer `{i}` does not exist"),
                )),
                _ => {}
            }
            if adv.is_some() {
                errors.push(FieldError::new(
                    "advertiser_id",
                    "an influencer user has no advertiser",
                ));
            }
        }
    }
}

/// The dashboard's base URL as the admin reached it (scheme from `X-Forwarded-Proto`, host
/// from `Host`), so that the link works behind the same proxy.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty() && !h.contains(['/', ' ', '"', '<', '>']))
        .unwrap_or("localhost");
    let scheme = if is_https(headers) { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// Gives `u` a new set-password token (ending the old password and every session) and
/// returns the invitation to show.
fn invite(u: &mut User, headers: &HeaderMap, now: DateTime<Utc>) -> (String, DateTime<Utc>) {
    let token = format!("{}.{}", u.id, random_token(24));
    let expires_at = now + chrono::Duration::seconds(SET_PASSWORD_TTL_SECS);
    u.set_password_hash = Some(hash_token(&token));
    u.set_password_expires_at = Some(expires_at);
    u.password_hash = None;
    u.session_epoch += 1;
    (
        format!("{}/set-password#token={token}", base_url(headers)),
        expires_at,
    )
}

/// Invite a user: creates them without a password and returns their one-time set-password link.
#[utoipa::path(post, path = "/api/v1/admin/users", tag = "admin", request_body = NewUser,
    responses((status = 201, description = "Created; the link is shown only now", body = Invitation), (status = 400, description = "Invalid"), (status = 409, description = "The email address is taken")))]
pub async fn create(
    _: Admin,
    State(s): State<IngestState>,
    headers: HeaderMap,
    JsonIn(req): JsonIn<NewUser>,
) -> Result<(StatusCode, Json<Invitation>), ApiError> {
    let now = Utc::now();
    let email = req.email.trim().to_string();
    let mut u = User {
        id: new_id("usr"),
        // Without a name, the part of the address before `@`.
        name: req.name.map(|n| n.trim().to_string()).unwrap_or_else(|| {
            email
                .split('@')
                .next()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect()
        }),
        email,
        role: req.role,
        advertiser_id: req.advertiser_id,
        influencer_id: req.influencer_id,
        password_hash: None,
        set_password_hash: None,
        set_password_expires_at: None,
        status: Status::Active,
        version: 0,
        session_epoch: 0,
        created_at: now,
    };
    let mut errors = Vec::new();
    validate(&u, &s.catalog.snapshot(), &mut errors);
    check(errors)?;
    let (url, expires_at) = invite(&mut u, &headers, now);
    s.write(CatalogChange::UserUpserted {
        user: u.clone(),
        expected_version: None,
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Invitation {
            user: UserView::from(&u),
            set_password_url: url,
            expires_at,
        }),
    ))
}

/// List users.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", params(PageQuery), responses((status = 200, description = "Users in creation order", body = Page<UserView>)))]
pub async fn list(
    _: Admin,
    State(s): State<IngestState>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<UserView>>, ApiError> {
    let all: Vec<UserView> = s
        .catalog
        .snapshot()
        .users
        .values()
        .map(UserView::from)
        .collect();
    paginate(all, &page, |u| (u.created_at, u.id.as_str())).map(Json)
}

/// Writes `after`, a change of `before`, unless the user changed meanwhile (another admin, a
/// password change, a logout, a removal): then 409, and nothing of `after` applies.
pub(crate) async fn save(
    s: &IngestState,
    before: &User,
    mut after: User,
) -> Result<User, ApiError> {
    after.version = before.version + 1;
    s.write(CatalogChange::UserUpserted {
        user: after.clone(),
        expected_version: Some(before.version),
    })
    .await?;
    Ok(after)
}

pub(crate) fn find(s: &IngestState, id: &str) -> Result<User, ApiError> {
    s.catalog
        .snapshot()
        .users
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("user `{id}` does not exist")))
}

/// Get a user.
#[utoipa::path(get, path = "/api/v1/admin/users/{id}", tag = "admin", params(("id" = String, Path)), responses((status = 200, description = "The user", body = UserView), (status = 404, description = "Unknown")))]
pub async fn show(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    find(&s, &id).map(|u| Json(UserView::from(&u)))
}

/// Change a user's name, email, role and binding, or disable them (`status: inactive`).
#[utoipa::path(patch, path = "/api/v1/admin/users/{id}", tag = "admin", params(("id" = String, Path)), request_body = UserPatch,
    responses((status = 200, description = "Updated", body = UserView), (status = 400, description = "Invalid"), (status = 404, description = "Unknown"), (status = 409, description = "The email address is taken")))]
pub async fn update(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
    JsonIn(p): JsonIn<UserPatch>,
) -> Result<Json<UserView>, ApiError> {
    let before = find(&s, &id)?;
    let mut u = before.clone();
    if let Some(v) = p.name {
        u.name = v.trim().to_string();
    }
    if let Some(v) = p.email {
        u.email = v.trim().to_string();
    }
    if let Some(role) = p.role {
        u.role = role;
        // A new role takes only the binding given with it.
        u.advertiser_id = None;
        u.influencer_id = None;
    }
    if p.advertiser_id.is_some() {
        u.advertiser_id = p.advertiser_id;
    }
    if p.influencer_id.is_some() {
        u.influencer_id = p.influencer_id;
    }
    if let Some(v) = p.status {
        u.status = v;
    }
    let mut errors = Vec::new();
    validate(&u, &s.catalog.snapshot(), &mut errors);
    check(errors)?;
    if (
        u.role,
        &u.advertiser_id,
        &u.influencer_id,
        u.status,
        &u.email,
    ) != (
        before.role,
        &before.advertiser_id,
        &before.influencer_id,
        before.status,
        &before.email,
    ) {
        u.session_epoch += 1;
    }
    let u = save(&s, &before, u).await?;
    Ok(Json(UserView::from(&u)))
}

/// Reset a user's password: the old one stops working, every session ends, and a new one-time
/// set-password link is returned.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/reset", tag = "admin", params(("id" = String, Path)),
    responses((status = 200, description = "The new link, shown only now", body = Invitation), (status = 404, description = "Unknown")))]
pub async fn reset(
    _: Admin,
    State(s): State<IngestState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Invitation>, ApiError> {
    let before = find(&s, &id)?;
    let mut u = before.clone();
    let (url, expires_at) = invite(&mut u, &headers, Utc::now());
    let u = save(&s, &before, u).await?;
    Ok(Json(Invitation {
        user: UserView::from(&u),
        set_password_url: url,
        expires_at,
    }))
}

/// Remove a user; their sessions end.
#[utoipa::path(delete, path = "/api/v1/admin/users/{id}", tag = "admin", params(("id" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 404, description = "Unknown")))]
pub async fn remove(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    find(&s, &id)?;
    s.write(CatalogChange::UserRemoved { id }).await?;
    Ok(StatusCode::NO_CONTENT)
}
