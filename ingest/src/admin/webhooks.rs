//! Webhook endpoints and postbacks of an advertiser (`docs/integration.md`).

use super::page::{Page, PageQuery, paginate};
use super::{Admin, JsonIn, check};
use crate::IngestState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{patch, post};
use axum::{Json, Router};
use chrono::Utc;
use clicktrail_api::error::{ApiError, FieldError};
use clicktrail_schemas::CatalogChange;
use clicktrail_schemas::catalog::{POSTBACK_MACROS, Postback, WebhookEndpoint, WebhookEvent};
use clicktrail_schemas::ids::new_id;
use serde::{Deserialize, Serialize};

/// The longest URL or URL template, in bytes.
pub const MAX_URL: usize = 2000;

/// A new webhook endpoint.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where deliveries go: an absolute `http` or `https` URL.
    pub url: String,
    /// The events it receives: `conversion.attributed`, `conversion.unattributed`,
    /// `commission.available`, `payout.paid` (at least one).
    #[schema(value_type = Vec<String>)]
    pub events: Vec<WebhookEvent>,
}

/// Changes to an endpoint; absent fields stay as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    /// A new URL.
    pub url: Option<String>,
    /// A new list of events.
    #[schema(value_type = Option<Vec<String>>)]
    pub events: Option<Vec<WebhookEvent>>,
    /// Whether it receives new messages (switching it off also ends pending retries).
    pub active: Option<bool>,
}

/// An endpoint with its signing secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: WebhookEndpoint,
    /// The secret deliveries are signed with (`X-Clicktrail-Signature`).
    pub secret: String,
}

/// A new postback.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPostback {
    /// The URL template, with macros `{click_id}`, `{sub_id}`, `{event_id}`, `{action}`,
    /// `{amount}`, `{currency}`.
    pub url: String,
    /// Only conversions of this campaign of the advertiser (default: all).
    pub campaign_id: Option<String>,
    /// Only conversions credited to this influencer (default: all).
    pub influencer_id: Option<String>,
}

/// Changes to a postback; absent fields stay as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostbackPatch {
    /// A new URL template.
    pub url: Option<String>,
    /// Whether it is called.
    pub active: Option<bool>,
}

pub(super) fn routes() -> Router<IngestState> {
    Router::new()
        .route(
            "/api/v1/admin/advertisers/{id}/webhooks",
            post(create_webhook).get(list_webhooks),
        )
        .route("/api/v1/admin/webhooks/{id}", patch(update_webhook))
        .route(
            "/api/v1/admin/advertisers/{id}/postbacks",
            post(create_postback).get(list_postbacks),
        )
        .route("/api/v1/admin/postbacks/{id}", patch(update_postback))
}

/// Checks a URL (or a postback's template, with `macros` allowed in braces in its path and
/// query only, so that no value sent with an event chooses where the request goes): absolute,
/// `http` or `https`, a host, no user or password, no control characters, at most [`MAX_URL`]
/// bytes.
fn check_url(field: &str, url: &str, macros: bool, errors: &mut Vec<FieldError>) {
    let url = url.trim();
    let mut probe = url.to_string();
    if macros {
        let mut rest = url;
        let mut unknown = Vec::new();
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                unknown.push(rest[open..].chars().take(20).collect::<String>());
                break;
            };
            let name = &rest[open + 1..open + close];
            if !POSTBACK_MACROS.contains(&name) {
                unknown.push(name.to_string());
            }
            rest = &rest[open + close + 1..];
        }
        if !unknown.is_empty() {
            errors.push(FieldError::new(
                field,
                format!(
                    "unknown or unclosed macro {{{}}}: expected {}",
                    unknown.join("}, {"),
                    POSTBACK_MACROS.map(|m| format!("{{{m}}}")).join(", ")
                ),
            ));
            return;
        }
        let authority = url
            .split_once("://")
            .map_or(url, |(_, rest)| rest)
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default();
        if authority.contains('{') {
            errors.push(FieldError::new(
                field,
                "macros may stand in the path and query only, not in the scheme, host or port",
            ));
            return;
        }
        for m in POSTBACK_MACROS {
            probe = probe.replace(&format!("{{{m}}}"), "x");
        }
    }
    let ok = url.len() <= MAX_URL
        && !url.chars().any(char::is_control)
        && url::Url::parse(&probe).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && u.username().is_empty()
                && u.password().is_none()
        });
    if !ok {
        errors.push(FieldError::new(
            field,
            format!(
                "expected an absolute http or https URL without user or password, of at most \
                 {MAX_URL} bytes"
            ),
        ));
    }
}

fn check_events(events: &[WebhookEvent], errors: &mut Vec<FieldError>) {
    if events.is_empty() {
        errors.push(FieldError::new(
            "events",
            "expected at least one of conversion.attributed, conversion.unattributed, \
             commission.available, payout.paid",
        ));
    }
}

fn view(s: &IngestState, endpoint: WebhookEndpoint) -> WebhookView {
    WebhookView {
        secret: endpoint.secret(&s.config.signing_key),
        endpoint,
    }
}

/// Register a webhook endpoint; its secret is in the answer (and in the list).
#[utoipa::path(post, path = "/api/v1/admin/advertisers/{id}/webhooks", tag = "admin",
    params(("id" = String, Path)), request_body = NewWebhook,
    responses((status = 201, description = "Created", body = WebhookView), (status = 400, description = "Invalid fields, each named"), (status = 404, description = "Unknown advertiser")))]
pub async fn create_webhook(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
    JsonIn(req): JsonIn<NewWebhook>,
) -> Result<(StatusCode, Json<WebhookView>), ApiError> {
    super::advertisers::find(&s, &id)?;
    let mut errors = Vec::new();
    check_url("url", &req.url, false, &mut errors);
    check_events(&req.events, &mut errors);
    check(errors)?;
    let mut events = req.events;
    events.sort_by_key(|e| e.as_str());
    events.dedup();
    let endpoint = WebhookEndpoint {
        id: new_id("whk"),
        advertiser_id: id,
        url: req.url.trim().to_string(),
        events,
        active: true,
        created_at: Utc::now(),
    };
    s.write(CatalogChange::WebhookUpserted {
        endpoint: endpoint.clone(),
    })
    .await?;
    Ok((StatusCode::CREATED, Json(view(&s, endpoint))))
}

/// List an advertiser's webhook endpoints.
#[utoipa::path(get, path = "/api/v1/admin/advertisers/{id}/webhooks", tag = "admin",
    params(("id" = String, Path), PageQuery),
    responses((status = 200, description = "Endpoints in creation order", body = Page<WebhookView>), (status = 404, description = "Unknown advertiser")))]
pub async fn list_webhooks(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<WebhookView>>, ApiError> {
    super::advertisers::find(&s, &id)?;
    let list: Vec<WebhookView> = s
        .catalog
        .snapshot()
        .webhooks
        .values()
        .filter(|w| w.advertiser_id == id)
        .map(|w| view(&s, w.clone()))
        .collect();
    paginate(list, &page, |w| {
        (w.endpoint.created_at, w.endpoint.id.as_str())
    })
    .map(Json)
}

/// Change an endpoint's URL or events, or switch it off or on.
#[utoipa::path(patch, path = "/api/v1/admin/webhooks/{id}", tag = "admin",
    params(("id" = String, Path)), request_body = WebhookPatch,
    responses((status = 200, description = "Updated", body = WebhookView), (status = 400, description = "Invalid fields"), (status = 404, description = "Unknown endpoint")))]
pub async fn update_webhook(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
    JsonIn(p): JsonIn<WebhookPatch>,
) -> Result<Json<WebhookView>, ApiError> {
    let mut w = s
        .catalog
        .snapshot()
        .webhooks
        .get(&id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("webhook endpoint `{id}` does not exist")))?;
    let mut errors = Vec::new();
    if let Some(url) = &p.url {
        check_url("url", url, false, &mut errors);
        w.url = url.trim().to_string();
    }
    if let Some(mut events) = p.events {
        check_events(&events, &mut errors);
        events.sort_by_key(|e| e.as_str());
        events.dedup();
        w.events = events;
    }
    check(errors)?;
    if let Some(active) = p.active {
        w.active = active;
    }
    s.write(CatalogChange::WebhookUpserted {
        endpoint: w.clone(),
    })
    .await?;
    Ok(Json(view(&s, w)))
}

/// Register a postback for an advertiser's conversions (of one campaign, one influencer, or
/// both).
#[utoipa::path(post, path = "/api/v1/admin/advertisers/{id}/postbacks", tag = "admin",
    params(("id" = String, Path)), request_body = NewPostback,
    responses((status = 201, description = "Created", body = Postback), (status = 400, description = "Invalid fields, each named"), (status = 404, description = "Unknown advertiser")))]
pub async fn create_postback(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
    JsonIn(req): JsonIn<NewPostback>,
) -> Result<(StatusCode, Json<Postback>), ApiError> {
    super::advertisers::find(&s, &id)?;
    let mut errors = Vec::new();
    check_url("url", &req.url, true, &mut errors);
    let catalog = s.catalog.snapshot();
    if let Some(c) = &req.campaign_id
        && catalog
            .campaigns
            .get(c)
            .is_none_or(|c| c.advertiser_id != id)
    {
        errors.push(FieldError::new(
            "campaign_id",
            format!("no campaign `{c}` of this advertiser"),
        ));
    }
    if let Some(i) = &req.influencer_id {
        let works_here = catalog.assignments.iter().any(|(c, inf)| {
            inf == i
                && req.campaign_id.as_ref().is_none_or(|want| want == c)
                && catalog
                    .campaigns
                    .get(c)
                    .is_some_and(|c| c.advertiser_id == id)
        });
        if !works_here {
            errors.push(FieldError::new(
                "influencer_id",
                format!("influencer `{i}` is assigned to no campaign of this advertiser (or to this campaign)"),
            ));
        }
    }
    check(errors)?;
    let postback = Postback {
        id: new_id("pbk"),
        advertiser_id: id,
        campaign_id: req.campaign_id,
        influencer_id: req.influencer_id,
        url: req.url.trim().to_string(),
        active: true,
        created_at: Utc::now(),
    };
    s.write(CatalogChange::PostbackUpserted {
        postback: postback.clone(),
    })
    .await?;
    Ok((StatusCode::CREATED, Json(postback)))
}

/// List an advertiser's postbacks.
#[utoipa::path(get, path = "/api/v1/admin/advertisers/{id}/postbacks", tag = "admin",
    params(("id" = String, Path), PageQuery),
    responses((status = 200, description = "Postbacks in creation order", body = Page<Postback>), (status = 404, description = "Unknown advertiser")))]
pub async fn list_postbacks(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<Postback>>, ApiError> {
    super::advertisers::find(&s, &id)?;
    let list: Vec<Postback> = s
        .catalog
        .snapshot()
        .postbacks
        .values()
        .filter(|p| p.advertiser_id == id)
        .cloned()
        .collect();
    paginate(list, &page, |p| (p.created_at, p.id.as_str())).map(Json)
}

/// Change a postback's URL template, or switch it off or on.
#[utoipa::path(patch, path = "/api/v1/admin/postbacks/{id}", tag = "admin",
    params(("id" = String, Path)), request_body = PostbackPatch,
    responses((status = 200, description = "Updated", body = Postback), (status = 400, description = "Invalid fields"), (status = 404, description = "Unknown postback")))]
pub async fn update_postback(
    _: Admin,
    State(s): State<IngestState>,
    Path(id): Path<String>,
    JsonIn(p): JsonIn<PostbackPatch>,
) -> Result<Json<Postback>, ApiError> {
    let mut pb = s
        .catalog
        .snapshot()
        .postbacks
        .get(&id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("postback `{id}` does not exist")))?;
    if let Some(url) = &p.url {
        let mut errors = Vec::new();
        check_url("url", url, true, &mut errors);
        check(errors)?;
        pb.url = url.trim().to_string();
    }
    if let Some(active) = p.active {
        pb.active = active;
    }
    s.write(CatalogChange::PostbackUpserted {
        postback: pb.clone(),
    })
    .await?;
    Ok(Json(pb))
}
