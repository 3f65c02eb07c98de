//! The README as a newcomer meets it: its curl walkthrough, run verbatim against a fresh
//! `serve`, ends with one human click and one attributed purchase; and `serve --demo` (the
//! README's run command) prints URLs that all answer, fills every period, reuses its advertiser
//! on a second start and stops quietly on Ctrl-C.
//!
//! Both run the binary as the README's commands do, in a fresh working directory (so the
//! default `./clicktrail-data` is used), on a free port instead of 8080 (`--listen
//! 127.0.0.1:0`; the walkthrough reads its base URL from `B`, which it defaults to
//! `http://127.0.0.1:8080`).

use reqwest::{Client, StatusCode};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `clicktrail serve` started in a directory, its output collected line by line.
struct Serve {
    child: Child,
    base: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

fn collect(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

impl Serve {
    fn start(dir: &Path, extra: &[&str]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_clicktrail"))
            .current_dir(dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "info")
            .env_remove("CLICKTRAIL_DEMO")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start clicktrail");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        let mut serve = Serve {
            child,
            base: String::new(),
            stdout,
            stderr,
        };
        let addr = serve.wait_line("clicktrail is listening on ", Duration::from_secs(180));
        serve.base = format!("http://{}", addr.trim());
        serve
    }

    /// The rest of the first stdout line that starts with `prefix`, waiting for it.
    fn wait_line(&self, prefix: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(l) = self
                .stdout
                .lock()
                .unwrap()
                .iter()
                .find_map(|l| l.strip_prefix(prefix))
            {
                return l.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no line {prefix:?}; stdout: {:?}; stderr: {:?}",
                self.stdout.lock().unwrap(),
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Ctrl-C, and the exit status.
    fn interrupt(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-INT", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                let err = self.stderr.lock().unwrap().clone();
                return (status, err);
            }
            assert!(Instant::now() < deadline, "serve did not stop on Ctrl-C");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn ready(http: &Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !http
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .is_ok_and(|r| r.status() == StatusCode::OK)
    {
        assert!(Instant::now() < deadline, "{base} never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A GET with an advertiser's API key, answered with JSON.
async fn get_json(http: &Client, url: &str, key: &str) -> Value {
    http.get(url)
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The README's walkthrough block: the first `sh` block after its heading.
fn walkthrough() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme
        .find("## A walkthrough with curl")
        .expect("the README has the walkthrough")..];
    let start = section.find("```sh\n").expect("a sh block") + 6;
    let len = section[start..].find("```").expect("the block ends");
    section[start..start + len].to_string()
}

#[tokio::test]
async fn the_readme_walkthrough_ends_with_a_human_click_and_an_attributed_purchase() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &[]);
    let http = Client::new();
    ready(&http, &serve.base).await;
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &walkthrough()])
        .current_dir(dir.path())
        .env("B", &serve.base)
        .output()
        .expect("bash runs the walkthrough");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the walkthrough failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What the walkthrough printed: the Location, then the overview it asked for.
    let location = stdout
        .lines()
        .find(|l| l.starts_with("https://shop.example/"))
        .unwrap_or_else(|| panic!("no Location printed: {stdout}"));
    assert!(
        location.contains("ref_code=") && location.contains("click_id="),
        "{location}"
    );
    let overview: Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v.get("clicks").is_some())
        .unwrap_or_else(|| panic!("no overview in {stdout}"));
    assert_eq!(overview["clicks"], 1, "{overview}");
    assert_eq!(overview["bot_clicks"], 0, "{overview}");
    assert_eq!(overview["purchases"], 1, "{overview}");
    assert_eq!(overview["attributed_purchases"], 1, "{overview}");
    assert_eq!(
        overview["revenue"],
        serde_json::json!([{"currency": "EUR", "amount_minor": 5990}]),
        "{overview}"
    );
    // The audit it fetched names the influencer's click.
    let audit: Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v.get("attributed_by").is_some() || v.get("attribution").is_some())
        .unwrap_or_else(|| panic!("no attribution audit in {stdout}"));
    assert!(audit.to_string().contains("click_id"), "{audit}");
    let csv = std::fs::read_to_string(dir.path().join("events.csv")).unwrap();
    assert!(csv.lines().next().unwrap().contains("event_id"), "{csv}");
    assert_eq!(csv.lines().count(), 2, "{csv}");
}

/// Every URL the banner prints: those for anyone answer 200; those behind credentials answer
/// 200 with the admin token it printed, and a JSON 401 without.
async fn check_banner_urls(http: &Client, lines: &[String]) {
    let token = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("admin token "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the first start prints the admin token")
        .to_string();
    // (URL, whether the banner marks it POST-only)
    let mut urls: Vec<(String, bool)> = Vec::new();
    for l in lines {
        let words: Vec<&str> = l.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            if w.starts_with("http://") && !w.contains('<') {
                let url = w.trim_end_matches(['.', ',', ')']).to_string();
                urls.push((url, i > 0 && words[i - 1] == "POST"));
            }
        }
    }
    assert!(urls.len() >= 5, "{lines:?}");
    for (url, post_only) in urls {
        let open = http.get(&url).send().await.unwrap();
        let status = open.status();
        if post_only {
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{url}");
            let allow = open.headers()["allow"].to_str().unwrap().to_string();
            assert!(allow.contains("POST"), "{url}: {allow}");
            let body: Value = open.json().await.unwrap();
            assert!(body["message"].is_string(), "{url}: {body}");
            continue;
        }
        if status == StatusCode::OK {
            continue;
        }
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{url}");
        let body: Value = open.json().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(body["message"].is_string(), "{url}: {body}");
        let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{url} with the admin token");
    }
}

#[tokio::test]
async fn the_demo_fills_every_period_reuses_its_advertiser_and_stops_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let http = Client::new();
    let serve = Serve::start(dir.path(), &["--demo", "--demo-visitors", "15"]);
    ready(&http, &serve.base).await;
    let banner = serve.stdout.lock().unwrap().clone();
    check_banner_urls(&http, &banner).await;
    let key = serve.wait_line(
        "demo: done. The demo advertiser's API key is ",
        Duration::from_secs(300),
    );
    serve.wait_line("demo: wrote 90 days of history", Duration::from_secs(1));
    // Once the processor has stored it all, each longer period holds more.
    let mut clicks = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        clicks.clear();
        for period in ["today", "7d", "30d", "all"] {
            let o: Value = http
                .get(format!(
                    "{}/api/v1/stats/overview?period={period}",
                    serve.base
                ))
                .header("x-api-key", key.trim())
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            clicks.push((
                o["clicks"].as_u64().unwrap(),
                o["purchases"].as_u64().unwrap(),
            ));
        }
        let growing = clicks
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1);
        if growing && clicks[3].0 > 5_000 && clicks[3].1 > 100 {
            break;
        }
        assert!(Instant::now() < deadline, "periods: {clicks:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let all: Value = get_json(
        &http,
        &format!("{}/api/v1/stats/overview?period=all", serve.base),
        key.trim(),
    )
    .await;
    assert!(
        all["unique_clicks"].as_u64().unwrap() < all["clicks"].as_u64().unwrap(),
        "some shoppers click twice: {all}"
    );
    let chart: Value = get_json(
        &http,
        &format!("{}/api/v1/stats/chart?period=30d", serve.base),
        key.trim(),
    )
    .await;
    let buckets = chart["series"].as_array().map_or(0, Vec::len);
    assert!(buckets >= 28, "a month of daily buckets: {chart}");
    let (status, stderr) = serve.interrupt();
    assert!(status.success(), "{status}: {stderr:?}");
    assert!(!stderr.iter().any(|l| l.contains("ERROR")), "{stderr:?}");

    // Started again on the same data, with Ctrl-C while its shoppers are still coming.
    let again = Serve::start(dir.path(), &["--demo", "--demo-visitors", "100000"]);
    ready(&http, &again.base).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let token = std::fs::read_to_string(dir.path().join("clicktrail-data/admin-token")).unwrap();
    let advertisers: Value = http
        .get(format!("{}/api/v1/admin/advertisers", again.base))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = advertisers["items"]
        .as_array()
        .or(advertisers.as_array())
        .unwrap()
        .clone();
    assert_eq!(list.len(), 1, "one demo advertiser: {advertisers}");
    assert!(
        !again
            .stdout
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("demo: wrote")),
        "history is written once"
    );
    // The second start's shoppers buy new orders: none is set aside as a copy of the first's.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let dead: Value = http
        .get(format!(
            "{}/api/v1/admin/dead-letter?limit=1000",
            again.base
        ))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !dead.to_string().contains("duplicate_order"),
        "no order of the demo is counted twice: {dead}"
    );
    let (status, stderr) = again.interrupt();
    assert!(status.success(), "{status}: {stderr:?}");
    assert!(!stderr.iter().any(|l| l.contains("ERROR")), "{stderr:?}");
}
