//! The catalog the end-to-end scenario runs on, created through the admin API.

use crate::common::{self, Server};
use reqwest::StatusCode;
use serde_json::json;

pub const UA1: &str = "Mozilla/5.0 (X11; Linux x86_64) Visitor/1";
pub const UA2: &str = "Mozilla/5.0 (X11; Linux x86_64) Visitor/2";
pub const UA3: &str = "Mozilla/5.0 (X11; Linux x86_64) Visitor/3";
pub const UA4: &str = "Mozilla/5.0 (X11; Linux x86_64) Visitor/4";
pub const BOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

pub struct World {
    pub key: String,
    pub c1: String,
    pub c2: String,
    pub i1: String,
    pub i2: String,
    pub l1: (String, String),
    pub l2: (String, String),
    pub l3: (String, String),
}

pub async fn catalog(s: &Server) -> World {
    let adv = s
        .admin_post("/api/v1/admin/advertisers", json!({"name": "Acme"}))
        .await;
    let adv = adv["id"].as_str().unwrap().to_string();
    let key = s
        .admin_post(
            &format!("/api/v1/admin/advertisers/{adv}/api-keys"),
            json!({}),
        )
        .await;
    let key = key["key"].as_str().unwrap().to_string();
    let c1 = s
        .admin_post(
            &format!("/api/v1/admin/advertisers/{adv}/campaigns"),
            json!({"name": "Spring", "destination_url": "https://shop.example/landing?src=ig"}),
        )
        .await;
    assert_eq!(
        c1["attribution_window_secs"],
        json!(30 * 86400),
        "default window is 30 days"
    );
    let c2 = s
        .admin_post(&format!("/api/v1/admin/advertisers/{adv}/campaigns"), json!({"name": "Flash", "destination_url": "https://shop.example/flash", "attribution_window_secs": 2}))
        .await;
    let (c1, c2) = (
        c1["id"].as_str().unwrap().to_string(),
        c2["id"].as_str().unwrap().to_string(),
    );
    let i1 = s
        .admin_post("/api/v1/admin/influencers", json!({"name": "Anna"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let i2 = s
        .admin_post("/api/v1/admin/influencers", json!({"name": "Bob"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (c, i) in [(&c1, &i1), (&c1, &i2), (&c2, &i1)] {
        s.admin_post(
            &format!("/api/v1/admin/campaigns/{c}/influencers"),
            json!({"influencer_id": i}),
        )
        .await;
    }
    let link = |c: &String, i: &String| json!({"campaign_id": c, "influencer_id": i});
    let mut links = Vec::new();
    for (c, i) in [(&c1, &i1), (&c1, &i2), (&c2, &i1)] {
        let l = s.admin_post("/api/v1/admin/links", link(c, i)).await;
        assert_eq!(
            l["url"].as_str().unwrap(),
            s.url(&format!("/r/{}", l["code"].as_str().unwrap()))
        );
        links.push((
            l["id"].as_str().unwrap().to_string(),
            l["code"].as_str().unwrap().to_string(),
        ));
    }
    // A deactivated link answers 404.
    let dead = s.admin_post("/api/v1/admin/links", link(&c1, &i2)).await;
    s.admin_post(
        &format!(
            "/api/v1/admin/links/{}/deactivate",
            dead["id"].as_str().unwrap()
        ),
        json!({}),
    )
    .await;
    let resp = s
        .click(&format!("/r/{}", dead["code"].as_str().unwrap()), UA1)
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    s.admin_post(
        &format!("/api/v1/admin/campaigns/{c1}/coupons"),
        json!({"influencer_id": i1, "code": "ANNA10"}),
    )
    .await;
    s.admin_post(
        &format!("/api/v1/admin/campaigns/{c1}/coupons"),
        json!({"code": "WELCOME"}),
    )
    .await;
    s.admin_post(
        &format!("/api/v1/admin/campaigns/{c1}/coupons"),
        json!({"influencer_id": i2, "code": "BOBSAVE"}),
    )
    .await;
    // Codes are unique per advertiser, case-insensitively.
    let dup = s
        .http
        .post(s.url(&format!("/api/v1/admin/campaigns/{c1}/coupons")))
        .bearer_auth(common::ADMIN)
        .json(&json!({"code": "anna10"}))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), StatusCode::CONFLICT);
    // Generated coupons follow the rules: prefix, length, no look-alike characters.
    let generated = s
        .admin_post(
            &format!("/api/v1/admin/campaigns/{c1}/coupons"),
            json!({"influencer_id": i2, "count": 20, "prefix": "BOB-", "length": 6}),
        )
        .await;
    let generated = generated.as_array().unwrap();
    assert_eq!(generated.len(), 20);
    for c in generated {
        let code = c["code"].as_str().unwrap();
        assert!(code.starts_with("BOB-") && code.len() == 10, "{code}");
        assert!(!code[4..].contains(['0', 'O', '1', 'I', 'L']), "{code}");
    }
    World {
        key,
        c1,
        c2,
        i1,
        i2,
        l1: links[0].clone(),
        l2: links[1].clone(),
        l3: links[2].clone(),
    }
}
