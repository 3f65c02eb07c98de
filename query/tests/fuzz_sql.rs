//! Property-based fuzzing of the SQL entry point: text built from SQL's own tokens goes
//! through the same checks and planner as `POST /api/v1/sql`, on a thread with the query
//! runtime's stack; each gets a verdict (refused, planned, or a planning error) and none
//! crashes. Cases: `FUZZ_CASES` (default 300; planning is the slow part).

use clicktrail_query::limits::{Limiter, QueryLimits, STACK_BYTES, check_complexity};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .map(|n| (n / 5).max(1))
        .unwrap_or(300)
}

const TOKENS: [&str; 48] = [
    "SELECT", "FROM", "WHERE", "GROUP BY", "ORDER BY", "LIMIT", "UNION", "AND", "OR", "NOT",
    "CASE", "WHEN", "THEN", "ELSE", "END", "IN", "IS NULL", "LIKE", "BETWEEN", "AS", "(", ")", ",",
    "+", "-", "*", "/", "%", "||", "=", "<>", "<", ">=", "::", "1", "2.5", "'x'", "NULL",
    "count(*)", "sum(", "repeat(", "range(", "abs(", "t", "v", "events", "clicks", "1e308",
];

fn sql() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(&TOKENS[..]), 1..60).prop_map(|t| t.join(" "))
}

/// Plans `query` as the SQL endpoint would, over an empty session with the limits' functions.
fn plan(limiter: &Limiter, query: &str) {
    if check_complexity(query, limiter.limits()).is_err() {
        return;
    }
    let ctx = limiter.context().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _ = rt.block_on(async {
        let df = ctx.sql(query).await?;
        df.limit(0, Some(10))?.collect().await
    });
}

fn on_query_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(STACK_BYTES)
        .spawn(f)
        .unwrap()
        .join()
        .expect("planning never panics");
}

#[test]
fn the_deepest_query_the_limits_allow_plans_and_runs_on_the_query_stack() {
    on_query_stack(|| {
        let limiter = Limiter::new(QueryLimits::default());
        let limits = limiter.limits().clone();
        let ops = format!(
            "SELECT {} AS n",
            vec!["1"; limits.max_operators - 1].join("+")
        );
        let nest = format!(
            "SELECT {}1{} AS n",
            "abs(".repeat(limits.max_nesting),
            ")".repeat(limits.max_nesting)
        );
        for q in [ops, nest] {
            check_complexity(&q, &limits).unwrap();
            let ctx = limiter.context().unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let rows = rt
                .block_on(async { ctx.sql(&q).await?.collect().await })
                .unwrap();
            assert_eq!(rows[0].num_rows(), 1);
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn any_token_soup_gets_a_verdict(query in sql()) {
        on_query_stack(move || {
            let limiter = Limiter::new(QueryLimits::default());
            plan(&limiter, &query);
        });
    }

    #[test]
    fn any_text_gets_a_verdict_from_the_checks(query in ".{0,400}") {
        let _ = check_complexity(&query, &QueryLimits::default());
    }
}
