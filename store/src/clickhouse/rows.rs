//! The bookkeeping tables' rows (checkpoints, processor state), column for column in the order
//! of the DDL (RowBinary is positional). Field names and meanings are those of the columns in
//! `migrations.rs`. The store tables' rows are written from their definitions (`table.rs`).
#![allow(missing_docs)]

use serde::{Deserialize, Serialize};

/// A `checkpoints` row.
#[derive(Debug, Clone, clickhouse::Row, Serialize, Deserialize)]
pub struct ChCheckpoint {
    pub stream: String,
    pub next_offset: u64,
}

/// A `processor_state` row.
#[derive(Debug, Clone, clickhouse::Row, Serialize, Deserialize)]
pub struct ChState {
    pub stream: String,
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    pub seq: u64,
    pub deleted: u8,
}
