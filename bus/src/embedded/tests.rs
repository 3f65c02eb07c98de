use super::*;
use crate::ConsumerEvent;

async fn open(dir: &Path) -> EmbeddedLog {
    EmbeddedLog::open(&dir.join("log.redb"), LogOptions::default()).unwrap()
}

#[tokio::test]
async fn appended_records_survive_reopen_in_offset_order() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path()).await;
        for i in 0..10u8 {
            log.send(Topic::Events, b"k".to_vec(), vec![i])
                .await
                .unwrap();
        }
        log.enqueue(Topic::Events, b"k".to_vec(), vec![10]).unwrap();
        log.close().await.unwrap();
    }
    let log = open(dir.path()).await;
    let mut c = log.consumer("g", Topic::Events).await.unwrap();
    assert!(
        matches!(c.poll(100, Duration::ZERO).await.unwrap(), ConsumerEvent::Assigned(p) if p.len() == 4)
    );
    let ConsumerEvent::Records(recs) = c.poll(100, Duration::ZERO).await.unwrap() else {
        panic!("expected records")
    };
    let payloads: Vec<u8> = recs.iter().map(|m| m.payload[0]).collect();
    assert_eq!(payloads, (0..=10).collect::<Vec<u8>>());
    assert_eq!(
        recs.iter().map(|m| m.offset).collect::<Vec<_>>(),
        (0..=10).collect::<Vec<u64>>()
    );
    let p = recs[0].partition;
    assert_eq!(
        log.send(Topic::Events, b"k".to_vec(), vec![11])
            .await
            .unwrap(),
        Delivery {
            partition: p,
            offset: 11,
            spooled: false,
        }
    );
}

#[tokio::test]
async fn commits_resume_the_group_and_never_go_backwards() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path()).await;
    let d = log
        .send(Topic::Clicks, b"v".to_vec(), b"a".to_vec())
        .await
        .unwrap();
    log.send(Topic::Clicks, b"v".to_vec(), b"b".to_vec())
        .await
        .unwrap();
    let mut c = log.consumer("g", Topic::Clicks).await.unwrap();
    c.commit(&[(d.partition, 1)]).await.unwrap();
    c.commit(&[(d.partition, 0)]).await.unwrap();
    assert_eq!(
        log.committed("g", Topic::Clicks).await.unwrap()[d.partition as usize],
        Some(1)
    );
    let mut c2 = log.consumer("g", Topic::Clicks).await.unwrap();
    c2.poll(10, Duration::ZERO).await.unwrap();
    let ConsumerEvent::Records(recs) = c2.poll(10, Duration::ZERO).await.unwrap() else {
        panic!()
    };
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].payload, b"b");
    assert_eq!(
        log.end_offsets(Topic::Clicks).await.unwrap()[d.partition as usize],
        2
    );
}

#[tokio::test]
async fn a_waiting_consumer_wakes_on_append() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path()).await;
    let mut c = log.consumer("g", Topic::Catalog).await.unwrap();
    c.poll(10, Duration::ZERO).await.unwrap();
    let l2 = log.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        l2.send(Topic::Catalog, b"x".to_vec(), b"y".to_vec())
            .await
            .unwrap();
    });
    let ConsumerEvent::Records(recs) = c.poll(10, Duration::from_secs(5)).await.unwrap() else {
        panic!()
    };
    assert_eq!(recs.len(), 1);
}

#[tokio::test]
async fn truncation_keeps_offsets_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let p;
    {
        let log = open(dir.path()).await;
        let mut last = None;
        for i in 0..5u8 {
            last = Some(
                log.send(Topic::Events, b"k".to_vec(), vec![i])
                    .await
                    .unwrap(),
            );
        }
        p = last.unwrap().partition;
        log.truncate(Topic::Events, p, 5).await.unwrap();
        log.close().await.unwrap();
    }
    let log = open(dir.path()).await;
    assert_eq!(log.end_offsets(Topic::Events).await.unwrap()[p as usize], 5);
    let d = log
        .send(Topic::Events, b"k".to_vec(), vec![5])
        .await
        .unwrap();
    assert_eq!(d.offset, 5, "offsets continue after the removed records");
    let mut r = log.reader(Topic::Events).await.unwrap();
    r.poll(10, Duration::ZERO).await.unwrap();
    let ConsumerEvent::Records(recs) = r.poll(10, Duration::ZERO).await.unwrap() else {
        panic!()
    };
    assert_eq!(
        recs.iter().map(|m| m.payload[0]).collect::<Vec<_>>(),
        vec![5]
    );
    assert!(r.commit(&[(p, 6)]).await.is_err(), "a reader cannot commit");
}

/// Polls once past the assignment and returns the records.
async fn poll_records(c: &mut Box<dyn Consumer>, max: usize) -> Vec<Message> {
    loop {
        if let ConsumerEvent::Records(r) = c.poll(max, Duration::ZERO).await.unwrap() {
            return r;
        }
    }
}

fn batch(n: usize, from: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    (from..from + n)
        .map(|i| (b"k".to_vec(), i.to_string().into_bytes()))
        .collect()
}

fn payloads(records: &[Message]) -> Vec<String> {
    records
        .iter()
        .map(|m| String::from_utf8(m.payload.clone()).unwrap())
        .collect()
}

fn numbers(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| i.to_string()).collect()
}

#[tokio::test]
async fn a_large_batch_is_read_from_any_offset_inside_its_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let p;
    {
        let log = open(dir.path()).await;
        // One request of 10,000 records to one partition: three blocks (4,096 records at most).
        let d = log
            .send_batch(Topic::Events, batch(10_000, 0))
            .await
            .unwrap();
        p = d[0].partition;
        assert!(d.iter().all(|d| d.partition == p));
        assert_eq!(
            d.iter().map(|d| d.offset).collect::<Vec<_>>(),
            (0..10_000).collect::<Vec<u64>>()
        );
        let mut r = log.reader(Topic::Events).await.unwrap();
        poll_records(&mut r, 1).await;
        for at in [0u64, 1, 4_095, 4_096, 5_000, 8_191, 8_192, 9_999] {
            r.seek(p, at).unwrap();
            let got = poll_records(&mut r, 400).await;
            let end = (at as usize + 100).min(10_000);
            assert_eq!(payloads(&got), numbers(at as usize..end), "from {at}");
            assert_eq!(got[0].offset, at);
        }
        let mut c = log.consumer("g", Topic::Events).await.unwrap();
        c.commit(&[(p, 4_100)]).await.unwrap();
        log.close().await.unwrap();
    }
    let log = open(dir.path()).await;
    assert_eq!(
        log.end_offsets(Topic::Events).await.unwrap()[p as usize],
        10_000
    );
    let mut c = log.consumer("g", Topic::Events).await.unwrap();
    // 4 partitions: a poll of 40,000 reads up to 10,000 from each, across the block boundary.
    let got = poll_records(&mut c, 40_000).await;
    assert_eq!(payloads(&got), numbers(4_100..10_000));
    let tail = log.tail(Topic::Events, 5_000).await.unwrap();
    assert_eq!(payloads(&tail), numbers(5_000..10_000));
    assert_eq!(tail[0].offset, 5_000);
    let d = log
        .send_batch(Topic::Events, batch(2, 10_000))
        .await
        .unwrap();
    assert_eq!(d[1].offset, 10_001);
}

#[tokio::test]
async fn truncating_inside_a_block_keeps_its_later_records() {
    let dir = tempfile::tempdir().unwrap();
    let p;
    {
        let log = open(dir.path()).await;
        p = log.send_batch(Topic::Events, batch(100, 0)).await.unwrap()[0].partition;
        log.truncate(Topic::Events, p, 30).await.unwrap();
        log.truncate(Topic::Events, p, 31).await.unwrap();
        log.close().await.unwrap();
    }
    let log = open(dir.path()).await;
    let mut r = log.reader(Topic::Events).await.unwrap();
    let got = poll_records(&mut r, 1_000).await;
    assert_eq!(payloads(&got), numbers(31..100));
    assert_eq!(got[0].offset, 31);
    assert_eq!(
        log.end_offsets(Topic::Events).await.unwrap()[p as usize],
        100
    );
}

#[tokio::test]
async fn a_log_written_one_record_per_value_is_read_and_extended() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.redb");
    let p = partition_for_key(b"k", Topic::Events);
    // The layout written before blocks: one value per record.
    let values: Vec<(u64, Vec<u8>)> = (0..3u64)
        .map(|i| {
            (
                i,
                block::tests::legacy(1_700_000_000_000, b"k", i.to_string().as_bytes()),
            )
        })
        .collect();
    write_values(&path, Topic::Events, p, &values);
    let log = EmbeddedLog::open(&path, LogOptions::default()).unwrap();
    assert_eq!(log.end_offsets(Topic::Events).await.unwrap()[p as usize], 3);
    let d = log.send_batch(Topic::Events, batch(2, 3)).await.unwrap();
    assert_eq!((d[0].offset, d[1].offset), (3, 4));
    let mut r = log.reader(Topic::Events).await.unwrap();
    let got = poll_records(&mut r, 100).await;
    assert_eq!(payloads(&got), numbers(0..5));
    assert_eq!(got[0].timestamp_ms, 1_700_000_000_000);
    log.truncate(Topic::Events, p, 2).await.unwrap();
    let mut r = log.reader(Topic::Events).await.unwrap();
    assert_eq!(payloads(&poll_records(&mut r, 100).await), numbers(2..5));
}

fn partition_for_key(key: &[u8], topic: Topic) -> u32 {
    clicktrail_schemas::topics::partition_for(key, topic.default_partitions())
}

/// Writes raw `values` by offset into a partition's table of a new log file at `path`, as an
/// older version or a damaged file would hold them.
pub(super) fn write_values(path: &Path, topic: Topic, partition: u32, values: &[(u64, Vec<u8>)]) {
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let name = table_name(topic, partition);
        let mut t = txn.open_table(partition_table(&name)).unwrap();
        for (offset, v) in values {
            t.insert(*offset, v.as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
}
