//! The writer task, the only writer of the log's records: it group-commits appends and runs
//! retention passes one chunk at a time between them, so an append waits for at most one
//! retention transaction.

use super::retention::{self, BYTES, Limits, Pass, RetentionReport};
use super::{OFFSETS, Shared, block, partition_table, storage, table_name};
use crate::{BusError, Delivery};
use clicktrail_schemas::Topic;
use clicktrail_schemas::metric_names::bus::{LOG_COMMITS, RECORDS_APPENDED};
use clicktrail_schemas::topics::partition_for;
use redb::ReadableTable;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Interval, MissedTickBehavior};

/// Most append requests committed in one transaction.
const MAX_BATCH: usize = 4096;

/// What the writer is asked to do.
pub(super) enum Request {
    /// Append records, flush, or close.
    Append(WriteReq),
    /// Run a retention pass judging ages against `now_ms` and answer with what it removed.
    Retain {
        now_ms: i64,
        reply: oneshot::Sender<Result<RetentionReport, BusError>>,
    },
}

/// Records to append (none for a flush), group positions to commit, or the request to close.
pub(super) struct WriteReq {
    /// Stop the writer once this request is answered.
    pub close: bool,
    pub topic: Topic,
    pub records: Vec<(Vec<u8>, Vec<u8>)>,
    /// Consumer group positions (`offsets` table key, next offset to read) committed in the
    /// same transaction as the appends; a position never moves backwards.
    pub offsets: Vec<(String, u64)>,
    /// `None` for enqueued records; a flush request has no records.
    pub reply: Option<oneshot::Sender<Result<Vec<Delivery>, BusError>>>,
}

/// How the writer batches appends and retains records.
pub(super) struct WriterConfig {
    /// Longest an enqueued record waits for company before its commit.
    pub linger: Duration,
    /// Limits of every retention pass.
    pub limits: Limits,
    /// Time between background retention passes; zero for none.
    pub retention_interval: Duration,
}

/// Runs the writer until it is asked to close or every handle of the log is dropped.
pub(super) async fn run(
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Request>,
    config: WriterConfig,
) {
    let mut ticker = (!config.retention_interval.is_zero()).then(|| {
        let every = config.retention_interval;
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        t.set_missed_tick_behavior(MissedTickBehavior::Delay);
        t
    });
    let mut passes: VecDeque<Pass> = VecDeque::new();
    loop {
        if let Some(mut pass) = passes.pop_front() {
            // A pass is under way: commit what waits, then remove one more chunk.
            let mut batch = Vec::new();
            let disconnected = drain(&mut rx, &mut batch, &mut passes);
            if !batch.is_empty() && serve(&shared, batch).await {
                passes.push_front(pass);
                stop(rx, passes);
                return;
            }
            if disconnected {
                return;
            }
            let shared2 = shared.clone();
            let limits = config.limits;
            let (pass, done) = tokio::task::spawn_blocking(move || {
                let done = retention::step(&shared2, limits, &mut pass);
                (pass, done)
            })
            .await
            .expect("retention task panicked");
            match done {
                Ok(false) => passes.push_front(pass),
                Ok(true) => pass.finish(None),
                Err(e) => {
                    tracing::error!(error = %e, "embedded log retention pass failed");
                    pass.finish(Some(e));
                }
            }
            continue;
        }
        let first = tokio::select! {
            req = rx.recv() => match req {
                None => return,
                Some(Request::Retain { now_ms, reply }) => {
                    passes.push_back(Pass::new(now_ms, Some(reply)));
                    continue;
                }
                Some(Request::Append(req)) => req,
            },
            _ = tick(&mut ticker) => {
                passes.push_back(Pass::new(chrono::Utc::now().timestamp_millis(), None));
                continue;
            }
        };
        let mut batch = vec![first];
        if batch[0].reply.is_none() {
            // Only enqueued records so far: wait for company, but not past the linger interval
            // and not once someone is waiting for an answer.
            let deadline = tokio::time::sleep(config.linger);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = &mut deadline => break,
                    next = rx.recv() => match next {
                        Some(Request::Append(req)) => {
                            let urgent = req.reply.is_some();
                            batch.push(req);
                            if urgent { break; }
                        }
                        Some(Request::Retain { now_ms, reply }) => {
                            passes.push_back(Pass::new(now_ms, Some(reply)));
                        }
                        None => break,
                    },
                }
            }
        }
        drain(&mut rx, &mut batch, &mut passes);
        if serve(&shared, batch).await {
            stop(rx, passes);
            return;
        }
    }
}

/// Waits for the next background pass; never, when there are none.
async fn tick(ticker: &mut Option<Interval>) {
    match ticker {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Moves waiting requests into `batch` (up to [`MAX_BATCH`]) and `passes`, without waiting.
/// Returns whether every handle of the log is gone.
fn drain(
    rx: &mut mpsc::Receiver<Request>,
    batch: &mut Vec<WriteReq>,
    passes: &mut VecDeque<Pass>,
) -> bool {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(Request::Append(req)) => batch.push(req),
            Ok(Request::Retain { now_ms, reply }) => {
                passes.push_back(Pass::new(now_ms, Some(reply)))
            }
            Err(mpsc::error::TryRecvError::Empty) => return false,
            Err(mpsc::error::TryRecvError::Disconnected) => return true,
        }
    }
    false
}

/// Refuses everything still queued after a close, including retention passes not yet finished.
fn stop(mut rx: mpsc::Receiver<Request>, passes: VecDeque<Pass>) {
    rx.close();
    for pass in passes {
        pass.finish(Some(BusError::Closed));
    }
    while let Ok(req) = rx.try_recv() {
        match req {
            Request::Append(req) => {
                if let Some(reply) = req.reply {
                    let _ = reply.send(Err(BusError::Closed));
                }
            }
            Request::Retain { reply, .. } => {
                let _ = reply.send(Err(BusError::Closed));
            }
        }
    }
}

/// Commits a batch of append requests in one transaction and answers each. Returns whether one
/// of them asked the writer to close.
async fn serve(shared: &Arc<Shared>, batch: Vec<WriteReq>) -> bool {
    let closing = batch.iter().any(|r| r.close);
    let shared2 = shared.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let result = commit(&shared2, &batch);
        (batch, result)
    })
    .await;
    let (batch, result) = match joined {
        Ok(done) => done,
        // The runtime is shutting down and the commit never started: nothing was written, and
        // the dropped requests answer their callers with a closed channel.
        Err(e) if e.is_cancelled() => return true,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    match result {
        Ok(deliveries) => {
            shared.version.send_modify(|v| *v += 1);
            for (req, d) in batch.into_iter().zip(deliveries) {
                if let Some(reply) = req.reply {
                    let _ = reply.send(Ok(d));
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "embedded log commit failed");
            for req in batch {
                if let Some(reply) = req.reply {
                    let _ = reply.send(Err(storage(&e)));
                }
            }
        }
    }
    closing
}

/// Appends every record of `batch` in one fsynced transaction, the records of each partition as
/// blocks ([`block::runs`]), and their bytes to their partitions' sizes. Returns the
/// deliveries of each request, in order.
fn commit(shared: &Shared, batch: &[WriteReq]) -> Result<Vec<Vec<Delivery>>, BusError> {
    let now = chrono::Utc::now().timestamp_millis();
    let txn = shared.db.begin_write().map_err(storage)?;
    let mut ends = shared.ends.read().clone();
    let mut out = Vec::with_capacity(batch.len());
    let mut appended: HashMap<Topic, u64> = HashMap::new();
    // Per partition: the offset of its first record in this commit, and the records in order.
    type Run<'a> = (u64, Vec<(&'a [u8], &'a [u8])>);
    let mut runs: HashMap<(Topic, u32), Run<'_>> = HashMap::new();
    for req in batch {
        let n = shared.partitions.get(&req.topic).copied().unwrap_or(1);
        let mut deliveries = Vec::with_capacity(req.records.len());
        for (key, payload) in &req.records {
            let partition = partition_for(key, n);
            let end = ends.entry((req.topic, partition)).or_insert(0);
            let offset = *end;
            *end += 1;
            runs.entry((req.topic, partition))
                .or_insert_with(|| (offset, Vec::new()))
                .1
                .push((key.as_slice(), payload.as_slice()));
            deliveries.push(Delivery {
                partition,
                offset,
                spooled: false,
            });
        }
        *appended.entry(req.topic).or_default() += req.records.len() as u64;
        out.push(deliveries);
    }
    let mut added: Vec<(String, u64)> = Vec::with_capacity(runs.len());
    for ((topic, partition), (first, records)) in &runs {
        let name = table_name(*topic, *partition);
        let mut table = txn.open_table(partition_table(&name)).map_err(storage)?;
        let mut offset = *first;
        let mut bytes = 0;
        for run in block::runs(records) {
            let value = block::encode(now, run);
            table.insert(offset, value.as_slice()).map_err(storage)?;
            offset += run.len() as u64;
            bytes += block::bytes(run);
        }
        added.push((name, bytes));
    }
    if batch.iter().any(|r| !r.offsets.is_empty()) {
        let mut table = txn.open_table(OFFSETS).map_err(storage)?;
        for (k, o) in batch.iter().flat_map(|r| &r.offsets) {
            let current = table.get(k.as_str()).map_err(storage)?.map(|v| v.value());
            if current.is_none_or(|c| *o > c) {
                table.insert(k.as_str(), *o).map_err(storage)?;
            }
        }
    }
    if !added.is_empty() {
        let mut bytes = txn.open_table(BYTES).map_err(storage)?;
        for (name, n) in added {
            let held = bytes
                .get(name.as_str())
                .map_err(storage)?
                .map(|v| v.value());
            bytes
                .insert(name.as_str(), held.unwrap_or(0) + n)
                .map_err(storage)?;
        }
    }
    txn.commit().map_err(storage)?;
    *shared.ends.write() = ends;
    metrics::counter!(LOG_COMMITS).increment(1);
    for (topic, n) in appended {
        metrics::counter!(RECORDS_APPENDED, "topic" => topic.name()).increment(n);
    }
    Ok(out)
}
