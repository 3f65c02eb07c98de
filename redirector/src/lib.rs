//! The redirector: `GET /r/{code}[/{sub_id}]` (and `/ref/…`) answers 302 to the campaign's
//! destination with `ref_code` and `click_id` appended and the incoming query kept. The
//! affiliate landing `/ref/…` also sets the attribution cookie `ct_ref` (the click id, for the
//! campaign plan's cookie life, 7 days by default); both set the 24-hour `ct_vid` visitor
//! cookie that makes a repeat visit the same visitor (one unique click).
//!
//! The hot path is one in-memory lookup (a `moka` cache in front of the followed catalog), one
//! enqueue of the click record and one response; it never waits for the bus. Unknown or
//! deactivated codes get a small 404 page. A campaign outside its live dates still redirects,
//! and its click is flagged `not_live` so it is never credited.
//!
//! Modules: [`visitor`] (truncated IPs, visitor key, cookie), [`classify`] (bots, devices).
//! [`router`] gives the routes (`/r/…`, `/ref/…`) to put on a port; [`run`] serves them on
//! their own port beside health and metrics until the process shuts down.

pub mod classify;
pub mod location;
pub mod visitor;

use axum::extract::{ConnectInfo, State};
use axum::routing::any;
use bytes::Bytes;
use chrono::Utc;
use clicktrail_api::client::{AddressRanges, TrustedProxies, client_addr};
use clicktrail_api::http::Port;
use clicktrail_bus::{CatalogView, Producer, RecordProducer};
use clicktrail_schemas::catalog::{Campaign, DEFAULT_COOKIE_SECS};
use clicktrail_schemas::metric_names::redirector::CLICKS_DROPPED;
use clicktrail_schemas::promo::PromoTouch;
use clicktrail_schemas::token::ClickKeys;
use clicktrail_schemas::wire::{ClickRecord, WIRE_VERSION};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri, header};
use http_body_util::Full;
use moka::sync::Cache;
use percent_encoding::percent_decode_str;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use url::Url;

/// Follow a tracking link: 302 to the campaign's destination with `ref_code` and `click_id`.
#[utoipa::path(get, path = "/r/{code}", tag = "redirect", params(("code" = String, Path)),
    responses((status = 302, description = "Redirect; sets the ct_vid cookie for 24 hours on first visit"), (status = 404, description = "Unknown or deactivated code (HTML page)")))]
#[allow(dead_code)]
fn doc_redirect() {}

/// Follow a tracking link with a sub id.
#[utoipa::path(get, path = "/r/{code}/{sub_id}", tag = "redirect", params(("code" = String, Path), ("sub_id" = String, Path)),
    responses((status = 302, description = "Redirect"), (status = 404, description = "Unknown or deactivated code")))]
#[allow(dead_code)]
fn doc_redirect_sub() {}

/// The affiliate landing: the same redirect, plus the first-party attribution cookie
/// `ct_ref=<click id>` for the campaign plan's `cookie_secs` (7 days by default; readable by
/// the shop's own scripts, `SameSite=Lax`) beside the 24-hour `ct_vid` visitor cookie.
#[utoipa::path(get, path = "/ref/{code}", tag = "redirect", params(("code" = String, Path)),
    responses((status = 302, description = "Redirect; sets ct_ref (attribution, the plan's cookie_secs) and ct_vid (24 hours)"), (status = 404, description = "Unknown or deactivated code (HTML page)")))]
#[allow(dead_code)]
fn doc_landing() {}

/// The affiliate landing with a sub id.
#[utoipa::path(get, path = "/ref/{code}/{sub_id}", tag = "redirect", params(("code" = String, Path), ("sub_id" = String, Path)),
    responses((status = 302, description = "Redirect; sets ct_ref and ct_vid"), (status = 404, description = "Unknown or deactivated code")))]
#[allow(dead_code)]
fn doc_landing_sub() {}

/// The redirector's OpenAPI description.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(doc_redirect, doc_redirect_sub, doc_landing, doc_landing_sub),
    tags((name = "redirect", description = "Shopper redirects"))
)]
pub struct RedirectApi;

/// `/r/…` and `/ref/…` (any method: the handler answers 405 to all but GET and HEAD).
pub fn router(redirector: Arc<Redirector>) -> axum::Router {
    axum::Router::new()
        .route("/r/{*rest}", any(redirect))
        .route("/ref/{*rest}", any(redirect))
        .with_state(redirector)
}

/// Serves the redirect routes on `port` until the process shuts down, then drains.
/// Errors: the listener failed.
pub async fn run(redirector: Arc<Redirector>, port: Port) -> std::io::Result<()> {
    port.serve(router(redirector)).await
}

async fn redirect(
    State(redirector): State<Arc<Redirector>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: axum::extract::Request,
) -> axum::response::Response {
    redirector
        .handle(req.method(), req.uri(), req.headers(), peer.ip())
        .map(axum::body::Body::new)
}

const MAX_UA: usize = 512;
const MAX_SUB_ID: usize = 128;
const NOT_FOUND_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Link not found</title></head><body style=\"font-family:sans-serif;text-align:center;margin-top:15vh\"><h1>Link not found</h1><p>This link does not exist or is no longer active.</p></body></html>";

/// Redirector settings.
#[derive(Debug, Clone)]
pub struct RedirectorConfig {
    /// Keys that sign click tokens.
    pub click_keys: ClickKeys,
    /// Salt of the hashed visitor key.
    pub visitor_salt: String,
    /// Proxies whose `X-Forwarded-For` names the client (see `clicktrail_api::client`).
    pub trusted_proxies: TrustedProxies,
    /// A MaxMind-format country database.
    pub geo_db: Option<PathBuf>,
    /// Networks whose clicks are flagged `scanner_network` (mail gateways); by default
    /// [`classify::DEFAULT_SCANNER_NETWORKS`].
    pub scanner_networks: AddressRanges,
}

/// What a code resolves to, with the destination parsed once.
#[derive(Debug)]
struct Target {
    link_id: String,
    advertiser_id: String,
    campaign_id: String,
    influencer_id: String,
    destination: Url,
    campaign: Campaign,
    /// Life of the `/ref/…` attribution cookie: the campaign plan's, else 7 days.
    ref_cookie_secs: u64,
}

/// The redirect handler, shared by every connection.
pub struct Redirector {
    config: RedirectorConfig,
    catalog: Arc<CatalogView>,
    producer: Arc<dyn Producer>,
    cache: Cache<String, Option<Arc<Target>>>,
    geo: Option<maxminddb::Reader<Vec<u8>>>,
}

impl Redirector {
    /// A redirector over a followed catalog. Its cache empties whenever the catalog changes.
    pub fn new(
        config: RedirectorConfig,
        catalog: Arc<CatalogView>,
        producer: Arc<dyn Producer>,
    ) -> Result<Arc<Self>, String> {
        let geo = match &config.geo_db {
            Some(path) => Some(
                maxminddb::Reader::open_readfile(path)
                    .map_err(|e| format!("cannot open geo database {}: {e}", path.display()))?,
            ),
            None => None,
        };
        classify::warm_up();
        let r = Arc::new(Redirector {
            config,
            catalog: catalog.clone(),
            producer,
            cache: Cache::builder().max_capacity(200_000).build(),
            geo,
        });
        let weak = Arc::downgrade(&r);
        let mut changes = catalog.subscribe();
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                match weak.upgrade() {
                    Some(r) => r.cache.invalidate_all(),
                    None => return,
                }
            }
        });
        Ok(r)
    }

    fn resolve(&self, code: &str) -> Option<Arc<Target>> {
        self.cache.get_with_by_ref(code, || {
            let catalog = self.catalog.snapshot();
            let resolved = catalog.resolve_code(code)?;
            let ref_cookie_secs = catalog
                .campaign_plan(&resolved.campaign.id)
                .map_or(DEFAULT_COOKIE_SECS, |p| p.cookie_secs);
            let destination = Url::parse(&resolved.campaign.destination_url).ok()?;
            Some(Arc::new(Target {
                link_id: resolved.link.id,
                advertiser_id: resolved.link.advertiser_id,
                campaign_id: resolved.campaign.id.clone(),
                influencer_id: resolved.link.influencer_id,
                destination,
                campaign: resolved.campaign,
                ref_cookie_secs,
            }))
        })
    }

    fn country(&self, ip: IpAddr) -> Option<String> {
        let reader = self.geo.as_ref()?;
        let found = reader.lookup(ip).ok()?;
        use maxminddb::PathElement::Key;
        found
            .decode_path::<String>(&[Key("country"), Key("iso_code")])
            .ok()
            .flatten()
            .or_else(|| {
                found
                    .decode_path::<String>(&[Key("country_code")])
                    .ok()
                    .flatten()
            })
    }

    /// Answers one request to `/r/…` or `/ref/…` from `peer`.
    pub fn handle(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        peer: IpAddr,
    ) -> Response<Full<Bytes>> {
        let is_head = method == Method::HEAD;
        if method != Method::GET && !is_head {
            return Response::builder()
                .status(StatusCode::METHOD_NOT_ALLOWED)
                .header(header::ALLOW, "GET, HEAD")
                .body(Full::new(Bytes::new()))
                .expect("static response");
        }
        let landing = uri.path().starts_with("/ref/");
        let rest = uri
            .path()
            .strip_prefix("/r/")
            .or_else(|| uri.path().strip_prefix("/ref/"))
            .unwrap_or("");
        let (code, sub_id) = match rest.split_once('/') {
            Some((c, s)) => (c, Some(s)),
            None => (rest, None),
        };
        let Some(target) = (!code.is_empty()).then(|| self.resolve(code)).flatten() else {
            return not_found(is_head);
        };
        // The path's sub id, else the shopper's `sub_id` parameter (the last one given).
        let sub_id = sub_id
            .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
            .or_else(|| uri.query().and_then(query_sub_id))
            .filter(|s| !s.is_empty())
            .map(|mut s| {
                s.truncate(s.floor_char_boundary(MAX_SUB_ID));
                s
            });

        let now = Utc::now();
        let click_id =
            self.config
                .click_keys
                .mint(&target.link_id, now.timestamp_millis(), rand::random());
        let mut user_agent = headers
            .get(header::USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        user_agent.truncate(user_agent.floor_char_boundary(MAX_UA));
        let ip = client_addr(peer, headers, &self.config.trusted_proxies);
        let ip_prefix = visitor::truncate_ip(ip);
        let cookie_key = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(visitor::from_cookie)
            .map(str::to_string);
        let (visitor_key, new_cookie) = match cookie_key {
            Some(k) => (k, false),
            None => (
                visitor::hashed_key(
                    &visitor::daily_salt(&self.config.visitor_salt, now.date_naive()),
                    &ip_prefix,
                    &user_agent,
                ),
                true,
            ),
        };
        let bot_reason = classify::bot_reason(
            is_head,
            &user_agent,
            self.config.scanner_networks.contains(ip),
        );
        let promo = uri
            .query()
            .and_then(promo_var)
            .and_then(|v| self.promo_touch(&target.link_id, &v));

        let location = location::location(
            &target.destination,
            uri.query(),
            code,
            &click_id,
            sub_id.as_deref(),
        );

        let record = ClickRecord {
            v: WIRE_VERSION,
            click_id,
            at: now,
            link_id: target.link_id.clone(),
            code: code.to_string(),
            sub_id,
            advertiser_id: target.advertiser_id.clone(),
            campaign_id: target.campaign_id.clone(),
            influencer_id: target.influencer_id.clone(),
            device_class: classify::device_class(&user_agent, bot_reason.is_some()).to_string(),
            visitor_key: visitor_key.clone(),
            user_agent,
            referrer: headers
                .get(header::REFERER)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            ip_prefix,
            country: self.country(ip),
            is_bot: bot_reason.is_some(),
            bot_reason: bot_reason.map(str::to_string),
            not_live: !target.campaign.is_live_at(now),
            promo,
        };
        let record_click_id = record.click_id.clone();
        if let Err(e) = self.producer.enqueue_record(&record) {
            metrics::counter!(CLICKS_DROPPED).increment(1);
            tracing::warn!(error = %e, "click not queued; redirect answered anyway");
        }

        let mut resp = Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, location.as_str())
            .header(header::CACHE_CONTROL, "no-store")
            .body(Full::new(Bytes::new()))
            .expect("valid response");
        if new_cookie && let Ok(v) = HeaderValue::from_str(&visitor::set_cookie(&visitor_key)) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
        if landing && !is_head {
            let https = headers
                .get("x-forwarded-proto")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
            let cookie = visitor::ref_cookie(&record_click_id, target.ref_cookie_secs, https);
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        resp
    }
}

/// The `promo_var` parameter of a query string, if present and of a plausible length; the
/// last one given, as the destination receives it (`location`).
/// The last `sub_id` parameter of a query, if any.
fn query_sub_id(query: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "sub_id")
        .last()
        .map(|(_, v)| v.into_owned())
}

fn promo_var(query: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "promo_var")
        .last()
        .map(|(_, v)| v.into_owned())
        .filter(|v| (1..=64).contains(&v.len()))
}

impl Redirector {
    /// The variation `variation_id` of an offer on link `link_id`, when it is approved and the
    /// offer active; anything else is ignored (the click is recorded without it).
    fn promo_touch(&self, link_id: &str, variation_id: &str) -> Option<PromoTouch> {
        let catalog = self.catalog.snapshot();
        let (offer, variation) = catalog.live_variation(variation_id)?;
        (offer.link_id == link_id).then(|| PromoTouch {
            offer_id: offer.id.clone(),
            variation_id: variation.id.clone(),
        })
    }
}

fn not_found(is_head: bool) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::NOT_FOUND)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(if is_head {
            Bytes::new()
        } else {
            Bytes::from_static(NOT_FOUND_PAGE.as_bytes())
        }))
        .expect("static response")
}

#[cfg(test)]
mod tests {
    use super::promo_var;

    #[test]
    fn the_last_promo_var_counts_as_the_destination_receives_it() {
        assert_eq!(promo_var("promo_var=var_a").as_deref(), Some("var_a"));
        assert_eq!(
            promo_var("promo_var=var_a&x=1&promo_var=var_b").as_deref(),
            Some("var_b")
        );
        assert_eq!(promo_var("promo_var="), None);
        assert_eq!(promo_var(&format!("promo_var={}", "a".repeat(65))), None);
        assert_eq!(promo_var("other=1"), None);
    }
}
