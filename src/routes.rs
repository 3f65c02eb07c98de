//! The OpenAPI document every role serves at `/api/v1/openapi.json`: the redirect, operations,
//! events, admin and query descriptions merged into one.

#[derive(utoipa::OpenApi)]
#[openapi(info(
    title = "clicktrail",
    description = "Influencer and affiliate tracking: redirects, funnel events, attribution and analytics."
))]
struct ProcessApi;

/// The OpenAPI document of every role.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    let mut doc = ProcessApi::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.merge(clicktrail_redirector::RedirectApi::openapi());
    doc.merge(clicktrail_api::http::OpsApi::openapi());
    doc.merge(clicktrail_ingest::openapi());
    doc.merge(clicktrail_query::openapi());
    doc
}
