//! The same rows in the Parquet store and in ClickHouse give the same answer to the same SQL,
//! through the same DataFusion session code. Needs a real ClickHouse (`scripts/test` starts
//! one and sets `CLICKTRAIL_TEST_CLICKHOUSE`); under `CI=true` its absence fails the test.

use chrono::{TimeZone, Utc};
use clicktrail_query::json::to_json;
use clicktrail_schemas::attribution::TouchSource;
use clicktrail_schemas::rows::{Attribution, ClickRow, EventRow, Source};
use clicktrail_schemas::wire::{Action, ClickRecord, EventRecord};
use clicktrail_store::clickhouse::read::ClickHouseSource;
use clicktrail_store::clickhouse::{ClickHouseOptions, ClickHouseStore};
use clicktrail_store::parquet::ParquetStore;
use clicktrail_store::parquet::read::ParquetSource;
use clicktrail_store::source::TableSource;
use clicktrail_store::{Checkpoint, Rows, Store};
use datafusion::prelude::SessionContext;
use std::sync::Arc;

fn rows() -> Rows {
    let t0 = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
    let clicks = (0..300u64)
        .map(|i| ClickRow {
            click: ClickRecord {
                v: 1,
                click_id: format!("c{i}"),
                at: t0 + chrono::Duration::minutes(i as i64 * 7),
                link_id: format!("lnk{}", i % 3),
                code: format!("code{}", i % 3),
                sub_id: (i % 4 != 0).then(|| ["yt", "ig", "nl"][i as usize % 3].to_string()),
                advertiser_id: format!("adv{}", i % 2),
                campaign_id: format!("cmp{}", i % 2),
                influencer_id: format!("inf{}", i % 3),
                visitor_key: format!("v{}", i % 50),
                user_agent: "ua".into(),
                device_class: "desktop".into(),
                referrer: None,
                ip_prefix: "203.0.113.0/24".into(),
                country: (i % 5 == 0).then(|| "FR".into()),
                is_bot: i % 11 == 0,
                bot_reason: (i % 11 == 0).then(|| "crawler_user_agent".into()),
                not_live: false,
                promo: None,
            },
            is_unique: i % 3 != 1,
            source: Source {
                partition: (i % 4) as u32,
                offset: i,
            },
        })
        .collect();
    let events = (0..200u64)
        .map(|i| EventRow {
            event: EventRecord {
                v: 1,
                event_id: format!("e{i}"),
                advertiser_id: format!("adv{}", i % 2),
                action: [
                    Action::Purchase,
                    Action::AddToCart,
                    Action::Signup,
                    Action::DropOff,
                ][i as usize % 4],
                custom_name: None,
                occurred_at: t0 + chrono::Duration::minutes(i as i64 * 9 + 3),
                received_at: t0,
                value_minor: (i % 4 == 0).then_some(1000 + i as i64 * 3),
                currency: if i % 8 == 0 {
                    "EUR".into()
                } else {
                    "USD".into()
                },
                order_id: (i % 4 == 0).then(|| format!("o{i}")),
                customer_id: None,
                properties: None,
                coupon_code: None,
                ref_code: None,
                click_id: Some(format!("c{}", i + 5)),
                landing_url: None,
                referrer: None,
                sub_id: None,
                source: Default::default(),
                uncounted: false,
            },
            attribution: Attribution {
                attributed: i % 5 != 0,
                attributed_by: (i % 5 != 0).then_some(TouchSource::ClickId),
                influencer_id: (i % 5 != 0).then(|| format!("inf{}", i % 3)),
                campaign_id: (i % 5 != 0).then(|| format!("cmp{}", i % 2)),
                credited_click_id: (i % 5 != 0).then(|| format!("c{}", i + 5)),
                click_at: Some(t0),
                window_secs: Some(2_592_000),
                ..Attribution::default()
            },
            source: Source {
                partition: (i % 4) as u32,
                offset: i,
            },
        })
        .collect();
    Rows {
        clicks,
        events,
        ledger: Vec::new(),
        ..Default::default()
    }
}

const QUERIES: [&str; 11] = [
    "SELECT count(*) AS n FROM clicks",
    "SELECT count(*) FILTER (WHERE NOT is_bot) AS clicks, count(*) FILTER (WHERE NOT is_bot AND is_unique) AS uniques, count(*) FILTER (WHERE is_bot) AS bots FROM clicks WHERE advertiser_id = 'adv1'",
    "SELECT influencer_id, count(*) AS n, count(DISTINCT visitor_key) AS visitors FROM clicks WHERE at >= TIMESTAMP '2023-11-15 00:00:00' AND NOT is_bot GROUP BY influencer_id ORDER BY influencer_id",
    "SELECT currency, sum(value_minor) AS amount, count(*) AS n FROM events WHERE action = 'purchase' AND attributed GROUP BY currency ORDER BY currency",
    "SELECT k.sub_id, count(*) AS n FROM events e JOIN clicks k ON e.credited_click_id = k.click_id WHERE k.sub_id IS NOT NULL GROUP BY k.sub_id ORDER BY k.sub_id",
    "SELECT date_trunc('day', occurred_at) AS day, count(*) AS n FROM events WHERE occurred_at < TIMESTAMP '2023-11-16 00:00:00' GROUP BY 1 ORDER BY 1",
    "SELECT event_id, value_minor, click_at, country FROM events e LEFT JOIN clicks c ON e.click_id = c.click_id WHERE e.event_id IN ('e0', 'e8', 'e13') ORDER BY event_id",
    "SELECT click_id, at, sub_id FROM clicks WHERE country IS NULL AND link_id != 'lnk0' ORDER BY at DESC LIMIT 5",
    // The hourly rollups: in ClickHouse the materialized views took every row twice.
    "SELECT * FROM clicks_hourly ORDER BY hour, advertiser_id, campaign_id, influencer_id, link_id",
    "SELECT * FROM events_hourly WHERE hour >= TIMESTAMP '2023-11-15 00:00:00' ORDER BY hour, advertiser_id, action, attributed, currency, campaign_id, influencer_id, link_id",
    // Rolled up, the totals are the raw tables' totals.
    "SELECT (SELECT sum(bot_clicks) FROM clicks_hourly) AS rolled_bots, (SELECT count(*) FROM clicks WHERE is_bot) AS bots, \
     (SELECT sum(events) FROM events_hourly) AS rolled_events, (SELECT count(*) FROM events) AS events, \
     (SELECT sum(amount_minor) FROM events_hourly WHERE action = 'purchase') AS rolled_amount, (SELECT sum(value_minor) FROM events WHERE action = 'purchase') AS amount",
];

/// Sums of the rollups grouped by some of their columns, as the dashboards ask them: a summed
/// rollup ([`TableSource::summed`]) gives the same as the rollup itself.
const SUMS: [&str; 5] = [
    "SELECT sum(clicks) AS clicks, sum(unique_clicks) AS uniques, sum(bot_clicks) AS bots FROM clicks_hourly",
    "SELECT influencer_id, sum(clicks) AS clicks, sum(unique_clicks) AS uniques FROM clicks_hourly WHERE advertiser_id = 'adv1' GROUP BY 1 ORDER BY 1",
    "SELECT date_trunc('day', hour) AS day, sum(bot_clicks) AS bots FROM clicks_hourly WHERE hour >= TIMESTAMP '2023-11-15 00:00:00' GROUP BY 1 ORDER BY 1",
    "SELECT date_trunc('day', hour) AS day, action, currency, sum(events) AS n, sum(amount_minor) AS amount FROM events_hourly WHERE hour < TIMESTAMP '2023-11-16 00:00:00' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    "SELECT campaign_id, sum(events) FILTER (WHERE action = 'purchase' AND attributed) AS credited, sum(amount_minor) AS amount FROM events_hourly WHERE campaign_id IS NOT NULL GROUP BY 1 ORDER BY 1",
];

async fn answers(
    source: Arc<dyn TableSource>,
    queries: &[&str],
    summed: bool,
) -> Vec<Vec<serde_json::Map<String, serde_json::Value>>> {
    let ctx = SessionContext::new();
    for t in ["clicks", "events", "clicks_hourly", "events_hourly"] {
        let provider = match summed && t.ends_with("_hourly") {
            true => source.summed(t).await,
            false => source.table(t).await,
        };
        ctx.register_table(t, provider.unwrap()).unwrap();
    }
    let mut out = Vec::new();
    for q in queries {
        let batches = ctx
            .sql(q)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        out.push(to_json(&batches).unwrap());
    }
    out
}

#[tokio::test]
async fn parquet_and_clickhouse_answer_alike() {
    let Ok(url) = std::env::var("CLICKTRAIL_TEST_CLICKHOUSE") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CLICKTRAIL_TEST_CLICKHOUSE is not set; run the tests with scripts/test"
        );
        eprintln!("skipped: no ClickHouse (run scripts/test)");
        return;
    };
    let rows = rows();
    let dir = tempfile::tempdir().unwrap();
    let parquet = ParquetStore::open(dir.path()).unwrap();
    let database = format!("ct_parity_{:016x}", rand::random::<u64>());
    let ch = ClickHouseStore::open(&ClickHouseOptions {
        url,
        database,
        user: None,
        password: None,
    })
    .await
    .unwrap();
    // Written twice to ClickHouse, as a replay after a crash would: FINAL reads count it once.
    for store in [&parquet as &dyn Store, &ch, &ch] {
        store
            .write(
                &rows,
                &[Checkpoint {
                    stream: "clicks/0".into(),
                    next_offset: 1,
                    ..Checkpoint::default()
                }],
            )
            .await
            .unwrap();
    }
    let parquet: Arc<dyn TableSource> = Arc::new(ParquetSource::new(parquet));
    let clickhouse: Arc<dyn TableSource> = Arc::new(ClickHouseSource::new(ch.client().clone()));
    let want = answers(parquet.clone(), &QUERIES, false).await;
    let got = answers(clickhouse.clone(), &QUERIES, false).await;
    for ((q, w), g) in QUERIES.iter().zip(&want).zip(&got) {
        assert!(
            !w.is_empty(),
            "{q} returned nothing: the comparison would prove nothing"
        );
        assert_eq!(g, w, "{q}");
    }
    let want_sums = answers(parquet, &SUMS, false).await;
    let got_sums = answers(clickhouse, &SUMS, true).await;
    for ((q, w), g) in SUMS.iter().zip(&want_sums).zip(&got_sums) {
        assert!(
            !w.is_empty() && w[0].values().all(|v| !v.is_null()),
            "{q} returned {w:?}: the comparison would prove nothing"
        );
        assert_eq!(g, w, "summed: {q}");
    }
    let totals = &want[QUERIES.len() - 1][0];
    for (rolled, raw) in [
        ("rolled_bots", "bots"),
        ("rolled_events", "events"),
        ("rolled_amount", "amount"),
    ] {
        assert_eq!(totals[rolled], totals[raw], "{totals:?}");
        assert!(totals[raw].as_i64().unwrap() > 0, "{totals:?}");
    }
}
