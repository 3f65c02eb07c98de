//! Store tables, each defined once: its name, its columns in order (name, logical type and how
//! to read the value from the row type) and its identity (the time column that partitions it,
//! the key that makes a row unique). Everything else about a table is derived from its
//! [`Table`]: the Arrow schema and record batch encoder here ([`Table::arrow_schema`],
//! [`Table::to_batch`]), and in the store the ClickHouse DDL and the RowBinary rows of an
//! insert.
//!
//! Backends see tables without their row types: every table is listed once in [`ALL`] (as a
//! [`Described`]), and a batch's rows of one table reach a backend as a [`Batch`] (an
//! [`Of`] pairing the definition with the rows), so that no backend names a table. A new table
//! is one new file in this folder, its line in [`ALL`], and its migration
//! (`docs/ARCHITECTURE.md`, "Adding a table").

pub mod clicks;
pub mod deliveries;
pub mod events;
pub mod impressions;
pub mod ledger;
pub mod promo_clicks;

pub use clicks::CLICKS;
pub use deliveries::DELIVERIES;
pub use events::EVENTS;
pub use impressions::IMPRESSIONS;
pub use ledger::LEDGER;
pub use promo_clicks::PROMO_CLICKS;

use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, SchemaRef};
use chrono::{DateTime, Utc};
use std::borrow::Cow;

/// Every store table, in the order backends create and write them.
pub static ALL: [&dyn Described; 6] = [
    &CLICKS,
    &EVENTS,
    &LEDGER,
    &IMPRESSIONS,
    &PROMO_CLICKS,
    &DELIVERIES,
];

/// The store table named `name`, if there is one.
pub fn by_name(name: &str) -> Option<&'static dyn Described> {
    ALL.iter().copied().find(|t| t.name() == name)
}

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

/// A column as a backend sees it: name, logical type and nullability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnInfo {
    /// Column name.
    pub name: &'static str,
    /// Logical type.
    pub kind: Kind,
    /// Whether it may hold no value.
    pub nullable: bool,
}

/// A table without its row type: everything a backend needs to create, list and read it.
pub trait Described: Sync {
    /// Table name, the same in every backend.
    fn name(&self) -> &'static str;
    /// Every column, in stored order.
    fn columns(&self) -> Vec<ColumnInfo>;
    /// The time column that partitions the table.
    fn time(&self) -> &'static str;
    /// The columns that identify a row (see [`Table::key`]).
    fn key(&self) -> &'static [&'static str];
    /// The table's Arrow schema.
    fn arrow_schema(&self) -> SchemaRef;
}

impl<R: 'static> Described for Table<R> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn columns(&self) -> Vec<ColumnInfo> {
        self.columns
            .iter()
            .map(|c| ColumnInfo {
                name: c.name,
                kind: c.get.kind(),
                nullable: c.get.nullable(),
            })
            .collect()
    }

    fn time(&self) -> &'static str {
        self.time
    }

    fn key(&self) -> &'static [&'static str] {
        self.key
    }

    fn arrow_schema(&self) -> SchemaRef {
        Table::arrow_schema(self)
    }
}

/// One value of a row, read through its column: what a backend encodes cell by cell.
/// Times are UTC; `Null` is a nullable column without a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// No value (nullable columns only).
    Null,
    /// Text.
    Str(Cow<'a, str>),
    /// A UTC time.
    Time(DateTime<Utc>),
    /// A signed 64-bit integer.
    I64(i64),
    /// An unsigned 32-bit integer.
    U32(u32),
    /// An unsigned 64-bit integer.
    U64(u64),
    /// A boolean.
    Bool(bool),
}

impl<R> Get<R> {
    /// The value of this column in `row`.
    pub fn value<'a>(&self, row: &'a R) -> Value<'a> {
        fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Value<'static>) -> Value<'static> {
            v.map_or(Value::Null, f)
        }
        match *self {
            Get::Str(f) => Value::Str(Cow::Borrowed(f(row))),
            Get::OptStr(f) => f(row).map_or(Value::Null, |s| Value::Str(Cow::Borrowed(s))),
            Get::Text(f) => Value::Str(Cow::Owned(f(row))),
            Get::OptText(f) => opt(f(row), |s| Value::Str(Cow::Owned(s))),
            Get::Time(f) => Value::Time(f(row)),
            Get::OptTime(f) => opt(f(row), Value::Time),
            Get::I64(f) => Value::I64(f(row)),
            Get::OptI64(f) => opt(f(row), Value::I64),
            Get::U32(f) => Value::U32(f(row)),
            Get::U64(f) => Value::U64(f(row)),
            Get::Bool(f) => Value::Bool(f(row)),
        }
    }
}

/// One table's rows of a batch, without their row type: what a backend writes.
pub trait Batch: Send + Sync {
    /// The table the rows belong to.
    fn table(&self) -> &'static dyn Described;
    /// Number of rows.
    fn len(&self) -> usize;
    /// Whether there are no rows.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The rows as one Arrow record batch of the table's schema.
    ///
    /// Errors: only if Arrow refuses the columns, which a consistent definition rules out.
    fn to_arrow(&self) -> Result<RecordBatch, ArrowError>;
    /// Calls `cell` with every value of row `row`, column by column in stored order.
    fn for_each_value(&self, row: usize, cell: &mut dyn FnMut(Value<'_>));
}

/// A table's definition paired with rows of its row type: the [`Batch`] of those rows.
pub struct Of<'a, R: 'static> {
    /// The definition.
    pub table: &'static Table<R>,
    /// The rows.
    pub rows: &'a [R],
}

impl<R: Sync + 'static> Batch for Of<'_, R> {
    fn table(&self) -> &'static dyn Described {
        self.table
    }

    fn len(&self) -> usize {
        self.rows.len()
    }

    fn to_arrow(&self) -> Result<RecordBatch, ArrowError> {
        self.table.to_batch(self.rows)
    }

    fn for_each_value(&self, row: usize, cell: &mut dyn FnMut(Value<'_>)) {
        let row = &self.rows[row];
        for c in self.table.columns {
            cell(c.get.value(row));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(t: &dyn Described) {
        let columns = t.columns();
        let column = |name: &str| columns.iter().find(|c| c.name == name).copied();
        let mut names: Vec<&str> = columns.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), columns.len(), "{}: duplicate column", t.name());
        let time = column(t.time()).expect("the time column exists");
        assert_eq!(time.kind, Kind::Time);
        assert!(!time.nullable, "{}: partition time is never null", t.name());
        for k in t.key() {
            let c = column(k).expect("every key column exists");
            assert!(!c.nullable, "{}: key column {k} is never null", t.name());
        }
    }

    #[test]
    fn every_table_names_existing_non_null_time_and_key_columns() {
        for t in ALL {
            check(t);
        }
        let mut names: Vec<&str> = ALL.iter().map(|t| t.name()).collect();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "table names are unique");
        assert_eq!(by_name("events").map(|t| t.name()), Some("events"));
        assert!(by_name("nope").is_none());
    }
}
