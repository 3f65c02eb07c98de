//! The Kafka producer: idempotent, `acks=all`, lz4. Delivery reports decide acknowledgement;
//! with a spool, `clicks` and `events` the broker does not take go to the spool instead.

use super::kafka_err;
use super::spool::Spool;
use crate::{BusError, Delivery, Producer};
use async_trait::async_trait;
use clicktrail_schemas::Topic;
use clicktrail_schemas::topics::partition_for;
use parking_lot::RwLock;
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer as _, ProducerContext, PurgeConfig, ThreadedProducer,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;

/// What waits for a record's delivery report.
enum Pending {
    /// A durable send waiting for the broker's acknowledgement.
    Reply(oneshot::Sender<Result<Delivery, String>>),
    /// An enqueued record (a click): on failure it goes to the spool.
    Enqueued(Topic),
}

/// Routes delivery reports to waiting senders and failed enqueued records to the spool.
struct DeliveryContext {
    spool: Option<Arc<Spool>>,
    /// Set once a record failed in a way that changes the client's producer state: a record
    /// that timed out makes an idempotent client bump its producer epoch by itself, and a
    /// broker that lost or fenced the producer id refuses the client for good. The client is
    /// replaced before its next send (see [`KafkaProducer::current`]).
    stale: AtomicBool,
}

impl DeliveryContext {
    fn new(spool: Option<Arc<Spool>>) -> Self {
        DeliveryContext {
            spool,
            stale: AtomicBool::new(false),
        }
    }

    fn note_failure(&self, e: &KafkaError) {
        if let KafkaError::MessageProduction(code) = e
            && matches!(
                code,
                RDKafkaErrorCode::MessageTimedOut
                    | RDKafkaErrorCode::ProducerFenced
                    | RDKafkaErrorCode::InvalidProducerEpoch
                    | RDKafkaErrorCode::InvalidProducerIdMapping
                    | RDKafkaErrorCode::UnknownProducerId
                    | RDKafkaErrorCode::OutOfOrderSequenceNumber
                    | RDKafkaErrorCode::GaplessGuarantee
                    | RDKafkaErrorCode::Fatal
            )
        {
            self.stale.store(true, Ordering::SeqCst);
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
                        metrics::counter!(crate::metric_names::UNDELIVERED, "topic" => topic.name())
                            .increment(1);
                        tracing::error!(%topic, error = %e, "record not delivered and no spool");
                    }
                }
            }
        }
    }
}

/// The Kafka producer, with the optional local spool behind it.
#[derive(Clone)]
pub struct KafkaProducer {
    /// Replaced by [`KafkaProducer::reset`].
    inner: Arc<RwLock<Arc<ThreadedProducer<DeliveryContext>>>>,
    config: Arc<ClientConfig>,
    names: Arc<HashMap<Topic, String>>,
    partitions: Arc<HashMap<Topic, u32>>,
    spool: Option<Arc<Spool>>,
    ack_wait: Duration,
}

impl KafkaProducer {
    pub(super) fn new(
        config: ClientConfig,
        names: HashMap<Topic, String>,
        partitions: Arc<HashMap<Topic, u32>>,
        spool: Option<Arc<Spool>>,
        ack_wait: Duration,
    ) -> Result<Self, BusError> {
        let inner: ThreadedProducer<DeliveryContext> = config
            .create_with_context(DeliveryContext::new(spool.clone()))
            .map_err(kafka_err)?;
        Ok(KafkaProducer {
            inner: Arc::new(RwLock::new(Arc::new(inner))),
            config: Arc::new(config),
            names: Arc::new(names),
            partitions,
            spool,
            ack_wait,
        })
    }

    /// The client to send with. A client marked stale by a failed delivery is replaced
    /// first, so that no record is ever sent under the epoch the old client bumped by itself
    /// (brokers without client-side epoch bumps refuse it, or worse).
    fn current(&self) -> Arc<ThreadedProducer<DeliveryContext>> {
        let inner = self.inner.read().clone();
        if !inner.context().stale.load(Ordering::SeqCst) {
            return inner;
        }
        if let Err(e) = self.renew(&inner, "a delivery failed") {
            tracing::error!(error = %e, "cannot replace the kafka producer");
        }
        self.inner.read().clone()
    }

    /// Replaces the client with a new one (a new producer id, sequences from zero), unless
    /// another caller already replaced it. After a broker restart that lost its producer
    /// state, the old client's records are refused for good; the new one's are taken.
    pub fn reset(&self) -> Result<(), BusError> {
        let inner = self.inner.read().clone();
        self.renew(&inner, "repeated refusals")
    }

    fn renew(
        &self,
        seen: &Arc<ThreadedProducer<DeliveryContext>>,
        reason: &str,
    ) -> Result<(), BusError> {
        let mut slot = self.inner.write();
        if !Arc::ptr_eq(&slot, seen) {
            return Ok(());
        }
        let fresh: ThreadedProducer<DeliveryContext> = self
            .config
            .create_with_context(DeliveryContext::new(self.spool.clone()))
            .map_err(kafka_err)?;
        let old = std::mem::replace(&mut *slot, Arc::new(fresh));
        drop(slot);
        // Whatever the old client still holds fails now (and goes to the spool, or back to
        // its sender) instead of going out later under a bumped epoch.
        old.purge(PurgeConfig::default().queue().inflight());
        metrics::counter!(crate::metric_names::PRODUCER_RENEWED).increment(1);
        tracing::warn!(reason, "kafka producer replaced");
        // Dropping a client waits for its delivery reports; not on an async worker.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(move || drop(old))),
            Err(_) => drop(old),
        }
        Ok(())
    }

    fn name(&self, topic: Topic) -> &str {
        self.names
            .get(&topic)
            .map(String::as_str)
            .unwrap_or(topic.name())
    }

    fn partition(&self, topic: Topic, key: &[u8]) -> u32 {
        partition_for(key, self.partitions.get(&topic).copied().unwrap_or(1))
    }

    /// Sends straight to the broker and reports each record's outcome, in order.
    pub(super) async fn send_direct(
        &self,
        topic: Topic,
        records: &[(Vec<u8>, Vec<u8>)],
    ) -> Vec<Result<Delivery, String>> {
        let mut waits = Vec::with_capacity(records.len());
        let inner = self.current();
        for (key, payload) in records {
            let (tx, rx) = oneshot::channel();
            let partition = self.partition(topic, key);
            let record = BaseRecord::with_opaque_to(self.name(topic), Box::new(Pending::Reply(tx)))
                .key(key.as_slice())
                .payload(payload.as_slice())
                .partition(partition as i32);
            match inner.send(record) {
                Ok(()) => waits.push(Ok(rx)),
                Err((e, _)) => waits.push(Err(e.to_string())),
            }
        }
        let mut out = Vec::with_capacity(waits.len());
        for w in waits {
            out.push(match w {
                Ok(rx) => match tokio::time::timeout(self.ack_wait, rx).await {
                    Ok(Ok(r)) => r,
                    Ok(Err(_)) => Err("the producer dropped the record".into()),
                    Err(_) => Err("no delivery report in time".into()),
                },
                Err(e) => Err(e),
            });
        }
        out
    }

    fn spool_for(&self, topic: Topic) -> Option<&Arc<Spool>> {
        self.spool.as_ref().filter(|s| s.covers(topic))
    }
}

#[async_trait]
impl Producer for KafkaProducer {
    async fn send_batch(
        &self,
        topic: Topic,
        records: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Vec<Delivery>, BusError> {
        if let Some(spool) = self.spool_for(topic)
            && spool.is_spooling(topic)
        {
            return spool.append(topic, records).await;
        }
        let results = self.send_direct(topic, &records).await;
        let mut out: Vec<Option<Delivery>> = Vec::with_capacity(results.len());
        let mut failed = Vec::new();
        let mut first_error = None;
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Ok(d) => out.push(Some(d)),
                Err(e) => {
                    first_error.get_or_insert(e);
                    failed.push(i);
                    out.push(None);
                }
            }
        }
        if let Some(e) = first_error {
            let Some(spool) = self.spool_for(topic) else {
                return Err(kafka_err(format!("not acknowledged: {e}")));
            };
            tracing::warn!(%topic, records = failed.len(), error = %e, "broker did not acknowledge; spooling");
            let retry: Vec<(Vec<u8>, Vec<u8>)> =
                failed.iter().map(|&i| records[i].clone()).collect();
            let spooled = spool.append(topic, retry).await?;
            for (i, d) in failed.into_iter().zip(spooled) {
                out[i] = Some(d);
            }
        }
        Ok(out
            .into_iter()
            .map(|d| d.expect("every record answered"))
            .collect())
    }

    fn enqueue(&self, topic: Topic, key: Vec<u8>, payload: Vec<u8>) -> Result<(), BusError> {
        if let Some(spool) = self.spool_for(topic)
            && spool.is_spooling(topic)
        {
            spool.enqueue(topic, key, payload);
            return Ok(());
        }
        let partition = self.partition(topic, &key);
        let record =
            BaseRecord::with_opaque_to(self.name(topic), Box::new(Pending::Enqueued(topic)))
                .key(key.as_slice())
                .payload(payload.as_slice())
                .partition(partition as i32);
        match self.current().send(record) {
            Ok(()) => Ok(()),
            Err((e, _)) => match self.spool_for(topic) {
                Some(spool) => {
                    spool.enqueue(topic, key, payload);
                    Ok(())
                }
                None if matches!(
                    e,
                    KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)
                ) =>
                {
                    Err(BusError::QueueFull)
                }
                None => Err(kafka_err(e)),
            },
        }
    }

    async fn flush(&self) -> Result<(), BusError> {
        let inner = self.current();
        let wait = self.ack_wait;
        tokio::task::spawn_blocking(move || inner.flush(wait))
            .await
            .map_err(kafka_err)?
            .map_err(kafka_err)?;
        if let Some(spool) = &self.spool {
            spool.flush().await?;
        }
        Ok(())
    }
}
