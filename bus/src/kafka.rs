//! The production bus: Kafka (any Kafka-protocol broker) through rdkafka.
//!
//! - [`KafkaBus::connect`] creates missing topics with the configured partition counts and
//!   learns the partition counts the broker actually has, so every producer partitions keys
//!   exactly as [`partition_for`] does, the same as the embedded log.
//! - [`KafkaProducer`]: idempotent, `acks=all`, lz4; a durable send returns once the broker
//!   acknowledged every record (delivery reports), or, for `clicks` and `events` while the
//!   broker is unreachable, once the record is on the local [`spool`].
//! - [`KafkaBus`] as a [`ConsumerFactory`]: group consumers with manual commits whose
//!   rebalances are handed to the caller ([`ConsumerEvent::Assigned`] / `Revoked`) and wait
//!   until the caller has restored or checkpointed the partitions; readers outside any group.

use crate::{BusError, Consumer, ConsumerFactory, Message, TailReader};
use async_trait::async_trait;
use clicktrail_schemas::Topic;
use parking_lot::Mutex;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod clients;
mod consumer;
mod producer;
pub mod spool;

/// Records the producer queues at most. When the broker fails them all at once, every one of
/// them must fit into the spool's write queue.
pub const PRODUCER_QUEUE_MESSAGES: usize = 1_000_000;

use consumer::KafkaConsumer;
pub use producer::KafkaProducer;
use spool::Spool;

/// How long metadata and offset requests may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connect waits for a broker's metadata before it reports the broker unreachable
/// and tries again.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

fn kafka_err(e: impl std::fmt::Display) -> BusError {
    BusError::Storage(format!("kafka: {e}"))
}

/// Connection and tuning of the Kafka backend.
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    /// `host:port[,host:port…]` of the brokers.
    pub brokers: String,
    /// Partitions of each topic created at start (existing topics keep theirs).
    pub partitions: HashMap<Topic, u32>,
    /// Replication factor of topics created at start.
    pub replication: i32,
    /// How long the producer waits to fill a batch (`linger.ms`).
    pub linger: Duration,
    /// Records per producer batch at most (`batch.num.messages`).
    pub batch_records: usize,
    /// How long a record may wait for the broker's acknowledgement before it counts as
    /// undelivered (`message.timeout.ms`) and goes to the spool.
    pub delivery_timeout: Duration,
    /// Group session timeout: how soon a member that died is replaced.
    pub session_timeout: Duration,
    /// A stable name of this group member (`group.instance.id`, static membership): a
    /// member restarted under the same name takes its partitions back at once instead of
    /// waiting for the session timeout and a rebalance. Unique per running process.
    pub instance_id: Option<String>,
    /// Further librdkafka settings, applied last.
    pub settings: Vec<(String, String)>,
    /// Prefix of every topic name (`<prefix>clicks`, …), so that several deployments can
    /// share one cluster; empty by default.
    pub topic_prefix: String,
}

impl KafkaOptions {
    /// Defaults for brokers at `brokers`.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaOptions {
            brokers: brokers.into(),
            partitions: Topic::ALL
                .into_iter()
                .map(|t| (t, t.default_partitions()))
                .collect(),
            replication: 1,
            linger: Duration::from_millis(5),
            batch_records: 10_000,
            delivery_timeout: Duration::from_secs(5),
            session_timeout: Duration::from_secs(45),
            instance_id: None,
            settings: Vec::new(),
            topic_prefix: String::new(),
        }
    }

    /// The broker's name of a topic.
    pub fn topic_name(&self, topic: Topic) -> String {
        format!("{}{}", self.topic_prefix, topic.name())
    }

    fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("broker.address.family", "v4")
            .set("log_level", "4");
        c
    }

    fn apply_settings(&self, c: &mut ClientConfig) {
        for (k, v) in &self.settings {
            c.set(k, v);
        }
    }
}

/// The Kafka bus: topics checked at connect, a [`ConsumerFactory`] and a [`TailReader`];
/// producers come from [`KafkaBus::producer`].
#[derive(Clone)]
pub struct KafkaBus {
    options: Arc<KafkaOptions>,
    partitions: Arc<HashMap<Topic, u32>>,
    /// For metadata and watermarks; never joins a group.
    meta: Arc<BaseConsumer>,
    /// Clients that read a group's committed offsets (never joining it), one per group.
    offset_readers: Arc<Mutex<HashMap<String, Arc<BaseConsumer>>>>,
}

impl KafkaBus {
    /// Connects, creates missing topics and reads every topic's partition count. Waits up
    /// to `wait` for the broker to answer.
    pub async fn connect(options: KafkaOptions, wait: Duration) -> Result<Self, BusError> {
        let options = Arc::new(options);
        let admin: Arc<AdminClient<DefaultClientContext>> = {
            let mut c = options.client_config();
            options.apply_settings(&mut c);
            Arc::new(c.create().map_err(kafka_err)?)
        };
        let deadline = Instant::now() + wait;
        let new_topics: Vec<(String, i32)> = Topic::ALL
            .into_iter()
            .map(|t| {
                let n = options.partitions.get(&t).copied().unwrap_or(1).max(1);
                (options.topic_name(t), n as i32)
            })
            .collect();
        loop {
            // A quick metadata request first: an unreachable broker is reported (and retried)
            // every couple of seconds, not once per admin request timeout.
            let probe = {
                let admin = admin.clone();
                tokio::task::spawn_blocking(move || {
                    admin.inner().fetch_metadata(None, PROBE_TIMEOUT).map(drop)
                })
                .await
                .map_err(|e| kafka_err(e.to_string()))?
            };
            if let Err(e) = probe {
                if Instant::now() >= deadline {
                    return Err(kafka_err(format!("broker unreachable: {e}")));
                }
                tracing::warn!(brokers = %options.brokers, error = %e, "broker unreachable; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            let specs: Vec<NewTopic> = new_topics
                .iter()
                .map(|(name, n)| {
                    NewTopic::new(name, *n, TopicReplication::Fixed(options.replication))
                })
                .collect();
            let opts = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
            match admin.create_topics(&specs, &opts).await {
                Ok(results) => {
                    let failed: Vec<String> = results
                        .into_iter()
                        .filter_map(|r| match r {
                            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => None,
                            Err((name, code)) => Some(format!("{name}: {code}")),
                        })
                        .collect();
                    if failed.is_empty() {
                        break;
                    }
                    tracing::warn!(brokers = %options.brokers, failed = %failed.join(", "), "topics not created yet; retrying");
                    if Instant::now() >= deadline {
                        return Err(kafka_err(format!(
                            "cannot create topics: {}",
                            failed.join(", ")
                        )));
                    }
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(kafka_err(format!("cannot create topics: {e}")));
                }
                Err(e) => {
                    tracing::warn!(brokers = %options.brokers, error = %e, "broker not answering yet; retrying")
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let meta: BaseConsumer = {
            let mut c = options.client_config();
            c.set("group.id", "clicktrail-metadata")
                .set("enable.auto.commit", "false");
            options.apply_settings(&mut c);
            c.create().map_err(kafka_err)?
        };
        let meta = Arc::new(meta);
        let partitions = {
            let meta = meta.clone();
            let options = options.clone();
            tokio::task::spawn_blocking(move || -> Result<HashMap<Topic, u32>, BusError> {
                let mut out = HashMap::new();
                for topic in Topic::ALL {
                    loop {
                        let n = topic_partitions(&meta, &options.topic_name(topic));
                        match n {
                            Ok(n) if n > 0 => {
                                out.insert(topic, n);
                                break;
                            }
                            _ if Instant::now() >= deadline => {
                                return Err(kafka_err(format!(
                                    "topic {topic} has no partitions after creation"
                                )));
                            }
                            _ => std::thread::sleep(Duration::from_millis(200)),
                        }
                    }
                }
                Ok(out)
            })
            .await
            .map_err(kafka_err)??
        };
        tracing::info!(brokers = %options.brokers, ?partitions, "connected to kafka");
        Ok(KafkaBus {
            options,
            partitions: Arc::new(partitions),
            meta,
            offset_readers: Arc::default(),
        })
    }

    fn offset_reader(&self, group: &str) -> Result<Arc<BaseConsumer>, BusError> {
        let mut readers = self.offset_readers.lock();
        if let Some(c) = readers.get(group) {
            return Ok(c.clone());
        }
        let c: Arc<BaseConsumer> =
            Arc::new(self.consumer_config(group).create().map_err(kafka_err)?);
        readers.insert(group.to_string(), c.clone());
        Ok(c)
    }

    /// The Kafka group a member of `group` consuming `topic` joins. Each topic has a group of
    /// its own: a rebalance on one topic never stops the other, and every member of a group
    /// has the same subscription (brokers' coordinators do not all handle mixed ones well).
    pub fn group_id(group: &str, topic: Topic) -> String {
        format!("{group}.{}", topic.name())
    }

    /// Partitions of a topic on the broker.
    pub fn partitions(&self, topic: Topic) -> u32 {
        self.partitions.get(&topic).copied().unwrap_or(1)
    }

    /// Every topic's partition count on the broker.
    pub fn partition_counts(&self) -> HashMap<Topic, u32> {
        self.partitions.as_ref().clone()
    }

    /// A producer; with a spool, `clicks` and `events` stay durable while the broker is
    /// unreachable (start [`spool::replay`] next to it).
    pub fn producer(&self, spool: Option<Arc<Spool>>) -> Result<KafkaProducer, BusError> {
        let o = &self.options;
        let mut c = o.client_config();
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", o.linger.as_millis().to_string())
            .set("batch.num.messages", o.batch_records.to_string())
            .set(
                "message.timeout.ms",
                o.delivery_timeout.as_millis().to_string(),
            )
            .set(
                "queue.buffering.max.messages",
                PRODUCER_QUEUE_MESSAGES.to_string(),
            );
        o.apply_settings(&mut c);
        KafkaProducer::new(
            c,
            Topic::ALL
                .into_iter()
                .map(|t| (t, o.topic_name(t)))
                .collect(),
            self.partitions.clone(),
            spool,
            o.delivery_timeout + Duration::from_secs(5),
        )
    }

    fn consumer_config(&self, group: &str) -> ClientConfig {
        let o = &self.options;
        let mut c = o.client_config();
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "session.timeout.ms",
                o.session_timeout.as_millis().to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                (o.session_timeout.as_millis() / 4)
                    .clamp(100, 3000)
                    .to_string(),
            )
            .set("partition.assignment.strategy", "range")
            .set("fetch.wait.max.ms", "100");
        o.apply_settings(&mut c);
        c
    }
}

fn topic_partitions(meta: &BaseConsumer, name: &str) -> Result<u32, BusError> {
    let md = meta
        .fetch_metadata(Some(name), REQUEST_TIMEOUT)
        .map_err(kafka_err)?;
    Ok(md
        .topics()
        .iter()
        .find(|t| t.name() == name && t.error().is_none())
        .map(|t| t.partitions().len() as u32)
        .unwrap_or(0))
}

#[async_trait]
impl ConsumerFactory for KafkaBus {
    async fn consumer(&self, group: &str, topic: Topic) -> Result<Box<dyn Consumer>, BusError> {
        let mut config = self.consumer_config(&Self::group_id(group, topic));
        if let Some(id) = &self.options.instance_id {
            config.set("group.instance.id", id);
        }
        Ok(Box::new(KafkaConsumer::start(
            config,
            topic,
            self.options.topic_name(topic),
            consumer::Mode::Group,
            self.partitions(topic),
        )?))
    }

    async fn reader(&self, topic: Topic) -> Result<Box<dyn Consumer>, BusError> {
        let config = self.consumer_config("clicktrail-reader");
        Ok(Box::new(KafkaConsumer::start(
            config,
            topic,
            self.options.topic_name(topic),
            consumer::Mode::Reader,
            self.partitions(topic),
        )?))
    }

    async fn end_offsets(&self, topic: Topic) -> Result<Vec<u64>, BusError> {
        let meta = self.meta.clone();
        let n = self.partitions(topic);
        let name = self.options.topic_name(topic);
        tokio::task::spawn_blocking(move || {
            (0..n)
                .map(|p| {
                    meta.fetch_watermarks(&name, p as i32, REQUEST_TIMEOUT)
                        .map(|(_, high)| high.max(0) as u64)
                        .map_err(kafka_err)
                })
                .collect()
        })
        .await
        .map_err(kafka_err)?
    }

    async fn committed(&self, group: &str, topic: Topic) -> Result<Vec<Option<u64>>, BusError> {
        let c = self.offset_reader(&Self::group_id(group, topic))?;
        let n = self.partitions(topic);
        let name = self.options.topic_name(topic);
        tokio::task::spawn_blocking(move || {
            let mut tpl = TopicPartitionList::new();
            for p in 0..n {
                tpl.add_partition(&name, p as i32);
            }
            let got = c
                .committed_offsets(tpl, REQUEST_TIMEOUT)
                .map_err(kafka_err)?;
            Ok((0..n)
                .map(|p| match got.find_partition(&name, p as i32) {
                    Some(e) => match e.offset() {
                        Offset::Offset(o) if o >= 0 => Some(o as u64),
                        _ => None,
                    },
                    None => None,
                })
                .collect())
        })
        .await
        .map_err(kafka_err)?
    }
}

#[async_trait]
impl TailReader for KafkaBus {
    async fn tail(&self, topic: Topic, n: usize) -> Result<Vec<Message>, BusError> {
        let config = self.consumer_config("clicktrail-tail");
        let parts = self.partitions(topic);
        let name = self.options.topic_name(topic);
        tokio::task::spawn_blocking(move || {
            let c: BaseConsumer = config.create().map_err(kafka_err)?;
            let mut tpl = TopicPartitionList::new();
            let mut ends = HashMap::new();
            for p in 0..parts as i32 {
                let (low, high) = c
                    .fetch_watermarks(&name, p, REQUEST_TIMEOUT)
                    .map_err(kafka_err)?;
                if high > low {
                    let from = (high - n as i64).max(low);
                    tpl.add_partition_offset(&name, p, Offset::Offset(from))
                        .map_err(kafka_err)?;
                    ends.insert(p, high);
                }
            }
            let mut out = Vec::new();
            if ends.is_empty() {
                return Ok(out);
            }
            c.assign(&tpl).map_err(kafka_err)?;
            let deadline = Instant::now() + REQUEST_TIMEOUT;
            while !ends.is_empty() && Instant::now() < deadline {
                match c.poll(Duration::from_millis(100)) {
                    Some(Ok(m)) => {
                        let p = m.partition();
                        if m.offset() + 1 >= ends.get(&p).copied().unwrap_or(0) {
                            ends.remove(&p);
                        }
                        out.push(consumer::to_message(topic, &m));
                    }
                    Some(Err(e)) => tracing::debug!(error = %e, "tail read"),
                    None => {}
                }
            }
            out.sort_by_key(|m| m.timestamp_ms);
            let skip = out.len().saturating_sub(n);
            Ok(out.split_off(skip))
        })
        .await
        .map_err(kafka_err)?
    }
}
