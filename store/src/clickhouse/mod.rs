//! The ClickHouse store: the production backend of [`Store`].
//!
//! Writes go rows first (`clicks`, `events`), then the partition state, then the checkpoint.
//! ClickHouse has no transactions, so idempotency does the work: raw tables are
//! ReplacingMergeTree keyed by record id (a replayed batch replaces its own rows), and state
//! entries carry the checkpoint offset they belong to (`seq`), so a restore reads exactly the
//! state of the last checkpoint that was written, ignoring entries of a batch whose checkpoint
//! never landed. The processor replays from that checkpoint and, being deterministic, writes
//! the same rows again.
//!
//! The read side, with the `query` feature, is [`read::ClickHouseSource`]; the tables' DDL
//! and insert rows come from their definitions ([`table`]).
//!
//! Errors: network failures and timeouts are transient (retry the batch); a refusal to parse or
//! a type mismatch is a data error (dead-letter, no retry).

#[cfg(feature = "query")]
mod merge;
pub mod migrations;
#[cfg(feature = "query")]
pub mod read;
pub mod rows;
pub mod table;

use crate::{Checkpoint, Restored, Rows, Store, StoreError};
use async_trait::async_trait;
use bytes::Bytes;
use clickhouse::Client;
use clicktrail_schemas::tables::Batch;
use migrations::{MIGRATIONS, MIGRATIONS_TABLE};
use rows::{ChCheckpoint, ChState};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Bytes of RowBinary gathered before they are handed to the connection.
const INSERT_CHUNK: usize = 256 * 1024;

/// Where the store lives.
#[derive(Debug, Clone)]
pub struct ClickHouseOptions {
    /// HTTP endpoint, such as `http://127.0.0.1:8123`.
    pub url: String,
    /// Database, created if missing.
    pub database: String,
    /// User (default `default`).
    pub user: Option<String>,
    /// Password.
    pub password: Option<String>,
}

/// The ClickHouse store.
#[derive(Clone)]
pub struct ClickHouseStore {
    client: Client,
    database: String,
}

fn classify(e: clickhouse::error::Error) -> StoreError {
    use clickhouse::error::Error::*;
    match e {
        BadResponse(msg) if is_data_error(&msg) => StoreError::Data(msg),
        SchemaMismatch(msg) => StoreError::Data(msg),
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// ClickHouse error codes that mean the data itself was refused: parse errors (6, 26, 27, 38,
/// 41, 72), type mismatches (53, 70), too large (131).
fn is_data_error(msg: &str) -> bool {
    const CODES: [&str; 9] = [
        "Code: 6,",
        "Code: 26,",
        "Code: 27,",
        "Code: 38,",
        "Code: 41,",
        "Code: 53,",
        "Code: 70,",
        "Code: 72,",
        "Code: 131,",
    ];
    CODES.iter().any(|c| msg.contains(c))
}

fn valid_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
}

impl ClickHouseStore {
    /// Connects, creates the database if missing and applies pending migrations.
    pub async fn open(options: &ClickHouseOptions) -> Result<Self, StoreError> {
        if !valid_identifier(&options.database) {
            return Err(StoreError::Data(format!(
                "database name `{}` must be letters, digits and _",
                options.database
            )));
        }
        // ClickHouse 18.16 does not know the settings validation sends, nor
        // RowBinaryWithNamesAndTypes: rows go as positional RowBinary.
        let mut client = Client::default()
            .with_url(&options.url)
            .with_validation(false);
        if let Some(u) = &options.user {
            client = client.with_user(u);
        }
        if let Some(p) = &options.password {
            client = client.with_password(p);
        }
        client
            .query(&format!(
                "CREATE DATABASE IF NOT EXISTS {}",
                options.database
            ))
            .execute()
            .await
            .map_err(classify)?;
        let store = ClickHouseStore {
            client: client.with_database(&options.database),
            database: options.database.clone(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The client, bound to the store's database.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The database name.
    pub fn database(&self) -> &str {
        &self.database
    }

    fn sql(&self, statement: &str) -> String {
        statement.replace("{db}", &self.database)
    }

    /// Applies every migration not yet recorded, in order; safe to run concurrently.
    pub async fn migrate(&self) -> Result<Vec<u32>, StoreError> {
        self.client
            .query(&self.sql(MIGRATIONS_TABLE))
            .execute()
            .await
            .map_err(classify)?;
        let applied: Vec<u32> = self
            .client
            .query(&self.sql("SELECT DISTINCT version FROM {db}.schema_migrations"))
            .fetch_all()
            .await
            .map_err(classify)?;
        let mut done = Vec::new();
        for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
            for statement in m.statements {
                self.client
                    .query(&self.sql(statement))
                    .execute()
                    .await
                    .map_err(classify)?;
            }
            self.client
                .query(&self.sql("INSERT INTO {db}.schema_migrations (version, description, applied_at) VALUES (?, ?, now())"))
                .bind(m.version)
                .bind(m.description)
                .execute()
                .await
                .map_err(classify)?;
            tracing::info!(
                version = m.version,
                description = m.description,
                "migration applied"
            );
            done.push(m.version);
        }
        Ok(done)
    }

    async fn insert<T>(&self, table: &str, rows: Vec<T>) -> Result<(), StoreError>
    where
        T: clickhouse::Row + clickhouse::RowWrite + for<'a> clickhouse::Row<Value<'a> = T>,
    {
        if rows.is_empty() {
            return Ok(());
        }
        let mut insert = self.client.insert::<T>(table).await.map_err(classify)?;
        for row in &rows {
            insert.write(row).await.map_err(classify)?;
        }
        insert.end().await.map_err(classify)
    }

    /// Inserts one table's rows of a batch, encoding each row straight into RowBinary.
    async fn insert_rows(&self, batch: &dyn Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut insert = self
            .client
            .insert_formatted_with(table::insert_sql(batch.table()));
        for chunk in table::Chunks::new(batch, INSERT_CHUNK) {
            insert.send(Bytes::from(chunk)).await.map_err(classify)?;
        }
        insert.end().await.map_err(classify)
    }
}

#[derive(Deserialize, clickhouse::Row)]
struct StateEntry {
    #[serde(with = "serde_bytes")]
    key: Vec<u8>,
    #[serde(with = "serde_bytes")]
    value: Vec<u8>,
    deleted: u8,
}

#[async_trait]
impl Store for ClickHouseStore {
    async fn write(&self, rows: &Rows, checkpoints: &[Checkpoint]) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        for table in rows.tables() {
            self.insert_rows(table.as_ref()).await?;
        }
        crate::stage("insert", started.elapsed());
        let started = std::time::Instant::now();
        let mut state = Vec::new();
        for cp in checkpoints {
            // One entry per key per checkpoint, the last change winning.
            let mut latest: BTreeMap<&[u8], Option<&[u8]>> = BTreeMap::new();
            for (k, v) in &cp.puts {
                latest.insert(k, Some(v));
            }
            for k in &cp.deletes {
                latest.insert(k, None);
            }
            state.extend(latest.into_iter().map(|(k, v)| ChState {
                stream: cp.stream.clone(),
                key: k.to_vec(),
                value: v.map(<[u8]>::to_vec).unwrap_or_default(),
                seq: cp.next_offset,
                deleted: v.is_none().into(),
            }));
        }
        self.insert("processor_state", state).await?;
        let marks: Vec<ChCheckpoint> = checkpoints
            .iter()
            .map(|cp| ChCheckpoint {
                stream: cp.stream.clone(),
                next_offset: cp.next_offset,
            })
            .collect();
        self.insert("checkpoints", marks).await?;
        crate::stage("checkpoint", started.elapsed());
        Ok(())
    }

    async fn restore(&self, stream: &str) -> Result<Option<Restored>, StoreError> {
        let next: Option<u64> = self
            .client
            .query("SELECT max(next_offset) FROM checkpoints WHERE stream = ? HAVING count() > 0")
            .bind(stream)
            .fetch_optional()
            .await
            .map_err(classify)?;
        let Some(next_offset) = next else {
            return Ok(None);
        };
        let entries: Vec<StateEntry> = self
            .client
            .query(
                "SELECT key, argMax(value, seq) AS value, argMax(deleted, seq) AS deleted
                 FROM processor_state WHERE stream = ? AND seq <= ? GROUP BY key",
            )
            .bind(stream)
            .bind(next_offset)
            .fetch_all()
            .await
            .map_err(classify)?;
        Ok(Some(Restored {
            next_offset,
            entries: entries
                .into_iter()
                .filter(|e| e.deleted == 0)
                .map(|e| (e.key, e.value))
                .collect(),
        }))
    }
}
