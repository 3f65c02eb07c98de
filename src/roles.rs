//! `clicktrail redirector|ingest|processor|query`: one role per process, on Kafka and
//! ClickHouse, each with its own port, `/metrics`, `/health/live` and `/health/ready`.
//!
//! Start: connect to Kafka (creating missing topics), open the spool (redirector, ingest) or
//! ClickHouse with its migrations (processor, query), read the catalog to its end, then report
//! ready. Stop (Ctrl-C or SIGTERM): readiness turns 503, HTTP drains, the producer flushes
//! (to the broker, or to the spool), the processor writes and commits its last batch.

use crate::config::{Role, RoleArgs};
use crate::process::{self, ProcessorTask};
use crate::routes;
use crate::telemetry;
use anyhow::{Context, anyhow};
use clicktrail_bus::kafka::spool::{self, Spool};
use clicktrail_bus::kafka::{KafkaBus, KafkaOptions, KafkaProducer};
use clicktrail_bus::{CatalogView, ConsumerFactory, Lifecycle, Producer, TailReader, follower};
use clicktrail_ingest::{IngestConfig, IngestState};
use clicktrail_processor::dedup::DedupOptions;
use clicktrail_processor::{ProcessorConfig, ProcessorDeps};
use clicktrail_query::QueryState;
use clicktrail_query::clickhouse::ClickHouseSource;
use clicktrail_redirector::{Redirector, RedirectorConfig};
use clicktrail_schemas::Topic;
use clicktrail_schemas::token::ClickKeys;
use clicktrail_store::Store;
use clicktrail_store::clickhouse::{ClickHouseOptions, ClickHouseStore};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a role waits for Kafka or ClickHouse at start before giving up.
const CONNECT_WAIT: Duration = Duration::from_secs(120);

fn kafka_options(args: &RoleArgs) -> KafkaOptions {
    let mut o = KafkaOptions::new(&args.brokers);
    for t in [Topic::Clicks, Topic::Events, Topic::Impressions] {
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

/// Opens the ClickHouse store, waiting while it is unreachable.
async fn clickhouse(args: &RoleArgs) -> anyhow::Result<ClickHouseStore> {
    let options = ClickHouseOptions {
        url: args.clickhouse_url.clone(),
        database: args.clickhouse_database.clone(),
        user: args.clickhouse_user.clone(),
        password: args.clickhouse_password.clone(),
    };
    let deadline = tokio::time::Instant::now() + CONNECT_WAIT;
    loop {
        match ClickHouseStore::open(&options).await {
            Ok(store) => return Ok(store),
            Err(e @ clicktrail_store::StoreError::Unavailable(_))
                if tokio::time::Instant::now() < deadline =>
            {
                tracing::warn!(error = %e, "ClickHouse not reachable yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(anyhow!("ClickHouse at {}: {e}", options.url)),
        }
    }
}

/// Follows the catalog; resolves once it is read to its end.
async fn follow_catalog(
    bus: &KafkaBus,
    stop: CancellationToken,
) -> anyhow::Result<(Arc<CatalogView>, JoinHandle<()>)> {
    let catalog = CatalogView::new();
    let (caught_up, caught_up_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn({
        let (factory, catalog) = (
            Arc::new(bus.clone()) as Arc<dyn ConsumerFactory>,
            catalog.clone(),
        );
        async move {
            let ready = move || {
                let _ = caught_up.send(());
            };
            if let Err(e) = follower::follow(factory, catalog, ready, stop.cancelled_owned()).await
            {
                tracing::error!(error = %e, "the catalog follower stopped");
            }
        }
    });
    caught_up_rx
        .await
        .map_err(|_| anyhow!("the catalog follower stopped before catching up"))?;
    Ok((catalog, task))
}

/// A producer with its spool and the task replaying it.
struct Spooled {
    producer: KafkaProducer,
    spool: Arc<Spool>,
    replay: JoinHandle<()>,
    stop: CancellationToken,
}

impl Spooled {
    async fn open(bus: &KafkaBus, args: &RoleArgs) -> anyhow::Result<Spooled> {
        let dir = args.data_dir.join("spool");
        let spool = Spool::open(&dir, &bus.partition_counts(), args.spool_max_records)
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

/// Runs `role` until Ctrl-C or SIGTERM.
pub async fn run(role: Role, args: RoleArgs) -> anyhow::Result<()> {
    args.validate(role)
        .map_err(|e| anyhow!("invalid configuration:\n{e}"))?;
    let metrics = telemetry::metrics();
    let lifecycle = Lifecycle::new();
    let starting = lifecycle.not_ready();
    let listen = args
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], role.default_port())));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let background = CancellationToken::new();

    let bus = KafkaBus::connect(kafka_options(&args), CONNECT_WAIT)
        .await
        .with_context(|| format!("cannot reach Kafka at {}", args.brokers))?;
    let (catalog, follower) = follow_catalog(&bus, background.clone()).await?;
    let consumers: Arc<dyn ConsumerFactory> = Arc::new(bus.clone());
    let admin_token = args.admin_token.clone().unwrap_or_default();
    let ops = routes::operations(routes::Ops {
        lifecycle: lifecycle.clone(),
        metrics,
        catalog: Some(catalog.clone()),
    });
    let pipeline_view = || {
        routes::pipeline_view(routes::PipelineView {
            consumers: consumers.clone(),
            processor_group: args.group.clone(),
            admin_token: admin_token.clone(),
        })
    };

    let mut spooled = None;
    let mut processor = None;
    let pieces = match role {
        Role::Redirector => {
            let s = Spooled::open(&bus, &args).await?;
            let producer: Arc<dyn Producer> = Arc::new(s.producer.clone());
            spooled = Some(s);
            let redirector = Redirector::new(
                RedirectorConfig {
                    click_keys: ClickKeys::parse(args.click_keys.as_deref().unwrap_or_default())
                        .map_err(|e| anyhow!("--click-keys: {e}"))?,
                    visitor_salt: args.visitor_salt.clone().unwrap_or_default(),
                    trust_forwarded_for: args.trust_forwarded_for,
                    geo_db: args.geo_db.clone(),
                },
                catalog.clone(),
                producer,
            )
            .map_err(|e| anyhow!(e))?;
            vec![routes::redirects(redirector), ops]
        }
        Role::Ingest => {
            let s = Spooled::open(&bus, &args).await?;
            let producer: Arc<dyn Producer> = Arc::new(s.producer.clone());
            spooled = Some(s);
            let ingest = clicktrail_ingest::router(IngestState {
                config: Arc::new(IngestConfig {
                    admin_token: admin_token.clone(),
                    public_url: args.public_url.clone().unwrap_or_else(|| {
                        format!("http://127.0.0.1:{}", Role::Redirector.default_port())
                    }),
                    max_body_bytes: args.max_body_bytes,
                }),
                catalog: catalog.clone(),
                producer,
                tail: Arc::new(bus.clone()) as Arc<dyn TailReader>,
            });
            vec![ingest, pipeline_view(), ops]
        }
        Role::Processor => {
            let store = clickhouse(&args).await?;
            let producer: Arc<dyn Producer> = Arc::new(bus.producer(None)?);
            let keys = ClickKeys::parse(args.click_keys.as_deref().unwrap_or_default())
                .map_err(|e| anyhow!("--click-keys: {e}"))?;
            let store: Arc<dyn Store> = Arc::new(store);
            processor = Some(ProcessorTask::spawn(
                |stop| {
                    clicktrail_processor::run(
                        ProcessorConfig {
                            group: args.group.clone(),
                            batch_max_records: args.batch_max_records,
                            batch_max_wait: Duration::from_millis(args.batch_max_wait_ms),
                            click_keys: keys,
                            dedup: DedupOptions {
                                hourly_capacity: args.dedup_hourly_capacity,
                                fp_rate: args.dedup_fp_rate,
                            },
                            event_id_window: clicktrail_processor::events::DEFAULT_EVENT_ID_WINDOW,
                            order_window: clicktrail_processor::events::DEFAULT_ORDER_WINDOW,
                        },
                        ProcessorDeps {
                            consumers: consumers.clone(),
                            producer,
                            store,
                            catalog: catalog.clone(),
                        },
                        stop,
                    )
                },
                &lifecycle,
            ));
            vec![pipeline_view(), ops]
        }
        Role::Query => {
            let store = clickhouse(&args).await?;
            let query = clicktrail_query::router(QueryState {
                source: Arc::new(ClickHouseSource::new(store.client().clone())),
                catalog: catalog.clone(),
                admin_token: admin_token.clone(),
            });
            vec![query, ops]
        }
    };
    starting.ready();
    println!("clicktrail is listening on {addr}");
    println!("  role        {}", role.name());
    println!("  kafka       {}", args.brokers);
    if matches!(role, Role::Processor | Role::Query) {
        println!(
            "  clickhouse  {}/{}",
            args.clickhouse_url, args.clickhouse_database
        );
    }

    process::serve_http(
        listener,
        routes::app(pieces),
        lifecycle.clone(),
        Duration::from_secs(args.shutdown_timeout_secs),
    )
    .await?;

    if let Some(s) = spooled {
        s.close().await?;
    }
    let processor_outcome = match processor {
        Some(p) => p.finish().await,
        None => Ok(()),
    };
    background.cancel();
    let _ = follower.await;
    processor_outcome?;
    tracing::info!(role = role.name(), "stopped cleanly");
    Ok(())
}
