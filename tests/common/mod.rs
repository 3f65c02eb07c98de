//! Test harness: runs the real `clicktrail serve` binary on a free loopback port and talks to
//! it over HTTP only.
#![allow(dead_code)]

use reqwest::{Client, Response, StatusCode, header};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN: &str = "test-admin-token-0123456789";
/// `--click-flush-ms` used by the tests.
pub const FLUSH_MS: u64 = 100;

pub struct Server {
    pub child: Child,
    pub base: String,
    pub data: PathBuf,
    pub http: Client,
}

impl Server {
    pub async fn start(data: &Path) -> Server {
        Self::start_with(data, &[]).await
    }

    pub async fn start_with(data: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_clicktrail"))
            .args(["serve", "--listen", "127.0.0.1:0", "--admin-token", ADMIN])
            .args(["--click-keys", "1:integration-test-click-key-000"])
            .args([
                "--click-flush-ms",
                &FLUSH_MS.to_string(),
                "--batch-max-wait-ms",
                "50",
            ])
            .arg("--data-dir")
            .arg(data)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start clicktrail");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("clicktrail is listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server printed its address");
        let server = Server {
            child,
            base: format!("http://{addr}"),
            data: data.to_path_buf(),
            http: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = server.http.get(server.url("/health/ready")).send().await
                && r.status() == StatusCode::OK
            {
                break;
            }
            assert!(Instant::now() < deadline, "server never became ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaped");
    }

    /// SIGINT, then wait for a clean exit.
    pub fn stop(&mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill -INT");
        let status = self.child.wait().expect("exited");
        assert!(status.success(), "clean shutdown, got {status}");
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    /// Posts to the admin API and returns the created entity's `id`.
    pub async fn create(&self, path: &str, body: Value) -> String {
        self.admin_post(path, body).await["id"]
            .as_str()
            .expect("an id")
            .to_string()
    }

    /// An advertiser with an API key and one campaign to `destination`, whose influencers
    /// (by name) are assigned and have one link each.
    pub async fn shop(&self, name: &str, destination: &str, influencers: &[&str]) -> Shop {
        let advertiser = self
            .create("/api/v1/admin/advertisers", json!({"name": name}))
            .await;
        let key = self
            .admin_post(
                &format!("/api/v1/admin/advertisers/{advertiser}/api-keys"),
                json!({}),
            )
            .await["key"]
            .as_str()
            .expect("a key")
            .to_string();
        let campaign = self
            .create(
                &format!("/api/v1/admin/advertisers/{advertiser}/campaigns"),
                json!({"name": format!("{name} campaign"), "destination_url": destination}),
            )
            .await;
        let mut shop = Shop {
            advertiser,
            key,
            campaign,
            influencers: Vec::new(),
            codes: Vec::new(),
        };
        for inf in influencers {
            let id = self
                .create("/api/v1/admin/influencers", json!({"name": inf}))
                .await;
            self.admin_post(
                &format!("/api/v1/admin/campaigns/{}/influencers", shop.campaign),
                json!({"influencer_id": id}),
            )
            .await;
            let link = self
                .admin_post(
                    "/api/v1/admin/links",
                    json!({"campaign_id": shop.campaign, "influencer_id": id}),
                )
                .await;
            shop.codes
                .push(link["code"].as_str().expect("a code").to_string());
            shop.influencers.push(id);
        }
        shop
    }

    pub async fn admin_get(&self, path: &str) -> Value {
        let text = self.admin_text(path).await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
    }

    /// A text answer (JSON, CSV exports) with the admin token; anything but 200 fails the test.
    pub async fn admin_text(&self, path: &str) -> String {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        r.text().await.unwrap()
    }

    pub async fn get_with_key(&self, path: &str, key: &str) -> Response {
        self.http
            .get(self.url(path))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_events(&self, key: &str, body: &Value) -> Response {
        self.http
            .post(self.url("/api/v1/events"))
            .header("x-api-key", key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Follows a tracking link as a shopper with this user agent; returns the response.
    pub async fn click(&self, path: &str, user_agent: &str) -> Response {
        self.http
            .get(self.url(path))
            .header(header::USER_AGENT, user_agent)
            .send()
            .await
            .unwrap()
    }

    /// Waits until every click queued so far is in the log and the processor has stored
    /// everything in the log.
    pub async fn drain(&self) {
        tokio::time::sleep(Duration::from_millis(FLUSH_MS * 3)).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let p = self.admin_get("/api/v1/admin/pipeline").await;
            if p["lag"] == json!(0) {
                return;
            }
            assert!(Instant::now() < deadline, "processor did not catch up: {p}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What [`Server::shop`] created.
pub struct Shop {
    pub advertiser: String,
    pub key: String,
    pub campaign: String,
    pub influencers: Vec<String>,
    pub codes: Vec<String>,
}

/// A query parameter of a URL.
pub fn param(url: &str, name: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    parsed
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The `click_id` of a 302.
pub fn click_id(resp: &Response) -> String {
    assert_eq!(resp.status(), StatusCode::FOUND);
    let loc = resp.headers()[header::LOCATION].to_str().unwrap();
    param(loc, "click_id").expect("click_id in Location")
}
