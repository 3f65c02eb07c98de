//! The bus topics and how a record's key picks its partition.

use serde::{Deserialize, Serialize};

/// A topic on the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Topic {
    /// One record per redirect, keyed by visitor.
    Clicks,
    /// Advertiser funnel events as ingest accepted them, keyed by advertiser + event id: the
    /// first step of the events chain remembers event ids.
    Events,
    /// Events whose event id was new, keyed by advertiser + order id for a purchase that
    /// carries one, else advertiser + event id: the second step remembers purchase orders.
    EventsByOrder,
    /// Events past both idempotency steps, keyed by advertiser + customer (customer id, else
    /// order id, else event id): the attribution step keeps each customer's first touch.
    EventsByCustomer,
    /// Purchases and refunds after attribution, keyed by advertiser + order id (event id for a
    /// purchase without one): the commission step matches each refund to its order's
    /// commission.
    Commissions,
    /// Operations on the commission ledger, keyed by influencer: commissions booked and
    /// reversed (from the commission step), payout requests, payments and fraud reviews (from
    /// ingest). The ledger step keeps each influencer's open commissions and payouts.
    Ledger,
    /// Newsletter promo impressions, keyed by offer + variation.
    Impressions,
    /// Messages for advertisers' webhooks and postbacks, keyed by advertiser: the delivery
    /// worker keeps each partition's pending deliveries.
    Outbound,
    /// Every catalog change, keyed by entity id; one partition, never expires.
    Catalog,
    /// What could not be processed, keyed by source key.
    DeadLetter,
}

impl Topic {
    /// Every topic.
    pub const ALL: [Topic; 10] = [
        Topic::Clicks,
        Topic::Events,
        Topic::EventsByOrder,
        Topic::EventsByCustomer,
        Topic::Commissions,
        Topic::Ledger,
        Topic::Impressions,
        Topic::Outbound,
        Topic::Catalog,
        Topic::DeadLetter,
    ];

    /// The topic's name on the bus.
    pub fn name(self) -> &'static str {
        match self {
            Topic::Clicks => "clicks",
            Topic::Events => "events",
            Topic::EventsByOrder => "events-by-order",
            Topic::EventsByCustomer => "events-by-customer",
            Topic::Commissions => "commissions",
            Topic::Ledger => "ledger",
            Topic::Impressions => "impressions",
            Topic::Outbound => "outbound",
            Topic::Catalog => "catalog",
            Topic::DeadLetter => "dead-letter",
        }
    }

    /// Partition count used when the topic is created and none is configured. The catalog is
    /// totally ordered, so it has exactly one.
    pub fn default_partitions(self) -> u32 {
        match self {
            Topic::Clicks
            | Topic::Events
            | Topic::EventsByOrder
            | Topic::EventsByCustomer
            | Topic::Commissions
            | Topic::Ledger
            | Topic::Impressions
            | Topic::Outbound => 4,
            Topic::Catalog | Topic::DeadLetter => 1,
        }
    }

    /// The topics of the events chain, in the order records pass through them: each step
    /// consumes one and (but the last) produces to the next.
    pub const EVENT_CHAIN: [Topic; 3] =
        [Topic::Events, Topic::EventsByOrder, Topic::EventsByCustomer];

    /// Every topic the processor reads, each before the topics it hands records on to: a
    /// reader that finds one drained (committed to its end) and then reads the next sees
    /// everything the first handed on.
    pub const PROCESSED: [Topic; 7] = [
        Topic::Clicks,
        Topic::Impressions,
        Topic::Events,
        Topic::EventsByOrder,
        Topic::EventsByCustomer,
        Topic::Commissions,
        Topic::Ledger,
    ];

    /// The topics whose partition count is configurable (`--partitions`): all but the
    /// single-partition `catalog` and `dead-letter`.
    pub fn is_partitioned(self) -> bool {
        !matches!(self, Topic::Catalog | Topic::DeadLetter)
    }

    /// Parses a topic name.
    pub fn from_name(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl std::fmt::Display for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The partition a key belongs to: CRC-32 of the key modulo the partition count, the same
/// mapping as librdkafka's `consistent` partitioner, so a key lands in the same partition on
/// the embedded log and on Kafka.
pub fn partition_for(key: &[u8], partitions: u32) -> u32 {
    if partitions <= 1 {
        return 0;
    }
    crc32fast::hash(key) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in Topic::ALL {
            assert_eq!(Topic::from_name(t.name()), Some(t));
        }
    }

    #[test]
    fn same_key_same_partition() {
        let a = partition_for(b"visitor-1", 4);
        assert_eq!(a, partition_for(b"visitor-1", 4));
        assert!(a < 4);
        assert_eq!(partition_for(b"anything", 1), 0);
    }
}
