//! The browsable API reference at `/api/v1/docs`: one HTML page rendered from the process's
//! OpenAPI document with a template (MiniJinja, HTML auto-escaping), every operation by tag
//! with its parameters, request body and answers, then every schema with its fields. It needs
//! nothing but the binary: no script, no external asset.

use serde::Serialize;
use serde_json::Value;

const TEMPLATE: &str = include_str!("../templates/reference.html");
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[derive(Serialize)]
struct Param {
    name: String,
    location: String,
    required: bool,
    kind: String,
    description: String,
}

#[derive(Serialize)]
struct Answer {
    status: String,
    description: String,
    kind: String,
}

#[derive(Serialize)]
struct Operation {
    id: String,
    method: String,
    path: String,
    summary: String,
    description: String,
    security: String,
    params: Vec<Param>,
    body: String,
    responses: Vec<Answer>,
}

#[derive(Serialize)]
struct Tag {
    name: String,
    description: String,
    operations: Vec<Operation>,
}

#[derive(Serialize)]
struct Field {
    name: String,
    kind: String,
    required: bool,
    description: String,
}

#[derive(Serialize)]
struct Schema {
    name: String,
    kind: String,
    description: String,
    fields: Vec<Field>,
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// A schema in a few words: a component's name, `array of …`, a type with its format.
fn kind(schema: &Value) -> String {
    if let Some(r) = schema["$ref"].as_str() {
        return r.rsplit('/').next().unwrap_or(r).to_string();
    }
    for combo in ["oneOf", "anyOf", "allOf"] {
        if let Some(parts) = schema[combo].as_array() {
            let names: Vec<String> = parts.iter().map(kind).filter(|k| k != "null").collect();
            return names.join(" | ");
        }
    }
    let t = match &schema["type"] {
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join(" | "),
        Value::String(t) => t.clone(),
        _ => "any".into(),
    };
    match (t.as_str(), schema["format"].as_str()) {
        ("array", _) => format!("array of {}", kind(&schema["items"])),
        (_, Some(f)) => format!("{t} ({f})"),
        _ => t,
    }
}

fn content_kind(content: &Value) -> String {
    content
        .as_object()
        .into_iter()
        .flatten()
        .map(|(mime, c)| format!("{} {mime}", kind(&c["schema"])))
        .collect::<Vec<_>>()
        .join(", ")
}

fn operation(path: &str, method: &str, op: &Value) -> Operation {
    let params = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| Param {
            name: text(&p["name"]),
            location: text(&p["in"]),
            required: p["required"].as_bool().unwrap_or(false),
            kind: kind(&p["schema"]),
            description: text(&p["description"]),
        })
        .collect();
    let security = op["security"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_object()?.keys().next().cloned())
        .collect::<Vec<_>>()
        .join(" or ");
    let responses = op["responses"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(status, r)| Answer {
            status: status.clone(),
            description: text(&r["description"]),
            kind: content_kind(&r["content"]),
        })
        .collect();
    Operation {
        id: text(&op["operationId"]),
        method: method.to_string(),
        path: path.to_string(),
        summary: text(&op["summary"]),
        description: text(&op["description"]),
        security,
        params,
        body: content_kind(&op["requestBody"]["content"]),
        responses,
    }
}

/// The page for `doc` (an OpenAPI 3.1 document as JSON).
///
/// Errors: the template failed to render (a defect; the caller answers 500).
pub fn render(doc: &Value) -> Result<String, String> {
    let mut tags: Vec<Tag> = doc["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| Tag {
            name: text(&t["name"]),
            description: text(&t["description"]),
            operations: Vec::new(),
        })
        .collect();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let tag = op["tags"][0].as_str().unwrap_or("other").to_string();
            let at = match tags.iter().position(|t| t.name == tag) {
                Some(i) => i,
                None => {
                    tags.push(Tag {
                        name: tag,
                        description: String::new(),
                        operations: Vec::new(),
                    });
                    tags.len() - 1
                }
            };
            tags[at].operations.push(operation(path, method, op));
        }
    }
    tags.retain(|t| !t.operations.is_empty());
    let schemas: Vec<Schema> = doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, s)| {
            let required: Vec<&str> = s["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            Schema {
                name: name.clone(),
                kind: kind(s),
                description: text(&s["description"]),
                fields: s["properties"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(f, p)| Field {
                        name: f.clone(),
                        kind: kind(p),
                        required: required.contains(&f.as_str()),
                        description: text(&p["description"]),
                    })
                    .collect(),
            }
        })
        .collect();
    let mut env = minijinja::Environment::new();
    env.add_template("reference.html", TEMPLATE)
        .map_err(|e| e.to_string())?;
    env.get_template("reference.html")
        .and_then(|t| {
            t.render(minijinja::context! {
                title => text(&doc["info"]["title"]),
                version => text(&doc["info"]["version"]),
                description => text(&doc["info"]["description"]),
                tags => tags,
                schemas => schemas,
            })
        })
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_lists_operations_and_schemas_and_escapes_text() {
        let doc = serde_json::json!({
            "info": {"title": "t", "version": "1", "description": "<b>d</b>"},
            "tags": [{"name": "stats", "description": "Dashboards"}],
            "paths": {"/api/v1/stats/overview": {"get": {
                "tags": ["stats"], "operationId": "overview", "summary": "Totals",
                "parameters": [{"name": "period", "in": "query", "schema": {"type": "string"}}],
                "security": [{"adminToken": []}, {"apiKey": []}],
                "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Overview"}}}}}
            }}},
            "components": {"schemas": {"Overview": {"type": "object", "required": ["clicks"],
                "properties": {"clicks": {"type": "integer", "format": "int64", "description": "Human clicks"},
                               "revenue": {"type": "array", "items": {"$ref": "#/components/schemas/Money"}}}}}}
        });
        // MiniJinja's HTML escaping also writes `/` as `&#x2f;`, which browsers show as `/`.
        let page = render(&doc).unwrap().replace("&#x2f;", "/");
        assert!(page.contains(r#"id="overview""#), "{page}");
        assert!(page.contains("/api/v1/stats/overview"));
        assert!(page.contains("adminToken or apiKey"));
        assert!(page.contains("Overview application/json"));
        assert!(page.contains("integer (int64)"));
        assert!(page.contains("array of Money"));
        assert!(page.contains("&lt;b&gt;d&lt;/b&gt;"), "text is escaped");
        assert!(!page.contains("<b>d</b>"));
    }
}
