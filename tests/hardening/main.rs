//! What an ordinary advertiser key must not be able to do to the server or to other tenants:
//! crash or starve it with queries (`queries`), hold its connections or outrun its rate limits
//! (`limits`), read another tenant's identifiers or values (`tenants`), or use keys, secrets and
//! signatures beyond their life (`keys`).

#[path = "../common/mod.rs"]
mod common;
mod keys;
mod limits;
mod queries;
mod tenants;

use common::Server;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Runs analyst SQL with `key`: the status and the JSON answer.
pub async fn sql(s: &Server, key: &str, query: &str) -> (StatusCode, Value) {
    let r = s
        .http
        .post(s.url("/api/v1/sql"))
        .header("x-api-key", key)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}
