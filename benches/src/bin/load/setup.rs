//! What the harness runs against: nginx with a fixed `return 302`, and clicktrail's four roles
//! on Kafka and ClickHouse (a database and topic prefix of this run's own), with one shop.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN: &str = "load-harness-admin-token-000000";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

async fn wait_http(client: &Client, url: &str, want: StatusCode) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status() == want
        {
            return;
        }
        assert!(Instant::now() < deadline, "{url} never answered {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// nginx answering every request with a fixed 302.
pub struct Nginx {
    child: Child,
    pub base: String,
}

impl Nginx {
    pub async fn start(bin: &str, dir: &Path) -> Nginx {
        let port = free_port();
        let root = dir.join("nginx");
        std::fs::create_dir_all(root.join("logs")).expect("nginx directory");
        let conf = root.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "worker_processes auto;\ndaemon off;\npid {r}/nginx.pid;\nerror_log {r}/logs/error.log;\n\
                 events {{ worker_connections 4096; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {r}/body;\n  proxy_temp_path {r}/proxy;\n\
                   fastcgi_temp_path {r}/fastcgi;\n  uwsgi_temp_path {r}/uwsgi;\n  scgi_temp_path {r}/scgi;\n\
                   keepalive_requests 1000000;\n\
                   server {{\n    listen 127.0.0.1:{port};\n    location / {{ return 302 https://shop.example/p; }}\n  }}\n}}\n",
                r = root.display()
            ),
        )
        .expect("nginx.conf");
        let child = Command::new(bin)
            .args(["-e", &root.join("logs/error.log").display().to_string()])
            .args(["-p", &root.display().to_string()])
            .args(["-c", &conf.display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {bin} (scripts/services install provides it): {e}"));
        let base = format!("http://127.0.0.1:{port}");
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        wait_http(&client, &format!("{base}/"), StatusCode::FOUND).await;
        Nginx { child, base }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// A Kafka-protocol broker of this run's own (Tansu on SQLite in the scratch directory), so
/// every run starts on an empty broker.
pub struct Broker {
    child: Child,
    pub bootstrap: String,
}

impl Broker {
    pub async fn start(bin: &str, dir: &Path) -> Broker {
        let port = free_port();
        let root = dir.join("broker");
        std::fs::create_dir_all(&root).expect("broker directory");
        let log = std::fs::File::create(root.join("broker.log")).expect("broker log");
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(&root)
            .env("RUST_LOG", "warn")
            .stdout(log.try_clone().expect("broker log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {bin} (scripts/services install provides it): {e}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "the broker never listened on {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Broker {
            child,
            bootstrap: format!("127.0.0.1:{port}"),
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// One shop: an advertiser's API key and one link's code.
pub struct Shop {
    pub key: String,
    pub code: String,
    /// A promo offer on the shop's link, and its one approved variation.
    pub offer_id: String,
    pub variation_id: String,
}

/// The four roles of one deployment.
pub struct Roles {
    children: Vec<Child>,
    pub redirector: String,
    pub ingest: String,
    clickhouse: String,
    database: String,
}

impl Roles {
    /// Starts the roles; `extra` goes to each one's command line.
    pub async fn start(
        bin: &Path,
        brokers: &str,
        clickhouse: &str,
        dir: &Path,
        extra: &[String],
    ) -> Roles {
        let run = format!("load_{}", std::process::id());
        let mut children = Vec::new();
        let mut bases = Vec::new();
        for role in ["redirector", "ingest", "processor", "query"] {
            let log = std::fs::File::create(dir.join(format!("{role}.log"))).expect("role log");
            let mut child = Command::new(bin)
                .arg(role)
                .args(["--listen", "127.0.0.1:0", "--brokers", brokers])
                .args([
                    "--clickhouse-url",
                    clickhouse,
                    "--clickhouse-database",
                    &run,
                ])
                .args([
                    "--admin-token",
                    ADMIN,
                    "--visitor-salt",
                    "load-harness-salt",
                    "--signing-key",
                    "load-harness-signing-key-0123456789",
                ])
                .args(["--click-keys", "1:load-harness-click-key-0000000"])
                // The harness is one client address sending far more than any shopper.
                .args([
                    "--rate-redirects",
                    "0",
                    "--rate-events",
                    "0",
                    "--rate-queries",
                    "0",
                ])
                .args(["--group", &format!("{run}-processor")])
                .args(["--topic-prefix", &format!("{run}-")])
                .args(["--kafka-instance-id", &format!("{run}-{role}")])
                .arg("--data-dir")
                .arg(dir.join(role))
                .args(extra)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::piped())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("start {} {role}: {e}", bin.display()));
            let out = child.stdout.take().expect("stdout");
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(addr) = line.strip_prefix("clicktrail is listening on ") {
                        let _ = tx.send(addr.trim().to_string());
                    }
                }
            });
            let addr = rx
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("{role} did not start; see {role}.log"));
            children.push(child);
            bases.push(format!("http://{addr}"));
        }
        let client = Client::new();
        for b in &bases {
            wait_http(&client, &format!("{b}/health/ready"), StatusCode::OK).await;
        }
        Roles {
            children,
            redirector: bases[0].clone(),
            ingest: bases[1].clone(),
            clickhouse: clickhouse.to_string(),
            database: run,
        }
    }

    async fn admin(&self, client: &Client, path: &str, body: Value) -> Value {
        let r = client
            .post(format!("{}{path}", self.ingest))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .expect("ingest answers");
        let status = r.status();
        let v: Value = r.json().await.expect("a JSON answer");
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    /// An advertiser with an API key and a campaign with one influencer's link, live on the
    /// redirector.
    pub async fn shop(&self, client: &Client) -> Shop {
        let adv = self
            .admin(client, "/api/v1/admin/advertisers", json!({"name": "Load"}))
            .await;
        let adv = adv["id"].as_str().expect("advertiser id").to_string();
        let key = self
            .admin(
                client,
                &format!("/api/v1/admin/advertisers/{adv}/api-keys"),
                json!({}),
            )
            .await["key"]
            .as_str()
            .expect("a key")
            .to_string();
        let campaign = self
            .admin(
                client,
                &format!("/api/v1/admin/advertisers/{adv}/campaigns"),
                json!({"name": "Load campaign", "destination_url": "https://shop.example/p"}),
            )
            .await["id"]
            .as_str()
            .expect("campaign id")
            .to_string();
        let inf = self
            .admin(client, "/api/v1/admin/influencers", json!({"name": "Ana"}))
            .await["id"]
            .as_str()
            .expect("influencer id")
            .to_string();
        self.admin(
            client,
            &format!("/api/v1/admin/campaigns/{campaign}/influencers"),
            json!({"influencer_id": inf}),
        )
        .await;
        let link = self
            .admin(
                client,
                "/api/v1/admin/links",
                json!({"campaign_id": campaign, "influencer_id": inf}),
            )
            .await;
        let code = link["code"].as_str().expect("a code").to_string();
        let id = |v: Value| v["id"].as_str().expect("an id").to_string();
        let offer_id = id(self
            .admin(
                client,
                "/api/v1/admin/offers",
                json!({"link_id": link["id"], "name": "Load offer"}),
            )
            .await);
        let variation_id = id(self
            .admin(
                client,
                &format!("/api/v1/admin/offers/{offer_id}/variations"),
                json!({"headline": "Load", "cta": "Go", "approved": true}),
            )
            .await);
        let url = format!("{}/r/{code}", self.redirector);
        wait_http(client, &url, StatusCode::FOUND).await;
        Shop {
            key,
            code,
            offer_id,
            variation_id,
        }
    }

    /// Distinct events in ClickHouse whose id matches the `LIKE` pattern.
    pub async fn count(&self, client: &Client, like: &str) -> u64 {
        self.distinct(client, "events", "event_id", like).await
    }

    /// Waits (10 minutes at most) until `table` holds `total` distinct ids in its `id` column
    /// matching the `LIKE` pattern.
    pub async fn wait_stored(
        &self,
        client: &Client,
        table: &str,
        id: &str,
        like: &str,
        total: u64,
    ) {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let n = self.distinct(client, table, id, like).await;
            if n >= total {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {n} of {total} {table} in ClickHouse after 10 minutes"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn distinct(&self, client: &Client, table: &str, id: &str, like: &str) -> u64 {
        let sql = format!(
            "SELECT uniqExact({id}) FROM {}.{table} WHERE {id} LIKE '{like}'",
            self.database
        );
        match client.post(&self.clickhouse).body(sql).send().await {
            Ok(r) if r.status().is_success() => r
                .text()
                .await
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0),
            _ => 0,
        }
    }

    pub fn stop(mut self) {
        for c in &mut self.children {
            stop(c);
        }
        self.children.clear();
    }
}

impl Drop for Roles {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
