//! The ClickHouse form of a store table, derived from its [`Table`] definition: the column
//! types and `CREATE TABLE` statement (as ClickHouse 18.16 accepts them: times Int64
//! microseconds, booleans UInt8, `Nullable(...)`), and the RowBinary encoding of its rows for
//! inserts, written straight from the row type, column by column, without an intermediate row.

use clicktrail_schemas::tables::{Batch, Described, Kind, Value};

/// The ClickHouse type of a column of logical type `kind`, such as `Nullable(String)` or
/// `UInt8`.
pub fn column_type(kind: Kind, nullable: bool) -> String {
    let base = match kind {
        Kind::Str => "String",
        Kind::Time | Kind::I64 => "Int64",
        Kind::U32 => "UInt32",
        Kind::U64 => "UInt64",
        Kind::Bool => "UInt8",
    };
    if nullable {
        format!("Nullable({base})")
    } else {
        base.to_string()
    }
}

/// The column list of the table's DDL: `name Type, name Type, …`, in stored order.
pub fn columns(table: &dyn Described) -> String {
    table
        .columns()
        .iter()
        .map(|c| format!("{} {}", c.name, column_type(c.kind, c.nullable)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The table's `CREATE TABLE IF NOT EXISTS {db}.<name>` statement (`{db}` is replaced by the
/// database when a migration runs): ReplacingMergeTree sorted by the table's key, so a row
/// written again replaces the stored one, partitioned by month of its time column.
pub fn create_table(table: &dyn Described) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {{db}}.{} ({}) ENGINE = ReplacingMergeTree() \
         PARTITION BY toYYYYMM(toDateTime(intDiv({}, 1000000))) ORDER BY ({})",
        table.name(),
        columns(table),
        table.time(),
        table.key().join(", ")
    )
}

/// The `INSERT` statement whose body is [`write_row`]'s output: every column, in stored order,
/// as RowBinary.
pub fn insert_sql(table: &dyn Described) -> String {
    let names: Vec<&str> = table.columns().iter().map(|c| c.name).collect();
    format!(
        "INSERT INTO {}({}) FORMAT RowBinary",
        table.name(),
        names.join(", ")
    )
}

/// Appends row `row` of `batch` to `out` as one RowBinary row of its table: strings as a
/// LEB128 length and the bytes, integers little-endian, booleans one byte, times Int64
/// microseconds, and a nullable value as one byte (1 = null) followed by the value when there
/// is one.
pub fn write_row(batch: &dyn Batch, row: usize, out: &mut Vec<u8>) {
    let nullable: Vec<bool> = batch.table().columns().iter().map(|c| c.nullable).collect();
    write_row_with(batch, row, &nullable, out);
}

/// [`write_row`] with the columns' nullability already read (one entry per column).
fn write_row_with(batch: &dyn Batch, row: usize, nullable: &[bool], out: &mut Vec<u8>) {
    let mut column = 0;
    batch.for_each_value(row, &mut |value| {
        if nullable[column] {
            out.push(u8::from(value == Value::Null));
        }
        column += 1;
        match value {
            Value::Null => {}
            Value::Str(s) => string(&s, out),
            Value::Time(t) => out.extend_from_slice(&t.timestamp_micros().to_le_bytes()),
            Value::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::Bool(b) => out.push(u8::from(b)),
        }
    });
}

/// The RowBinary of a batch's rows in pieces of at least `size` bytes (the last one possibly
/// smaller), each row whole within one piece: an insert body encoded as it is sent.
pub struct Chunks<'a> {
    batch: &'a dyn Batch,
    nullable: Vec<bool>,
    next_row: usize,
    size: usize,
}

impl<'a> Chunks<'a> {
    /// The pieces of `batch`, each at least `size` bytes but the last.
    pub fn new(batch: &'a dyn Batch, size: usize) -> Self {
        let nullable = batch.table().columns().iter().map(|c| c.nullable).collect();
        Chunks {
            batch,
            nullable,
            next_row: 0,
            size,
        }
    }
}

impl Iterator for Chunks<'_> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        let mut buf = Vec::with_capacity(self.size);
        while self.next_row < self.batch.len() && buf.len() < self.size {
            write_row_with(self.batch, self.next_row, &self.nullable, &mut buf);
            self.next_row += 1;
        }
        (!buf.is_empty()).then_some(buf)
    }
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
    use clicktrail_schemas::tables::{ALL, CLICKS, Of};

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
        let mut ddl = normalize(found[0]);
        let alter = format!("ALTER TABLE {{db}}.{table} ADD COLUMN ");
        for added in MIGRATIONS
            .iter()
            .flat_map(|m| m.statements.iter())
            .filter_map(|s| s.trim_start().strip_prefix(&alter))
        {
            let (column, after) = added.rsplit_once(" AFTER ").expect("ADD COLUMN … AFTER");
            let at = ddl
                .find(&format!(" {after} "))
                .expect("the AFTER column exists");
            let mut depth = 0;
            let comma = ddl[at..]
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    c == ',' && depth == 0
                })
                .map(|(i, _)| at + i)
                .expect("a column after the AFTER column");
            ddl.insert_str(comma + 1, &format!(" {},", normalize(column)));
        }
        ddl
    }

    #[test]
    fn the_migrations_create_every_table_as_defined() {
        for table in ALL {
            let name = table.name();
            assert_eq!(
                created(name),
                normalize(&create_table(table)),
                "table `{name}`"
            );
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
                promo: None,
            },
            is_unique: true,
            source: Source {
                partition: 3,
                offset: 258,
            },
        };
        let mut out = Vec::new();
        let rows = [row];
        let batch = Of {
            table: &CLICKS,
            rows: &rows,
        };
        write_row(&batch, 0, &mut out);
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
