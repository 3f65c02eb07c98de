//! Services a test starts for itself, to stop and start them again: a Kafka-protocol broker
//! (Tansu, SQLite storage so it keeps its data across a restart) and a ClickHouse server.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_port(port: u16, up: bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
        != up
    {
        assert!(Instant::now() < deadline, "port {port} never became {up}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// A broker of the test's own (SQLite storage in `dir`, so it keeps its data across a
/// restart), on a fixed port.
pub struct Broker {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
}

impl Broker {
    pub async fn start(dir: &Path) -> Broker {
        let mut b = Broker {
            child: None,
            port: free_port(),
            dir: dir.to_path_buf(),
        };
        b.up().await;
        b
    }

    async fn up(&mut self) {
        let tansu =
            std::env::var("CLICKTRAIL_TANSU").expect("CLICKTRAIL_TANSU names the broker binary");
        let url = format!("tcp://127.0.0.1:{}", self.port);
        std::fs::create_dir_all(&self.dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("broker.log"))
            .unwrap();
        self.child = Some(
            Command::new(tansu)
                .args([
                    "broker",
                    "--listener-url",
                    &url,
                    "--advertised-listener-url",
                    &url,
                ])
                .args(["--storage-engine", "sqlite://tansu.db"])
                .current_dir(&self.dir)
                .env(
                    "RUST_LOG",
                    std::env::var("TEST_TANSU_LOG").unwrap_or_else(|_| "warn".into()),
                )
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start the broker"),
        );
        wait_port(self.port, true).await;
    }

    /// Freezes the broker (SIGSTOP): it holds its connections and answers nothing, as a broker
    /// that is down or cut off does, until `resume`; it keeps everything it stored.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("the broker runs").id();
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill {sig} {pid}");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.join("broker.log")).unwrap_or_default();
            let _ = std::fs::write("/tmp/broker-fail.log", &log);
            eprintln!("broker log, first errors:");
            for l in log
                .lines()
                .filter(|l| l.contains("ERROR") || l.contains("panic"))
                .take(30)
            {
                eprintln!("  {l}");
            }
        }
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A ClickHouse server of the test's own, in `dir`, on fixed ports.
pub struct ClickHouse {
    child: Option<Child>,
    pub http: u16,
    dir: PathBuf,
}

impl ClickHouse {
    pub async fn start(dir: &Path) -> ClickHouse {
        let (http, tcp) = (free_port(), free_port());
        for d in ["data", "tmp", "log", "user_files"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let d = dir.display();
        std::fs::write(
            dir.join("users.xml"),
            "<yandex><profiles><default/></profiles><users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users><quotas><default/></quotas></yandex>",
        )
        .unwrap();
        std::fs::write(
            dir.join("config.xml"),
            format!(
                "<yandex><logger><level>warning</level><log>{d}/log/ch.log</log><errorlog>{d}/log/err.log</errorlog><console>0</console></logger>\
                 <http_port>{http}</http_port><tcp_port>{tcp}</tcp_port><listen_host>127.0.0.1</listen_host>\
                 <path>{d}/data/</path><tmp_path>{d}/tmp/</tmp_path><user_files_path>{d}/user_files/</user_files_path>\
                 <users_config>{d}/users.xml</users_config><default_profile>default</default_profile><default_database>default</default_database>\
                 <mark_cache_size>268435456</mark_cache_size></yandex>"
            ),
        )
        .unwrap();
        let mut c = ClickHouse {
            child: None,
            http,
            dir: dir.to_path_buf(),
        };
        c.up().await;
        c
    }

    pub async fn up(&mut self) {
        self.child = Some(
            Command::new("clickhouse-server")
                .arg(format!(
                    "--config-file={}",
                    self.dir.join("config.xml").display()
                ))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("clickhouse-server is installed by scripts/services"),
        );
        wait_port(self.http, true).await;
    }

    pub async fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
        wait_port(self.http, false).await;
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
