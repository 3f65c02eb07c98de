use super::*;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;
use datafusion::common::{DataFusionError, Result as DfResult};

#[test]
fn deep_and_long_expressions_are_refused_before_planning() {
    let limits = QueryLimits::default();
    let sum = format!("SELECT {}", vec!["1"; 1000].join("+"));
    assert!(
        check_complexity(&sum, &limits)
            .unwrap_err()
            .contains("operators")
    );
    let ors = format!(
        "SELECT * FROM events WHERE {}",
        vec!["action = 'x'"; 3000].join(" OR ")
    );
    assert!(check_complexity(&ors, &limits).is_err());
    let nested = format!("SELECT {}1{}", "(".repeat(200), ")".repeat(200));
    assert!(
        check_complexity(&nested, &limits)
            .unwrap_err()
            .contains("nests")
    );
    let calls = format!("SELECT {}1{}", "abs(".repeat(100), ")".repeat(100));
    assert!(check_complexity(&calls, &limits).is_err());
    let fine = "SELECT action, count(*) FROM events WHERE value_minor > 100 AND \
                action IN ('purchase', 'signup') GROUP BY action";
    assert_eq!(check_complexity(fine, &limits), Ok(()));
}

async fn run(limiter: &Limiter, sql: &str) -> DfResult<Vec<datafusion::arrow::array::RecordBatch>> {
    let ctx = limiter.context().unwrap();
    ctx.sql(sql).await?.collect().await
}

#[tokio::test]
async fn values_beyond_the_bound_are_refused_before_they_are_built() {
    let limiter = Limiter::new(QueryLimits::default());
    for sql in [
        "SELECT repeat('x', 2000000000)",
        "SELECT lpad('x', 2000000000)",
        "SELECT rpad('x', 2000000000, 'y')",
        "SELECT replace(repeat('x', 1000), 'x', repeat('y', 2000))",
        "SELECT repeat(v, 1000000) FROM (VALUES ('ab'), ('c')) AS t(v)",
    ] {
        let e = run(&limiter, sql).await.unwrap_err().to_string();
        assert!(e.contains("bytes are allowed"), "{sql}: {e}");
    }
    let ok = run(&limiter, "SELECT repeat('ab', 1000) AS s")
        .await
        .unwrap();
    assert_eq!(ok[0].num_rows(), 1);
    let ok = run(&limiter, "SELECT lpad('7', 3, '0') AS s")
        .await
        .unwrap();
    assert_eq!(ok[0].num_rows(), 1);
}

#[tokio::test]
async fn sessions_share_no_tables() {
    let limiter = Limiter::new(QueryLimits::default());
    let (a, b) = (limiter.context().unwrap(), limiter.context().unwrap());
    let view = a.sql("SELECT 1 AS n").await.unwrap().into_view();
    a.register_table("events", view).unwrap();
    assert!(a.table("events").await.is_ok());
    assert!(
        b.table("events").await.is_err(),
        "another request's view is not visible"
    );
    let view = b.sql("SELECT 2 AS n").await.unwrap().into_view();
    b.register_table("events", view).unwrap();
}

#[tokio::test]
async fn operator_state_beyond_the_memory_pool_fails_the_query() {
    let limiter = Limiter::new(QueryLimits {
        memory_bytes: 16 * 1024 * 1024,
        ..QueryLimits::default()
    });
    // Distinct values of an unordered key: a hash table the pool accounts for. (Over an
    // ordered input such as `range(n)` itself, aggregation streams in bounded memory and
    // only the time limit applies.)
    let e = run(
        &limiter,
        "SELECT count(DISTINCT (value * 7919) % 30000001) FROM range(20000000)",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e.find_root(), DataFusionError::ResourcesExhausted(_)),
        "{e}"
    );
}

/// Rows of 200 bytes in an order unrelated to their key, sorted by the key: the sort of an
/// export. `(rows, first key, last key, keys in order)` of the answer.
async fn sort_wide_rows(ctx: SessionContext) -> DfResult<(usize, i64, i64, bool)> {
    // Two inputs of unequal size, sorted in two partitions: the smaller one's merge begins
    // while the larger one still fills its share of the pool.
    let batches = ctx
        .sql(
            "SELECT (value * 7919) % 400000 AS k, repeat('x', 200) AS pad FROM \
             (SELECT value FROM range(0, 60000) UNION ALL SELECT value FROM range(60000, 400000)) \
             ORDER BY k",
        )
        .await?
        .collect()
        .await?;
    let keys: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    let ordered = keys.windows(2).all(|w| w[0] <= w[1]);
    Ok((keys.len(), keys[0], keys[keys.len() - 1], ordered))
}

#[tokio::test]
async fn an_exports_sort_beyond_the_memory_pool_spills_and_answers_every_row_in_order() {
    // Room for the merge's reservation (10 MB per partition), not for the rows.
    let limiter = Limiter::new(QueryLimits {
        memory_bytes: 48 * 1024 * 1024,
        ..QueryLimits::default()
    });
    // About 90 MB of rows: beyond the 48 MiB pool for a query that may not spill...
    let e = sort_wide_rows(limiter.context().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(e.find_root(), DataFusionError::ResourcesExhausted(_)),
        "{e}"
    );
    // ...and every row, in order, for an export's.
    let (rows, first, last, ordered) = sort_wide_rows(limiter.export_context().unwrap())
        .await
        .unwrap();
    assert_eq!((rows, first, last, ordered), (400_000, 0, 399_999, true));
}

#[tokio::test]
async fn an_export_in_a_small_pool_spills_its_sort_and_answers_every_row_in_order() {
    // Two partitions' sorts each holding DataFusion's default 10 MiB back for the merge would
    // need more than the 16 MiB pool before any row.
    let limiter = Limiter::new(QueryLimits {
        memory_bytes: 16 * 1024 * 1024,
        ..QueryLimits::default()
    });
    let (rows, first, last, ordered) = sort_wide_rows(limiter.export_context().unwrap())
        .await
        .unwrap();
    assert_eq!((rows, first, last, ordered), (400_000, 0, 399_999, true));
}

#[tokio::test]
async fn an_export_does_not_spread_one_partition_by_round_robin() {
    // One input partition, as a ClickHouse scan is: spread over two by round robin, the
    // spread's buffers (which cannot spill) filled with the scan's rows while the sorts
    // spilled, until neither sort had room (the dashboards bench's ClickHouse export in a
    // 16 MiB pool). A query may still spread it.
    let limiter = Limiter::new(QueryLimits::default());
    let sql = "SELECT (value * 7919) % 400000 AS k FROM range(0, 400000) ORDER BY k";
    let plan = |ctx: SessionContext| async move {
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        datafusion::physical_plan::displayable(plan.as_ref())
            .indent(true)
            .to_string()
    };
    let export = plan(limiter.export_context().unwrap()).await;
    assert!(!export.contains("RoundRobinBatch"), "{export}");
    let query = plan(limiter.context().unwrap()).await;
    assert!(query.contains("RoundRobinBatch"), "{query}");
}
