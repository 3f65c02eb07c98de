use super::super::{EmbeddedLog, LogOptions};
use crate::{Consumer, ConsumerEvent, ConsumerFactory, Message, Producer, TailReader};
use chrono::{DateTime, Utc};
use clicktrail_schemas::Topic;
use std::path::Path;
use std::time::Duration;

/// Payload that makes a record with key `k` count for exactly 100 bytes.
const PAYLOAD_FOR_100_BYTES: usize = 100 - 8 - 12 - 1;

fn options(age: Option<Duration>, bytes: Option<u64>) -> LogOptions {
    LogOptions {
        retention_age: age,
        retention_bytes: bytes,
        retention_interval: Duration::ZERO,
        ..LogOptions::default()
    }
}

fn open(dir: &Path, options: LogOptions) -> EmbeddedLog {
    EmbeddedLog::open(&dir.join("log.redb"), options).unwrap()
}

fn days_later(days: i64) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::days(days)
}

/// Appends `n` records of 100 bytes with key `k` and payloads starting with 0, 1, …; returns
/// their partition.
async fn append(log: &EmbeddedLog, topic: Topic, n: u8) -> u32 {
    let mut partition = 0;
    for i in 0..n {
        let mut payload = vec![i];
        payload.resize(PAYLOAD_FOR_100_BYTES, b'.');
        partition = log
            .send(topic, b"k".to_vec(), payload)
            .await
            .unwrap()
            .partition;
    }
    partition
}

/// Polls until a poll returns records (or `wait` runs out on one).
async fn next_records(c: &mut Box<dyn Consumer>, wait: Duration) -> Vec<Message> {
    loop {
        match c.poll(100, wait).await.unwrap() {
            ConsumerEvent::Records(r) => return r,
            _ => continue,
        }
    }
}

/// Offsets a new reader of the topic sees.
async fn offsets_read(log: &EmbeddedLog, topic: Topic) -> Vec<u64> {
    let mut r = log.reader(topic).await.unwrap();
    next_records(&mut r, Duration::ZERO)
        .await
        .iter()
        .map(|m| m.offset)
        .collect()
}

#[tokio::test]
async fn old_records_every_group_committed_past_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogOptions::default());
    let p = append(&log, Topic::Events, 10).await;
    for group in ["a", "b"] {
        let mut c = log.consumer(group, Topic::Events).await.unwrap();
        c.commit(&[(p, 10)]).await.unwrap();
    }
    let fresh = log.apply_retention(Utc::now()).await.unwrap();
    assert_eq!(fresh.total(), 0, "records younger than 7 days stay");
    assert_eq!(offsets_read(&log, Topic::Events).await.len(), 10);

    let report = log.apply_retention(days_later(8)).await.unwrap();
    assert_eq!(report.removed_from(Topic::Events, p), 10);
    assert_eq!(report.total(), 10);
    assert!(offsets_read(&log, Topic::Events).await.is_empty());
    assert_eq!(
        log.end_offsets(Topic::Events).await.unwrap()[p as usize],
        10
    );
    assert_eq!(
        log.committed("a", Topic::Events).await.unwrap()[p as usize],
        Some(10)
    );
}

#[tokio::test]
async fn records_one_group_has_not_committed_past_survive_however_old() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogOptions::default());
    let p = append(&log, Topic::Events, 10).await;
    let mut a = log.consumer("a", Topic::Events).await.unwrap();
    let mut b = log.consumer("b", Topic::Events).await.unwrap();
    a.commit(&[(p, 10)]).await.unwrap();
    b.commit(&[(p, 4)]).await.unwrap();

    let report = log.apply_retention(days_later(365)).await.unwrap();
    assert_eq!(report.removed_from(Topic::Events, p), 4);
    assert_eq!(
        offsets_read(&log, Topic::Events).await,
        (4..10).collect::<Vec<u64>>()
    );
    let mut b_again = log.consumer("b", Topic::Events).await.unwrap();
    let recs = next_records(&mut b_again, Duration::ZERO).await;
    assert_eq!(recs.first().map(|m| m.payload[0]), Some(4));

    b.commit(&[(p, 10)]).await.unwrap();
    let report = log.apply_retention(days_later(365)).await.unwrap();
    assert_eq!(report.removed_from(Topic::Events, p), 6);
}

#[tokio::test]
async fn a_group_that_never_committed_protects_everything_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path(), LogOptions::default());
        append(&log, Topic::Clicks, 5).await;
        append(&log, Topic::DeadLetter, 5).await;
        let _processor = log.consumer("processor", Topic::Clicks).await.unwrap();
        let report = log.apply_retention(days_later(30)).await.unwrap();
        assert_eq!(report.removed_from_topic(Topic::Clicks), 0);
        assert_eq!(
            report.removed_from_topic(Topic::DeadLetter),
            5,
            "a topic no group reads is trimmed by age alone"
        );
        log.close().await.unwrap();
    }
    let log = open(dir.path(), LogOptions::default());
    let report = log.apply_retention(days_later(30)).await.unwrap();
    assert_eq!(report.total(), 0);
    assert_eq!(offsets_read(&log, Topic::Clicks).await.len(), 5);
}

#[tokio::test]
async fn the_size_limit_removes_oldest_records_first() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), options(None, Some(1000)));
    append(&log, Topic::DeadLetter, 20).await;
    let report = log.apply_retention(Utc::now()).await.unwrap();
    assert_eq!(report.removed_from(Topic::DeadLetter, 0), 10);
    let left: Vec<u8> = log
        .tail(Topic::DeadLetter, 100)
        .await
        .unwrap()
        .iter()
        .map(|m| m.payload[0])
        .collect();
    assert_eq!(left, (10..20).collect::<Vec<u8>>());

    append(&log, Topic::DeadLetter, 1).await;
    let report = log.apply_retention(Utc::now()).await.unwrap();
    assert_eq!(report.removed_from(Topic::DeadLetter, 0), 1);
    assert_eq!(
        offsets_read(&log, Topic::DeadLetter).await,
        (11..21).collect::<Vec<u64>>()
    );

    // Over the size limit, but a group has committed only the first 5.
    let p = append(&log, Topic::Events, 20).await;
    let mut c = log.consumer("g", Topic::Events).await.unwrap();
    c.commit(&[(p, 5)]).await.unwrap();
    let report = log.apply_retention(Utc::now()).await.unwrap();
    assert_eq!(report.removed_from(Topic::Events, p), 5);
}

#[tokio::test]
async fn catalog_is_never_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), options(Some(Duration::from_secs(1)), Some(1)));
    append(&log, Topic::Catalog, 3).await;
    append(&log, Topic::DeadLetter, 3).await;
    let report = log.apply_retention(days_later(3650)).await.unwrap();
    assert_eq!(report.removed_from_topic(Topic::Catalog), 0);
    assert_eq!(report.removed_from_topic(Topic::DeadLetter), 3);
    assert_eq!(offsets_read(&log, Topic::Catalog).await, vec![0, 1, 2]);
}

#[tokio::test]
async fn a_consumer_before_the_trimmed_range_continues_at_the_first_retained_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), options(None, Some(500)));
    append(&log, Topic::DeadLetter, 10).await;
    let mut reader = log.reader(Topic::DeadLetter).await.unwrap();
    assert!(matches!(
        reader.poll(10, Duration::ZERO).await.unwrap(),
        ConsumerEvent::Assigned(_)
    ));
    log.apply_retention(Utc::now()).await.unwrap();
    let recs = next_records(&mut reader, Duration::ZERO).await;
    assert_eq!(
        recs.iter().map(|m| m.offset).collect::<Vec<_>>(),
        (5..10).collect::<Vec<u64>>()
    );

    // A group member seeking below the retained range (a checkpoint older than the log).
    let p = append(&log, Topic::Events, 10).await;
    let mut c = log.consumer("g", Topic::Events).await.unwrap();
    c.commit(&[(p, 8)]).await.unwrap();
    log.apply_retention(Utc::now()).await.unwrap();
    assert!(matches!(
        c.poll(10, Duration::ZERO).await.unwrap(),
        ConsumerEvent::Assigned(_)
    ));
    c.seek(p, 0).unwrap();
    let recs = next_records(&mut c, Duration::ZERO).await;
    assert_eq!(recs.first().map(|m| m.offset), Some(5));
}

#[tokio::test]
async fn a_consumer_of_an_emptied_partition_waits_for_the_next_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogOptions::default());
    append(&log, Topic::DeadLetter, 3).await;
    let mut reader = log.reader(Topic::DeadLetter).await.unwrap();
    reader.poll(10, Duration::ZERO).await.unwrap();
    let report = log.apply_retention(days_later(8)).await.unwrap();
    assert_eq!(report.removed_from(Topic::DeadLetter, 0), 3);

    let writer = log.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        append(&writer, Topic::DeadLetter, 1).await;
    });
    let ConsumerEvent::Records(recs) = reader.poll(10, Duration::from_secs(10)).await.unwrap()
    else {
        panic!("expected records")
    };
    assert_eq!(recs.iter().map(|m| m.offset).collect::<Vec<_>>(), vec![3]);
}

#[tokio::test]
async fn end_offsets_and_new_offsets_do_not_change_when_a_partition_is_emptied() {
    let dir = tempfile::tempdir().unwrap();
    let p;
    {
        let log = open(dir.path(), LogOptions::default());
        p = append(&log, Topic::Events, 6).await;
        let report = log.apply_retention(days_later(8)).await.unwrap();
        assert_eq!(report.removed_from(Topic::Events, p), 6);
        assert_eq!(log.end_offsets(Topic::Events).await.unwrap()[p as usize], 6);
        let d = log
            .send(Topic::Events, b"k".to_vec(), b"x".to_vec())
            .await
            .unwrap();
        assert_eq!((d.partition, d.offset), (p, 6));
        log.apply_retention(days_later(8)).await.unwrap();
        log.close().await.unwrap();
    }
    let log = open(dir.path(), LogOptions::default());
    assert_eq!(log.end_offsets(Topic::Events).await.unwrap()[p as usize], 7);
    let d = log
        .send(Topic::Events, b"k".to_vec(), b"y".to_vec())
        .await
        .unwrap();
    assert_eq!(d.offset, 7);
    assert_eq!(offsets_read(&log, Topic::Events).await, vec![7]);
}

#[tokio::test]
async fn a_reopened_log_keeps_its_trimmed_state() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path(), options(None, Some(1000)));
        append(&log, Topic::DeadLetter, 15).await;
        let report = log.apply_retention(Utc::now()).await.unwrap();
        assert_eq!(report.total(), 5);
        log.close().await.unwrap();
    }
    let log = open(dir.path(), options(None, Some(1000)));
    assert_eq!(
        offsets_read(&log, Topic::DeadLetter).await,
        (5..15).collect::<Vec<u64>>()
    );
    assert_eq!(log.end_offsets(Topic::DeadLetter).await.unwrap(), vec![15]);
    assert_eq!(log.apply_retention(Utc::now()).await.unwrap().total(), 0);
    append(&log, Topic::DeadLetter, 2).await;
    let report = log.apply_retention(Utc::now()).await.unwrap();
    assert_eq!(
        report.removed_from(Topic::DeadLetter, 0),
        2,
        "the partition's size is still known after reopening"
    );
    assert_eq!(
        offsets_read(&log, Topic::DeadLetter).await.first(),
        Some(&7)
    );
}

#[tokio::test]
async fn background_passes_trim_until_close() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LogOptions {
        retention_age: Some(Duration::from_millis(1)),
        retention_interval: Duration::from_millis(20),
        ..LogOptions::default()
    };
    {
        let log = open(dir.path(), opts.clone());
        append(&log, Topic::DeadLetter, 3).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !log.tail(Topic::DeadLetter, 10).await.unwrap().is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no background pass removed the expired records"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        log.close().await.unwrap();
        assert!(log.apply_retention(Utc::now()).await.is_err());
    }
    // Closing stopped the writer and its retention: the file can be opened again.
    let log = open(dir.path(), opts);
    assert_eq!(log.end_offsets(Topic::DeadLetter).await.unwrap(), vec![3]);
}

#[tokio::test]
async fn the_size_limit_trims_inside_a_block_of_one_request() {
    let dir = tempfile::tempdir().unwrap();
    let p;
    {
        let log = open(dir.path(), options(None, Some(1000)));
        let records = (0..20u8)
            .map(|i| {
                let mut payload = vec![i];
                payload.resize(PAYLOAD_FOR_100_BYTES, b'.');
                (b"k".to_vec(), payload)
            })
            .collect();
        p = log.send_batch(Topic::Events, records).await.unwrap()[0].partition;
        let report = log.apply_retention(Utc::now()).await.unwrap();
        assert_eq!(report.removed_from(Topic::Events, p), 10);
        log.close().await.unwrap();
    }
    let log = open(dir.path(), options(None, Some(1000)));
    assert_eq!(
        offsets_read(&log, Topic::Events).await,
        (10..20).collect::<Vec<u64>>()
    );
    // The partition holds exactly its limit: one more record pushes exactly one out.
    append(&log, Topic::Events, 1).await;
    let report = log.apply_retention(Utc::now()).await.unwrap();
    assert_eq!(report.removed_from(Topic::Events, p), 1);
    assert_eq!(
        offsets_read(&log, Topic::Events).await,
        (11..21).collect::<Vec<u64>>()
    );
}

#[tokio::test]
async fn a_value_that_cannot_be_read_is_trimmed_by_size_like_any_record() {
    let dir = tempfile::tempdir().unwrap();
    // A block tag followed by garbage, as a damaged file might hold.
    super::super::tests::write_values(
        &dir.path().join("log.redb"),
        Topic::DeadLetter,
        0,
        &[(0, b"\x01garbage".to_vec())],
    );
    let log = open(dir.path(), options(None, Some(1000)));
    append(&log, Topic::DeadLetter, 20).await;
    let report = log.apply_retention(Utc::now()).await.unwrap();
    // The unreadable value (offset 0) and the 10 oldest records go.
    assert_eq!(report.removed_from(Topic::DeadLetter, 0), 11);
    assert_eq!(
        offsets_read(&log, Topic::DeadLetter).await,
        (11..21).collect::<Vec<u64>>()
    );
}
