//! Closed-loop HTTP load: a fixed number of workers, each sending its next request as soon as
//! the previous one was answered, for a fixed time. Every answer's latency goes into an HDR
//! histogram (microseconds, three significant digits).

use hdrhistogram::Histogram;
use reqwest::{Client, RequestBuilder, StatusCode};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one load run measured.
pub struct Run {
    /// Answers with the expected status.
    pub ok: u64,
    /// Answers with the expected status, warm-up included.
    pub answered: u64,
    /// Answers with another status, or transport errors (599), by status.
    pub failed: BTreeMap<u16, u64>,
    /// Units of work (records) the expected answers carried.
    pub units: u64,
    pub elapsed: Duration,
    pub latency: Histogram<u64>,
}

impl Run {
    /// Expected answers per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// Units per second (records, for batched requests).
    pub fn unit_rate(&self) -> f64 {
        self.units as f64 / self.elapsed.as_secs_f64()
    }

    /// A latency quantile in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }
}

/// One request of a run: built from the worker's running number, with the number of units it
/// carries.
pub type MakeRequest = Arc<dyn Fn(&Client, u64) -> (RequestBuilder, u64) + Send + Sync>;

/// Runs `workers` closed loops of `make` for `warmup` (not measured) and then `duration`.
pub async fn run(
    client: &Client,
    workers: usize,
    warmup: Duration,
    duration: Duration,
    expect: StatusCode,
    make: MakeRequest,
) -> Run {
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut tasks = Vec::with_capacity(workers);
    for w in 0..workers {
        let (client, make) = (client.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            let (mut ok, mut units, mut answered) = (0u64, 0u64, 0u64);
            let mut failed = BTreeMap::<u16, u64>::new();
            let mut n = (w as u64) << 32;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let (req, carried) = make(&client, n);
                n += 1;
                let answer = match req.send().await {
                    Ok(r) => {
                        let status = r.status();
                        // Read the body so the connection is reused.
                        let _ = r.bytes().await;
                        status
                    }
                    Err(_) => StatusCode::from_u16(599).expect("status"),
                };
                if answer == expect {
                    answered += 1;
                }
                if sent < measure_from {
                    continue;
                }
                if answer == expect {
                    ok += 1;
                    units += carried;
                    let micros = sent.elapsed().as_micros() as u64;
                    let _ = hist.record(micros.max(1));
                } else {
                    *failed.entry(answer.as_u16()).or_default() += 1;
                }
            }
            (ok, answered, failed, units, hist)
        }));
    }
    let mut total = Run {
        ok: 0,
        answered: 0,
        failed: BTreeMap::new(),
        units: 0,
        elapsed: duration,
        latency: Histogram::<u64>::new(3).expect("histogram"),
    };
    for t in tasks {
        let (ok, answered, failed, units, hist) = t.await.expect("load worker");
        total.ok += ok;
        total.answered += answered;
        for (status, n) in failed {
            *total.failed.entry(status).or_default() += n;
        }
        total.units += units;
        total.latency.add(&hist).expect("same histogram bounds");
    }
    total.elapsed = Instant::now().saturating_duration_since(measure_from);
    total
}
