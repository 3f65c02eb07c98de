//! Who is asking, and what they may see. The scope is compiled into every plan: the store
//! tables a request sees are views already filtered to the caller's advertiser, or to an
//! influencer's own rows in the campaigns they are assigned to.

use crate::QueryState;
use crate::rollups::{CLICKS_HOURLY, EVENTS_HOURLY};
use crate::sealed::SealedTable;
use axum::http::{HeaderMap, Method};
use clicktrail_api::auth::{API_KEY_HEADER, api_key};
use clicktrail_api::error::ApiError;
use clicktrail_api::session::{Principal, SessionUser, authenticate};
use clicktrail_schemas::catalog::{Status, UserRole};
use clicktrail_schemas::tables::ALL;
use datafusion::catalog::TableProvider;
use datafusion::logical_expr::Expr;
use datafusion::prelude::{SessionContext, col, lit};
use std::sync::Arc;

/// What a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything (admin token, admin users).
    All,
    /// One advertiser's rows (its API key, its users).
    Advertiser(String),
    /// One influencer's clicks and credited events in the campaigns they are assigned to, as
    /// aggregates only (influencer users, through `/api/v1/me/…`).
    Influencer {
        /// The influencer.
        influencer_id: String,
        /// The campaigns they are assigned to, sorted.
        campaigns: Vec<String>,
    },
}

impl Scope {
    /// The scope of the shared stats, export, audit and SQL routes: the admin token or an
    /// admin's session (everything), an advertiser's key or user (its rows).
    /// Errors: 401 without valid credentials; 403 for an influencer (whose figures are under
    /// `/api/v1/me/…`).
    pub fn of(headers: &HeaderMap, state: &QueryState) -> Result<Scope, ApiError> {
        Scope::of_method(headers, &Method::GET, state)
    }

    /// [`Scope::of`] for a request of `method`: a POST made with the session cookie (analyst
    /// SQL) carries its CSRF token like every other, read-only as it is.
    /// Errors: as [`Scope::of`]; 403 for a cookie without its CSRF token.
    pub fn of_method(
        headers: &HeaderMap,
        method: &Method,
        state: &QueryState,
    ) -> Result<Scope, ApiError> {
        match Scope::caller_method(headers, method, state)?.0 {
            Scope::Influencer { .. } => Err(ApiError::Forbidden(
                "an influencer's figures are under /api/v1/me/stats/…".into(),
            )),
            scope => Ok(scope),
        }
    }

    /// The scope of any authenticated caller, with the logged-in user if it is one: the
    /// bearer token (admin token or session), else `X-API-KEY`, else the session cookie.
    /// Errors: 401 without valid credentials; 403 for the user of an inactive advertiser.
    pub fn caller(
        headers: &HeaderMap,
        state: &QueryState,
    ) -> Result<(Scope, Option<SessionUser>), ApiError> {
        Scope::caller_method(headers, &Method::GET, state)
    }

    fn caller_method(
        headers: &HeaderMap,
        method: &Method,
        state: &QueryState,
    ) -> Result<(Scope, Option<SessionUser>), ApiError> {
        let catalog = state.catalog.snapshot();
        if !headers.contains_key(axum::http::header::AUTHORIZATION)
            && headers.contains_key(API_KEY_HEADER)
        {
            let (_, advertiser) = api_key(headers, &catalog)?;
            return Ok((Scope::Advertiser(advertiser.id.clone()), None));
        }
        let user = match authenticate(headers, method, &catalog, &state.admin_token)? {
            Some(Principal::AdminToken) => return Ok((Scope::All, None)),
            Some(Principal::User(u)) => u,
            None => {
                return Err(ApiError::Unauthorized(
                    "missing X-API-KEY header, Authorization: Bearer <token>, or a session: log in"
                        .into(),
                ));
            }
        };
        let scope = match user.role {
            UserRole::Admin => Scope::All,
            UserRole::Advertiser => {
                let adv = user.advertiser_id.clone().unwrap_or_default();
                if catalog
                    .advertisers
                    .get(&adv)
                    .is_none_or(|a| a.status != Status::Active)
                {
                    return Err(ApiError::Forbidden(
                        "this user's advertiser is inactive".into(),
                    ));
                }
                Scope::Advertiser(adv)
            }
            UserRole::Influencer => {
                let inf = user.influencer_id.clone().unwrap_or_default();
                let mut campaigns: Vec<String> = catalog
                    .assignments
                    .iter()
                    .filter(|(_, i)| *i == inf)
                    .map(|(c, _)| c.clone())
                    .collect();
                campaigns.sort();
                Scope::Influencer {
                    influencer_id: inf,
                    campaigns,
                }
            }
        };
        Ok((scope, Some(user)))
    }

    /// The scope of the `/api/v1/me/…` figures: an influencer user's.
    /// Errors: 401 without a session; 403 for any other caller.
    pub fn me(headers: &HeaderMap, state: &QueryState) -> Result<(Scope, SessionUser), ApiError> {
        match Scope::caller(headers, state)? {
            (scope @ Scope::Influencer { .. }, Some(user)) => Ok((scope, user)),
            _ => Err(ApiError::Forbidden(
                "/api/v1/me/stats, links and coupons are an influencer user's own figures; use /api/v1/stats/… otherwise".into(),
            )),
        }
    }

    /// The advertiser whose rows are visible, if restricted to one.
    pub fn advertiser(&self) -> Option<&str> {
        match self {
            Scope::Advertiser(a) => Some(a),
            Scope::All | Scope::Influencer { .. } => None,
        }
    }

    /// Whether everything is visible.
    pub fn is_all(&self) -> bool {
        *self == Scope::All
    }

    /// The rows this scope sees of `table`: [`Scope::predicate`], except that an influencer
    /// sees their whole `ledger` (money they earned stays theirs after they leave a campaign)
    /// and no promo rows (`impressions`, `promo_clicks`) nor the advertiser's delivery log
    /// (`deliveries`).
    pub fn predicate_for(&self, table: &str) -> Option<Expr> {
        match self {
            Scope::Influencer { influencer_id, .. } if table == "ledger" => {
                Some(col("influencer_id").eq(lit(influencer_id.clone())))
            }
            // Promo figures are the advertiser's: an influencer sees none of them.
            Scope::Influencer { .. }
                if matches!(table, "impressions" | "promo_clicks" | "deliveries") =>
            {
                Some(lit(false))
            }
            _ => self.predicate(),
        }
    }

    /// The rows this scope sees, over the columns every store table and rollup has
    /// (`advertiser_id`, `influencer_id`, `campaign_id`); `None` for everything.
    pub fn predicate(&self) -> Option<Expr> {
        match self {
            Scope::All => None,
            Scope::Advertiser(adv) => Some(col("advertiser_id").eq(lit(adv.clone()))),
            Scope::Influencer {
                influencer_id,
                campaigns,
            } => {
                let in_assigned = if campaigns.is_empty() {
                    lit(false)
                } else {
                    let assigned = campaigns.iter().map(|c| lit(c.clone())).collect();
                    col("campaign_id").in_list(assigned, false)
                };
                Some(
                    col("influencer_id")
                        .eq(lit(influencer_id.clone()))
                        .and(in_assigned),
                )
            }
        }
    }
}

/// A session whose store tables (every one of `tables::ALL`) and hourly rollups hold only
/// what `scope` may see ([`Scope::predicate`]), sealed ([`crate::sealed`]): no expression of a
/// query runs on a row outside the scope. A table without the scope's columns fails the query
/// instead of showing everyone's rows.
pub async fn session(state: &QueryState, scope: &Scope) -> Result<SessionContext, ApiError> {
    scoped(state.limiter.context()?, state, scope).await
}

/// [`session`] on a context of the caller's (an export's, which may spill).
pub async fn scoped(
    ctx: SessionContext,
    state: &QueryState,
    scope: &Scope,
) -> Result<SessionContext, ApiError> {
    build(ctx, state, scope, false).await
}

/// [`session`] for the dashboards, which only sum the rollups' measures: the rollups are the
/// store's summed ones ([`clicktrail_store::source::TableSource::summed`]), merged by the
/// columns a query reads. Not for a caller's own SQL, whose `count(*)` or `max()` of a rollup
/// would then depend on what it reads.
pub async fn summing_session(
    state: &QueryState,
    scope: &Scope,
) -> Result<SessionContext, ApiError> {
    build(state.limiter.context()?, state, scope, true).await
}

async fn build(
    ctx: SessionContext,
    state: &QueryState,
    scope: &Scope,
    summed: bool,
) -> Result<SessionContext, ApiError> {
    let names = ALL.iter().map(|t| (t.name(), false));
    let rollups = [CLICKS_HOURLY, EVENTS_HOURLY].map(|r| (r, summed));
    for (table, summed) in names.chain(rollups) {
        let provider = match summed {
            true => state.source.summed(table).await,
            false => state.source.table(table).await,
        }
        .map_err(crate::internal)?;
        let provider: Arc<dyn TableProvider> = match scope.predicate_for(table) {
            None => provider,
            Some(p) => Arc::new(SealedTable::new(provider, p)),
        };
        ctx.register_table(table, provider)
            .map_err(crate::internal)?;
    }
    Ok(ctx)
}
