//! A headless Chromium driven over WebDriver (Debian's `chromium` and `chromedriver`, which
//! `scripts/services install` installs): one chromedriver process per test on a free loopback port.
//! Under `CI=true` a missing browser fails the test; elsewhere it skips it.

use crate::common::Server;
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

pub struct Browser {
    pub c: Client,
    driver: Child,
    port: u16,
    pub shots: PathBuf,
}

/// Where screenshots go: `$CLICKTRAIL_SCREENSHOTS`, else `screenshots/` in the cargo target
/// directory (`scripts/test` sets `CARGO_TARGET_DIR`).
pub fn screenshot_dir() -> PathBuf {
    if let Ok(d) = std::env::var("CLICKTRAIL_SCREENSHOTS") {
        return PathBuf::from(d);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir().join("clicktrail-target"));
    target.join("screenshots")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium at 1280 × 900; `None` (skip) when they are
    /// not installed outside CI.
    pub async fn start() -> Option<Browser> {
        if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists()
        {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{CHROMEDRIVER} or {CHROMIUM} is missing; `scripts/services install` installs them"
            );
            eprintln!(
                "skipped: Chromium and chromedriver are not installed (scripts/services install)"
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--lang=en-US", "--no-first-run", "--disable-extensions"],
            }),
        );
        caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let c = loop {
            let mut builder =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
            match builder.capabilities(caps.clone()).connect(&url).await {
                Ok(c) => break c,
                Err(e) => {
                    assert!(Instant::now() < deadline, "chromedriver did not start: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        let shots = screenshot_dir();
        std::fs::create_dir_all(&shots).unwrap();
        Some(Browser {
            c,
            driver,
            port,
            shots,
        })
    }

    /// The browser's console messages of level SEVERE (errors) since the last read of the
    /// console.
    pub async fn console_errors(&self) -> Vec<String> {
        self.console("SEVERE").await
    }

    /// The browser's console messages of `level` (`SEVERE`, `WARNING`, `INFO`) since the last
    /// read of the console (a read takes every message, of every level).
    pub async fn console(&self, level: &str) -> Vec<String> {
        let id = self.c.session_id().await.unwrap().unwrap();
        let v: Value = reqwest::Client::new()
            .post(format!(
                "http://127.0.0.1:{}/session/{id}/se/log",
                self.port
            ))
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["value"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == json!(level))
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Runs `script` (a function body) and returns its value.
    pub async fn js(&self, script: &str) -> Value {
        self.c.execute(script, vec![]).await.unwrap()
    }

    /// Waits until `script` returns true, for at most 20 seconds.
    pub async fn until(&self, what: &str, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.js(script).await == json!(true) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn text(&self, css: &str) -> String {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .unwrap()
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let e = self
            .c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        e.clear().await.unwrap();
        e.send_keys(value).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    pub async fn select(&self, css: &str, label: &str) {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .select_by_label(label)
            .await
            .unwrap_or_else(|e| panic!("{css} → {label}: {e}"));
    }

    /// The `Cookie` header the browser would send to the server.
    pub async fn cookie_header(&self) -> String {
        self.c
            .get_all_cookies()
            .await
            .unwrap()
            .iter()
            .map(|c| format!("{}={}", c.name(), c.value()))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Checks what every page must hold (a title, a label for every field, no console error,
    /// no sideways scrolling at 360 px and on a desktop) and writes a screenshot of it at both
    /// widths, `{name}-1280.png` and `{name}-360.png`.
    pub async fn check_page(&self, name: &str) {
        let title = self.c.title().await.unwrap();
        assert!(
            title.ends_with("· clicktrail") && title.len() > 14,
            "{name}: title {title:?}"
        );
        let unlabelled = self
            .js(r#"return Array.from(document.querySelectorAll("input, select, textarea"))
                .filter((e) => e.type !== "hidden" && !(e.id && document.querySelector('label[for="' + e.id + '"]')) && !e.closest("label") && !e.getAttribute("aria-label"))
                .map((e) => e.outerHTML);"#)
            .await;
        assert_eq!(unlabelled, json!([]), "{name}: fields without a label");
        let unfocusable = self
            .js(
                r#"return Array.from(document.querySelectorAll("a[href], button, input, select"))
                .filter((e) => e.tabIndex < 0).map((e) => e.outerHTML);"#,
            )
            .await;
        assert_eq!(
            unfocusable,
            json!([]),
            "{name}: controls out of the keyboard's reach"
        );
        for (w, h) in [(1280u32, 900u32), (360, 800)] {
            self.c.set_window_size(w, h).await.unwrap();
            self.js("window.scrollTo(0, 0);").await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let fits = self
                .js("return [document.documentElement.scrollWidth, window.innerWidth];")
                .await;
            let (scroll, inner) = (fits[0].as_i64().unwrap(), fits[1].as_i64().unwrap());
            let png = self.c.screenshot().await.unwrap();
            std::fs::write(self.shots.join(format!("{name}-{w}.png")), png).unwrap();
            if scroll > inner {
                let wide = self
                    .js("return Array.from(document.querySelectorAll('body *')).filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.table')).slice(0, 5).map((e) => e.tagName + '.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().right));")
                    .await;
                panic!("{name} at {w} px: the page scrolls sideways ({scroll} > {inner}): {wide}");
            }
        }
        self.c.set_window_size(1280, 900).await.unwrap();
        let errors = self.console_errors().await;
        assert!(errors.is_empty(), "{name}: console errors {errors:?}");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

// What the browser test does with a page: the demo's logins, logging in, waiting for the
// figures, reading a scorecard, choosing a range.

/// The demo's logins (email and password) of each role.
pub struct Logins {
    pub admin: (String, String),
    pub advertiser: (String, String),
    pub influencer: (String, String),
}

/// The demo's logins, from `demo.json` once the demo made them.
pub async fn demo_logins(s: &Server) -> Logins {
    let file = s.data.join("demo.json");
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    loop {
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Ok(v) = serde_json::from_str::<Value>(&text)
            && v["history"] == json!(true)
            && v["users"].as_array().is_some_and(|u| u.len() == 3)
        {
            let login = |role: &str| {
                let u = v["users"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|u| u["role"] == json!(role))
                    .unwrap();
                (
                    u["email"].as_str().unwrap().to_string(),
                    u["password"].as_str().unwrap().to_string(),
                )
            };
            return Logins {
                admin: login("admin"),
                advertiser: login("advertiser"),
                influencer: login("influencer"),
            };
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the demo did not finish"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub async fn log_in(b: &Browser, s: &Server, who: &(String, String), lands_on: &str) {
    b.c.goto(&s.url("/login")).await.unwrap();
    b.fill("#email", &who.0).await;
    b.fill("#password", &who.1).await;
    b.click("#login-form button[type=submit]").await;
    b.until(
        &format!("{lands_on} after login"),
        &format!(
            "return location.pathname === {lands_on:?} && document.readyState === 'complete';"
        ),
    )
    .await;
}

/// Waits until the dashboard finished loading its figures; returns the milliseconds from the
/// start of navigation.
pub async fn loaded(b: &Browser) -> f64 {
    b.until(
        "the figures",
        "return (document.querySelector('#status')||{}).textContent.startsWith('Updated');",
    )
    .await;
    b.js("return performance.now();").await.as_f64().unwrap()
}

/// A GET with the browser's session cookie: what the API answers the same user.
pub async fn api(s: &Server, cookie: &str, path: &str) -> Value {
    let r = s
        .http
        .get(s.url(path))
        .header(header::COOKIE, cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.unwrap()
}

/// The scorecard `metric`'s exact value on the page.
pub async fn card(b: &Browser, metric: &str) -> f64 {
    let v = b
        .js(&format!("const e = document.querySelector('[data-metric=\"{metric}\"] .value'); return e ? e.dataset.value : null;"))
        .await;
    v.as_str()
        .unwrap_or_else(|| panic!("no scorecard {metric}"))
        .parse()
        .unwrap()
}

pub async fn range(b: &Browser, preset: &str) {
    b.select("#range-preset", preset).await;
    b.js("document.querySelector('#status').textContent = '';")
        .await;
    b.click("#range button[type=submit]").await;
}
