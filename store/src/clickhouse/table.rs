//! The ClickHouse form of a store table, derived from its [`Table`] definition: the column
//! types and `CREATE TABLE` statement (as ClickHouse 18.16 accepts them: times Int64
//! microseconds, booleans UInt8, `Nullable(...)`), and the RowBinary encoding of its rows for
//! inserts, written straight from the row type, column by column, without an intermediate row.

use clicktrail_schemas::tables::{Get, Kind, Table};

/// The ClickHouse type of a column, such as `Nullable(String)` or `UInt8`.
pub fn column_type<R>(get: &Get<R>) -> String {
    let base = match get.kind() {
        Kind::Str => "String",
        Kind::Time | Kind::I64 => "Int64",
        Kind::U32 => "UInt32",
        Kind::U64 => "UInt64",
        Kind::Bool => "UInt8",
    };
    if get.nullable() {
        format!("Nullable({base})")
    } else {
        base.to_string()
    }
}

/// The column list of the table's DDL: `name Type, name Type, …`, in stored order.
pub fn columns<R>(table: &Table<R>) -> String {
    table
        .columns
        .iter()
        .map(|c| format!("{} {}", c.name, column_type(&c.get)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The table's `CREATE TABLE IF NOT EXISTS {db}.<name>` statement (`{db}` is replaced by the
/// database when a migration runs): ReplacingMergeTree sorted by the table's key, so a row
/// written again replaces the stored one, partitioned by month of its time column.
pub fn create_table<R>(table: &Table<R>) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {{db}}.{} ({}) ENGINE = ReplacingMergeTree() \
         PARTITION BY toYYYYMM(toDateTime(intDiv({}, 1000000))) ORDER BY ({})",
        table.name,
        columns(table),
        table.time,
        table.key.join(", ")
    )
}

/// The `INSERT` statement whose body is [`write_row`]'s output: every column, in stored order,
/// as RowBinary.
pub fn insert_sql<R>(table: &Table<R>) -> String {
    let names: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
    format!(
        "INSERT INTO {}({}) FORMAT RowBinary",
        table.name,
        names.join(", ")
    )
}

/// Appends `row` to `out` as one RowBinary row of `table`: strings as a LEB128 length and
/// the bytes, integers little-endian, booleans one byte, times Int64 microseconds, and a
/// nullable value as one byte (1 = null) followed by the value when there is one.
pub fn write_row<R>(table: &Table<R>, row: &R, out: &mut Vec<u8>) {
    for c in table.columns {
        match c.get {
            Get::Str(f) => string(f(row), out),
            Get::OptStr(f) => {
                if let Some(s) = nullable(f(row), out) {
                    string(s, out)
                }
            }
            Get::Text(f) => string(&f(row), out),
            Get::OptText(f) => {
                if let Some(s) = nullable(f(row), out) {
                    string(&s, out)
                }
            }
            Get::Time(f) => out.extend_from_slice(&f(row).timestamp_micros().to_le_bytes()),
            Get::OptTime(f) => {
                if let Some(t) = nullable(f(row), out) {
                    out.extend_from_slice(&t.timestamp_micros().to_le_bytes())
                }
            }
            Get::I64(f) => out.extend_from_slice(&f(row).to_le_bytes()),
            Get::OptI64(f) => {
                if let Some(v) = nullable(f(row), out) {
                    out.extend_from_slice(&v.to_le_bytes())
                }
            }
            Get::U32(f) => out.extend_from_slice(&f(row).to_le_bytes()),
            Get::U64(f) => out.extend_from_slice(&f(row).to_le_bytes()),
            Get::Bool(f) => out.push(u8::from(f(row))),
        }
    }
}

fn nullable<T>(v: Option<T>, out: &mut Vec<u8>) -> Option<T> {
    out.push(u8::from(v.is_none()));
    v
}

fn string(s: &str, out: &mut Vec<u8>) {
    let mut n = s.len() as u64;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clickhouse::migrations::MIGRATIONS;
    use clicktrail_schemas::tables::{CLICKS, EVENTS};

    /// `s` with whitespace runs as one space and none just inside parentheses.
    fn normalize(s: &str) -> String {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace("( ", "(")
            .replace(" )", ")")
    }

    /// The statement of the migrations that creates `table`.
    fn created(table: &str) -> String {
        let head = format!("CREATE TABLE IF NOT EXISTS {{db}}.{table} (");
        let found: Vec<&str> = MIGRATIONS
            .iter()
            .flat_map(|m| m.statements.iter().copied())
            .filter(|s| s.trim_start().starts_with(&head))
            .collect();
        assert_eq!(found.len(), 1, "one migration creates `{table}`");
        normalize(found[0])
    }

    #[test]
    fn the_migrations_create_every_table_as_defined() {
        for (name, ddl) in [
            (CLICKS.name, create_table(&CLICKS)),
            (EVENTS.name, create_table(&EVENTS)),
        ] {
            assert_eq!(created(name), normalize(&ddl), "table `{name}`");
        }
        assert!(created("clicks").contains(
            "(click_id String, at Int64, link_id String, code String, sub_id Nullable(String),"
        ));
    }

    #[test]
    fn rows_encode_as_row_binary() {
        use chrono::{TimeZone, Utc};
        use clicktrail_schemas::rows::{ClickRow, Source};
        use clicktrail_schemas::wire::ClickRecord;
        let row = ClickRow {
            click: ClickRecord {
                v: 1,
                click_id: "c".repeat(200),
                at: Utc.timestamp_opt(1, 2_000).unwrap(),
                link_id: "l".into(),
                code: String::new(),
                sub_id: None,
                advertiser_id: "a".into(),
                campaign_id: "m".into(),
                influencer_id: "i".into(),
                visitor_key: "v".into(),
                user_agent: "u".into(),
                device_class: "d".into(),
                referrer: Some("r".into()),
                ip_prefix: "p".into(),
                country: None,
                is_bot: true,
                bot_reason: None,
                not_live: false,
            },
            is_unique: true,
            source: Source {
                partition: 3,
                offset: 258,
            },
        };
        let mut out = Vec::new();
        write_row(&CLICKS, &row, &mut out);
        let mut want = vec![200, 1];
        want.extend_from_slice("c".repeat(200).as_bytes());
        want.extend_from_slice(&1_000_002i64.to_le_bytes());
        want.extend_from_slice(&[1, b'l', 0, 1]); // link_id, code, sub_id null
        for s in ["a", "m", "i", "v", "u", "d"] {
            want.extend_from_slice(&[1, s.as_bytes()[0]]);
        }
        want.extend_from_slice(&[0, 1, b'r', 1, b'p', 1]); // referrer, ip_prefix, country null
        want.extend_from_slice(&[1, 1, 0, 1]); // is_bot, bot_reason null, not_live, is_unique
        want.extend_from_slice(&3u32.to_le_bytes());
        want.extend_from_slice(&258u64.to_le_bytes());
        assert_eq!(out, want);
    }
}
