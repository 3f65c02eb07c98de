//! The one assembly path of every process, `serve` or a single role: bind the port, open the
//! chosen backend set, read the catalog to its end, start the chosen roles (their routes on the
//! one port, the processor beside them), report ready; on Ctrl-C or SIGTERM shut down in order.
//!
//! Shutdown order: readiness turns 503, HTTP stops accepting and drains, the front ends'
//! producer makes every queued record durable, the processor writes and commits its last
//! batch, the catalog follower and background work stop, the log closes. A deadline ends a
//! drain that hangs.

use crate::config::{ClickHouseArgs, EmbeddedArgs, KafkaArgs, ProcessorArgs, Role, RoleSettings};
use crate::process::{self, ProcessorTask};
use crate::{backends::Backends, routes, telemetry};
use anyhow::{Context, anyhow};
use axum::Router;
use clicktrail_api::Lifecycle;
use clicktrail_api::conn::ConnLimits;
use clicktrail_api::http::{self, Ops};
use clicktrail_api::rate::RateLimiter;
use clicktrail_bus::{CatalogView, ConsumerFactory, follower};
use clicktrail_ingest::{IngestConfig, IngestState};
use clicktrail_processor::dedup::DedupOptions;
use clicktrail_processor::{ProcessorConfig, ProcessorDeps};
use clicktrail_query::QueryState;
use clicktrail_redirector::{Redirector, RedirectorConfig};
use clicktrail_schemas::token::ClickKeys;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Which backend set to open.
pub enum BackendChoice {
    /// The embedded log and the Parquet store in `dir`.
    Embedded {
        /// The data directory.
        dir: PathBuf,
        /// Log and store settings.
        args: EmbeddedArgs,
    },
    /// Kafka and ClickHouse; the spool in `data_dir`.
    Production {
        /// Kafka settings.
        kafka: KafkaArgs,
        /// ClickHouse settings.
        clickhouse: ClickHouseArgs,
        /// Where the spool lives.
        data_dir: PathBuf,
    },
}

/// The secrets of a deployment. Empty or absent where no chosen role needs them.
#[derive(Clone)]
pub struct Secrets {
    /// Admin bearer token.
    pub admin_token: String,
    /// Click token keys.
    pub click_keys: Option<ClickKeys>,
    /// Salt of visitor keys.
    pub visitor_salt: String,
    /// Key of the API keys' signing secrets (ingest).
    pub signing_key: String,
}

/// Everything a process is started from.
pub struct Spec {
    /// The roles to run.
    pub roles: Vec<Role>,
    /// Where to listen.
    pub listen: SocketAddr,
    /// Base URL shoppers reach the redirector at; `None`: derived from the port.
    pub public_url: Option<String>,
    /// The backends.
    pub backend: BackendChoice,
    /// Secrets.
    pub secrets: Secrets,
    /// The roles' settings (a role ignores those of the others) and the port's limits.
    pub settings: RoleSettings,
    /// Longest the drain at shutdown may take.
    pub drain: Duration,
}

/// A started process, serving once [`Running::wait`] is called.
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    /// The public base URL of redirects.
    pub public_url: String,
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    lifecycle: Lifecycle,
    drain: Duration,
    backends: Backends,
    processor: Option<ProcessorTask>,
    follower: JoinHandle<()>,
    background: CancellationToken,
}

/// Binds, opens the backends, reads the catalog and starts the roles of `spec`.
/// Errors: the port is taken, a backend cannot be opened or reached, a secret is invalid.
pub async fn start(spec: Spec) -> anyhow::Result<Running> {
    let metrics = telemetry::metrics();
    let lifecycle = Lifecycle::new();
    let starting = lifecycle.not_ready();
    let listener = TcpListener::bind(spec.listen)
        .await
        .with_context(|| format!("cannot listen on {}", spec.listen))?;
    let addr = listener.local_addr()?;
    let openapi = Arc::new(routes::openapi_document());
    let ops = Ops {
        lifecycle: lifecycle.clone(),
        metrics,
        catalog: None,
        openapi: openapi.clone(),
    };
    // While the backends are reached and the catalog is read, the port already answers
    // `/health/live`, `/metrics` and `/health/ready` (503, saying what it waits for).
    let (listener, early) = early_ops(listener, ops.clone(), spec.settings.http.conn_limits())?;
    println!(
        "clicktrail is starting on {addr} (/health/live answers now, /health/ready once ready)"
    );
    let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
    tokio::spawn({
        let (lifecycle, started) = (lifecycle.clone(), started.clone());
        async move {
            process::shutdown_signal().await;
            lifecycle.shutdown();
            // Still waiting for a backend (a broker that does not answer, say): nothing has
            // been accepted yet and nothing waits on this process, so it stops now instead of
            // after the wait.
            if !started.load(std::sync::atomic::Ordering::SeqCst) {
                let why = lifecycle.not_ready_reason().unwrap_or_default();
                eprintln!("clicktrail stopped while starting ({why})");
                std::process::exit(1);
            }
        }
    });
    let public_url = spec.public_url.clone().unwrap_or_else(|| {
        let port = if spec.roles.contains(&Role::Redirector) {
            addr.port()
        } else {
            Role::Redirector.default_port()
        };
        format!("http://{}:{port}", addr.ip())
    });

    let mut backends = match &spec.backend {
        BackendChoice::Embedded { dir, args } => {
            lifecycle.waiting_for(Some(format!(
                "opening the data directory {}",
                dir.display()
            )));
            Backends::embedded(dir, args)?
        }
        BackendChoice::Production {
            kafka,
            clickhouse,
            data_dir,
        } => {
            lifecycle.waiting_for(Some(format!(
                "connecting to Kafka at {} (retrying while it is unreachable)",
                kafka.brokers
            )));
            Backends::production(kafka, clickhouse, data_dir).await?
        }
    };
    let background = CancellationToken::new();
    lifecycle.waiting_for(Some("reading the catalog topic to its end".into()));
    let (catalog, follower) = follow_catalog(backends.consumers.clone(), &background).await?;
    if matches!(spec.backend, BackendChoice::Production { .. })
        && (spec.roles.contains(&Role::Processor) || spec.roles.contains(&Role::Query))
    {
        lifecycle.waiting_for(Some(
            "opening ClickHouse (retrying while it is unreachable)".into(),
        ));
    }

    let mut pieces = Vec::new();
    let mut processor = None;
    for &role in &spec.roles {
        match role {
            Role::Redirector => {
                let keys = spec
                    .secrets
                    .click_keys
                    .clone()
                    .ok_or_else(|| anyhow!("no click keys"))?;
                let redirector = Redirector::new(
                    RedirectorConfig {
                        click_keys: keys,
                        visitor_salt: spec.secrets.visitor_salt.clone(),
                        trusted_proxies: spec
                            .settings
                            .http
                            .trusted(spec.settings.redirect.trust_forwarded_for),
                        geo_db: spec.settings.redirect.geo_db.clone(),
                        scanner_networks: clicktrail_api::client::AddressRanges::parse(
                            &spec.settings.redirect.scanner_networks,
                        )
                        .unwrap_or_default(),
                    },
                    catalog.clone(),
                    backends.front_producer().await?,
                )
                .map_err(|e| anyhow!(e))?;
                pieces.push(clicktrail_redirector::router(redirector));
            }
            Role::Ingest => {
                pieces.push(clicktrail_ingest::router(IngestState {
                    config: Arc::new(IngestConfig {
                        admin_token: spec.secrets.admin_token.clone(),
                        public_url: public_url.clone(),
                        max_body_bytes: spec.settings.ingest.max_body_bytes,
                        processor_group: spec.settings.processor.group.clone(),
                        signing_key: spec.secrets.signing_key.clone(),
                        session_ttl_secs: spec.settings.ingest.session_ttl_secs,
                    }),
                    catalog: catalog.clone(),
                    producer: backends.front_producer().await?,
                    tail: backends.tail.clone(),
                    consumers: backends.consumers.clone(),
                    logins: Default::default(),
                }));
            }
            Role::Processor => {
                let config = processor_config(&spec.settings.processor, &spec.secrets)?;
                let deps = ProcessorDeps {
                    consumers: backends.consumers.clone(),
                    producer: backends.processor_producer()?,
                    store: backends.store().await?,
                    catalog: catalog.clone(),
                };
                processor = Some(ProcessorTask::spawn(
                    |stop| clicktrail_processor::run(config, deps, stop),
                    &lifecycle,
                ));
            }
            Role::Query => {
                pieces.push(clicktrail_query::router(QueryState {
                    source: backends.tables().await?,
                    catalog: catalog.clone(),
                    admin_token: spec.secrets.admin_token.clone(),
                    limiter: clicktrail_query::limits::Limiter::new(spec.settings.query.limits()),
                    pipeline: Some(clicktrail_query::freshness::Pipeline {
                        consumers: backends.consumers.clone(),
                        group: spec.settings.processor.group.clone(),
                    }),
                    public_url: public_url.clone(),
                    producer: Some(backends.processor_producer()?),
                }));
            }
        }
    }
    pieces.push(http::ops_routes(Ops {
        catalog: Some(catalog),
        ..ops
    }));
    let trusted = spec
        .settings
        .http
        .trusted(spec.settings.redirect.trust_forwarded_for);
    lifecycle.waiting_for(None);
    started.store(true, std::sync::atomic::Ordering::SeqCst);
    starting.ready();
    early.cancel();
    Ok(Running {
        addr,
        public_url,
        listener,
        app: http::app(
            pieces,
            RateLimiter::new(spec.settings.http.rate_limits(trusted)),
        ),
        limits: spec.settings.http.conn_limits(),
        lifecycle,
        drain: spec.drain,
        backends,
        processor,
        follower,
        background,
    })
}

/// Serves the operations routes on a second handle of `listener` until the returned token is
/// cancelled (connections it accepted finish their requests); returns the listener for the
/// full application.
fn early_ops(
    listener: TcpListener,
    ops: Ops,
    limits: clicktrail_api::conn::ConnLimits,
) -> anyhow::Result<(TcpListener, CancellationToken)> {
    let std = listener.into_std()?;
    let early = TcpListener::from_std(std.try_clone()?)?;
    let listener = TcpListener::from_std(std)?;
    let stop = CancellationToken::new();
    let lifecycle = ops.lifecycle.clone();
    // The role's own routes are not there yet: a request for one is told to come back, and
    // why, rather than that no such endpoint exists.
    let app = http::app(
        vec![http::ops_routes(ops)],
        RateLimiter::new(Default::default()),
    )
    .fallback(move || {
        let why = lifecycle
            .not_ready_reason()
            .unwrap_or_else(|| "starting".into());
        // The API's own 503: its error body and `Retry-After: 1`.
        async move {
            clicktrail_api::error::ApiError::Unavailable(format!(
                "not ready: {why}; see /health/ready"
            ))
        }
    });
    tokio::spawn({
        let stop = stop.clone();
        async move {
            if let Err(e) =
                clicktrail_api::conn::serve(early, app, limits, stop.cancelled_owned()).await
            {
                tracing::warn!(error = %e, "the startup health endpoint stopped");
            }
        }
    });
    Ok((listener, stop))
}

impl Running {
    /// Cancelled when the process begins to shut down (Ctrl-C, SIGTERM).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.lifecycle.token()
    }

    /// The front-end producer (as the redirector and ingest write).
    pub async fn front_producer(&mut self) -> anyhow::Result<Arc<dyn clicktrail_bus::Producer>> {
        self.backends.front_producer().await
    }

    /// Serves until Ctrl-C, SIGTERM or a processor that stopped on its own, then shuts down
    /// in order. Errors: the listener failed, or the processor stopped with an error.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        http::serve(
            self.listener,
            self.app,
            self.limits,
            self.lifecycle.clone(),
            self.drain,
        )
        .await?;
        self.lifecycle.shutdown();
        self.backends.flush_front().await?;
        let processor_outcome = match self.processor {
            Some(p) => p.finish().await,
            None => Ok(()),
        };
        self.background.cancel();
        let _ = self.follower.await;
        self.backends.close().await?;
        processor_outcome?;
        tracing::info!("stopped cleanly");
        Ok(())
    }
}

fn processor_config(args: &ProcessorArgs, secrets: &Secrets) -> anyhow::Result<ProcessorConfig> {
    Ok(ProcessorConfig {
        group: args.group.clone(),
        batch_max_records: args.batch_max_records,
        batch_max_wait: Duration::from_millis(args.batch_max_wait_ms),
        click_keys: secrets
            .click_keys
            .clone()
            .ok_or_else(|| anyhow!("no click keys"))?,
        dedup: DedupOptions {
            hourly_capacity: args.dedup_hourly_capacity,
            fp_rate: args.dedup_fp_rate,
        },
        event_id_window: Duration::from_secs(args.event_id_window_days * 86_400),
        order_window: Duration::from_secs(args.order_window_days * 86_400),
        outbound: clicktrail_processor::outbound::OutboundSettings {
            group: args.group.clone(),
            signing_key: secrets.signing_key.clone(),
            retry_base: Duration::from_millis(args.webhook_retry_base_ms),
            timeout: Duration::from_secs(args.webhook_timeout_secs),
        },
    })
}

/// Follows the catalog; resolves once it is read to its end.
async fn follow_catalog(
    consumers: Arc<dyn ConsumerFactory>,
    stop: &CancellationToken,
) -> anyhow::Result<(Arc<CatalogView>, JoinHandle<()>)> {
    let catalog = CatalogView::new();
    let (caught_up, caught_up_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn({
        let (catalog, stop) = (catalog.clone(), stop.clone());
        async move {
            let ready = move || {
                let _ = caught_up.send(());
            };
            if let Err(e) =
                follower::follow(consumers, catalog, ready, stop.cancelled_owned()).await
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
