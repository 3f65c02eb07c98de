//! Newsletter promo impressions (`docs/promos.md`): `POST /api/v1/promo/impressions` records
//! that one variation of an offer went out in one newsletter send to a number of recipients.
//!
//! The record goes to the `impressions` topic (keyed by offer + variation) and is answered
//! 204 once durable; the processor counts each (variation, `newsletter_send_id`) once, so a
//! publisher may send the same record again after any doubt. Callers: the offer's advertiser
//! (its API key, signed when the advertiser requires signatures, or an advertiser user's
//! session) or an admin.

use crate::IngestState;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::post;
use chrono::{DateTime, Duration, Utc};
use clicktrail_api::auth;
use clicktrail_api::body::{parse_json, read_limited};
use clicktrail_api::error::{ApiError, FieldError};
use clicktrail_api::session::{Principal, authenticate};
use clicktrail_bus::RecordProducer;
use clicktrail_schemas::catalog::UserRole;
use clicktrail_schemas::promo::ImpressionRecord;
use clicktrail_schemas::wire::WIRE_VERSION;
use serde::Deserialize;

/// Largest impressions request body: 8 KiB.
pub const MAX_IMPRESSION_BODY: usize = 8 * 1024;
/// Most recipients of one send: one billion.
pub const MAX_RECIPIENTS: i64 = 1_000_000_000;
/// Longest newsletter send id, in bytes.
pub const MAX_SEND_ID: usize = 128;

/// One variation sent in one newsletter send.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewImpressions {
    /// The offer (`ofr_…`), active and the caller's.
    pub offer_id: String,
    /// The variation sent (`var_…`), approved and of that offer.
    pub variation_id: String,
    /// The publisher's id of the send, 1 to 128 printable characters: the same send recorded
    /// again counts once.
    pub newsletter_send_id: String,
    /// How many recipients it went to, 1 to 1,000,000,000.
    pub recipients: i64,
    /// When it was delivered (RFC 3339, at most five minutes ahead, at most 90 days ago);
    /// default now. Clicks within two seconds after it are counted as link prefetches.
    pub sent_at: Option<DateTime<Utc>>,
}

pub(crate) fn routes() -> Router<IngestState> {
    Router::new().route("/api/v1/promo/impressions", post(record))
}

/// The advertiser the caller acts for: `Some` for an API key or an advertiser user, `None`
/// for an admin.
fn caller(s: &IngestState, headers: &HeaderMap, bytes: &[u8]) -> Result<Option<String>, ApiError> {
    let catalog = s.catalog.snapshot();
    if headers.contains_key(auth::API_KEY_HEADER) {
        let (key, advertiser) = auth::api_key(headers, &catalog)?;
        if advertiser.require_signature {
            auth::verify_signature(
                headers,
                &key.signing_secret(&s.config.signing_key),
                bytes,
                Utc::now().timestamp(),
            )?;
        }
        return Ok(Some(advertiser.id.clone()));
    }
    match authenticate(headers, &Method::POST, &catalog, &s.config.admin_token)? {
        Some(p) if p.is_admin() => Ok(None),
        Some(Principal::User(u)) if u.role == UserRole::Advertiser => Ok(u.advertiser_id),
        Some(_) => Err(ApiError::Forbidden(
            "only the offer's advertiser or an admin may record impressions".into(),
        )),
        None => Err(ApiError::Unauthorized(
            "missing X-API-KEY (the advertiser's key) or Authorization: Bearer <token>".into(),
        )),
    }
}

/// Checks a request against the catalog; every problem is listed with its field.
fn validate(
    s: &IngestState,
    scope: Option<&str>,
    req: NewImpressions,
    now: DateTime<Utc>,
) -> Result<ImpressionRecord, ApiError> {
    let catalog = s.catalog.snapshot();
    let mut errors = Vec::new();
    let offer = catalog
        .offers
        .get(&req.offer_id)
        .filter(|o| scope.is_none_or(|a| o.advertiser_id == a));
    match offer {
        None => errors.push(FieldError::new("offer_id", "no such offer")),
        Some(o) if !o.active => errors.push(FieldError::new("offer_id", "the offer is not active")),
        Some(o) if !catalog.links.get(&o.link_id).is_some_and(|l| l.active) => {
            errors.push(FieldError::new(
                "offer_id",
                "the offer's tracking link is deactivated: readers would reach a 404",
            ))
        }
        Some(_) => {}
    }
    match catalog.variations.get(&req.variation_id) {
        Some(v) if offer.is_some_and(|o| o.id == v.offer_id) => {
            if !v.approved {
                errors.push(FieldError::new(
                    "variation_id",
                    "the variation is not approved",
                ));
            }
        }
        _ => errors.push(FieldError::new(
            "variation_id",
            "no such variation of this offer",
        )),
    }
    let send = req.newsletter_send_id.trim();
    if send.is_empty() || send.len() > MAX_SEND_ID || send.chars().any(char::is_control) {
        errors.push(FieldError::new(
            "newsletter_send_id",
            format!("expected 1 to {MAX_SEND_ID} bytes of printable text"),
        ));
    }
    if !(1..=MAX_RECIPIENTS).contains(&req.recipients) {
        errors.push(FieldError::new(
            "recipients",
            format!("expected a whole number from 1 to {MAX_RECIPIENTS}"),
        ));
    }
    let sent_at = req.sent_at.unwrap_or(now);
    if sent_at > now + Duration::minutes(5) || sent_at < now - Duration::days(90) {
        errors.push(FieldError::new(
            "sent_at",
            "expected a time within the last 90 days and at most five minutes ahead",
        ));
    }
    crate::admin::check(errors)?;
    let offer = offer.expect("checked");
    Ok(ImpressionRecord {
        v: WIRE_VERSION,
        advertiser_id: offer.advertiser_id.clone(),
        offer_id: offer.id.clone(),
        variation_id: req.variation_id,
        newsletter_send_id: send.to_string(),
        recipients: req.recipients.unsigned_abs(),
        sent_at,
        received_at: now,
    })
}

/// Record that a variation went out in one newsletter send.
#[utoipa::path(post, path = "/api/v1/promo/impressions", tag = "promo", request_body = NewImpressions,
    params(("X-API-KEY" = Option<String>, Header, description = "The offer's advertiser's API key (or an admin's or advertiser user's bearer token)")),
    responses((status = 204, description = "Durable; the send counts once however often it is recorded"),
        (status = 400, description = "Unknown or inactive offer, unknown or unapproved variation, bad recipients, send id or time: each field named"),
        (status = 401, description = "No or bad credentials"), (status = 403, description = "An influencer"),
        (status = 413, description = "Body over 8 KiB"),
        (status = 503, description = "Not durable; retry after Retry-After")))]
pub async fn record(
    State(s): State<IngestState>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let bytes = read_limited(body, MAX_IMPRESSION_BODY).await?;
    let scope = caller(&s, &headers, &bytes)?;
    let req: NewImpressions = parse_json(&bytes)?;
    let record = validate(&s, scope.as_deref(), req, Utc::now())?;
    s.producer
        .send_record(&record)
        .await
        .map_err(ApiError::not_durable)?;
    metrics::counter!(clicktrail_schemas::metric_names::ingest::IMPRESSIONS_ACCEPTED).increment(1);
    Ok(StatusCode::NO_CONTENT)
}

/// The promo routes' OpenAPI paths, for `crate::openapi`.
#[derive(utoipa::OpenApi)]
#[openapi(paths(record), components(schemas(NewImpressions)),
    tags((name = "promo", description = "Newsletter promos: impressions, selection, analytics")))]
pub struct PromoApi;
