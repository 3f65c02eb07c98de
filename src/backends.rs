//! The two backend sets a process can run on, built in one place: the embedded default (one
//! durable log and the Parquet store in the data directory) and production (Kafka, with a local
//! spool in front of it for the front ends, and ClickHouse). Each role asks for what it uses;
//! what no chosen role asks for is never opened.

use crate::config::{ClickHouseArgs, EmbeddedArgs, KafkaArgs};
use anyhow::{Context, anyhow};
use clicktrail_bus::embedded::{EmbeddedLog, LogOptions};
use clicktrail_bus::kafka::spool::{self, Spool};
use clicktrail_bus::kafka::{KafkaBus, KafkaOptions, KafkaProducer};
use clicktrail_bus::{ConsumerFactory, Producer, TailReader};
use clicktrail_schemas::Topic;
use clicktrail_store::Store;
use clicktrail_store::clickhouse::read::ClickHouseSource;
use clicktrail_store::clickhouse::{ClickHouseOptions, ClickHouseStore};
use clicktrail_store::parquet::read::ParquetSource;
use clicktrail_store::parquet::{CompactionPolicy, ParquetStore};
use clicktrail_store::source::TableSource;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a role waits for Kafka or ClickHouse at start before giving up.
const CONNECT_WAIT: Duration = Duration::from_secs(120);

/// The bus and store of one process.
pub struct Backends {
    /// Group consumers and readers of every topic.
    pub consumers: Arc<dyn ConsumerFactory>,
    /// The last records of a topic (the dead-letter view).
    pub tail: Arc<dyn TailReader>,
    set: Set,
}

// One value per process: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
enum Set {
    Embedded {
        log: EmbeddedLog,
        store: ParquetStore,
        compaction: JoinHandle<()>,
        stop: CancellationToken,
    },
    Production {
        bus: KafkaBus,
        data_dir: PathBuf,
        spool_max_records: u64,
        spooled: Option<Spooled>,
        clickhouse: ClickHouseArgs,
        store: Option<ClickHouseStore>,
    },
}

impl Backends {
    /// Opens the embedded log and the Parquet store in `dir` and starts compaction.
    /// Errors: another process holds the files, or they cannot be read.
    pub fn embedded(dir: &Path, args: &EmbeddedArgs) -> anyhow::Result<Backends> {
        let log = EmbeddedLog::open(
            &dir.join("log.redb"),
            LogOptions {
                linger: Duration::from_millis(args.click_flush_ms),
                retention_age: (args.log_retention_hours > 0)
                    .then(|| Duration::from_secs(args.log_retention_hours * 3600)),
                retention_bytes: (args.log_retention_mb > 0)
                    .then(|| args.log_retention_mb * 1024 * 1024),
                retention_interval: Duration::from_secs(args.log_retention_interval_secs),
                ..LogOptions::default()
            },
        )
        .context(
            "cannot open the embedded log (is another clicktrail using this data directory?)",
        )?;
        let store =
            ParquetStore::open(&dir.join("store")).context("cannot open the Parquet store")?;
        let stop = CancellationToken::new();
        let compaction = tokio::spawn(store.clone().run_compaction(
            Duration::from_secs(args.compact_every_secs.max(1)),
            CompactionPolicy::default(),
            stop.clone().cancelled_owned(),
        ));
        Ok(Backends {
            consumers: Arc::new(log.clone()),
            tail: Arc::new(log.clone()),
            set: Set::Embedded {
                log,
                store,
                compaction,
                stop,
            },
        })
    }

    /// Connects to Kafka (creating missing topics), waiting while it is unreachable.
    /// ClickHouse is opened when a role asks for the store.
    pub async fn production(
        kafka: &KafkaArgs,
        clickhouse: &ClickHouseArgs,
        data_dir: &Path,
    ) -> anyhow::Result<Backends> {
        let bus = KafkaBus::connect(kafka_options(kafka), CONNECT_WAIT)
            .await
            .with_context(|| format!("cannot reach Kafka at {}", kafka.brokers))?;
        Ok(Backends {
            consumers: Arc::new(bus.clone()),
            tail: Arc::new(bus.clone()),
            set: Set::Production {
                bus,
                data_dir: data_dir.to_path_buf(),
                spool_max_records: kafka.spool_max_records,
                spooled: None,
                clickhouse: clickhouse.clone(),
                store: None,
            },
        })
    }

    /// The producer of the front ends (redirects, events, catalog changes): the embedded log,
    /// or Kafka with the local spool that takes records while the broker is unreachable.
    pub async fn front_producer(&mut self) -> anyhow::Result<Arc<dyn Producer>> {
        match &mut self.set {
            Set::Embedded { log, .. } => Ok(Arc::new(log.clone())),
            Set::Production {
                bus,
                data_dir,
                spool_max_records,
                spooled,
                ..
            } => {
                if spooled.is_none() {
                    *spooled = Some(Spooled::open(bus, data_dir, *spool_max_records).await?);
                }
                let s = spooled.as_ref().expect("opened above");
                Ok(Arc::new(s.producer.clone()))
            }
        }
    }

    /// The processor's producer, for dead letters, and the query service's, for replays of
    /// webhook deliveries: the embedded log, or Kafka without a spool (the processor retries
    /// its batch instead; a replay is answered 503).
    pub fn processor_producer(&self) -> anyhow::Result<Arc<dyn Producer>> {
        match &self.set {
            Set::Embedded { log, .. } => Ok(Arc::new(log.clone())),
            Set::Production { bus, .. } => Ok(Arc::new(bus.producer(None)?)),
        }
    }

    /// The store the processor writes.
    pub async fn store(&mut self) -> anyhow::Result<Arc<dyn Store>> {
        match &mut self.set {
            Set::Embedded { store, .. } => Ok(Arc::new(store.clone())),
            Set::Production {
                clickhouse, store, ..
            } => Ok(Arc::new(open_clickhouse(clickhouse, store).await?)),
        }
    }

    /// The tables the query service reads.
    pub async fn tables(&mut self) -> anyhow::Result<Arc<dyn TableSource>> {
        match &mut self.set {
            Set::Embedded { store, .. } => Ok(Arc::new(ParquetSource::new(store.clone()))),
            Set::Production {
                clickhouse, store, ..
            } => {
                let s = open_clickhouse(clickhouse, store).await?;
                Ok(Arc::new(ClickHouseSource::new(s.client().clone())))
            }
        }
    }

    /// Makes everything the front ends queued durable: the log's pending clicks, or the Kafka
    /// producer's queue (to the broker or the spool) with a last replay pass. Called after HTTP
    /// drained and before the processor's last batch.
    pub async fn flush_front(&mut self) -> anyhow::Result<()> {
        match &mut self.set {
            Set::Embedded { log, .. } => log.flush().await.context("flushing queued clicks"),
            Set::Production { spooled, .. } => match spooled.take() {
                Some(s) => s.close().await,
                None => Ok(()),
            },
        }
    }

    /// Stops background work and closes the log. Called last.
    pub async fn close(self) -> anyhow::Result<()> {
        if let Set::Embedded {
            log,
            compaction,
            stop,
            ..
        } = self.set
        {
            stop.cancel();
            let _ = compaction.await;
            log.close().await.context("closing the log")?;
        }
        Ok(())
    }
}

fn kafka_options(args: &KafkaArgs) -> KafkaOptions {
    let mut o = KafkaOptions::new(&args.brokers);
    for t in Topic::ALL.into_iter().filter(|t| t.is_partitioned()) {
        o.partitions.insert(t, args.partitions);
    }
    o.replication = args.replication;
    o.topic_prefix = args.topic_prefix.clone();
    o.linger = Duration::from_millis(args.kafka_linger_ms);
    o.batch_records = args.kafka_batch_records;
    o.delivery_timeout = Duration::from_millis(args.kafka_delivery_timeout_ms);
    o.session_timeout = Duration::from_millis(args.kafka_session_timeout_ms);
    o.instance_id = args.kafka_instance_id.clone();
    o.settings = args
        .kafka_settings
        .iter()
        .filter_map(|s| s.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    o
}

/// The ClickHouse store, opened (with its migrations) once and shared; waits while it is
/// unreachable.
async fn open_clickhouse(
    args: &ClickHouseArgs,
    opened: &mut Option<ClickHouseStore>,
) -> anyhow::Result<ClickHouseStore> {
    if let Some(s) = opened {
        return Ok(s.clone());
    }
    let options = ClickHouseOptions {
        url: args.clickhouse_url.clone(),
        database: args.clickhouse_database.clone(),
        user: args.clickhouse_user.clone(),
        password: args.clickhouse_password.clone(),
    };
    let deadline = tokio::time::Instant::now() + CONNECT_WAIT;
    let store = loop {
        match ClickHouseStore::open(&options).await {
            Ok(store) => break store,
            Err(e @ clicktrail_store::StoreError::Unavailable(_))
                if tokio::time::Instant::now() < deadline =>
            {
                tracing::warn!(error = %e, "ClickHouse not reachable yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(anyhow!("ClickHouse at {}: {e}", options.url)),
        }
    };
    *opened = Some(store.clone());
    Ok(store)
}

/// A Kafka producer with its spool and the task replaying it.
struct Spooled {
    producer: KafkaProducer,
    spool: Arc<Spool>,
    replay: JoinHandle<()>,
    stop: CancellationToken,
}

impl Spooled {
    async fn open(bus: &KafkaBus, data_dir: &Path, max_records: u64) -> anyhow::Result<Spooled> {
        let dir = data_dir.join("spool");
        let spool = Spool::open(&dir, &bus.partition_counts(), max_records)
            .await
            .with_context(|| format!("cannot open the spool in {}", dir.display()))?;
        let producer = bus.producer(Some(spool.clone()))?;
        let stop = CancellationToken::new();
        let replay = tokio::spawn(spool::replay(spool.clone(), producer.clone(), stop.clone()));
        Ok(Spooled {
            producer,
            spool,
            replay,
            stop,
        })
    }

    /// Everything queued reaches the broker or the spool; a last replay pass runs.
    async fn close(self) -> anyhow::Result<()> {
        self.producer
            .flush()
            .await
            .context("flushing the producer")?;
        self.stop.cancel();
        let _ = self.replay.await;
        let waiting = self.spool.waiting();
        if waiting > 0 {
            tracing::warn!(
                waiting,
                "records stay on the spool; they are replayed at next start"
            );
        }
        self.spool.close().await.context("closing the spool")?;
        Ok(())
    }
}
