//! Versioned ClickHouse DDL. Valid on ClickHouse 18.16 (Debian's) and current releases: no
//! DateTime64, Map, JSON, IPv4/IPv6, TTL or LowCardinality. Times are Int64 microseconds since
//! the epoch (the Arrow schema's `Timestamp(µs, UTC)`), booleans UInt8, money Int64 minor units.
//! Raw tables are ReplacingMergeTree keyed by record id, so a replayed batch replaces rather
//! than doubles; readers use `FINAL`.

/// One migration: its version and statements (`{db}` is the database).
pub struct Migration {
    /// Applied in increasing order, each once.
    pub version: u32,
    /// What it does.
    pub description: &'static str,
    /// Statements, run in order.
    pub statements: &'static [&'static str],
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "raw clicks, attributed events, checkpoints and processor state",
        statements: &[
            "CREATE TABLE IF NOT EXISTS {db}.clicks (
            click_id String, at Int64, link_id String, code String, sub_id Nullable(String),
            advertiser_id String, campaign_id String, influencer_id String, visitor_key String,
            user_agent String, device_class String, referrer Nullable(String), ip_prefix String,
            country Nullable(String), is_bot UInt8, bot_reason Nullable(String), not_live UInt8,
            is_unique UInt8, src_partition UInt32, src_offset UInt64
        ) ENGINE = ReplacingMergeTree()
        PARTITION BY toYYYYMM(toDateTime(intDiv(at, 1000000)))
        ORDER BY (advertiser_id, click_id)",
            "CREATE TABLE IF NOT EXISTS {db}.events (
            event_id String, advertiser_id String, action String, custom_name Nullable(String),
            occurred_at Int64, received_at Int64, value_minor Nullable(Int64), currency String,
            order_id Nullable(String), customer_id Nullable(String), properties Nullable(String),
            coupon_code Nullable(String), ref_code Nullable(String), click_id Nullable(String),
            landing_url Nullable(String), referrer Nullable(String), attributed UInt8,
            attributed_by String, campaign_id Nullable(String), influencer_id Nullable(String),
            link_id Nullable(String), coupon_id Nullable(String), reason Nullable(String),
            candidates String, credited_click_id Nullable(String), click_at Nullable(Int64),
            window_secs Nullable(Int64), conflict Nullable(String), src_partition UInt32,
            src_offset UInt64
        ) ENGINE = ReplacingMergeTree()
        PARTITION BY toYYYYMM(toDateTime(intDiv(occurred_at, 1000000)))
        ORDER BY (advertiser_id, event_id)",
            "CREATE TABLE IF NOT EXISTS {db}.checkpoints (
            stream String, next_offset UInt64
        ) ENGINE = ReplacingMergeTree(next_offset) ORDER BY stream",
            "CREATE TABLE IF NOT EXISTS {db}.processor_state (
            stream String, key String, value String, seq UInt64, deleted UInt8
        ) ENGINE = ReplacingMergeTree(seq) ORDER BY (stream, key)",
        ],
    },
    Migration {
        version: 2,
        description: "hourly rollups of clicks and events for the dashboards",
        statements: &[
            "CREATE TABLE IF NOT EXISTS {db}.clicks_hourly (
            hour Int64, advertiser_id String, campaign_id String, influencer_id String,
            link_id String,
            clicks AggregateFunction(uniqExactIf, String, UInt8),
            unique_clicks AggregateFunction(uniqExactIf, String, UInt8),
            bot_clicks AggregateFunction(uniqExactIf, String, UInt8)
        ) ENGINE = AggregatingMergeTree()
        PARTITION BY toYYYYMM(toDateTime(intDiv(hour, 1000000)))
        ORDER BY (advertiser_id, hour, campaign_id, influencer_id, link_id)",
            CLICKS_HOURLY_VIEW,
            CLICKS_HOURLY_BACKFILL,
            "CREATE TABLE IF NOT EXISTS {db}.events_hourly (
            hour Int64, advertiser_id String, campaign String, influencer String, link String,
            action String, attributed UInt8, currency String,
            events AggregateFunction(uniqExact, String),
            amounts AggregateFunction(groupUniqArray, Tuple(String, Int64))
        ) ENGINE = AggregatingMergeTree()
        PARTITION BY toYYYYMM(toDateTime(intDiv(hour, 1000000)))
        ORDER BY (advertiser_id, hour, campaign, influencer, link, action, attributed, currency)",
            EVENTS_HOURLY_VIEW,
            EVENTS_HOURLY_BACKFILL,
        ],
    },
    Migration {
        version: 3,
        description: "the commission ledger",
        statements: &["CREATE TABLE IF NOT EXISTS {db}.ledger (
            entry_id String, advertiser_id String, influencer_id String, campaign_id String,
            item_id String, commission_id String, kind String, status String,
            amount_minor Int64, currency String, at Int64, available_at Nullable(Int64),
            payout_id Nullable(String), event_id Nullable(String), order_id Nullable(String),
            click_id Nullable(String), action Nullable(String), rule Nullable(String),
            note Nullable(String), src_partition UInt32, src_offset UInt64
        ) ENGINE = ReplacingMergeTree()
        PARTITION BY toYYYYMM(toDateTime(intDiv(at, 1000000)))
        ORDER BY (advertiser_id, entry_id)"],
    },
    Migration {
        version: 4,
        description: "newsletter promo impressions and promo clicks",
        statements: &[
            "CREATE TABLE IF NOT EXISTS {db}.impressions (
            advertiser_id String, offer_id String, variation_id String,
            newsletter_send_id String, recipients UInt64, sent_at Int64, received_at Int64,
            src_partition UInt32, src_offset UInt64
        ) ENGINE = ReplacingMergeTree()
        PARTITION BY toYYYYMM(toDateTime(intDiv(sent_at, 1000000)))
        ORDER BY (advertiser_id, variation_id, newsletter_send_id)",
            "CREATE TABLE IF NOT EXISTS {db}.promo_clicks (
            click_id String, advertiser_id String, offer_id String, variation_id String,
            link_id String, at Int64, visitor_key String, is_bot UInt8,
            bot_reason Nullable(String), src_partition UInt32, src_offset UInt64
        ) ENGINE = ReplacingMergeTree()
        PARTITION BY toYYYYMM(toDateTime(intDiv(at, 1000000)))
        ORDER BY (advertiser_id, click_id)",
        ],
    },
    Migration {
        version: 5,
        description: "where each event was sent from (server or browser)",
        statements: &["ALTER TABLE {db}.events ADD COLUMN source Nullable(String) AFTER referrer"],
    },
    Migration {
        version: 6,
        description: "the webhook and postback delivery log",
        statements: &["CREATE TABLE IF NOT EXISTS {db}.deliveries (
            delivery_id String, message_id String, advertiser_id String, target_kind String,
            target_id String, event String, url String, attempt UInt32, at Int64,
            status Nullable(Int64), outcome String, error Nullable(String),
            response Nullable(String), next_attempt_at Nullable(Int64), replay UInt8,
            body String, src_partition UInt32, src_offset UInt64
        ) ENGINE = ReplacingMergeTree()
        PARTITION BY toYYYYMM(toDateTime(intDiv(at, 1000000)))
        ORDER BY (advertiser_id, delivery_id, attempt)"],
    },
];

// The rollups count distinct ids (`uniqExact`) and sum distinct (event id, amount) pairs, not
// rows: a batch the processor writes again after a crash reaches the views again, and must
// not count twice. A click the bus delivered twice may come the second time as a repeat
// visit (not unique): the flags are conditions of the counts, not keys, so it still counts
// once, as unique. The backfill (rows stored before the views existed) may overlap what the
// views already took, for the same reason harmlessly. Event dimensions are Nullable in
// `events`; the rollup keys hold '' for none (18.16 allows no Nullable sort keys), under
// names of their own so that no alias shadows a source column.

macro_rules! clicks_hourly_select {
    () => {
        "SELECT intDiv(at, 3600000000) * 3600000000 AS hour,
            advertiser_id, campaign_id, influencer_id, link_id,
            uniqExactIfState(click_id, is_bot = 0) AS clicks,
            uniqExactIfState(click_id, is_bot = 0 AND is_unique = 1) AS unique_clicks,
            uniqExactIfState(click_id, is_bot = 1) AS bot_clicks
        FROM {db}.clicks
        GROUP BY hour, advertiser_id, campaign_id, influencer_id, link_id"
    };
}

macro_rules! events_hourly_select {
    () => {
        "SELECT intDiv(occurred_at, 3600000000) * 3600000000 AS hour, advertiser_id,
            ifNull(campaign_id, '') AS campaign, ifNull(influencer_id, '') AS influencer,
            ifNull(link_id, '') AS link, action, attributed, currency,
            uniqExactState(event_id) AS events,
            groupUniqArrayState(tuple(event_id, ifNull(value_minor, 0))) AS amounts
        FROM {db}.events
        GROUP BY hour, advertiser_id, campaign, influencer, link, action, attributed, currency"
    };
}

const CLICKS_HOURLY_VIEW: &str = concat!(
    "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.clicks_hourly_mv TO {db}.clicks_hourly AS ",
    clicks_hourly_select!()
);
const CLICKS_HOURLY_BACKFILL: &str =
    concat!("INSERT INTO {db}.clicks_hourly ", clicks_hourly_select!());
const EVENTS_HOURLY_VIEW: &str = concat!(
    "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.events_hourly_mv TO {db}.events_hourly AS ",
    events_hourly_select!()
);
const EVENTS_HOURLY_BACKFILL: &str =
    concat!("INSERT INTO {db}.events_hourly ", events_hourly_select!());

/// The table that records applied migrations.
pub const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS {db}.schema_migrations (
    version UInt32, description String, applied_at DateTime
) ENGINE = ReplacingMergeTree() ORDER BY version";
