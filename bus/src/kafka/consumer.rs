//! A Kafka consumer behind the [`Consumer`] interface.
//!
//! One thread owns the polling: it forwards records to the async side in offset order and
//! pauses fetching while the async side falls behind. Rebalances run on that thread inside
//! librdkafka's callback, which hands them to the async side and waits for its answer:
//! - assigned partitions: the caller restores their state from its checkpoints and seeks;
//!   the assignment starts at those positions (else the group's committed offsets, else the
//!   beginning);
//! - revoked partitions: every record of them was forwarded before the revocation, so the
//!   caller writes and commits what it holds for them before answering; only then does the
//!   group move them to another member.

use super::kafka_err;
use crate::{BusError, Consumer, ConsumerEvent, Message};
use async_trait::async_trait;
use clicktrail_schemas::Topic;
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext};
use rdkafka::message::BorrowedMessage;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc as blocking;
use std::time::Duration;
use tokio::sync::mpsc;

/// Records forwarded but not yet taken before fetching pauses.
const MAX_BUFFERED: usize = 20_000;

/// How partitions are obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// A member of a consumer group: the group assigns partitions.
    Group,
    /// Every partition, outside any group.
    Reader,
}

enum Event {
    Record(Message),
    Assigned(Vec<u32>, blocking::Sender<HashMap<u32, u64>>),
    Revoked(Vec<u32>, blocking::Sender<HashMap<u32, u64>>),
}

/// An answer owed to the polling thread.
struct Owed {
    reply: blocking::Sender<HashMap<u32, u64>>,
    /// Partitions the caller may seek (only after an assignment).
    assigned: Vec<u32>,
}

struct Shared {
    events: mpsc::UnboundedSender<Event>,
    buffered: AtomicUsize,
    paused: AtomicBool,
    stop: AtomicBool,
}

impl Shared {
    /// Hands a rebalance to the async side and waits for its answer (empty if it is gone).
    fn hand_over(
        &self,
        make: impl FnOnce(blocking::Sender<HashMap<u32, u64>>) -> Event,
    ) -> HashMap<u32, u64> {
        let (tx, rx) = blocking::channel();
        if self.events.send(make(tx)).is_err() {
            return HashMap::new();
        }
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(seeks) => return seeks,
                Err(blocking::RecvTimeoutError::Disconnected) => return HashMap::new(),
                Err(blocking::RecvTimeoutError::Timeout) if self.stop.load(Ordering::SeqCst) => {
                    return HashMap::new();
                }
                Err(blocking::RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

struct GroupContext {
    shared: Arc<Shared>,
    /// The topic's name on the broker.
    topic: String,
}

impl ClientContext for GroupContext {}

/// The partitions of `topic` in a rebalance's list; any other topic's (which a member never
/// subscribed to) are left out and reported.
fn partitions_of(tpl: &TopicPartitionList, topic: &str) -> Vec<u32> {
    let mut v = Vec::new();
    for e in tpl.elements() {
        if e.topic() == topic {
            v.push(e.partition() as u32);
        } else {
            tracing::error!(%topic, other = e.topic(), partition = e.partition(), "rebalance names a topic this consumer did not subscribe to; ignored");
        }
    }
    v.sort();
    v
}

fn assign_at(
    base: &BaseConsumer<GroupContext>,
    topic: &str,
    parts: &[u32],
    seeks: &HashMap<u32, u64>,
    default: Offset,
) {
    let mut tpl = TopicPartitionList::new();
    for p in parts {
        let offset = seeks
            .get(p)
            .map(|o| Offset::Offset(*o as i64))
            .unwrap_or(default);
        if let Err(e) = tpl.add_partition_offset(topic, *p as i32, offset) {
            tracing::error!(partition = p, error = %e, "bad start position");
        }
    }
    if let Err(e) = base.assign(&tpl) {
        tracing::error!(error = %e, "kafka assign failed");
    }
}

impl ConsumerContext for GroupContext {
    fn commit_callback(&self, result: rdkafka::error::KafkaResult<()>, _: &TopicPartitionList) {
        if let Err(e) = result {
            // Superseded by the next commit; lag monitoring sees the older position meanwhile.
            tracing::warn!(topic = %self.topic, error = %e, "offset commit failed");
        }
    }

    fn rebalance(
        &self,
        base: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let topic = self.topic.as_str();
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let parts = partitions_of(tpl, topic);
                tracing::info!(%topic, ?parts, "partitions assigned");
                let seeks = self
                    .shared
                    .hand_over(|tx| Event::Assigned(parts.clone(), tx));
                self.shared.paused.store(false, Ordering::SeqCst);
                assign_at(base, topic, &parts, &seeks, Offset::Stored);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let parts = partitions_of(tpl, topic);
                tracing::info!(%topic, ?parts, "partitions revoked");
                self.shared
                    .hand_over(|tx| Event::Revoked(parts.clone(), tx));
                if let Err(e) = base.unassign() {
                    tracing::error!(error = %e, "kafka unassign failed");
                }
            }
            other => {
                tracing::error!(error = ?other, "rebalance failed; dropping the assignment");
                let parts = partitions_of(tpl, topic);
                self.shared.hand_over(|tx| Event::Revoked(parts, tx));
                let _ = base.unassign();
            }
        }
    }
}

pub(super) fn to_message<M: rdkafka::message::Message>(topic: Topic, m: &M) -> Message {
    Message {
        topic,
        partition: m.partition() as u32,
        offset: m.offset() as u64,
        key: m.key().unwrap_or_default().to_vec(),
        payload: m.payload().unwrap_or_default().to_vec(),
        timestamp_ms: m.timestamp().to_millis().unwrap_or(0),
    }
}

/// The async side of one consumer.
pub(super) struct KafkaConsumer {
    topic: Topic,
    name: String,
    mode: Mode,
    base: Arc<BaseConsumer<GroupContext>>,
    shared: Arc<Shared>,
    events: mpsc::UnboundedReceiver<Event>,
    /// An event taken while filling a batch, returned by the next poll.
    held: Option<Event>,
    owed: Option<Owed>,
    seeks: HashMap<u32, u64>,
    /// The polling thread, joined on drop so that the consumer is closed (and has left its
    /// group) by the time the drop returns, not whenever the thread gets to it.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl KafkaConsumer {
    pub(super) fn start(
        config: ClientConfig,
        topic: Topic,
        name: String,
        mode: Mode,
        partitions: u32,
    ) -> Result<Self, BusError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            events: tx,
            buffered: AtomicUsize::new(0),
            paused: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let base: BaseConsumer<GroupContext> = config
            .create_with_context(GroupContext {
                shared: shared.clone(),
                topic: name.clone(),
            })
            .map_err(kafka_err)?;
        let base = Arc::new(base);
        if mode == Mode::Group {
            base.subscribe(&[name.as_str()]).map_err(kafka_err)?;
        }
        let (thread_base, thread_shared, thread_name) =
            (base.clone(), shared.clone(), name.clone());
        let thread = std::thread::Builder::new()
            .name(format!("kafka-{}", topic.name()))
            .spawn(move || {
                poll_loop(
                    thread_base,
                    thread_shared,
                    topic,
                    &thread_name,
                    mode,
                    partitions,
                )
            })
            .map_err(kafka_err)?;
        Ok(KafkaConsumer {
            topic,
            name,
            mode,
            base,
            shared,
            events: rx,
            held: None,
            owed: None,
            seeks: HashMap::new(),
            thread: Some(thread),
        })
    }

    fn settle(&mut self) {
        if let Some(owed) = self.owed.take() {
            let _ = owed.reply.send(std::mem::take(&mut self.seeks));
        }
    }

    fn take(&mut self, event: Event) -> Result<ConsumerEvent, Vec<Message>> {
        match event {
            Event::Record(m) => {
                self.shared.buffered.fetch_sub(1, Ordering::SeqCst);
                Err(vec![m])
            }
            Event::Assigned(parts, reply) => {
                self.owed = Some(Owed {
                    reply,
                    assigned: parts.clone(),
                });
                Ok(ConsumerEvent::Assigned(parts))
            }
            Event::Revoked(parts, reply) => {
                self.owed = Some(Owed {
                    reply,
                    assigned: Vec::new(),
                });
                Ok(ConsumerEvent::Revoked(parts))
            }
        }
    }
}

fn poll_loop(
    base: Arc<BaseConsumer<GroupContext>>,
    shared: Arc<Shared>,
    topic: Topic,
    name: &str,
    mode: Mode,
    partitions: u32,
) {
    if mode == Mode::Reader {
        let parts: Vec<u32> = (0..partitions).collect();
        let seeks = shared.hand_over(|tx| Event::Assigned(parts.clone(), tx));
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        assign_at(&base, name, &parts, &seeks, Offset::Beginning);
    }
    let mut last_error = None::<String>;
    while !shared.stop.load(Ordering::SeqCst) {
        let buffered = shared.buffered.load(Ordering::SeqCst);
        let paused = shared.paused.load(Ordering::SeqCst);
        if !paused && buffered >= MAX_BUFFERED {
            if let Ok(a) = base.assignment()
                && base.pause(&a).is_ok()
            {
                shared.paused.store(true, Ordering::SeqCst);
            }
        } else if paused
            && buffered < MAX_BUFFERED / 2
            && let Ok(a) = base.assignment()
            && base.resume(&a).is_ok()
        {
            shared.paused.store(false, Ordering::SeqCst);
        }
        match base.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                last_error = None;
                forward(&shared, topic, &m);
            }
            Some(Err(e)) => {
                let text = e.to_string();
                if last_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(%topic, error = %text, "kafka consumer");
                    last_error = Some(text);
                }
            }
            None => {}
        }
    }
    // The async side's handle is the last one: dropping it closes the consumer, which leaves
    // the group (its revocation sees `stop` and does not wait for an answer).
}

fn forward(shared: &Shared, topic: Topic, m: &BorrowedMessage<'_>) {
    shared.buffered.fetch_add(1, Ordering::SeqCst);
    if shared
        .events
        .send(Event::Record(to_message(topic, m)))
        .is_err()
    {
        shared.stop.store(true, Ordering::SeqCst);
    }
}

impl Drop for KafkaConsumer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.settle();
        // At most one poll interval, or one wait in a rebalance hand-over.
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[async_trait]
impl Consumer for KafkaConsumer {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<ConsumerEvent, BusError> {
        self.settle();
        let first = match self.held.take() {
            Some(e) => e,
            None => match tokio::time::timeout(wait, self.events.recv()).await {
                Ok(Some(e)) => e,
                Ok(None) => return Err(BusError::Closed),
                Err(_) => return Ok(ConsumerEvent::Records(Vec::new())),
            },
        };
        let mut records = match self.take(first) {
            Ok(event) => return Ok(event),
            Err(records) => records,
        };
        while records.len() < max {
            match self.events.try_recv() {
                Ok(Event::Record(m)) => {
                    self.shared.buffered.fetch_sub(1, Ordering::SeqCst);
                    records.push(m);
                }
                Ok(other) => {
                    self.held = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        Ok(ConsumerEvent::Records(records))
    }

    fn seek(&mut self, partition: u32, offset: u64) -> Result<(), BusError> {
        match &self.owed {
            Some(owed) if owed.assigned.contains(&partition) => {
                self.seeks.insert(partition, offset);
                Ok(())
            }
            _ => Err(BusError::Invalid(format!(
                "partition {partition} of {} can only be positioned right after it is assigned",
                self.topic
            ))),
        }
    }

    async fn commit(&mut self, offsets: &[(u32, u64)]) -> Result<(), BusError> {
        if self.mode == Mode::Reader {
            return Err(BusError::Invalid(
                "a reader outside a group cannot commit".into(),
            ));
        }
        if offsets.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for (p, o) in offsets {
            tpl.add_partition_offset(&self.name, *p as i32, Offset::Offset(*o as i64))
                .map_err(kafka_err)?;
        }
        // Sent without waiting for the answer: a synchronous commit can wait on a rebalance
        // that is itself waiting for this side to settle a revocation. The store's checkpoint
        // is what a partition resumes from; the answer arrives in `commit_callback`.
        self.base.commit(&tpl, CommitMode::Async).map_err(kafka_err)
    }
}
