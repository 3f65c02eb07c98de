//! Test harness: runs the real `clicktrail serve` binary on a free loopback port and talks to
//! it over HTTP only.
#![allow(dead_code)]

use reqwest::{Client, Response, StatusCode, header};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod cluster;
pub mod own;
mod proc;

#[allow(unused_imports)]
pub use cluster::{Services, role_args, services};
pub use proc::{Proc, spawn, wait_ready};

pub const ADMIN: &str = "test-admin-token-0123456789";
/// `--click-flush-ms` used by the tests.
pub const FLUSH_MS: u64 = 100;

/// A running deployment: one `serve` process, or one process per role on Kafka and
/// ClickHouse. Requests go to the role that serves their path.
pub struct Server {
    pub procs: Vec<Proc>,
    /// The base URL of `serve`, or of ingest in a deployment of roles.
    pub base: String,
    pub data: PathBuf,
    pub http: Client,
}

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Secrets every role of a test deployment shares.
pub const CLICK_KEYS: &str = "1:integration-test-click-key-000";
pub const VISITOR_SALT: &str = "integration-test-visitor-salt";
pub const SIGNING_KEY: &str = "integration-test-signing-key-0123456789";

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
            "/api/v1/ledger",
            "/api/v1/promo/select",
            "/api/v1/promo/analytics",
            "/api/v1/deliveries",
        ]
        .iter()
        .any(|p| path.starts_with(p))
            || (path.starts_with("/api/v1/me")
                && !path.starts_with("/api/v1/me/password")
                && !path.starts_with("/api/v1/me/payout-requests"))
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

    /// A new advertiser (requiring signed requests or not) and its API key: the key and its
    /// signing secret.
    pub async fn advertiser_key(&self, name: &str, signed: bool) -> (String, String) {
        let adv = self
            .admin_post(
                "/api/v1/admin/advertisers",
                json!({"name": name, "require_signature": signed}),
            )
            .await;
        let id = adv["id"].as_str().unwrap();
        let key = self
            .admin_post(
                &format!("/api/v1/admin/advertisers/{id}/api-keys"),
                json!({}),
            )
            .await;
        self.sync_catalog().await;
        (
            key["key"].as_str().unwrap().to_string(),
            key["signing_secret"].as_str().unwrap().to_string(),
        )
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

    /// The rows analyst SQL answers `query` with `key`; anything but 200 fails the test.
    pub async fn sql(&self, key: &str, query: &str) -> Vec<Value> {
        let r = self
            .http
            .post(self.url("/api/v1/sql"))
            .header("x-api-key", key)
            .json(&json!({ "query": query }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{query}");
        let v: Value = r.json().await.unwrap();
        v["rows"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .clone()
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

/// A logged-in user: the session token (for `Authorization: Bearer`), the CSRF token and the
/// `Cookie` header a browser would send.
pub struct Session {
    pub token: String,
    pub csrf: String,
    pub cookie: String,
}

impl Server {
    /// Invites a user with the admin token and sets their password through the link; returns
    /// the user's id.
    pub async fn user(&self, email: &str, role: &str, binding: Value, password: &str) -> String {
        let mut body = json!({"email": email, "role": role});
        for (k, v) in binding.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        let invited = self.admin_post("/api/v1/admin/users", body).await;
        let link = invited["set_password_url"].as_str().unwrap();
        let token = link.split_once("#token=").unwrap().1;
        let r = self
            .http
            .post(self.url("/api/v1/auth/set-password"))
            .json(&json!({"token": token, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        self.sync_catalog().await;
        invited["user"]["id"].as_str().unwrap().to_string()
    }

    /// Logs in; the login must succeed.
    pub async fn login(&self, email: &str, password: &str) -> Session {
        let r = self
            .http
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "login of {email}");
        let cookie = r
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("; ");
        let v: Value = r.json().await.unwrap();
        Session {
            token: v["token"].as_str().unwrap().to_string(),
            csrf: v["csrf_token"].as_str().unwrap().to_string(),
            cookie,
        }
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

/// The `X-Clicktrail-Signature` header of `body` signed with `secret` at unix time `t`.
pub fn sign(secret: &str, t: i64, body: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
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

/// The Prometheus text `base` serves on `/metrics`.
pub async fn metrics(http: &Client, base: &str) -> String {
    http.get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
