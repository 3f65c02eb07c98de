//! Filter translation, summed rollups' pushdown and the chunked decoding of answers.

use super::*;
use crate::rollups::EVENTS_HOURLY;
use datafusion::prelude::{col, lit};
use datafusion::scalar::ScalarValue;

fn table() -> ClickHouseTable {
    ClickHouseTable {
        client: Client::default(),
        table: "clicks".into(),
        summed: false,
        schema: schema_of("clicks").unwrap(),
    }
}

#[test]
fn filters_translate_to_clickhouse_sql() {
    let t = table();
    let ts = lit(ScalarValue::TimestampMicrosecond(
        Some(1_700_000_000_000_000),
        Some("UTC".into()),
    ));
    let scoped = col("advertiser_id")
        .eq(lit("adv'1"))
        .and(col("at").gt_eq(ts));
    assert_eq!(
        t.translate_over(&scoped, Over::Columns).as_deref(),
        Some("(advertiser_id = 'adv\\'1' AND at >= 1700000000000000)")
    );
    assert_eq!(
        t.translate_over(&Expr::Not(Box::new(col("is_bot"))), Over::Columns)
            .as_deref(),
        Some("NOT (is_bot != 0)")
    );
    assert_eq!(
        t.translate_over(&lit(5).lt(col("src_offset")), Over::Columns)
            .as_deref(),
        Some("src_offset > 5")
    );
    assert_eq!(
        t.translate_over(&col("country").is_null(), Over::Columns)
            .as_deref(),
        Some("isNull(country)")
    );
    // Unknown columns and functions stay with DataFusion.
    assert_eq!(
        t.translate_over(&col("nope").eq(lit(1)), Over::Columns),
        None
    );
    assert_eq!(
        t.translate_over(&col("code").like(lit("a%")), Over::Columns),
        None
    );
}

#[test]
fn an_answer_is_decoded_chunk_by_chunk_into_batches_of_at_most_8192_rows() {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    let schema = Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, false),
        Field::new("s", DataType::Utf8, true),
    ]));
    let json: String = (0..20_000)
        .map(|i| format!("{{\"n\":{i},\"s\":\"row {i}\"}}\n"))
        .collect();
    let mut decoder = ReaderBuilder::new(schema.clone())
        .with_batch_size(8192)
        .build_decoder()
        .unwrap();
    let mut out = Vec::new();
    // Chunks cut anywhere, as the HTTP body arrives.
    for chunk in json.as_bytes().chunks(997) {
        decode(&mut decoder, chunk, &schema, &mut out).unwrap();
    }
    assert_eq!(out.len(), 2, "two full batches before the answer ends");
    out.push(to_table(&decoder.flush().unwrap().unwrap(), &schema).unwrap());
    let rows: Vec<usize> = out.iter().map(|b| b.num_rows()).collect();
    assert_eq!(rows, [8192, 8192, 3616]);
    let numbers: Vec<i64> = out
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert_eq!(numbers, (0..20_000).collect::<Vec<i64>>());
    assert_eq!(out[2].column(1).as_string::<i32>().value(3615), "row 19999");
}

#[test]
fn a_summed_rollup_filters_its_stored_keys_exactly_before_the_merge() {
    let t = ClickHouseTable {
        client: Client::default(),
        table: EVENTS_HOURLY.into(),
        summed: true,
        schema: schema_of(EVENTS_HOURLY).unwrap(),
    };
    let campaign = col("campaign_id").eq(lit("cmp'1"));
    let attributed = col("attributed");
    let both = campaign.clone().and(attributed.clone());
    assert_eq!(
        t.translate_over(&both, Over::Keys).as_deref(),
        Some("(nullIf(campaign, '') = 'cmp\\'1' AND attributed != 0)")
    );
    // A measure is merged after the filters: it cannot be filtered before.
    assert_eq!(
        t.translate_over(&col("events").gt(lit(1i64)), Over::Keys),
        None
    );
    let kinds = t
        .supports_filters_pushdown(&[
            &both,
            &campaign.clone().or(col("link_id").is_null()),
            &col("amount_minor").gt(lit(0i64)),
        ])
        .unwrap();
    assert!(
        matches!(
            kinds[..],
            [
                TableProviderFilterPushDown::Exact,
                TableProviderFilterPushDown::Inexact,
                TableProviderFilterPushDown::Unsupported
            ]
        ),
        "{kinds:?}"
    );
    // Read whole, as the analysts' SQL reads it, the same filter is not exact.
    let whole = ClickHouseTable {
        summed: false,
        ..t.clone()
    };
    assert!(matches!(
        whole.supports_filters_pushdown(&[&both]).unwrap()[..],
        [TableProviderFilterPushDown::Inexact]
    ));
}
