//! The dashboard answers over the Parquet store and, when `CLICKTRAIL_TEST_CLICKHOUSE` names a
//! ClickHouse (`scripts/services start`), over ClickHouse too: an advertiser's generated
//! history (600,000 clicks and 200,000 events over 90 days, 50 campaigns, 2,000 influencers'
//! links; 6,000 and 2,000 in test mode) written through the store's writer, and the query
//! service's overview, chart, per-influencer and funnel answers over all 90 days, each
//! requested over HTTP from the query router served on 127.0.0.1, and the CSV export of all the
//! history's events, streamed to its end (every row must arrive), also from a second query
//! service whose memory pool (48 MiB) is small enough that the export's sort spills. Before
//! timing an export the bench makes five, and prints how many were whole, the most they added
//! to the heap (bytes allocated and not freed, counted by the process's allocator) and the
//! longest wait for a first row; an export that was cut is reported and not timed (and fails
//! the bench run once as a test).

use chrono::{DateTime, Duration as Span, Utc};
use clicktrail_benches::Streamed;
use clicktrail_benches::history::{self, DAYS, History, Link};
use clicktrail_bus::CatalogView;
use clicktrail_query::QueryState;
use clicktrail_query::limits::{Limiter, QueryLimits};
use clicktrail_store::Store;
use clicktrail_store::clickhouse::read::ClickHouseSource;
use clicktrail_store::clickhouse::{ClickHouseOptions, ClickHouseStore};
use clicktrail_store::parquet::ParquetStore;
use clicktrail_store::parquet::read::ParquetSource;
use clicktrail_store::source::TableSource;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use peakmem_alloc::{INSTRUMENTED_SYSTEM, PeakMemAlloc, PeakMemAllocTrait};
use std::alloc::System;
use std::sync::Arc;
use std::time::Duration;

/// The system allocator, counting the bytes allocated and not yet freed, so that the bench can
/// print the most an export adds to the heap (the query service runs in this process).
#[global_allocator]
static HEAP: &PeakMemAlloc<System> = &INSTRUMENTED_SYSTEM;

const ADMIN: &str = "bench-admin-token-0123456789";
const ADVERTISER: &str = "adv_scale";

/// Clicks and events of the history: full size under `cargo bench`, a hundredth when the bench
/// runs once in test mode (`cargo test --bench`).
fn sizes() -> (u64, u64) {
    if timing() {
        (600_000, 200_000)
    } else {
        (6_000, 2_000)
    }
}

/// Whether criterion times the benches (`cargo bench`), rather than running each once as a test.
fn timing() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The memory pool of the second query service over each store, in bytes: small enough that the
/// export of the history's events (about 70 MB of rows to sort in two partitions, each sort
/// holding 10 MiB back to merge its spilled runs) spills its sort, as an export of a million
/// events does in the default 256 MiB.
const SMALL_POOL: usize = 48 * 1024 * 1024;

/// Serves the query router over `source` on 127.0.0.1, each request's query in a memory pool of
/// `memory_bytes`; its base URL.
async fn serve(source: Arc<dyn TableSource>, memory_bytes: usize) -> String {
    let router = clicktrail_query::router(QueryState {
        source,
        catalog: CatalogView::new(),
        admin_token: ADMIN.into(),
        limiter: Limiter::new(QueryLimits {
            memory_bytes,
            ..QueryLimits::default()
        }),
        pipeline: None,
        public_url: "http://127.0.0.1".into(),
        producer: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// Writes the history into `store`.
async fn fill(store: &dyn Store, end: DateTime<Utc>) {
    let links = (0..2_000)
        .map(|i| Link {
            id: format!("lnk_{i:05}"),
            code: format!("code-{i:05}"),
            campaign: format!("cmp_{:02}", i % 50),
            influencer: format!("inf_{i:05}"),
        })
        .collect();
    let (clicks, events) = sizes();
    history::write(
        store,
        History::new(links, ADVERTISER.into(), end),
        clicks,
        events,
    )
    .await;
}

fn dashboards(c: &mut Criterion) {
    // The query service's log, as `RUST_LOG` asks (for instance `RUST_LOG=warn` shows why an
    // export stopped).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a scratch directory");
    let end = Utc::now();
    // Each store is served twice: with the default memory pool and with the small one.
    let both = |source: Arc<dyn TableSource>| {
        rt.block_on(async {
            (
                serve(source.clone(), QueryLimits::default().memory_bytes).await,
                serve(source, SMALL_POOL).await,
            )
        })
    };
    let parquet = rt.block_on(async {
        let store = ParquetStore::open(&dir.path().join("store")).expect("a Parquet store");
        fill(&store, end).await;
        ParquetSource::new(store)
    });
    let mut backends = vec![("dashboards", both(Arc::new(parquet)))];
    let mut clickhouse = None;
    if let Ok(url) = std::env::var("CLICKTRAIL_TEST_CLICKHOUSE") {
        let database = format!("ct_bench_{}_{}", std::process::id(), end.timestamp());
        let store = rt.block_on(async {
            let store = ClickHouseStore::open(&ClickHouseOptions {
                url,
                database: database.clone(),
                user: None,
                password: None,
            })
            .await
            .expect("a ClickHouse database");
            fill(&store, end).await;
            store
        });
        let source = Arc::new(ClickHouseSource::new(store.client().clone()));
        backends.push(("dashboards_clickhouse", both(source)));
        clickhouse = Some((store, database));
    }
    let client = reqwest::Client::new();
    let period = [
        ("advertiser_id", ADVERTISER.to_string()),
        ("from", (end - Span::days(DAYS)).to_rfc3339()),
        ("to", (end + Span::hours(1)).to_rfc3339()),
    ];
    for (group, (base, small)) in backends {
        let mut g = c.benchmark_group(group);
        g.sample_size(10).measurement_time(Duration::from_secs(20));
        for (name, path, extra) in [
            ("overview_90_days", "overview", None),
            ("chart_by_day_90_days", "chart", Some(("interval", "day"))),
            ("per_influencer_90_days", "per-influencer", None),
            ("funnel_90_days", "funnel", None),
        ] {
            let url = reqwest::Url::parse_with_params(
                &format!("{base}/api/v1/stats/{path}"),
                period.iter().map(|(k, v)| (*k, v.as_str())).chain(extra),
            )
            .expect("a URL");
            g.bench_function(name, |b| {
                b.iter(|| rt.block_on(clicktrail_benches::get_ok(&client, url.clone(), ADMIN)))
            });
        }
        let events = sizes().1;
        g.throughput(Throughput::Elements(events));
        for (name, base) in [
            ("export_csv_events_90_days", &base),
            ("export_csv_events_90_days_spilling", &small),
        ] {
            let url = reqwest::Url::parse_with_params(
                &format!("{base}/api/v1/export/events.csv"),
                period.iter().map(|(k, v)| (*k, v.as_str())),
            )
            .expect("a URL");
            let export = || {
                rt.block_on(clicktrail_benches::stream_csv(&client, url.clone(), ADMIN))
                    .unwrap_or_else(|e| panic!("the export: {e}"))
            };
            let whole = |s: &Streamed| s.cut.is_none() && s.rows == events;
            // Five exports first, with the heap's peak: a cut one is reported, not timed.
            HEAP.reset_peak_memory();
            let tries: Vec<Streamed> = (0..5).map(|_| export()).collect();
            println!(
                "{group}/{name}: {} of 5 exports of {events} rows whole; heap at most {:.1} MB above its size before them; first row after at most {:.0} ms",
                tries.iter().filter(|s| whole(s)).count(),
                HEAP.get_peak_memory() as f64 / 1e6,
                tries
                    .iter()
                    .map(|s| s.first_byte)
                    .max()
                    .unwrap_or_default()
                    .as_secs_f64()
                    * 1000.0
            );
            if let Some(s) = tries.iter().find(|s| !whole(s)) {
                let why = format!(
                    "{group}/{name}: an export ended after {} rows ({:?})",
                    s.rows, s.cut
                );
                // Run once as a test (`cargo test --bench`) a cut export fails; timed, it is
                // reported (so that an older build can be measured too).
                assert!(timing(), "{why}");
                println!("{why}: not timed");
                continue;
            }
            g.bench_function(name, |b| {
                b.iter(|| {
                    let s = export();
                    assert!(
                        whole(&s),
                        "the export ended after {} rows: {:?}",
                        s.rows,
                        s.cut
                    );
                })
            });
        }
        g.finish();
    }
    if let Some((store, database)) = clickhouse {
        rt.block_on(
            store
                .client()
                .query(&format!("DROP DATABASE {database}"))
                .execute(),
        )
        .expect("the bench's database dropped");
    }
}

criterion_group!(benches, dashboards);
criterion_main!(benches);
