//! The browser tracker: `GET /t.js` (the script, served from inside the binary) and
//! `POST /api/v1/browser/events`, which takes what it sends under a publishable key.
//!
//! Browser events are accepted only from the key's allowed origins: the request's `Origin`
//! header must be on the key's allow-list, and only then is the answer (and the CORS
//! preflight) given `Access-Control-Allow-Origin` for that origin; a page elsewhere is refused
//! (403, nothing stored) and the browser keeps it from reading any answer. Events are marked
//! `source: browser`. A purchase counts toward revenue and commissions only when its
//! advertiser set `browser_purchases_count`; otherwise it is stored as a purchase event without
//! amount (the amount given is kept in `properties.declared_value_minor`), claims no order
//! and earns nothing. Refunds are refused: they come from a backend with an API key. A page's
//! `event_id` and `customer_id` live in a namespace of their own ([`BROWSER_ID_PREFIX`]).

use crate::IngestState;
use crate::events::{Accepted, records_of, refused, send, warnings};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use clicktrail_api::body::read_limited;
use clicktrail_api::error::{ApiError, ErrorBody};
use clicktrail_schemas::catalog::PublishableKey;
use clicktrail_schemas::wire::{Action, EventRecord, EventSource};
use serde::Deserialize;

/// The tracker script.
pub const TRACKER_JS: &str = include_str!("../web/t.js");

/// The most events one browser request may carry (a page's queued sends).
pub const MAX_BROWSER_BATCH: usize = 50;
/// The largest browser request body, in bytes.
pub const MAX_BROWSER_BODY: usize = 64 * 1024;

/// Browser tracker documentation.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(script, post_browser_events),
    tags((name = "browser", description = "The browser tracker and its events (publishable key)"))
)]
pub struct BrowserApi;

/// The browser routes.
pub fn routes() -> Router<IngestState> {
    Router::new().route("/t.js", get(script)).route(
        "/api/v1/browser/events",
        post(post_browser_events).options(preflight),
    )
}

/// The tracker script: `<script src="…/t.js" data-key="pk_…" async></script>`
/// (`docs/integration.md`). Cacheable for an hour.
#[utoipa::path(get, path = "/t.js", tag = "browser",
    responses((status = 200, description = "The tracker script", content_type = "application/javascript")))]
pub async fn script() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        TRACKER_JS,
    )
        .into_response()
}

/// The publishable key, in the query string (so that a page can send without a preflight).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct KeyQuery {
    /// The publishable key, `pk_…`.
    pub key: Option<String>,
}

/// The key named by the query and the request's origin, if that origin may use it: else why
/// not (400 without a key, 401 for an unknown or inactive key, 403 for a missing or
/// unlisted origin).
fn allowed(
    state: &IngestState,
    query: &KeyQuery,
    headers: &HeaderMap,
) -> Result<(PublishableKey, String), ApiError> {
    let key = query
        .key
        .as_deref()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            ApiError::field(
                "key",
                "expected the publishable key (`pk_…`) in the query string",
            )
        })?;
    let catalog = state.catalog.snapshot();
    let pk = catalog
        .publishable_key(key)
        .cloned()
        .ok_or_else(|| ApiError::Unauthorized("unknown or inactive publishable key".into()))?;
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::Forbidden(
                "browser events are accepted from web pages only (no Origin header)".into(),
            )
        })?;
    if !pk.allows(origin) {
        return Err(ApiError::Forbidden(format!(
            "the origin `{origin}` is not on this publishable key's allow-list"
        )));
    }
    Ok((pk, origin.to_string()))
}

/// `Access-Control-Allow-Origin` for `origin`, and `Vary: Origin`.
fn with_cors(mut resp: Response, origin: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(origin) {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    resp
}

/// The CORS preflight: allowed for the key's origins only (204 with the CORS headers), else
/// refused without them.
pub async fn preflight(
    State(state): State<IngestState>,
    Query(query): Query<KeyQuery>,
    headers: HeaderMap,
) -> Response {
    match allowed(&state, &query, &headers) {
        Ok((_, origin)) => {
            let mut resp = StatusCode::NO_CONTENT.into_response();
            let h = resp.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("POST"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("content-type"),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
            with_cors(resp, &origin)
        }
        Err(e) => refused(e),
    }
}

/// Send events from a web page, as `t.js` does: one event, an array of up to 50, or
/// `{"events": [...]}`, any content type (`text/plain` avoids a preflight).
///
/// Same fields as `/api/v1/events` except `refund`, which is refused. Accepted only from an
/// origin on the publishable key's allow-list (`Origin` header); the answer carries CORS
/// headers for that origin only. Rate limited per publishable key and per client address.
#[utoipa::path(
    post, path = "/api/v1/browser/events", tag = "browser",
    params(KeyQuery, ("Origin" = String, Header, description = "The page's origin, on the key's allow-list")),
    request_body(content = Object, description = "An event, an array of events, or {\"events\": [...]}"),
    responses(
        (status = 200, description = "Durable", body = Accepted),
        (status = 400, description = "Invalid fields, all listed", body = ErrorBody),
        (status = 401, description = "Unknown or inactive publishable key", body = ErrorBody),
        (status = 403, description = "No Origin, or an origin not on the allow-list", body = ErrorBody),
        (status = 413, description = "Too large", body = ErrorBody),
        (status = 429, description = "Over the key's or the address's rate limit", body = ErrorBody),
        (status = 503, description = "Not durable; retry later", body = ErrorBody),
    )
)]
pub async fn post_browser_events(
    State(state): State<IngestState>,
    Query(query): Query<KeyQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (pk, origin) = match allowed(&state, &query, &headers) {
        Ok(found) => found,
        Err(e) => return refused(e),
    };
    let resp = match accept(&state, &pk, body).await {
        Ok(a) => Json(a).into_response(),
        Err(e) => refused(e),
    };
    with_cors(resp, &origin)
}

async fn accept(
    state: &IngestState,
    pk: &PublishableKey,
    body: Body,
) -> Result<Accepted, ApiError> {
    let bytes = read_limited(body, MAX_BROWSER_BODY.min(state.config.max_body_bytes)).await?;
    let mut records = records_of(
        &bytes,
        &pk.advertiser_id,
        None,
        Utc::now(),
        MAX_BROWSER_BATCH,
    )?;
    let refunds: Vec<_> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.action == Action::Refund)
        .map(|(i, _)| {
            let field = if records.len() == 1 {
                "action".to_string()
            } else {
                format!("events[{i}].action")
            };
            clicktrail_api::error::FieldError::new(
                field,
                "refunds are not accepted from web pages: send them from a backend with an API key",
            )
        })
        .collect();
    if !refunds.is_empty() {
        return Err(ApiError::fields(refunds));
    }
    let counts = state
        .catalog
        .snapshot()
        .advertisers
        .get(&pk.advertiser_id)
        .is_some_and(|a| a.browser_purchases_count);
    for r in &mut records {
        mark_browser(r, counts);
    }
    let event_ids = send(state, &records).await?;
    Ok(Accepted {
        accepted: event_ids.len(),
        event_ids,
        warnings: warnings(&records, &state.catalog.snapshot()),
    })
}

/// The namespace of the ids a page gives: its `event_id` and `customer_id` are stored as
/// `web:<id>`, so that a page (anyone holding the public key) can neither take a backend
/// event's id first, which would make the backend's event a duplicate, nor take over a
/// backend customer's first touch.
pub const BROWSER_ID_PREFIX: &str = "web:";

/// Marks a validated event as sent from a page: its ids in [`BROWSER_ID_PREFIX`]'s namespace;
/// a purchase its advertiser does not count loses its amount (kept in
/// `properties.declared_value_minor`) and is flagged `uncounted`.
pub fn mark_browser(r: &mut EventRecord, purchases_count: bool) {
    r.source = EventSource::Browser;
    r.event_id = format!("{BROWSER_ID_PREFIX}{}", r.event_id);
    if let Some(c) = r.customer_id.take() {
        r.customer_id = Some(format!("{BROWSER_ID_PREFIX}{c}"));
    }
    if r.action != Action::Purchase || purchases_count {
        return;
    }
    r.uncounted = true;
    if let Some(value) = r.value_minor.take() {
        let mut props = r
            .properties
            .as_deref()
            .and_then(|p| {
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(p).ok()
            })
            .unwrap_or_default();
        props.insert("declared_value_minor".into(), value.into());
        r.properties = serde_json::to_string(&props).ok();
    }
}
