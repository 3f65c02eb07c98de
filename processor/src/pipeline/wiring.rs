//! What a pipeline is wired to, its batching limits, and why it stops.

use clicktrail_bus::{BusError, Consumer, Producer};
use clicktrail_store::Store;
use std::sync::Arc;
use std::time::Duration;

/// Where a pipeline reads from and writes to.
pub struct Wiring {
    /// The consumer of the topic.
    pub consumer: Box<dyn Consumer>,
    /// For dead letters.
    pub producer: Arc<dyn Producer>,
    /// Where rows go.
    pub store: Arc<dyn Store>,
    /// Current catalog.
    pub catalog: Arc<clicktrail_bus::CatalogView>,
}

/// Batching limits.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// Records per batch at most.
    pub max_records: usize,
    /// Longest a record waits in an open batch.
    pub max_wait: Duration,
}

/// Why a pipeline stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The bus failed permanently.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The settings are invalid.
    #[error("invalid processor settings: {0}")]
    Config(String),
    /// A checkpoint could not be read.
    #[error("cannot restore {stream}: {reason}")]
    Restore {
        /// Which stream.
        stream: String,
        /// Why.
        reason: String,
    },
}
