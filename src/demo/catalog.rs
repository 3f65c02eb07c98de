//! The demo's catalog: created once through the admin API and remembered in `demo.json` in the
//! data directory (mode 0600, it holds the demo advertiser's API key), so that a second start
//! on the same data reuses it instead of creating another demo advertiser.

use super::Api;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::Path;

/// The file in the data directory.
const FILE: &str = "demo.json";
/// The demo advertiser's name.
pub const ADVERTISER: &str = "Acme Outdoor (demo)";

/// A tracking link of the demo.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoLink {
    /// Link id.
    pub id: String,
    /// Its code.
    pub code: String,
    /// Its campaign.
    pub campaign_id: String,
    /// Its influencer.
    pub influencer_id: String,
}

/// What the demo created.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoCatalog {
    /// The demo advertiser.
    pub advertiser_id: String,
    /// Its API key.
    pub api_key: String,
    /// Every link, two per influencer.
    pub links: Vec<DemoLink>,
    /// One influencer coupon per influencer.
    pub coupons: Vec<String>,
    /// Whether the 90 days of history were written.
    #[serde(default)]
    pub history: bool,
    /// The demo's logins: an admin, a user of the demo advertiser, an influencer.
    #[serde(default)]
    pub users: Vec<DemoUser>,
}

/// A login of the demo.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoUser {
    /// `admin`, `advertiser` or `influencer`.
    pub role: String,
    /// Login email address.
    pub email: String,
    /// Password (a demo's, kept in `demo.json`, mode 0600).
    pub password: String,
}

/// The demo's logins, made (or given a new password) through the admin API when `demo` has none.
pub async fn ensure_users(api: &Api, demo: &mut DemoCatalog, dir: &Path) -> anyhow::Result<()> {
    if !demo.users.is_empty() {
        return Ok(());
    }
    let influencer = demo
        .links
        .first()
        .map(|l| l.influencer_id.clone())
        .context("the demo has no influencer")?;
    let existing = api.admin_get("/api/v1/admin/users?limit=1000").await?;
    for (role, email, name, binding) in [
        ("admin", "admin@clicktrail.demo", "Demo admin", json!({})),
        (
            "advertiser",
            "acme@clicktrail.demo",
            "Acme marketing (demo)",
            json!({"advertiser_id": demo.advertiser_id}),
        ),
        (
            "influencer",
            "maya@clicktrail.demo",
            "Maya Hikes (demo)",
            json!({"influencer_id": influencer}),
        ),
    ] {
        let password = crate::secrets::random_secret(14);
        let found = existing["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|u| u["email"].as_str() == Some(email))
            .and_then(|u| u["id"].as_str().map(str::to_string));
        match found {
            // Made by an earlier demo whose demo.json is gone: a new password.
            Some(id) => {
                let reset = api
                    .admin(&format!("/api/v1/admin/users/{id}/reset"), json!({}))
                    .await?;
                api.set_password(
                    reset["set_password_url"].as_str().unwrap_or_default(),
                    &password,
                )
                .await?;
            }
            None => {
                let mut body = json!({"email": email, "name": name, "role": role});
                for (k, v) in binding.as_object().into_iter().flatten() {
                    body[k] = v.clone();
                }
                crate::users::create_user(&api.http, &api.base, &api.admin, body, Some(&password))
                    .await?;
            }
        }
        demo.users.push(DemoUser {
            role: role.into(),
            email: email.into(),
            password,
        });
    }
    demo.save(dir)
}

impl DemoCatalog {
    /// Saves it in `dir` (mode 0600).
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self).expect("the demo catalog serializes");
        crate::secrets::write_private(&dir.join(FILE), &text)
    }
}

/// The demo catalog kept in `dir` when its advertiser still exists (its API key renewed when it
/// no longer works), else a new one.
pub async fn open_or_create(api: &Api, dir: &Path) -> anyhow::Result<DemoCatalog> {
    if let Some(mut kept) = std::fs::read_to_string(dir.join(FILE))
        .ok()
        .and_then(|t| serde_json::from_str::<DemoCatalog>(&t).ok())
        && api
            .admin_get(&format!("/api/v1/admin/advertisers/{}", kept.advertiser_id))
            .await
            .is_ok()
    {
        if !api.key_works(&kept.api_key).await? {
            kept.api_key = new_key(api, &kept.advertiser_id).await?;
            kept.save(dir)?;
        }
        return Ok(kept);
    }
    let created = create(api).await?;
    created.save(dir)?;
    Ok(created)
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_string()
}

async fn new_key(api: &Api, advertiser: &str) -> anyhow::Result<String> {
    let key = api
        .admin(
            &format!("/api/v1/admin/advertisers/{advertiser}/api-keys"),
            json!({}),
        )
        .await?;
    Ok(key["key"].as_str().context("key in answer")?.to_string())
}

async fn create(api: &Api) -> anyhow::Result<DemoCatalog> {
    let adv = api
        .admin("/api/v1/admin/advertisers", json!({"name": ADVERTISER}))
        .await?;
    let advertiser_id = id(&adv);
    let api_key = new_key(api, &advertiser_id).await?;
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
                &format!("/api/v1/admin/advertisers/{advertiser_id}/campaigns"),
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
            links.push(DemoLink {
                id: id(&link),
                code: link["code"].as_str().unwrap_or_default().to_string(),
                campaign_id: c.clone(),
                influencer_id: inf.clone(),
            });
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
    Ok(DemoCatalog {
        advertiser_id,
        api_key,
        links,
        coupons,
        history: false,
        users: Vec::new(),
    })
}
