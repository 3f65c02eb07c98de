//! The embedded log's hot paths, as the ingest front end and the processor use them: batches of
//! signed events appended by concurrent requests (each answered once its group commit is
//! fsynced), single clicks enqueued by the redirector, and a consumer group reading a partition
//! back in polls of 5,000 records.

use clicktrail_bus::embedded::{EmbeddedLog, LogOptions};
use clicktrail_bus::{ConsumerEvent, ConsumerFactory, Producer};
use clicktrail_schemas::Topic;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::time::{Duration, Instant};

/// Records per append request, as a batched ingest request of the load harness sends.
const BATCH: usize = 1_000;
/// Append requests in flight at once.
const WRITERS: usize = 8;
/// Records appended per measured iteration.
const RECORDS: usize = 40_000;

/// A record of the size of an encoded purchase: a 24-byte key and a 400-byte payload.
fn record(i: usize) -> (Vec<u8>, Vec<u8>) {
    let key = format!("adv_bench/customer-{:08}", i % 5_000).into_bytes();
    let mut payload = format!("{{\"event_id\":\"e{i}\",").into_bytes();
    payload.resize(400, b' ');
    (key, payload)
}

fn open(dir: &std::path::Path) -> EmbeddedLog {
    EmbeddedLog::open(&dir.join("log.redb"), LogOptions::default()).unwrap()
}

/// Appends [`RECORDS`] records in requests of [`BATCH`] from [`WRITERS`] tasks at once; returns
/// the time until every request was answered.
async fn append_batches(log: &EmbeddedLog) -> Duration {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = w * BATCH;
            while i < RECORDS {
                let batch = (i..i + BATCH).map(record).collect();
                log.send_batch(Topic::Events, batch).await.unwrap();
                i += WRITERS * BATCH;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    started.elapsed()
}

/// Reads every record of the events topic back through a consumer group, 5,000 per poll.
async fn read_all(log: &EmbeddedLog) -> Duration {
    let mut c = log.consumer("bench", Topic::Events).await.unwrap();
    let started = Instant::now();
    let mut seen = 0;
    while seen < RECORDS {
        if let ConsumerEvent::Records(r) = c.poll(5_000, Duration::from_secs(1)).await.unwrap() {
            seen += r.len();
        }
    }
    started.elapsed()
}

/// Enqueues [`RECORDS`] records one per request, as the redirector does, then flushes.
async fn enqueue_all(log: &EmbeddedLog) -> Duration {
    let started = Instant::now();
    for i in 0..RECORDS {
        let (k, v) = record(i);
        while log.enqueue(Topic::Clicks, k.clone(), v.clone()).is_err() {
            tokio::task::yield_now().await;
        }
    }
    log.flush().await.unwrap();
    started.elapsed()
}

/// Runs `measure` on a fresh log per iteration and sums the times it reports.
fn on_fresh_logs<F, Fut>(rt: &tokio::runtime::Runtime, iters: u64, measure: F) -> Duration
where
    F: Fn(EmbeddedLog) -> Fut,
    Fut: std::future::Future<Output = Duration>,
{
    (0..iters)
        .map(|_| {
            rt.block_on(async {
                let dir = tempfile::tempdir().unwrap();
                measure(open(dir.path())).await
            })
        })
        .sum()
}

fn embedded_log(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut g = c.benchmark_group("embedded_log");
    g.sample_size(10);
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.bench_function("append_batches_of_1000", |b| {
        b.iter_custom(|iters| {
            on_fresh_logs(&rt, iters, |log| async move { append_batches(&log).await })
        })
    });
    g.bench_function("enqueue_single_clicks", |b| {
        b.iter_custom(|iters| {
            on_fresh_logs(&rt, iters, |log| async move { enqueue_all(&log).await })
        })
    });
    g.bench_function("consume_in_polls_of_5000", |b| {
        b.iter_custom(|iters| {
            on_fresh_logs(&rt, iters, |log| async move {
                append_batches(&log).await;
                read_all(&log).await
            })
        })
    });
    g.finish();
}

criterion_group!(benches, embedded_log);
criterion_main!(benches);
