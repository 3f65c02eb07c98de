//! What the harness runs against: nginx with a fixed `return 302` and a buffered access log, and
//! clicktrail either as its four roles on Kafka and ClickHouse (a database and topic prefix of
//! this run's own) or as `serve` on the embedded log and Parquet store, with one shop.

use crate::store::Store;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const ADMIN: &str = "load-harness-admin-token-000000";

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
                 http {{\n  log_format load '$remote_addr [$time_local] \"$request\" $status $http_user_agent';\n\
                   access_log {r}/logs/access.log load buffer=64k flush=1s;\n  client_body_temp_path {r}/body;\n  proxy_temp_path {r}/proxy;\n\
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

/// One shop: an advertiser that requires signed requests, its API key with the key's signing
/// secret, and one link's code.
#[derive(Clone)]
pub struct Shop {
    pub key: String,
    pub secret: String,
    pub code: String,
    /// A promo offer on the shop's link, and its one approved variation.
    pub offer_id: String,
    pub variation_id: String,
}

/// One deployment of clicktrail: the four roles on Kafka and ClickHouse, or `serve`.
pub struct Deployment {
    children: Vec<Child>,
    pub redirector: String,
    pub ingest: String,
    /// Where the processor answers (its metrics).
    pub processor: String,
    /// Where the query service answers (stats, exports, SQL).
    pub query: String,
    pub(crate) store: Store,
}

/// The flags every run gives clicktrail: secrets, and no rate limits (the harness is one client
/// address sending far more than any shopper).
fn common_flags(cmd: &mut Command) {
    cmd.args([
        "--admin-token",
        ADMIN,
        "--visitor-salt",
        "load-harness-salt",
        "--signing-key",
        "load-harness-signing-key-0123456789",
    ])
    .args(["--click-keys", "1:load-harness-click-key-0000000"])
    .args([
        "--rate-redirects",
        "0",
        "--rate-events",
        "0",
        "--rate-queries",
        "0",
        "--rate-sql",
        "0",
        "--rate-admin",
        "0",
    ]);
}

/// Starts `cmd` with its standard error in `log` and returns it with the address it printed.
fn spawn_listening(mut cmd: Command, what: &str, log: &Path) -> (Child, String) {
    let log_file = std::fs::File::create(log).expect("role log");
    let mut child = cmd
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
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
        .unwrap_or_else(|_| panic!("{what} did not start; see {}", log.display()));
    (child, format!("http://{addr}"))
}

impl Deployment {
    /// `clicktrail serve` on the embedded log and Parquet store in `dir/serve`; `extra` goes to
    /// its command line.
    pub async fn serve(bin: &Path, dir: &Path, extra: &[String]) -> Deployment {
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(dir.join("serve"));
        common_flags(&mut cmd);
        cmd.args(extra);
        let (child, base) = spawn_listening(cmd, "clicktrail serve", &dir.join("serve.log"));
        wait_http(
            &Client::new(),
            &format!("{base}/health/ready"),
            StatusCode::OK,
        )
        .await;
        Deployment {
            children: vec![child],
            redirector: base.clone(),
            ingest: base.clone(),
            processor: base.clone(),
            query: base.clone(),
            store: Store::Embedded {
                sql: format!("{base}/api/v1/sql"),
            },
        }
    }

    /// The process ids of the deployment's processes.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// Starts the four roles on Kafka and ClickHouse; `extra` goes to each one's command line.
    pub async fn roles(
        bin: &Path,
        brokers: &str,
        clickhouse: &str,
        dir: &Path,
        extra: &[String],
    ) -> Deployment {
        let run = format!("load_{}", std::process::id());
        let mut children = Vec::new();
        let mut bases = Vec::new();
        for role in ["redirector", "ingest", "processor", "query"] {
            let mut cmd = Command::new(bin);
            cmd.arg(role)
                .args(["--listen", "127.0.0.1:0", "--brokers", brokers])
                .args([
                    "--clickhouse-url",
                    clickhouse,
                    "--clickhouse-database",
                    &run,
                ])
                .args(["--group", &format!("{run}-processor")])
                .args(["--topic-prefix", &format!("{run}-")])
                .args(["--kafka-instance-id", &format!("{run}-{role}")])
                .arg("--data-dir")
                .arg(dir.join(role));
            common_flags(&mut cmd);
            cmd.args(extra);
            let (child, base) = spawn_listening(cmd, role, &dir.join(format!("{role}.log")));
            children.push(child);
            bases.push(base);
        }
        let client = Client::new();
        for b in &bases {
            wait_http(&client, &format!("{b}/health/ready"), StatusCode::OK).await;
        }
        Deployment {
            children,
            redirector: bases[0].clone(),
            ingest: bases[1].clone(),
            processor: bases[2].clone(),
            query: bases[3].clone(),
            store: Store::ClickHouse {
                url: clickhouse.to_string(),
                database: run,
            },
        }
    }

    pub(crate) async fn admin(&self, client: &Client, path: &str, body: Value) -> Value {
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
            .admin(
                client,
                "/api/v1/admin/advertisers",
                json!({"name": "Load", "require_signature": true}),
            )
            .await;
        let adv = adv["id"].as_str().expect("advertiser id").to_string();
        let created = self
            .admin(
                client,
                &format!("/api/v1/admin/advertisers/{adv}/api-keys"),
                json!({}),
            )
            .await;
        let key = created["key"].as_str().expect("a key").to_string();
        let secret = created["signing_secret"]
            .as_str()
            .expect("a signing secret")
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
            secret,
            code,
            offer_id,
            variation_id,
        }
    }

    /// The process id of the process answering queries (`query`, or `serve`).
    pub fn query_pid(&self) -> u32 {
        self.children.last().expect("a running deployment").id()
    }

    /// Stops every process (SIGTERM, then waits for it).
    pub fn stop(&mut self) {
        for c in &mut self.children {
            stop(c);
        }
        self.children.clear();
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
