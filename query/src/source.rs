//! Where the query service's tables come from: a [`TableSource`] gives a DataFusion table
//! provider for each store table, fresh per request.

use crate::rollups;
use async_trait::async_trait;
use clicktrail_schemas::arrow::{CLICKS_TABLE, EVENTS_TABLE};
use clicktrail_schemas::tables::{CLICKS, EVENTS};
use clicktrail_store::parquet::ParquetStore;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::{DataFusionError, Result};
use std::sync::Arc;

/// Gives table providers for the store's tables.
#[async_trait]
pub trait TableSource: Send + Sync + 'static {
    /// The provider for `table` (`clicks`, `events` or a rollup), as of now.
    async fn table(&self, table: &str) -> Result<Arc<dyn TableProvider>>;
}

/// Schema of a store table.
pub fn schema_of(table: &str) -> Result<SchemaRef> {
    match table {
        CLICKS_TABLE => Ok(CLICKS.arrow_schema()),
        EVENTS_TABLE => Ok(EVENTS.arrow_schema()),
        other => rollups::schema(other)
            .ok_or_else(|| DataFusionError::Plan(format!("no table `{other}`"))),
    }
}

/// Tables over the Parquet store's listed files.
pub struct ParquetSource {
    store: ParquetStore,
}

impl ParquetSource {
    /// A source over `store`.
    pub fn new(store: ParquetStore) -> Self {
        ParquetSource { store }
    }
}

#[async_trait]
impl TableSource for ParquetSource {
    async fn table(&self, table: &str) -> Result<Arc<dyn TableProvider>> {
        match table {
            rollups::CLICKS_HOURLY => rollups::aggregate(table, self.raw(CLICKS_TABLE)?),
            rollups::EVENTS_HOURLY => rollups::aggregate(table, self.raw(EVENTS_TABLE)?),
            raw => self.raw(raw),
        }
    }
}

impl ParquetSource {
    fn raw(&self, table: &str) -> Result<Arc<dyn TableProvider>> {
        let schema = schema_of(table)?;
        let files = self
            .store
            .files(table)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        if files.is_empty() {
            return Ok(Arc::new(MemTable::try_new(schema, vec![vec![]])?));
        }
        let urls = files
            .iter()
            .map(|p| ListingTableUrl::parse(p.to_string_lossy()))
            .collect::<Result<Vec<_>>>()?;
        let options =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(schema);
        Ok(Arc::new(ListingTable::try_new(config)?))
    }
}
