//! The processor: consumes `clicks` and `events`, and writes what they mean to the store.
//!
//! Each topic it reads runs the chain of [`pipeline`]: decode → the topic's step → batch →
//! write ([`write`]) → commit. Clicks have one step, unique-click dedup ([`clicks`],
//! [`dedup`]); events have three, each on its own topic keyed by what it remembers ([`events`]):
//! event ids (`events`), purchase orders (`events-by-order`), then attribution with the
//! customer's first touch (`events-by-customer`, [`attribution`]); the commission ledger has
//! two more ([`ledger`]): orders and refunds (`commissions`), then each influencer's account
//! (`ledger`); newsletter promo impressions have one, each send counted once ([`promo`]);
//! webhooks and postbacks are delivered from `outbound` by the delivery worker
//! ([`outbound`]).
//! State belongs to a
//! partition: restored from the store's checkpoint on assignment, checkpointed with every batch
//! together with the offsets it reflects.
//!
//! Invariant: given the same records and catalog, a replay from any checkpoint produces the
//! same rows; nothing is read past a batch the store has not acknowledged.

pub mod attribution;
pub mod clicks;
pub mod dedup;
pub mod events;
pub mod extract;
pub mod id_window;
pub mod ledger;
pub mod outbound;
pub mod pipeline;
pub mod promo;
pub mod write;

use clicktrail_bus::{CatalogView, ConsumerFactory, Producer};
use clicktrail_schemas::Topic;
use clicktrail_schemas::token::ClickKeys;
use clicktrail_store::Store;
use pipeline::{BatchLimits, PipelineError, Wiring};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Processor settings.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// Consumer group.
    pub group: String,
    /// Records per batch at most.
    pub batch_max_records: usize,
    /// Longest a record waits before its batch is written.
    pub batch_max_wait: Duration,
    /// Click token keys, to verify `click_id`s.
    pub click_keys: ClickKeys,
    /// Dedup filter sizing.
    pub dedup: dedup::DedupOptions,
    /// How long an `event_id` is remembered per advertiser, in record time (`received_at`):
    /// a copy within this time of the first is dropped. Default
    /// [`events::DEFAULT_EVENT_ID_WINDOW`] (7 days); at least one hour.
    pub event_id_window: Duration,
    /// How long a purchase's (advertiser, `order_id`) is remembered, in record time: a second
    /// purchase within this time of the first goes to dead-letter. Default
    /// [`events::DEFAULT_ORDER_WINDOW`] (90 days); at least one hour.
    pub order_window: Duration,
    /// How webhooks and postbacks are delivered.
    pub outbound: outbound::OutboundSettings,
}

impl ProcessorConfig {
    /// The events step's windows.
    pub fn windows(&self) -> events::IdWindows {
        events::IdWindows {
            event_id: self.event_id_window,
            order: self.order_window,
        }
    }
}

/// What the processor is connected to.
#[derive(Clone)]
pub struct ProcessorDeps {
    /// Consumers of the bus.
    pub consumers: Arc<dyn ConsumerFactory>,
    /// Producer, for dead letters.
    pub producer: Arc<dyn Producer>,
    /// The store.
    pub store: Arc<dyn Store>,
    /// The catalog, already read to its end.
    pub catalog: Arc<CatalogView>,
}

/// Runs both pipelines until `shutdown` is cancelled and their last batches are committed.
///
/// Errors: [`PipelineError::Config`] at once when a window is shorter than one hour; otherwise
/// what stopped a pipeline.
pub async fn run(
    config: ProcessorConfig,
    deps: ProcessorDeps,
    shutdown: CancellationToken,
) -> Result<(), PipelineError> {
    let windows = config.windows();
    windows.validate().map_err(PipelineError::Config)?;
    let limits = BatchLimits {
        max_records: config.batch_max_records,
        max_wait: config.batch_max_wait,
    };
    let wiring = |consumer| Wiring {
        consumer,
        producer: deps.producer.clone(),
        store: deps.store.clone(),
        catalog: deps.catalog.clone(),
    };
    let consumer = |topic| deps.consumers.consumer(&config.group, topic);
    let (clicks, ids, orders, customers) = (
        consumer(Topic::Clicks).await?,
        consumer(Topic::Events).await?,
        consumer(Topic::EventsByOrder).await?,
        consumer(Topic::EventsByCustomer).await?,
    );
    let (commissions, accounts, impressions, outbound_consumer) = (
        consumer(Topic::Commissions).await?,
        consumer(Topic::Ledger).await?,
        consumer(Topic::Impressions).await?,
        consumer(Topic::Outbound).await?,
    );
    let deliveries = outbound::OutboundWiring {
        consumer: outbound_consumer,
        consumers: deps.consumers.clone(),
        store: deps.store.clone(),
        catalog: deps.catalog.clone(),
    };
    let keys = &config.click_keys;
    // Any pipeline failing permanently stops all: a half-running processor would look
    // healthy while one topic silently piles up.
    tokio::try_join!(
        pipeline::run::<clicks::ClickState>(
            Topic::Clicks,
            wiring(clicks),
            keys.clone(),
            config.dedup,
            windows,
            limits,
            shutdown.clone()
        ),
        pipeline::run::<events::IdStep>(
            Topic::Events,
            wiring(ids),
            keys.clone(),
            config.dedup,
            windows,
            limits,
            shutdown.clone()
        ),
        pipeline::run::<events::OrderStep>(
            Topic::EventsByOrder,
            wiring(orders),
            keys.clone(),
            config.dedup,
            windows,
            limits,
            shutdown.clone()
        ),
        pipeline::run::<events::AttributionStep>(
            Topic::EventsByCustomer,
            wiring(customers),
            keys.clone(),
            config.dedup,
            windows,
            limits,
            shutdown.clone()
        ),
        pipeline::run::<ledger::CommissionStep>(
            Topic::Commissions,
            wiring(commissions),
            keys.clone(),
            config.dedup,
            windows,
            limits,
            shutdown.clone()
        ),
        pipeline::run::<ledger::LedgerStep>(
            Topic::Ledger,
            wiring(accounts),
            keys.clone(),
            config.dedup,
            windows,
            limits,
            shutdown.clone()
        ),
        pipeline::run::<promo::ImpressionStep>(
            Topic::Impressions,
            wiring(impressions),
            keys.clone(),
            config.dedup,
            windows,
            limits,
            shutdown.clone()
        ),
        async { outbound::run(config.outbound.clone(), deliveries, shutdown.clone()).await },
    )?;
    Ok(())
}
