//! `clicktrail serve`: every role in one process on the embedded log and the Parquet store,
//! with secrets generated once in the data directory, and optionally the demo.

use crate::assemble::{self, BackendChoice, Secrets, Spec};
use crate::config::{Role, ServeArgs};
use crate::{demo, secrets};
use anyhow::{Context, anyhow};
use clicktrail_schemas::token::ClickKeys;
use std::net::SocketAddr;
use std::time::Duration;

/// Runs until Ctrl-C or SIGTERM, then shuts down in order.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    args.validate()
        .map_err(|e| anyhow!("invalid configuration:\n{e}"))?;
    let dir = &args.common.data_dir;
    secrets::private_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let admin = secrets::admin_token(dir, args.common.admin_token.as_deref())?;
    let secrets = Secrets {
        admin_token: admin.value.clone(),
        click_keys: Some(
            ClickKeys::parse(&secrets::click_keys(
                dir,
                args.common.click_keys.as_deref(),
            )?)
            .map_err(|e| anyhow!("click keys in {}: {e}", dir.display()))?,
        ),
        visitor_salt: match &args.common.visitor_salt {
            Some(s) => s.clone(),
            None => secrets::visitor_salt(dir)?,
        },
        signing_key: secrets::signing_key(dir, args.common.signing_key.as_deref())?,
    };
    let settings = args.roles.clone();
    let mut running = assemble::start(Spec {
        roles: Role::ALL.to_vec(),
        listen: args
            .common
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
        public_url: args.common.public_url.clone(),
        backend: BackendChoice::Embedded {
            dir: dir.clone(),
            args: args.embedded.clone(),
        },
        secrets: secrets.clone(),
        settings,
        drain: Duration::from_secs(args.common.shutdown_timeout_secs),
    })
    .await?;

    print_banner(running.addr, &running.public_url, &admin, &args);
    if args.demo {
        let base = format!("http://{}", running.addr);
        let token = secrets.admin_token.clone();
        let (visitors, dir) = (args.demo_visitors, dir.clone());
        let deps = demo::DemoDeps {
            producer: running.front_producer().await?,
            click_keys: secrets.click_keys.clone().expect("serve has click keys"),
        };
        let stop = running.shutdown_token();
        tokio::spawn(async move {
            if let Err(e) = demo::run(&base, &token, visitors, &dir, deps, stop).await {
                tracing::error!(error = %e, "demo traffic failed");
            }
        });
    }
    running.wait().await
}

/// What the operator needs to start; the admin token only when this start created it (it is
/// kept, mode 0600, in the data directory), never when it was given.
fn print_banner(addr: SocketAddr, public_url: &str, admin: &secrets::Kept, args: &ServeArgs) {
    let base = format!("http://{addr}");
    println!("clicktrail is listening on {addr}");
    if args.demo {
        println!("  dashboards  {base}/ (the demo's logins follow once it is ready)");
    } else {
        // The command that makes the first admin, with this process's address and data.
        let mut create = "clicktrail users create-admin --email you@example.com".to_string();
        if base != "http://127.0.0.1:8080" {
            create.push_str(&format!(" --url {base}"));
        }
        if args.common.data_dir != std::path::Path::new("clicktrail-data") {
            create.push_str(&format!(" --data-dir {}", args.common.data_dir.display()));
        }
        println!("  dashboards  {base}/ (first admin: {create})");
    }
    println!("  redirects   {public_url}/r/<code>");
    println!("  events API  POST {base}/api/v1/events");
    println!("  admin API   {base}/api/v1/admin/advertisers");
    println!("  stats       {base}/api/v1/stats/overview");
    println!("  API docs    {base}/api/v1/docs");
    println!("  OpenAPI     {base}/api/v1/openapi.json");
    println!("  metrics     {base}/metrics");
    let token_file = args.common.data_dir.join("admin-token");
    if admin.created {
        println!(
            "  admin token {} (shown this once; kept in {})",
            admin.value,
            token_file.display()
        );
    } else if args.common.admin_token.is_some() {
        println!("  admin token as given (--admin-token / CLICKTRAIL_ADMIN_TOKEN)");
    } else {
        println!("  admin token in {}", token_file.display());
    }
    println!("  data        {}", args.common.data_dir.display());
    if args.demo {
        println!(
            "  demo        the demo advertiser (made once, kept in {}), 90 days of history on the first start, then live shoppers…",
            args.common.data_dir.join("demo.json").display()
        );
    }
    println!("Press Ctrl-C to stop.");
}
