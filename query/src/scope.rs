//! Who is asking, and what they may see. The scope is compiled into every plan: the `clicks`
//! and `events` tables a request sees are views already filtered to the caller's advertiser.

use crate::QueryState;
use crate::rollups::{CLICKS_HOURLY, EVENTS_HOURLY};
use axum::http::HeaderMap;
use clicktrail_api::auth::{api_key, require_admin};
use clicktrail_api::error::ApiError;
use clicktrail_schemas::tables::ALL;
use datafusion::prelude::{SessionContext, col, lit};

/// What a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything (admin token).
    All,
    /// One advertiser's rows (its API key).
    Advertiser(String),
}

impl Scope {
    /// The caller's scope: the admin bearer token, else `X-API-KEY`.
    pub fn of(headers: &HeaderMap, state: &QueryState) -> Result<Scope, ApiError> {
        if headers.contains_key(axum::http::header::AUTHORIZATION) {
            require_admin(headers, &state.admin_token)?;
            return Ok(Scope::All);
        }
        let catalog = state.catalog.snapshot();
        let (_, advertiser) = api_key(headers, &catalog)?;
        Ok(Scope::Advertiser(advertiser.id.clone()))
    }

    /// The advertiser whose rows are visible, if restricted.
    pub fn advertiser(&self) -> Option<&str> {
        match self {
            Scope::All => None,
            Scope::Advertiser(a) => Some(a),
        }
    }
}

/// A session whose store tables (every one of `tables::ALL`) and hourly rollups hold only
/// what `scope` may see: an advertiser's scope filters each on its `advertiser_id` column,
/// which every store table has (a table without one fails the session instead of showing
/// everyone's rows).
pub async fn session(state: &QueryState, scope: &Scope) -> Result<SessionContext, ApiError> {
    let ctx = state.limiter.context()?;
    let names = ALL.iter().map(|t| t.name());
    for table in names.chain([CLICKS_HOURLY, EVENTS_HOURLY]) {
        let provider = state.source.table(table).await.map_err(crate::internal)?;
        let mut df = ctx.read_table(provider).map_err(crate::internal)?;
        if let Some(adv) = scope.advertiser() {
            df = df
                .filter(col("advertiser_id").eq(lit(adv.to_string())))
                .map_err(crate::internal)?;
        }
        ctx.register_table(table, df.into_view())
            .map_err(crate::internal)?;
    }
    Ok(ctx)
}
