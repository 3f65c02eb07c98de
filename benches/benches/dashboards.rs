//! The dashboard answers over the Parquet store: an advertiser's generated history (600,000
//! clicks and 200,000 events over 90 days, 50 campaigns, 2,000 influencers' links; 6,000 and
//! 2,000 in test mode) written through the store's writer, and the query service's overview,
//! chart, per-influencer and funnel answers over all 90 days, each requested over HTTP from
//! the query router served on 127.0.0.1.

use chrono::{Duration as Span, Utc};
use clicktrail_benches::history::{self, DAYS, History, Link};
use clicktrail_bus::CatalogView;
use clicktrail_query::QueryState;
use clicktrail_query::limits::{Limiter, QueryLimits};
use clicktrail_store::parquet::ParquetStore;
use clicktrail_store::parquet::read::ParquetSource;
use criterion::{Criterion, criterion_group, criterion_main};
use std::sync::Arc;
use std::time::Duration;

const ADMIN: &str = "bench-admin-token-0123456789";
const ADVERTISER: &str = "adv_scale";

/// Clicks and events of the history: full size under `cargo bench`, a hundredth when the bench
/// runs once in test mode (`cargo test --bench`).
fn sizes() -> (u64, u64) {
    if std::env::args().any(|a| a == "--bench") {
        (600_000, 200_000)
    } else {
        (6_000, 2_000)
    }
}

fn dashboards(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a scratch directory");
    let end = Utc::now();
    let base = rt.block_on(async {
        let store = ParquetStore::open(&dir.path().join("store")).expect("a Parquet store");
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
            &store,
            History::new(links, ADVERTISER.into(), end),
            clicks,
            events,
        )
        .await;
        let router = clicktrail_query::router(QueryState {
            source: Arc::new(ParquetSource::new(store)),
            catalog: CatalogView::new(),
            admin_token: ADMIN.into(),
            limiter: Limiter::new(QueryLimits::default()),
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
    });
    let client = reqwest::Client::new();
    let period = [
        ("advertiser_id", ADVERTISER.to_string()),
        ("from", (end - Span::days(DAYS)).to_rfc3339()),
        ("to", (end + Span::hours(1)).to_rfc3339()),
    ];
    let mut g = c.benchmark_group("dashboards");
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
    g.finish();
}

criterion_group!(benches, dashboards);
criterion_main!(benches);
