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
