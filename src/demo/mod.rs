//! `serve --demo`: a demo advertiser with campaigns, influencers, links and coupons, created
//! once through the admin API and reused on later starts ([`catalog`]); 90 days of history on
//! the first start ([`history`]); then synthetic shoppers driven through the real redirect and
//! events endpoints, so that every dashboard, period and chart shows data. Ctrl-C stops it
//! quietly.

pub mod catalog;
pub mod history;

use anyhow::anyhow;
use clicktrail_bus::Producer;
use clicktrail_schemas::token::ClickKeys;
use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;
use rand::seq::IndexedRandom;
use reqwest::{Client, StatusCode, header};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub(crate) const USER_AGENTS: [&str; 5] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
];
pub(crate) const BOTS: [&str; 2] = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
];
pub(crate) const SUB_IDS: [&str; 4] = ["instagram", "youtube", "newsletter", "tiktok"];

/// The HTTP API of the running server, as the demo uses it.
pub struct Api {
    pub(crate) http: Client,
    pub(crate) base: String,
    pub(crate) admin: String,
}

impl Api {
    /// Sets a password through a one-time set-password link.
    async fn set_password(&self, link: &str, password: &str) -> anyhow::Result<()> {
        let token = link
            .split_once("#token=")
            .map(|(_, t)| t)
            .unwrap_or_default();
        let resp = self
            .http
            .post(format!("{}/api/v1/auth/set-password", self.base))
            .json(&json!({"token": token, "password": password}))
            .send()
            .await?;
        answer("/api/v1/auth/set-password", resp).await.map(drop)
    }

    async fn admin(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await?;
        answer(path, resp).await
    }

    async fn admin_get(&self, path: &str) -> anyhow::Result<Value> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.admin)
            .send()
            .await?;
        answer(path, resp).await
    }

    /// Whether an API key is accepted (a revoked or rotated-out key is not).
    async fn key_works(&self, key: &str) -> anyhow::Result<bool> {
        let resp = self
            .http
            .get(format!("{}/api/v1/stats/overview", self.base))
            .header("x-api-key", key)
            .send()
            .await?;
        Ok(resp.status() != StatusCode::UNAUTHORIZED)
    }

    async fn send_events(&self, key: &str, batch: &[Value]) -> anyhow::Result<()> {
        let resp = self
            .http
            .post(format!("{}/api/v1/events", self.base))
            .header("x-api-key", key)
            .json(&batch)
            .send()
            .await?;
        answer("/api/v1/events", resp).await.map(drop)
    }
}

async fn answer(path: &str, resp: reqwest::Response) -> anyhow::Result<Value> {
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(anyhow!("{path}: {status} {v}"));
    }
    Ok(v)
}

/// What the demo writes through besides HTTP: the bus (for history clicks) and the click keys
/// (to mint their click ids).
pub struct DemoDeps {
    /// The front-end producer.
    pub producer: Arc<dyn Producer>,
    /// The server's click keys.
    pub click_keys: ClickKeys,
}

/// Runs the demo against the server at `base` with the admin token `admin`, keeping its state
/// in `data_dir`, until it is done or `stop` is cancelled (then it returns `Ok` at once).
pub async fn run(
    base: &str,
    admin: &str,
    visitors: usize,
    data_dir: &Path,
    deps: DemoDeps,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    tokio::select! {
        _ = stop.cancelled() => Ok(()),
        done = drive(base, admin, visitors, data_dir, deps) => match done {
            // A request cut off by the shutdown is not a failure of the demo.
            Err(_) if stop.is_cancelled() => Ok(()),
            other => other,
        },
    }
}

async fn drive(
    base: &str,
    admin: &str,
    visitors: usize,
    data_dir: &Path,
    deps: DemoDeps,
) -> anyhow::Result<()> {
    let api = Api {
        http: Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
        base: base.to_string(),
        admin: admin.to_string(),
    };
    let mut demo = catalog::open_or_create(&api, data_dir).await?;
    catalog::ensure_users(&api, &mut demo, data_dir).await?;
    println!(
        "  demo logins {base}/login (kept in {})",
        data_dir.join("demo.json").display()
    );
    for u in &demo.users {
        println!("    {:<11} {:<24} password {}", u.role, u.email, u.password);
    }
    if !demo.history {
        let w = history::write(
            &api,
            deps.producer.as_ref(),
            &deps.click_keys,
            &demo,
            chrono::Utc::now(),
        )
        .await?;
        demo.history = true;
        demo.save(data_dir)?;
        println!(
            "demo: wrote {} days of history: {} clicks, {} events",
            history::DAYS,
            w.clicks,
            w.events
        );
    }
    let api_key = demo.api_key.clone();
    let run = chrono::Utc::now().timestamp();
    let links: Vec<String> = demo.links.iter().map(|l| l.code.clone()).collect();
    let coupons = demo.coupons.clone();
    let bar = ProgressBar::new(visitors as u64);
    bar.set_style(
        ProgressStyle::with_template("demo traffic {bar:40.cyan/blue} {pos}/{len} shoppers, {msg}")
            .expect("static template"),
    );
    let (mut redirects, mut events) = (0u64, 0u64);
    for v in 0..visitors {
        let (ua, visitor, code, sub, repeat, bot, roll) = {
            let mut rng = rand::rng();
            let bot = rng.random_bool(0.06);
            let ua = if bot {
                *BOTS.choose(&mut rng).expect("non-empty")
            } else {
                *USER_AGENTS.choose(&mut rng).expect("non-empty")
            };
            // Each shopper is its own visitor through the redirector's first-party cookie.
            let visitor = hex::encode(rng.random::<[u8; 16]>());
            let code = links.choose(&mut rng).expect("links").clone();
            let sub = rng
                .random_bool(0.6)
                .then(|| *SUB_IDS.choose(&mut rng).expect("non-empty"));
            (
                ua,
                visitor,
                code,
                sub,
                rng.random_bool(0.2),
                bot,
                rng.random::<f64>(),
            )
        };
        let path = match sub {
            Some(s) => format!("{base}/r/{code}/{s}?utm_source=demo"),
            None => format!("{base}/r/{code}?utm_source=demo"),
        };
        let mut click_id = None;
        for _ in 0..if repeat { 2 } else { 1 } {
            let resp = api
                .http
                .get(&path)
                .header(header::USER_AGENT, ua)
                .header(header::COOKIE, format!("ct_vid={visitor}"))
                .send()
                .await?;
            redirects += 1;
            if resp.status() == StatusCode::FOUND {
                let loc = resp
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .unwrap_or_default();
                click_id = url_param(loc, "click_id");
            }
        }
        if bot {
            bar.inc(1);
            continue;
        }
        // Each start has its own shoppers and orders: a second start on the same data sends
        // new purchases, not copies of the first start's orders.
        let customer = format!("demo-customer-{run}-{v}");
        let mut batch = Vec::new();
        if roll < 0.45 {
            batch.push(json!({"action": "add_to_cart", "customer_id": customer, "click_id": click_id, "value": 49.9}));
            if roll < 0.25 {
                let mut purchase = json!({"action": "purchase", "customer_id": customer, "order_id": format!("demo-order-{run}-{v}"), "click_id": click_id, "value": format!("{}.{:02}", 20 + v % 180, v % 100), "currency": if v % 7 == 0 { "EUR" } else { "USD" }});
                if roll < 0.08 {
                    purchase["coupon_code"] =
                        json!(coupons[v % coupons.len()].to_ascii_lowercase());
                }
                batch.push(purchase);
            } else if roll < 0.35 {
                batch.push(
                    json!({"action": "drop_off", "customer_id": customer, "click_id": click_id}),
                );
            }
        } else if roll < 0.55 {
            batch.push(json!({"action": "signup", "customer_id": customer, "landing_url": format!("https://shop.example/welcome?ref_code={code}")}));
        }
        if !batch.is_empty() {
            let n = batch.len() as u64;
            let resp = api
                .http
                .post(format!("{base}/api/v1/events"))
                .header("x-api-key", &api_key)
                .json(&Value::Array(batch))
                .send()
                .await?;
            if !resp.status().is_success() {
                return Err(anyhow!(
                    "events: {} {}",
                    resp.status(),
                    resp.text().await.unwrap_or_default()
                ));
            }
            events += n;
        }
        bar.set_message(format!("{redirects} redirects, {events} events"));
        bar.inc(1);
    }
    bar.finish();
    println!("demo: done. The demo advertiser's API key is {api_key}");
    println!(
        "demo: try  curl -H 'X-API-KEY: {api_key}' '{base}/api/v1/stats/overview?period=today'"
    );
    Ok(())
}

fn url_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}
