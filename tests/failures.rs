//! Failures against the real services, one process per role: the broker stopped, ClickHouse
//! stopped, `kill -9` of a processor and of ingest, a second processor joining and leaving,
//! all under redirect and event load. Each test checks what was stored afterwards against
//! what shoppers and advertisers were told (302s and 2xx answers).

mod common;

use common::own::{Broker, ClickHouse};
use common::{Server, Services, Shop, click_id};
use reqwest::{Client, StatusCode, header};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;

/// What the load was told.
#[derive(Default)]
struct Tally {
    redirects: usize,
    not_redirected: Vec<String>,
    acknowledged: BTreeSet<String>,
    refused: usize,
}

/// Shoppers following links and buying (USD 10, 1,000 minor units, each), on `workers` tasks until
/// `stop`. Each shopper has its own user agent, so every click is a unique visitor.
async fn load(
    redirect_base: Arc<Mutex<String>>,
    events_base: Arc<Mutex<String>>,
    shop: Arc<Shop>,
    workers: usize,
    stop: Arc<AtomicBool>,
    tag: &'static str,
) -> Tally {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (rb, eb, shop, stop, next) = (
            redirect_base.clone(),
            events_base.clone(),
            shop.clone(),
            stop.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let http = Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap();
            let mut t = Tally::default();
            while !stop.load(Ordering::SeqCst) {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let code = &shop.codes[i % shop.codes.len()];
                let rb = rb.lock().await.clone();
                let r = http
                    .get(format!("{rb}/r/{code}"))
                    .header(
                        header::USER_AGENT,
                        format!("Mozilla/5.0 (X11; Linux x86_64) shopper-{tag}-{i}"),
                    )
                    .send()
                    .await;
                let click = match r {
                    Ok(r) if r.status() == StatusCode::FOUND => {
                        t.redirects += 1;
                        click_id(&r)
                    }
                    Ok(r) => {
                        t.not_redirected.push(format!("{}", r.status()));
                        continue;
                    }
                    Err(e) => {
                        t.not_redirected.push(e.to_string());
                        continue;
                    }
                };
                let event_id = format!("{tag}-{i}");
                let body = json!({"event_id": event_id, "action": "purchase", "order_id": event_id,
                    "value": 10, "currency": "USD", "click_id": click});
                // The same purchase twice more, in shapes that take other partitions than the
                // first: its event id again with a customer (a retry that learned who bought),
                // and a server postback of the order under its own event id.
                let customer = format!("cust-{tag}-{i}");
                let mut again = body.clone();
                again["customer_id"] = json!(customer);
                let mut postback = again.clone();
                postback["event_id"] = json!(format!("{event_id}-postback"));
                let eb = eb.lock().await.clone();
                for (n, body) in [body, again, postback].iter().enumerate() {
                    match http
                        .post(format!("{eb}/api/v1/events"))
                        .header("x-api-key", &shop.key)
                        .json(body)
                        .send()
                        .await
                    {
                        Ok(r) if r.status().is_success() => {
                            if n == 0 {
                                t.acknowledged.insert(event_id.clone());
                            }
                        }
                        _ => t.refused += 1,
                    }
                }
            }
            t
        }));
    }
    let mut all = Tally::default();
    for task in tasks {
        let t = task.await.unwrap();
        all.redirects += t.redirects;
        all.not_redirected.extend(t.not_redirected);
        all.acknowledged.extend(t.acknowledged);
        all.refused += t.refused;
    }
    all
}

struct Running {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Tally>,
    events_base: Arc<Mutex<String>>,
}

fn start_load(s: &Server, shop: &Arc<Shop>, tag: &'static str) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let redirect_base = Arc::new(Mutex::new(
        s.url("/r/x").trim_end_matches("/r/x").to_string(),
    ));
    let events_base = Arc::new(Mutex::new(s.base.clone()));
    let task = tokio::spawn(load(
        redirect_base.clone(),
        events_base.clone(),
        shop.clone(),
        4,
        stop.clone(),
        tag,
    ));
    Running {
        stop,
        task,
        events_base,
    }
}

impl Running {
    async fn finish(self) -> Tally {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap()
    }
}

/// Stored purchases of the advertiser as (event id, order id), from the CSV export.
async fn stored_purchases(s: &Server) -> Vec<(String, String)> {
    let csv = s.admin_text("/api/v1/export/events.csv?period=all").await;
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("{name} column"))
    };
    let (id, order) = (col("event_id"), col("order_id"));
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            let cell = |i: usize| cells[i].trim_matches('"').to_string();
            (cell(id), cell(order))
        })
        .collect()
}

/// Everything shoppers were told arrived exactly once: every redirect is a click, every
/// acknowledged order is one purchase (whichever of its three copies counted), and no order
/// or event id counts twice.
async fn assert_exact(s: &Server, t: &Tally) {
    s.drain().await;
    eprintln!(
        "load: {} redirects (302), {} orders acknowledged, {} requests refused",
        t.redirects,
        t.acknowledged.len(),
        t.refused
    );
    assert!(
        t.redirects > 0 && !t.acknowledged.is_empty(),
        "the load ran"
    );
    let o = s.admin_get("/api/v1/stats/overview?period=all").await;
    assert_eq!(
        o["clicks"],
        json!(t.redirects),
        "every redirect stored once: {o}"
    );
    let stored = stored_purchases(s).await;
    let ids: BTreeSet<&String> = stored.iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), stored.len(), "no event stored twice");
    let orders: BTreeSet<String> = stored.iter().map(|(_, o)| o.clone()).collect();
    assert_eq!(orders.len(), stored.len(), "no order counted twice");
    let missing: Vec<&String> = t.acknowledged.difference(&orders).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not stored: {missing:?}"
    );
    assert_eq!(
        o["purchases"],
        json!(orders.len()),
        "purchases count every stored order once: {o}"
    );
    assert_eq!(
        o["revenue"],
        json!([{"currency": "USD", "amount_minor": 1000 * orders.len()}]),
        "{o}"
    );
}

fn database(test: &str) -> String {
    format!("{test}_{}", std::process::id())
}

async fn deployment(dir: &Path, svc: &Services, test: &str) -> (Server, Arc<Shop>) {
    let s = Server::cluster(dir, svc, &database(test)).await;
    let shop = Arc::new(
        s.shop(test, "https://shop.example/p", &["Ana", "Ben", "Cy"])
            .await,
    );
    s.sync_catalog().await;
    (s, shop)
}

#[tokio::test]
async fn kill_9_of_a_processor_under_load_then_restart_leaves_figures_exact() {
    let Some(svc) = common::services() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (mut s, shop) = deployment(dir.path(), &svc, "killproc").await;
    let running = start_load(&s, &shop, "kp");
    tokio::time::sleep(Duration::from_secs(3)).await;
    s.proc_mut("processor").kill9();
    tokio::time::sleep(Duration::from_secs(2)).await;
    s.proc_mut("processor").restart().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let t = running.finish().await;
    assert!(t.not_redirected.is_empty(), "{:?}", t.not_redirected);
    assert_eq!(t.refused, 0);
    assert_exact(&s, &t).await;
}

#[tokio::test]
async fn kill_9_of_ingest_under_load_keeps_every_acknowledged_event() {
    let Some(svc) = common::services() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (mut s, shop) = deployment(dir.path(), &svc, "killingest").await;
    let running = start_load(&s, &shop, "ki");
    tokio::time::sleep(Duration::from_secs(3)).await;
    s.proc_mut("ingest").kill9();
    tokio::time::sleep(Duration::from_secs(1)).await;
    s.proc_mut("ingest").restart().await;
    let base = s.proc_mut("ingest").base.clone();
    s.base = base.clone();
    *running.events_base.lock().await = base;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let t = running.finish().await;
    assert!(t.not_redirected.is_empty(), "{:?}", t.not_redirected);
    assert!(t.refused > 0 || !t.acknowledged.is_empty());
    assert_exact(&s, &t).await;
}

/// Partitions a processor holds, by topic, from its `/metrics`.
async fn held(base: &str) -> HashMap<String, u64> {
    common::metrics(&Client::new(), base)
        .await
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("clicktrail_processor_partitions{topic=\"")?;
            let (topic, value) = rest.split_once("\"}")?;
            Some((topic.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn a_second_processor_joining_and_leaving_under_load_leaves_figures_exact() {
    let Some(svc) = common::services() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (s, shop) = deployment(dir.path(), &svc, "twoproc").await;
    let running = start_load(&s, &shop, "tp");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut args = s
        .procs
        .iter()
        .find(|p| p.role == "processor")
        .unwrap()
        .args
        .clone();
    let data = args.iter().position(|a| a == "--data-dir").unwrap();
    args[data + 1] = dir.path().join("processor-2").display().to_string();
    // A member added for a while (no stable name of its own): it leaves the group when
    // stopped, which hands its partitions back at once.
    let id = args
        .iter()
        .position(|a| a == "--kafka-instance-id")
        .unwrap();
    args.drain(id..id + 2);
    let mut second = common::spawn("processor", args);
    common::wait_ready(&Client::new(), &second.base).await;
    // It leaves once the group has settled: both members hold partitions of each topic,
    // together all of them, unchanged for 3 s.
    let first = s
        .procs
        .iter()
        .find(|p| p.role == "processor")
        .unwrap()
        .base
        .clone();
    let pipeline: Value = s.admin_get("/api/v1/admin/pipeline").await;
    let count = |t: &str| {
        pipeline["topics"][t]
            .as_array()
            .map_or(0, |a| a.len() as u64)
    };
    let partitions =
        ["clicks", "events", "events-by-order", "events-by-customer"].map(|t| (t, count(t)));
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let mut settled_since = None::<std::time::Instant>;
    loop {
        let (a, b) = (held(&first).await, held(&second.base).await);
        let settled = partitions.iter().all(|(t, n)| {
            let (x, y) = (a.get(*t).copied(), b.get(*t).copied());
            *n > 0 && y.unwrap_or(0) > 0 && x.unwrap_or(0) + y.unwrap_or(0) == *n
        });
        settled_since = match (settled, settled_since) {
            (false, _) => None,
            (true, None) => Some(std::time::Instant::now()),
            (true, since) => since,
        };
        if settled_since.is_some_and(|t| t.elapsed() >= Duration::from_secs(3)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the group never settled with both processors: {a:?} {b:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    second.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t = running.finish().await;
    assert!(t.not_redirected.is_empty(), "{:?}", t.not_redirected);
    assert_eq!(t.refused, 0);
    assert_exact(&s, &t).await;
}

#[tokio::test]
async fn the_broker_stopped_for_30_seconds_under_load_loses_nothing() {
    broker_frozen_under_load("brokerdown", "bd", Duration::from_secs(30)).await;
}

/// Back 5 s after it froze, 2 s after the first records timed out (the roles wait 3 s): the
/// producers' clients that timed out must be gone by then, or the records they still hold go
/// out under the epoch they bumped by themselves, which this broker does not survive.
#[tokio::test]
async fn the_broker_back_just_after_the_delivery_timeout_loses_nothing() {
    broker_frozen_under_load("brokerblip", "bb", Duration::from_secs(5)).await;
}

/// Freezes a broker of the test's own for `pause` under redirect and event load: every redirect
/// answered 302, every click and every acknowledged event stored once.
async fn broker_frozen_under_load(test: &str, tag: &'static str, pause: Duration) {
    let Some(shared) = common::services() else {
        return;
    };
    if std::env::var("CLICKTRAIL_TANSU").is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CLICKTRAIL_TANSU is not set; scripts/services start provides it"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&dir.path().join("broker")).await;
    let svc = Services {
        kafka: format!("127.0.0.1:{}", broker.port),
        clickhouse: shared.clickhouse.clone(),
    };
    let (s, shop) = deployment(dir.path(), &svc, test).await;
    let running = start_load(&s, &shop, tag);
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.pause();
    tokio::time::sleep(pause).await;
    broker.resume();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let t = running.finish().await;
    assert!(
        t.not_redirected.is_empty(),
        "every redirect answered 302: {:?}",
        t.not_redirected
    );
    assert_exact(&s, &t).await;
}

#[tokio::test]
async fn clickhouse_stopped_under_load_pauses_the_processor_and_loses_nothing() {
    let Some(shared) = common::services() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut ch = ClickHouse::start(&dir.path().join("clickhouse")).await;
    let svc = Services {
        kafka: shared.kafka.clone(),
        clickhouse: format!("http://127.0.0.1:{}", ch.http),
    };
    let (s, shop) = deployment(dir.path(), &svc, "chdown").await;
    let running = start_load(&s, &shop, "cd");
    tokio::time::sleep(Duration::from_secs(3)).await;
    ch.down().await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    // The processor paused: lag grows while the store is away.
    let p: Value = s.admin_get("/api/v1/admin/pipeline").await;
    assert!(
        p["lag"].as_u64().unwrap() > 0,
        "records wait while ClickHouse is down: {p}"
    );
    ch.up().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let t = running.finish().await;
    assert!(t.not_redirected.is_empty(), "{:?}", t.not_redirected);
    assert_eq!(t.refused, 0);
    assert_exact(&s, &t).await;
}
