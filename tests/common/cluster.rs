//! A deployment of one process per role on the real Kafka and ClickHouse.

use super::{
    ADMIN, CLICK_KEYS, Proc, SIGNING_KEY, Server, VISITOR_SALT, client, spawn, wait_ready,
};
use std::path::Path;
use std::time::{Duration, Instant};

/// Addresses of the real services (`scripts/services start`). Under `CI=true` their absence
/// fails the test; elsewhere it skips it.
pub struct Services {
    pub kafka: String,
    pub clickhouse: String,
}

pub fn services() -> Option<Services> {
    let kafka = std::env::var("CLICKTRAIL_TEST_KAFKA").unwrap_or_default();
    let clickhouse = std::env::var("CLICKTRAIL_TEST_CLICKHOUSE").unwrap_or_default();
    if kafka.is_empty() || clickhouse.is_empty() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CLICKTRAIL_TEST_KAFKA / CLICKTRAIL_TEST_CLICKHOUSE are not set; scripts/services start provides them"
        );
        eprintln!("skipped: Kafka and ClickHouse are not configured");
        return None;
    }
    Some(Services { kafka, clickhouse })
}

/// Role arguments of a test deployment on `svc`, its ClickHouse database and data directory.
pub fn role_args(
    role: &str,
    svc: &Services,
    database: &str,
    data: &Path,
    extra: &[&str],
) -> Vec<String> {
    let mut a: Vec<String> = [
        role,
        "--listen",
        "127.0.0.1:0",
        "--brokers",
        &svc.kafka,
        "--clickhouse-url",
        &svc.clickhouse,
        "--clickhouse-database",
        database,
        "--admin-token",
        ADMIN,
        "--click-keys",
        CLICK_KEYS,
        "--visitor-salt",
        VISITOR_SALT,
        "--signing-key",
        SIGNING_KEY,
        "--group",
        &format!("{database}-processor"),
        "--topic-prefix",
        &format!("{database}-"),
        "--batch-max-wait-ms",
        "50",
        "--kafka-delivery-timeout-ms",
        "3000",
        // One test address stands for many shoppers and clients.
        "--rate-redirects",
        "0",
        "--rate-events",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push("--data-dir".into());
    a.push(data.join(role).display().to_string());
    a.extend(extra.iter().map(|s| s.to_string()));
    if role == "processor"
        && let Ok(d) = std::env::var("TEST_KAFKA_DEBUG")
    {
        a.push("--kafka-setting".into());
        a.push(format!("debug={d}"));
        a.push("--kafka-setting".into());
        a.push("log_level=7".into());
    }
    a
}

impl Server {
    /// One process per role on Kafka and ClickHouse: redirector, ingest (whose link URLs
    /// point at the redirector), processor and query, with their own ClickHouse database.
    pub async fn cluster(data: &Path, svc: &Services, database: &str) -> Server {
        Self::cluster_with(data, svc, database, &[]).await
    }

    /// [`Server::cluster`] with more arguments for the processor.
    pub async fn cluster_with(
        data: &Path,
        svc: &Services,
        database: &str,
        processor_extra: &[&str],
    ) -> Server {
        let redirector = spawn(
            "redirector",
            role_args("redirector", svc, database, data, &[]),
        );
        let ingest = spawn(
            "ingest",
            role_args(
                "ingest",
                svc,
                database,
                data,
                &["--public-url", &redirector.base],
            ),
        );
        let processor = spawn(
            "processor",
            role_args(
                "processor",
                svc,
                database,
                data,
                &[&["--kafka-instance-id", "processor-1"], processor_extra].concat(),
            ),
        );
        let query = spawn("query", role_args("query", svc, database, data, &[]));
        let server = Server {
            base: ingest.base.clone(),
            procs: vec![redirector, ingest, processor, query],
            data: data.to_path_buf(),
            http: client(),
        };
        for p in &server.procs {
            wait_ready(&server.http, &p.base).await;
        }
        server
    }

    /// The process of `role`.
    pub fn proc_mut(&mut self, role: &str) -> &mut Proc {
        self.procs
            .iter_mut()
            .find(|p| p.role == role)
            .unwrap_or_else(|| panic!("no {role} process"))
    }

    /// In a deployment of roles: waits until every role applied the catalog as far as ingest
    /// has (each role follows the catalog topic on its own).
    pub async fn sync_catalog(&self) {
        if self.procs.len() == 1 {
            return;
        }
        let position = |base: String| {
            let http = self.http.clone();
            async move {
                let r = http.get(format!("{base}/health/ready")).send().await.ok()?;
                r.headers()
                    .get("x-clicktrail-catalog")?
                    .to_str()
                    .ok()?
                    .parse::<u64>()
                    .ok()
            }
        };
        let target = position(self.base.clone()).await.unwrap_or(0);
        let deadline = Instant::now() + Duration::from_secs(30);
        for p in &self.procs {
            loop {
                if position(p.base.clone()).await.is_some_and(|n| n >= target) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{} did not catch up with the catalog",
                    p.role
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}
