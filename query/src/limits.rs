//! Bounds on the work one query request may make the server do, so that no query (a hostile
//! one included) takes the process down or starves everyone else.
//!
//! Every request to the query routes (dashboards, exports, audits, analyst SQL) passes
//! [`enforce`]:
//!
//! - **Concurrency**: at most [`QueryLimits::per_caller`] requests of one caller (one API key,
//!   the admin token, or the anonymous caller) run at once, and at most [`QueryLimits::total`]
//!   in all; a request beyond either is refused at once (429 `Retry-After: 1`, or 503).
//! - **Where it runs**: on a runtime of its own ([`QueryLimits::threads`] workers with
//!   [`STACK_BYTES`] stacks), never on the threads that answer redirects and events.
//! - **Time**: a request still running after [`QueryLimits::timeout`] is stopped (its task
//!   aborted, which cancels the query's streams) and answered 503.
//!
//! Inside a request, [`Limiter::context`] gives a DataFusion session whose memory pool holds
//! [`QueryLimits::memory_bytes`] (operators that keep state — aggregation, distinct, sort,
//! join — fail with "resources exhausted" beyond it, answered 400; an export's sort instead
//! spills to the temporary directory, [`Limiter::export_context`]), and whose scalar
//! functions refuse to build values larger than [`QueryLimits::max_value_bytes`] (`repeat`,
//! `lpad`, `rpad`, `replace` are checked before they allocate, every other function's output
//! after) — memory a pool does not see. Analyst SQL is also checked before it is planned
//! ([`check_complexity`]): expression depth is what overflows a planner's stack.

use clicktrail_api::error::ApiError;
use clicktrail_schemas::metric_names::query::QUERIES_LIMITED;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{
    FairSpillPool, GreedyMemoryPool, MemoryPool, TrackConsumersPool,
};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Stack of each query thread: 16 MiB, room for the planner's recursion at the depth
/// [`check_complexity`] allows, many times over.
pub const STACK_BYTES: usize = 16 * 1024 * 1024;

/// Disk an export's sort may spill to, in bytes (4 GiB): an export streams every row of its
/// period in time order, more rows than any memory pool holds, so its sort spills sorted runs
/// to the system's temporary directory and merges them; beyond this the export fails.
pub const EXPORT_SPILL_BYTES: u64 = 4 << 30;

/// The limits; every one is a flag of the query role (`--query-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryLimits {
    /// Memory pool of one request's query, in bytes (default 256 MiB).
    pub memory_bytes: usize,
    /// Longest a request may run (default 30 s).
    pub timeout: Duration,
    /// Requests of one caller running at once (default 2).
    pub per_caller: usize,
    /// Requests running at once in all (default 8).
    pub total: usize,
    /// Worker threads of the query runtime (default 2).
    pub threads: usize,
    /// Largest string or binary value a scalar function may build, in bytes (default 1 MiB).
    pub max_value_bytes: usize,
    /// Most operators (`+`, `AND`, `=`, `CASE`, …) in one analyst query (default 500).
    pub max_operators: usize,
    /// Deepest parenthesis nesting in one analyst query (default 32; the SQL parser itself stops at 50).
    pub max_nesting: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            memory_bytes: 256 * 1024 * 1024,
            timeout: Duration::from_secs(30),
            per_caller: 2,
            total: 8,
            threads: 2,
            max_value_bytes: 1024 * 1024,
            max_operators: 500,
            max_nesting: 32,
        }
    }
}

/// Enforces [`QueryLimits`]: shared by every query route of a process.
#[derive(Clone)]
pub struct Limiter {
    limits: Arc<QueryLimits>,
    runtime: tokio::runtime::Handle,
    total: Arc<Semaphore>,
    callers: Arc<Mutex<HashMap<u64, Arc<Semaphore>>>>,
    /// The scalar functions, each bounded; shared by every session (they hold no state).
    functions: Arc<Vec<Arc<ScalarUDF>>>,
}

/// The query runtime of the process, built on first use with the first limits' thread count.
fn runtime(threads: usize) -> tokio::runtime::Handle {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads.max(1))
                .thread_name("clicktrail-query")
                .thread_stack_size(STACK_BYTES)
                .enable_all()
                .build()
                .expect("the query runtime starts")
        })
        .handle()
        .clone()
}

impl Limiter {
    /// A limiter with `limits`, starting the query runtime if this process has none yet.
    pub fn new(limits: QueryLimits) -> Self {
        let defaults = SessionContext::new().state();
        let functions = defaults
            .scalar_functions()
            .values()
            .map(|udf| {
                Arc::new(ScalarUDF::new_from_impl(Bounded {
                    inner: udf.clone(),
                    max_value_bytes: limits.max_value_bytes,
                }))
            })
            .collect();
        Limiter {
            runtime: runtime(limits.threads),
            total: Arc::new(Semaphore::new(limits.total.max(1))),
            callers: Arc::default(),
            functions: Arc::new(functions),
            limits: Arc::new(limits),
        }
    }

    /// The limits enforced.
    pub fn limits(&self) -> &QueryLimits {
        &self.limits
    }

    /// A fresh session for one request: its own memory pool of
    /// [`QueryLimits::memory_bytes`], the bounded scalar functions, no tables yet.
    ///
    /// Errors: DataFusion could not build the runtime environment (an internal error).
    pub fn context(&self) -> Result<SessionContext, ApiError> {
        // No spilling: a query over its memory fails instead of filling the disk.
        let pool = tracked(GreedyMemoryPool::new(self.limits.memory_bytes));
        self.build(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            pool,
            true,
        )
    }

    /// Like [`Limiter::context`], for an export: the same memory pool, but operators beyond it
    /// (the sort in time order) spill to the system's temporary directory, at most
    /// [`EXPORT_SPILL_BYTES`], so that an export's memory stays within the pool however many
    /// rows it streams. The pool is shared fairly (`FairSpillPool`): each partition's sort
    /// spills at its share, so another's merge of its sorted runs (which cannot spill) finds
    /// room. A scan of one partition (ClickHouse's) is not spread over more partitions by
    /// round robin: the spread's buffers cannot spill, and while the sorts spilled they filled
    /// with the scan's rows until no sort had room left (an export of 200,000 events from
    /// ClickHouse failed 4 times in 5 in a 16 MiB pool; with one partition 5 of 5 were whole).
    ///
    /// Errors: DataFusion could not build the runtime environment (an internal error).
    pub fn export_context(&self) -> Result<SessionContext, ApiError> {
        let pool = tracked(FairSpillPool::new(self.limits.memory_bytes));
        self.build(
            DiskManagerBuilder::default()
                .with_mode(DiskManagerMode::OsTmpDirectory)
                .with_max_temp_directory_size(EXPORT_SPILL_BYTES),
            pool,
            false,
        )
    }

    fn build(
        &self,
        disk: DiskManagerBuilder,
        pool: Arc<dyn MemoryPool>,
        round_robin: bool,
    ) -> Result<SessionContext, ApiError> {
        let runtime = RuntimeEnvBuilder::new()
            .with_disk_manager_builder(disk)
            .with_memory_pool(pool)
            .build_arc()
            .map_err(crate::internal)?;
        let config = SessionConfig::new()
            .with_target_partitions(self.limits.threads.max(1))
            .with_batch_size(1024)
            .with_round_robin_repartition(round_robin)
            .with_sort_spill_reservation_bytes(merge_reservation(self.limits.memory_bytes));
        // A new state, catalog included: nothing registered by one request (its scoped views)
        // is ever seen by another.
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_scalar_functions((*self.functions).clone())
            .build();
        Ok(SessionContext::new_with_state(state))
    }

    fn caller_slot(&self, caller: u64) -> Arc<Semaphore> {
        let mut callers = self.callers.lock().unwrap_or_else(|e| e.into_inner());
        callers
            .entry(caller)
            .or_insert_with(|| Arc::new(Semaphore::new(self.limits.per_caller.max(1))))
            .clone()
    }

    /// Forgets a caller's slot once nothing holds it, so the table stays as small as the
    /// number of callers with a request in flight.
    fn release_caller(&self, caller: u64, slot: Arc<Semaphore>, permit: OwnedSemaphorePermit) {
        drop(permit);
        let mut callers = self.callers.lock().unwrap_or_else(|e| e.into_inner());
        // The table's copy and ours: nobody else is waiting on or holding this slot.
        if Arc::strong_count(&slot) == 2 {
            callers.remove(&caller);
        }
    }
}

/// What each sort of a query holds back from a pool of `pool` bytes to merge its sorted runs:
/// DataFusion's default of 10 MiB, or an eighth of the pool when that is less. With the default
/// in a small pool (`--query-memory-mb 16`), the two partitions' sorts of an export held 20 MiB
/// back, more than the pool, and the export failed instead of spilling.
fn merge_reservation(pool: usize) -> usize {
    (pool / 8).min(10 * 1024 * 1024)
}

/// `pool`, naming its five largest consumers when it refuses an allocation.
fn tracked(pool: impl MemoryPool + 'static) -> Arc<dyn MemoryPool> {
    Arc::new(TrackConsumersPool::new(pool, 5.try_into().expect("five")))
}

/// Who a request counts against: its credential (see `clicktrail_api::rate::credential_hash`),
/// or the anonymous caller.
fn caller_of(headers: &axum::http::HeaderMap) -> u64 {
    clicktrail_api::rate::credential_hash(headers).unwrap_or(0)
}

fn limited(reason: &'static str) {
    metrics::counter!(QUERIES_LIMITED, "reason" => reason).increment(1);
}

/// The middleware of every query route: concurrency per caller and in all, the query
/// runtime, the time limit.
pub async fn enforce(
    axum::extract::State(limiter): axum::extract::State<Limiter>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let caller = caller_of(req.headers());
    let slot = limiter.caller_slot(caller);
    let Ok(permit) = slot.clone().try_acquire_owned() else {
        limited("caller_busy");
        return ApiError::TooMany {
            message: format!(
                "at most {} queries of one caller run at once; retry when one has finished",
                limiter.limits.per_caller
            ),
            retry_after_secs: 1,
        }
        .into_response();
    };
    let Ok(total) = limiter.total.clone().try_acquire_owned() else {
        limiter.release_caller(caller, slot, permit);
        limited("capacity");
        return ApiError::Unavailable(format!(
            "all {} query slots are busy; retry shortly",
            limiter.limits.total
        ))
        .into_response();
    };
    // A request that asks to wait for the pipeline (`wait`) gets that long on top of the
    // query timeout: the wait is not query work.
    let waits = crate::freshness::wait_param(req.uri().query())
        .ok()
        .flatten()
        .unwrap_or_default();
    let mut task = limiter.runtime.spawn(next.run(req));
    let timeout = limiter.limits.timeout + waits;
    let resp = match tokio::time::timeout(timeout, &mut task).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => ApiError::Internal(format!("query task failed: {e}")).into_response(),
        Err(_) => {
            task.abort();
            limited("timeout");
            ApiError::Unavailable(format!(
                "the query ran longer than {} s (--query-timeout-secs) and was stopped; \
                 narrow it (a shorter period, fewer rows) and try again",
                limiter.limits.timeout.as_secs_f64()
            ))
            .into_response()
        }
    };
    drop(total);
    limiter.release_caller(caller, slot, permit);
    resp
}

/// Checks analyst SQL before it is planned: at most [`QueryLimits::max_operators`] operators
/// and [`QueryLimits::max_nesting`] levels of parentheses. An expression tree is never deeper
/// than its operators plus its nesting, so this bounds the recursion of every later stage.
///
/// Errors: the message to answer (400, field `query`).
pub fn check_complexity(sql: &str, limits: &QueryLimits) -> Result<(), String> {
    let tokens = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize()
        .map_err(|e| e.to_string())?;
    let (mut operators, mut depth, mut deepest) = (0usize, 0usize, 0usize);
    for t in &tokens {
        match t {
            Token::LParen | Token::LBracket => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            Token::RParen | Token::RBracket => depth = depth.saturating_sub(1),
            Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::DuckIntDiv
            | Token::StringConcat
            | Token::Eq
            | Token::DoubleEq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::Spaceship
            | Token::DoubleColon
            | Token::Ampersand
            | Token::Pipe
            | Token::Caret
            | Token::Tilde
            | Token::ShiftLeft
            | Token::ShiftRight
            | Token::Arrow
            | Token::LongArrow => operators += 1,
            Token::Word(w)
                if matches!(
                    w.keyword,
                    Keyword::AND
                        | Keyword::OR
                        | Keyword::NOT
                        | Keyword::CASE
                        | Keyword::WHEN
                        | Keyword::IS
                        | Keyword::LIKE
                        | Keyword::ILIKE
                        | Keyword::BETWEEN
                        | Keyword::IN
                        | Keyword::SELECT
                        | Keyword::UNION
                        | Keyword::EXCEPT
                        | Keyword::INTERSECT
                ) =>
            {
                operators += 1
            }
            _ => {}
        }
    }
    if operators > limits.max_operators {
        limited("too_complex");
        return Err(format!(
            "the query has {operators} operators; at most {} are allowed (--query-max-operators)",
            limits.max_operators
        ));
    }
    if deepest > limits.max_nesting {
        limited("too_complex");
        return Err(format!(
            "the query nests parentheses {deepest} deep; at most {} levels are allowed \
             (--query-max-nesting)",
            limits.max_nesting
        ));
    }
    Ok(())
}

mod bounded;
use bounded::Bounded;

#[cfg(test)]
mod tests;
