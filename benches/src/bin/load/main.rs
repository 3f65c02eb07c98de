//! The load harness: clicktrail's four roles on Kafka and ClickHouse, measured from outside
//! over HTTP, next to nginx answering a fixed `return 302` under the same load.
//!
//! It measures redirects per second with p50/p99/p99.9 latency (clicktrail and nginx, and
//! their ratios), ingested events per second one per request and batched, and events per
//! second from ingest until queryable in ClickHouse with the delay from acknowledgement to
//! visibility, and newsletter promo impression records per second with their latency. Run it through `scripts/load`, which installs and starts the services and builds
//! in release mode.

mod drive;
mod setup;

use clap::Parser;
use drive::{MakeRequest, Run};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "clicktrail's load harness (see scripts/load)")]
struct Args {
    /// The `clicktrail` binary (default: next to this one).
    #[arg(long)]
    clicktrail: Option<PathBuf>,
    /// Kafka bootstrap servers; without them the harness starts a broker of its own.
    #[arg(long)]
    brokers: Option<String>,
    /// The Tansu binary for the harness's own broker.
    #[arg(long, env = "CLICKTRAIL_TANSU", default_value = "tansu")]
    tansu: String,
    /// ClickHouse HTTP URL.
    #[arg(long, env = "CLICKTRAIL_TEST_CLICKHOUSE")]
    clickhouse: String,
    /// The nginx binary of the reference run.
    #[arg(long, default_value = "nginx")]
    nginx: String,
    /// Concurrent connections of each load run.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Measured seconds of each load run (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Events per request in the batched run.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Events sent for the ingest-to-queryable run.
    #[arg(long, default_value_t = 100_000)]
    queryable_events: u64,
    /// How long the roles' producers wait for the broker before a record goes to the spool
    /// (`--kafka-delivery-timeout-ms` of the roles; the default is clicktrail's own).
    #[arg(long, default_value_t = 5_000)]
    delivery_timeout_ms: u64,
    /// Keep the scratch directory (role logs and data) and print its path.
    #[arg(long)]
    keep: bool,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let (dir, _scratch) = if args.keep {
        let kept = scratch.keep();
        println!("scratch directory kept: {}", kept.display());
        (kept, None)
    } else {
        (scratch.path().to_path_buf(), Some(scratch))
    };
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(args.connections)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client");
    let nginx = setup::Nginx::start(&args.nginx, &dir).await;
    let clicktrail = args.clicktrail.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .expect("own path")
            .with_file_name("clicktrail")
    });
    let broker = match &args.brokers {
        Some(_) => None,
        None => Some(setup::Broker::start(&args.tansu, &dir).await),
    };
    let brokers = broker.as_ref().map_or_else(
        || args.brokers.clone().unwrap_or_default(),
        |b| b.bootstrap.clone(),
    );
    let extra = [
        "--kafka-delivery-timeout-ms".to_string(),
        args.delivery_timeout_ms.to_string(),
    ];
    let roles = setup::Roles::start(&clicktrail, &brokers, &args.clickhouse, &dir, &extra).await;
    let shop = roles.shop(&client).await;
    println!(
        "clicktrail load harness: {} connections, {} s per run, on {} cores",
        args.connections,
        args.seconds,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let warmup = Duration::from_secs(1);
    let time = Duration::from_secs(args.seconds);
    let redirect = |base: String, code: String| -> MakeRequest {
        Arc::new(move |c: &Client, n: u64| {
            let req = c.get(format!("{base}/r/{code}")).header(
                "user-agent",
                format!("Mozilla/5.0 (X11; Linux x86_64) load-{n}"),
            );
            (req, 1)
        })
    };
    // First, while the broker has no backlog from the load runs.
    queryable(&client, &args, &roles, &shop).await;

    let reference = drive::run(
        &client,
        args.connections,
        warmup,
        time,
        StatusCode::FOUND,
        redirect(nginx.base.clone(), shop.code.clone()),
    )
    .await;
    let redirects = drive::run(
        &client,
        args.connections,
        warmup,
        time,
        StatusCode::FOUND,
        redirect(roles.redirector.clone(), shop.code.clone()),
    )
    .await;
    report("nginx return 302", &reference, "redirects");
    report("clicktrail redirect", &redirects, "redirects");
    println!(
        "  ratio to nginx: rate {:.2}, p99 {:.2}",
        redirects.rate() / reference.rate(),
        redirects.ms(0.99) / reference.ms(0.99)
    );
    // The event runs start once the broker has taken every click, so that they measure
    // ingest rather than the click backlog.
    clicks_stored(&client, &roles, redirects.answered).await;

    let single = drive::run(
        &client,
        args.connections,
        warmup,
        time,
        StatusCode::OK,
        events(&roles.ingest, &shop.key, "s", 1),
    )
    .await;
    report("events, 1 per request", &single, "events");
    let batched = drive::run(
        &client,
        args.connections,
        warmup,
        time,
        StatusCode::OK,
        events(&roles.ingest, &shop.key, "b", args.batch),
    )
    .await;
    report(
        &format!("events, {} per request", args.batch),
        &batched,
        "events",
    );

    let promo = drive::run(
        &client,
        args.connections,
        warmup,
        time,
        StatusCode::NO_CONTENT,
        impressions(&roles.ingest, &shop),
    )
    .await;
    report("promo impressions", &promo, "records");
    let ended = Instant::now();
    roles
        .wait_stored(
            &client,
            "impressions",
            "newsletter_send_id",
            "imp-%",
            promo.answered,
        )
        .await;
    println!(
        "  all {} impression records in ClickHouse {:.1} s after the run ended",
        promo.answered,
        ended.elapsed().as_secs_f64()
    );

    roles.stop();
    drop(broker);
    drop(nginx);
}

/// Impression records of the shop's promo variation, one newsletter send each (a send per
/// request, so every one is counted).
fn impressions(ingest: &str, shop: &setup::Shop) -> MakeRequest {
    let url = format!("{ingest}/api/v1/promo/impressions");
    let (key, offer, variation) = (
        shop.key.clone(),
        shop.offer_id.clone(),
        shop.variation_id.clone(),
    );
    Arc::new(move |c: &Client, n: u64| {
        let body = json!({"offer_id": offer, "variation_id": variation,
                          "newsletter_send_id": format!("imp-{n}"), "recipients": 5000});
        (c.post(&url).header("x-api-key", &key).json(&body), 1)
    })
}

/// Requests carrying `per` purchase events each, with ids unique to the run `tag`.
fn events(ingest: &str, key: &str, tag: &'static str, per: usize) -> MakeRequest {
    let (url, key) = (format!("{ingest}/api/v1/events"), key.to_string());
    Arc::new(move |c: &Client, n: u64| {
        let body: Vec<Value> = (0..per)
            .map(|i| {
                let id = format!("{tag}-{n}-{i}");
                json!({"event_id": id, "action": "purchase", "order_id": id,
                       "value": 19.99, "currency": "USD"})
            })
            .collect();
        let req = c.post(&url).header("x-api-key", &key).json(&body);
        (req, per as u64)
    })
}

/// Waits until every redirect's click is in ClickHouse, and reports how long after the run.
async fn clicks_stored(client: &Client, roles: &setup::Roles, redirects: u64) {
    let ended = Instant::now();
    roles
        .wait_stored(client, "clicks", "click_id", "%", redirects)
        .await;
    println!(
        "  all {redirects} clicks of the run in ClickHouse {:.1} s after it ended",
        ended.elapsed().as_secs_f64()
    );
}

fn report(what: &str, run: &Run, unit: &str) {
    println!(
        "{what:<28} {:>9.0} {unit}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  p99.9 {:>7.2} ms  ({} answers; other answers by status: {:?})",
        run.unit_rate(),
        run.ms(0.5),
        run.ms(0.99),
        run.ms(0.999),
        run.ok,
        run.failed
    );
}

/// Events from the first request to ingest until all are visible in ClickHouse, and the delay
/// from one event's acknowledgement until it is visible.
async fn queryable(client: &Client, args: &Args, roles: &setup::Roles, shop: &setup::Shop) {
    let per = 500u64;
    let requests = args.queryable_events.div_ceil(per);
    let total = requests * per;
    let url = format!("{}/api/v1/events", roles.ingest);
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.connections.min(8) {
        let (client, url, key, next) =
            (client.clone(), url.clone(), shop.key.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if n >= requests {
                    return;
                }
                let body: Vec<Value> = (0..per)
                    .map(|i| {
                        let id = format!("q-{n}-{i}");
                        json!({"event_id": id, "action": "purchase", "order_id": id,
                               "value": 5, "currency": "USD"})
                    })
                    .collect();
                loop {
                    let r = client
                        .post(&url)
                        .header("x-api-key", &key)
                        .json(&body)
                        .send()
                        .await;
                    if r.is_ok_and(|r| r.status().is_success()) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("sender");
    }
    let acked = started.elapsed();
    roles
        .wait_stored(client, "events", "event_id", "q-%", total)
        .await;
    let visible = started.elapsed();
    println!(
        "ingest to queryable          {:>9.0} events/s  ({total} events: all acknowledged after {:.1} s, all in ClickHouse after {:.1} s; last one {:.2} s after its acknowledgement)",
        total as f64 / visible.as_secs_f64(),
        acked.as_secs_f64(),
        visible.as_secs_f64(),
        (visible - acked).as_secs_f64()
    );

    // One event at a time, at rest: acknowledgement to visibility.
    let mut delays = Vec::new();
    for i in 0..20 {
        let id = format!("d-{i}");
        let body = json!({"event_id": id, "action": "purchase", "order_id": id, "value": 1});
        let r = client
            .post(&url)
            .header("x-api-key", &shop.key)
            .json(&body)
            .send()
            .await
            .expect("ingest answers");
        assert!(
            r.status().is_success(),
            "probe event refused: {}",
            r.status()
        );
        let acked = Instant::now();
        while roles.count(client, &id).await < 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        delays.push(acked.elapsed());
    }
    delays.sort();
    println!(
        "acknowledged to queryable    p50 {:.0} ms, max {:.0} ms (20 single events at rest)",
        delays[delays.len() / 2].as_secs_f64() * 1000.0,
        delays[delays.len() - 1].as_secs_f64() * 1000.0
    );
}
