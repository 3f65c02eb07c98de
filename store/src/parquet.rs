//! The Parquet store: files under `<dir>/<table>/`, listed in `<dir>/manifest.redb`.
//!
//! Write order: each table's rows go to a temporary file, which is fsynced and renamed into
//! place; then one manifest transaction lists the new files, records the checkpoint and the
//! state changes, and is fsynced. A crash before that transaction leaves only unlisted files,
//! which [`ParquetStore::open`] deletes. Compaction merges small files into one and swaps them
//! in the manifest in one transaction; replaced files are deleted after a grace period so that
//! queries already reading them finish.
//!
//! The read side, with the `query` feature, is [`read::ParquetSource`].

use crate::{Checkpoint, Restored, Rows, Store, StoreError};
use ::parquet::arrow::ArrowWriter;
use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use ::parquet::basic::Compression;
use ::parquet::file::properties::WriterProperties;
use arrow_array::RecordBatch;
use async_trait::async_trait;
use clicktrail_schemas::tables::ALL;
use parking_lot::Mutex;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Listed file (relative path) → row count.
const FILES: TableDefinition<&str, u64> = TableDefinition::new("files");
/// Replaced file (relative path) → ms since epoch when it was replaced.
const RETIRED: TableDefinition<&str, i64> = TableDefinition::new("retired");
/// Stream → next offset.
const CHECKPOINTS: TableDefinition<&str, u64> = TableDefinition::new("checkpoints");
/// `stream \0 key` → state value.
const STATE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state");

/// Names of the store's tables, one folder each.
fn table_names() -> impl Iterator<Item = &'static str> {
    ALL.iter().map(|t| t.name())
}

/// `batch` in the table's current `schema`: a nullable column added since the file was written
/// reads as nulls (a column is only ever added, never removed or retyped; see
/// `docs/ARCHITECTURE.md`, "Adding a table").
fn conform(
    batch: RecordBatch,
    schema: &arrow_schema::SchemaRef,
) -> Result<RecordBatch, StoreError> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let columns = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) => Ok(c.clone()),
            None if f.is_nullable() => {
                Ok(arrow_array::new_null_array(f.data_type(), batch.num_rows()))
            }
            None => Err(StoreError::Data(format!(
                "a stored file lacks the column `{}`, which is not nullable",
                f.name()
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| StoreError::Data(e.to_string()))
}

/// Bytes of the manifest's pages the process keeps in memory: 32 MiB (redb's default is
/// 1 GiB). The manifest is small (file names, checkpoints, the processor's state entries) and
/// its state is read whole only when a partition is restored.
pub const MANIFEST_CACHE_BYTES: usize = 32 << 20;

/// How long replaced files stay on disk for queries that already listed them.
const RETIRE_GRACE: Duration = Duration::from_secs(120);

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Compaction policy.
#[derive(Debug, Clone, Copy)]
pub struct CompactionPolicy {
    /// A file with fewer rows than this is small.
    pub small_file_rows: u64,
    /// Compact once a table has this many small files.
    pub min_files: usize,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        CompactionPolicy {
            small_file_rows: 200_000,
            min_files: 8,
        }
    }
}

/// The Parquet store.
#[derive(Clone)]
pub struct ParquetStore {
    root: PathBuf,
    db: Arc<Database>,
    /// Serializes compaction with itself (writes never touch the files it merges).
    compacting: Arc<Mutex<()>>,
}

impl ParquetStore {
    /// Opens or creates the store in `root`, deleting files no manifest entry lists.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(root).map_err(unavailable)?;
        let db = redb::Builder::new()
            .set_cache_size(MANIFEST_CACHE_BYTES)
            .create(root.join("manifest.redb"))
            .map_err(unavailable)?;
        let txn = db.begin_write().map_err(unavailable)?;
        {
            let def = FILES;
            txn.open_table(def).map_err(unavailable)?;
        }
        txn.open_table(RETIRED).map_err(unavailable)?;
        txn.open_table(CHECKPOINTS).map_err(unavailable)?;
        txn.open_table(STATE).map_err(unavailable)?;
        txn.commit().map_err(unavailable)?;
        let store = ParquetStore {
            root: root.to_path_buf(),
            db: Arc::new(db),
            compacting: Arc::new(Mutex::new(())),
        };
        store.remove_unlisted()?;
        Ok(store)
    }

    fn listed(&self) -> Result<std::collections::HashSet<String>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let table = txn.open_table(FILES).map_err(unavailable)?;
        let mut out = std::collections::HashSet::new();
        for item in table.iter().map_err(unavailable)? {
            out.insert(item.map_err(unavailable)?.0.value().to_string());
        }
        Ok(out)
    }

    fn remove_unlisted(&self) -> Result<(), StoreError> {
        let listed = self.listed()?;
        for table in table_names() {
            let dir = self.root.join(table);
            std::fs::create_dir_all(&dir).map_err(unavailable)?;
            for entry in std::fs::read_dir(&dir).map_err(unavailable)? {
                let entry = entry.map_err(unavailable)?;
                let rel = format!("{table}/{}", entry.file_name().to_string_lossy());
                if !listed.contains(&rel) {
                    tracing::info!(file = %rel, "removing file not listed in the manifest");
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        self.purge_retired(Duration::ZERO)
    }

    fn purge_retired(&self, grace: Duration) -> Result<(), StoreError> {
        let cutoff = chrono::Utc::now().timestamp_millis() - grace.as_millis() as i64;
        let txn = self.db.begin_write().map_err(unavailable)?;
        {
            let mut table = txn.open_table(RETIRED).map_err(unavailable)?;
            let mut gone = Vec::new();
            for item in table.iter().map_err(unavailable)? {
                let (k, v) = item.map_err(unavailable)?;
                if v.value() <= cutoff {
                    gone.push(k.value().to_string());
                }
            }
            for rel in gone {
                let _ = std::fs::remove_file(self.root.join(&rel));
                table.remove(rel.as_str()).map_err(unavailable)?;
            }
        }
        txn.commit().map_err(unavailable)
    }

    /// The files of a table, absolute paths, as of now.
    pub fn files(&self, table: &str) -> Result<Vec<PathBuf>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let files = txn.open_table(FILES).map_err(unavailable)?;
        let prefix = format!("{table}/");
        let mut out = Vec::new();
        for item in files.range(prefix.as_str()..).map_err(unavailable)? {
            let (k, _) = item.map_err(unavailable)?;
            let k = k.value();
            if !k.starts_with(&prefix) {
                break;
            }
            out.push(self.root.join(k));
        }
        Ok(out)
    }

    fn write_file(&self, table: &str, batch: &RecordBatch) -> Result<(String, u64), StoreError> {
        let name = format!(
            "{table}/{}-{}.parquet",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f"),
            clicktrail_schemas::ids::random_code(b"0123456789abcdef", 12)
        );
        let tmp = self.root.join(format!("{name}.tmp"));
        let path = self.root.join(&name);
        let file = File::create(&tmp).map_err(unavailable)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props))
            .map_err(|e| StoreError::Data(e.to_string()))?;
        writer
            .write(batch)
            .map_err(|e| StoreError::Data(e.to_string()))?;
        let file = writer.into_inner().map_err(unavailable)?;
        file.sync_all().map_err(unavailable)?;
        std::fs::rename(&tmp, &path).map_err(unavailable)?;
        File::open(self.root.join(table))
            .and_then(|d| d.sync_all())
            .map_err(unavailable)?;
        Ok((name, batch.num_rows() as u64))
    }

    fn write_blocking(&self, rows: &Rows, checkpoints: &[Checkpoint]) -> Result<(), StoreError> {
        let mut written = Vec::new();
        let (mut encode, mut files) = (Duration::ZERO, Duration::ZERO);
        for table in rows.tables().iter().filter(|t| !t.is_empty()) {
            let started = Instant::now();
            let batch = table
                .to_arrow()
                .map_err(|e| StoreError::Data(e.to_string()))?;
            let encoded = Instant::now();
            written.push(self.write_file(table.table().name(), &batch)?);
            encode += encoded - started;
            files += encoded.elapsed();
        }
        crate::stage("encode", encode);
        crate::stage("files", files);
        let started = Instant::now();
        let txn = self.db.begin_write().map_err(unavailable)?;
        {
            let mut files = txn.open_table(FILES).map_err(unavailable)?;
            for (name, n) in &written {
                files.insert(name.as_str(), *n).map_err(unavailable)?;
            }
            let mut cps = txn.open_table(CHECKPOINTS).map_err(unavailable)?;
            let mut state = txn.open_table(STATE).map_err(unavailable)?;
            for cp in checkpoints {
                cps.insert(cp.stream.as_str(), cp.next_offset)
                    .map_err(unavailable)?;
                for (k, v) in &cp.puts {
                    state
                        .insert(state_key(&cp.stream, k).as_slice(), v.as_slice())
                        .map_err(unavailable)?;
                }
                for k in &cp.deletes {
                    state
                        .remove(state_key(&cp.stream, k).as_slice())
                        .map_err(unavailable)?;
                }
            }
        }
        txn.commit().map_err(unavailable)?;
        crate::stage("manifest", started.elapsed());
        Ok(())
    }

    fn restore_blocking(&self, stream: &str) -> Result<Option<Restored>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let cps = txn.open_table(CHECKPOINTS).map_err(unavailable)?;
        let Some(next_offset) = cps.get(stream).map_err(unavailable)?.map(|v| v.value()) else {
            return Ok(None);
        };
        let state = txn.open_table(STATE).map_err(unavailable)?;
        let prefix = state_key(stream, b"");
        let mut entries = Vec::new();
        for item in state.range(prefix.as_slice()..).map_err(unavailable)? {
            let (k, v) = item.map_err(unavailable)?;
            let k = k.value();
            if !k.starts_with(&prefix) {
                break;
            }
            entries.push((k[prefix.len()..].to_vec(), v.value().to_vec()));
        }
        Ok(Some(Restored {
            next_offset,
            entries,
        }))
    }

    /// Merges the small files of every table per the policy. Returns how many files were
    /// replaced.
    pub fn compact(&self, policy: CompactionPolicy) -> Result<usize, StoreError> {
        let _guard = self.compacting.lock();
        self.purge_retired(RETIRE_GRACE)?;
        let mut replaced = 0;
        for described in ALL {
            let table = described.name();
            let small: Vec<(String, u64)> = {
                let txn = self.db.begin_read().map_err(unavailable)?;
                let files = txn.open_table(FILES).map_err(unavailable)?;
                let prefix = format!("{table}/");
                let mut out = Vec::new();
                for item in files.range(prefix.as_str()..).map_err(unavailable)? {
                    let (k, v) = item.map_err(unavailable)?;
                    if !k.value().starts_with(&prefix) {
                        break;
                    }
                    if v.value() < policy.small_file_rows {
                        out.push((k.value().to_string(), v.value()));
                    }
                }
                out
            };
            if small.len() < policy.min_files {
                continue;
            }
            let mut batches = Vec::new();
            for (rel, _) in &small {
                let file = File::open(self.root.join(rel)).map_err(unavailable)?;
                let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                    .and_then(|b| b.build())
                    .map_err(unavailable)?;
                for b in reader {
                    batches.push(conform(b.map_err(unavailable)?, &described.arrow_schema())?);
                }
            }
            let schema = described.arrow_schema();
            let merged =
                arrow_select::concat::concat_batches(&schema, &batches).map_err(unavailable)?;
            let (name, n) = self.write_file(table, &merged)?;
            let now = chrono::Utc::now().timestamp_millis();
            let txn = self.db.begin_write().map_err(unavailable)?;
            {
                let mut files = txn.open_table(FILES).map_err(unavailable)?;
                let mut retired = txn.open_table(RETIRED).map_err(unavailable)?;
                for (rel, _) in &small {
                    files.remove(rel.as_str()).map_err(unavailable)?;
                    retired.insert(rel.as_str(), now).map_err(unavailable)?;
                }
                files.insert(name.as_str(), n).map_err(unavailable)?;
            }
            txn.commit().map_err(unavailable)?;
            tracing::info!(table, files = small.len(), rows = n, "compacted");
            replaced += small.len();
        }
        Ok(replaced)
    }

    /// Compacts every `every` until `stop` resolves.
    pub async fn run_compaction(
        self,
        every: Duration,
        policy: CompactionPolicy,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(every) => {}
            }
            let me = self.clone();
            match tokio::task::spawn_blocking(move || me.compact(policy)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "compaction failed"),
                Err(e) => tracing::error!(error = %e, "compaction panicked"),
            }
        }
    }
}

fn state_key(stream: &str, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(stream.len() + 1 + key.len());
    k.extend_from_slice(stream.as_bytes());
    k.push(0);
    k.extend_from_slice(key);
    k
}

#[async_trait]
impl Store for ParquetStore {
    async fn write(&self, rows: &Rows, checkpoints: &[Checkpoint]) -> Result<(), StoreError> {
        // The file and manifest writes block: on a multi-threaded runtime this worker hands its
        // other tasks to the rest first, so the batch is read where it is instead of being
        // copied to a blocking thread; on a current-thread runtime (tests) it simply blocks.
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| self.write_blocking(rows, checkpoints))
            }
            _ => self.write_blocking(rows, checkpoints),
        }
    }

    async fn restore(&self, stream: &str) -> Result<Option<Restored>, StoreError> {
        let me = self.clone();
        let stream = stream.to_string();
        tokio::task::spawn_blocking(move || me.restore_blocking(&stream))
            .await
            .map_err(unavailable)?
    }
}

#[cfg(feature = "query")]
pub mod read;
#[cfg(test)]
mod tests;
