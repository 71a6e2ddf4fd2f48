//! Mercato's search side: everything derived from the shards' change logs.
//!
//! - [`ShardIndex`]: one Tantivy index per storage shard holding the products and vendors of
//!   every tenant of the shard. The engine's indexer feeds it [`IndexOp`]s read from the shard's
//!   change log, commits at its refresh interval with the change-log position (LSN) in the
//!   commit payload, and catches up from [`ShardIndex::committed_lsn`] after a restart.
//! - [`ChangeFollower`]: a named, durable reader of one shard's change log, which tells the
//!   storage engine how far it got so that the log is trimmed only behind it.
//!
//! Queries: full text over name, description, SKU, manufacturer, category path and attributes,
//! with typo tolerance and prefix matching of the last word; filters, facets, sorts, synonyms,
//! stop words and highlighted snippets (see [`ProductQuery`]); typeahead
//! ([`ShardIndex::suggest`]); vendor search ([`ShardIndex::search_vendors`]).
//!
//! ```
//! use mercato_index::{IndexConfig, IndexOp, ProductDoc, ProductQuery, ShardIndex};
//!
//! let dir = tempfile::tempdir()?;
//! let index = ShardIndex::open(dir.path(), IndexConfig::default())?;
//! index.apply(vec![IndexOp::UpsertProduct(ProductDoc {
//!     tenant: 7,
//!     id: 1,
//!     sku: "HAM-16".into(),
//!     name: "Claw hammer 16 oz".into(),
//!     price_minor: 1_299,
//!     ..ProductDoc::default()
//! })])?;
//! index.commit(42)?;
//! let found = index.search_products(&ProductQuery {
//!     tenant: 7,
//!     text: "hamer".into(), // one typo
//!     ..ProductQuery::default()
//! })?;
//! assert_eq!(found.hits[0].id, 1);
//! assert_eq!(index.committed_lsn(), 42);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! How a product query runs (details in the modules): the text is read into words by the same
//! analyzer as the documents (`query.rs`), never parsed as query syntax; typo and prefix words
//! are expanded against the term dictionaries into a bounded set of real words; the Tantivy
//! query is built from those (`plan.rs`); one collector pass over the matches applies the
//! buyer's price filter, counts the total, facets and price bands from fast fields and keeps the
//! top of the requested sort (`collector.rs`). `cargo run --release -p mercato-index --example
//! search_bench` measures it on generated products (results in `docs/benchmarks.md`).
//!
//! Scores and typo and prefix expansions use the tenant's own term statistics (`stats.rs`):
//! document count, document frequencies and field lengths of the tenant's documents only, so
//! another tenant's documents neither move a tenant's scores nor take its expansion slots.
//! Known limit: field lengths are Tantivy's per-document field norms, exact up to 40 tokens
//! and rounded down above, where a segment holds more than one tenant (a segment of one
//! tenant uses its exact token count); the dictionary scan that finds expansion candidates
//! reads at most [`EXPANSION_SCAN_MAX`] entries per segment and field, whoever's words they
//! are. No result, count or suggestion is ever taken from
//! another tenant.
//!
//! Architecture invariant: nothing here writes tenant data. Derived state is rebuilt from the
//! change log and the shards, never the other way round. Architecture invariant: every query
//! filters on its tenant; no result, facet count or suggestion comes from another tenant.

mod collector;
mod docs;
mod error;
mod follower;
mod highlight;
mod plan;
mod query;
mod schema;
mod shard;
mod stats;
mod suggest;

pub use docs::{
    ATTRIBUTE_BYTES_MAX, ATTRIBUTES_MAX, CATEGORY_IDS_MAX, CATEGORY_PATH_BYTES_MAX,
    DESCRIPTION_BYTES_MAX, GROUP_PRICES_MAX, IndexOp, NAME_BYTES_MAX, ProductDoc, SKU_BYTES_MAX,
    VENDOR_TEXT_BYTES_MAX, VENDOR_TEXT_STORED_BYTES_MAX, VendorDoc,
};
pub use error::IndexError;
pub use follower::ChangeFollower;
pub use highlight::SNIPPET_BYTES_MAX;
pub use plan::{EXPANSION_SCAN_MAX, EXPANSIONS_MAX};
pub use query::{
    ATTRIBUTE_FILTERS_MAX, FACET_VALUES_MAX, FUZZY_ONE_CHARS_MIN, FUZZY_TWO_CHARS_MIN, FacetCount,
    MANUFACTURER_FILTERS_MAX, PREFIX_CHARS_MIN, PRICE_BAND_EDGES_MAX, PriceBand, ProductHit,
    ProductQuery, ProductResults, ProductSort, QUERY_TERMS_MAX, QUERY_TEXT_BYTES_MAX,
    RESULT_DEPTH_MAX, RESULT_LIMIT_MAX, STOP_WORDS_MAX, SUGGEST_LIMIT_MAX,
    SUGGEST_PREFIX_BYTES_MAX, SYNONYM_GROUP_TERMS_MAX, SYNONYM_GROUPS_MAX, VendorHit, VendorQuery,
    VendorResults,
};
pub use shard::{
    APPLY_OPS_MAX, IndexConfig, ProductCounters, ShardIndex, WRITER_HEAP_BYTES_MAX,
    WRITER_HEAP_BYTES_MIN,
};
pub use suggest::SUGGEST_SCAN_TERMS_MAX;

#[cfg(test)]
mod tests {
    #[test]
    fn the_index_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<crate::ShardIndex>();
    }
}
