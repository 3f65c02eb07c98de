//! Dashboards at scale: an advertiser with 50 campaigns and 2,000 influencers (one link each),
//! and generated history (by default 30 million clicks and 10 million events over 90 days)
//! written straight into the deployment's store through clicktrail's own store writer, as the
//! processor writes it; then the dashboard's answers over the whole 90 days (overview, chart,
//! per-influencer, funnel), first request and warm, and a CSV export of about a million events
//! streamed, with the query process's resident memory sampled meanwhile.

use crate::raw::with_query;
use crate::runs::Memory;
use crate::setup::{ADMIN, Deployment};
use crate::summary;
use chrono::{DateTime, Duration as Span, Utc};
use clicktrail_benches::history::{self, DAYS, History, Link};
use clicktrail_store::Store;
use futures::StreamExt;
use reqwest::Client;
use serde_json::json;
use std::time::{Duration, Instant};

/// Campaigns of the advertiser.
const CAMPAIGNS: usize = 50;
/// Influencers, each in one campaign with one link.
const INFLUENCERS: usize = 2_000;
/// Warm requests of each dashboard answer (fewer when they take seconds each).
const WARM: usize = 20;

/// The advertiser the history belongs to.
pub struct Catalog {
    pub advertiser: String,
    links: Vec<Link>,
}

/// Creates the advertiser, its campaigns, influencers and links through the admin API (eight
/// requests at a time).
pub async fn catalog(client: &Client, deployment: &Deployment) -> Catalog {
    let started = Instant::now();
    let id = |v: serde_json::Value| v["id"].as_str().expect("an id").to_string();
    let advertiser = id(deployment
        .admin(
            client,
            "/api/v1/admin/advertisers",
            json!({"name": "Scale", "require_signature": false}),
        )
        .await);
    let campaigns: Vec<String> = futures::stream::iter(0..CAMPAIGNS)
        .map(|c| {
            let path = format!("/api/v1/admin/advertisers/{advertiser}/campaigns");
            async move {
                id(deployment
                    .admin(
                        client,
                        &path,
                        json!({"name": format!("Campaign {c}"), "destination_url": "https://shop.example/p"}),
                    )
                    .await)
            }
        })
        .buffered(8)
        .collect()
        .await;
    let links: Vec<Link> = futures::stream::iter(0..INFLUENCERS)
        .map(|i| {
            let campaign = campaigns[i % CAMPAIGNS].clone();
            async move {
                let influencer = id(deployment
                    .admin(
                        client,
                        "/api/v1/admin/influencers",
                        json!({"name": format!("Influencer {i}")}),
                    )
                    .await);
                deployment
                    .admin(
                        client,
                        &format!("/api/v1/admin/campaigns/{campaign}/influencers"),
                        json!({"influencer_id": influencer}),
                    )
                    .await;
                let link = deployment
                    .admin(
                        client,
                        "/api/v1/admin/links",
                        json!({"campaign_id": campaign, "influencer_id": influencer}),
                    )
                    .await;
                Link {
                    id: id(link.clone()),
                    code: link["code"].as_str().expect("a code").to_string(),
                    campaign,
                    influencer,
                }
            }
        })
        .buffered(8)
        .collect()
        .await;
    println!(
        "dashboards at scale: 1 advertiser, {CAMPAIGNS} campaigns, {INFLUENCERS} influencers and links created in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Catalog { advertiser, links }
}

/// Writes the history of `catalog` (`clicks` clicks and `events` events over the 90 days
/// before `end`) through `store`; prints and returns rows per second through the writer.
pub async fn load(
    store: &dyn Store,
    catalog: &Catalog,
    clicks: u64,
    events: u64,
    end: DateTime<Utc>,
) -> f64 {
    let started = Instant::now();
    let history = History::new(catalog.links.clone(), catalog.advertiser.clone(), end);
    let writing = history::write(store, history, clicks, events).await;
    let rate = (clicks + events) as f64 / writing.as_secs_f64();
    println!(
        "  history written: {clicks} clicks and {events} events in {:.0} s; the store writer took {:.0} s: {rate:.0} rows/s",
        started.elapsed().as_secs_f64(),
        writing.as_secs_f64()
    );
    rate
}

/// Milliseconds of one request of `path` with `params` (and the admin's advertiser filter);
/// `Err` with the status and the start of the body, or the client's error, unless it answers
/// 200. The client waits longer than the query service's own limit (30 s), which then answers.
async fn timed(
    client: &Client,
    base: &str,
    path: &str,
    params: &[(&str, String)],
) -> Result<f64, String> {
    let started = Instant::now();
    let r = client
        .get(with_query(&format!("{base}{path}"), params))
        .bearer_auth(ADMIN)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = r.status();
    let body = r.bytes().await.map_err(|e| format!("{e:?}"))?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        return Err(format!(
            "{status} {}",
            text.chars().take(200).collect::<String>()
        ));
    }
    Ok(started.elapsed().as_secs_f64() * 1000.0)
}

/// The value at quantile `q` of sorted `ms`.
fn quantile(ms: &[f64], q: f64) -> f64 {
    ms[((ms.len() as f64 * q).ceil() as usize).saturating_sub(1)]
}

/// Times the dashboard's answers over the 90 days before `end`: each one's first request, then
/// up to 20 more (p50, p95, max); then the CSV export of the last 9 days' events (about a tenth of
/// them), streamed, with `memory` (the process answering queries) sampled every 50 ms.
pub async fn dashboards(
    client: &Client,
    base: &str,
    catalog: &Catalog,
    end: DateTime<Utc>,
    memory: &Memory,
    backend: &str,
) {
    let period = |days: i64| {
        vec![
            ("advertiser_id", catalog.advertiser.clone()),
            ("from", (end - Span::days(days)).to_rfc3339()),
            ("to", (end + Span::hours(1)).to_rfc3339()),
        ]
    };
    let all = period(DAYS);
    let mut chart = all.clone();
    chart.push(("interval", "day".into()));
    let answers = [
        ("overview", "/api/v1/stats/overview", all.clone()),
        ("chart (by day)", "/api/v1/stats/chart", chart),
        (
            "per-influencer",
            "/api/v1/stats/per-influencer",
            all.clone(),
        ),
        ("funnel", "/api/v1/stats/funnel", all.clone()),
    ];
    for (name, path, params) in &answers {
        let figure = format!("dashboard {name} over 90 days, {backend}: warm p95 (first request)");
        let refused = |e: String| {
            println!("  {name:<16} no answer: {e}");
            summary::record(figure.clone(), "≤ 100 ms", format!("no answer: {e}"));
        };
        let first = match timed(client, base, path, params).await {
            Ok(ms) => ms,
            Err(e) => {
                refused(e);
                continue;
            }
        };
        let mut warm = Vec::with_capacity(WARM);
        let started = Instant::now();
        // 20 requests, or as many as a minute holds when each takes seconds (at least 5).
        while warm.len() < WARM && (warm.len() < 5 || started.elapsed() < Duration::from_secs(60)) {
            match timed(client, base, path, params).await {
                Ok(ms) => warm.push(ms),
                Err(e) => {
                    refused(format!("after {} warm answers: {e}", warm.len()));
                    break;
                }
            }
        }
        if warm.len() < 5 {
            continue;
        }
        warm.sort_by(f64::total_cmp);
        let (p50, p95, max) = (
            quantile(&warm, 0.5),
            quantile(&warm, 0.95),
            quantile(&warm, 1.0),
        );
        println!(
            "  {name:<16} first request {first:>8.0} ms; warm ({} requests) p50 {p50:.0} ms, p95 {p95:.0} ms, max {max:.0} ms",
            warm.len()
        );
        summary::record(figure, "≤ 100 ms", format!("{p95:.0} ms ({first:.0} ms)"));
    }

    let mut export = period(9);
    export.retain(|(k, _)| *k != "to");
    export.push(("to", end.to_rfc3339()));
    let before = memory.rss();
    let sampler = {
        let pids = memory.pids.clone();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let task = tokio::spawn(async move {
            let memory = Memory::new(pids);
            let mut high = 0;
            while !s.load(std::sync::atomic::Ordering::SeqCst) {
                high = high.max(memory.rss());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            high
        });
        (stop, task)
    };
    let url = with_query(&format!("{base}/api/v1/export/events.csv"), &export);
    let streamed = clicktrail_benches::stream_csv(client, url, ADMIN).await;
    sampler.0.store(true, std::sync::atomic::Ordering::SeqCst);
    let high = sampler.1.await.expect("the memory sampler");
    let streamed = match streamed {
        Ok(s) => s,
        Err(e) => {
            println!("  the export was refused: {e}");
            summary::record(
                format!("CSV export of the last 9 days' events, {backend}"),
                "≥ 200k rows/s, memory flat",
                format!("refused: {e}"),
            );
            return;
        }
    };
    let (rows, bytes, cut) = (streamed.rows, streamed.bytes, &streamed.cut);
    let took = streamed.took.as_secs_f64();
    let first_byte = streamed.first_byte.as_secs_f64() * 1000.0;
    let rate = rows as f64 / took;
    println!(
        "  CSV export of the last 9 days' events: {rows} rows, {:.0} MB in {took:.1} s: {rate:.0} rows/s (first byte after {first_byte:.0} ms); resident memory {:.0} MB before, highest {:.0} MB during",
        bytes as f64 / 1e6,
        before as f64 / 1e6,
        high as f64 / 1e6
    );
    if let Some(e) = cut {
        println!(
            "  the export was cut after {rows} rows and {took:.1} s: {e} (see the query process's log)"
        );
        summary::record(
            format!("CSV export of the last 9 days' events, {backend}"),
            "≥ 200k rows/s, memory flat",
            format!(
                "failed: the stream was cut after {rows} rows and {took:.1} s; RSS {:.0} → highest {:.0} MB",
                before as f64 / 1e6,
                high as f64 / 1e6
            ),
        );
        return;
    }
    summary::record(
        format!("CSV export of {rows} events, {backend}"),
        "≥ 200k rows/s, memory flat",
        format!(
            "{rate:.0} rows/s; RSS {:.0} → highest {:.0} MB",
            before as f64 / 1e6,
            high as f64 / 1e6
        ),
    );
}

/// One partition's events state filled with `n` event ids in this process, as the events step
/// holds them: its memory (by its own accounting and as resident memory grew), stated per id.
pub fn event_id_memory(n: u64) {
    use clicktrail_processor::pipeline::PartitionState as _;
    if n == 0 {
        return;
    }
    let (fill, took, growth) = clicktrail_benches::EventIdFill::filled(n);
    let bytes = fill.state.memory_bytes();
    println!(
        "event ids in one partition   {} ids remembered (7-day window), filled at {:.0}/s: memory_bytes {:.1} MB ({:.1} B/id), resident memory grew {}",
        fill.state.event_ids(),
        n as f64 / took.as_secs_f64(),
        bytes as f64 / 1e6,
        bytes as f64 / n as f64,
        growth.map_or("(unknown)".into(), |g| format!("{:.1} MB", g as f64 / 1e6))
    );
    summary::record(
        format!("processor memory per partition with {n} remembered event ids"),
        "stated and bounded",
        format!(
            "{:.1} MB ({:.1} B/id; bounded by the ids of the 7-day window)",
            bytes as f64 / 1e6,
            bytes as f64 / n as f64
        ),
    );
}

/// Waits (30 minutes at most) until the processor has stored everything on the bus, so that
/// the dashboards are timed on a quiet deployment.
async fn drained(client: &Client, deployment: &Deployment) {
    let started = Instant::now();
    loop {
        let r = client
            .get(crate::raw::with_query(
                &format!("{}/api/v1/stats/overview", deployment.query),
                &[("wait", "30")],
            ))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("the query service answers");
        let pending = r
            .headers()
            .get("x-clicktrail-pending")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if pending == Some(0) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "the processor still has {pending:?} records pending after 30 minutes"
        );
    }
    println!(
        "  bus drained {:.0} s after the runs",
        started.elapsed().as_secs_f64()
    );
}

/// The dashboards-at-scale step: the history written into the deployment's store (on the
/// embedded default with `serve` stopped, which then starts again on the same data), the
/// dashboards and export timed, and on ClickHouse its raw insert rate (returned, rows/s).
pub struct Step<'a> {
    /// `serve` on the embedded store, not the four roles.
    pub embedded: bool,
    /// Clicks and events of the history.
    pub clicks: u64,
    pub events: u64,
    /// The `clicktrail` binary, to start `serve` again.
    pub clicktrail: &'a std::path::Path,
    /// The scratch directory the deployment runs in.
    pub dir: &'a std::path::Path,
    /// The backend's name in the printed figures.
    pub store: &'a str,
}

impl Step<'_> {
    /// Runs the step on `deployment` (on the embedded default it is stopped and started again);
    /// returns ClickHouse's raw insert rate (rows/s), `None` on the embedded store.
    pub async fn run(&self, client: &Client, deployment: &mut Deployment) -> Option<f64> {
        let Step {
            embedded,
            clicks,
            events,
            clicktrail,
            dir,
            store,
        } = *self;
        drained(client, deployment).await;
        let catalog = catalog(client, deployment).await;
        let end = chrono::Utc::now();
        let written = if embedded {
            deployment.stop();
            let parquet = clicktrail_store::parquet::ParquetStore::open(&dir.join("serve/store"))
                .expect("the stopped deployment's Parquet store");
            let rate = load(&parquet, &catalog, clicks, events, end).await;
            drop(parquet);
            *deployment = Deployment::serve(clicktrail, dir, &[]).await;
            rate
        } else {
            let (url, database) = deployment.clickhouse().expect("a ClickHouse deployment");
            let ch = clicktrail_store::clickhouse::ClickHouseStore::open(
                &clicktrail_store::clickhouse::ClickHouseOptions {
                    url: url.clone(),
                    database: database.clone(),
                    user: None,
                    password: None,
                },
            )
            .await
            .expect("the deployment's ClickHouse database");
            let rate = load(&ch, &catalog, clicks, events, end).await;
            // The first requests then read from disk, not from ClickHouse's caches.
            for cache in ["MARK", "UNCOMPRESSED"] {
                crate::raw::clickhouse(client, &url, &format!("SYSTEM DROP {cache} CACHE"), vec![])
                    .await;
            }
            rate
        };
        let memory = Memory::new(vec![deployment.query_pid()]);
        dashboards(client, &deployment.query, &catalog, end, &memory, store).await;
        summary::record(
            format!("store writer, {store}: rows of the history per second"),
            "",
            format!("{written:.0} rows/s"),
        );
        if let Some((url, database)) = deployment.clickhouse() {
            let raw = crate::raw::insert_rate(client, &url, &database, 1_000_000).await;
            summary::record(
                "ClickHouse's raw insert rate (stored events rows, same run); store writer / raw",
                "",
                format!("{raw:.0} rows/s; {:.2}", written / raw),
            );
            return Some(raw);
        }
        None
    }
}
