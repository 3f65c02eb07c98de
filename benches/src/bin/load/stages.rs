//! The processor's time breakdown per batch, read from its Prometheus metrics before and after a
//! run: `clicktrail_processor_batch_stage_seconds` (poll, process, hand on, store, commit, per
//! topic) and `clicktrail_store_write_stage_seconds` (encode, files, manifest or insert,
//! checkpoint).

use reqwest::Client;
use std::collections::BTreeMap;

const BATCH: &str = "clicktrail_processor_batch_stage_seconds";
const STORE: &str = "clicktrail_store_write_stage_seconds";
const RECORDS: &str = "clicktrail_processor_batch_records";
const STATE: &str = "clicktrail_processor_partition_state_bytes";

/// `(metric, labels)` → (sum, count) of every histogram the breakdown reads.
#[derive(Default)]
pub struct Snapshot(BTreeMap<(String, String), (f64, f64)>);

impl Snapshot {
    /// Reads the metrics page of `base` (empty when it does not answer).
    pub async fn take(client: &Client, base: &str) -> Snapshot {
        let Ok(r) = client.get(format!("{base}/metrics")).send().await else {
            return Snapshot::default();
        };
        let text = r.text().await.unwrap_or_default();
        let mut out = BTreeMap::<(String, String), (f64, f64)>::new();
        for line in text.lines() {
            let Some((name_labels, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match name_labels.split_once('{') {
                Some((n, l)) => (n, l.trim_end_matches('}').to_string()),
                None => (name_labels, String::new()),
            };
            if name == STATE {
                let e = out.entry((STATE.to_string(), labels.clone())).or_default();
                e.0 = value;
                continue;
            }
            for metric in [BATCH, STORE, RECORDS] {
                // Only the sums and counts: bucket lines carry an `le` label of their own.
                let Some(rest) = name.strip_prefix(metric) else {
                    continue;
                };
                let e = out.entry((metric.to_string(), labels.clone()));
                match rest {
                    "_sum" => e.or_default().0 = value,
                    "_count" => e.or_default().1 = value,
                    _ => {}
                }
            }
        }
        Snapshot(out)
    }

    /// Prints, per topic, the batches written since `before`, their mean records and the mean
    /// milliseconds per batch of each stage; then the store's stages.
    pub fn print_since(&self, before: &Snapshot) {
        let delta = |key: &(String, String)| {
            let (s, c) = self.0.get(key).copied().unwrap_or_default();
            let (s0, c0) = before.0.get(key).copied().unwrap_or_default();
            (s - s0, c - c0)
        };
        let label = |labels: &str, name: &str| {
            labels.split(',').find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                (k == name).then(|| v.trim_matches('"').to_string())
            })
        };
        let mut topics: BTreeMap<String, BTreeMap<String, (f64, f64)>> = BTreeMap::new();
        for key in self.0.keys().filter(|k| k.0 == BATCH || k.0 == RECORDS) {
            let Some(topic) = label(&key.1, "topic") else {
                continue;
            };
            let stage = label(&key.1, "stage").unwrap_or_else(|| "records".to_string());
            topics.entry(topic).or_default().insert(stage, delta(key));
        }
        println!(
            "  time per batch by step (ms, mean):   batches  records    poll  process  hand_on    store  commit"
        );
        for (topic, stages) in &topics {
            let batches = stages.get("store").map_or(0.0, |s| s.1);
            if batches < 1.0 {
                continue;
            }
            let mean = |stage: &str| {
                stages
                    .get(stage)
                    .map_or(0.0, |(s, c)| if *c > 0.0 { s / c } else { 0.0 })
            };
            let ms = |stage: &str| mean(stage) * 1000.0;
            println!(
                "  {topic:<36} {batches:>7.0}  {:>7.0}  {:>6.1}  {:>7.1}  {:>7.1}  {:>7.1}  {:>6.1}",
                mean("records"),
                ms("poll"),
                ms("process"),
                ms("hand_on"),
                ms("store"),
                ms("commit")
            );
        }
        let mut store = Vec::new();
        for key in self.0.keys().filter(|k| k.0 == STORE) {
            if let Some(stage) = label(&key.1, "stage") {
                let (s, c) = delta(key);
                if c > 0.0 {
                    store.push(format!("{stage} {:.1} ms", s / c * 1000.0));
                }
            }
        }
        println!(
            "  store write stages (mean per write): {}",
            store.join(", ")
        );
        let mut state: BTreeMap<String, f64> = BTreeMap::new();
        for (key, (bytes, _)) in self.0.iter().filter(|(k, _)| k.0 == STATE) {
            *state
                .entry(label(&key.1, "topic").unwrap_or_default())
                .or_default() += bytes;
        }
        let state: Vec<String> = state
            .iter()
            .map(|(topic, b)| format!("{topic} {:.0} MB", b / 1e6))
            .collect();
        println!(
            "  processor state held, all partitions: {}",
            state.join(", ")
        );
    }
}
