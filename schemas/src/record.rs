//! The record of each topic knows its topic and its partition key, so that producers send
//! records, never bytes a caller serialized and keyed by hand.

use crate::Topic;
use crate::catalog::CatalogChange;
use crate::wire::{ClickRecord, DeadLetterRecord, EventRecord, Forwarded};
use serde::Serialize;

/// A record of one topic: JSON on the wire (see `docs/wire-format.md`), partitioned by
/// [`Record::key`] as [`crate::topics::partition_for`] does.
pub trait Record: Serialize {
    /// The topic records of this type go to.
    const TOPIC: Topic;

    /// The partition key.
    fn partition_key(&self) -> String;

    /// The record as the bus carries it: (key, JSON payload).
    fn encode(&self) -> (Vec<u8>, Vec<u8>) {
        (
            self.partition_key().into_bytes(),
            // Wire types hold only strings, numbers, booleans and times: they always serialize.
            serde_json::to_vec(self).expect("wire records serialize"),
        )
    }
}

impl Record for ClickRecord {
    const TOPIC: Topic = Topic::Clicks;
    fn partition_key(&self) -> String {
        self.key().to_string()
    }
}

impl Record for EventRecord {
    const TOPIC: Topic = Topic::Events;
    fn partition_key(&self) -> String {
        self.key()
    }
}

/// An event on its way to the order step (`events-by-order`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct ToOrderStep(pub Forwarded);

impl Record for ToOrderStep {
    const TOPIC: Topic = Topic::EventsByOrder;
    fn partition_key(&self) -> String {
        self.0.event.order_key()
    }
}

/// An event on its way to the attribution step (`events-by-customer`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct ToAttribution(pub Forwarded);

impl Record for ToAttribution {
    const TOPIC: Topic = Topic::EventsByCustomer;
    fn partition_key(&self) -> String {
        self.0.event.customer_key()
    }
}

impl Record for crate::ledger::OrderEvent {
    const TOPIC: Topic = Topic::Commissions;
    fn partition_key(&self) -> String {
        self.key()
    }
}

impl Record for crate::ledger::LedgerRecord {
    const TOPIC: Topic = Topic::Ledger;
    fn partition_key(&self) -> String {
        self.influencer_id.clone()
    }
}

impl Record for crate::promo::ImpressionRecord {
    const TOPIC: Topic = Topic::Impressions;
    fn partition_key(&self) -> String {
        self.key()
    }
}

impl Record for DeadLetterRecord {
    const TOPIC: Topic = Topic::DeadLetter;
    fn partition_key(&self) -> String {
        self.key().to_string()
    }
}

impl Record for CatalogChange {
    const TOPIC: Topic = Topic::Catalog;
    fn partition_key(&self) -> String {
        self.key()
    }
}

impl Record for crate::outbound::OutboundRecord {
    const TOPIC: Topic = Topic::Outbound;
    fn partition_key(&self) -> String {
        self.advertiser_id.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_keyed_and_encoded_as_its_topic_expects() {
        let dead = DeadLetterRecord {
            v: 1,
            source_topic: "events".into(),
            source_partition: 2,
            source_offset: 7,
            source_key: "adv:c1".into(),
            reason: "store_refused".into(),
            detail: "d".into(),
            payload: "{}".into(),
            at: chrono::DateTime::from_timestamp(0, 0).unwrap(),
        };
        let (key, payload) = dead.encode();
        assert_eq!(key, b"adv:c1");
        let back: DeadLetterRecord = serde_json::from_slice(&payload).unwrap();
        assert_eq!(back, dead);
        assert_eq!(DeadLetterRecord::TOPIC, Topic::DeadLetter);
    }
}
