//! Arrow form of the store tables: a [`Table`]'s schema and the conversion of its rows into a
//! record batch, derived from the table's column list.

use crate::tables::{Get, Kind, Table};
use arrow_array::builder::{
    BooleanBuilder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder, UInt32Builder,
    UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use std::sync::Arc;

/// Name of the raw clicks table.
pub const CLICKS_TABLE: &str = crate::tables::CLICKS.name;
/// Name of the attributed events table.
pub const EVENTS_TABLE: &str = crate::tables::EVENTS.name;

/// The Arrow type of a logical column type: times are `Timestamp(µs, "UTC")`.
pub fn data_type(kind: Kind) -> DataType {
    match kind {
        Kind::Str => DataType::Utf8,
        Kind::Time => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Kind::I64 => DataType::Int64,
        Kind::U32 => DataType::UInt32,
        Kind::U64 => DataType::UInt64,
        Kind::Bool => DataType::Boolean,
    }
}

impl<R> Table<R> {
    /// The table's Arrow schema: one field per column, in order, nullable where the column is.
    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c.name, data_type(c.get.kind()), c.get.nullable()))
                .collect::<Vec<_>>(),
        ))
    }

    /// `rows` as one record batch of [`Table::arrow_schema`].
    ///
    /// Errors: only if Arrow refuses the columns, which a consistent table definition rules out.
    pub fn to_batch(&self, rows: &[R]) -> Result<RecordBatch, ArrowError> {
        let columns = self.columns.iter().map(|c| encode(&c.get, rows)).collect();
        RecordBatch::try_new(self.arrow_schema(), columns)
    }
}

/// One column of `rows` as an Arrow array.
fn encode<R>(get: &Get<R>, rows: &[R]) -> ArrayRef {
    let n = rows.len();
    let micros = |t: chrono::DateTime<chrono::Utc>| t.timestamp_micros();
    match *get {
        Get::Str(f) => {
            let mut b = StringBuilder::with_capacity(n, rows.iter().map(|r| f(r).len()).sum());
            rows.iter().for_each(|r| b.append_value(f(r)));
            Arc::new(b.finish())
        }
        Get::OptStr(f) => {
            let bytes = rows.iter().map(|r| f(r).map_or(0, str::len)).sum();
            let mut b = StringBuilder::with_capacity(n, bytes);
            rows.iter().for_each(|r| b.append_option(f(r)));
            Arc::new(b.finish())
        }
        Get::Text(f) => {
            let mut b = StringBuilder::with_capacity(n, 0);
            rows.iter().for_each(|r| b.append_value(f(r)));
            Arc::new(b.finish())
        }
        Get::OptText(f) => {
            let mut b = StringBuilder::with_capacity(n, 0);
            rows.iter().for_each(|r| b.append_option(f(r)));
            Arc::new(b.finish())
        }
        Get::Time(f) => {
            let mut b = TimestampMicrosecondBuilder::with_capacity(n);
            rows.iter().for_each(|r| b.append_value(micros(f(r))));
            Arc::new(b.finish().with_timezone("UTC"))
        }
        Get::OptTime(f) => {
            let mut b = TimestampMicrosecondBuilder::with_capacity(n);
            rows.iter().for_each(|r| b.append_option(f(r).map(micros)));
            Arc::new(b.finish().with_timezone("UTC"))
        }
        Get::I64(f) => {
            let mut b = Int64Builder::with_capacity(n);
            rows.iter().for_each(|r| b.append_value(f(r)));
            Arc::new(b.finish())
        }
        Get::OptI64(f) => {
            let mut b = Int64Builder::with_capacity(n);
            rows.iter().for_each(|r| b.append_option(f(r)));
            Arc::new(b.finish())
        }
        Get::U32(f) => {
            let mut b = UInt32Builder::with_capacity(n);
            rows.iter().for_each(|r| b.append_value(f(r)));
            Arc::new(b.finish())
        }
        Get::U64(f) => {
            let mut b = UInt64Builder::with_capacity(n);
            rows.iter().for_each(|r| b.append_value(f(r)));
            Arc::new(b.finish())
        }
        Get::Bool(f) => {
            let mut b = BooleanBuilder::with_capacity(n);
            rows.iter().for_each(|r| b.append_value(f(r)));
            Arc::new(b.finish())
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::tables::{CLICKS, EVENTS};

    /// `name type` per field, `?` after a nullable one.
    fn describe(schema: &arrow_schema::Schema) -> String {
        let ty = |t: &arrow_schema::DataType| match t {
            arrow_schema::DataType::Timestamp(_, _) => "ts".to_string(),
            other => format!("{other:?}"),
        };
        schema
            .fields()
            .iter()
            .map(|f| {
                let null = if f.is_nullable() { "?" } else { "" };
                format!("{} {}{null}", f.name(), ty(f.data_type()))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    #[test]
    fn schemas_match_the_stored_parquet_files() {
        // Parquet files already written carry these schemas; a reader needs them unchanged,
        // but for nullable columns added since a file was written, which read as null there
        // (events' `source`).
        assert_eq!(
            describe(&CLICKS.arrow_schema()),
            "click_id Utf8, at ts, link_id Utf8, code Utf8, sub_id Utf8?, advertiser_id Utf8, \
             campaign_id Utf8, influencer_id Utf8, visitor_key Utf8, user_agent Utf8, \
             device_class Utf8, referrer Utf8?, ip_prefix Utf8, country Utf8?, is_bot Boolean, \
             bot_reason Utf8?, not_live Boolean, is_unique Boolean, src_partition UInt32, \
             src_offset UInt64"
        );
        assert_eq!(
            describe(&EVENTS.arrow_schema()),
            "event_id Utf8, advertiser_id Utf8, action Utf8, custom_name Utf8?, occurred_at ts, \
             received_at ts, value_minor Int64?, currency Utf8, order_id Utf8?, customer_id Utf8?, \
             properties Utf8?, coupon_code Utf8?, ref_code Utf8?, click_id Utf8?, \
             landing_url Utf8?, referrer Utf8?, source Utf8?, attributed Boolean, attributed_by Utf8, \
             campaign_id Utf8?, influencer_id Utf8?, link_id Utf8?, coupon_id Utf8?, reason Utf8?, \
             candidates Utf8, credited_click_id Utf8?, click_at ts?, window_secs Int64?, \
             conflict Utf8?, src_partition UInt32, src_offset UInt64"
        );
        let ts = arrow_schema::DataType::Timestamp(
            arrow_schema::TimeUnit::Microsecond,
            Some("UTC".into()),
        );
        assert_eq!(
            CLICKS
                .arrow_schema()
                .field_with_name("at")
                .unwrap()
                .data_type(),
            &ts
        );
    }
}
