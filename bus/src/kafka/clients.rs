//! The librdkafka client behind [`super::KafkaProducer`], and its replacement.
//!
//! A record that times out makes an idempotent client bump its producer epoch by itself once
//! its requests in flight are drained; a broker that lost or fenced the producer id refuses the
//! client for good. Either way the client is replaced by a new one (a new producer id,
//! sequences from zero) as soon as its first such delivery report arrives: a worker thread
//! swaps it and purges the old client, so what the old one still held fails at once (to the
//! spool, or back to its sender) instead of going out later under the bumped epoch, which not
//! every Kafka-protocol broker accepts.

use super::kafka_err;
use super::spool::Spool;
use crate::{BusError, Delivery};
use clicktrail_schemas::Topic;
use parking_lot::RwLock;
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::producer::{
    DeliveryResult, Producer as _, ProducerContext, PurgeConfig, ThreadedProducer,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Weak};
use tokio::sync::oneshot;

/// What waits for a record's delivery report.
pub(super) enum Pending {
    /// A durable send waiting for the broker's acknowledgement.
    Reply(oneshot::Sender<Result<Delivery, String>>),
    /// An enqueued record (a click): on failure it goes to the spool.
    Enqueued(Topic),
}

/// One librdkafka client.
pub(super) type Client = ThreadedProducer<DeliveryContext>;

/// What the renewal worker is asked to do.
enum Job {
    /// A client reported a failure that changes its producer state.
    Stale,
    /// Drop a replaced client (dropping waits for its delivery reports).
    Retire(Arc<Client>),
}

/// Routes delivery reports to waiting senders and failed enqueued records to the spool.
pub(super) struct DeliveryContext {
    spool: Option<Arc<Spool>>,
    stale: AtomicBool,
    jobs: mpsc::Sender<Job>,
}

impl DeliveryContext {
    fn note_failure(&self, e: &KafkaError) {
        let KafkaError::MessageProduction(code) = e else {
            return;
        };
        let changes_producer_state = matches!(
            code,
            RDKafkaErrorCode::MessageTimedOut
                | RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::InvalidProducerIdMapping
                | RDKafkaErrorCode::UnknownProducerId
                | RDKafkaErrorCode::OutOfOrderSequenceNumber
                | RDKafkaErrorCode::GaplessGuarantee
                | RDKafkaErrorCode::Fatal
        );
        if changes_producer_state && !self.stale.swap(true, Ordering::SeqCst) {
            let _ = self.jobs.send(Job::Stale);
        }
    }
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<Pending>;

    fn delivery(&self, result: &DeliveryResult<'_>, pending: Box<Pending>) {
        if let Err((e, _)) = result {
            self.note_failure(e);
        }
        match (*pending, result) {
            (Pending::Reply(tx), Ok(m)) => {
                let _ = tx.send(Ok(Delivery {
                    partition: m.partition() as u32,
                    offset: m.offset() as u64,
                    spooled: false,
                }));
            }
            (Pending::Reply(tx), Err((e, _))) => {
                let _ = tx.send(Err(e.to_string()));
            }
            (Pending::Enqueued(_), Ok(_)) => {}
            (Pending::Enqueued(topic), Err((e, m))) => {
                let key = m.key().unwrap_or_default().to_vec();
                let payload = m.payload().unwrap_or_default().to_vec();
                match &self.spool {
                    Some(spool) => spool.enqueue(topic, key, payload),
                    None => {
                        metrics::counter!(clicktrail_schemas::metric_names::bus::UNDELIVERED, "topic" => topic.name())
                            .increment(1);
                        tracing::error!(%topic, error = %e, "record not delivered and no spool");
                    }
                }
            }
        }
    }
}

/// The current client and what it takes to make another one.
pub(super) struct Clients {
    slot: RwLock<Arc<Client>>,
    config: ClientConfig,
    spool: Option<Arc<Spool>>,
    jobs: mpsc::Sender<Job>,
}

impl Clients {
    /// The first client, and the worker that replaces it; the worker ends with the last
    /// client.
    pub(super) fn start(
        config: ClientConfig,
        spool: Option<Arc<Spool>>,
    ) -> Result<Arc<Clients>, BusError> {
        let (jobs, rx) = mpsc::channel();
        let first = Self::create(&config, &spool, &jobs)?;
        let clients = Arc::new(Clients {
            slot: RwLock::new(Arc::new(first)),
            config,
            spool,
            jobs,
        });
        let weak = Arc::downgrade(&clients);
        std::thread::Builder::new()
            .name("kafka-renew".into())
            .spawn(move || renew_worker(weak, rx))
            .map_err(|e| BusError::Storage(format!("cannot start the producer worker: {e}")))?;
        Ok(clients)
    }

    fn create(
        config: &ClientConfig,
        spool: &Option<Arc<Spool>>,
        jobs: &mpsc::Sender<Job>,
    ) -> Result<Client, BusError> {
        config
            .create_with_context(DeliveryContext {
                spool: spool.clone(),
                stale: AtomicBool::new(false),
                jobs: jobs.clone(),
            })
            .map_err(kafka_err)
    }

    /// The client to send with; a stale one is replaced first.
    pub(super) fn current(&self) -> Arc<Client> {
        let client = self.slot.read().clone();
        if !client.context().stale.load(Ordering::SeqCst) {
            return client;
        }
        self.renew(&client, "a delivery failed");
        self.slot.read().clone()
    }

    /// Replaces the current client whatever its state: the broker keeps refusing it.
    pub(super) fn reset(&self) {
        let client = self.slot.read().clone();
        self.renew(&client, "repeated refusals");
    }

    /// Replaces `seen` unless another caller already did.
    fn renew(&self, seen: &Arc<Client>, reason: &str) {
        let mut slot = self.slot.write();
        if !Arc::ptr_eq(&slot, seen) {
            return;
        }
        let fresh = match Self::create(&self.config, &self.spool, &self.jobs) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot replace the kafka producer");
                return;
            }
        };
        let old = std::mem::replace(&mut *slot, Arc::new(fresh));
        drop(slot);
        old.purge(PurgeConfig::default().queue().inflight());
        metrics::counter!(clicktrail_schemas::metric_names::bus::PRODUCER_RENEWED).increment(1);
        tracing::warn!(reason, "kafka producer replaced");
        let _ = self.jobs.send(Job::Retire(old));
    }
}

fn renew_worker(clients: Weak<Clients>, jobs: mpsc::Receiver<Job>) {
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Retire(old) => drop(old),
            Job::Stale => {
                let Some(c) = clients.upgrade() else { return };
                let current = c.slot.read().clone();
                if current.context().stale.load(Ordering::SeqCst) {
                    c.renew(&current, "a delivery failed");
                }
            }
        }
    }
}
