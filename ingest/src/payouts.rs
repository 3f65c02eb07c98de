//! Operations on an influencer's commission ledger, each one record on the `ledger` topic
//! (keyed by influencer), answered 202 once durable; the ledger step applies them in order
//! and their outcome shows in the ledger (`/api/v1/me/payouts`, `/api/v1/ledger/payouts`).
//!
//! - `POST /api/v1/me/payout-requests`: an influencer user requests a payout of everything available.
//! - `POST /api/v1/admin/influencers/{id}/payouts`: an admin does so for them.
//! - `POST /api/v1/admin/influencers/{id}/payouts/{payout_id}/paid`: record the payment.
//! - `POST /api/v1/admin/influencers/{id}/payouts/{payout_id}/cancel`: cancel a request.
//! - `POST /api/v1/admin/influencers/{id}/commissions/{commission_id}/review`: approve or
//!   reject a commission held by a fraud rule.

use crate::IngestState;
use crate::admin::{Admin, JsonIn};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use clicktrail_api::error::ApiError;
use clicktrail_api::session::{Principal, authenticate};
use clicktrail_bus::RecordProducer;
use clicktrail_schemas::catalog::UserRole;
use clicktrail_schemas::ids::new_id;
use clicktrail_schemas::ledger::{LedgerOp, LedgerRecord};
use clicktrail_schemas::money::parse_currency;
use clicktrail_schemas::wire::WIRE_VERSION;
use serde::{Deserialize, Serialize};

/// Which available money a payout request takes; absent fields take everything.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayoutRequest {
    /// Only this ISO 4217 currency.
    pub currency: Option<String>,
    /// Only this advertiser's commissions.
    pub advertiser_id: Option<String>,
}

/// A ledger operation accepted.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LedgerAccepted {
    /// The influencer whose ledger it applies to.
    pub influencer_id: String,
    /// The payout request's id, for a request: its payouts (or the reason nothing was
    /// requested) appear in the ledger under it within moments.
    pub request_id: Option<String>,
}

/// A payment.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    /// The payment's reference (bank transfer id, PayPal transaction, …), 1 to 200 characters.
    pub reference: String,
}

/// A cancellation.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Cancellation {
    /// Why, 1 to 500 characters.
    pub reason: String,
}

/// A review decision.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Review {
    /// `approve` or `reject`.
    pub decision: String,
    /// The reviewer's note, at most 500 characters.
    #[serde(default)]
    pub note: String,
}

pub(crate) fn routes() -> Router<IngestState> {
    Router::new()
        .route("/api/v1/me/payout-requests", post(request_mine))
        .route("/api/v1/admin/influencers/{id}/payouts", post(request_for))
        .route(
            "/api/v1/admin/influencers/{id}/payouts/{payout_id}/paid",
            post(mark_paid),
        )
        .route(
            "/api/v1/admin/influencers/{id}/payouts/{payout_id}/cancel",
            post(cancel),
        )
        .route(
            "/api/v1/admin/influencers/{id}/commissions/{commission_id}/review",
            post(review),
        )
}

/// Who is acting: a user id, or `admin-token`.
fn actor(s: &IngestState, headers: &HeaderMap, method: &Method) -> Result<Principal, ApiError> {
    let catalog = s.catalog.snapshot();
    authenticate(headers, method, &catalog, &s.config.admin_token)?.ok_or_else(|| {
        ApiError::Unauthorized("missing Authorization: Bearer <token>, or log in first".into())
    })
}

fn by(p: &Principal) -> String {
    match p {
        Principal::AdminToken => "admin-token".into(),
        Principal::User(u) => u.id.clone(),
    }
}

fn known_influencer(s: &IngestState, id: &str) -> Result<(), ApiError> {
    if s.catalog.snapshot().influencers.contains_key(id) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("no influencer {id}")))
    }
}

/// Checks an id made by the ledger: `prefix_` and 24 lower-case hex digits.
fn ledger_id(field: &str, id: &str, prefix: &str) -> Result<(), ApiError> {
    let ok = id
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('_'))
        .is_some_and(|h| {
            h.len() == 24 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::field(
            field,
            format!("expected a {prefix}_ id of 24 hex digits"),
        ))
    }
}

fn text(field: &str, value: &str, min: usize, max: usize) -> Result<String, ApiError> {
    let v = value.trim();
    let n = v.chars().count();
    if n < min || n > max || v.chars().any(char::is_control) {
        return Err(ApiError::field(
            field,
            format!("expected {min} to {max} characters without control characters"),
        ));
    }
    Ok(v.to_string())
}

/// The optional body of a payout request: empty means everything available.
fn payout_body(body: &[u8]) -> Result<PayoutRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(PayoutRequest::default());
    }
    if body.len() > 4096 {
        return Err(ApiError::field("body", "expected at most 4096 bytes"));
    }
    clicktrail_api::body::parse_json(body)
}

async fn send(s: &IngestState, influencer_id: String, op: LedgerOp) -> Result<(), ApiError> {
    let record = LedgerRecord {
        v: WIRE_VERSION,
        influencer_id,
        from: None,
        op,
    };
    s.producer
        .send_record(&record)
        .await
        .map_err(ApiError::not_durable)?;
    Ok(())
}

async fn request(
    s: &IngestState,
    influencer_id: String,
    req: PayoutRequest,
    who: String,
) -> Result<(StatusCode, Json<LedgerAccepted>), ApiError> {
    let currency = match req.currency.as_deref() {
        Some(c) => Some(parse_currency(c).map_err(|e| ApiError::field("currency", e.to_string()))?),
        None => None,
    };
    if let Some(a) = &req.advertiser_id
        && !s.catalog.snapshot().advertisers.contains_key(a)
    {
        return Err(ApiError::field("advertiser_id", "no such advertiser"));
    }
    let request_id = new_id("prq");
    send(
        s,
        influencer_id.clone(),
        LedgerOp::RequestPayout {
            request_id: request_id.clone(),
            advertiser_id: req.advertiser_id,
            currency,
            by: who,
            at: chrono::Utc::now(),
        },
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(LedgerAccepted {
            influencer_id,
            request_id: Some(request_id),
        }),
    ))
}

/// Request a payout of everything available (the logged-in influencer's).
#[utoipa::path(post, path = "/api/v1/me/payout-requests", tag = "ledger", request_body = PayoutRequest, security(("session" = [])),
    responses((status = 202, description = "Accepted: one payout per advertiser and currency, or the reason nothing was requested, appears in the ledger", body = LedgerAccepted),
        (status = 400, description = "Unknown currency or advertiser"), (status = 401, description = "Not logged in"),
        (status = 403, description = "Not an influencer user, or a cookie without X-CSRF-Token"), (status = 503, description = "Not durable; retry")))]
pub async fn request_mine(
    State(s): State<IngestState>,
    method: Method,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<LedgerAccepted>), ApiError> {
    let p = actor(&s, &headers, &method)?;
    let Principal::User(u) = &p else {
        return Err(ApiError::Forbidden(
            "this is an influencer user's own request; admins use /api/v1/admin/influencers/{id}/payouts".into(),
        ));
    };
    let (UserRole::Influencer, Some(inf)) = (u.role, u.influencer_id.clone()) else {
        return Err(ApiError::Forbidden(
            "only influencer users request their payouts".into(),
        ));
    };
    request(&s, inf, payout_body(&body)?, by(&p)).await
}

/// Request a payout for an influencer.
#[utoipa::path(post, path = "/api/v1/admin/influencers/{id}/payouts", tag = "ledger", params(("id" = String, Path)), request_body = PayoutRequest,
    responses((status = 202, description = "Accepted", body = LedgerAccepted), (status = 400, description = "Invalid"), (status = 404, description = "Unknown influencer")))]
pub async fn request_for(
    _: Admin,
    State(s): State<IngestState>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<LedgerAccepted>), ApiError> {
    known_influencer(&s, &id)?;
    let req = payout_body(&body)?;
    let who = by(&actor(&s, &headers, &method)?);
    request(&s, id, req, who).await
}

fn accepted(influencer_id: String) -> (StatusCode, Json<LedgerAccepted>) {
    (
        StatusCode::ACCEPTED,
        Json(LedgerAccepted {
            influencer_id,
            request_id: None,
        }),
    )
}

/// Record a requested payout as paid.
#[utoipa::path(post, path = "/api/v1/admin/influencers/{id}/payouts/{payout_id}/paid", tag = "ledger",
    params(("id" = String, Path), ("payout_id" = String, Path)), request_body = Payment,
    responses((status = 202, description = "Accepted: a requested payout becomes paid; any other is left as it is", body = LedgerAccepted), (status = 400, description = "Invalid"), (status = 404, description = "Unknown influencer")))]
pub async fn mark_paid(
    _: Admin,
    State(s): State<IngestState>,
    method: Method,
    headers: HeaderMap,
    Path((id, payout_id)): Path<(String, String)>,
    JsonIn(p): JsonIn<Payment>,
) -> Result<(StatusCode, Json<LedgerAccepted>), ApiError> {
    known_influencer(&s, &id)?;
    ledger_id("payout_id", &payout_id, "pay")?;
    let reference = text("reference", &p.reference, 1, 200)?;
    let who = by(&actor(&s, &headers, &method)?);
    let op = LedgerOp::MarkPaid {
        payout_id,
        reference,
        by: who,
        at: chrono::Utc::now(),
    };
    send(&s, id.clone(), op).await?;
    Ok(accepted(id))
}

/// Cancel a requested payout: its money is available again.
#[utoipa::path(post, path = "/api/v1/admin/influencers/{id}/payouts/{payout_id}/cancel", tag = "ledger",
    params(("id" = String, Path), ("payout_id" = String, Path)), request_body = Cancellation,
    responses((status = 202, description = "Accepted", body = LedgerAccepted), (status = 400, description = "Invalid"), (status = 404, description = "Unknown influencer")))]
pub async fn cancel(
    _: Admin,
    State(s): State<IngestState>,
    method: Method,
    headers: HeaderMap,
    Path((id, payout_id)): Path<(String, String)>,
    JsonIn(c): JsonIn<Cancellation>,
) -> Result<(StatusCode, Json<LedgerAccepted>), ApiError> {
    known_influencer(&s, &id)?;
    ledger_id("payout_id", &payout_id, "pay")?;
    let reason = text("reason", &c.reason, 1, 500)?;
    let who = by(&actor(&s, &headers, &method)?);
    let op = LedgerOp::CancelPayout {
        payout_id,
        reason,
        by: who,
        at: chrono::Utc::now(),
    };
    send(&s, id.clone(), op).await?;
    Ok(accepted(id))
}

/// Approve or reject a commission held for review.
#[utoipa::path(post, path = "/api/v1/admin/influencers/{id}/commissions/{commission_id}/review", tag = "ledger",
    params(("id" = String, Path), ("commission_id" = String, Path)), request_body = Review,
    responses((status = 202, description = "Accepted: a held commission becomes pending (approve) or rejected", body = LedgerAccepted), (status = 400, description = "Invalid"), (status = 404, description = "Unknown influencer")))]
pub async fn review(
    _: Admin,
    State(s): State<IngestState>,
    method: Method,
    headers: HeaderMap,
    Path((id, commission_id)): Path<(String, String)>,
    JsonIn(r): JsonIn<Review>,
) -> Result<(StatusCode, Json<LedgerAccepted>), ApiError> {
    known_influencer(&s, &id)?;
    ledger_id("commission_id", &commission_id, "com")?;
    let approve = match r.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(ApiError::field("decision", "expected approve or reject")),
    };
    let note = text("note", &r.note, 0, 500)?;
    let who = by(&actor(&s, &headers, &method)?);
    let op = LedgerOp::Review {
        commission_id,
        approve,
        note,
        by: who,
        at: chrono::Utc::now(),
    };
    send(&s, id.clone(), op).await?;
    Ok(accepted(id))
}
