//! Keys, secrets and signatures: rotation with overlap, replays, secrets shown once and kept private.

use crate::common::{self, Server};
use crate::sql;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn admin(
    s: &Server,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = s
        .http
        .request(method, s.url(path))
        .bearer_auth(common::ADMIN);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn works(s: &Server, key: &str) -> bool {
    s.sync_catalog().await;
    match s
        .get_with_key("/api/v1/stats/overview?period=all", key)
        .await
        .status()
    {
        StatusCode::OK => true,
        StatusCode::UNAUTHORIZED => false,
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn a_revoked_key_stays_revoked_and_rotation_overlaps() {
    use reqwest::Method;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let shop = s.shop("R", "https://r.example/", &["R creator"]).await;
    let keys = s
        .admin_get(&format!(
            "/api/v1/admin/advertisers/{}/api-keys",
            shop.advertiser
        ))
        .await;
    let first = keys["items"][0]["id"].as_str().unwrap().to_string();

    // Rotation with the default overlap: both keys work, the old one until a day from now.
    let (status, rotated) = admin(
        &s,
        Method::POST,
        &format!("/api/v1/admin/api-keys/{first}/rotate"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    let until: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(rotated["old_key_revoked_at"].clone()).unwrap();
    let overlap = until - chrono::Utc::now();
    assert!(
        overlap > chrono::Duration::hours(23) && overlap <= chrono::Duration::hours(24),
        "{overlap:?}"
    );
    let second_key = rotated["key"].as_str().unwrap().to_string();
    let second = rotated["id"].as_str().unwrap().to_string();
    assert!(
        works(&s, &shop.key).await,
        "the old key works during the overlap"
    );
    assert!(works(&s, &second_key).await);
    // Rotating the old key again would mint a second live successor: refused.
    let (status, body) = admin(
        &s,
        Method::POST,
        &format!("/api/v1/admin/api-keys/{first}/rotate"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // Revoking it ends the overlap at once, and it stays revoked.
    let (status, _) = admin(
        &s,
        Method::DELETE,
        &format!("/api/v1/admin/api-keys/{first}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!works(&s, &shop.key).await);
    let (status, body) = admin(
        &s,
        Method::POST,
        &format!("/api/v1/admin/api-keys/{first}/rotate"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("stays revoked"),
        "{body}"
    );
    assert!(!works(&s, &shop.key).await);

    // A revoked key is not revived by rotating it; a bad overlap is a field error.
    let (status, _) = admin(
        &s,
        Method::DELETE,
        &format!("/api/v1/admin/api-keys/{second}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = admin(
        &s,
        Method::POST,
        &format!("/api/v1/admin/api-keys/{second}/rotate"),
        Some(json!({"overlap_secs": 0})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(!works(&s, &second_key).await);
    let listed = s
        .admin_get(&format!(
            "/api/v1/admin/advertisers/{}/api-keys",
            shop.advertiser
        ))
        .await;
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        2,
        "no key was minted: {listed}"
    );
    let fresh = s
        .admin_post(
            &format!("/api/v1/admin/advertisers/{}/api-keys", shop.advertiser),
            json!({}),
        )
        .await;
    let third = fresh["id"].as_str().unwrap();
    let (status, body) = admin(
        &s,
        Method::POST,
        &format!("/api/v1/admin/api-keys/{third}/rotate"),
        Some(json!({"overlap_secs": 9999999})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["fields"][0]["field"], json!("overlap_secs"));
}

/// A signed request replayed within its five-minute window carries the same body, so the
/// same events: each is stored once (by its `event_id`, or the id derived from its content).
#[tokio::test]
async fn a_replayed_signed_request_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let (api_key, secret) = s.advertiser_key("Signed", true).await;
    let (api_key, secret) = (api_key.as_str(), secret.as_str());
    let bodies = [
        r#"{"action":"signup","customer_id":"c-1"}"#,
        r#"{"action":"add_to_cart","event_id":"cart-1","value":"3.50"}"#,
        r#"[{"action":"custom","name":"share"},{"action":"drop_off","customer_id":"c-2"}]"#,
    ];
    for body in bodies {
        let signature = common::sign(secret, chrono::Utc::now().timestamp(), body);
        for attempt in 0..3 {
            let r = s
                .http
                .post(s.url("/api/v1/events"))
                .header("x-api-key", api_key)
                .header("x-clicktrail-signature", &signature)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{body} #{attempt}");
        }
    }
    s.drain().await;
    let (status, rows) = sql(
        &s,
        api_key,
        "SELECT action, count(*) AS n FROM events GROUP BY action ORDER BY action",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rows}");
    assert_eq!(
        rows["rows"],
        json!([
            {"action": "add_to_cart", "n": 1},
            {"action": "custom", "n": 1},
            {"action": "drop_off", "n": 1},
            {"action": "signup", "n": 1},
        ])
    );
}

/// One `serve` run without an admin token given: its stdout and stderr, read until the banner
/// ends, then stopped with SIGINT; returns everything it printed and its address.
struct Run {
    child: std::process::Child,
    base: String,
    printed: std::sync::Arc<std::sync::Mutex<String>>,
}

fn serve_plain(dir: &std::path::Path) -> Run {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_clicktrail"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let printed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    for (stream, tx) in [
        (Box::new(stdout) as Box<dyn std::io::Read + Send>, Some(tx)),
        (Box::new(stderr), None),
    ] {
        let printed = printed.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                printed.lock().unwrap().push_str(&format!("{line}\n"));
                if let (Some(tx), Some(addr)) =
                    (&tx, line.strip_prefix("clicktrail is listening on "))
                {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
    }
    let addr = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .unwrap();
    Run {
        child,
        base: format!("http://{addr}"),
        printed,
    }
}

impl Run {
    fn stop(mut self) -> String {
        std::process::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(self.child.wait().unwrap().success());
        std::thread::sleep(std::time::Duration::from_millis(200));
        self.printed.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn secrets_are_shown_once_and_kept_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let http = reqwest::Client::new();

    let first = serve_plain(&data);
    common::wait_ready(&http, &first.base).await;
    let token = std::fs::read_to_string(data.join("admin-token")).unwrap();
    let adv: Value = http
        .post(format!("{}/api/v1/admin/advertisers", first.base))
        .bearer_auth(&token)
        .json(&json!({"name": "Private", "require_signature": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key: Value = http
        .post(format!(
            "{}/api/v1/admin/advertisers/{}/api-keys",
            first.base,
            adv["id"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let signing_secret = key["signing_secret"].as_str().unwrap().to_string();
    assert!(signing_secret.starts_with("whsec_"), "{key}");
    let first_out = first.stop();

    let second = serve_plain(&data);
    common::wait_ready(&http, &second.base).await;
    // The same secret verifies signatures after the restart.
    let body = r#"{"action":"signup","event_id":"after-restart"}"#;
    let r = http
        .post(format!("{}/api/v1/events", second.base))
        .header("x-api-key", key["key"].as_str().unwrap())
        .header(
            "x-clicktrail-signature",
            common::sign(&signing_secret, chrono::Utc::now().timestamp(), body),
        )
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let second_out = second.stop();

    assert_eq!(
        first_out.matches(token.as_str()).count(),
        1,
        "the token is printed once, when created: {first_out}"
    );
    assert!(first_out.contains("shown this once"), "{first_out}");
    assert!(
        !first_out.contains('\u{1b}'),
        "logs written to a pipe carry no colour codes: {first_out}"
    );
    assert!(!second_out.contains(token.as_str()), "{second_out}");
    assert!(
        second_out.contains("admin-token"),
        "says where it is: {second_out}"
    );
    for out in [&first_out, &second_out] {
        assert!(
            !out.contains(&signing_secret),
            "a signing secret was printed: {out}"
        );
    }

    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data directory is private");
    for name in ["admin-token", "click-keys", "visitor-salt", "signing-key"] {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}");
    }
    // No file of the data directory (the log with its catalog topic, the store) holds the
    // signing secret.
    let mut stack = vec![data.clone()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&path).unwrap();
            let needle = signing_secret.as_bytes();
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds the signing secret",
                path.display()
            );
        }
    }
    assert!(
        files >= 5,
        "the log and the store were searched ({files} files)"
    );
}
