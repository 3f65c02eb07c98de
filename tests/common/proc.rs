//! One `clicktrail` process of a test: started, waited for, stopped, killed, restarted.

use super::client;
use reqwest::{Client, StatusCode};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One `clicktrail` process.
pub struct Proc {
    /// `serve`, `redirector`, `ingest`, `processor` or `query`.
    pub role: String,
    pub child: Child,
    pub base: String,
    /// The arguments it was started with, to restart it the same way.
    pub args: Vec<String>,
}

/// Starts `clicktrail <args>` and waits for its address. The binary is the one cargo built for
/// the tests, or `$CLICKTRAIL_TEST_BINARY` (to measure a release build with the same tests).
pub fn spawn(role: &str, args: Vec<String>) -> Proc {
    let binary = std::env::var("CLICKTRAIL_TEST_BINARY")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_clicktrail").to_string());
    let mut child = Command::new(binary)
        .args(&args)
        .env(
            "RUST_LOG",
            std::env::var("TEST_RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start clicktrail");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("clicktrail is listening on ") {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(180))
        .unwrap_or_else(|_| panic!("{role} printed its address"));
    Proc {
        role: role.to_string(),
        child,
        base: format!("http://{addr}"),
        args,
    }
}

/// Waits until `base` answers ready.
pub async fn wait_ready(http: &Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Ok(r) = http.get(format!("{base}/health/ready")).send().await
            && r.status() == StatusCode::OK
        {
            return;
        }
        assert!(Instant::now() < deadline, "{base} never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Proc {
    /// SIGKILL.
    pub fn kill9(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaped");
    }

    /// SIGINT, then wait for a clean exit.
    pub fn stop(&mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill -INT");
        let status = self.child.wait().expect("exited");
        assert!(
            status.success(),
            "{}: clean shutdown, got {status}",
            self.role
        );
    }

    /// Starts it again with the same arguments (a new port); waits until it is ready.
    pub async fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        *self = spawn(&self.role, self.args.clone());
        wait_ready(&client(), &self.base).await;
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
