//! The raw rates of the services under clicktrail on the Kafka backend, measured in the same
//! run so that clicktrail's own rates can be read as ratios of them: the broker's produce rate
//! from a bare rdkafka producer (clicktrail's producer settings, no clicktrail code between),
//! and ClickHouse's insert rate of rows clicktrail stored, sent back as they are.

use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use reqwest::Client;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Counts the broker's delivery reports.
#[derive(Default)]
struct Delivered {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Delivered {}

impl ProducerContext for Delivered {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let counter = if result.is_ok() {
            &self.ok
        } else {
            &self.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Records produced for `seconds` (then flushed) to a topic of 4 partitions of its own, each
/// `payload` bytes under a key of its own, with clicktrail's producer settings (idempotent,
/// `acks=all`, lz4, `linger.ms` 5, 10,000 records per batch). Returns the records the broker
/// acknowledged per second, from the first send until the last acknowledgement, and prints it.
pub async fn produce_rate(brokers: &str, topic: &str, payload: &[u8], seconds: u64) -> f64 {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("broker.address.family", "v4")
        .set("log_level", "4");
    let admin: AdminClient<_> = config.create().expect("an admin client");
    let created = admin
        .create_topics(
            &[NewTopic::new(topic, 4, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("the broker answers create_topics");
    for r in created {
        if let Err((name, code)) = r {
            assert_eq!(
                code,
                RDKafkaErrorCode::TopicAlreadyExists,
                "create topic {name}"
            );
        }
    }
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("message.timeout.ms", "60000");
    let payload = payload.to_vec();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let producer: ThreadedProducer<Delivered> = config
            .create_with_context(Delivered::default())
            .expect("a producer");
        let started = Instant::now();
        let until = started + Duration::from_secs(seconds);
        let mut sent = 0u64;
        while Instant::now() < until {
            let key = sent.to_be_bytes();
            let mut record = BaseRecord::to(&topic).key(&key[..]).payload(&payload[..]);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err((e, _)) => panic!("produce: {e}"),
                }
            }
            sent += 1;
        }
        producer
            .flush(Duration::from_secs(120))
            .expect("every record acknowledged or failed within 2 minutes");
        let took = started.elapsed().as_secs_f64();
        let ctx = producer.context();
        let (ok, failed) = (
            ctx.ok.load(Ordering::Relaxed),
            ctx.failed.load(Ordering::Relaxed),
        );
        let rate = ok as f64 / took;
        println!(
            "broker raw produce (rdkafka)  {rate:>9.0} records/s  ({ok} of {sent} records of {} bytes acknowledged in {took:.1} s, {failed} failed; clicktrail's producer settings)",
            payload.len()
        );
        rate
    })
    .await
    .expect("the produce thread")
}

/// `url` with `params` as its query string.
///
/// # Panics
/// If `url` is not a URL.
pub fn with_query<K: AsRef<str>, V: AsRef<str>>(url: &str, params: &[(K, V)]) -> reqwest::Url {
    reqwest::Url::parse_with_params(url, params.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// Sends `sql` to ClickHouse's HTTP interface with `body` after it (a statement without data
/// goes as the body itself: ClickHouse wants a length on every POST); the answer's text.
pub(crate) async fn clickhouse(client: &Client, url: &str, sql: &str, body: Vec<u8>) -> String {
    let request = if body.is_empty() {
        client.post(url).body(sql.to_string())
    } else {
        client.post(with_query(url, &[("query", sql)])).body(body)
    };
    let r = request.send().await.expect("ClickHouse answers");
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    assert!(status.is_success(), "{sql}: {status} {text}");
    text
}

/// ClickHouse's insert rate of `rows` rows of `database.events` that clicktrail stored, read
/// back as RowBinary and inserted in one request into a new table of the same columns and
/// engine (without the rollups' materialized views). Returns rows per second and prints it.
pub async fn insert_rate(client: &Client, url: &str, database: &str, rows: u64) -> f64 {
    let probe = format!("{database}.raw_insert_probe");
    clickhouse(
        client,
        url,
        &format!("DROP TABLE IF EXISTS {probe}"),
        vec![],
    )
    .await;
    clickhouse(
        client,
        url,
        &format!("CREATE TABLE {probe} AS {database}.events"),
        vec![],
    )
    .await;
    let r = client
        .post(url)
        .body(format!(
            "SELECT * FROM {database}.events LIMIT {rows} FORMAT RowBinary"
        ))
        .send()
        .await
        .expect("ClickHouse answers");
    assert!(r.status().is_success(), "read events: {}", r.status());
    let body = r.bytes().await.expect("the rows").to_vec();
    let bytes = body.len();
    let started = Instant::now();
    clickhouse(
        client,
        url,
        &format!("INSERT INTO {probe} FORMAT RowBinary"),
        body,
    )
    .await;
    let took = started.elapsed().as_secs_f64();
    let count: u64 = clickhouse(client, url, &format!("SELECT count() FROM {probe}"), vec![])
        .await
        .trim()
        .parse()
        .expect("a count");
    clickhouse(client, url, &format!("DROP TABLE {probe}"), vec![]).await;
    let rate = count as f64 / took;
    println!(
        "ClickHouse raw insert         {rate:>9.0} rows/s  ({count} stored events rows, {:.1} MB of RowBinary, in one request of {took:.2} s)",
        bytes as f64 / 1e6
    );
    rate
}
