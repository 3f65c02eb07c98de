//! The load harness: clicktrail measured from outside over HTTP, next to nginx answering a
//! fixed `return 302` (with a buffered access log) under the same load, on either backend: the
//! four roles on Kafka and ClickHouse, or (`--embedded`) `serve` on the embedded log and
//! Parquet store.
//!
//! It measures events per second from ingest until queryable, sustained, with the delay from
//! acknowledgement to visibility under that load; redirects per second with p50/p99/p99.9
//! latency (clicktrail and nginx with the harness's own client, and with wrk, and their
//! ratios); signed events one per request and batched; newsletter promo impression records;
//! the resident memory of clicktrail's processes over a sustained mixed run; the dashboards and
//! a CSV export over 30 million clicks and 10 million events; one partition's memory of 10
//! million event ids; and on Kafka + ClickHouse the broker's raw produce rate and ClickHouse's
//! raw insert rate beside clicktrail's. It ends with every figure beside its target in one
//! table. Run it through `scripts/load`, which installs and starts the services and builds in
//! release mode.

mod drive;
mod raw;
mod runs;
mod scale;
mod setup;
mod stages;
mod store;
mod summary;

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
    /// Run `clicktrail serve` on the embedded log and Parquet store instead of the four roles
    /// on Kafka and ClickHouse.
    #[arg(long)]
    embedded: bool,
    /// Kafka bootstrap servers; without them the harness starts a broker of its own.
    #[arg(long)]
    brokers: Option<String>,
    /// The Tansu binary for the harness's own broker.
    #[arg(long, env = "CLICKTRAIL_TANSU", default_value = "tansu")]
    tansu: String,
    /// ClickHouse HTTP URL (required unless `--embedded`).
    #[arg(
        long,
        env = "CLICKTRAIL_TEST_CLICKHOUSE",
        required_unless_present = "embedded"
    )]
    clickhouse: Option<String>,
    /// The nginx binary of the reference run.
    #[arg(long, default_value = "nginx")]
    nginx: String,
    /// The wrk binary of the second redirect comparison.
    #[arg(long, default_value = "wrk")]
    wrk: String,
    /// Concurrent connections of each load run.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Measured seconds of each load run (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Events per request in the batched run.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Seconds of sustained batched ingest in the ingest-to-queryable run.
    #[arg(long, default_value_t = 60)]
    sustain_seconds: u64,
    /// Minutes of the mixed run (redirects and batched events) over which resident memory is
    /// sampled; 0 skips it.
    #[arg(long, default_value_t = 30)]
    soak_minutes: u64,
    /// How long the roles' producers wait for the broker before a record goes to the spool
    /// (`--kafka-delivery-timeout-ms` of the roles; the default is clicktrail's own).
    #[arg(long, default_value_t = 5_000)]
    delivery_timeout_ms: u64,
    /// Clicks of the dashboards-at-scale step, written into the store; 0 (with
    /// `--scale-events 0`) skips the step.
    #[arg(long, default_value_t = 30_000_000)]
    scale_clicks: u64,
    /// Events of the dashboards-at-scale step.
    #[arg(long, default_value_t = 10_000_000)]
    scale_events: u64,
    /// Event ids one partition's events state is filled with for its memory figure.
    #[arg(long, default_value_t = 10_000_000)]
    event_ids: u64,
    /// Seconds of the broker's raw produce run (Kafka only).
    #[arg(long, default_value_t = 10)]
    raw_seconds: u64,
    /// Keep the scratch directory (logs and data) and print its path.
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
        .pool_max_idle_per_host(args.connections + 16)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client");
    let nginx = setup::Nginx::start(&args.nginx, &dir).await;
    let clicktrail = args.clicktrail.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .expect("own path")
            .with_file_name("clicktrail")
    });
    let mut broker = None;
    let deployment = if args.embedded {
        setup::Deployment::serve(&clicktrail, &dir, &[]).await
    } else {
        if args.brokers.is_none() {
            broker = Some(setup::Broker::start(&args.tansu, &dir).await);
        }
        let brokers = broker.as_ref().map_or_else(
            || args.brokers.clone().unwrap_or_default(),
            |b| b.bootstrap.clone(),
        );
        let extra = [
            "--kafka-delivery-timeout-ms".to_string(),
            args.delivery_timeout_ms.to_string(),
        ];
        let clickhouse = args
            .clickhouse
            .clone()
            .expect("required without --embedded");
        setup::Deployment::roles(&clicktrail, &brokers, &clickhouse, &dir, &extra).await
    };
    let mut deployment = deployment;
    let shop = deployment.shop(&client).await;
    let store = if args.embedded {
        "embedded log + Parquet"
    } else {
        "Kafka + ClickHouse"
    };
    println!(
        "clicktrail load harness on {store}: {} connections, {} s per run, on {} cores",
        args.connections,
        args.seconds,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let memory = runs::Memory::new(deployment.pids());
    memory.print("at start");
    scale::event_id_memory(args.event_ids);
    let produced = if let Some(b) = broker
        .as_ref()
        .map(|b| b.bootstrap.clone())
        .or(args.brokers.clone())
    {
        let topic = format!("load_{}-raw-produce", std::process::id());
        Some(
            raw::produce_rate(
                &b,
                &topic,
                &clicktrail_benches::history::History::sample_purchase(),
                args.raw_seconds,
            )
            .await,
        )
    } else {
        None
    };

    let warmup = Duration::from_secs(1);
    let time = Duration::from_secs(args.seconds);
    // First, while the log has no backlog from the load runs.
    let (ingest_rate, ack_p99) = runs::queryable(
        &client,
        &deployment,
        &shop,
        args.sustain_seconds,
        args.connections,
    )
    .await;
    memory.print("after ingest to queryable");
    summary::record(
        format!(
            "ingest → queryable, {store}, sustained {} s",
            args.sustain_seconds
        ),
        if args.embedded {
            "≥ 100k events/s"
        } else {
            "≥ 50k events/s"
        },
        format!("{ingest_rate:.0} events/s"),
    );
    summary::record(
        "acknowledged → queryable p99 at that load",
        "≤ 2 s",
        format!("{:.1} s", ack_p99 / 1000.0),
    );

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
        redirect(deployment.redirector.clone(), shop.code.clone()),
    )
    .await;
    report("nginx return 302", &reference, "redirects");
    report("clicktrail redirect", &redirects, "redirects");
    let same = (
        redirects.rate() / reference.rate(),
        redirects.ms(0.99) / reference.ms(0.99),
    );
    println!(
        "  ratio to nginx, same client: rate {:.2}, p99 {:.2}",
        same.0, same.1
    );
    let mut clicks = redirects.answered;
    let wrk = runs::Wrk::new(&args.wrk, args.connections, args.seconds);
    if let (Some(nginx_wrk), Some(ours)) = (
        wrk.run(&format!("{}/r/{}", nginx.base, shop.code)),
        wrk.run(&format!("{}/r/{}", deployment.redirector, shop.code)),
    ) {
        println!("wrk, nginx return 302        {nginx_wrk}");
        println!("wrk, clicktrail redirect     {ours}");
        println!(
            "  ratio to nginx, wrk: rate {:.2}, p99 {:.2}",
            ours.rate / nginx_wrk.rate,
            ours.p99_ms / nginx_wrk.p99_ms
        );
        summary::record(
            "redirect rate vs nginx `return 302`, wrk",
            "≥ 0.8×",
            format!(
                "{:.2}× ({:.0} vs {:.0}/s)",
                ours.rate / nginx_wrk.rate,
                ours.rate,
                nginx_wrk.rate
            ),
        );
        summary::record(
            "redirect p99 vs nginx's p99, wrk",
            "≤ 1.5×",
            format!(
                "{:.2}× ({:.2} vs {:.2} ms)",
                ours.p99_ms / nginx_wrk.p99_ms,
                ours.p99_ms,
                nginx_wrk.p99_ms
            ),
        );
        clicks += ours.requests;
    }
    summary::record(
        "redirect rate vs nginx `return 302`, same client",
        "≥ 0.8×",
        format!(
            "{:.2}× ({:.0} vs {:.0}/s)",
            same.0,
            redirects.rate(),
            reference.rate()
        ),
    );
    summary::record(
        "redirect p99 vs nginx's p99, same client",
        "≤ 1.5×",
        format!(
            "{:.2}× ({:.2} vs {:.2} ms)",
            same.1,
            redirects.ms(0.99),
            reference.ms(0.99)
        ),
    );
    // The event runs start once every click is stored, so that they measure ingest rather
    // than the click backlog.
    store::clicks_stored(&client, &deployment, clicks).await;
    memory.print("after the redirect runs");

    let single = drive::run(
        &client,
        args.connections,
        warmup,
        time,
        StatusCode::OK,
        events(&deployment.ingest, &shop, "s", 1),
    )
    .await;
    report("signed events, 1 per request", &single, "events");
    summary::record(
        "single signed events per request, acknowledged",
        "≥ 20k/s",
        format!(
            "{:.0}/s (p99 {:.1} ms)",
            single.unit_rate(),
            single.ms(0.99)
        ),
    );
    let batched = drive::run(
        &client,
        args.connections,
        warmup,
        time,
        StatusCode::OK,
        events(&deployment.ingest, &shop, "b", args.batch),
    )
    .await;
    report(
        &format!("signed events, {} per request", args.batch),
        &batched,
        "events",
    );

    let promo = drive::run(
        &client,
        args.connections,
        warmup,
        time,
        StatusCode::NO_CONTENT,
        impressions(&deployment.ingest, &shop),
    )
    .await;
    report("promo impressions", &promo, "records");
    let ended = Instant::now();
    if deployment
        .wait_stored(
            &client,
            "impressions",
            "newsletter_send_id",
            "imp-%",
            promo.answered,
        )
        .await
        .is_ok()
    {
        println!(
            "  all {} impression records stored {:.1} s after the run ended",
            promo.answered,
            ended.elapsed().as_secs_f64()
        );
    }
    memory.print("after the event runs");

    if args.soak_minutes > 0 {
        runs::soak(
            &client,
            &deployment,
            &shop,
            &memory,
            args.soak_minutes,
            args.connections,
        )
        .await;
    }
    let inserted = if args.scale_clicks + args.scale_events > 0 {
        let step = scale::Step {
            embedded: args.embedded,
            clicks: args.scale_clicks,
            events: args.scale_events,
            clicktrail: &clicktrail,
            dir: &dir,
            store,
        };
        step.run(&client, &mut deployment).await
    } else {
        None
    };
    if let Some(produced) = produced {
        summary::record(
            "ingest → queryable vs the broker's raw produce rate (rdkafka, same run)",
            "",
            format!(
                "{:.3} ({ingest_rate:.0} events/s vs {produced:.0} records/s)",
                ingest_rate / produced
            ),
        );
    }
    if let Some(inserted) = inserted {
        summary::record(
            "ingest → queryable vs ClickHouse's raw insert rate (same run)",
            "",
            format!(
                "{:.3} ({ingest_rate:.0} events/s vs {inserted:.0} rows/s)",
                ingest_rate / inserted
            ),
        );
    }
    summary::print(store);
    deployment.stop();
    drop(broker);
    drop(nginx);
}

/// Redirects of one link, each with a user agent of its own.
fn redirect(base: String, code: String) -> MakeRequest {
    Arc::new(move |c: &Client, n: u64| {
        let req = c.get(format!("{base}/r/{code}")).header(
            "user-agent",
            format!("Mozilla/5.0 (X11; Linux x86_64) load-{n}"),
        );
        (req, 1)
    })
}

/// A request signed as the shop's advertiser requires: `X-Clicktrail-Signature` over the body.
fn signed(c: &Client, url: &str, shop: &setup::Shop, body: &Value) -> reqwest::RequestBuilder {
    let bytes = serde_json::to_vec(body).expect("JSON");
    let now = chrono::Utc::now().timestamp();
    let sig = clicktrail_api::auth::sign(&shop.secret, now, &bytes);
    c.post(url)
        .header("x-api-key", &shop.key)
        .header("x-clicktrail-signature", format!("t={now},v1={sig}"))
        .header("content-type", "application/json")
        .body(bytes)
}

/// Impression records of the shop's promo variation, one newsletter send each (a send per
/// request, so every one is counted).
fn impressions(ingest: &str, shop: &setup::Shop) -> MakeRequest {
    let url = format!("{ingest}/api/v1/promo/impressions");
    let shop = shop.clone();
    Arc::new(move |c: &Client, n: u64| {
        let body = json!({"offer_id": shop.offer_id, "variation_id": shop.variation_id,
                          "newsletter_send_id": format!("imp-{n}"), "recipients": 5000});
        (signed(c, &url, &shop, &body), 1)
    })
}

/// Signed requests carrying `per` purchase events each (one object, not an array, when `per`
/// is 1), with ids unique to the run `tag`.
pub fn events(ingest: &str, shop: &setup::Shop, tag: &'static str, per: usize) -> MakeRequest {
    let url = format!("{ingest}/api/v1/events");
    let shop = shop.clone();
    Arc::new(move |c: &Client, n: u64| {
        let body = purchases(tag, n, per, 19.99);
        (signed(c, &url, &shop, &body), per as u64)
    })
}

/// `per` purchase events with ids `{tag}-{n}-{i}`; one object when `per` is 1.
pub fn purchases(tag: &str, n: u64, per: usize, value: f64) -> Value {
    let one = |i: usize| {
        let id = format!("{tag}-{n}-{i}");
        json!({"event_id": id, "action": "purchase", "order_id": id,
               "value": value, "currency": "USD"})
    };
    if per == 1 {
        one(0)
    } else {
        Value::Array((0..per).map(one).collect())
    }
}

/// Prints one run: rate, latency quantiles and answers by status.
pub fn report(what: &str, run: &Run, unit: &str) {
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
