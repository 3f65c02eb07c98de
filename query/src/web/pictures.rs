//! The charts as SVG pictures: `/api/v1/stats/chart.svg` and `/api/v1/me/stats/chart.svg`, the
//! chart API's answer drawn by [`super::chart`] at the size the page asks for.

use super::chart;
use crate::QueryState;
use crate::scope::Scope;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use clicktrail_api::error::ApiError;
use std::collections::HashMap;

/// What a chart picture request asks for besides the chart's filters.
struct Picture {
    kind: chart::Kind,
    width: u32,
    height: u32,
}

/// Splits the chart kind and size off a chart request's parameters.
fn picture(q: &mut HashMap<String, String>) -> Result<Picture, ApiError> {
    let kind = match q.remove("kind").as_deref() {
        None | Some("traffic") => chart::Kind::Traffic,
        Some("conversions") => chart::Kind::Conversions,
        Some(_) => return Err(ApiError::field("kind", "expected traffic or conversions")),
    };
    let (width, height) = size(q)?;
    Ok(Picture {
        kind,
        width,
        height,
    })
}

/// Takes a picture's `width` (280 to 1600, default 640) and `height` (160 to 800, default
/// 260) in pixels off a request's parameters.
/// Errors: a size out of range or not a number, naming the parameter.
pub(crate) fn size(q: &mut HashMap<String, String>) -> Result<(u32, u32), ApiError> {
    let mut one =
        |name: &str, default: u32, range: std::ops::RangeInclusive<u32>| match q.remove(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| {
                    ApiError::field(
                        name,
                        format!("expected {} to {} pixels", range.start(), range.end()),
                    )
                }),
        };
    Ok((
        one("width", 640, 280..=1600)?,
        one("height", 260, 160..=800)?,
    ))
}

/// An SVG picture as an answer.
pub(crate) fn svg_answer(body: String) -> Response {
    svg(body)
}

fn svg(body: String) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "private, no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'"),
        ],
        body,
    )
        .into_response()
}

fn chart_title(kind: chart::Kind) -> &'static str {
    match kind {
        chart::Kind::Traffic => "Clicks and unique clicks",
        chart::Kind::Conversions => "Conversions and revenue",
    }
}

/// The chart as an SVG picture: `kind=traffic` (clicks, unique clicks) or `conversions`
/// (conversions and the main currency's revenue), with the chart API's parameters.
#[utoipa::path(get, path = "/api/v1/stats/chart.svg", tag = "stats",
    params(("kind" = Option<String>, Query, description = "traffic (default) or conversions"), ("width" = Option<u32>, Query, description = "pixels, 280 to 1600 (default 640)"), ("height" = Option<u32>, Query, description = "pixels, 160 to 800 (default 260)"), ("interval" = Option<String>, Query), ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("period" = Option<String>, Query), ("campaign_id" = Option<String>, Query), ("influencer_id" = Option<String>, Query), ("tz" = Option<String>, Query)),
    responses((status = 200, description = "An SVG picture", content_type = "image/svg+xml", body = String), (status = 400, description = "Bad filter")))]
pub async fn chart_svg(
    State(state): State<QueryState>,
    headers: HeaderMap,
    Query(mut q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let p = picture(&mut q)?;
    let scope = Scope::of(&headers, &state)?;
    let data = crate::stats::chart_in(&state, &scope, &q).await?.0;
    Ok(svg(chart::render(
        &data,
        p.kind,
        p.width,
        p.height,
        chart_title(p.kind),
    )))
}

/// The influencer's chart as an SVG picture (see `/api/v1/stats/chart.svg`).
#[utoipa::path(get, path = "/api/v1/me/stats/chart.svg", tag = "me", security(("session" = [])),
    params(("kind" = Option<String>, Query, description = "traffic (default) or conversions"), ("width" = Option<u32>, Query, description = "pixels, 280 to 1600 (default 640)"), ("height" = Option<u32>, Query, description = "pixels, 160 to 800 (default 260)"), ("interval" = Option<String>, Query), ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("period" = Option<String>, Query), ("campaign_id" = Option<String>, Query), ("tz" = Option<String>, Query)),
    responses((status = 200, description = "An SVG picture", content_type = "image/svg+xml", body = String), (status = 400, description = "Bad filter"), (status = 403, description = "Not an influencer user")))]
pub async fn my_chart_svg(
    State(state): State<QueryState>,
    headers: HeaderMap,
    Query(mut q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let p = picture(&mut q)?;
    let (scope, _) = Scope::me(&headers, &state)?;
    let data = crate::stats::chart_in(&state, &scope, &q).await?.0;
    Ok(svg(chart::render(
        &data,
        p.kind,
        p.width,
        p.height,
        chart_title(p.kind),
    )))
}
