//! The Parquet store's read side: DataFusion listing tables over the files the manifest lists
//! at the moment a table is asked for, and the rollups aggregated from them.

use super::ParquetStore;
use crate::rollups;
use crate::source::{TableSource, schema_of};
use async_trait::async_trait;
use clicktrail_schemas::tables::{CLICKS, EVENTS};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::{DataFusionError, Result};
use std::sync::Arc;

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
            rollups::CLICKS_HOURLY => rollups::aggregate(table, self.raw(CLICKS.name)?),
            rollups::EVENTS_HOURLY => rollups::aggregate(table, self.raw(EVENTS.name)?),
            raw => self.raw(raw),
        }
    }

    fn rollups_stored(&self) -> bool {
        false
    }
}

impl ParquetSource {
    /// A raw table over the files listed now; an empty table when there are none.
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
