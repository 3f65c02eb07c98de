//! `clicktrail redirector|ingest|processor|query`: one role per process, on Kafka and
//! ClickHouse, each with its own port, `/metrics`, `/health/live` and `/health/ready`.
//!
//! Start: connect to Kafka (creating missing topics), open the spool (redirector, ingest) or
//! ClickHouse with its migrations (processor, query), read the catalog to its end, then report
//! ready. Secrets come from flags and must be the same in every role of a deployment.

use crate::assemble::{self, BackendChoice, Secrets, Spec};
use crate::config::{Role, RoleArgs};
use anyhow::anyhow;
use clicktrail_schemas::token::ClickKeys;
use std::net::SocketAddr;
use std::time::Duration;

/// Runs `role` until Ctrl-C or SIGTERM.
pub async fn run(role: Role, args: RoleArgs) -> anyhow::Result<()> {
    args.validate(role)
        .map_err(|e| anyhow!("invalid configuration:\n{e}"))?;
    let click_keys = match &args.common.click_keys {
        Some(k) => Some(ClickKeys::parse(k).map_err(|e| anyhow!("--click-keys: {e}"))?),
        None => None,
    };
    let running = assemble::start(Spec {
        roles: vec![role],
        listen: args
            .common
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], role.default_port()))),
        public_url: args.common.public_url.clone(),
        backend: BackendChoice::Production {
            kafka: args.kafka.clone(),
            clickhouse: args.clickhouse.clone(),
            data_dir: args.common.data_dir.clone(),
        },
        secrets: Secrets {
            admin_token: args.common.admin_token.clone().unwrap_or_default(),
            click_keys,
            visitor_salt: args.common.visitor_salt.clone().unwrap_or_default(),
            signing_key: args.common.signing_key.clone().unwrap_or_default(),
        },
        settings: args.roles.clone(),
        drain: Duration::from_secs(args.common.shutdown_timeout_secs),
    })
    .await?;
    println!("clicktrail is listening on {}", running.addr);
    println!("  role        {}", role.name());
    println!("  kafka       {}", args.kafka.brokers);
    if matches!(role, Role::Processor | Role::Query) {
        println!(
            "  clickhouse  {}/{}",
            args.clickhouse.clickhouse_url, args.clickhouse.clickhouse_database
        );
    }
    running.wait().await
}
