//! Webhooks and postbacks, sent from the stream behind the store write (`docs/integration.md`).
//!
//! The steps that decide a conversion or a payout hand an [`OutboundRecord`] on to the
//! `outbound` topic ([`messages`]). The delivery worker ([`run`]) reads it with the processor
//! group; each message becomes one pending delivery per target (an active webhook endpoint
//! subscribed to its kind; for a credited conversion, every matching postback), kept in the
//! partition's state and checkpointed with the offsets, so that a delivery accepted is never
//! lost. A delivery waits until the processor group committed past the message's
//! [`OutboundRecord::after`] position (its rows are stored), then is attempted ([`deliver`]) on
//! a task of its own (`flight`: at most 64 at once, 4 per endpoint or postback);
//! each attempt is a row of `deliveries`, written with the checkpoint that records the
//! delivery's new state. A failure is retried after [`deliver::backoff`] until
//! [`MAX_ATTEMPTS`]; a `kill -9` during an attempt means the attempt is made again after the
//! restart (at least once, with the same idempotency id).

pub mod deliver;
mod flight;
pub mod messages;
mod state;

use crate::pipeline::{PipelineError, StateChanges};
use clicktrail_bus::{CatalogView, Consumer, ConsumerEvent, ConsumerFactory};
use clicktrail_schemas::Topic;
use clicktrail_schemas::metric_names::processor::STORE_RETRIES;
use clicktrail_schemas::outbound::{DeliveryRow, OutboundRecord};
use clicktrail_store::{Checkpoint, Rows, Store, StoreError};
use flight::Flight;
use state::Partition;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Attempts per delivery at most: with the default 30 s base, the last is made about 32 hours
/// after the first.
pub const MAX_ATTEMPTS: u32 = 15;

/// How the worker delivers.
#[derive(Debug, Clone)]
pub struct OutboundSettings {
    /// The processor group, whose commits say what is stored.
    pub group: String,
    /// The deployment's signing key, from which each endpoint's secret is derived.
    pub signing_key: String,
    /// The first retry's delay; each next one doubles it (see [`deliver::backoff`]).
    pub retry_base: Duration,
    /// How long an attempt may take.
    pub timeout: Duration,
}

/// What the worker is connected to.
pub struct OutboundWiring {
    /// A consumer of `outbound` in the processor group.
    pub consumer: Box<dyn Consumer>,
    /// For the processor group's committed positions.
    pub consumers: Arc<dyn ConsumerFactory>,
    /// Where state and the delivery log go.
    pub store: Arc<dyn Store>,
    /// Endpoints and postbacks.
    pub catalog: Arc<CatalogView>,
}

impl OutboundSettings {
    /// The defaults: first retry after 30 s, 10 s per attempt.
    pub fn new(group: &str, signing_key: &str) -> OutboundSettings {
        OutboundSettings {
            group: group.to_string(),
            signing_key: signing_key.to_string(),
            retry_base: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
        }
    }
}

fn stream(partition: u32) -> String {
    format!("{}/{partition}", Topic::Outbound.name())
}

/// Runs the delivery worker until `stop` is cancelled; what changed is checkpointed before
/// it returns.
pub async fn run(
    settings: OutboundSettings,
    mut wiring: OutboundWiring,
    stop: CancellationToken,
) -> Result<(), PipelineError> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| PipelineError::Config(format!("webhook client: {e}")))?;
    let mut parts: HashMap<u32, Partition> = HashMap::new();
    let mut gate = Gate::default();
    let mut flight = Flight::default();
    loop {
        let polled = tokio::select! {
            _ = stop.cancelled() => {
                checkpoint(&mut wiring, &mut parts, Vec::new()).await;
                return Ok(());
            }
            polled = wiring.consumer.poll(500, Duration::from_millis(200)) => polled,
        };
        match polled {
            Ok(ConsumerEvent::Assigned(assigned)) => {
                for p in assigned {
                    let part = restore(&wiring, p).await;
                    wiring.consumer.seek(p, part.next_offset)?;
                    parts.insert(p, part);
                }
            }
            Ok(ConsumerEvent::Revoked(revoked)) => {
                checkpoint(&mut wiring, &mut parts, Vec::new()).await;
                for p in revoked {
                    parts.remove(&p);
                }
            }
            Ok(ConsumerEvent::Records(records)) => {
                let catalog = wiring.catalog.snapshot();
                for m in records {
                    let Some(part) = parts.get_mut(&m.partition) else {
                        continue;
                    };
                    part.next_offset = m.offset + 1;
                    part.dirty = true;
                    match serde_json::from_slice::<OutboundRecord>(&m.payload) {
                        Ok(r) => part.accept(&r, m.partition, m.offset, &catalog),
                        Err(e) => tracing::error!(offset = m.offset, error = %e,
                            "an outbound message could not be read; skipped"),
                    }
                }
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!(error = %e, "outbound poll failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e.into()),
        }
        let mut rows = Vec::new();
        for (p, mut d, answer, url) in flight.finished() {
            if let Some(part) = parts.get_mut(&p) {
                d.url = url;
                rows.push(part.record(d, answer, &settings));
            }
        }
        gate.refresh(&wiring, &settings.group, &parts).await;
        let catalog = wiring.catalog.snapshot();
        flight.start(&parts, &gate.committed, &client, &catalog, &settings);
        if !rows.is_empty() || parts.values().any(|p| p.dirty) {
            checkpoint(&mut wiring, &mut parts, rows).await;
        }
    }
}

/// The processor group's committed positions of the topics messages wait on.
#[derive(Default)]
struct Gate {
    committed: HashMap<Topic, Vec<Option<u64>>>,
    read_at: Option<Instant>,
}

impl Gate {
    /// Reads the positions again (at most every 200 ms) when a delivery waits on them.
    async fn refresh(
        &mut self,
        wiring: &OutboundWiring,
        group: &str,
        parts: &HashMap<u32, Partition>,
    ) {
        let waiting: Vec<Topic> = {
            let mut t: Vec<Topic> = parts.values().flat_map(|p| p.waiting_on()).collect();
            t.sort();
            t.dedup();
            t
        };
        if waiting.is_empty()
            || self
                .read_at
                .is_some_and(|t| t.elapsed() < Duration::from_millis(200))
        {
            return;
        }
        self.read_at = Some(Instant::now());
        for topic in waiting {
            match wiring.consumers.committed(group, topic).await {
                Ok(c) => {
                    self.committed.insert(topic, c);
                }
                Err(e) => {
                    tracing::warn!(topic = %topic, error = %e, "committed positions unreadable")
                }
            }
        }
    }
}

async fn restore(wiring: &OutboundWiring, p: u32) -> Partition {
    let name = stream(p);
    loop {
        match wiring.store.restore(&name).await {
            Ok(r) => {
                let (offset, entries) = r.map_or((0, Vec::new()), |r| (r.next_offset, r.entries));
                let part = Partition::restore(offset, entries);
                tracing::info!(stream = %name, offset, pending = part.len(), "outbound partition assigned");
                return part;
            }
            Err(e) => {
                tracing::warn!(stream = %name, error = %e, "restore failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Writes the attempts' rows and every changed partition's checkpoint in one store write
/// (retried until it succeeds), then commits the offsets.
async fn checkpoint(
    wiring: &mut OutboundWiring,
    parts: &mut HashMap<u32, Partition>,
    rows: Vec<DeliveryRow>,
) {
    let changed: BTreeMap<u32, &mut Partition> = parts
        .iter_mut()
        .filter(|(_, p)| p.dirty)
        .map(|(k, p)| (*k, p))
        .collect();
    if changed.is_empty() && rows.is_empty() {
        return;
    }
    let mut checkpoints = Vec::new();
    let mut offsets = Vec::new();
    let mut taken = Vec::new();
    for (p, part) in changed {
        let StateChanges { puts, deletes } = part.take_changes();
        taken.push(p);
        offsets.push((p, part.next_offset));
        checkpoints.push(Checkpoint {
            stream: stream(p),
            next_offset: part.next_offset,
            puts,
            deletes,
        });
    }
    let mut batch = Rows {
        deliveries: rows,
        ..Rows::default()
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        match wiring.store.write(&batch, &checkpoints).await {
            Ok(()) => break,
            Err(StoreError::Data(reason)) => {
                tracing::error!(reason = %reason, "the store refused delivery log rows; their checkpoint is written alone");
                batch = Rows::default();
            }
            Err(e) => {
                metrics::counter!(STORE_RETRIES).increment(1);
                tracing::warn!(error = %e, "outbound checkpoint failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    for p in taken {
        if let Some(part) = parts.get_mut(&p) {
            part.dirty = false;
        }
    }
    let offsets: Vec<(u32, u64)> = offsets.into_iter().filter(|(_, o)| *o > 0).collect();
    if let Err(e) = wiring.consumer.commit(&offsets).await {
        tracing::warn!(error = %e, "outbound offset commit failed");
    }
}
