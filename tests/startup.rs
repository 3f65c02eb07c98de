//! A role started while its broker is unreachable answers `/health/live` and `/metrics` at
//! once, reports not-ready with the reason, and logs each retry.

mod common;

use common::{Services, role_args};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_role_without_its_broker_answers_health_and_says_why_it_is_not_ready() {
    // Nothing listens on port 1.
    let svc = Services {
        kafka: "127.0.0.1:1".into(),
        clickhouse: "http://127.0.0.1:1".into(),
    };
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_clicktrail"))
        .args(role_args("ingest", &svc, "startup", dir.path(), &[]))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("clicktrail is starting on ") {
                let _ = tx.send(rest.split_whitespace().next().unwrap().to_string());
            }
        }
    });
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the role says where it listens");
    let base = format!("http://{addr}");
    let http = Client::new();
    let live = http
        .get(format!("{base}/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    let ready = http
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("Kafka at 127.0.0.1:1"), "{body}");
    // The role's own routes are not served yet: a request for one is told to retry, and why.
    let early = http
        .get(format!("{base}/api/v1/admin/advertisers"))
        .send()
        .await
        .unwrap();
    assert_eq!(early.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(early.headers()["retry-after"], "1");
    let body: Value = early.json().await.unwrap();
    assert_eq!(body["error"], "unavailable", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("Kafka at 127.0.0.1:1"), "{body}");
    // Each failed attempt is logged.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("retrying") && l.contains("127.0.0.1:1"))
    {
        assert!(
            Instant::now() < deadline,
            "no retry logged: {:?}",
            log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Still answering while it retries.
    let live = http
        .get(format!("{base}/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    // Stopped while it waits (SIGTERM, as an orchestrator sends): it exits at once, saying so.
    let pid = child.id().to_string();
    let term = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("still running 10 s after SIGTERM while waiting for its broker");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!status.success(), "{status}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("stopped while starting"))
    {
        assert!(Instant::now() < deadline, "{:?}", log.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
