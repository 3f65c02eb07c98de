//! The processor's hot paths: bloom dedup, the attribution step, the events state's memory of
//! event ids at 10 million ids, and the whole chain fed from memory (records appended to a real
//! embedded log, processed into a real Parquet store). With `--features mimalloc` the bench runs
//! on the `clicktrail` binary's allocator instead of the system's.

use chrono::Utc;
use clicktrail_benches::EventIdFill;
use clicktrail_bus::embedded::{EmbeddedLog, LogOptions};
use clicktrail_bus::{CatalogView, ConsumerFactory, Producer};
use clicktrail_processor::attribution::attribute;
use clicktrail_processor::dedup::{ClickDedup, DedupOptions};
use clicktrail_processor::events::IdWindows;
use clicktrail_processor::pipeline::PartitionState;
use clicktrail_processor::{ProcessorConfig, ProcessorDeps};
use clicktrail_schemas::Topic;
use clicktrail_schemas::wire::{Action, ClickRecord, EventRecord};
use clicktrail_store::parquet::ParquetStore;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// With `--features mimalloc`, the allocator the `clicktrail` binary runs with.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn dedup(c: &mut Criterion) {
    let mut g = c.benchmark_group("dedup");
    g.throughput(Throughput::Elements(1));
    let mut d = ClickDedup::new(0, DedupOptions::default());
    let at = Utc::now().timestamp_millis();
    let visitors: Vec<String> = (0..100_000).map(|i| format!("{i:032x}")).collect();
    let mut i = 0usize;
    g.bench_function("check_and_insert", |b| {
        b.iter(|| {
            i = (i + 1) % visitors.len();
            d.check_and_insert(&visitors[i], "lnk_a", at)
        })
    });
    g.finish();
}

fn purchase(click_id: String) -> EventRecord {
    let now = Utc::now();
    EventRecord {
        v: 1,
        event_id: "e".into(),
        advertiser_id: "adv_bench".into(),
        action: Action::Purchase,
        custom_name: None,
        occurred_at: now,
        received_at: now,
        value_minor: Some(12990),
        currency: "EUR".into(),
        order_id: Some("o".into()),
        customer_id: Some("c".into()),
        properties: None,
        coupon_code: Some("anna10".into()),
        ref_code: None,
        click_id: Some(click_id),
        landing_url: Some("https://shop.example/p?ref_code=bench-b".into()),
        referrer: None,
        sub_id: None,
        source: Default::default(),
        uncounted: false,
    }
}

fn attribution(c: &mut Criterion) {
    let catalog = clicktrail_benches::catalog();
    let keys = clicktrail_benches::keys();
    let event = purchase(keys.mint("lnk_b", Utc::now().timestamp_millis() - 60_000, [3; 8]));
    let mut g = c.benchmark_group("attribution");
    g.throughput(Throughput::Elements(1));
    g.bench_function("coupon_click_and_landing_url", |b| {
        b.iter(|| attribute(&event, &catalog, &keys, None))
    });
    g.finish();
}

/// Event ids one partition remembers for the memory figures: 10 million under `cargo bench`,
/// 100,000 when the bench runs once in test mode (`cargo test --bench`).
fn remembered_ids() -> u64 {
    if std::env::args().any(|a| a == "--bench") {
        10_000_000
    } else {
        100_000
    }
}

/// One partition's events state holding `n` event ids received over the 7-day window
/// (167 hours, so none has expired), then new ids and duplicates checked against it. New ids
/// keep arriving at the same hourly rate, so as many expire as arrive and the state stays at
/// `n` ids.
fn event_ids(c: &mut Criterion) {
    let n = remembered_ids();
    let (mut fill, filled, rss_growth) = EventIdFill::filled(n);
    let bytes = fill.state.memory_bytes();
    println!(
        "event ids: {} remembered in one partition, filled at {:.0} ids/s; memory_bytes {:.1} MB, \
         {:.1} bytes per id; RSS growth {}",
        fill.state.event_ids(),
        n as f64 / filled.as_secs_f64(),
        bytes as f64 / 1e6,
        bytes as f64 / n as f64,
        rss_growth.map_or("unknown".to_string(), |g| format!(
            "{:.1} MB, {:.1} bytes per id",
            g as f64 / 1e6,
            g as f64 / n as f64
        )),
    );

    let mut g = c.benchmark_group("event_ids");
    g.throughput(Throughput::Elements(1));
    let mut next = n;
    g.bench_function("new_id_in_a_full_window", |b| {
        b.iter(|| {
            next += 1;
            fill.check(next)
        })
    });
    // Copies of the latest half of the ids, all within the window.
    let mut k = 0u64;
    g.bench_function("duplicate_in_a_full_window", |b| {
        b.iter(|| {
            k = (k + 1) % (n / 2);
            fill.check(next - k)
        })
    });
    g.finish();
    println!(
        "event ids after the runs: {} remembered, memory_bytes {:.1} MB",
        fill.state.event_ids(),
        fill.state.memory_bytes() as f64 / 1e6
    );
}

/// Appends `n` clicks and `n` events, runs the processor until both are stored, and returns
/// the processing time.
fn chain(rt: &tokio::runtime::Runtime, n: usize) -> Duration {
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(&dir.path().join("log.redb"), LogOptions::default()).unwrap();
        let keys = clicktrail_benches::keys();
        let now = Utc::now();
        let mut clicks = Vec::with_capacity(n);
        let mut events = Vec::with_capacity(n);
        for i in 0..n {
            let token = keys.mint("lnk_a", now.timestamp_millis(), (i as u64).to_be_bytes());
            let click = ClickRecord {
                v: 1,
                click_id: token.clone(),
                at: now,
                link_id: "lnk_a".into(),
                code: "bench-a".into(),
                sub_id: None,
                advertiser_id: "adv_bench".into(),
                campaign_id: "cmp_bench".into(),
                influencer_id: "inf_a".into(),
                visitor_key: format!("{:032x}", i % (n / 2).max(1)),
                user_agent: "Mozilla/5.0".into(),
                device_class: "desktop".into(),
                referrer: None,
                ip_prefix: "203.0.113.0/24".into(),
                country: None,
                is_bot: false,
                bot_reason: None,
                not_live: false,
                promo: None,
            };
            clicks.push((
                click.visitor_key.clone().into_bytes(),
                serde_json::to_vec(&click).unwrap(),
            ));
            let mut e = purchase(token);
            e.event_id = format!("e{i}");
            e.order_id = Some(format!("o{i}"));
            e.customer_id = Some(format!("c{i}"));
            events.push((e.key().into_bytes(), serde_json::to_vec(&e).unwrap()));
        }
        log.send_batch(Topic::Clicks, clicks).await.unwrap();
        log.send_batch(Topic::Events, events).await.unwrap();
        let view = CatalogView::new();
        view.apply(
            &clicktrail_benches::catalog_changes()
                .into_iter()
                .enumerate()
                .map(|(i, c)| (i as u64, Some(c)))
                .collect::<Vec<_>>(),
        );
        let store = ParquetStore::open(&dir.path().join("store")).unwrap();
        let stop = CancellationToken::new();
        let consumers: Arc<dyn ConsumerFactory> = Arc::new(log.clone());
        let started = Instant::now();
        let task = tokio::spawn(clicktrail_processor::run(
            ProcessorConfig {
                group: "bench".into(),
                batch_max_records: 5000,
                batch_max_wait: Duration::from_millis(20),
                click_keys: keys,
                dedup: DedupOptions::default(),
                event_id_window: IdWindows::default().event_id,
                order_window: IdWindows::default().order,
                outbound: clicktrail_processor::outbound::OutboundSettings::new(
                    "bench",
                    "bench-signing-key",
                ),
            },
            ProcessorDeps {
                consumers: consumers.clone(),
                producer: Arc::new(log.clone()),
                store: Arc::new(store),
                catalog: view,
            },
            stop.clone(),
        ));
        loop {
            let mut lag = 0;
            for t in Topic::PROCESSED {
                let ends = consumers.end_offsets(t).await.unwrap();
                let committed = consumers.committed("bench", t).await.unwrap();
                for (end, c) in ends.iter().zip(committed) {
                    lag += end - c.unwrap_or(0);
                }
            }
            if lag == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let elapsed = started.elapsed();
        stop.cancel();
        task.await.unwrap().unwrap();
        elapsed
    })
}

fn processor_chain(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let n = 20_000;
    let mut g = c.benchmark_group("processor_chain");
    g.sample_size(10);
    g.throughput(Throughput::Elements(2 * n as u64));
    g.bench_function("clicks_and_events_to_parquet", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| chain(&rt, n)).sum())
    });
    g.finish();
}

criterion_group!(benches, dedup, attribution, event_ids, processor_chain);
criterion_main!(benches);
