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

/// One `clicktrail` process.
pub struct Proc {
    /// `serve`, `redirector`, `ingest`, `processor` or `query`.
    pub role: String,
    pub child: Child,
    pub base: String,
    /// The arguments it was started with, to restart it the same way.
    pub args: Vec<String>,
}

/// A running deployment: one `serve` process, or one process per role on Kafka and
/// ClickHouse. Requests go to the role that serves their path.
pub struct Server {
    pub procs: Vec<Proc>,
    /// The base URL of `serve`, or of ingest in a deployment of roles.
    pub base: String,
    pub data: PathBuf,
    pub http: Client,
}

/// Addresses of the real services (`scripts/services start`). Under `CI=true` their absence
/// fails the test; elsewhere it skips it.
pub struct Services {
    pub kafka: String,
    pub clickhouse: String,
}

pub fn services() -> Option<Services> {
    let kafka = std::env::var("CLICKTRAIL_TEST_KAFKA").unwrap_or_default();
    let clickhouse = std::env::var("CLICKTRAIL_TEST_CLICKHOUSE").unwrap_or_default();
    if kafka.is_empty() || clickhouse.is_empty() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CLICKTRAIL_TEST_KAFKA / CLICKTRAIL_TEST_CLICKHOUSE are not set; scripts/services start provides them"
        );
        eprintln!("skipped: Kafka and ClickHouse are not configured");
        return None;
    }
    Some(Services { kafka, clickhouse })
}

/// Starts `clicktrail <args>` and waits for its address.
pub fn spawn(role: &str, args: Vec<String>) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clicktrail"))
        .args(&args)
        .env(
            "RUST_LOG",
            std::env::var("TEST_RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
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
        .recv_timeout(Duration::from_secs(180))
        .unwrap_or_else(|_| panic!("{role} printed its address"));
    Proc {
        role: role.to_string(),
        child,
        base: format!("http://{addr}"),
        args,
    }
}

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Waits until `base` answers ready.
pub async fn wait_ready(http: &Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Ok(r) = http.get(format!("{base}/health/ready")).send().await
            && r.status() == StatusCode::OK
        {
            return;
        }
        assert!(Instant::now() < deadline, "{base} never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Secrets every role of a test deployment shares.
const CLICK_KEYS: &str = "1:integration-test-click-key-000";
const VISITOR_SALT: &str = "integration-test-visitor-salt";

/// Role arguments of a test deployment on `svc`, its ClickHouse database and data directory.
pub fn role_args(
    role: &str,
    svc: &Services,
    database: &str,
    data: &Path,
    extra: &[&str],
) -> Vec<String> {
    let mut a: Vec<String> = [
        role,
        "--listen",
        "127.0.0.1:0",
        "--brokers",
        &svc.kafka,
        "--clickhouse-url",
        &svc.clickhouse,
        "--clickhouse-database",
        database,
        "--admin-token",
        ADMIN,
        "--click-keys",
        CLICK_KEYS,
        "--visitor-salt",
        VISITOR_SALT,
        "--group",
        &format!("{database}-processor"),
        "--topic-prefix",
        &format!("{database}-"),
        "--batch-max-wait-ms",
        "50",
        "--kafka-delivery-timeout-ms",
        "3000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push("--data-dir".into());
    a.push(data.join(role).display().to_string());
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

impl Server {
    pub async fn start(data: &Path) -> Server {
        Self::start_with(data, &[]).await
    }

    pub async fn start_with(data: &Path, extra: &[&str]) -> Server {
        let mut args: Vec<String> = ["serve", "--listen", "127.0.0.1:0", "--admin-token", ADMIN]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(
            [
                "--click-keys",
                CLICK_KEYS,
                "--click-flush-ms",
                &FLUSH_MS.to_string(),
                "--batch-max-wait-ms",
                "50",
                "--data-dir",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        args.push(data.display().to_string());
        args.extend(extra.iter().map(|s| s.to_string()));
        let proc = spawn("serve", args);
        let server = Server {
            base: proc.base.clone(),
            procs: vec![proc],
            data: data.to_path_buf(),
            http: client(),
        };
        wait_ready(&server.http, &server.base).await;
        server
    }

    /// One process per role on Kafka and ClickHouse: redirector, ingest (whose link URLs
    /// point at the redirector), processor and query, with their own ClickHouse database.
    pub async fn cluster(data: &Path, svc: &Services, database: &str) -> Server {
        let redirector = spawn(
            "redirector",
            role_args("redirector", svc, database, data, &[]),
        );
        let ingest = spawn(
            "ingest",
            role_args(
                "ingest",
                svc,
                database,
                data,
                &["--public-url", &redirector.base],
            ),
        );
        let processor = spawn(
            "processor",
            role_args("processor", svc, database, data, &[]),
        );
        let query = spawn("query", role_args("query", svc, database, data, &[]));
        let server = Server {
            base: ingest.base.clone(),
            procs: vec![redirector, ingest, processor, query],
            data: data.to_path_buf(),
            http: client(),
        };
        for p in &server.procs {
            wait_ready(&server.http, &p.base).await;
        }
        server
    }

    /// The process of `role`.
    pub fn proc_mut(&mut self, role: &str) -> &mut Proc {
        self.procs
            .iter_mut()
            .find(|p| p.role == role)
            .unwrap_or_else(|| panic!("no {role} process"))
    }

    fn base_for(&self, path: &str) -> &str {
        if self.procs.len() == 1 {
            return &self.base;
        }
        let role = if path.starts_with("/r/") || path.starts_with("/ref/") {
            "redirector"
        } else if [
            "/api/v1/stats",
            "/api/v1/export",
            "/api/v1/sql",
            "/api/v1/attribution",
        ]
        .iter()
        .any(|p| path.starts_with(p))
        {
            "query"
        } else {
            "ingest"
        };
        self.procs
            .iter()
            .find(|p| p.role == role)
            .map(|p| p.base.as_str())
            .unwrap_or(&self.base)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_for(path))
    }

    /// In a deployment of roles: waits until every role applied the catalog as far as ingest
    /// has (each role follows the catalog topic on its own).
    pub async fn sync_catalog(&self) {
        if self.procs.len() == 1 {
            return;
        }
        let position = |base: String| {
            let http = self.http.clone();
            async move {
                let r = http.get(format!("{base}/health/ready")).send().await.ok()?;
                r.headers()
                    .get("x-clicktrail-catalog")?
                    .to_str()
                    .ok()?
                    .parse::<u64>()
                    .ok()
            }
        };
        let target = position(self.base.clone()).await.unwrap_or(0);
        let deadline = Instant::now() + Duration::from_secs(30);
        for p in &self.procs {
            loop {
                if position(p.base.clone()).await.is_some_and(|n| n >= target) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{} did not catch up with the catalog",
                    p.role
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// SIGKILL of every process: no chance to flush anything.
    pub fn kill9(&mut self) {
        for p in &mut self.procs {
            p.kill9();
        }
    }

    /// SIGINT to every process, then wait for clean exits.
    pub fn stop(&mut self) {
        for p in &mut self.procs {
            p.stop();
        }
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
        self.sync_catalog().await;
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
        self.sync_catalog().await;
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
        self.sync_catalog().await;
        tokio::time::sleep(Duration::from_millis(FLUSH_MS * 3)).await;
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            // 503 while the bus is unreachable: keep waiting.
            let r = self
                .http
                .get(self.url("/api/v1/admin/pipeline"))
                .bearer_auth(ADMIN)
                .send()
                .await;
            let p: Option<Value> = match r {
                Ok(r) if r.status() == StatusCode::OK => r.json().await.ok(),
                _ => None,
            };
            if p.as_ref().is_some_and(|p| p["lag"] == json!(0)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "processor did not catch up: {p:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Proc {
    /// SIGKILL.
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
        assert!(
            status.success(),
            "{}: clean shutdown, got {status}",
            self.role
        );
    }

    /// Starts it again with the same arguments (a new port); waits until it is ready.
    pub async fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        *self = spawn(&self.role, self.args.clone());
        wait_ready(&client(), &self.base).await;
    }
}

impl Drop for Proc {
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
