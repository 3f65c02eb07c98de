//! Sealed tables: a store table (or rollup) of which a caller sees only the rows of their
//! scope, filtered before any expression of the caller's query touches a row.
//!
//! Filtering a view is not enough when callers write SQL: the optimizer merges the caller's
//! predicates with the scope's into one conjunction, whose parts are evaluated on every row of a
//! batch, and a batch of the store holds several tenants' rows. An expression that fails on some
//! value (a cast, a division) would then fail or not depending on another tenant's data, and that
//! answers a yes/no question about it. So the scope is applied inside the table's own plan,
//! under a node through which the optimizer pushes nothing ([`Seal`]); of the caller's predicates,
//! only comparisons of a column with constants, which cannot fail, go below it (to prune files
//! and let ClickHouse filter).

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::DFSchema;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};
use std::fmt;
use std::sync::Arc;

/// A table whose rows outside `scope` no query of the caller ever evaluates.
#[derive(Debug)]
pub struct SealedTable {
    inner: Arc<dyn TableProvider>,
    scope: Expr,
}

impl SealedTable {
    /// `inner` restricted to the rows where `scope` (over its columns) is true.
    pub fn new(inner: Arc<dyn TableProvider>, scope: Expr) -> SealedTable {
        SealedTable { inner, scope }
    }
}

/// Whether evaluating `e` can never fail, whatever the row: comparisons of a column with
/// constants, `IN` lists and ranges of constants, null tests, and `AND` / `OR` / `NOT` of those.
fn cannot_fail(e: &Expr) -> bool {
    let simple = |e: &Expr| matches!(e, Expr::Column(_) | Expr::Literal(..));
    match e {
        Expr::BinaryExpr(b) => match b.op {
            Operator::And | Operator::Or => cannot_fail(&b.left) && cannot_fail(&b.right),
            Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom => simple(&b.left) && simple(&b.right),
            _ => false,
        },
        Expr::Not(inner) => cannot_fail(inner),
        Expr::IsNull(inner) | Expr::IsNotNull(inner) => simple(inner),
        Expr::Between(b) => simple(&b.expr) && simple(&b.low) && simple(&b.high),
        Expr::InList(l) => simple(&l.expr) && l.list.iter().all(simple),
        _ => false,
    }
}

#[async_trait]
impl TableProvider for SealedTable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if cannot_fail(f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = self.inner.schema();
        let wanted: Vec<usize> = projection
            .cloned()
            .unwrap_or_else(|| (0..schema.fields().len()).collect());
        // The columns the scope reads, read even when the query does not select them.
        let mut read = wanted.clone();
        for c in self.scope.column_refs() {
            let i = schema.index_of(&c.name)?;
            if !read.contains(&i) {
                read.push(i);
            }
        }
        // Only the scope goes into the store's scan: a caller's constants there would prune
        // files by statistics that cover other tenants' rows too, and how long a query takes
        // would then depend on their values. The caller's comparisons run here, below the seal,
        // on this scope's rows only. No limit below the filter: the first rows read may be
        // someone else's.
        let plan = self
            .inner
            .scan(state, Some(&read), std::slice::from_ref(&self.scope), None)
            .await?;
        let mut predicates = vec![self.scope.clone()];
        predicates.extend(filters.iter().filter(|f| cannot_fail(f)).cloned());
        let predicate = conjunction(predicates).expect("the scope is one predicate");
        let physical =
            state.create_physical_expr(predicate, &DFSchema::try_from(plan.schema())?)?;
        let mut plan: Arc<dyn ExecutionPlan> = Arc::new(FilterExec::try_new(physical, plan)?);
        if read.len() != wanted.len() {
            let out = plan.schema();
            let columns: Vec<(Arc<dyn PhysicalExpr>, String)> = (0..wanted.len())
                .map(|i| {
                    let name = out.field(i).name().clone();
                    let column: Arc<dyn PhysicalExpr> = Arc::new(
                        datafusion::physical_expr::expressions::Column::new(&name, i),
                    );
                    (column, name)
                })
                .collect();
            plan = Arc::new(ProjectionExec::try_new(columns, plan)?);
        }
        Ok(Arc::new(Seal { input: plan }))
    }
}

/// Passes its input through; the optimizer pushes no filter, projection or limit through it
/// (every `ExecutionPlan` default refuses them), so nothing of the caller's query runs below.
#[derive(Debug)]
pub struct Seal {
    input: Arc<dyn ExecutionPlan>,
}

impl DisplayAs for Seal {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Seal")
    }
}

impl ExecutionPlan for Seal {
    fn name(&self) -> &str {
        "Seal"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Seal {
            input: children.swap_remove(0),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::{SessionContext, col, lit};

    /// One batch holding two tenants' rows, as the store's files do.
    fn mixed() -> Arc<MemTable> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("advertiser_id", DataType::Utf8, false),
            Field::new("customer_id", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["a", "a", "b"])),
                Arc::new(StringArray::from(vec!["1", "2", "SECRET-of-b"])),
                Arc::new(Int64Array::from(vec![1, 2, 3])),
            ],
        )
        .unwrap();
        Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap())
    }

    async fn answer(ctx: &SessionContext, sql: &str) -> std::result::Result<usize, String> {
        let batches = ctx
            .sql(sql)
            .await
            .map_err(|e| e.to_string())?
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok(batches.iter().map(RecordBatch::num_rows).sum())
    }

    #[tokio::test]
    async fn no_expression_of_the_caller_runs_on_another_tenants_rows() {
        let ctx = SessionContext::new();
        let sealed = SealedTable::new(mixed(), col("advertiser_id").eq(lit("a")));
        ctx.register_table("events", Arc::new(sealed)).unwrap();
        // An expression that fails only on b's value: it never sees it, whatever b holds.
        for probe in ["SECRET-of-b", "nothing"] {
            let sql = format!(
                "SELECT * FROM events WHERE CASE WHEN customer_id = '{probe}' THEN CAST('x' || customer_id AS INT) ELSE 1 END = 1"
            );
            assert_eq!(answer(&ctx, &sql).await, Ok(2), "{sql}");
        }
        // Selecting a column the scope does not need, or none of it, still sees only a's rows.
        assert_eq!(answer(&ctx, "SELECT n FROM events").await, Ok(2));
        assert_eq!(answer(&ctx, "SELECT count(*) FROM events").await, Ok(1));
        let count = ctx
            .sql("SELECT sum(n) AS s FROM events WHERE n >= 1")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let s = count[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0);
        assert_eq!(s, 3, "1 + 2: b's 3 is not counted");
        // The same probe on an unsealed table is the oracle this prevents.
        let open = SessionContext::new();
        open.register_table("events", mixed()).unwrap();
        let leak = answer(
            &open,
            "SELECT * FROM events WHERE advertiser_id = 'a' AND CASE WHEN customer_id = 'SECRET-of-b' THEN CAST('x' || customer_id AS INT) ELSE 1 END = 1",
        )
        .await;
        assert!(
            leak.is_err(),
            "the unsealed table fails on b's row: {leak:?}"
        );
    }

    #[test]
    fn only_comparisons_with_constants_go_below_the_seal() {
        assert!(cannot_fail(&col("a").eq(lit("x")).and(col("b").gt(lit(1)))));
        assert!(cannot_fail(
            &col("a").in_list(vec![lit("x"), lit("y")], false)
        ));
        assert!(cannot_fail(&col("a").is_null()));
        assert!(!cannot_fail(
            &datafusion::logical_expr::cast(col("a"), DataType::Int32).eq(lit(1))
        ));
        assert!(!cannot_fail(&(col("a") / col("b")).gt(lit(1))));
    }
}
