//! `clicktrail serve`: every role in one process on the embedded log and the Parquet store.
//!
//! Start order: log and store, catalog follower (read to the end), processor, HTTP. Shutdown
//! order: readiness turns 503, HTTP stops accepting and drains, the log makes every queued
//! click durable, the processor writes and commits its last batch, the log closes. A deadline
//! ends a shutdown that hangs.

use crate::config::ServeArgs;
use crate::process::{self, ProcessorTask};
use crate::routes;
use crate::{demo, secrets, telemetry};
use anyhow::{Context, anyhow};
use clicktrail_bus::embedded::{EmbeddedLog, LogOptions};
use clicktrail_bus::{CatalogView, ConsumerFactory, Lifecycle, Producer, TailReader, follower};
use clicktrail_ingest::{IngestConfig, IngestState};
use clicktrail_processor::dedup::DedupOptions;
use clicktrail_processor::{ProcessorConfig, ProcessorDeps};
use clicktrail_query::QueryState;
use clicktrail_query::source::ParquetSource;
use clicktrail_redirector::{Redirector, RedirectorConfig};
use clicktrail_schemas::token::ClickKeys;
use clicktrail_store::Store;
use clicktrail_store::parquet::{CompactionPolicy, ParquetStore};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const PROCESSOR_GROUP: &str = "processor";

/// Runs until Ctrl-C or SIGTERM, then shuts down in order.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    args.validate()
        .map_err(|e| anyhow!("invalid configuration:\n{e}"))?;
    let dir = &args.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let admin_token = secrets::admin_token(dir, args.admin_token.as_deref())?;
    let click_keys = ClickKeys::parse(&secrets::click_keys(dir, args.click_keys.as_deref())?)
        .map_err(|e| anyhow!("click keys in {}: {e}", dir.display()))?;
    let visitor_salt = secrets::visitor_salt(dir)?;
    let metrics = telemetry::metrics();

    let log = EmbeddedLog::open(
        &dir.join("log.redb"),
        LogOptions {
            linger: Duration::from_millis(args.click_flush_ms),
            ..LogOptions::default()
        },
    )
    .context("cannot open the embedded log (is another clicktrail using this data directory?)")?;
    let store = ParquetStore::open(&dir.join("store")).context("cannot open the Parquet store")?;
    let producer: Arc<dyn Producer> = Arc::new(log.clone());
    let consumers: Arc<dyn ConsumerFactory> = Arc::new(log.clone());
    let tail: Arc<dyn TailReader> = Arc::new(log.clone());

    let lifecycle = Lifecycle::new();
    let background = CancellationToken::new();
    let catalog = CatalogView::new();
    let catalog_pending = lifecycle.not_ready();
    let (caught_up, caught_up_rx) = tokio::sync::oneshot::channel();
    let follower = tokio::spawn({
        let (consumers, catalog, stop) = (consumers.clone(), catalog.clone(), background.clone());
        async move {
            follower::follow(
                consumers,
                catalog,
                move || {
                    let _ = caught_up.send(());
                },
                stop.cancelled_owned(),
            )
            .await
        }
    });
    caught_up_rx
        .await
        .map_err(|_| anyhow!("the catalog follower stopped before catching up"))?;
    catalog_pending.ready();

    let processor = ProcessorTask::spawn(
        |stop| {
            clicktrail_processor::run(
                ProcessorConfig {
                    group: PROCESSOR_GROUP.into(),
                    batch_max_records: args.batch_max_records,
                    batch_max_wait: Duration::from_millis(args.batch_max_wait_ms),
                    click_keys: click_keys.clone(),
                    dedup: DedupOptions {
                        hourly_capacity: args.dedup_hourly_capacity,
                        fp_rate: args.dedup_fp_rate,
                    },
                    event_id_window: clicktrail_processor::events::DEFAULT_EVENT_ID_WINDOW,
                    order_window: clicktrail_processor::events::DEFAULT_ORDER_WINDOW,
                },
                ProcessorDeps {
                    consumers: consumers.clone(),
                    producer: producer.clone(),
                    store: Arc::new(store.clone()) as Arc<dyn Store>,
                    catalog: catalog.clone(),
                },
                stop,
            )
        },
        &lifecycle,
    );
    let compaction = tokio::spawn(store.clone().run_compaction(
        Duration::from_secs(args.compact_every_secs.max(1)),
        CompactionPolicy::default(),
        background.clone().cancelled_owned(),
    ));

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let redirector = Redirector::new(
        RedirectorConfig {
            click_keys,
            visitor_salt,
            trust_forwarded_for: args.trust_forwarded_for || args.demo,
            geo_db: args.geo_db.clone(),
        },
        catalog.clone(),
        producer.clone(),
    )
    .map_err(|e| anyhow!(e))?;
    let ingest = clicktrail_ingest::router(IngestState {
        config: Arc::new(IngestConfig {
            admin_token: admin_token.clone(),
            public_url: public_url.clone(),
            max_body_bytes: args.max_body_bytes,
        }),
        catalog: catalog.clone(),
        producer: producer.clone(),
        tail,
    });
    let query = clicktrail_query::router(QueryState {
        source: Arc::new(ParquetSource::new(store.clone())),
        catalog: catalog.clone(),
        admin_token: admin_token.clone(),
    });
    let app = routes::app(vec![
        ingest,
        query,
        routes::redirects(redirector),
        routes::operations(routes::Ops {
            lifecycle: lifecycle.clone(),
            metrics,
            catalog: Some(catalog.clone()),
        }),
        routes::pipeline_view(routes::PipelineView {
            consumers: consumers.clone(),
            processor_group: PROCESSOR_GROUP.into(),
            admin_token: admin_token.clone(),
        }),
    ]);

    print_banner(addr, &public_url, &admin_token, &args);
    if args.demo {
        let (base, token, visitors) = (
            format!("http://{addr}"),
            admin_token.clone(),
            args.demo_visitors,
        );
        tokio::spawn(async move {
            if let Err(e) = demo::run(&base, &token, visitors).await {
                tracing::error!(error = %e, "demo traffic failed");
            }
        });
    }

    process::serve_http(
        listener,
        app,
        lifecycle.clone(),
        Duration::from_secs(args.shutdown_timeout_secs),
    )
    .await?;

    log.flush().await.context("flushing queued clicks")?;
    let processor_outcome = processor.finish().await;
    background.cancel();
    let _ = follower.await;
    let _ = compaction.await;
    log.close().await.context("closing the log")?;
    processor_outcome?;
    tracing::info!("stopped cleanly");
    Ok(())
}

fn print_banner(addr: SocketAddr, public_url: &str, admin_token: &str, args: &ServeArgs) {
    let base = format!("http://{addr}");
    println!("clicktrail is listening on {addr}");
    println!("  redirects   {public_url}/r/<code>");
    println!("  events API  {base}/api/v1/events");
    println!("  admin API   {base}/api/v1/admin/advertisers");
    println!("  stats       {base}/api/v1/stats/overview");
    println!("  OpenAPI     {base}/api/v1/openapi.json");
    println!("  metrics     {base}/metrics");
    println!("  admin token {admin_token}");
    println!("  data        {}", args.data_dir.display());
    if args.demo {
        println!("  demo        creating a demo advertiser and driving traffic…");
    }
    println!("Press Ctrl-C to stop.");
}
