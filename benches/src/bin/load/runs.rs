//! The harness's longer runs: sustained ingest until queryable (with the delay from
//! acknowledgement to visibility under that load), the mixed run over which memory is sampled,
//! and the redirect comparison with wrk.

use crate::drive::{self, MakeRequest};
use crate::setup::{Deployment, Shop};
use crate::stages::Snapshot;
use crate::{events, purchases, report, signed};
use reqwest::{Client, StatusCode};
use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Events per request of the sustained ingest run.
const SUSTAIN_BATCH: usize = 500;
/// Senders of the sustained ingest run.
const SUSTAIN_SENDERS: usize = 8;

/// Batched signed events for `seconds` from 8 senders, as fast as they are acknowledged, with a
/// probe event every 100 ms; then waits until every event is stored. Prints events per second
/// from the first request until all are queryable, and the probes' delay from acknowledgement
/// until queryable (p50, p99, max). Returns the events per second until queryable and the
/// probes' p99 delay in milliseconds.
pub async fn queryable(
    client: &Client,
    deployment: &Deployment,
    shop: &Shop,
    seconds: u64,
    connections: usize,
) -> (f64, f64) {
    let url = format!("{}/api/v1/events", deployment.ingest);
    let before = Snapshot::take(client, &deployment.processor).await;
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections.clamp(1, SUSTAIN_SENDERS) {
        let (client, url, shop, next) = (client.clone(), url.clone(), shop.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                let n = next.fetch_add(1, Ordering::SeqCst);
                let body = purchases("q", n, SUSTAIN_BATCH, 5.0);
                // A refused request (back-pressure) is sent again until it is acknowledged.
                loop {
                    let r = signed(&client, &url, &shop, &body).send().await;
                    if r.is_ok_and(|r| r.status().is_success()) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }));
    }
    let done = Arc::new(AtomicBool::new(false));
    let probes = tokio::spawn(probe(
        client.clone(),
        url.clone(),
        shop.clone(),
        done.clone(),
    ));
    for t in tasks {
        t.await.expect("sender");
    }
    let acked = started.elapsed();
    let total = next.load(Ordering::SeqCst) * SUSTAIN_BATCH as u64;
    // Senders stop after their last request, so every number below `next` was acknowledged.
    let probe_acks = {
        done.store(true, Ordering::SeqCst);
        probes.await.expect("probe task")
    };
    let (seen, p99) = watch_probes(client, deployment, probe_acks).await;
    // Short of all of them, the rate is of those stored.
    let stored = match deployment
        .wait_stored(client, "events", "event_id", "q-%", total)
        .await
    {
        Ok(()) => total,
        Err(n) => n,
    };
    let visible = started.elapsed();
    let rate = stored as f64 / visible.as_secs_f64();
    println!(
        "ingest to queryable          {rate:>9.0} events/s  ({total} events in {seconds} s from {} senders of {SUSTAIN_BATCH}: acknowledged at {:.0}/s, all stored after {:.1} s)",
        connections.clamp(1, SUSTAIN_SENDERS),
        total as f64 / acked.as_secs_f64(),
        visible.as_secs_f64(),
    );
    println!("acknowledged to queryable    {seen}");
    Snapshot::take(client, &deployment.processor)
        .await
        .print_since(&before);
    (rate, p99)
}

/// Sends one signed probe event every 100 ms until `done`; returns each probe's id with the
/// moment it was acknowledged.
async fn probe(
    client: Client,
    url: String,
    shop: Shop,
    done: Arc<AtomicBool>,
) -> Vec<(String, Instant)> {
    let mut acks = Vec::new();
    let mut n = 0u64;
    while !done.load(Ordering::SeqCst) {
        let body = purchases("p", n, 1, 1.0);
        let id = format!("p-{n}-0");
        n += 1;
        if let Ok(r) = signed(&client, &url, &shop, &body).send().await
            && r.status().is_success()
        {
            acks.push((id, Instant::now()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    acks
}

/// Polls the store (every 50 ms, as fast as it answers) until every probe is visible, and
/// describes their delays from acknowledgement. A probe acknowledged before the poll that saw
/// it is counted from its acknowledgement to the end of that poll. Returns the description and
/// the p99 in milliseconds.
async fn watch_probes(
    client: &Client,
    deployment: &Deployment,
    acks: Vec<(String, Instant)>,
) -> (String, f64) {
    let mut pending: HashMap<String, Instant> = acks.into_iter().collect();
    let probes = pending.len();
    let mut delays = Vec::with_capacity(probes);
    let deadline = Instant::now() + Duration::from_secs(600);
    while !pending.is_empty() && Instant::now() < deadline {
        let visible = deployment.ids(client, "events", "event_id", "p-%").await;
        let at = Instant::now();
        for id in visible {
            if let Some(acked) = pending.remove(&id) {
                delays.push(at.duration_since(acked));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    delays.sort();
    let q = |f: f64| {
        delays
            .get(((delays.len() as f64 * f).ceil() as usize).saturating_sub(1))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    let text = format!(
        "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} probes during the run; {} never seen)",
        q(0.5),
        q(0.99),
        q(1.0),
        probes,
        pending.len()
    );
    (text, q(0.99))
}

/// Resident memory of the deployment's processes, read from `/proc/<pid>/status`.
pub struct Memory {
    pub(crate) pids: Vec<u32>,
}

impl Memory {
    pub fn new(pids: Vec<u32>) -> Memory {
        Memory { pids }
    }

    /// The summed `VmRSS` of every process, in bytes.
    pub fn rss(&self) -> u64 {
        self.pids.iter().map(|p| rss_of(*p)).sum()
    }

    /// Prints the resident memory with what just happened.
    pub fn print(&self, when: &str) {
        println!(
            "  resident memory {when}: {:.0} MB",
            self.rss() as f64 / 1e6
        );
    }
}

fn rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Redirects from half the connections and batched signed events from a quarter, for
/// `minutes`, sampling resident memory every 10 s; prints the memory after the first minute,
/// the highest and the last, and the ratio of the last to the first minute's.
pub async fn soak(
    client: &Client,
    deployment: &Deployment,
    shop: &Shop,
    memory: &Memory,
    minutes: u64,
    connections: usize,
) {
    let duration = Duration::from_secs(minutes * 60);
    let started = Instant::now();
    let sampler = {
        let pids = memory.pids.clone();
        tokio::spawn(async move {
            let memory = Memory::new(pids);
            let mut samples = Vec::new();
            while started.elapsed() < duration {
                tokio::time::sleep(Duration::from_secs(10)).await;
                samples.push((started.elapsed(), memory.rss()));
            }
            samples
        })
    };
    let redirects: MakeRequest = crate::redirect(deployment.redirector.clone(), shop.code.clone());
    let none = Duration::ZERO;
    let (clicks, batched) = tokio::join!(
        drive::run(
            client,
            (connections / 2).max(1),
            none,
            duration,
            StatusCode::FOUND,
            redirects
        ),
        drive::run(
            client,
            (connections / 4).max(1),
            none,
            duration,
            StatusCode::OK,
            events(&deployment.ingest, shop, "soak", 100)
        ),
    );
    let samples = sampler.await.expect("memory sampler");
    println!("mixed run over {minutes} min:");
    report("  redirects", &clicks, "redirects");
    report("  signed events, 100 per request", &batched, "events");
    let first = samples
        .iter()
        .find(|(at, _)| *at >= Duration::from_secs(60))
        .or(samples.first())
        .map_or(0, |s| s.1);
    let last = samples.last().map_or(0, |s| s.1);
    let high = samples.iter().map(|s| s.1).max().unwrap_or(0);
    println!(
        "  resident memory: {:.0} MB after the first minute, highest {:.0} MB, at the end {:.0} MB: end / first minute {:.2}",
        first as f64 / 1e6,
        high as f64 / 1e6,
        last as f64 / 1e6,
        last as f64 / first.max(1) as f64
    );
    crate::summary::record(
        format!("memory of clicktrail over a {minutes}-minute mixed run"),
        "end ≤ 1.2× first minute",
        format!(
            "{:.0} → {:.0} MB ({:.2}×, highest {:.0} MB)",
            first as f64 / 1e6,
            last as f64 / 1e6,
            last as f64 / first.max(1) as f64,
            high as f64 / 1e6
        ),
    );
}

/// wrk, when it is installed: the same number of connections over two threads.
pub struct Wrk {
    bin: Option<String>,
    connections: usize,
    seconds: u64,
}

/// What one wrk run measured.
pub struct WrkRun {
    pub rate: f64,
    pub p99_ms: f64,
    pub requests: u64,
    p50_ms: f64,
    non_2xx_3xx: u64,
}

impl std::fmt::Display for WrkRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>9.0} redirects/s  p50 {:>7.2} ms  p99 {:>7.2} ms  ({} requests, {} other answers)",
            self.rate, self.p50_ms, self.p99_ms, self.requests, self.non_2xx_3xx
        )
    }
}

impl Wrk {
    pub fn new(bin: &str, connections: usize, seconds: u64) -> Wrk {
        let found = Command::new(bin).arg("--version").output().is_ok();
        if !found {
            println!(
                "wrk not found ({bin}): the wrk comparison is skipped (scripts/services install provides it)"
            );
        }
        Wrk {
            bin: found.then(|| bin.to_string()),
            connections,
            seconds,
        }
    }

    /// Runs wrk against `url`; `None` when wrk is missing or its output cannot be read.
    pub fn run(&self, url: &str) -> Option<WrkRun> {
        let bin = self.bin.as_ref()?;
        let out = Command::new(bin)
            .args(["-t2", &format!("-c{}", self.connections)])
            .args([&format!("-d{}s", self.seconds), "--latency", url])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let parsed = parse_wrk(&text);
        if parsed.is_none() {
            println!("wrk output not understood:\n{text}");
        }
        parsed
    }
}

/// Reads `Requests/sec`, the latency distribution's 50% and 99% lines, the request count and
/// `Non-2xx or 3xx responses` from wrk's report.
fn parse_wrk(text: &str) -> Option<WrkRun> {
    let mut run = WrkRun {
        rate: 0.0,
        p99_ms: 0.0,
        requests: 0,
        p50_ms: 0.0,
        non_2xx_3xx: 0,
    };
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v] => run.rate = v.parse().ok()?,
            ["50%", v] => run.p50_ms = millis(v)?,
            ["99%", v] => run.p99_ms = millis(v)?,
            ["Non-2xx", "or", "3xx", "responses:", v] => run.non_2xx_3xx = v.parse().ok()?,
            [n, "requests", "in", ..] => run.requests = n.parse().ok()?,
            _ => {}
        }
    }
    (run.rate > 0.0).then_some(run)
}

/// A wrk duration (`850.00us`, `1.20ms`, `2.01s`) in milliseconds.
fn millis(v: &str) -> Option<f64> {
    let (num, scale) = if let Some(n) = v.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (v, 1.0)
    };
    num.parse::<f64>().ok().map(|x| x * scale)
}
