//! Store tables, each defined once: its name, its columns in order (name, logical type and how
//! to read the value from the row type) and its identity (the time column that partitions it,
//! the key that makes a row unique). Everything else about a table is derived from its
//! [`Table`]: the Arrow schema and record batch encoder here ([`Table::arrow_schema`],
//! [`Table::to_batch`]), and in the store the ClickHouse DDL and the RowBinary rows of an
//! insert. A new table is one new file in this folder plus its migration.

pub mod clicks;
pub mod events;

pub use clicks::CLICKS;
pub use events::EVENTS;

use chrono::{DateTime, Utc};

/// How a column's value is read from a row of type `R`; the variant is the column's logical
/// type. Times are UTC with microsecond precision; `Opt*` columns are nullable.
pub enum Get<R> {
    /// A string.
    Str(fn(&R) -> &str),
    /// A nullable string.
    OptStr(fn(&R) -> Option<&str>),
    /// A string made from the row (a typed value written as JSON text).
    Text(fn(&R) -> String),
    /// A nullable string made from the row.
    OptText(fn(&R) -> Option<String>),
    /// A UTC time, stored in microseconds since the epoch.
    Time(fn(&R) -> DateTime<Utc>),
    /// A nullable UTC time, stored in microseconds since the epoch.
    OptTime(fn(&R) -> Option<DateTime<Utc>>),
    /// A signed 64-bit integer.
    I64(fn(&R) -> i64),
    /// A nullable signed 64-bit integer.
    OptI64(fn(&R) -> Option<i64>),
    /// An unsigned 32-bit integer.
    U32(fn(&R) -> u32),
    /// An unsigned 64-bit integer.
    U64(fn(&R) -> u64),
    /// A boolean.
    Bool(fn(&R) -> bool),
}

impl<R> Clone for Get<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for Get<R> {}

/// A column's logical type, without its nullability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// UTF-8 text.
    Str,
    /// UTC time in microseconds.
    Time,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 64-bit integer.
    U64,
    /// Boolean.
    Bool,
}

impl<R> Get<R> {
    /// The logical type read.
    pub fn kind(&self) -> Kind {
        match self {
            Get::Str(_) | Get::OptStr(_) | Get::Text(_) | Get::OptText(_) => Kind::Str,
            Get::Time(_) | Get::OptTime(_) => Kind::Time,
            Get::I64(_) | Get::OptI64(_) => Kind::I64,
            Get::U32(_) => Kind::U32,
            Get::U64(_) => Kind::U64,
            Get::Bool(_) => Kind::Bool,
        }
    }

    /// Whether the column may hold no value.
    pub fn nullable(&self) -> bool {
        matches!(
            self,
            Get::OptStr(_) | Get::OptText(_) | Get::OptTime(_) | Get::OptI64(_)
        )
    }
}

/// One column of a table.
pub struct Column<R> {
    /// Column name, the same in every backend.
    pub name: &'static str,
    /// Its type, and how to read it from a row.
    pub get: Get<R>,
}

impl<R> Column<R> {
    /// A column named `name` read by `get`.
    pub const fn new(name: &'static str, get: Get<R>) -> Self {
        Column { name, get }
    }
}

/// A store table: rows of type `R`, written in [`Table::columns`] order by every backend.
pub struct Table<R: 'static> {
    /// Table name, the same in every backend.
    pub name: &'static str,
    /// Every column, in stored order.
    pub columns: &'static [Column<R>],
    /// The time column that partitions the table (by month in ClickHouse).
    pub time: &'static str,
    /// The columns that identify a row: a row written again with the same key replaces the
    /// stored one (ClickHouse sort key, advertiser first).
    pub key: &'static [&'static str],
}

impl<R> Table<R> {
    /// The column named `name`, if the table has one.
    pub fn column(&self, name: &str) -> Option<&Column<R>> {
        self.columns.iter().find(|c| c.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<R>(t: &Table<R>) {
        let mut names: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), t.columns.len(), "{}: duplicate column", t.name);
        let time = t.column(t.time).expect("the time column exists");
        assert_eq!(time.get.kind(), Kind::Time);
        assert!(
            !time.get.nullable(),
            "{}: partition time is never null",
            t.name
        );
        for k in t.key {
            let c = t.column(k).expect("every key column exists");
            assert!(
                !c.get.nullable(),
                "{}: key column {k} is never null",
                t.name
            );
        }
    }

    #[test]
    fn every_table_names_existing_non_null_time_and_key_columns() {
        check(&CLICKS);
        check(&EVENTS);
    }
}
