//! The redirector on its own port over the real embedded log: redirects, health, metrics
//! text, and the click record it appends.

mod common;

use clicktrail_api::Lifecycle;
use clicktrail_api::http::{Ops, Port};
use clicktrail_redirector::{Redirector, RedirectorConfig};
use clicktrail_schemas::token::ClickKeys;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: Mozilla/5.0 (X11; Linux) Test\r\nX-Forwarded-For: 198.51.100.23\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redirector_role_redirects_and_records_the_click() {
    let dir = tempfile::tempdir().unwrap();
    let log = common::log(dir.path());
    // The campaign ended yesterday: its links still redirect, and their clicks are flagged.
    let view = common::catalog(
        "https://dest.example/p?x=1",
        "abc",
        Some(chrono::Utc::now() - chrono::Duration::days(1)),
    );
    let keys = ClickKeys::new(1, b"server-test-key-0123".to_vec());
    let r = Redirector::new(
        RedirectorConfig {
            click_keys: keys.clone(),
            visitor_salt: "s".into(),
            trusted_proxies: clicktrail_api::client::TrustedProxies::everyone(),
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let lifecycle = Lifecycle::new();
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    let server = tokio::spawn(clicktrail_redirector::run(
        r,
        Port {
            listener,
            ops: Ops {
                lifecycle: lifecycle.clone(),
                metrics,
                catalog: None,
                openapi: Arc::new(utoipa::openapi::OpenApi::default()),
            },
            limits: Default::default(),
            rate: clicktrail_api::rate::RateLimiter::new(Default::default()),
            drain: Duration::from_secs(2),
        },
    ));

    let resp = get(addr, "/r/abc/news?utm=1").await;
    assert!(resp.starts_with("HTTP/1.1 302"), "{resp}");
    let location = resp
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .unwrap();
    assert!(
        location.starts_with("https://dest.example/p?x=1&utm=1&sub_id=news&ref_code=abc&click_id="),
        "{location}"
    );
    assert!(get(addr, "/r/nope").await.starts_with("HTTP/1.1 404"));
    assert!(get(addr, "/health/ready").await.starts_with("HTTP/1.1 200"));
    // Each redirect is counted once, by route template and status.
    let metrics = get(addr, "/metrics").await;
    assert!(
        metrics.contains("clicktrail_http_requests_total{route=\"/r/{*rest}\",status=\"302\"} 1\n"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("clicktrail_redirector_requests_total"),
        "{metrics}"
    );

    let clicks = common::clicks(&log).await;
    assert_eq!(clicks.len(), 1);
    let click = &clicks[0];
    assert_eq!(
        (
            click.code.as_str(),
            click.sub_id.as_deref(),
            click.ip_prefix.as_str()
        ),
        ("abc", Some("news"), "198.51.100.0/24")
    );
    assert!(
        click.not_live,
        "the campaign ended yesterday: redirected but flagged"
    );
    assert_eq!(keys.verify(&click.click_id).unwrap().link_id, "lnk");

    lifecycle.shutdown();
    server.await.unwrap().unwrap();
}
