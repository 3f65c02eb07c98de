//! The OpenAPI document every role serves at `/api/v1/openapi.json`: the redirect, operations,
//! events, admin and query descriptions merged into one, then completed in one place
//! ([`complete`]): unique operation ids, the security schemes and which operations take
//! which, and the error body on every error answer.

use serde_json::{Value, json};

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
    let mut v = serde_json::to_value(&doc).expect("the document serializes");
    complete(&mut v);
    serde_json::from_value(v).expect("the completed document reads back")
}

/// Who may call an operation, by its path.
fn security(path: &str) -> Value {
    if path.starts_with("/api/v1/admin/") {
        json!([{"adminToken": []}, {"session": []}, {"sessionCookie": []}])
    } else if path == "/api/v1/me" || path.starts_with("/api/v1/me/") {
        json!([{"session": []}, {"sessionCookie": []}])
    } else if path == "/api/v1/events" || path.starts_with("/event/") {
        json!([{"apiKey": []}])
    } else if path.starts_with("/api/v1/browser/") {
        json!([{"publishableKey": []}])
    } else if [
        "/api/v1/stats/",
        "/api/v1/export/",
        "/api/v1/sql",
        "/api/v1/attribution/",
        "/api/v1/ledger/",
        "/api/v1/promo/",
        "/api/v1/deliveries",
    ]
    .iter()
    .any(|p| path.starts_with(p))
    {
        json!([{"adminToken": []}, {"apiKey": []}, {"session": []}, {"sessionCookie": []}])
    } else {
        json!([])
    }
}

/// A unique operation id for a handler name shared by several routes: the path's fixed
/// segments after `/api/v1/` (and `admin/`) and the name, without repeating a last segment
/// equal to the name (`/api/v1/admin/links/{id}/regenerate`, `regenerate` →
/// `links_regenerate`; `/api/v1/admin/advertisers/{id}/campaigns`, `create` →
/// `advertisers_campaigns_create`).
fn unique_id(path: &str, name: &str) -> String {
    let rest = path
        .trim_start_matches("/api/v1/")
        .trim_start_matches("admin/");
    let mut parts: Vec<&str> = rest
        .split('/')
        .filter(|s| !s.is_empty() && !s.starts_with('{'))
        .collect();
    if parts.last() == Some(&name) {
        parts.pop();
    }
    parts.push(name);
    parts.join("_").replace('-', "_")
}

/// Completes the merged document (as JSON).
fn complete(doc: &mut Value) {
    let components = doc["components"].as_object_mut().expect("components");
    components.insert(
        "securitySchemes".into(),
        json!({
            "adminToken": {"type": "http", "scheme": "bearer",
                "description": "The admin token (`--admin-token`, or the one `serve` generated)"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-KEY",
                "description": "An advertiser's API key: sees only that advertiser's data"},
            "session": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "A user's session token from POST /api/v1/auth/login; sees what the user's role sees (docs/roles.md)"},
            "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "ct_session",
                "description": "The browser's session cookie; requests that change state also send X-CSRF-Token"},
            "publishableKey": {"type": "apiKey", "in": "query", "name": "key",
                "description": "A publishable key (pk_…) for web pages, accepted from its allowed origins only"},
        }),
    );
    let error = json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}});
    let paths = doc["paths"].as_object_mut().expect("paths");
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    for item in paths.values() {
        for op in item.as_object().into_iter().flat_map(|o| o.values()) {
            if let Some(id) = op["operationId"].as_str() {
                *seen.entry(id.to_string()).or_default() += 1;
            }
        }
    }
    for (path, item) in paths.iter_mut() {
        for (method, op) in item.as_object_mut().expect("a path item").iter_mut() {
            let Some(op) = op.as_object_mut() else {
                continue;
            };
            if let Some(id) = op
                .get("operationId")
                .and_then(Value::as_str)
                .map(str::to_string)
                && seen.get(&id).copied().unwrap_or(0) > 1
            {
                op.insert("operationId".into(), json!(unique_id(path, &id)));
            }
            op.insert("security".into(), security(path));
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            for (status, r) in responses.iter_mut() {
                let Some(r) = r.as_object_mut() else { continue };
                if r.contains_key("content") {
                    continue;
                }
                let content = match (status.as_str(), path.as_str(), method.as_str()) {
                    (s, _, _) if s.starts_with('4') || s.starts_with('5') => {
                        // The redirector answers an unknown code with an HTML page.
                        if path.starts_with("/r/") && s == "404" {
                            json!({"text/html": {"schema": {"type": "string"}}})
                        } else {
                            error.clone()
                        }
                    }
                    ("200", p, _) if p.starts_with("/api/v1/export/") => {
                        json!({"text/csv": {"schema": {"type": "string"}}})
                    }
                    ("200", "/health/live" | "/health/ready" | "/metrics", _) => {
                        json!({"text/plain": {"schema": {"type": "string"}}})
                    }
                    _ => continue,
                };
                r.insert("content".into(), content);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_are_unique_and_every_operation_says_who_may_call_it() {
        let doc = serde_json::to_value(openapi_document()).unwrap();
        let mut ids = std::collections::HashSet::new();
        let mut missing = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap();
                assert!(ids.insert(id.to_string()), "{method} {path}: {id} twice");
                assert!(op["security"].is_array(), "{method} {path}");
                for (status, r) in op["responses"].as_object().unwrap() {
                    // Redirects and 204 No Content have no body to describe.
                    if !status.starts_with('3') && status != "204" && r.get("content").is_none() {
                        missing.push(format!("{method} {path} {status}"));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "no schema: {missing:#?}");
        assert!(doc["components"]["securitySchemes"]["apiKey"].is_object());
    }
}
