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
    })
}
