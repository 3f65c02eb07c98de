use super::*;
use clicktrail_schemas::arrow::CLICKS_TABLE;
use clicktrail_schemas::rows::{ClickRow, Source};
use clicktrail_schemas::tables::CLICKS;
use clicktrail_schemas::wire::ClickRecord;

fn click(i: u64) -> ClickRow {
    ClickRow {
        click: ClickRecord {
            v: 1,
            click_id: format!("c{i}"),
            at: chrono::Utc::now(),
            link_id: "lnk_1".into(),
            code: "abc".into(),
            sub_id: None,
            advertiser_id: "adv_1".into(),
            campaign_id: "cmp_1".into(),
            influencer_id: "inf_1".into(),
            visitor_key: format!("v{i}"),
            user_agent: "ua".into(),
            device_class: "desktop".into(),
            referrer: None,
            ip_prefix: "127.0.0.0/24".into(),
            country: None,
            is_bot: false,
            bot_reason: None,
            not_live: false,
            promo: None,
        },
        is_unique: true,
        source: Source {
            partition: 0,
            offset: i,
        },
    }
}

fn rows(from: u64, n: u64) -> Rows {
    Rows {
        clicks: (from..from + n).map(click).collect(),
        events: Vec::new(),
        ledger: Vec::new(),
        ..Default::default()
    }
}

fn count_rows(store: &ParquetStore, table: &str) -> usize {
    store
        .files(table)
        .unwrap()
        .iter()
        .map(|p| {
            ParquetRecordBatchReaderBuilder::try_new(File::open(p).unwrap())
                .unwrap()
                .build()
                .unwrap()
                .map(|b| b.unwrap().num_rows())
                .sum::<usize>()
        })
        .sum()
}

#[tokio::test]
async fn rows_and_checkpoint_are_stored_together() {
    let dir = tempfile::tempdir().unwrap();
    let store = ParquetStore::open(dir.path()).unwrap();
    let cp = Checkpoint {
        stream: "clicks/0".into(),
        next_offset: 3,
        puts: vec![(b"bloom".to_vec(), b"bits".to_vec())],
        deletes: vec![],
    };
    store.write(&rows(0, 3), &[cp]).await.unwrap();
    let restored = store.restore("clicks/0").await.unwrap().unwrap();
    assert_eq!(restored.next_offset, 3);
    assert_eq!(
        restored.entries,
        vec![(b"bloom".to_vec(), b"bits".to_vec())]
    );
    assert!(store.restore("clicks/1").await.unwrap().is_none());
    assert_eq!(count_rows(&store, CLICKS_TABLE), 3);
}

#[tokio::test]
async fn files_not_in_the_manifest_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = ParquetStore::open(dir.path()).unwrap();
        store
            .write(
                &rows(0, 2),
                &[Checkpoint {
                    stream: "clicks/0".into(),
                    next_offset: 2,
                    puts: vec![],
                    deletes: vec![],
                }],
            )
            .await
            .unwrap();
        // A file written by a batch whose manifest transaction never committed.
        store
            .write_file(CLICKS_TABLE, &CLICKS.to_batch(&rows(2, 5).clicks).unwrap())
            .unwrap();
        std::fs::write(dir.path().join("clicks/partial.parquet.tmp"), b"junk").unwrap();
    }
    let store = ParquetStore::open(dir.path()).unwrap();
    assert_eq!(
        std::fs::read_dir(dir.path().join("clicks"))
            .unwrap()
            .count(),
        1
    );
    assert_eq!(count_rows(&store, CLICKS_TABLE), 2);
}

#[tokio::test]
async fn compaction_merges_small_files_and_keeps_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = ParquetStore::open(dir.path()).unwrap();
    for i in 0..10 {
        store
            .write(
                &rows(i * 10, 10),
                &[Checkpoint {
                    stream: "clicks/0".into(),
                    next_offset: (i + 1) * 10,
                    puts: vec![],
                    deletes: vec![],
                }],
            )
            .await
            .unwrap();
    }
    assert_eq!(store.files(CLICKS_TABLE).unwrap().len(), 10);
    let replaced = store
        .compact(CompactionPolicy {
            small_file_rows: 1000,
            min_files: 4,
        })
        .unwrap();
    assert_eq!(replaced, 10);
    assert_eq!(store.files(CLICKS_TABLE).unwrap().len(), 1);
    assert_eq!(count_rows(&store, CLICKS_TABLE), 100);
    // Replaced files stay for queries in flight, and go at the next open.
    assert_eq!(
        std::fs::read_dir(dir.path().join("clicks"))
            .unwrap()
            .count(),
        11
    );
    drop(store);
    ParquetStore::open(dir.path()).unwrap();
    assert_eq!(
        std::fs::read_dir(dir.path().join("clicks"))
            .unwrap()
            .count(),
        1
    );
}

fn event(id: &str) -> clicktrail_schemas::rows::EventRow {
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-21T13:30:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    clicktrail_schemas::rows::EventRow {
        event: clicktrail_schemas::wire::EventRecord {
            v: 1,
            event_id: id.into(),
            advertiser_id: "adv".into(),
            action: clicktrail_schemas::wire::Action::Signup,
            custom_name: None,
            occurred_at: at,
            received_at: at,
            value_minor: None,
            currency: "USD".into(),
            order_id: None,
            customer_id: None,
            properties: None,
            coupon_code: None,
            ref_code: None,
            click_id: None,
            sub_id: None,
            landing_url: None,
            referrer: None,
            source: Default::default(),
            uncounted: false,
        },
        attribution: Default::default(),
        source: Source {
            partition: 0,
            offset: 0,
        },
    }
}

/// An events file written before `source` existed (listed as a batch would list it) reads
/// with `source` null beside newer rows, and compacts with them.
#[tokio::test]
async fn files_written_before_a_column_was_added_read_it_as_null() {
    use clicktrail_schemas::tables::EVENTS;
    let dir = tempfile::tempdir().unwrap();
    let store = ParquetStore::open(dir.path()).unwrap();
    let mut old = EVENTS.to_batch(&[event("e-old")]).unwrap();
    old.remove_column(old.schema().index_of("source").unwrap());
    let (name, n) = store.write_file("events", &old).unwrap();
    {
        let txn = store.db.begin_write().unwrap();
        txn.open_table(FILES)
            .unwrap()
            .insert(name.as_str(), n)
            .unwrap();
        txn.commit().unwrap();
    }
    let newer = Rows {
        events: vec![event("e-new")],
        ..Rows::default()
    };
    store.write(&newer, &[]).await.unwrap();
    #[cfg(feature = "query")]
    {
        use crate::source::TableSource;
        let source = read::ParquetSource::new(store.clone());
        let ctx = datafusion::prelude::SessionContext::new();
        ctx.register_table("events", source.table("events").await.unwrap())
            .unwrap();
        let batches = ctx
            .sql("SELECT event_id, source FROM events ORDER BY event_id")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let shown = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        assert!(shown.contains("| e-new    | server |"), "{shown}");
        assert!(shown.contains("| e-old    |        |"), "{shown}");
    }
    let replaced = store
        .compact(CompactionPolicy {
            small_file_rows: 1000,
            min_files: 2,
        })
        .unwrap();
    assert_eq!(replaced, 2);
    assert_eq!(count_rows(&store, "events"), 2);
    let merged = ParquetRecordBatchReaderBuilder::try_new(
        File::open(&store.files("events").unwrap()[0]).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap()
    .next()
    .unwrap()
    .unwrap();
    let source = merged
        .column_by_name("source")
        .expect("the merged file has the column");
    assert_eq!(source.null_count(), 1);
}
