//! What clicktrail's data looks like, and nothing else: no I/O, no async runtime.
//!
//! - [`topics`]: the bus topics, their default partition counts and how a key picks a partition.
//! - [`wire`]: one record type per topic, with its partition key beside it (format: `docs/wire-format.md`).
//! - [`catalog`]: advertisers, campaigns, influencers, links, coupons and API keys, the change
//!   records on the `catalog` topic, and the state machine that applies them. Uniqueness of link
//!   codes and coupon codes is decided here, in topic order, so every follower agrees.
//! - [`token`]: the self-verifying click token.
//! - [`ledger`]: the commission ledger's records on `commissions` and `ledger`, and its rows.
//! - [`promo`]: newsletter promo impressions on `impressions`, and the promo rows.
//! - [`money`]: decimal amounts to integer minor units under ISO 4217.
//! - [`rows`]: the store's row types.
//! - [`tables`]: each store table defined once (columns, types, key); [`arrow`] derives its
//!   Arrow schema and record batch encoder from that definition.
//!
//! Invariant: every type that crosses the bus is versioned (`v`) and a change that breaks an old
//! reader fails the snapshot tests in `tests/wire.rs`.

pub mod arrow;
pub mod attribution;
pub mod catalog;
pub mod ids;
pub mod ledger;
pub mod metric_names;
pub mod money;
pub mod outbound;
pub mod promo;
pub mod record;
pub mod rows;
pub mod tables;
pub mod token;
pub mod topics;
pub mod wire;

pub use catalog::{Catalog, CatalogChange};
pub use topics::Topic;
