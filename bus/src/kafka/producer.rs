//! The Kafka producer: idempotent, `acks=all`, lz4. Delivery reports decide acknowledgement;
//! with a spool, `clicks` and `events` the broker does not take go to the spool instead.

use super::clients::{Client, Clients, Pending};
use super::kafka_err;
use super::spool::Spool;
use crate::{BusError, Delivery, Producer};
use async_trait::async_trait;
use clicktrail_schemas::Topic;
use clicktrail_schemas::topics::partition_for;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer as _};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// The Kafka producer, with the optional local spool behind it.
#[derive(Clone)]
pub struct KafkaProducer {
    clients: Arc<Clients>,
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
        Ok(KafkaProducer {
            clients: Clients::start(config, spool.clone())?,
            names: Arc::new(names),
            partitions,
            spool,
            ack_wait,
        })
    }

    fn current(&self) -> Arc<Client> {
        self.clients.current()
    }

    /// Replaces the client with a new one (a new producer id, sequences from zero). After a
    /// broker restart that lost its producer state, the old client's records are refused
    /// for good; the new one's are taken.
    pub fn reset(&self) {
        self.clients.reset();
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
