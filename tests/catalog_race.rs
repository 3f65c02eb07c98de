//! Two ingest instances on one Kafka cluster race for the same link codes: each code goes to
//! exactly one of them (201), the other is told it is taken (409), and afterwards both
//! instances and the redirector agree on who owns every code.

mod common;

use common::{ADMIN, Server};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;

async fn create_link(http: &Client, base: &str, body: Value) -> (StatusCode, Value) {
    let r = http
        .post(format!("{base}/api/v1/admin/links"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .expect("ingest answers");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Every link, page by page (`next_cursor`), as code → influencer.
async fn links(http: &Client, base: &str) -> HashMap<String, String> {
    let mut all = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/v1/admin/links?limit=1000");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = http
            .get(url)
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("ingest answers")
            .json()
            .await
            .expect("a page");
        for l in page["items"].as_array().expect("items") {
            all.insert(
                l["code"].as_str().unwrap().to_string(),
                l["influencer_id"].as_str().unwrap().to_string(),
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return all,
        }
    }
}

#[tokio::test]
async fn two_ingest_instances_racing_for_codes_grant_each_code_once() {
    let Some(svc) = common::services() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("race_{}", std::process::id());
    let s = Server::cluster(dir.path(), &svc, &db).await;
    let shop = s
        .shop("Race", "https://shop.example/race", &["Ana", "Ben"])
        .await;
    let (ana, ben) = (shop.influencers[0].clone(), shop.influencers[1].clone());

    let mut args = s
        .procs
        .iter()
        .find(|p| p.role == "ingest")
        .unwrap()
        .args
        .clone();
    let data = args.iter().position(|a| a == "--data-dir").unwrap();
    args[data + 1] = dir.path().join("ingest-2").display().to_string();
    let mut second = common::spawn("ingest", args);
    let http = Client::new();
    common::wait_ready(&http, &second.base).await;
    let first = s
        .procs
        .iter()
        .find(|p| p.role == "ingest")
        .unwrap()
        .base
        .clone();

    // Each code is asked for at the same moment: Ana's link on the first instance, Ben's on
    // the second.
    let codes: Vec<String> = (0..20)
        .map(|i| format!("race{i}x{}", std::process::id()))
        .collect();
    let mut winners: HashMap<String, String> = HashMap::new();
    for code in &codes {
        let a = create_link(
            &http,
            &first,
            json!({"campaign_id": shop.campaign, "influencer_id": ana, "code": code}),
        );
        let b = create_link(
            &http,
            &second.base,
            json!({"campaign_id": shop.campaign, "influencer_id": ben, "code": code}),
        );
        let ((sa, va), (sb, vb)) = tokio::join!(a, b);
        let granted: Vec<&str> = [(sa, "ana"), (sb, "ben")]
            .iter()
            .filter(|(st, _)| *st == StatusCode::CREATED)
            .map(|(_, who)| *who)
            .collect();
        assert_eq!(granted.len(), 1, "{code}: {sa} {va} / {sb} {vb}");
        for (st, v) in [(sa, &va), (sb, &vb)] {
            assert!(
                st == StatusCode::CREATED || st == StatusCode::CONFLICT,
                "{code}: {st} {v}"
            );
        }
        let owner = if granted[0] == "ana" { &ana } else { &ben };
        winners.insert(code.clone(), owner.clone());
    }

    // Both instances hold the same verdicts (read until the second has followed the
    // catalog that far), and the redirector serves every code.
    s.sync_catalog().await;
    for base in [&first, &second.base] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut held = links(&http, base).await;
        while winners.keys().any(|c| !held.contains_key(c)) && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            held = links(&http, base).await;
        }
        for (code, owner) in &winners {
            assert_eq!(held.get(code), Some(owner), "{base}: owner of {code}");
        }
    }
    for code in &codes {
        let r = s.click(&format!("/r/{code}"), "Mozilla/5.0 race").await;
        assert_eq!(r.status(), StatusCode::FOUND, "{code}");
    }
    second.stop();
}
