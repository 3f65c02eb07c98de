//! `serve --demo`: creates a demo advertiser with campaigns, influencers, links and coupons
//! through the admin API, then drives synthetic shoppers through the real redirect and events
//! endpoints so that every dashboard shows data.

use anyhow::{Context, anyhow};
use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;
use rand::seq::IndexedRandom;
use reqwest::{Client, StatusCode, header};
use serde_json::{Value, json};

const USER_AGENTS: [&str; 5] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
];
const BOTS: [&str; 2] = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
];
const SUB_IDS: [&str; 4] = ["instagram", "youtube", "newsletter", "tiktok"];

struct Api {
    http: Client,
    base: String,
    admin: String,
}

impl Api {
    async fn admin(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await?;
        let status = resp.status();
        let v: Value = resp.json().await?;
        if !status.is_success() {
            return Err(anyhow!("{path}: {status} {v}"));
        }
        Ok(v)
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_string()
}

/// Creates the demo catalog and drives `visitors` shoppers through it.
pub async fn run(base: &str, admin: &str, visitors: usize) -> anyhow::Result<()> {
    let api = Api {
        http: Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
        base: base.to_string(),
        admin: admin.to_string(),
    };
    let adv = api
        .admin(
            "/api/v1/admin/advertisers",
            json!({"name": "Acme Outdoor (demo)"}),
        )
        .await?;
    let adv_id = id(&adv);
    let key = api
        .admin(
            &format!("/api/v1/admin/advertisers/{adv_id}/api-keys"),
            json!({}),
        )
        .await?;
    let api_key = key["key"].as_str().context("key in answer")?.to_string();
    let mut campaigns = Vec::new();
    for (name, dest, window) in [
        (
            "Spring Trail Sale",
            "https://shop.example/spring",
            30 * 86400,
        ),
        (
            "Summit Boots Launch",
            "https://shop.example/boots?lang=en",
            7 * 86400,
        ),
    ] {
        let c = api
            .admin(
                &format!("/api/v1/admin/advertisers/{adv_id}/campaigns"),
                json!({"name": name, "destination_url": dest, "attribution_window_secs": window}),
            )
            .await?;
        campaigns.push(id(&c));
    }
    let mut links = Vec::new();
    let mut coupons = Vec::new();
    for name in ["Maya Hikes", "Leo Climbs", "Ana Runs"] {
        let inf = id(&api
            .admin("/api/v1/admin/influencers", json!({"name": name}))
            .await?);
        for c in &campaigns {
            api.admin(
                &format!("/api/v1/admin/campaigns/{c}/influencers"),
                json!({"influencer_id": inf}),
            )
            .await?;
            let link = api
                .admin(
                    "/api/v1/admin/links",
                    json!({"campaign_id": c, "influencer_id": inf}),
                )
                .await?;
            links.push(link["code"].as_str().unwrap_or_default().to_string());
        }
        let prefix = name.split(' ').next().unwrap_or("X").to_ascii_uppercase();
        let cs = api
            .admin(
                &format!("/api/v1/admin/campaigns/{}/coupons", campaigns[0]),
                json!({"influencer_id": inf, "prefix": format!("{prefix}-"), "length": 5}),
            )
            .await?;
        coupons.push(cs[0]["code"].as_str().unwrap_or_default().to_string());
    }
    api.admin(
        &format!("/api/v1/admin/campaigns/{}/coupons", campaigns[0]),
        json!({"code": "WELCOME10"}),
    )
    .await?;

    let bar = ProgressBar::new(visitors as u64);
    bar.set_style(
        ProgressStyle::with_template("demo traffic {bar:40.cyan/blue} {pos}/{len} shoppers, {msg}")
            .expect("static template"),
    );
    let (mut redirects, mut events) = (0u64, 0u64);
    for v in 0..visitors {
        let (ua, ip, code, sub, repeat, bot, roll) = {
            let mut rng = rand::rng();
            let bot = rng.random_bool(0.06);
            let ua = if bot {
                *BOTS.choose(&mut rng).expect("non-empty")
            } else {
                *USER_AGENTS.choose(&mut rng).expect("non-empty")
            };
            let ip = format!(
                "198.51.{}.{}",
                rng.random_range(0..=255),
                rng.random_range(1..=254)
            );
            let code = links.choose(&mut rng).expect("links").clone();
            let sub = rng
                .random_bool(0.6)
                .then(|| *SUB_IDS.choose(&mut rng).expect("non-empty"));
            (
                ua,
                ip,
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
                .header("x-forwarded-for", &ip)
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
        let customer = format!("demo-customer-{v}");
        let mut batch = Vec::new();
        if roll < 0.45 {
            batch.push(json!({"action": "add_to_cart", "customer_id": customer, "click_id": click_id, "value": 49.9}));
            if roll < 0.25 {
                let mut purchase = json!({"action": "purchase", "customer_id": customer, "order_id": format!("demo-order-{v}"), "click_id": click_id, "value": format!("{}.{:02}", 20 + v % 180, v % 100), "currency": if v % 7 == 0 { "EUR" } else { "USD" }});
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
