//! `clicktrail users create-admin`: makes an admin user on a running deployment through its
//! admin API (the admin token is the bootstrap credential), so that the first admin can log in
//! to the dashboards. With a password (from `CLICKTRAIL_USER_PASSWORD` or the first line of
//! standard input with `--password-stdin`) the user can log in at once; without one, the
//! one-time set-password link is printed instead.

use crate::config::{CreateAdminArgs, UsersCommand};
use anyhow::{Context, anyhow, bail};
use reqwest::Client;
use serde_json::{Value, json};

/// Runs a `users` subcommand.
pub async fn run(cmd: UsersCommand) -> anyhow::Result<()> {
    match cmd {
        UsersCommand::CreateAdmin(args) => create_admin(args).await,
    }
}

async fn create_admin(args: CreateAdminArgs) -> anyhow::Result<()> {
    let token = match &args.admin_token {
        Some(t) => t.clone(),
        None => {
            let file = args.data_dir.join("admin-token");
            std::fs::read_to_string(&file)
                .with_context(|| {
                    format!(
                        "no --admin-token given and none in {} (the one `serve` keeps)",
                        file.display()
                    )
                })?
                .trim()
                .to_string()
        }
    };
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        Some(line.trim_end_matches(['\r', '\n']).to_string())
    } else {
        args.password.clone()
    };
    let base = args.url.trim_end_matches('/');
    let user = create_user(
        &Client::new(),
        base,
        &token,
        json!({"email": args.email, "name": args.name, "role": "admin"}),
        password.as_deref(),
    )
    .await?;
    match password {
        Some(_) => println!("admin user {} created: log in at {base}/login", user.email),
        None => println!(
            "admin user {} invited: they set their password once at\n  {}",
            user.email, user.set_password_url
        ),
    }
    Ok(())
}

/// A user made by [`create_user`].
pub struct Created {
    /// Login email address.
    pub email: String,
    /// The one-time set-password link (already used when a password was given).
    pub set_password_url: String,
}

/// Invites a user through `POST /api/v1/admin/users` with the admin token and, when
/// `password` is given, sets it through the invitation's set-password link.
/// Errors: the deployment cannot be reached, or refuses (the message says why).
pub async fn create_user(
    http: &Client,
    base: &str,
    admin_token: &str,
    body: Value,
    password: Option<&str>,
) -> anyhow::Result<Created> {
    let resp = http
        .post(format!("{base}/api/v1/admin/users"))
        .bearer_auth(admin_token)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("cannot reach clicktrail at {base}"))?;
    let status = resp.status();
    let answer: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("creating the user failed ({status}): {}", message(&answer));
    }
    let url = answer["set_password_url"]
        .as_str()
        .ok_or_else(|| anyhow!("no set_password_url in {answer}"))?
        .to_string();
    let created = Created {
        email: answer["user"]["email"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        set_password_url: url.clone(),
    };
    if let Some(password) = password {
        let token = url
            .split_once("#token=")
            .map(|(_, t)| t)
            .ok_or_else(|| anyhow!("unexpected set-password link {url}"))?;
        let resp = http
            .post(format!("{base}/api/v1/auth/set-password"))
            .json(&json!({"token": token, "password": password}))
            .send()
            .await?;
        let status = resp.status();
        if !status.is_success() {
            let answer: Value = resp.json().await.unwrap_or(Value::Null);
            bail!(
                "setting the password failed ({status}): {}",
                message(&answer)
            );
        }
    }
    Ok(created)
}

fn message(answer: &Value) -> String {
    let mut m = answer["message"]
        .as_str()
        .unwrap_or("no message")
        .to_string();
    for f in answer["fields"].as_array().into_iter().flatten() {
        m.push_str(&format!(
            "; {}: {}",
            f["field"].as_str().unwrap_or(""),
            f["message"].as_str().unwrap_or("")
        ));
    }
    m
}
