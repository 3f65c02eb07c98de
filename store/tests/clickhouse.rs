//! The ClickHouse store against a real ClickHouse (started by `scripts/test`, address in
//! `CLICKTRAIL_TEST_CLICKHOUSE`). Each test has its own database. Under `CI=true` a missing
//! server fails the test instead of skipping it.

use chrono::{TimeZone, Utc};
use clicktrail_schemas::attribution::TouchSource;
use clicktrail_schemas::rows::{Attribution, ClickRow, EventRow, Source};
use clicktrail_schemas::wire::{Action, ClickRecord, EventRecord};
use clicktrail_store::clickhouse::{ClickHouseOptions, ClickHouseStore};
use clicktrail_store::{Checkpoint, Rows, Store};

fn url() -> Option<String> {
    match std::env::var("CLICKTRAIL_TEST_CLICKHOUSE") {
        Ok(u) => Some(u),
        Err(_) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CLICKTRAIL_TEST_CLICKHOUSE is not set; run the tests with scripts/test"
            );
            eprintln!("skipped: no ClickHouse (run scripts/test)");
            None
        }
    }
}

async fn store(url: &str) -> ClickHouseStore {
    let database = format!("ct_test_{:016x}", rand::random::<u64>());
    ClickHouseStore::open(&ClickHouseOptions {
        url: url.into(),
        database,
        user: None,
        password: None,
    })
    .await
    .unwrap()
}

fn click(i: u64) -> ClickRow {
    ClickRow {
        click: ClickRecord {
            v: 1,
            click_id: format!("c{i}"),
            at: Utc
                .timestamp_opt(1_700_000_000 + i as i64, 123_456_000)
                .unwrap(),
            link_id: "lnk".into(),
            code: "abc".into(),
            sub_id: i.is_multiple_of(2).then(|| "yt".into()),
            advertiser_id: "adv".into(),
            campaign_id: "cmp".into(),
            influencer_id: "inf".into(),
            visitor_key: format!("v{i}"),
            user_agent: "ua".into(),
            device_class: "mobile".into(),
            referrer: None,
            ip_prefix: "203.0.113.0/24".into(),
            country: Some("DE".into()),
            is_bot: i.is_multiple_of(5),
            bot_reason: i.is_multiple_of(5).then(|| "crawler_user_agent".into()),
            not_live: false,
            promo: None,
        },
        is_unique: !i.is_multiple_of(3),
        source: Source {
            partition: 1,
            offset: i,
        },
    }
}

fn event(i: u64) -> EventRow {
    let at = Utc.timestamp_opt(1_700_000_100 + i as i64, 0).unwrap();
    EventRow {
        event: EventRecord {
            v: 1,
            event_id: format!("e{i}"),
            advertiser_id: "adv".into(),
            action: Action::Purchase,
            custom_name: None,
            occurred_at: at,
            received_at: at,
            value_minor: Some(1000 + i as i64),
            currency: "EUR".into(),
            order_id: Some(format!("o{i}")),
            customer_id: None,
            properties: Some("{\"sku\":1}".into()),
            coupon_code: None,
            ref_code: Some("abc".into()),
            click_id: None,
            landing_url: None,
            referrer: None,
            sub_id: None,
            source: Default::default(),
            uncounted: false,
        },
        attribution: Attribution {
            attributed: true,
            attributed_by: Some(TouchSource::RefCode),
            influencer_id: Some("inf".into()),
            window_secs: Some(60),
            ..Attribution::default()
        },
        source: Source {
            partition: 2,
            offset: i,
        },
    }
}

async fn count(s: &ClickHouseStore, sql: &str) -> u64 {
    s.client().query(sql).fetch_one::<u64>().await.unwrap()
}

#[tokio::test]
async fn migrations_are_versioned_and_idempotent() {
    let Some(url) = url() else { return };
    let s = store(&url).await;
    assert!(
        s.migrate().await.unwrap().is_empty(),
        "nothing left to apply on a second run"
    );
    let again = ClickHouseStore::open(&ClickHouseOptions {
        url: url.clone(),
        database: s.database().into(),
        user: None,
        password: None,
    })
    .await
    .unwrap();
    assert!(again.migrate().await.unwrap().is_empty());
    assert_eq!(
        count(&s, "SELECT count() FROM schema_migrations FINAL").await,
        6,
        "the raw tables, then the hourly rollups, then the ledger, then the promo tables, then \
         events' source, then the delivery log"
    );
    assert_eq!(
        count(
            &s,
            "SELECT count() FROM system.columns WHERE database = currentDatabase() \
             AND table = 'events' AND name = 'source'"
        )
        .await,
        1,
        "events have the column added by a later migration"
    );
    let tables: Vec<String> = s
        .client()
        .query("SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(
        tables,
        vec![
            "checkpoints",
            "clicks",
            "clicks_hourly",
            "clicks_hourly_mv",
            "deliveries",
            "events",
            "events_hourly",
            "events_hourly_mv",
            "impressions",
            "ledger",
            "processor_state",
            "promo_clicks",
            "schema_migrations"
        ]
    );
}

#[tokio::test]
async fn a_replayed_batch_replaces_instead_of_doubling() {
    let Some(url) = url() else { return };
    let s = store(&url).await;
    let rows = Rows {
        clicks: (0..10).map(click).collect(),
        events: (0..4).map(event).collect(),
        ledger: Vec::new(),
        ..Default::default()
    };
    let cp = Checkpoint {
        stream: "clicks/1".into(),
        next_offset: 10,
        puts: vec![(b"bloom/1".to_vec(), vec![0, 159, 255])],
        deletes: vec![],
    };
    s.write(&rows, std::slice::from_ref(&cp)).await.unwrap();
    s.write(&rows, &[cp]).await.unwrap();
    assert_eq!(count(&s, "SELECT count() FROM clicks FINAL").await, 10);
    assert_eq!(count(&s, "SELECT count() FROM events FINAL").await, 4);
    assert_eq!(
        count(
            &s,
            "SELECT sum(is_unique) FROM clicks FINAL WHERE NOT is_bot"
        )
        .await,
        5
    );
    // Values survive the trip: micro-second times, nullables, money.
    let (at, sub): (i64, Option<String>) = s
        .client()
        .query("SELECT at, sub_id FROM clicks FINAL WHERE click_id = 'c2'")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!((at, sub.as_deref()), (1_700_000_002_123_456, Some("yt")));
    // A sum over a Nullable column is Nullable on 18.16.
    let total: Option<i64> = s
        .client()
        .query("SELECT sum(value_minor) FROM events FINAL")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(total, Some(1000 + 1001 + 1002 + 1003));
}

#[tokio::test]
async fn restore_reads_the_state_of_the_last_checkpoint_only() {
    let Some(url) = url() else { return };
    let s = store(&url).await;
    assert!(s.restore("events/0").await.unwrap().is_none());
    let cp = |next: u64, puts: Vec<(&[u8], &[u8])>, deletes: Vec<&[u8]>| Checkpoint {
        stream: "events/0".into(),
        next_offset: next,
        puts: puts
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect(),
        deletes: deletes.into_iter().map(<[u8]>::to_vec).collect(),
    };
    s.write(
        &Rows::default(),
        &[cp(5, vec![(b"e\0a", b""), (b"f\0c", b"{\"x\":1}")], vec![])],
    )
    .await
    .unwrap();
    s.write(
        &Rows::default(),
        &[cp(9, vec![(b"f\0c", b"{\"x\":2}")], vec![b"e\0a"])],
    )
    .await
    .unwrap();
    // A batch whose checkpoint never landed: its state must not be read.
    s.client().query("INSERT INTO processor_state (stream, key, value, seq, deleted) VALUES ('events/0', 'ghost', 'boo', 12, 0)").execute().await.unwrap();
    let r = s.restore("events/0").await.unwrap().unwrap();
    assert_eq!(r.next_offset, 9);
    assert_eq!(r.entries, vec![(b"f\0c".to_vec(), b"{\"x\":2}".to_vec())]);
}
