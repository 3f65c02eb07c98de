//! `kill -9` of the serve process mid-stream, restart on the same data directory, finish the
//! stream: every figure equals that of an uninterrupted run. Every event that got a 2xx counts
//! exactly once (some are deliberately sent again after the restart). The only clicks that may
//! be missing are those redirected within the click flush interval (plus one log commit)
//! before the kill; the test checks that and holds every other figure to exactness.

mod common;

use common::{FLUSH_MS, Server};
use reqwest::{Client, StatusCode, header};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

const OPS: usize = 360;
const WORKERS: usize = 4;
/// A click answered this long before the kill must have been durable.
const LOSS_WINDOW: Duration = Duration::from_millis(FLUSH_MS + 200);

const BOT: &str = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)";

fn visitor(i: usize) -> usize {
    i % 50
}
fn link_of(i: usize) -> usize {
    (i / 7) % 3
}
fn is_bot(i: usize) -> bool {
    i.is_multiple_of(13)
}
fn user_agent(i: usize) -> String {
    if is_bot(i) {
        BOT.to_string()
    } else {
        format!("Mozilla/5.0 (X11; Linux x86_64) Crash/{}", visitor(i))
    }
}

fn events_of(i: usize, click_id: &str, codes: &[String]) -> Value {
    let mut batch = Vec::new();
    if i.is_multiple_of(3) {
        batch.push(json!({"event_id": format!("p{i}"), "action": "purchase", "order_id": format!("o{i}"),
            "value": format!("{}.{:02}", 10 + i % 50, i % 100), "click_id": click_id, "customer_id": format!("cust{i}")}));
    } else if i % 3 == 1 {
        batch.push(json!({"event_id": format!("a{i}"), "action": "add_to_cart", "click_id": click_id, "customer_id": format!("cust{i}")}));
    }
    if i.is_multiple_of(5) {
        batch.push(json!({"event_id": format!("s{i}"), "action": "signup", "ref_code": codes[(i + 1) % codes.len()]}));
    }
    Value::Array(batch)
}

#[derive(Clone, Debug)]
struct Click {
    id: String,
    at: Instant,
}

#[derive(Default)]
struct Record {
    clicks: BTreeMap<usize, Click>,
    events_acked: HashSet<usize>,
}

struct Stream {
    base: String,
    key: String,
    codes: Vec<String>,
    http: Client,
}

impl Stream {
    /// One shopper: follow the link, then send the advertiser's events. Returns false when the
    /// server did not answer.
    async fn op(&self, i: usize, rec: &Mutex<Record>) -> bool {
        let existing = rec.lock().await.clicks.get(&i).cloned();
        let click = match existing {
            Some(c) => c,
            None => {
                let resp = self
                    .http
                    .get(format!("{}/r/{}", self.base, self.codes[link_of(i)]))
                    .header(header::USER_AGENT, user_agent(i))
                    .send()
                    .await;
                let Ok(resp) = resp else { return false };
                if resp.status() != StatusCode::FOUND {
                    return false;
                }
                let loc = resp.headers()[header::LOCATION]
                    .to_str()
                    .unwrap()
                    .to_string();
                let c = Click {
                    id: common::param(&loc, "click_id").unwrap(),
                    at: Instant::now(),
                };
                rec.lock().await.clicks.insert(i, c.clone());
                c
            }
        };
        if is_bot(i) {
            rec.lock().await.events_acked.insert(i);
            return true;
        }
        let body = events_of(i, &click.id, &self.codes);
        if body.as_array().unwrap().is_empty() {
            rec.lock().await.events_acked.insert(i);
            return true;
        }
        let resp = self
            .http
            .post(format!("{}/api/v1/events", self.base))
            .header("x-api-key", &self.key)
            .json(&body)
            .send()
            .await;
        match resp {
            Ok(r) if r.status() == StatusCode::OK => {
                rec.lock().await.events_acked.insert(i);
                true
            }
            _ => false,
        }
    }
}

async fn setup(s: &Server) -> (String, Vec<String>) {
    let shop = s
        .shop("Crashy", "https://shop.example/", &["Ina", "Jo", "Kai"])
        .await;
    (shop.key, shop.codes)
}

/// Runs ops `todo` with several concurrent shoppers; stops early when `stop` is set.
async fn drive(
    stream: Arc<Stream>,
    todo: Vec<usize>,
    rec: Arc<Mutex<Record>>,
    done: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> Vec<usize> {
    let queue = Arc::new(Mutex::new(
        todo.into_iter().collect::<std::collections::VecDeque<_>>(),
    ));
    let failed = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (stream, rec, done, stop, queue, failed) = (
            stream.clone(),
            rec.clone(),
            done.clone(),
            stop.clone(),
            queue.clone(),
            failed.clone(),
        );
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let Some(i) = queue.lock().await.pop_front() else {
                    break;
                };
                if stream.op(i, &rec).await {
                    done.fetch_add(1, Ordering::SeqCst);
                } else {
                    failed.lock().await.push(i);
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let mut left: Vec<usize> = queue.lock().await.drain(..).collect();
    left.extend(failed.lock().await.drain(..));
    left.sort();
    left
}

struct Figures {
    overview: Value,
    per_influencer: BTreeMap<String, Value>,
    click_ids: HashSet<String>,
    event_ids: Vec<String>,
}

async fn figures(s: &Server) -> Figures {
    s.drain().await;
    let overview = s.admin_get("/api/v1/stats/overview?period=all").await;
    let per = s.admin_get("/api/v1/stats/per-influencer?period=all").await;
    let per_influencer = per["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut r = r.clone();
            let name = r["name"].as_str().unwrap().to_string();
            r.as_object_mut().unwrap().remove("id");
            (name, r)
        })
        .collect();
    let csv = |path: &'static str| async move { s.admin_text(path).await };
    let first_column = |text: String| {
        text.lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    Figures {
        overview,
        per_influencer,
        click_ids: first_column(csv("/api/v1/export/clicks.csv").await)
            .into_iter()
            .collect(),
        event_ids: first_column(csv("/api/v1/export/events.csv").await),
    }
}

/// Clicks and unique clicks the store must hold for these surviving clicks.
fn click_model(rec: &Record, surviving: &HashSet<String>) -> (i64, i64, i64) {
    let mut human = 0;
    let mut bots = 0;
    let mut pairs = HashSet::new();
    for (i, c) in &rec.clicks {
        if !surviving.contains(&c.id) {
            continue;
        }
        if is_bot(*i) {
            bots += 1;
        } else {
            human += 1;
            pairs.insert((visitor(*i), link_of(*i)));
        }
    }
    (human, pairs.len() as i64, bots)
}

const EVENT_FIGURES: [&str; 5] = [
    "purchases",
    "attributed_purchases",
    "add_to_carts",
    "signups",
    "drop_offs",
];

#[tokio::test]
async fn kill_9_mid_stream_loses_and_doubles_nothing() {
    // The uninterrupted run.
    let ref_dir = tempfile::tempdir().unwrap();
    let reference = Server::start(ref_dir.path()).await;
    let (key, codes) = setup(&reference).await;
    let stream = Arc::new(Stream {
        base: reference.base.clone(),
        key,
        codes,
        http: Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    });
    let ref_rec = Arc::new(Mutex::new(Record::default()));
    let left = drive(
        stream,
        (0..OPS).collect(),
        ref_rec.clone(),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    )
    .await;
    assert!(left.is_empty());
    let want = figures(&reference).await;
    let ref_rec = ref_rec.lock().await;
    assert_eq!(
        click_model(&ref_rec, &want.click_ids),
        (
            want.overview["clicks"].as_i64().unwrap(),
            want.overview["unique_clicks"].as_i64().unwrap(),
            want.overview["bot_clicks"].as_i64().unwrap()
        ),
        "the click model matches the server on an uninterrupted run"
    );

    // The same stream, killed halfway.
    let dir = tempfile::tempdir().unwrap();
    let mut first = Server::start(dir.path()).await;
    let (key, codes) = setup(&first).await;
    let http = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let stream = Arc::new(Stream {
        base: first.base.clone(),
        key: key.clone(),
        codes: codes.clone(),
        http: http.clone(),
    });
    let rec = Arc::new(Mutex::new(Record::default()));
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let run = tokio::spawn(drive(
        stream,
        (0..OPS).collect(),
        rec.clone(),
        done.clone(),
        stop.clone(),
    ));
    while done.load(Ordering::SeqCst) < OPS / 2 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let killed_at = Instant::now();
    first.kill9();
    stop.store(true, Ordering::SeqCst);
    let left = run.await.unwrap();
    assert!(!left.is_empty(), "the kill happened mid-stream");
    let acked_before: Vec<usize> = rec.lock().await.events_acked.iter().copied().collect();

    // Restart on the same directory and finish, sending some acknowledged events again.
    let second = Server::start(dir.path()).await;
    let stream = Arc::new(Stream {
        base: second.base.clone(),
        key,
        codes,
        http,
    });
    let again: Vec<usize> = acked_before
        .iter()
        .copied()
        .filter(|i| *i % 4 == 0)
        .collect();
    for i in &again {
        rec.lock().await.events_acked.remove(i);
    }
    let mut todo = left.clone();
    todo.extend(again.iter().copied());
    let still = drive(
        stream,
        todo,
        rec.clone(),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    )
    .await;
    assert!(still.is_empty());
    let got = figures(&second).await;
    let rec = rec.lock().await;

    // Events: exactly the uninterrupted run's figures, each acknowledged event once.
    for k in EVENT_FIGURES {
        assert_eq!(
            got.overview[k], want.overview[k],
            "{k}: got {} want {}",
            got.overview, want.overview
        );
    }
    assert_eq!(got.overview["revenue"], want.overview["revenue"]);
    assert_eq!(
        got.overview["attributed_revenue"],
        want.overview["attributed_revenue"]
    );
    let mut ids = got.event_ids.clone();
    ids.sort();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no event stored twice");
    assert_eq!(ids.len(), want.event_ids.len());
    for (name, w) in &want.per_influencer {
        let g = &got.per_influencer[name];
        for k in EVENT_FIGURES {
            assert_eq!(g[k], w[k], "{name} {k}");
        }
        assert_eq!(g["revenue"], w["revenue"], "{name} revenue");
    }

    // Clicks: only those answered just before the kill may be missing.
    let lost: Vec<&Click> = rec
        .clicks
        .values()
        .filter(|c| !got.click_ids.contains(&c.id))
        .collect();
    for c in &lost {
        let before_kill = killed_at.saturating_duration_since(c.at);
        assert!(
            before_kill < LOSS_WINDOW,
            "a click answered {before_kill:?} before the kill was lost"
        );
    }
    let (clicks, uniques, bots) = click_model(&rec, &got.click_ids);
    assert_eq!(got.overview["clicks"], json!(clicks));
    assert_eq!(got.overview["unique_clicks"], json!(uniques));
    assert_eq!(got.overview["bot_clicks"], json!(bots));
    if lost.is_empty() {
        for k in ["clicks", "unique_clicks", "bot_clicks", "conversion_rate"] {
            assert_eq!(got.overview[k], want.overview[k], "{k}");
        }
        assert_eq!(got.per_influencer, want.per_influencer);
    }
    println!(
        "killed after {} of {OPS} shoppers; {} redone; {} clicks lost within {LOSS_WINDOW:?} of the kill",
        OPS - left.len(),
        left.len(),
        lost.len()
    );
}
