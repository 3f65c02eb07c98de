//! The read side of the store for the query service: a [`TableSource`] gives a DataFusion
//! table provider for each store table and rollup, fresh per request. Implemented by the
//! Parquet store ([`crate::parquet::read::ParquetSource`]) and by ClickHouse
//! ([`crate::clickhouse::read::ClickHouseSource`]).

use crate::rollups;
use async_trait::async_trait;
use clicktrail_schemas::tables;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::error::{DataFusionError, Result};
use std::sync::Arc;

/// Gives table providers for the store's tables.
#[async_trait]
pub trait TableSource: Send + Sync + 'static {
    /// The provider for `table` (`clicks`, `events` or a rollup), as of now.
    ///
    /// Errors: a plan error for an unknown table; an external error when the store cannot
    /// list what it holds.
    async fn table(&self, table: &str) -> Result<Arc<dyn TableProvider>>;

    /// Whether the rollups are kept as tables of their own (ClickHouse's materialized views),
    /// so that reading a rollup costs less than reading its raw table. `false` where a rollup
    /// is aggregated from the raw rows as it is read (the Parquet store): a dashboard then
    /// reads the raw rows directly, aggregating them once, to its own groups, instead of first
    /// to hours of every link (which holds as many groups as rows when the rows are spread
    /// over many hours and links) and then again.
    fn rollups_stored(&self) -> bool {
        true
    }

    /// The provider for a rollup (`clicks_hourly`, `events_hourly`) for a caller that only
    /// sums its measures, grouped by columns it projects: a scan may merge the rollup's rows
    /// across every column it does not read (ClickHouse then sends one row per hour, say,
    /// instead of one per hour and link). `sum()` of a measure grouped by any of the projected
    /// columns is the same as over [`TableSource::table`]; row counts, `max()` and the like are
    /// not. The default is [`TableSource::table`] itself.
    ///
    /// Errors: as [`TableSource::table`].
    async fn summed(&self, table: &str) -> Result<Arc<dyn TableProvider>> {
        self.table(table).await
    }
}

/// Arrow schema of a store table or rollup; a plan error for any other name.
pub fn schema_of(table: &str) -> Result<SchemaRef> {
    match tables::by_name(table) {
        Some(t) => Ok(t.arrow_schema()),
        None => rollups::schema(table)
            .ok_or_else(|| DataFusionError::Plan(format!("no table `{table}`"))),
    }
}
