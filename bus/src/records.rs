//! Typed sending: a [`Record`] knows its topic and partition key, so callers hand over
//! records, never bytes they serialized and keyed by hand.

use crate::{BusError, Delivery, Producer};
use async_trait::async_trait;
use clicktrail_schemas::record::Record;

/// Sends typed records through any [`Producer`].
#[async_trait]
pub trait RecordProducer {
    /// Appends `records` to their topic and returns once all of them are durable, with the
    /// delivery of each in order. Errors: as [`Producer::send_batch`].
    async fn send_records<R: Record + Sync>(
        &self,
        records: &[R],
    ) -> Result<Vec<Delivery>, BusError>;

    /// Appends one record and returns once it is durable.
    async fn send_record<R: Record + Sync>(&self, record: &R) -> Result<Delivery, BusError>;

    /// Queues one record without waiting (see [`Producer::enqueue`]).
    fn enqueue_record<R: Record>(&self, record: &R) -> Result<(), BusError>;
}

#[async_trait]
impl<P: Producer + ?Sized> RecordProducer for P {
    async fn send_records<R: Record + Sync>(
        &self,
        records: &[R],
    ) -> Result<Vec<Delivery>, BusError> {
        let encoded = records.iter().map(Record::encode).collect();
        self.send_batch(R::TOPIC, encoded).await
    }

    async fn send_record<R: Record + Sync>(&self, record: &R) -> Result<Delivery, BusError> {
        let (key, payload) = record.encode();
        self.send(R::TOPIC, key, payload).await
    }

    fn enqueue_record<R: Record>(&self, record: &R) -> Result<(), BusError> {
        let (key, payload) = record.encode();
        self.enqueue(R::TOPIC, key, payload)
    }
}
