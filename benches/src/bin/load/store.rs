//! Reading back what a deployment stored: distinct ids counted or listed, from ClickHouse or
//! from the embedded Parquet store through analyst SQL.

use crate::setup::{ADMIN, Deployment};
use reqwest::Client;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Where a deployment keeps what it stored, and how the harness counts it.
pub(crate) enum Store {
    /// A database of this run's own on ClickHouse's HTTP interface.
    ClickHouse { url: String, database: String },
    /// The embedded Parquet store, read through analyst SQL (`POST /api/v1/sql`, admin token).
    Embedded { sql: String },
}

impl Deployment {
    /// Waits (10 minutes at most) until `table` holds `total` distinct ids in its `id` column
    /// matching the `LIKE` pattern.
    pub async fn wait_stored(
        &self,
        client: &Client,
        table: &str,
        id: &str,
        like: &str,
        total: u64,
    ) {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let n = self.distinct(client, table, id, like).await;
            if n >= total {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {n} of {total} {table} stored after 10 minutes"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The ids in `table`'s `id` column matching the `LIKE` pattern (at most 10,000;
    /// none when the store does not answer).
    pub async fn ids(&self, client: &Client, table: &str, id: &str, like: &str) -> Vec<String> {
        match &self.store {
            Store::ClickHouse { url, database } => {
                let sql = format!(
                    "SELECT DISTINCT {id} FROM {database}.{table} WHERE {id} LIKE '{like}' LIMIT 10000 FORMAT TabSeparated"
                );
                match client.post(url).body(sql).send().await {
                    Ok(r) if r.status().is_success() => r
                        .text()
                        .await
                        .map(|t| t.lines().map(str::to_string).collect())
                        .unwrap_or_default(),
                    _ => Vec::new(),
                }
            }
            Store::Embedded { sql } => {
                let query = format!("SELECT {id} AS id FROM {table} WHERE {id} LIKE '{like}'");
                match client
                    .post(sql)
                    .bearer_auth(ADMIN)
                    .json(&json!({ "query": query }))
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => r
                        .json::<Value>()
                        .await
                        .ok()
                        .and_then(|v| {
                            v["rows"].as_array().map(|rows| {
                                rows.iter()
                                    .filter_map(|r| r["id"].as_str().map(str::to_string))
                                    .collect()
                            })
                        })
                        .unwrap_or_default(),
                    _ => Vec::new(),
                }
            }
        }
    }

    async fn distinct(&self, client: &Client, table: &str, id: &str, like: &str) -> u64 {
        match &self.store {
            Store::ClickHouse { url, database } => {
                let sql = format!(
                    "SELECT uniqExact({id}) FROM {database}.{table} WHERE {id} LIKE '{like}'"
                );
                match client.post(url).body(sql).send().await {
                    Ok(r) if r.status().is_success() => r
                        .text()
                        .await
                        .ok()
                        .and_then(|t| t.trim().parse().ok())
                        .unwrap_or(0),
                    _ => 0,
                }
            }
            Store::Embedded { sql } => {
                // The processor stores each id once (copies within the event id window are
                // dropped), so a count of rows is the count of ids; a distinct count of millions
                // of ids would exceed the query service's memory limit.
                let query = format!("SELECT count(*) AS n FROM {table} WHERE {id} LIKE '{like}'");
                match client
                    .post(sql)
                    .bearer_auth(ADMIN)
                    .json(&json!({ "query": query }))
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => r
                        .json::<Value>()
                        .await
                        .ok()
                        .and_then(|v| v["rows"][0]["n"].as_u64())
                        .unwrap_or(0),
                    Ok(r) => {
                        let status = r.status();
                        let text = r.text().await.unwrap_or_default();
                        eprintln!("store count refused ({status}): {text}");
                        0
                    }
                    Err(_) => 0,
                }
            }
        }
    }
}
