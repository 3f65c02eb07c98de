//! How data is kept: the store the processor writes and the query service reads.
//!
//! - [`Store`]: the write side, one interface for every backend. A write carries the rows of a
//!   batch and the checkpoint of the partition that produced them (its next offset and its state
//!   changes); a backend makes the rows and the checkpoint durable together, so a replay after a
//!   crash resumes exactly where the stored rows end.
//! - [`parquet`]: the single-node backend: Parquet files in the data directory, listed in a
//!   manifest (`redb`) that also holds the checkpoints. A file is visible only once the manifest
//!   transaction that lists it, together with its checkpoint, has committed; files left over
//!   from a crash are deleted at open. Small files are compacted in the background.
//! - [`clickhouse`]: the production backend: versioned migrations, ReplacingMergeTree tables
//!   keyed by record id, checkpoints and state versioned by offset.
//!
//! Each backend's folder holds its write side and, with the `query` feature, its read side
//! (`parquet::read`, `clickhouse::read`): DataFusion table providers behind one
//! [`source::TableSource`] interface, plus the hourly [`rollups`]. Without the feature the
//! store compiles no query engine; the Parquet writer uses the `parquet` crate directly.
//! Tables' columns come from their definitions in `clicktrail_schemas::tables`.

pub mod clickhouse;
pub mod parquet;
#[cfg(feature = "query")]
pub mod rollups;
#[cfg(feature = "query")]
pub mod source;

use async_trait::async_trait;
use clicktrail_schemas::ledger::LedgerRow;
use clicktrail_schemas::metric_names::store::WRITE_STAGE_SECONDS;
use clicktrail_schemas::outbound::DeliveryRow;
use clicktrail_schemas::promo::{ImpressionRow, PromoClickRow};
use clicktrail_schemas::rows::{ClickRow, EventRow};
use clicktrail_schemas::tables::{
    Batch, CLICKS, DELIVERIES, EVENTS, IMPRESSIONS, LEDGER, Of, PROMO_CLICKS,
};

/// Rows produced by one processor batch.
#[derive(Debug, Default, Clone)]
pub struct Rows {
    /// Raw clicks with their dedup verdicts.
    pub clicks: Vec<ClickRow>,
    /// Events with their attribution.
    pub events: Vec<EventRow>,
    /// Commission ledger movements.
    pub ledger: Vec<LedgerRow>,
    /// Counted newsletter sends.
    pub impressions: Vec<ImpressionRow>,
    /// Clicks through promo variations.
    pub promo_clicks: Vec<PromoClickRow>,
    /// Webhook and postback delivery attempts.
    pub deliveries: Vec<DeliveryRow>,
}

impl Rows {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.tables().iter().all(|t| t.is_empty())
    }

    /// Each table's rows, in the order of `clicktrail_schemas::tables::ALL`: what a backend
    /// writes, without naming a table.
    pub fn tables(&self) -> [Box<dyn Batch + '_>; 6] {
        [
            Box::new(Of {
                table: &CLICKS,
                rows: &self.clicks,
            }),
            Box::new(Of {
                table: &EVENTS,
                rows: &self.events,
            }),
            Box::new(Of {
                table: &LEDGER,
                rows: &self.ledger,
            }),
            Box::new(Of {
                table: &IMPRESSIONS,
                rows: &self.impressions,
            }),
            Box::new(Of {
                table: &PROMO_CLICKS,
                rows: &self.promo_clicks,
            }),
            Box::new(Of {
                table: &DELIVERIES,
                rows: &self.deliveries,
            }),
        ]
    }
}

/// A partition's progress and state changes, stored atomically with the rows they produced.
#[derive(Debug, Default, Clone)]
pub struct Checkpoint {
    /// The stream, `topic/partition`.
    pub stream: String,
    /// Next offset to read from that partition.
    pub next_offset: u64,
    /// State entries to insert or overwrite.
    pub puts: Vec<(Vec<u8>, Vec<u8>)>,
    /// State entries to remove.
    pub deletes: Vec<Vec<u8>>,
}

/// A partition's stored checkpoint.
#[derive(Debug, Default, Clone)]
pub struct Restored {
    /// Next offset to read.
    pub next_offset: u64,
    /// Every state entry.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Store failures, with what the caller should do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store is unavailable or failed transiently: retry the same batch with backoff.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The data cannot be written as it is: do not retry; send it to dead-letter.
    #[error("store refused the data: {0}")]
    Data(String),
}

impl StoreError {
    /// Whether writing the same batch again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// The write side of a store.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Makes `rows` and the checkpoints of the partitions that produced them durable together.
    /// Returns only once all of it is. Borrows the batch, so that a caller retrying after a
    /// transient error writes the same batch again without copying it.
    async fn write(&self, rows: &Rows, checkpoints: &[Checkpoint]) -> Result<(), StoreError>;

    /// The stored checkpoint of a stream, if it has one.
    async fn restore(&self, stream: &str) -> Result<Option<Restored>, StoreError>;
}

/// Records the time one stage of a store write took (see [`WRITE_STAGE_SECONDS`]).
pub(crate) fn stage(stage: &'static str, took: std::time::Duration) {
    metrics::histogram!(WRITE_STAGE_SECONDS, "stage" => stage).record(took.as_secs_f64());
}
