//! The redirect hot path: code lookup, token mint, click record, enqueue on the real embedded
//! log, 302.

use clicktrail_bus::CatalogView;
use clicktrail_bus::embedded::{EmbeddedLog, LogOptions};
use clicktrail_redirector::{Redirector, RedirectorConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method, Uri, header};
use std::sync::Arc;

fn redirect(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(
        &dir.path().join("log.redb"),
        LogOptions {
            queue_capacity: 4_000_000,
            ..LogOptions::default()
        },
    )
    .unwrap();
    let view = CatalogView::new();
    let changes: Vec<_> = clicktrail_benches::catalog_changes()
        .into_iter()
        .enumerate()
        .map(|(i, c)| (i as u64, Some(c)))
        .collect();
    view.apply(&changes);
    let r = Redirector::new(
        RedirectorConfig {
            click_keys: clicktrail_benches::keys(),
            visitor_salt: "salt".into(),
            trusted_proxies: clicktrail_api::client::TrustedProxies::none(),
            geo_db: None,
            scanner_networks: clicktrail_api::client::AddressRanges::parse(
                clicktrail_redirector::classify::DEFAULT_SCANNER_NETWORKS,
            )
            .unwrap(),
        },
        view,
        Arc::new(log.clone()),
    )
    .unwrap();
    let uri: Uri = "/r/bench-a/insta?utm_source=bench".parse().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(header::USER_AGENT, HeaderValue::from_static("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"));
    headers.insert(
        header::REFERER,
        HeaderValue::from_static("https://instagram.com/"),
    );
    let peer = "203.0.113.9".parse().unwrap();
    let mut g = c.benchmark_group("redirect");
    g.throughput(Throughput::Elements(1));
    g.bench_function("handle_302", |b| {
        b.iter(|| {
            let resp = r.handle(&Method::GET, &uri, &headers, peer);
            assert_eq!(resp.status(), 302);
            resp
        })
    });
    let missing: Uri = "/r/unknown-code".parse().unwrap();
    g.bench_function("handle_404", |b| {
        b.iter(|| r.handle(&Method::GET, &missing, &headers, peer))
    });
    g.finish();
}

criterion_group!(benches, redirect);
criterion_main!(benches);
