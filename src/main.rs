//! The `clicktrail` binary: parses the command line, starts telemetry and runs roles. All
//! behaviour lives in the libraries; see `docs/ARCHITECTURE.md`.

mod config;
mod demo;
mod routes;
mod secrets;
mod serve;
mod telemetry;

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = config::Cli::parse();
    telemetry::init_logs();
    match cli.command {
        config::Command::Serve(args) => serve::run(args).await,
    }
}
