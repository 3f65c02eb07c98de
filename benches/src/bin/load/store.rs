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
    /// ClickHouse's URL and the deployment's database; `None` on the embedded store.
    pub fn clickhouse(&self) -> Option<(String, String)> {
        match &self.store {
            Store::ClickHouse { url, database } => Some((url.clone(), database.clone())),
            Store::Embedded { .. } => None,
        }
    }

    /// Waits (10 minutes at most) until `table` holds `total` distinct ids in its `id` column
    /// matching the `LIKE` pattern; `Err` with the count then held if it does not. Counts no
    /// more often than every 100 ms nor than twice the last count took, so that the harness's
    /// own reads take at most a third of the store's time.
    pub async fn wait_stored(
        &self,
        client: &Client,
        table: &str,
        id: &str,
        like: &str,
        total: u64,
    ) -> Result<(), u64> {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let asked = Instant::now();
            let n = self.distinct(client, table, id, like).await;
            if n >= total {
                return Ok(());
            }
            if Instant::now() >= deadline {
                println!("  only {n} of {total} {table} stored after 10 minutes");
                return Err(n);
            }
            tokio::time::sleep((asked.elapsed() * 2).max(Duration::from_millis(100))).await;
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
                clickhouse(client, url, sql)
                    .await
                    .map(|t| t.lines().map(str::to_string).collect())
                    .unwrap_or_default()
            }
            Store::Embedded { sql } => {
                let query = format!("SELECT {id} AS id FROM {table} WHERE {id} LIKE '{like}'");
                analyst_sql(client, sql, query)
                    .await
                    .and_then(|v| {
                        v["rows"].as_array().map(|rows| {
                            rows.iter()
                                .filter_map(|r| r["id"].as_str().map(str::to_string))
                                .collect()
                        })
                    })
                    .unwrap_or_default()
            }
        }
    }

    async fn distinct(&self, client: &Client, table: &str, id: &str, like: &str) -> u64 {
        match &self.store {
            Store::ClickHouse { url, database } => {
                let sql = format!(
                    "SELECT uniqExact({id}) FROM {database}.{table} WHERE {id} LIKE '{like}'"
                );
                clickhouse(client, url, sql)
                    .await
                    .and_then(|t| t.trim().parse().ok())
                    .unwrap_or(0)
            }
            Store::Embedded { sql } => {
                // The processor stores each id once (copies within the event id window are
                // dropped), so a count of rows is the count of ids; a distinct count of millions
                // of ids would exceed the query service's memory limit.
                let query = format!("SELECT count(*) AS n FROM {table} WHERE {id} LIKE '{like}'");
                analyst_sql(client, sql, query)
                    .await
                    .and_then(|v| v["rows"][0]["n"].as_u64())
                    .unwrap_or(0)
            }
        }
    }
}

/// Waits until every redirect's click is stored, and reports how long after the runs.
pub(crate) async fn clicks_stored(client: &Client, deployment: &Deployment, redirects: u64) {
    let ended = Instant::now();
    match deployment
        .wait_stored(client, "clicks", "click_id", "%", redirects)
        .await
    {
        Ok(()) => println!(
            "  all {redirects} clicks of the redirect runs stored {:.1} s after they ended",
            ended.elapsed().as_secs_f64()
        ),
        Err(n) => crate::summary::record(
            "clicks of the redirect runs stored within 10 minutes (the runs after go on beside the rest)",
            "",
            format!("only {n} of {redirects}"),
        ),
    }
}

/// ClickHouse's answer to `sql` as text; `None` when it does not answer 200.
async fn clickhouse(client: &Client, url: &str, sql: String) -> Option<String> {
    let r = client.post(url).body(sql).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.text().await.ok()
}

/// The answer of analyst SQL (`POST /api/v1/sql` with the admin token) to `query`; `None`, with
/// the refusal printed, when it does not answer 200.
async fn analyst_sql(client: &Client, url: &str, query: String) -> Option<Value> {
    let r = client
        .post(url)
        .bearer_auth(ADMIN)
        .json(&json!({ "query": query }))
        .send()
        .await
        .ok()?;
    let status = r.status();
    if !status.is_success() {
        let text = r.text().await.unwrap_or_default();
        eprintln!("analyst SQL refused ({status}): {text}");
        return None;
    }
    r.json().await.ok()
}
