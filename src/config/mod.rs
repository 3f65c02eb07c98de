//! Command-line and environment configuration. Every flag has an environment variable
//! (`CLICKTRAIL_…`) and a default; flags shared by several commands are declared once in a
//! group ([`groups`], [`production`]) and flattened into each; cross-field rules are checked at
//! start, all at once.

mod groups;
mod http;
mod production;

pub use groups::{CommonArgs, EmbeddedArgs, IngestArgs, ProcessorArgs, QueryArgs, RedirectArgs};
pub use http::HttpArgs;
pub use production::{ClickHouseArgs, KafkaArgs};

use clap::{Args, Parser, Subcommand};

/// clicktrail: influencer and affiliate tracking.
#[derive(Debug, Parser)]
#[command(name = "clicktrail", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every role in one process on the embedded log and the Parquet store.
    Serve(ServeArgs),
    /// Run the redirector role on Kafka: `/r/…` and `/ref/…`.
    Redirector(RoleArgs),
    /// Run the ingest role on Kafka: the events API and the admin API.
    Ingest(RoleArgs),
    /// Run the processor role on Kafka and ClickHouse (a member of the processor group).
    Processor(RoleArgs),
    /// Run the query role on ClickHouse: stats, exports, audits and SQL.
    Query(RoleArgs),
    /// Manage users of a running deployment.
    #[command(subcommand)]
    Users(UsersCommand),
}

/// `clicktrail users …`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Make an admin user through the admin API of a running deployment, so that the first
    /// admin can log in to the dashboards.
    CreateAdmin(CreateAdminArgs),
}

/// `clicktrail users create-admin`.
#[derive(Debug, Clone, Args)]
pub struct CreateAdminArgs {
    /// Login email address of the new admin.
    #[arg(long)]
    pub email: String,
    /// Display name (default: the email address).
    #[arg(long)]
    pub name: Option<String>,
    /// Base URL of the deployment's admin API (`serve`, or the ingest role).
    #[arg(long, env = "CLICKTRAIL_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The admin token; default: the one `serve` keeps in `--data-dir`.
    #[arg(long, env = "CLICKTRAIL_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// The data directory of `serve`, where its admin token is kept.
    #[arg(long, env = "CLICKTRAIL_DATA_DIR", default_value = "clicktrail-data")]
    pub data_dir: std::path::PathBuf,
    /// The password (10 to 256 characters); without it or `--password-stdin`, a one-time
    /// set-password link is printed instead.
    #[arg(long, env = "CLICKTRAIL_USER_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with = "password")]
    pub password_stdin: bool,
}

/// `clicktrail serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub roles: RoleSettings,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub embedded: EmbeddedArgs,
    /// Create a demo advertiser, campaigns, influencers, links and coupons (once: later starts
    /// on the same data directory reuse them), write 90 days of history on the first start, and
    /// drive synthetic shoppers through the HTTP endpoints.
    #[arg(long, env = "CLICKTRAIL_DEMO")]
    pub demo: bool,
    /// Visitors the demo simulates.
    #[arg(long, env = "CLICKTRAIL_DEMO_VISITORS", default_value_t = 400)]
    pub demo_visitors: usize,
}

impl ServeArgs {
    /// Checks cross-field rules and reports every problem at once.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        self.common.check(&mut problems);
        self.roles.check(&mut problems);
        self.embedded.check(&mut problems);
        outcome(problems)
    }
}

/// Settings of a role process (`clicktrail redirector|ingest|processor|query`). Settings a
/// role does not use are ignored; the secrets must be the same for every role of a deployment.
#[derive(Debug, Clone, Args)]
pub struct RoleArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub clickhouse: ClickHouseArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub roles: RoleSettings,
}

/// The roles' settings, the same for `serve` and for each role command (a role ignores those
/// of the others).
#[derive(Debug, Clone, Args)]
pub struct RoleSettings {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub redirect: RedirectArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub ingest: IngestArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub query: QueryArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub processor: ProcessorArgs,
}

impl RoleSettings {
    fn check(&self, problems: &mut Vec<String>) {
        self.http.check(problems);
        self.redirect.check(problems);
        self.ingest.check(problems);
        self.query.check(problems);
        self.processor.check(problems);
    }
}

impl RoleArgs {
    /// Checks what `role` needs and reports every problem at once.
    pub fn validate(&self, role: Role) -> Result<(), String> {
        let mut problems = Vec::new();
        let needs_admin = matches!(role, Role::Ingest | Role::Query);
        let needs_keys = matches!(role, Role::Redirector | Role::Processor);
        if needs_admin && self.common.admin_token.is_none() {
            problems.push(format!(
                "--admin-token (CLICKTRAIL_ADMIN_TOKEN) is required by {}",
                role.name()
            ));
        }
        if needs_keys && self.common.click_keys.is_none() {
            problems.push(format!(
                "--click-keys (CLICKTRAIL_CLICK_KEYS) is required by {}",
                role.name()
            ));
        }
        if matches!(role, Role::Ingest | Role::Processor) && self.common.signing_key.is_none() {
            problems.push(format!(
                "--signing-key (CLICKTRAIL_SIGNING_KEY) of at least 32 characters is required by {} \
                 (API keys' and webhook endpoints' secrets are derived from it)",
                role.name()
            ));
        }
        if role == Role::Redirector && self.common.visitor_salt.is_none() {
            problems.push(
                "--visitor-salt (CLICKTRAIL_VISITOR_SALT) of at least 16 characters is required by redirector"
                    .to_string(),
            );
        }
        self.common.check(&mut problems);
        self.kafka.check(&mut problems);
        self.clickhouse.check(&mut problems);
        self.roles.check(&mut problems);
        outcome(problems)
    }
}

/// Which role a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `clicktrail redirector`.
    Redirector,
    /// `clicktrail ingest`.
    Ingest,
    /// `clicktrail processor`.
    Processor,
    /// `clicktrail query`.
    Query,
}

impl Role {
    /// Every role, as `serve` runs them.
    pub const ALL: [Role; 4] = [Role::Redirector, Role::Ingest, Role::Processor, Role::Query];

    /// The role's name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Redirector => "redirector",
            Role::Ingest => "ingest",
            Role::Processor => "processor",
            Role::Query => "query",
        }
    }

    /// The role's default port.
    pub fn default_port(self) -> u16 {
        match self {
            Role::Redirector => 8081,
            Role::Ingest => 8082,
            Role::Processor => 8083,
            Role::Query => 8084,
        }
    }
}

fn outcome(problems: Vec<String>) -> Result<(), String> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}
