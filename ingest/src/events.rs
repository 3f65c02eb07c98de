//! `POST /api/v1/events` and the `/event/{action}` aliases.

use crate::IngestState;
use crate::validate::{self, MAX_BATCH};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use clicktrail_api::auth;
use clicktrail_api::body::read_limited;
use clicktrail_api::error::{ApiError, ErrorBody, FieldError};
use clicktrail_bus::RecordProducer;
use clicktrail_schemas::catalog::Catalog;
use clicktrail_schemas::metric_names::ingest::{EVENTS_ACCEPTED, REQUESTS_REFUSED};
use clicktrail_schemas::token::read_unverified;
use clicktrail_schemas::wire::{Action, EventRecord};
use serde::Serialize;

/// The answer to an accepted request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// How many events were accepted (all of them).
    pub accepted: usize,
    /// Their ids, in request order (derived where none was given).
    pub event_ids: Vec<String>,
    /// Attribution data that cannot credit anyone, found while accepting: each names the
    /// event (index in the request), the field and why. The events are stored all the same
    /// (unattributed, or attributed by another field). Absent when there is nothing to say.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
}

/// Why a field of an accepted event will not attribute it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Warning {
    /// Index of the event in the request (0 for a single event).
    pub index: usize,
    /// The field: `click_id` or `ref_code`.
    pub field: &'static str,
    /// What is wrong and what was expected.
    pub message: String,
}

/// What an accepted event's `click_id` and `ref_code` will not do: a `click_id` that is not a
/// click token at all (for example a placeholder left in an integration) or names a link of
/// no link of this advertiser, and a `ref_code` that is no link code of this advertiser.
pub(crate) fn warnings(records: &[EventRecord], catalog: &Catalog) -> Vec<Warning> {
    let mut out = Vec::new();
    for (index, r) in records.iter().enumerate() {
        if let Some(id) = r.click_id.as_deref() {
            let message = match read_unverified(id) {
                Err(_) => Some(
                    "not a click id: expected the `click_id` value of a tracking redirect's \
                     Location (base64url, as the redirect appended it)"
                        .to_string(),
                ),
                Ok(t) => match catalog.links.get(&t.link_id) {
                    Some(l) if l.advertiser_id == r.advertiser_id => None,
                    _ => Some(
                        "this click id names no link of this advertiser; it will not attribute"
                            .into(),
                    ),
                },
            };
            if let Some(message) = message {
                out.push(Warning {
                    index,
                    field: "click_id",
                    message,
                });
            }
        }
        if let Some(code) = r.ref_code.as_deref() {
            let owned = catalog
                .link_by_code(code)
                .is_some_and(|l| l.advertiser_id == r.advertiser_id);
            if !owned {
                out.push(Warning {
                    index,
                    field: "ref_code",
                    message: format!(
                        "`{code}` is no link code of this advertiser; it will not attribute"
                    ),
                });
            }
        }
    }
    out
}

/// Events API documentation.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(post_events, post_alias),
    components(schemas(Accepted, Warning, ErrorBody, FieldError)),
    tags((name = "events", description = "Advertiser funnel events"))
)]
pub struct EventsApi;

/// The events routes.
pub fn routes() -> Router<IngestState> {
    Router::new()
        .route("/api/v1/events", post(post_events))
        .route("/event/{action}", post(post_alias))
}

/// Send one event, an array of up to 1,000, or `{"events": [...]}`.
///
/// Fields: `action` (purchase, add_to_cart, signup, drop_off, custom with `name`, refund with `order_id`), `event_id`,
/// `occurred_at` (RFC 3339, default now, at most five minutes ahead), `value` (at most two
/// decimal places; a purchase needs one above zero), `currency` (ISO 4217, default USD),
/// `order_id`, `customer_id`, `properties` (object, at most 4 KiB), `coupon_code`, `ref_code`,
/// `click_id`, `landing_url`, `referrer`. All-or-nothing: any invalid event refuses the request
/// with every field error listed.
#[utoipa::path(
    post, path = "/api/v1/events", tag = "events",
    request_body(content = Object, description = "An event, an array of events, or {\"events\": [...]}"),
    params(
        ("X-API-KEY" = String, Header, description = "The advertiser's API key"),
        ("X-Clicktrail-Signature" = Option<String>, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"t.body\">; required when the advertiser requires signatures"),
    ),
    responses(
        (status = 200, description = "Durable", body = Accepted),
        (status = 400, description = "Malformed JSON or invalid fields, all listed", body = ErrorBody),
        (status = 401, description = "Missing or invalid key or signature", body = ErrorBody),
        (status = 413, description = "Body over the limit or more than 1,000 events", body = ErrorBody),
        (status = 503, description = "Not durable; retry after the Retry-After delay", body = ErrorBody),
    )
)]
async fn post_events(State(state): State<IngestState>, headers: HeaderMap, body: Body) -> Response {
    respond(accept(&state, &headers, body, None).await)
}

/// Alias for one action: `/event/add_to_cart`, `/event/purchase`, `/event/drop_off`,
/// `/event/signup`, `/event/refund`. Same body and answers as `/api/v1/events`; `action` may be left out.
#[utoipa::path(
    post, path = "/event/{action}", tag = "events",
    params(
        ("action" = String, Path, description = "add_to_cart, purchase, drop_off, signup or refund"),
        ("X-API-KEY" = String, Header, description = "The advertiser's API key"),
    ),
    request_body(content = Object, description = "An event or an array of events"),
    responses(
        (status = 200, description = "Durable", body = Accepted),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 401, description = "Missing or invalid key or signature", body = ErrorBody),
        (status = 404, description = "Unknown action alias", body = ErrorBody),
        (status = 413, description = "Too large", body = ErrorBody),
        (status = 503, description = "Retry later", body = ErrorBody),
    )
)]
async fn post_alias(
    State(state): State<IngestState>,
    Path(action): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let action = match action.as_str() {
        "add_to_cart" => Action::AddToCart,
        "purchase" => Action::Purchase,
        "drop_off" => Action::DropOff,
        "signup" => Action::Signup,
        "refund" => Action::Refund,
        other => {
            return respond(Err(ApiError::NotFound(format!(
                "no event alias `{other}`: use add_to_cart, purchase, drop_off, signup or refund"
            ))));
        }
    };
    respond(accept(&state, &headers, body, Some(action)).await)
}

fn respond(result: Result<Accepted, ApiError>) -> Response {
    match result {
        Ok(a) => Json(a).into_response(),
        Err(e) => refused(e),
    }
}

/// The answer to a refused events request, counted by status.
pub(crate) fn refused(e: ApiError) -> Response {
    let resp = e.into_response();
    metrics::counter!(REQUESTS_REFUSED, "status" => resp.status().as_str().to_string())
        .increment(1);
    resp
}

async fn accept(
    state: &IngestState,
    headers: &HeaderMap,
    body: Body,
    fixed: Option<Action>,
) -> Result<Accepted, ApiError> {
    let catalog = state.catalog.snapshot();
    let (key, advertiser) = auth::api_key(headers, &catalog)?;
    let bytes = read_limited(body, state.config.max_body_bytes).await?;
    let now = Utc::now();
    if advertiser.require_signature {
        auth::verify_signature(
            headers,
            &key.signing_secret(&state.config.signing_key),
            &bytes,
            now.timestamp(),
        )?;
    }
    let records = records_of(&bytes, &advertiser.id, fixed, now, MAX_BATCH)?;
    let event_ids = send(state, &records).await?;
    Ok(Accepted {
        accepted: event_ids.len(),
        event_ids,
        warnings: warnings(&records, &catalog),
    })
}

/// The events of a request body (one event, an array, or `{"events": [...]}`) for
/// `advertiser_id`, all valid, at most `max` of them; else every field error at once (400), or
/// 413 past `max`.
pub(crate) fn records_of(
    bytes: &[u8],
    advertiser_id: &str,
    fixed: Option<Action>,
    now: chrono::DateTime<Utc>,
    max: usize,
) -> Result<Vec<EventRecord>, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::field("body", format!("malformed JSON: {e}")))?;
    let batch = validate::split_batch(value).map_err(|e| ApiError::fields(vec![e]))?;
    if batch.is_empty() {
        return Err(ApiError::field("events", "expected at least one event"));
    }
    if batch.len() > max {
        return Err(ApiError::TooLarge(format!(
            "{} events in one request; at most {max} are accepted",
            batch.len()
        )));
    }
    let single = batch.len() == 1;
    let mut errors = Vec::new();
    let mut records = Vec::with_capacity(batch.len());
    for (i, item) in batch.iter().enumerate() {
        let prefix = if single {
            String::new()
        } else {
            format!("events[{i}].")
        };
        if let Some(r) = validate::event(item, prefix, advertiser_id, fixed, now, &mut errors) {
            records.push(r);
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    Ok(records)
}

/// Appends `records` to the bus and returns their ids once durable (503 otherwise), counting
/// them by action.
pub(crate) async fn send(
    state: &IngestState,
    records: &[EventRecord],
) -> Result<Vec<String>, ApiError> {
    let event_ids: Vec<String> = records.iter().map(|r| r.event_id.clone()).collect();
    let mut by_action = std::collections::HashMap::<&'static str, u64>::new();
    for r in records {
        *by_action.entry(r.action.as_str()).or_default() += 1;
    }
    state
        .producer
        .send_records(records)
        .await
        .map_err(ApiError::not_durable)?;
    for (action, n) in by_action {
        metrics::counter!(EVENTS_ACCEPTED, "action" => action).increment(n);
    }
    Ok(event_ids)
}
