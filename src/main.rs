//! The `clicktrail` binary: parses the command line, starts telemetry and runs roles. All
//! behaviour lives in the libraries; see `docs/ARCHITECTURE.md`.

mod assemble;
mod backends;
mod config;
mod demo;
mod process;
mod roles;
mod routes;
mod secrets;
mod serve;
mod telemetry;
mod users;

use clap::Parser;

/// mimalloc instead of glibc's allocator (see `docs/benchmarks.md`, "Memory").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = config::Cli::parse();
    telemetry::init_logs();
    match cli.command {
        config::Command::Serve(args) => serve::run(args).await,
        config::Command::Redirector(args) => roles::run(config::Role::Redirector, args).await,
        config::Command::Ingest(args) => roles::run(config::Role::Ingest, args).await,
        config::Command::Processor(args) => roles::run(config::Role::Processor, args).await,
        config::Command::Query(args) => roles::run(config::Role::Query, args).await,
        config::Command::Users(cmd) => users::run(cmd).await,
    }
}
