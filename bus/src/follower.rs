//! The catalog follower: keeps a service's view of the catalog current.
//!
//! It reads the single-partition `catalog` topic from offset 0 to its end before the role
//! reports ready, then follows it. Writers append a change and wait until the follower has
//! applied it, then learn whether the state machine accepted it ([`CatalogView::write`]);
//! because every follower applies the same changes in the same order, a code claimed twice is
//! refused to the second writer on every instance.

use crate::records::RecordProducer;
use crate::{BusError, ConsumerEvent, ConsumerFactory, Producer};
use clicktrail_schemas::catalog::CatalogConflict;
use clicktrail_schemas::{Catalog, CatalogChange, Topic};
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Outcomes remembered for writers waiting on them.
const OUTCOMES_KEPT: usize = 4096;

/// Why a catalog write did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum CatalogWriteError {
    /// Refused by the state machine (409).
    #[error(transparent)]
    Conflict(#[from] CatalogConflict),
    /// The bus failed (503).
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The follower did not apply the change in time (503).
    #[error("the catalog change was not applied within {0:?}")]
    Timeout(Duration),
}

/// A follower's current view of the catalog.
pub struct CatalogView {
    current: RwLock<Arc<Catalog>>,
    /// Next catalog offset to apply.
    applied: watch::Sender<u64>,
    outcomes: Mutex<BTreeMap<u64, Result<(), CatalogConflict>>>,
}

impl Default for CatalogView {
    fn default() -> Self {
        CatalogView {
            current: RwLock::new(Arc::new(Catalog::default())),
            applied: watch::channel(0).0,
            outcomes: Mutex::new(BTreeMap::new()),
        }
    }
}

impl CatalogView {
    /// An empty view.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The catalog as of the last applied change; cheap to call per request.
    pub fn snapshot(&self) -> Arc<Catalog> {
        self.current.read().clone()
    }

    /// Notified with the next offset to apply after every applied batch.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    /// Applies changes read from the topic, publishing the new state once.
    pub fn apply(&self, changes: &[(u64, Option<CatalogChange>)]) {
        if changes.is_empty() {
            return;
        }
        let mut next = self.snapshot().as_ref().clone();
        let mut outcomes = self.outcomes.lock();
        let mut last = 0;
        for (offset, change) in changes {
            let outcome = match change {
                Some(change) => next.apply(change),
                None => Ok(()),
            };
            if let Err(e) = &outcome {
                tracing::debug!(offset, error = %e, "catalog change refused");
            }
            outcomes.insert(*offset, outcome);
            last = *offset;
        }
        while outcomes.len() > OUTCOMES_KEPT {
            outcomes.pop_first();
        }
        drop(outcomes);
        *self.current.write() = Arc::new(next);
        metrics::counter!(clicktrail_schemas::metric_names::bus::CATALOG_APPLIED)
            .increment(changes.len() as u64);
        self.applied.send_replace(last + 1);
    }

    /// Waits until the change at `offset` is applied and returns whether it was accepted.
    pub async fn wait_applied(
        &self,
        offset: u64,
        timeout: Duration,
    ) -> Result<(), CatalogWriteError> {
        let mut rx = self.applied.subscribe();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|next| *next > offset)).await;
        match reached {
            Ok(Ok(_)) => {}
            _ => return Err(CatalogWriteError::Timeout(timeout)),
        }
        match self.outcomes.lock().get(&offset) {
            Some(Err(e)) => Err(e.clone().into()),
            _ => Ok(()),
        }
    }

    /// Appends a change, waits for this view to apply it and reports the state machine's verdict.
    pub async fn write(
        &self,
        producer: &dyn Producer,
        change: &CatalogChange,
    ) -> Result<(), CatalogWriteError> {
        self.snapshot().check(change)?;
        let delivery = producer.send_record(change).await?;
        self.wait_applied(delivery.offset, Duration::from_secs(10))
            .await
    }
}

/// Reads the catalog to its end, then calls `ready` and follows it until `stop` resolves.
pub async fn follow(
    factory: Arc<dyn ConsumerFactory>,
    view: Arc<CatalogView>,
    ready: impl FnOnce(),
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), BusError> {
    // Every follower replays the whole topic: the catalog's state is its full history.
    let mut consumer = factory.reader(Topic::Catalog).await?;
    let end = factory
        .end_offsets(Topic::Catalog)
        .await?
        .first()
        .copied()
        .unwrap_or(0);
    let mut ready = Some(ready);
    if end == 0
        && let Some(r) = ready.take()
    {
        r()
    }
    tokio::pin!(stop);
    loop {
        let polled = tokio::select! {
            _ = &mut stop => return Ok(()),
            polled = consumer.poll(1024, Duration::from_millis(500)) => polled?,
        };
        if let ConsumerEvent::Records(records) = polled {
            let changes: Vec<(u64, Option<CatalogChange>)> = records
                .iter()
                .map(|m| {
                    let change = serde_json::from_slice(&m.payload)
                        .map_err(|e| tracing::error!(offset = m.offset, error = %e, "undecodable catalog change skipped"))
                        .ok();
                    (m.offset, change)
                })
                .collect();
            view.apply(&changes);
            if let Some(last) = records.last()
                && last.offset + 1 >= end
                && let Some(r) = ready.take()
            {
                r()
            }
        }
    }
}
