//! Writing a catalog change around freshly drawn codes (link codes, coupon codes): a code
//! another writer already holds is refused by the catalog state machine, and a new one is
//! drawn, a bounded number of times.

use crate::IngestState;
use clicktrail_api::error::ApiError;
use clicktrail_bus::CatalogWriteError;
use clicktrail_schemas::CatalogChange;
use clicktrail_schemas::catalog::CatalogConflict;

/// Draws at most this many times before giving up.
const DRAWS: usize = 5;

/// Draws a candidate with `draw`, writes the change `make` builds from it and returns the
/// candidate once the catalog accepted it. While the catalog answers that a link or coupon
/// code is taken, draws again, up to five times; then answers `exhausted`. Any other refusal
/// or failure is returned as it is.
pub(super) async fn write_fresh<T>(
    s: &IngestState,
    mut draw: impl FnMut() -> T,
    make: impl Fn(&T) -> CatalogChange,
    exhausted: ApiError,
) -> Result<T, ApiError> {
    for _ in 0..DRAWS {
        let candidate = draw();
        match s
            .catalog
            .write(s.producer.as_ref(), &make(&candidate))
            .await
        {
            Ok(()) => return Ok(candidate),
            Err(CatalogWriteError::Conflict(
                CatalogConflict::LinkCodeTaken(_) | CatalogConflict::CouponCodeTaken(_),
            )) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(exhausted)
}
